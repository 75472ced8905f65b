/*
 * upstream.h -- a city daemon's forwarder to its province daemon (README
 * "Province deployment"), configured by [upstream].
 *
 * It forwards what this daemon has applied, read back from its own WAL with
 * waltail (waltail.h) after the WAL has made it durable: each WAL record
 * holding an applied batch becomes one ordinary protocol batch (the samples
 * the city applied, of the metrics chosen by upstream.metrics), in a stream
 * of the forwarder's own -- agent id upstream.agent_id, an epoch chosen once,
 * seqs 1, 2, 3 ... -- delivered by the agents' delivery engine
 * (agents/delivery.h) with its window, resends and failover. The province
 * takes that stream like any agent's: its sequence discipline (streams.h)
 * applies each seq exactly once.
 *
 * Exactly once across kills of either side: the cursor file holds the WAL
 * position and the seq the next forwarded record gets, in one atomic write,
 * and it advances only over batches the province has settled. Because one
 * forwardable record is always one batch, a restart re-reads the records
 * after the cursor and gives them the very seqs they had: those the province
 * had already applied are answered as duplicates, the rest are applied.
 * Samples the province refuses (an unknown firm, a firm not of this city)
 * settle their seq like any partial answer: they are counted and logged
 * with the firm, and the stream goes on.
 *
 * Runs on the loop: a timer steps the engine without waiting (ZeroMQ polls
 * with timeout 0) and reads the WAL (blocking file reads, as the WAL's own
 * appends). The committed segment is held against WAL trimming
 * (server_wal_hold).
 */
#ifndef CLUSTERMON_UPSTREAM_H
#define CLUSTERMON_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agents/clientkey.h"
#include "agents/delivery.h"
#include "daemon/metrics.h"
#include "daemon/waltail.h"

struct server;

#define UPSTREAM_QUEUE 128 /* batches read ahead of the committed position */

/* One forwardable WAL record, encoded as its batch. */
typedef struct {
    uint64_t seq;
    void *msg; /* owned: the encoded batch */
    size_t len;
    uint32_t nsamples;
    waltail_pos_t end; /* the WAL position after it (and after any record skipped behind it) */
    bool settled;
} upstream_batch_t;

typedef struct {
    struct server *srv;
    bool on;
    uv_timer_t timer;
    waltail_t *tail; /* owned */
    delivery_t *dl;  /* owned; NULL while the engine is down (backing off) */
    clientkey_t key;
    bool curve;
    char **endpoints; /* owned */
    size_t nendpoints;
    char *agent_id, *city, *cursor_path; /* owned copies: a reload does not move them */
    char **metrics;                      /* owned: the metrics forwarded; NULL = all */
    size_t nmetrics;
    long timeout_ms, window; /* [upstream] as it was at start */
    uint64_t epoch;
    uint64_t next_seq;                  /* the seq the next forwardable record gets */
    upstream_batch_t q[UPSTREAM_QUEUE]; /* read, not yet committed, in seq order */
    size_t qn;
    waltail_pos_t idle_end; /* skipped records read while q was empty: commit up to here */
    bool idle_dirty;
    proto_sample_t *in, *out; /* PROTO_MAX_SAMPLES each */
    int64_t reopen_ms, backoff_ms, last_commit_ms, last_error_ms;
    bool stuck; /* the WAL could not be read on: see last_error */
    char last_error[512];
    /* figures (/metrics) */
    uint64_t batches_acked, samples_acked, samples_refused, batches_refused, records_skipped;
    uint64_t engine_restarts;
    int64_t last_ack_wall_ms;
} upstream_t;

/* Starts the forwarder if cfg has [upstream]: makes its state directory,
 * opens the cursor, registers the WAL hold, starts the timer. Call after the
 * WAL is open. Returns 0 (also when off), or -1 with the reason in err. */
int upstream_start(upstream_t *u, struct server *srv, char *err, size_t errlen);

/* Commits what is settled, closes the engine and the timer (its close
 * callback is the loop's: server.c closes it with the other handles). */
void upstream_stop(upstream_t *u);

/* Frees what upstream_start made (after the loop ran out). */
void upstream_free(upstream_t *u);

/*
 * Turns one WAL record into the batch it forwards, as seq u->next_seq of
 * stream (u->agent_id, u->epoch): the applied samples of an applied batch
 * (RECORD_BATCH whole, RECORD_PARTIAL but for the samples the city refused),
 * of the forwarded metrics (u->metrics, NULL = all), unchanged -- a
 * restatement stays one. Returns 1 with the batch appended to sb and its
 * sample count in *ret_n, 0 if the record forwards nothing (another kind of
 * record, or no sample left), -1 if it cannot be read (logged). Uses u->in
 * and u->out as scratch.
 */
int upstream_convert(upstream_t *u, const void *record, size_t len, msgpack_sbuffer *sb,
                     uint32_t *ret_n);

/* Appends the forwarder's figures (a city) and the per-city stream figures
 * (a province: streams whose agent id is a city of the registry) to out. */
void upstream_metrics(const struct server *srv, metrics_text_t *out);

#endif
