/*
 * delivery.h -- one engine that delivers numbered batches to clustermond's
 * ingest socket, for every client that sends them (clustermon-agent and
 * clustermonctl import-baseline).
 *
 * The caller owns the batches: they are already encoded, with their stream
 * (epoch) and seq, and kept wherever the caller keeps them (the agent's
 * spool, import's memory). The engine asks for them in seq order through the
 * source callbacks, keeps up to `window` in flight on a ZeroMQ DEALER,
 * matches answers by seq and follows PROTOCOL.md section 2 for each: ok and
 * final refusals are handed back as settled; busy and rate_limited are resent
 * after an exponential backoff with jitter; out_of_order parks a batch until
 * the one the daemon waits for is settled; no answer within the timeout is
 * resent, failing over round-robin to the next endpoint on a new socket;
 * agent_conflict and unattributable refusals stop the engine. The engine has
 * no event loop: the caller calls delivery_step() with how long it may wait.
 *
 * Messages go to stderr prefixed with the program's name; with verbose, every
 * batch, resend and failover is reported.
 */
#ifndef CLUSTERMON_AGENTS_DELIVERY_H
#define CLUSTERMON_AGENTS_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents/clientkey.h"
#include "proto/proto.h"

/* Exit statuses the engine returns (the agent's, see clustermon-agent(1)). */
enum {
    DELIVERY_FAILED = 1,   /* a batch refused, a socket failure */
    DELIVERY_USAGE = 2,    /* an endpoint that does not parse */
    DELIVERY_NOACK = 3,    /* no answer after every try */
    DELIVERY_CONFLICT = 4, /* agent_conflict: the agent id is another agent's */
};

/* load() result: the batch's bytes are gone (a damaged spool file). */
#define DELIVERY_LOST (-1)

/* Where the batches come from and where their outcomes go. */
typedef struct {
    /* Sets *ret_seq to the oldest unsettled batch (first) or the next after
     * `after`; false if there is none now. */
    bool (*next)(void *arg, bool first, uint64_t after, uint64_t *ret_seq);
    /* The bytes of batch seq: 0 with *ret_msg malloc()ed (the engine owns it
     * then); DELIVERY_LOST if they are gone: the engine sends an empty batch
     * in their place, which settles the seq with nothing; else an exit status. */
    int (*load)(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len);
    /* seq is settled: ack->status is ok, partial (ack->refused lists the
     * samples not applied; borrowed for the call), a final refusal, or (forgotten) the
     * daemon settled it so long ago that it no longer knows how. lost: it was
     * a stand-in. Returns 0 to go on, or an exit status that stops the engine. */
    int (*settled)(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten, bool lost);
    /* Optional (NULL: the engine stops, as for any reset daemon). The daemon
     * expects `expected`, older than every batch in flight: its state was
     * reset to an earlier point (a side of an HA pair re-seeded from the
     * other). true: the source still holds every batch from expected on and
     * next(first) now starts there; the engine drops its window and refills
     * it. false: the engine stops (DELIVERY_FAILED). */
    bool (*rewind)(void *arg, uint64_t expected);
    void *arg;
} delivery_source_t;

typedef struct {
    char *const *endpoints; /* borrowed for the engine's life */
    size_t nendpoints;
    const clientkey_t *key; /* CURVE, or off */
    const char *agent_id;   /* for stand-ins of lost batches */
    uint64_t epoch;
    long timeout_ms; /* wait this long for an answer */
    long retries;    /* resends of an unanswered batch; 0 = forever */
    long window;     /* 1..PROTO_MAX_WINDOW */
    bool verbose;
    const char *prog; /* message prefix */
} delivery_opts_t;

typedef struct {
    uint64_t samples_acked, batches_acked, resends;
} delivery_stats_t;

typedef struct delivery delivery_t;

/*
 * Checks every endpoint, connects to the first and returns the engine in
 * *ret (the caller owns it: delivery_close()). zctx is borrowed. opts and
 * src are copied; the strings they point to are borrowed. Returns 0 or an
 * exit status (the reason said on stderr).
 */
int delivery_open(void *zctx, const delivery_opts_t *opts, const delivery_source_t *src,
                  delivery_t **ret);

/*
 * Fills the window from the source, waits up to wait_ms (< 0: until the next
 * deadline) for answers, handles them and every deadline that passed.
 * Returns 0 or an exit status (the engine is then done: close it).
 */
int delivery_step(delivery_t *d, long wait_ms);

/*
 * For a caller that drives several engines from one zmq_poll (an HA pair):
 * the socket to poll for ZMQ_POLLIN (borrowed; it changes on a failover, so
 * ask again before each poll), and the ms until the engine's next deadline
 * (-1: none). Then delivery_step(d, 0) handles what arrived.
 */
void *delivery_socket(const delivery_t *d);
long delivery_wait_ms(const delivery_t *d);

/* Batches in flight (sent, backing off or parked). */
size_t delivery_inflight(const delivery_t *d);

/* The endpoint in use, for messages. */
const char *delivery_endpoint(const delivery_t *d);

const delivery_stats_t *delivery_stats(const delivery_t *d);

/* Closes the socket, frees what is in flight, sets *d to NULL. */
void delivery_close(delivery_t **d);

#endif
