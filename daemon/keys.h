/*
 * keys.h -- who may connect with which CURVE key, and what each may do.
 *
 * Two sources, loaded together (at start and on every reload, two-phase
 * like the config):
 *   - the firm registry's key column: a firm's own agent key. A key on
 *     several firms' rows is a gateway for all of them.
 *   - the access file (daemon.access), a CSV with the columns
 *       name,key,role,scope
 *     role agent:      a reporting gateway; scope is a ';' list of cluster
 *                      ids (every firm in them), firm ids and city:ID (every
 *                      firm the registry's city column puts in city ID: a
 *                      city daemon's forwarder), or '*'
 *     role subscriber: alerts for the clusters in scope ('*' = all), and
 *                      the control commands ping and alerts (filtered)
 *     role viewer:     every alert and every read-only control command
 *     role admin:      everything: also reload, silences and reporting for
 *                      any firm (clustermonctl import-baseline)
 * A key may appear on several rows; its rights are the union.
 *
 * The ZAP handler (zap.c) admits a key to a socket by its role; the sockets
 * then look the key up again per message (the User-Id is the Z85 key), so a
 * key revoked by a reload is refused from the next message on, and a
 * connection whose key is unchanged goes on undisturbed.
 */
#ifndef CLUSTERMON_KEYS_H
#define CLUSTERMON_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/registry.h"

#define KEYS_Z85_LEN 40

enum {
    KEY_ROLE_AGENT = 1,
    KEY_ROLE_SUBSCRIBER = 2,
    KEY_ROLE_VIEWER = 4,
    KEY_ROLE_ADMIN = 8,
};

typedef struct {
    char z85[KEYS_Z85_LEN + 1];
    char *name;              /* the access row's name, or the (first) firm's id */
    unsigned roles;          /* KEY_ROLE_* */
    bool report_all;         /* may report for every firm */
    uint8_t *report_cluster; /* per cluster: may report for every firm in it */
    uint32_t *report_firms;  /* sorted firm indexes it may report for */
    size_t nreport_firms, report_firms_cap;
    bool see_all;         /* alerts of every cluster */
    uint8_t *see_cluster; /* per cluster: may see its alerts */
} access_key_t;

typedef struct {
    access_key_t *keys;
    size_t nkeys, cap;
    uint32_t *slots; /* open addressing on z85: key index + 1, 0 = empty */
    size_t mask;
    size_t nclusters;
} keys_t;

/*
 * Builds the table from reg's key column and, if access_path is not empty,
 * the access file (cluster and firm ids checked against cfg and reg).
 * Returns 0 and a new table in *ret (caller owns: keys_destroy), or -1 with
 * "file:line: field: reason" in err.
 */
int keys_load(const char *access_path, const config_t *cfg, const registry_t *reg, keys_t **ret,
              char *err, size_t errlen);
void keys_destroy(keys_t **keys);

/* The key with this Z85 text, or NULL. */
const access_key_t *keys_find(const keys_t *keys, const char *z85, size_t len);

bool keys_may_report(const access_key_t *k, const registry_t *reg, int firm);

/*
 * Whether k may send batches under agent id id[0..len): the daemon keeps one
 * dedup slot per agent id, so a key must not use another's. Allowed: the
 * key's name, or the id of a firm it may report for, either optionally
 * followed by '.' and anything ("ee-001", "ee-001.meter2", "ne-gateway.a");
 * an admin key any id.
 */
bool keys_may_use_agent_id(const access_key_t *k, const registry_t *reg, const char *id,
                           size_t len);
bool keys_may_see(const access_key_t *k, int cluster);

/* True if a key that could receive alerts under (old, ocfg) can no longer,
 * or no longer of every cluster it could (clusters compared by id): open
 * subscriptions must then be re-admitted (alerts_rebind). */
bool keys_alerts_narrowed(const keys_t *old, const config_t *ocfg, const keys_t *now,
                          const config_t *ncfg);

/* "agent", "subscriber+viewer", ...: for messages. */
const char *keys_roles_name(unsigned roles, char *buf, size_t size);

#endif
