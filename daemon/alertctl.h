/*
 * alertctl.h -- control commands on alerts and silences (see control.h for
 * the handler contract):
 *   alerts                      -> {"seqs": {cluster: N}, "alerts": [bin, ...]}:
 *                                  every firing or flapping alert, each
 *                                  encoded exactly as on the PUB socket, and
 *                                  each cluster's sequence number they are
 *                                  current to (a subscriber's snapshot: the
 *                                  Clone pattern); with CURVE only the
 *                                  clusters the caller's key may see
 *   silence_add rule cluster [firm] for reason  -> {"id": N, "until_ms": T}
 *   silence_list                -> [{"id", "rule", "cluster", "firm", "until_ms", "reason", ...}]
 *   silence_rm id               -> {"id": N}
 *   history [since] [until] [cluster] [rule] [firm] [alert] [limit]
 *                               -> {"timezone", "matched", "retention_ms",
 *                                   "entries": [history_entry_pack maps]}
 *   ack id note                 -> {"entry", "alert_id", "who", "at_ms", "note"}
 * The alerts reply also carries "acks": [{"alert_id", "who", "at_ms",
 * "note", "since_ms"}] for the alerts it lists that are acknowledged.
 * silence_add and silence_rm leave an audit entry in the history.
 */
#ifndef CLUSTERMON_ALERTCTL_H
#define CLUSTERMON_ALERTCTL_H

#include "daemon/control.h"

void alertctl_alerts(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_add(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_list(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_rm(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_history(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_ack(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

/* Parses a history bound: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (local, in the
 * process's TZ: the daemon's time zone), Unix ms, or a duration ago ("7d",
 * "24h") before now_ms. Returns 0 or -1. */
int alertctl_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms);

#endif
