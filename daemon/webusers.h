/*
 * webusers.h -- the dashboard's users: the http_users file ([daemon]
 * http_users), one "name:role:hash" line per user, where role is viewer,
 * admin or firm:ID[;ID...] and hash is libsodium's crypto_pwhash_str
 * (Argon2id) of the password, as `clustermonctl passwd NAME ROLE` prints it.
 * Blank lines and lines starting with # are ignored.
 *
 * A firm login (firm:ID) is a firm's finance office uploading its own
 * figures from the dashboard (daemon/webupload.c): like a firm's CURVE key,
 * it may report for the firms listed and nothing else, and it reads none of
 * the dashboard's figures (roles KEY_ROLE_AGENT only). Its firms are checked
 * against the registry when the file is loaded.
 *
 * Checking a password costs what Argon2id is made to cost (tens of ms and
 * 64 MiB), so the HTTP endpoint runs webusers_verify on libuv's thread pool
 * and remembers a password that passed (webusers_remember) for
 * WEBUSERS_CACHE_MS: the next requests of that browser cost one keyed BLAKE2b
 * hash on the loop.
 */
#ifndef CLUSTERMON_WEBUSERS_H
#define CLUSTERMON_WEBUSERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define WEBUSERS_NAME_MAX 63
#define WEBUSERS_CACHE_MS (5 * 60 * 1000)
#define WEBUSERS_FIRMS_MAX 255 /* bytes of a firm login's list of firm ids */

/* Whether id[0..len) is a current member (the daemon asks its registry). */
typedef bool (*webusers_member_fn)(void *data, const char *id, size_t len);

typedef struct {
    char name[WEBUSERS_NAME_MAX + 1];
    unsigned roles; /* KEY_ROLE_VIEWER, KEY_ROLE_VIEWER | KEY_ROLE_ADMIN, or KEY_ROLE_AGENT */
    char firms[WEBUSERS_FIRMS_MAX + 1]; /* a firm login's "ID;ID" as written; "" otherwise */
    char hash[crypto_pwhash_STRBYTES];
    unsigned char ok_digest[crypto_generichash_BYTES]; /* the password that last passed */
    int64_t ok_until_ms;                               /* 0: none remembered */
} webuser_t;

typedef struct webusers {
    webuser_t *users;
    size_t n;
    unsigned char key[crypto_generichash_KEYBYTES]; /* random, for ok_digest */
} webusers_t;

/*
 * Reads path; a firm login's ids must be members by is_member(data, ...)
 * (NULL: not checked). Returns 0 and a new set in *ret (caller owns:
 * webusers_destroy), or -1 with "file:line: field: reason" in err. Before
 * the loop runs, or on it (it reads a small file).
 */
int webusers_load(const char *path, webusers_member_fn is_member, void *data, webusers_t **ret,
                  char *err, size_t errlen);

/* True if user (a firm login) may report for firm id[0..len). */
bool webusers_may_report(const webuser_t *user, const char *id, size_t len);
void webusers_destroy(webusers_t **u);

/* The user named name (len bytes), or NULL. Borrowed until destroy. */
webuser_t *webusers_find(webusers_t *u, const char *name, size_t len);

/* True if pw passed for user within WEBUSERS_CACHE_MS of now_ms. Cheap: on the loop. */
bool webusers_remembered(const webusers_t *u, const webuser_t *user, const char *pw, size_t len,
                         int64_t now_ms);
/* Remembers that pw passed for user at now_ms. */
void webusers_remember(const webusers_t *u, webuser_t *user, const char *pw, size_t len,
                       int64_t now_ms);

/* The Argon2id check of pw against hash: slow, thread-safe (thread pool). */
bool webusers_verify(const char *hash, const char *pw, size_t len);

/* Writes "name:role:hash\n" for a new entry into buf (crypto_pwhash_str with
 * the interactive limits); role is viewer, admin or firm:ID[;ID...] (the ids'
 * syntax is checked here, their membership when the daemon loads the file).
 * Returns 0, or -1 with the reason in err (a bad name or role, or out of
 * memory). For clustermonctl passwd. */
int webusers_entry(const char *name, const char *role, const char *pw, char *buf, size_t size,
                   char *err, size_t errlen);

#endif
