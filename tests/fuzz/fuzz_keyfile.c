/*
 * fuzz_keyfile.c -- the CURVE key file reader (proto/keyfile.c: our line
 * reader in front of inih, the Z85 check and the key pair check) on a hostile
 * file, and keyfile_public_arg() on the same bytes as a command-line value.
 *
 * keyfile_load() reads a path and, for a secret key, checks the file's mode,
 * so the input is written to a memfd of mode 0600 (as keygen writes a .key
 * file; it needs no temp directory and never touches the disk) and loaded
 * through /proc/self/fd/N, once without and once with need_secret.
 * Asserted beyond the sanitizers:
 *   - a refusal names the file and leaves the key_t all zero;
 *   - an accepted file holds a valid Z85 public key, and a secret key only
 *     if has_secret, one whose public key is the file's;
 *   - need_secret changes nothing but the demand: it accepts exactly the
 *     files accepted without it that hold a secret, with the same keys;
 *   - keyfile_public_arg() gives a valid Z85 key or a reason, and passes a
 *     Z85 key through unchanged.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "proto/keyfile.h"
#include "tests/fuzz/fuzz.h"

#define ARG_MAX_LEN 512 /* keyfile_public_arg's input: a key or a path, never long */

static int fd = -1;
static char path[64];

static void setup(void)
{
    if (fd >= 0)
        return;
    fd = memfd_create("fuzz-keyfile", 0);
    FUZZ_ASSERT(fd >= 0, "memfd_create failed");
    FUZZ_ASSERT(fchmod(fd, 0600) == 0, "fchmod failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* Checks a key_t that keyfile_load() accepted. */
static void check_loaded(const keyfile_t *k)
{
    char derived[KEYFILE_Z85_LEN + 1];

    FUZZ_ASSERT(k->public_z85[KEYFILE_Z85_LEN] == '\0' &&
                    keyfile_z85_valid(k->public_z85, strlen(k->public_z85)),
                "accepted an invalid public key");
    if (!k->has_secret) {
        FUZZ_ASSERT(k->secret_z85[0] == '\0', "a secret key without has_secret");
        return;
    }
    FUZZ_ASSERT(k->secret_z85[KEYFILE_Z85_LEN] == '\0' &&
                    keyfile_z85_valid(k->secret_z85, strlen(k->secret_z85)),
                "accepted an invalid secret key");
    FUZZ_ASSERT(zmq_curve_public(derived, k->secret_z85) == 0 &&
                    strcmp(derived, k->public_z85) == 0,
                "accepted a secret key that does not belong to the public key");
}

static void load(bool need_secret, keyfile_t *k, int *rc)
{
    char err[512];

    err[0] = '\0';
    *rc = keyfile_load(path, need_secret, k, err, sizeof err);
    if (*rc != 0) {
        FUZZ_ASSERT(*rc == -1, "keyfile_load returned %d", *rc);
        FUZZ_ASSERT(all_zero(k, sizeof *k), "keyfile_load failed but left keys in *k");
        FUZZ_ASSERT(strncmp(err, path, strlen(path)) == 0, "reason does not name the file: '%s'",
                    err);
        return;
    }
    check_loaded(k);
    if (need_secret)
        FUZZ_ASSERT(k->has_secret, "need_secret accepted a file without a secret key");
}

static void public_arg(const uint8_t *data, size_t size)
{
    size_t len = size < ARG_MAX_LEN ? size : ARG_MAX_LEN;
    char *arg = malloc(len + 1);
    char out[KEYFILE_Z85_LEN + 1], err[512];

    FUZZ_ASSERT(arg != NULL, "out of memory");
    memcpy(arg, data, len);
    arg[len] = '\0'; /* an embedded NUL ends it early, as in argv */
    err[0] = '\0';
    if (keyfile_public_arg(arg, out, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0', "keyfile_public_arg failed without a reason");
    } else {
        FUZZ_ASSERT(out[KEYFILE_Z85_LEN] == '\0' && keyfile_z85_valid(out, strlen(out)),
                    "keyfile_public_arg gave an invalid key");
        if (keyfile_z85_valid(arg, strlen(arg)))
            FUZZ_ASSERT(strcmp(out, arg) == 0, "a Z85 key was not passed through");
    }
    free(arg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keyfile_t any, secret;
    int rc_any, rc_secret;

    setup();
    FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate failed");
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        FUZZ_ASSERT(n > 0, "pwrite failed");
        off += (size_t)n;
    }
    load(false, &any, &rc_any);
    load(true, &secret, &rc_secret);
    FUZZ_ASSERT((rc_secret == 0) == (rc_any == 0 && any.has_secret),
                "need_secret disagrees: without it rc %d (has_secret %d), with it rc %d", rc_any,
                (int)any.has_secret, rc_secret);
    if (rc_secret == 0)
        FUZZ_ASSERT(memcmp(&any, &secret, sizeof any) == 0, "need_secret loaded other keys");
    public_arg(data, size);
    return 0;
}
