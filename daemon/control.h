/*
 * control.h -- the control socket that clustermonctl talks to.
 *
 * A ROUTER: [identity][(empty)][ctl request] in, the same envelope with a
 * ctl_reply out. Commands (args in brackets):
 *   ping                       -> "pong"
 *   status                     -> version, uptime, counters, how the last
 *                                 reload went
 *   reload                     -> firms, rules, reloads, restart_needed (the
 *                                 settings kept until a restart); an error
 *                                 reply if the new config was rejected
 *   report [year]              -> per cluster and chain: member firms,
 *                                 reporting firms, above-scale firms,
 *                                 revenue and profit (milli-units) for the year
 *   totals metric period       -> per cluster and chain: firms, firms that
 *                                 reported for the period, the metric's total
 * Every answer is built on the loop from current state; commands are cheap
 * (a report walks the firms once).
 */
#ifndef CLUSTERMON_CONTROL_H
#define CLUSTERMON_CONTROL_H

#include <stdint.h>

#include "daemon/keys.h"
#include "daemon/log.h"
#include "daemon/zpoll.h"
#include "proto/proto.h"

struct server;

typedef struct {
    struct server *srv;
    void *sock;              /* owned */
    zpoll_t zp;
    msgpack_sbuffer out;     /* reused reply buffer */
    uint64_t requests, errors;
    uint64_t denied;         /* commands refused for the caller's key */
    log_throttle_t log;
    /* With CURVE: the key of the request being handled (NULL between
     * requests, or if the key was revoked); handlers that filter by key,
     * like alerts, read it. */
    const access_key_t *caller;
    void (*on_closed)(struct server *);
} control_t;

/*
 * A command handler: called on the loop with the decoded request; it writes
 * the whole reply through pk: proto_ctl_reply_begin() and then exactly one
 * body object (control_reply_error() does both for a refusal).
 */
typedef void (*control_handler_t)(struct server *srv, msgpack_packer *pk,
                                  const proto_ctl_request_t *req);

void control_pack_str(msgpack_packer *pk, const char *s);
/* One map entry: the key, then its value. */
void control_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v);
void control_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t v);
void control_pack_kv_str(msgpack_packer *pk, const char *key, const char *v);
void control_reply_error(msgpack_packer *pk, const char *reason);

int control_start(control_t *c, struct server *srv, const char *endpoint, char *err, size_t errlen);
void control_close(control_t *c, void (*on_closed)(struct server *));

#endif
