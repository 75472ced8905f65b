/*
 * clientkey.h -- a client program's CURVE settings, shared by
 * clustermon-agent, clustermon-sub and clustermonctl.
 *
 * A daemon with CURVE on (daemon.curve_secret_key) talks only to clients
 * that know its public key and hold a key pair of their own that it admits.
 * The client takes them from --server-key KEY|FILE and --key FILE, or from
 * $CLUSTERMON_SERVER_KEY and $CLUSTERMON_KEY (options win). Without a server
 * key, sockets stay plain (ZeroMQ's NULL mechanism), as before CURVE.
 */
#ifndef CLUSTERMON_CLIENTKEY_H
#define CLUSTERMON_CLIENTKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/keyfile.h"

#define CLIENTKEY_ENV_SERVER "CLUSTERMON_SERVER_KEY"
#define CLIENTKEY_ENV_KEY "CLUSTERMON_KEY"

typedef struct {
    bool on;                                 /* CURVE: every socket gets clientkey_setup */
    char server_public[KEYFILE_Z85_LEN + 1]; /* the daemon's public key, Z85 */
    keyfile_t key;                           /* this client's pair, with its secret */
} clientkey_t;

/*
 * Resolves the settings: server_arg and key_arg are the options' values
 * (NULL when not given: the environment variable, if set and not empty,
 * stands in). A server key needs a key pair and a key pair needs a server
 * key; the pair must hold its secret, readable by its owner only. Errors
 * name the option or variable they came from. Returns 0 (ck->on says
 * whether CURVE is on), or -1 with err: a usage error. Call before any
 * socket is made.
 */
int clientkey_init(clientkey_t *ck, const char *server_arg, const char *key_arg, char *err,
                   size_t errlen);

/* With CURVE on, makes sock a CURVE client (before its zmq_connect); does
 * nothing otherwise. Returns 0 or -1 with err. */
int clientkey_setup(const clientkey_t *ck, void *sock, char *err, size_t errlen);

/* Wipes the secret key from memory. */
void clientkey_clear(clientkey_t *ck);

#endif
