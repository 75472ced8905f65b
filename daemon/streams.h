/*
 * streams.h -- the sequence discipline: which batches of which agent stream
 * are settled, so that an "ok" always means "applied, exactly once".
 *
 * A stream is one run of an agent's batches: (key, agent id, epoch). The key
 * is the connection's CURVE public key ("" without CURVE), so one key can
 * never spend another's seq space; the epoch is chosen by the agent when it
 * starts a stream (a new spool) and kept across its restarts. Within a
 * stream seqs are contiguous from 1. The daemon settles them strictly in
 * order: seq N is taken (applied, or refused for good) only once N - 1 is
 * settled, so "every seq below next is settled" holds and a seq that arrives
 * early is answered out_of_order, never swallowed. The outcome of the last
 * PROTO_MAX_WINDOW settled seqs is kept, so a resend inside the window gets
 * exactly the answer the first copy got.
 *
 * One stream owns an agent id (per key) at a time. Another epoch on the same
 * id is refused (agent_conflict) while the owner is live -- it sent a batch
 * within the lease -- and may take the id over only from seq 1 once the owner
 * has been idle for the lease. A superseded epoch is refused for good, like
 * Kafka's fenced producer. The whole table is pure state: no sockets, no
 * clock of its own (callers pass the loop time), so it is unit-tested alone.
 */
#ifndef CLUSTERMON_STREAMS_H
#define CLUSTERMON_STREAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/proto.h"

/* What became of one settled seq. */
typedef struct {
    uint8_t status;    /* proto_status_t: ok, partial, or the final nack */
    uint32_t accepted; /* samples applied (ok, partial) */
    uint32_t nrefused; /* partial: the samples refused, */
    uint32_t *refused; /* owned: index << 8 | status each (judge_pack_refusal) */
} stream_outcome_t;

typedef struct {
    char *key;              /* owned: Z85 public key, "" without CURVE; NULL = free slot */
    char *agent;            /* owned */
    uint64_t epoch;         /* 0: no stream has claimed the id yet */
    uint64_t prev_epoch;    /* the epoch this one took the id from: fenced */
    uint64_t next;          /* the next seq to settle: every seq below it is settled */
    stream_outcome_t *ring; /* owned, PROTO_MAX_WINDOW entries once the id is claimed (NULL
                             * before): seq s (next - W <= s < next) at s % W. Apart, so
                             * the table's slots stay small. */
    int64_t last_ms;        /* loop time of the owner's last batch (liveness) */
    int64_t since_wall_ms;  /* wall clock when this epoch claimed the id */
} stream_t;

typedef enum {
    STREAM_TAKE,       /* seq is next (or seq 1 of a stream claiming a free id): settle it */
    STREAM_DUPLICATE,  /* settled already: answer with *ret_outcome */
    STREAM_GAP,        /* an earlier seq is missing: out_of_order, expected = next */
    STREAM_FORGOTTEN,  /* settled longer ago than the window: out_of_order, expected = next */
    STREAM_CONFLICT,   /* the owner epoch is live: agent_conflict */
    STREAM_SUPERSEDED, /* another epoch owns the id and this one cannot take it: agent_conflict */
} stream_verdict_t;

typedef struct {
    stream_t *slots; /* open addressing on (key, agent) */
    size_t mask, count;
    int64_t lease_ms; /* how long an idle owner still counts as live */
} streams_t;

#define STREAMS_MAX 65536

void streams_init(streams_t *t, int64_t lease_ms);
void streams_free(streams_t *t);

/* The stream slot for (key, agent), created unclaimed if new; NULL if the
 * table is full. Borrowed until the next streams_get or streams_free. */
stream_t *streams_get(streams_t *t, const char *key, proto_str_t agent);

/*
 * Decides what to do with batch (epoch, seq) on stream s at loop time now.
 * Pure: changes nothing (streams_settle does). *ret_outcome is set for
 * STREAM_DUPLICATE.
 */
stream_verdict_t streams_check(const streams_t *t, const stream_t *s, uint64_t epoch, uint64_t seq,
                               int64_t now, const stream_outcome_t **ret_outcome);

/*
 * Records seq of epoch as settled with status/accepted (after a STREAM_TAKE
 * verdict, or in WAL replay). A different epoch takes the stream over from
 * seq 1. now is the loop time (liveness), wall_ms the clock (for messages).
 */
void streams_settle(streams_t *t, stream_t *s, uint64_t epoch, uint64_t seq, uint8_t status,
                    uint32_t accepted, int64_t now, int64_t wall_ms);

/* The same for a partial answer: refused (nrefused entries, index << 8 |
 * status each) is copied, so that a resend gets the same list. */
void streams_settle_refused(streams_t *t, stream_t *s, uint64_t epoch, uint64_t seq, uint8_t status,
                            uint32_t accepted, const uint32_t *refused, uint32_t nrefused,
                            int64_t now, int64_t wall_ms);

/* Marks the owner live at now (any batch of its epoch, even a duplicate). */
void streams_touch(stream_t *s, int64_t now);

/* Every known stream counts as live for one lease from now: used after a
 * restart, when the daemon cannot know which agents were sending. */
void streams_all_live(streams_t *t, int64_t now);

/* Writes the table as one msgpack array (the snapshot's "streams"). */
void streams_pack(const streams_t *t, msgpack_packer *pk);

/* Reads an array written by streams_pack into t (apply = false: checks
 * only). Returns 0, or -1 with the reason in err. */
int streams_unpack(streams_t *t, const msgpack_object *o, bool apply, int64_t now, char *err,
                   size_t errlen);

#endif
