/*
 * metrics.h -- what the daemon measures about itself, and the Prometheus
 * text exposition of it and of the cluster figures.
 *
 * Measuring (metrics_t, owned by the server): samples per second over the
 * last ten seconds, the event loop's lag (how late the cron timer fires),
 * and how many peers are connected to each ZeroMQ socket, counted from
 * zmq_socket_monitor events read through zpoll like any other socket.
 *
 * Exposing (metrics_render): a pure function of the server state, so a test
 * can render a built state without a loop; http.c calls it per scrape.
 *
 * The counters `status` shows too are rows of one table (metrics_counter):
 * a counter added there shows in both, read the same way.
 */
#ifndef CLUSTERMON_METRICS_H
#define CLUSTERMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/log.h"
#include "daemon/zpoll.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_RATE_SLOTS 11 /* one a second: a ten-second window */
#define METRICS_LAG_WINDOW_MS 10000

struct server;

/* A growable text buffer. Zero-initialise; free with metrics_text_free. */
typedef struct {
    char *data;
    size_t len, cap;
} metrics_text_t;

void metrics_text_printf(metrics_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_text_free(metrics_text_t *t);

typedef enum {
    METRICS_SOCK_INGEST = 0,
    METRICS_SOCK_ALERTS,
    METRICS_SOCK_CONTROL,
    METRICS_NSOCKS
} metrics_sock_t;

typedef struct {
    struct metrics *m;
    void *sock; /* PAIR connected to the socket's monitor (owned) */
    zpoll_t zp;
    bool watching;                 /* zp started, so it must be closed */
    int64_t peers;                 /* connections open now */
    uint64_t accepted;             /* connections accepted since start */
    uint64_t handshakes_failed;    /* ZMTP handshakes that failed before ZAP: a client
                                   without CURVE, a wrong server key, garbage */
    uint64_t handshakes_abandoned; /* the peer left mid-handshake (a probe, a give-up) */
    uint64_t disconnects;          /* connections closed: by the peer, or by ZeroMQ for
                             a frame over ZMQ_MAXMSGSIZE (it says not which) */
} metrics_peers_t;

typedef struct metrics {
    struct server *srv;
    metrics_peers_t peers[METRICS_NSOCKS];
    int closing_polls;            /* zpolls still closing */
    log_throttle_t handshake_log; /* failed handshakes (warnings) */
    log_throttle_t abandon_log;   /* abandoned ones (info): apart, so probes never hide a failure */
    log_throttle_t disconnect_log;
    /* samples/s: (loop time, samples_applied) once a second, a ring */
    int64_t rate_ms[METRICS_RATE_SLOTS];
    uint64_t rate_samples[METRICS_RATE_SLOTS];
    unsigned rate_head, rate_n;
    /* loop lag */
    int64_t last_tick_ms;
    int64_t lag_ms;      /* worst in the current window */
    int64_t lag_prev_ms; /* worst in the previous complete window */
    int64_t lag_window_start;
} metrics_t;

/*
 * The daemon's counters that `status` and /metrics both show, one row each:
 * where status puts it (section, key), the Prometheus family and label it
 * is a sample of, and how to read it from the server. A row with no family
 * is status's only; one with no section is /metrics' only. status packs the
 * rows of a section in table order; /metrics renders each family's rows
 * together, in the order the families first appear.
 */
typedef enum { METRICS_U64, METRICS_I64, METRICS_BOOL } metrics_kind_t;

typedef struct {
    const char *section; /* status: the map it is in, "" the top level; NULL: none */
    const char *key;     /* status: its key */
    const char *family;  /* /metrics: the family, or NULL */
    const char *type;    /* "counter" or "gauge", on the family's first row; NULL on the rest */
    const char *help;    /* the family's help, likewise */
    const char *label, *label_value; /* one label, or NULL */
    metrics_kind_t kind;
    unsigned scale; /* /metrics shows the value divided by it (ms -> s: 1000); 0: as is */
    uint64_t (*get)(const struct server *srv); /* METRICS_I64: an int64_t, cast */
} metrics_counter_t;

/* Row i of the table, or NULL past the end. */
const metrics_counter_t *metrics_counter(size_t i);

/* How many rows status shows in section. */
size_t metrics_counters_in(const char *section);

/* Handshakes failed on all sockets (before ZAP: a client without CURVE, a
 * wrong server key). */
uint64_t metrics_handshakes_failed(const metrics_t *m);

/* Names of the sockets, as in status and labels: "ingest", "alerts", "control". */
const char *metrics_sock_name(metrics_sock_t s);

/*
 * Starts counting peers on the server's ZeroMQ sockets (which must be open).
 * A socket that cannot be monitored is logged and left uncounted. Returns 0,
 * or -1 with the reason in err if a socket or handle cannot be made (the
 * caller still calls metrics_close). On the loop's thread.
 */
int metrics_start(metrics_t *m, struct server *srv, char *err, size_t errlen);

/* Called from the server's cron timer on every tick: rates and loop lag. */
void metrics_tick(metrics_t *m, int64_t now_ms, uint64_t interval_ms);

/* Starts closing the monitors (a no-op for those already closing). No
 * callback, as http_close: each monitor socket is closed in its zpoll's
 * close callback, so all are closed when the loop runs out. Safe on an m
 * that metrics_start failed on, or never ran on (all zero). */
void metrics_close(metrics_t *m);

/* Samples applied per second over the last ten seconds. */
double metrics_samples_per_s(const metrics_t *m);

/* The worst loop lag in the last complete ten-second window, in ms. */
int64_t metrics_loop_lag_ms(const metrics_t *m);

/* Firms of the registry that sent anything for year. */
uint32_t metrics_firms_reporting(const struct server *srv, int year);

/*
 * Appends the whole Prometheus text exposition for the server's state at
 * now_ms to out: self metrics and the cluster figures of now's year, the
 * previous year and each month of now's year so far. Reads srv only; any
 * time on the loop's thread (or in a test, on a server that never ran).
 */
void metrics_render(const struct server *srv, int64_t now_ms, metrics_text_t *out);

/* Appends s to out as a Prometheus label value (\\, \" and \n escaped). */
void metrics_label_escape(metrics_text_t *out, const char *s);

#endif
