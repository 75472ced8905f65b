/*
 * handoff.h -- clustermon-sub --exec's bookkeeping: which alert events the
 * command has taken (exited 0), which wait for it or for a retry, and what a
 * snapshot reveals that it was never given. At least once, never twice:
 *
 * - An event is *delivered* only once the command exits 0 for it; then its
 *   alert id's record (cluster, state, seq, and the JSON the command got)
 *   replaces the previous one, or is dropped for a resolved event. Until
 *   then it is *pending*, in arrival order. Both are saved in the state file
 *   (handoff_save), so a restart re-runs exactly the pending events.
 * - A failed run is retried after delay * 2^(failures - 1), at most
 *   max_delay, up to `retries` times; then the event is *given up*: it is
 *   recorded as if delivered (so no restart retries it forever) and counted.
 * - Events of one alert id run one at a time, in order: a later one waits
 *   while an earlier one runs or waits for its retry. Other ids go on.
 * - A snapshot (at start, or after a gap) is compared with what is known:
 *   an alert newer than the subscriber's floor for its cluster (the seq it
 *   had processed before the snapshot) that is neither delivered nor
 *   pending at that seq is queued, marked "snapshot": true; an id known as
 *   firing (delivered or pending) that the snapshot no longer holds has
 *   resolved meanwhile: a resolved event is synthesized from the last JSON
 *   known for it (see handoff_snapshot_end for what it can and cannot say).
 *
 * Pure bookkeeping: no processes, no sockets, no clock (the caller passes
 * the time), so tests/check_handoff.c tables it. Single-threaded.
 */
#ifndef CLUSTERMON_AGENTS_DELIVERY_H
#define CLUSTERMON_AGENTS_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agents/clone.h"
#include "proto/proto.h"

/* What is known of one alert id: delivered, or last queued. */
typedef struct {
    char *id; /* owned */
    char cluster[PROTO_MAX_ID_LEN + 1];
    int state;     /* proto_alert_state_t */
    uint64_t seq;  /* the cluster's seq it stands at */
    json_t *alert; /* the JSON the command got; owned */
} handoff_record_t;

/* One event for the command. */
typedef struct {
    handoff_record_t r;
    uint64_t tag;          /* unique in this run: execq's job tag */
    unsigned failures;     /* failed runs so far */
    int64_t not_before_ms; /* retry backoff */
    bool running;
} handoff_event_t;

typedef struct {
    handoff_record_t *done; /* delivered (or given up), per id; owned */
    size_t ndone, done_cap;
    handoff_event_t *queue; /* pending, in arrival order; owned */
    size_t nqueue, queue_cap;
    clone_seq_t *floor; /* per cluster: seq processed, from the state file */
    size_t nfloor;
    uint64_t next_tag;
    unsigned retries;
    int64_t delay_ms, max_delay_ms;
    /* counters for the exit summary */
    uint64_t delivered, failures, given_up, from_snapshot, synthesized;
} handoff_t;

void handoff_init(handoff_t *d, unsigned retries, int64_t delay_ms, int64_t max_delay_ms);
void handoff_free(handoff_t *d);

/*
 * Takes the "seqs", "delivered" and "pending" members of a state file's
 * root object (each optional: a file written without --exec has only
 * "seqs" and "firing"). Returns 0, or -1 with the offending field in err
 * ("delivered.energy-env.cod-limit:ee-024.seq: not a positive integer");
 * then d is unchanged. root is borrowed.
 */
int handoff_load(handoff_t *d, const json_t *root, char *err, size_t errlen);

/* Adds "delivered" ({cluster: {id: {"state", "seq", "alert"}}}) and
 * "pending" ([{"id", "cluster", "state", "seq", "failures", "alert"}], in
 * order) to root. */
void handoff_save(const handoff_t *d, json_t *root);

/* The floor loaded for cluster ("seqs" of the state file): 0 if none. */
uint64_t handoff_floor(const handoff_t *d, const char *cluster);

/* Forgets the loaded floor of cluster (the daemon's seq went back). */
void handoff_floor_reset(handoff_t *d, const char *cluster);

/* Queues a live event. Takes ownership of alert (the JSON for the command). */
void handoff_live(handoff_t *d, const proto_alert_t *a, json_t *alert);

/*
 * A snapshot's alert a (state firing or flapping): queues it (alert gets
 * "snapshot": true) if a->seq > floor and the id is neither delivered nor
 * pending at a->seq or later. Returns true if queued. Takes ownership of
 * alert either way.
 */
bool handoff_snapshot_alert(handoff_t *d, const proto_alert_t *a, uint64_t floor, json_t *alert);

/*
 * A snapshot's alert that a grouped alert already stands for (published
 * inside it, with its seq): recorded as delivered with the group, never run
 * on its own. Takes ownership of alert.
 */
void handoff_covered(handoff_t *d, const proto_alert_t *a, json_t *alert);

/* Decides whether a synthesized event is wanted (the filters); NULL: all. */
typedef bool (*handoff_keep_cb)(const json_t *alert, void *data);

/*
 * After a snapshot fresh (the copy just replaced): every id last known as
 * firing or flapping, of a cluster the snapshot lists, that fresh no longer
 * holds, resolved while the subscriber could not see it. A resolved event
 * is queued for it: the last JSON known for it with "state": "resolved",
 * "snapshot": true, "synthesized": true, and "seq", "ts", "ts_ms",
 * "observed" null (when and at which value it resolved is unknown), without
 * "details", "reminder" and "count". If group_rule is given (a resolved
 * grouped alert of that rule and cluster set this snapshot off), its ids
 * are recorded resolved instead: the group told of them. Returns how many
 * events were queued.
 */
size_t handoff_snapshot_end(handoff_t *d, const clone_t *fresh, const char *group_cluster,
                            const char *group_rule, handoff_keep_cb keep, void *data);

/*
 * The next event that may run at now_ms: the first pending one that is not
 * running, whose backoff is over, and with no earlier pending event of its
 * id. It is marked running. Borrowed until handoff_done() for its tag.
 */
const handoff_event_t *handoff_next(handoff_t *d, int64_t now_ms);

/* How long until a waiting event may run: 0 now, -1 none waits (only
 * running ones, or nothing). */
int64_t handoff_wait_ms(const handoff_t *d, int64_t now_ms);

typedef enum { HANDOFF_OK, HANDOFF_RETRY, HANDOFF_GAVE_UP, HANDOFF_UNKNOWN } handoff_outcome_t;

/*
 * The run of tag ended. ok: delivered, recorded, removed from the queue.
 * Not ok: counted; retried after the backoff (ret_delay_ms says when) or,
 * after `retries` retries, given up (recorded, removed). The event's id
 * is copied into ret_id (idlen bytes; may be NULL) and its failure count
 * into ret_failures (may be NULL), for the log. HANDOFF_UNKNOWN: no such
 * tag.
 */
handoff_outcome_t handoff_done(handoff_t *d, uint64_t tag, bool ok, int64_t now_ms,
                               int64_t *ret_delay_ms, char *ret_id, size_t idlen,
                               unsigned *ret_failures);

/* Pending events (running or waiting). */
size_t handoff_pending(const handoff_t *d);

#endif
