/*
 * ingest.h -- the ingest socket: agents' batches in, acks and nacks out.
 *
 * A ROUTER socket. Each message is [identity][batch] from a DEALER, or
 * [identity][""][batch] from a REQ; the reply mirrors the shape. A batch is
 * decoded, every sample resolved (firm and metric names -> indexes, period
 * -> calendar), and only then applied: a batch is all or nothing, so a nack
 * never leaves half a batch behind. Buffers for the samples are allocated
 * once, at start.
 */
#ifndef CLUSTERMON_INGEST_H
#define CLUSTERMON_INGEST_H

#include <stdint.h>

#include "daemon/zpoll.h"
#include "proto/proto.h"

struct server;

/* A sample after resolution: everything the apply step needs, no strings. */
typedef struct {
    int firm, metric;
    proto_period_t period;  /* a month for readings and timestamped amounts */
    int64_t milli;          /* period metrics */
    double value;           /* readings */
    int64_t ts_ms;
} ingest_resolved_t;

/* The last batch applied per agent, so a resend is acked but not applied twice. */
typedef struct {
    char *agent;
    uint64_t seq;
    uint32_t accepted;
} ingest_agent_t;

#define INGEST_MAX_AGENTS 65536

typedef struct {
    struct server *srv;
    void *sock;                   /* owned */
    zpoll_t zp;
    proto_sample_t *samples;      /* PROTO_MAX_SAMPLES */
    ingest_resolved_t *resolved;  /* PROTO_MAX_SAMPLES */
    msgpack_sbuffer out;          /* reused reply buffer */
    ingest_agent_t *agents;       /* open addressing on agent id */
    size_t agents_mask, nagents;
    /* nack logging is throttled: a hostile peer must not flood the journal */
    int64_t log_window_ms;
    unsigned log_in_window;
    uint64_t log_suppressed;
    void (*on_closed)(struct server *);
} ingest_t;

/* Binds the ROUTER on endpoint and starts reading. Returns 0 or -1 (err). */
int ingest_start(ingest_t *in, struct server *srv, const char *endpoint, char *err, size_t errlen);

/* Stops reading; on_closed(srv) runs once the loop handles are closed and the socket is. */
void ingest_close(ingest_t *in, void (*on_closed)(struct server *));

#endif
