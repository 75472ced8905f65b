/*
 * alerts.h -- the alert fan-out: a PUB socket, frames [topic][alert] with
 * topic "alert.<cluster>.<severity>", and the global alert sequence number.
 *
 * PUB never blocks: a subscriber that falls behind by more than the
 * high-water mark loses messages, which it detects by a gap in seq and
 * repairs with the control socket's "alerts" snapshot (the Clone pattern).
 *
 * With CURVE the socket is an XPUB in manual mode instead: each
 * subscription arrives here with the subscriber's key (User-Id) and is
 * admitted only as far as the key may see: a key limited to some clusters
 * that subscribes to everything ("alert.") gets "alert.<cluster>." for each
 * of its clusters plus the heartbeat topic, never another cluster's alerts.
 *
 * The sequence number never goes back, across restarts too: it is written
 * (pwrite, 8 bytes) to state_dir/alert-seq after every publication and read
 * at start-up. Alerts are rare next to samples, so this costs nothing.
 */
#ifndef CLUSTERMON_ALERTS_H
#define CLUSTERMON_ALERTS_H

#include <stdint.h>

#include "daemon/config.h"
#include "daemon/keys.h"
#include "daemon/log.h"
#include "daemon/zpoll.h"
#include "proto/proto.h"

struct server;

typedef struct {
    void *sock;              /* owned: closed by alerts_close */
    /* gated (CURVE): the XPUB's subscriptions, checked against the keys */
    bool gated;
    zpoll_t zp;
    keys_t *const *keys;     /* the server's, through reloads */
    config_t *const *cfg;
    uint64_t subs_admitted, subs_refused;
    log_throttle_t log;
    struct server *srv;
    void (*on_closed)(struct server *);
    char bound[256];         /* ZMQ_LAST_ENDPOINT: what to unbind */
    bool rebind_pending;     /* unbound, the bind again failed: retried by the heartbeat */
    uint64_t rebinds;
    int seq_fd;              /* state_dir/alert-seq, -1 if none */
    uint64_t seq;            /* last sequence number published */
    msgpack_sbuffer buf;     /* reused encode buffer */
    uint64_t published;
    uint64_t send_errors;
    uint64_t by_severity[PROTO_SEV_COUNT];
} alerts_t;

/* Prepares al (no socket yet) and reads the last sequence number from
 * state_dir/alert-seq. Returns 0, or -1 with the reason in err. */
int alerts_init(alerts_t *al, const char *state_dir, char *err, size_t errlen);

/* Binds a PUB socket on endpoint with high-water mark hwm (messages queued
 * per subscriber); a subscriber stalled for peer_timeout seconds is dropped
 * (server_peer_timeout; 0 = never). Returns 0, or -1 with the reason in err. */
int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, double peer_timeout,
                char *err, size_t errlen);

/* The CURVE variant: an XPUB made secure by srv (server_secure_socket) and
 * bound; subscriptions are read on srv's loop and admitted by key. */
int alerts_open_gated(alerts_t *al, struct server *srv, char *err, size_t errlen);

/*
 * Gated only: unbinds and binds the endpoint again, which drops every
 * subscriber connection; each reconnects (ZeroMQ does that by itself)
 * through ZAP under the current keys, so a key removed by a reload no longer
 * receives anything, and a narrowed one only its new clusters. Subscribers
 * notice the gap from the heartbeat and take a snapshot. If the bind fails
 * it is retried once a second.
 */
void alerts_rebind(alerts_t *al);

/* Stops reading subscriptions (gated only); on_closed(srv) runs once the
 * loop handles are closed. alerts_close() then closes the socket. */
void alerts_stop(alerts_t *al, void (*on_closed)(struct server *));

/* Gives a->seq the next sequence number, encodes and sends it. Returns 0 or
 * -1 (logged and counted; the alert is lost for subscribers, not for state). */
int alerts_publish(alerts_t *al, proto_alert_t *a);

/* Publishes a heartbeat carrying the last sequence number (from the cron,
 * once a second), so a subscriber that lost the latest alerts notices. */
void alerts_heartbeat(alerts_t *al, int64_t now_ms);

void alerts_close(alerts_t *al);

#endif
