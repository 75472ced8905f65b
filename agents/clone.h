/*
 * clone.h -- a subscriber's copy of the daemon's firing alerts, kept right
 * with the ZeroMQ guide's Clone pattern: subscribe first, then take a
 * snapshot over the control socket ("alerts": every firing alert and, per
 * cluster, the sequence number it is current to), then apply only updates
 * newer than their cluster's. Sequence numbers count per cluster: a jump in
 * one cluster's (a slow subscriber dropped at the high-water mark), or that
 * cluster's heartbeat announcing a higher one, means updates were lost: take
 * a new snapshot. A subscriber that sees only some clusters (a CURVE key
 * limited to them) never hears of the others, so it sees no false gaps.
 *
 * An entry's state is the alert's condition, `firing` or `flapping`, the
 * same in a snapshot and in the stream: a `revised` message updates the
 * entry's seq and leaves it `firing`. Its seq is that of the last message
 * published about it (whatever that message's state).
 */
#ifndef CLUSTERMON_CLONE_H
#define CLUSTERMON_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agents/clientkey.h"
#include "proto/proto.h"

typedef struct {
    char *id;
    int state;    /* proto_alert_state_t: firing or flapping */
    uint64_t seq; /* its cluster's seq of the last message about it */
} clone_entry_t;

/* One cluster's last sequence number applied. */
typedef struct {
    char cluster[PROTO_MAX_ID_LEN + 1];
    uint64_t seq;
} clone_seq_t;

typedef struct {
    clone_entry_t *items; /* the firing set; owned */
    size_t n, cap;
    clone_seq_t *seqs; /* every cluster heard of (snapshot, alert, heartbeat); owned */
    size_t nseqs, seqs_cap;
    bool synced;        /* a snapshot was taken: a cluster it did not list starts at 0 */
    uint64_t gaps;      /* gaps detected */
    uint64_t snapshots; /* snapshots taken */
} clone_t;

void clone_init(clone_t *c);
void clone_free(clone_t *c);

/* Applies one alert: resolved removes its id, any other state sets it
 * (revised as firing); its cluster's seq becomes the alert's if higher. */
void clone_apply(clone_t *c, const proto_alert_t *a);

/* Raises cluster's seq to seq without changing the set (a grouped alert,
 * whose members the next snapshot brings). */
void clone_advance(clone_t *c, proto_str_t cluster, uint64_t seq);

/* The last seq applied in cluster: 0 if unknown. */
uint64_t clone_seq(const clone_t *c, proto_str_t cluster);

/* What an update of cluster with sequence number seq means for the copy.
 * Before any snapshot, the first update of a cluster is applied as is. */
typedef enum { CLONE_APPLY, CLONE_OLD, CLONE_GAP } clone_verdict_t;
clone_verdict_t clone_check(const clone_t *c, proto_str_t cluster, uint64_t seq);

/* Whether cluster's heartbeat announcing seq shows lost updates (it is
 * higher than the last applied). A cluster first heard of this way is
 * remembered with the seq it had. */
bool clone_heartbeat(clone_t *c, proto_str_t cluster, uint64_t seq);

/* Called with each alert of a snapshot, for printing. */
typedef void (*clone_alert_cb)(const proto_alert_t *a, void *data);

/*
 * Requests the snapshot from the control endpoint (a fresh DEALER on ctx, a
 * CURVE client if key is on, waiting at most timeout_ms), replaces the copy
 * with it (its set and its per-cluster seqs) and calls cb per alert. key is
 * borrowed for the call; NULL means plain. Returns 0, or -1 with the reason
 * in err (the copy is unchanged).
 */
int clone_snapshot(clone_t *c, void *ctx, const char *endpoint, const clientkey_t *key,
                   int timeout_ms, clone_alert_cb cb, void *data, char *err, size_t errlen);

/* Whether id is in the firing set. */
bool clone_has(const clone_t *c, const char *id);

/* The copy as JSON: {"seqs": {cluster: N}, "firing": [{"id", "state",
 * "seq"}...]} (ids sorted). Caller owns the result (json_decref). */
json_t *clone_state_json(const clone_t *c);

/* Writes clone_state_json() to path atomically, mode 0600, fsynced
 * (proto/fileio.h). Returns 0 or -1 (errno). */
int clone_write_state(const clone_t *c, const char *path);

#endif
