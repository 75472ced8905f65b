/*
 * server.h -- the daemon's one context: the libuv loop and everything it
 * drives. There is no other mutable global state (log.c's level aside, set
 * once before the loop runs). Modules reach their owner through this struct.
 *
 * Lifecycle: server_open() loads nothing itself; main() hands it a validated
 * config and registry. server_run() runs the loop until SIGINT/SIGTERM, then
 * closes every handle and socket and runs the loop until uv_loop_close()
 * succeeds.
 */
#ifndef CLUSTERMON_SERVER_H
#define CLUSTERMON_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/aggregate.h"
#include "daemon/alertbook.h"
#include "daemon/alerts.h"
#include "daemon/calendar.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/history.h"
#include "daemon/http.h"
#include "daemon/ingest.h"
#include "daemon/keys.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/registry.h"
#include "daemon/reload.h"
#include "daemon/rules.h"
#include "daemon/snapshot.h"
#include "daemon/remotewrite.h"
#include "daemon/upstream.h"
#include "daemon/wal.h"
#include "daemon/zap.h"
#include "proto/keyfile.h"

/* This many fewer peers than at the high-water mark: give memory back. */
#define SERVER_TRIM_PEERS 64

typedef struct {
    uint64_t batches_ok;
    uint64_t batches_duplicate;
    uint64_t samples_applied;
    uint64_t nacks[PROTO_STATUS_COUNT];
    uint64_t bad_envelopes; /* frames that were not [identity][(empty)][payload] */
} server_stats_t;

/* The disk-full recovery's progress (server.c, cron), while wal.full. */
typedef struct {
    bool active;
    int64_t since_ms; /* loop time it began */
    int64_t retry_ms; /* next step not before (backoff) */
    int64_t backoff_ms;
    uint64_t written_base;    /* snap.written when it began */
    uint64_t failed_seen;     /* snap.failed at the last step */
    uint64_t reserve_checked; /* snap.written when the reserve size was last checked */
} server_diskfull_t;

/* Where the configuration came from, so a reload reads the same again. */
typedef struct {
    const char *path;      /* NULL: the embedded default */
    const char *text;      /* the embedded default's text (static) */
    const char *base_dir;  /* relative paths in the config; NULL = working dir */
    const char *state_dir; /* -S override, or NULL */
    bool log_level_fixed;  /* -l given: the config's log_level does not apply */
} server_source_t;

/* What start-up recovery found, for status and the log. */
typedef struct {
    uint64_t snapshot_segment;  /* 0 = started without a snapshot */
    unsigned snapshots_damaged; /* newer snapshots found unusable */
    wal_replay_stats_t wal;
    int64_t ready_ms; /* from process start to sockets bound */
} server_recovery_t;

typedef struct server {
    uv_loop_t loop;
    config_t *cfg;   /* owned */
    registry_t *reg; /* owned */
    agg_t *agg;      /* owned */
    calendar_t cal;
    void *zctx;          /* owned */
    bool curve;          /* CURVE on every socket (daemon.curve_secret_key is set) */
    keyfile_t curve_key; /* the daemon's own key pair */
    keys_t *keys;        /* owned: client keys and their rights; NULL without CURVE */
    zap_t zap;           /* admits CURVE clients by key */
    ingest_t ingest;
    control_t control;
    alerts_t alerts;
    silences_t silences;
    history_t history; /* alert history and acknowledgements (history.h) */
    alertbook_t book;
    rules_t rules;
    int64_t last_rules_tick_ms;
    wal_t wal;
    snapshot_t snap;
    uv_timer_t cron;                  /* periodic work: fsync interval, snapshots */
    int64_t peers_high, last_trim_ms; /* malloc_trim once many peers left */
    int64_t last_fsync_ms;
    uint64_t wal_pos_at_snapshot;
    wal_holds_t wal_holds; /* segments forwarders still need (server_wal_hold) */
    server_diskfull_t diskfull;
    bool snapshot_wanted; /* state the WAL does not carry changed (a firm first seen) */
    int lock_fd;          /* flock on state_dir/lock: one daemon per state dir */
    server_recovery_t recovery;
    server_source_t source; /* borrowed strings: main's, for the process's life */
    uint64_t reloads;
    reload_status_t reload; /* how the last reload went, what waits for a restart */
    uv_signal_t sig_int, sig_term, sig_hup;
    bool stopping;
    int exit_status;
    int64_t started_ms;
    server_stats_t stats;
    metrics_t metrics;          /* self-measurement: rates, loop lag, peers */
    http_t http;                /* /metrics and /healthz, if [daemon] http is set */
    notify_t notify;            /* sd_notify: READY, STATUS, watchdog, STOPPING */
    upstream_t upstream;        /* [upstream]: forwarding to the province (upstream.h) */
    remotewrite_t remote_write; /* [remote_write]: to a Prometheus TSDB (remotewrite.h) */
} server_t;

/*
 * Takes ownership of cfg and reg on success (and NULLs the caller's
 * pointers). Binds every socket. Returns 0, or -1 with the reason in err (the
 * caller still owns cfg and reg then, and must call server_close()).
 */
int server_open(server_t *srv, const server_source_t *src, config_t **cfg, registry_t **reg,
                char *err, size_t errlen);

/*
 * Rolls the WAL over and starts a snapshot now (a re-seed of the other side
 * of an HA pair wants one: daemon/seed.h). *ret_segment is its number: the
 * file snap-N.snap appears once written. Returns 0, or -1 with the reason
 * (one is being written already, the disk is full). On the loop.
 */
int server_snapshot_request(server_t *srv, uint64_t *ret_segment, char *err, size_t errlen);

/* Runs until stopped; returns the exit status. */
int server_run(server_t *srv);

/* Begins an orderly stop (from a callback on the loop). */
void server_stop(server_t *srv, int status);

/* Keeps WAL segment `segment` and every later one from being trimmed after a
 * snapshot, for the forwarder name (borrowed for the server's life); 0
 * releases name's hold. A forwarder calls it when it starts and after each
 * commit of its position (waltail_segment). */
void server_wal_hold(server_t *srv, const char *name, uint64_t segment);

/* Frees what server_open() built; for use after server_run() returned, or
 * after a failed server_open(). */
void server_close(server_t *srv);

#endif
