/*
 * keyfile.h -- CURVE key pairs on disk, shared by the daemon and every client.
 *
 * ZeroMQ's CURVE mechanism authenticates and encrypts each TCP connection
 * with two long-term key pairs: the daemon's and the client's. A key pair
 * lives in a small text file that `clustermonctl keygen NAME` writes, parsed
 * with inih:
 *
 *   # clustermon CURVE key pair "NAME", made by clustermonctl keygen on 2026-11-29
 *   # The secret key below must stay on this machine, readable only by its owner.
 *   public = <40 Z85 characters>
 *   secret = <40 Z85 characters>
 *
 * NAME.key holds both keys; NAME.pub (the one to hand to the other side)
 * only the public one. Anything else in a file (a [section], another key, a
 * key given twice, a value that is not Z85, a public key that does not
 * belong to the secret one) is an error naming file:line, so a mistyped or
 * swapped file is found at start-up and not at the first handshake.
 *
 * Nothing here logs; errors go to the caller's buffer. The functions keep no
 * state and may be called from any thread.
 */
#ifndef CLUSTERMON_PROTO_KEYFILE_H
#define CLUSTERMON_PROTO_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#define KEYFILE_Z85_LEN 40  /* a 32-byte CURVE key as Z85 text */
#define KEYFILE_NAME_MAX 64 /* the longest NAME keyfile_generate takes */

typedef struct {
    char public_z85[KEYFILE_Z85_LEN + 1];
    char secret_z85[KEYFILE_Z85_LEN + 1]; /* "" unless has_secret */
    bool has_secret;
} keyfile_t;

/* True if s[0..len) is a 40-character Z85 text that decodes to 32 bytes
 * (every character in the Z85 alphabet, every 5-character group < 2^32). */
bool keyfile_z85_valid(const char *s, size_t len);

/*
 * Loads the key file at path into *k. With need_secret the file must hold
 * a secret key and must not be readable or writable by group or others
 * ("PATH: mode 0644: a secret key must be readable by its owner only (chmod
 * 600)"). Without it a secret key in the file is still loaded (has_secret),
 * but the file's mode is not checked. Errors read "PATH:LINE: reason" (or
 * "PATH: reason" when no line is to blame). Returns 0, or -1 with the reason
 * in err and *k cleared.
 */
int keyfile_load(const char *path, bool need_secret, keyfile_t *k, char *err, size_t errlen);

/*
 * A server key as given on a command line or in an environment variable:
 * either a 40-character Z85 public key, or the path of a .pub or .key file
 * (only its public key is used, so a .key file's mode is not checked).
 * Writes the Z85 public key, NUL-terminated, into out. Returns 0 or -1 with
 * err.
 */
int keyfile_public_arg(const char *arg, char out[KEYFILE_Z85_LEN + 1], char *err, size_t errlen);

/*
 * Makes a new key pair with zmq_curve_keypair and writes DIR/NAME.key
 * (public and secret) and DIR/NAME.pub (public only), both mode 0600. NAME
 * is 1..KEYFILE_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. Without
 * force both are created with O_EXCL: if either exists nothing is written
 * and errno is EEXIST on return. With force each is written to a temp file
 * in DIR and renamed over the old one, so a reader never sees half a file.
 * Fills *k. Returns 0 or -1 with err.
 */
int keyfile_generate(const char *dir, const char *name, bool force, keyfile_t *k, char *err,
                     size_t errlen);

/*
 * Makes sock (a client socket, before zmq_connect) a CURVE client of the
 * server whose public key is server_public_z85, as the key pair in client
 * (which must hold its secret key): sets ZMQ_CURVE_SERVERKEY, _PUBLICKEY
 * and _SECRETKEY. Returns 0 or -1 with err.
 */
int keyfile_client_setup(void *sock, const char *server_public_z85, const keyfile_t *client,
                         char *err, size_t errlen);

#endif
