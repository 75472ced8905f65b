/*
 * alerts.h -- the alert fan-out: a PUB socket, frames [topic][alert] with
 * topic "alert.<cluster>.<severity>", and each cluster's alert sequence
 * number.
 *
 * PUB never blocks: a subscriber that falls behind by more than the
 * high-water mark loses messages, which it detects by a gap in a cluster's
 * seq (or that cluster's heartbeat, topic "alert.<cluster>.heartbeat") and
 * repairs with the control socket's "alerts" snapshot (the Clone pattern).
 * Seqs count per cluster so that a subscriber which sees only some clusters
 * sees no gaps it could never fill, and learns nothing of the others.
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
#include "daemon/zsock.h"
#include "proto/proto.h"

struct server;

/* One cluster's sequence number and where it lives in the file. */
typedef struct {
    char cluster[PROTO_MAX_ID_LEN + 1];
    uint64_t seq;   /* last sequence number published in the cluster */
    int64_t record; /* its record's index in alert-seqs, -1 if not written yet */
} alerts_seq_t;

typedef struct {
    zsock_t zs; /* the PUB, or the gated XPUB (zs.sock) */
    /* gated (CURVE): the XPUB's subscriptions, checked against the keys */
    bool gated;
    keys_t *const *keys; /* the server's, through reloads */
    config_t *const *cfg;
    uint64_t subs_admitted, subs_refused;
    log_throttle_t log;
    struct server *srv;
    char bound[256];     /* ZMQ_LAST_ENDPOINT: what to unbind */
    bool rebind_pending; /* unbound, the bind again failed: retried by the heartbeat */
    uint64_t rebinds;
    int seq_fd;          /* state_dir/alert-seqs, -1 if none */
    char seq_path[4096]; /* for messages */
    alerts_seq_t *seqs;  /* every cluster ever published, config or not; owned */
    size_t nseqs, seqs_cap;
    size_t nrecords;     /* records in the file */
    uint64_t seq_floor;  /* a cluster without a slot starts here */
    msgpack_sbuffer buf; /* reused encode buffer */
    uint64_t published;
    uint64_t send_errors;
    uint64_t by_severity[PROTO_SEV_COUNT];
    /* Hooks (history.h), NULL: none. published_cb sees every alert sent;
     * hold_cb, asked before a reminder goes out, may hold it back (an
     * acknowledged alert). */
    void (*published_cb)(void *data, const proto_alert_t *a);
    bool (*hold_cb)(void *data, const proto_alert_t *a);
    void *hook_data;
    /* Called after each successful publication (the dashboard's live
     * alerts, daemon/webapi.c); NULL = none. */
    void (*on_publish)(void *data, const proto_alert_t *a);
    void *on_publish_data;
    /* Asked before each publication: true holds it (and every later one,
     * in order) in outbox until alerts_release() -- while the WAL records
     * it stems from are staged, not written (wal.h, group writes). NULL:
     * never held. */
    bool (*must_hold)(void *data);
    void *must_hold_data;
    msgpack_sbuffer outbox; /* held alerts: [u32 topic len][u32 len][topic][message] */
    uint64_t held;          /* publications held at least once */
} alerts_t;

/* Prepares al (no socket yet) and reads each cluster's last sequence
 * number from state_dir/alert-seqs (creating it, from the old global
 * state_dir/alert-seq if there is one). Returns 0, or -1 with the reason in
 * err (a damaged file is never guessed at: it names the file and record). */
int alerts_init(alerts_t *al, const char *state_dir, char *err, size_t errlen);

/* The last sequence number published in cluster (the floor if none). */
uint64_t alerts_seq(const alerts_t *al, const char *cluster);

/* Writes the map {cluster: last seq} of every cluster with a slot, for the
 * daemon's snapshot (daemon/snapshot.c). */
void alerts_seqs_pack(const alerts_t *al, msgpack_packer *pk);

/* Checks (apply false) or applies a map written by alerts_seqs_pack: each
 * cluster's seq is raised to the snapshot's if that is higher (the file is
 * normally ahead of any snapshot; this only repairs a lost file). Returns 0,
 * or -1 with the reason in err. */
int alerts_seqs_load(alerts_t *al, const msgpack_object *map, bool apply, char *err, size_t errlen);

/* Raises cluster's seq to seq if it is behind (written to the file then):
 * a journaled alert record proves that seq was published. */
void alerts_seq_raise(alerts_t *al, const char *cluster, uint64_t seq);

/* A snapshot of an older daemon carries one global seq: every cluster goes
 * on from at least it. */
void alerts_seqs_raise_floor(alerts_t *al, uint64_t floor);

/* Binds a PUB socket on endpoint with high-water mark hwm (messages queued
 * per subscriber; 0: no limit); a subscriber stalled for peer_timeout
 * seconds is dropped (zsock.h; 0 = never). Nothing reads it, so it needs no
 * loop. Returns 0, or -1 with the reason in err. */
int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, double peer_timeout,
                char *err, size_t errlen);

/* The CURVE variant: an XPUB made a CURVE server with srv's key (ZAP domain
 * "alerts") and bound; subscriptions are read on srv's loop and admitted
 * by key. */
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

/* Closes the socket (zsock_close): the plain PUB at once, the gated XPUB
 * once the loop has closed its handles. Publishing after it fails (counted
 * in send_errors). */
void alerts_stop(alerts_t *al);

/* Gives a->seq the next sequence number of a->cluster, encodes and sends it.
 * Returns 0, 1 if hold_cb held a reminder back (nothing sent, no seq), or -1
 * (logged and counted; the alert is lost for subscribers, not for state). */
int alerts_publish(alerts_t *al, proto_alert_t *a);

/* Publishes one heartbeat per cluster of cfg, on "alert.<cluster>.heartbeat",
 * carrying that cluster's last sequence number (from the cron, once a
 * second), so a subscriber that lost a cluster's latest alerts notices. */
/* Publishes the held alerts, in order (each with its callbacks). */
void alerts_release(alerts_t *al);

void alerts_heartbeat(alerts_t *al, const config_t *cfg, int64_t now_ms);

/* Frees what alerts_init made; closes the socket if alerts_stop did not
 * (a plain PUB: tests without a loop). The gated XPUB's close must have
 * completed by then. */
void alerts_close(alerts_t *al);

#endif
