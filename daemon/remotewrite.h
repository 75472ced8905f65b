/*
 * remotewrite.h -- Prometheus remote-write from the daemon's own WAL
 * (README "Long-term history in Prometheus"), configured by [remote_write].
 *
 * It reads what the daemon applied back from its WAL with waltail
 * (waltail.h), from a durable position, and sends each applied sample of
 * the chosen metrics to a remote-write 1.0 receiver (Prometheus with
 * --web.enable-remote-write-receiver, VictoriaMetrics, Mimir, Thanos
 * receive): protobuf WriteRequests (rwencode.h), snappy-compressed, POSTed
 * by a small HTTP/1.1 client on the loop (non-blocking connect, write and
 * read; the response parsed with http-parser).
 *
 * Series: one per firm x metric (x period kind for amounts), labelled
 * firm, cluster, chain, metric (and period = month | quarter | year; city
 * where the registry has a city column, as a province's has). An
 * amount's sample is at its period's start (00:00 UTC of the first day); a
 * reading's at its own timestamp. A restatement (the same firm, metric and
 * period sent again: the daemon's figure is replaced) cannot overwrite a
 * sample in Prometheus's TSDB -- a second value at the same timestamp is
 * refused as a duplicate -- so the N-th statement of a period is sent at
 * the period's start + N ms (N = 0, 1, 2 ...): the latest statement is the
 * series' value at start + 1 s and later, and equals the daemon's figure.
 * The counts N live in a revisions file written with the cursor, so a
 * restart resends exactly the same samples, which the TSDB takes as
 * identical duplicates.
 *
 * Delivery: one request in flight. 2xx: the samples are in; once a whole
 * batch (whole WAL records) is in, the revisions and then the cursor are
 * made durable (and the WAL holder moves). 5xx, 429, a connection error or
 * no answer within timeout_ms: the same request again after a backoff
 * (100 ms doubling to 30 s). Other 4xx: Prometheus refuses a whole request
 * for one bad sample, so the request is split in halves until the refused
 * sample is alone; that one is logged naming its series and counted, and
 * the others are sent.
 */
#ifndef CLUSTERMON_REMOTEWRITE_H
#define CLUSTERMON_REMOTEWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "daemon/metrics.h"
#include "daemon/rwencode.h"
#include "daemon/waltail.h"

struct server;

typedef struct {
    char *key; /* "firm\x1fmetric\x1fperiod", owned; NULL = empty slot */
    uint32_t count;
} rw_rev_t;

typedef enum { RW_IDLE, RW_RESOLVING, RW_CONNECTING, RW_SENDING, RW_CLOSING } rw_state_t;

typedef struct {
    struct server *srv;
    bool on, stopping;
    uv_timer_t timer; /* the tick: reads the WAL, starts requests, watches the deadline */
    waltail_t *tail;  /* owned */
    char *cursor_path, *rev_path, *auth;
    rw_url_t url;
    proto_sample_t *in; /* PROTO_MAX_SAMPLES: a decoded WAL record */
    rw_sample_t *batch; /* what the next commit covers, owned */
    size_t n, cap, batch_max;
    waltail_pos_t batch_end;
    struct {
        size_t lo, hi;
    } stack[64]; /* ranges of batch still to send; the top one is in flight */
    size_t nstack;
    rw_rev_t *revs; /* open addressing on key */
    size_t nrevs, mask;
    /* the request in flight */
    rw_state_t state;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wreq;
    char *req;
    size_t reqlen;
    http_parser parser;
    bool complete;
    char body[512];
    char rbuf[4096]; /* the answer as read */
    size_t bodylen;
    char error[256]; /* why the request failed, "" = it did not */
    int64_t deadline_ms, retry_at_ms, backoff_ms, idle_commit_ms;
    int64_t behind_since_ms; /* when it last stopped being caught up; 0 = caught up */
    bool stuck;
    /* figures (/metrics) */
    uint64_t samples_sent, samples_refused, requests, retries, skipped_at_start;
} remotewrite_t;

/* Starts the forwarder if [remote_write] is configured (else does nothing).
 * Returns 0, or -1 with err (the cursor or revisions file cannot be read). */
int remotewrite_start(remotewrite_t *rw, struct server *srv, char *err, size_t errlen);
/* Closes its handles (at shutdown, before the loop's last run). */
void remotewrite_stop(remotewrite_t *rw);
/* Frees what it owns, after the loop has closed its handles. */
void remotewrite_free(remotewrite_t *rw);
/* Its figures for /metrics. */
void remotewrite_metrics(const struct server *srv, metrics_text_t *o);

#endif
