/*
 * metrics.h -- what the daemon measures about itself, and the Prometheus
 * text exposition of it and of the cluster figures.
 *
 * Measuring (metrics_t, owned by the server): samples per second over the
 * last ten seconds, the event loop's lag (how late the cron timer fires),
 * and how many peers are connected to each ZeroMQ socket, counted from
 * zmq_socket_monitor events read through zpoll like any other socket.
 *
 * Collecting (metrics_collect): one function reads everything /metrics
 * shows out of the server -- these figures, the other modules' counters and
 * the cluster sums -- into a metrics_collected_t, a plain struct of numbers
 * and borrowed names. Rendering (daemon/exposition.h) turns that struct
 * into the Prometheus text format and reads nothing else, so the format is
 * tested from a struct filled by hand, and what is measured from a server
 * built by hand. metrics_render does both, per scrape (http.c).
 *
 * The counters `status` shows too are rows of one table (metrics_counter):
 * a counter added there shows in both, read the same way.
 */
#ifndef CLUSTERMON_METRICS_H
#define CLUSTERMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/judge.h"
#include "daemon/log.h"
#include "daemon/zpoll.h"
#include "proto/proto.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_RATE_SLOTS 11 /* one a second: a ten-second window */
#define METRICS_LAG_WINDOW_MS 10000
#define METRICS_NCOUNTERS 51 /* rows of the counter table (metrics.c checks it) */

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

/* ---- what /metrics shows, collected ---- */

/* One group of the cluster figures: a cluster, or one of its chains. */
typedef struct {
    const char *cluster;                   /* its id */
    const char *chain;                     /* "" for the whole cluster */
    uint32_t firms;                        /* members now */
    uint32_t reporting[2], above_scale[2]; /* [0] the year, [1] the year before */
} metrics_group_t;

/*
 * Everything /metrics shows, as measured at one moment. Names (version,
 * clusters, chains, metrics) are borrowed from the config: render before
 * the next reload, i.e. at once, on the loop. The arrays are owned by the
 * struct when metrics_collect filled it (metrics_collected_free); a test
 * may point them at its own.
 */
typedef struct {
    const char *version;
    int64_t started_ms;
    uint64_t counters[METRICS_NCOUNTERS];       /* metrics_counter(i)'s value (METRICS_I64: cast) */
    uint64_t restart_needed;                    /* settings waiting for a restart */
    uint64_t nacks[PROTO_STATUS_COUNT];         /* batches refused, by status (0: unused) */
    uint64_t samples_refused[JUDGE_KIND_COUNT]; /* samples refused, by kind (judge.h) */
    uint64_t wal_fsyncs, wal_fsync_ns_total, wal_fsync_ns_max;
    int64_t loop_lag_ms;
    /* per socket, by metrics_sock_t */
    uint64_t socket_peers[METRICS_NSOCKS], socket_disconnects[METRICS_NSOCKS];
    uint64_t socket_abandoned[METRICS_NSOCKS]; /* handshakes the peer left */
    uint64_t agents_known;
    uint64_t http_2xx, http_4xx, http_5xx, http_connections;
    uint64_t http_events_clients, http_events_dropped, http_auth_failures; /* the dashboard */
    uint64_t alert_events[PROTO_ALERT_STATE_COUNT]; /* published, by state announced */
    uint64_t alert_events_suppressed;
    uint64_t alerts_published[PROTO_SEV_COUNT];
    /* the cluster figures: totals[(group * nmetrics + metric) * nperiods + period] */
    int year; /* the year of reporting[0], above_scale[0] */
    const proto_period_t *periods;
    size_t nperiods;            /* the year, the year before, the year's months so far */
    const char *const *metrics; /* the period metrics' names, in config order */
    size_t nmetrics;
    const metrics_group_t *groups; /* each cluster, then its chains, in config order */
    size_t ngroups;
    const __int128 *totals; /* milli-units */
} metrics_collected_t;

/*
 * Measures: fills *ret with the server's state at now_ms, the cluster
 * figures of now's year, the previous year and now's year's months so far.
 * Reads srv only; any time on the loop's thread (or in a test, on a server
 * that never ran). Caller owns *ret (metrics_collected_free).
 */
void metrics_collect(const struct server *srv, int64_t now_ms, metrics_collected_t *ret);

/* Frees what metrics_collect allocated in c. */
void metrics_collected_free(metrics_collected_t *c);

/* Collects and renders (exposition_render): the whole /metrics body,
 * appended to out. Same context as metrics_collect. */
void metrics_render(const struct server *srv, int64_t now_ms, metrics_text_t *out);

#endif
