/*
 * relayacl.h -- which subscriber keys clustermon-relay admits.
 *
 * The relay forwards the city daemons' alert streams through ZeroMQ's own
 * proxy (zmq_proxy_steerable, XSUB -> XPUB), which passes messages and
 * subscriptions through untouched: it cannot narrow one subscriber's
 * subscription the way the daemon's gated XPUB does. So the relay enforces
 * scope where it can be exact, at the door: it carries a fixed set of
 * clusters (its scope, which its own upstream key is narrowed to by the
 * cities), and the ZAP handler admits a key only if its access rows let it
 * see every one of them. A key that may see less is refused outright; it
 * connects to a relay with a narrower scope, or to the city itself.
 *
 * The access file is the daemon's (keys.h): CSV, columns name,key,role,scope.
 * Rows of role agent are read and ignored (they never see alerts); a
 * subscriber's scope is a ';' list of cluster ids or '*'; viewer and admin
 * see every cluster. A key may appear on several rows: its rights are the
 * union. Cluster ids are not checked against a registry (the relay has
 * none); a typo only narrows that key.
 */
#ifndef CLUSTERMON_RELAYACL_H
#define CLUSTERMON_RELAYACL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/keyfile.h"

typedef struct {
    char z85[KEYFILE_Z85_LEN + 1];
    char *name;      /* the first row's name */
    bool see_all;    /* viewer, admin, or a subscriber of '*' */
    char **clusters; /* a subscriber's clusters (owned), when not see_all */
    size_t nclusters, cap;
    bool any; /* a role that sees alerts at all (not only agent rows) */
} relayacl_key_t;

typedef struct {
    relayacl_key_t *keys;
    size_t n, cap;
} relayacl_t;

/*
 * Reads the access file at path. Returns 0 and a new table in *ret (caller
 * owns: relayacl_destroy), or -1 with "path:line: field: reason" in err.
 */
int relayacl_load(const char *path, relayacl_t **ret, char *err, size_t errlen);
void relayacl_destroy(relayacl_t **acl);

/* The key with this Z85 text, or NULL. Borrowed from acl. */
const relayacl_key_t *relayacl_find(const relayacl_t *acl, const char *z85, size_t len);

/*
 * Whether key k may receive everything a relay of scope[0..nscope) carries
 * (nscope 0: every cluster the cities send, which only a key that sees every
 * cluster may). On false, why says which cluster it may not see. k may be
 * NULL (an unknown key: false).
 */
bool relayacl_covers(const relayacl_key_t *k, const char *const *scope, size_t nscope, char *why,
                     size_t whylen);

#endif
