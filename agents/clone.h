/*
 * clone.h -- a subscriber's copy of the daemon's firing alerts, kept right
 * with the ZeroMQ guide's Clone pattern: subscribe first, then take a
 * snapshot over the control socket ("alerts": every firing alert and the
 * sequence number it is current to), then apply only updates newer than it.
 * A jump in the sequence numbers means updates were lost (a slow subscriber
 * dropped at the high-water mark): take a new snapshot.
 */
#ifndef CLUSTERMON_CLONE_H
#define CLUSTERMON_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents/clientkey.h"
#include "proto/proto.h"

typedef struct {
    char *id;
    int state;       /* proto_alert_state_t: firing, revised or flapping */
    uint64_t seq;
} clone_entry_t;

typedef struct {
    clone_entry_t *items;  /* the firing set; owned */
    size_t n, cap;
    uint64_t seq;          /* the last sequence number applied (0 = none yet) */
    uint64_t gaps;         /* gaps detected */
    uint64_t snapshots;    /* snapshots taken */
} clone_t;

void clone_init(clone_t *c);
void clone_free(clone_t *c);

/* Applies one alert: resolved removes its id, any other state sets it. */
void clone_apply(clone_t *c, const proto_alert_t *a);

/* What an update with sequence number seq means for the copy. */
typedef enum { CLONE_APPLY, CLONE_OLD, CLONE_GAP } clone_verdict_t;
clone_verdict_t clone_check(const clone_t *c, uint64_t seq);

/* Called with each alert of a snapshot, for printing. */
typedef void (*clone_alert_cb)(const proto_alert_t *a, void *data);

/*
 * Requests the snapshot from the control endpoint (a fresh DEALER on ctx, a
 * CURVE client if key is on, waiting at most timeout_ms), replaces the copy
 * with it and calls cb per alert. key is borrowed for the call; NULL means
 * plain. Returns 0, or -1 with the reason in err (the copy is unchanged).
 */
int clone_snapshot(clone_t *c, void *ctx, const char *endpoint, const clientkey_t *key, int timeout_ms,
                   clone_alert_cb cb, void *data, char *err, size_t errlen);

/* Writes {"seq": N, "firing": [{"id", "state", "seq"}...]} (ids sorted) to
 * path atomically (temp file + rename). Returns 0 or -1 (errno). */
int clone_write_state(const clone_t *c, const char *path);

#endif
