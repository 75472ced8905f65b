/*
 * config.h -- clustermond's configuration: INI, parsed with inih.
 *
 * Sections: [daemon] (a table of option descriptors in config.c), then any
 * number of [metric NAME], [cluster ID] and [rule ID] sections. Parsing
 * builds a fresh config_t and validates all of it; a caller swaps it in only
 * on success (the two-phase pattern a reload will reuse). Every error reads
 * "file:line: section.field: reason".
 */
#ifndef CLUSTERMON_CONFIG_H
#define CLUSTERMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define CONFIG_ERRLEN 512
#define CONFIG_MAX_METRICS 64
#define CONFIG_MAX_CHAINS 32

typedef enum { METRIC_PERIOD = 0, METRIC_READING } metric_kind_t;

typedef struct {
    char *name;
    metric_kind_t kind;
    char *unit;
    int line;
    bool has_min, has_max; /* min, max: the values the daemon takes (judge.h) */
    double min, max;
} config_metric_t;

typedef struct {
    char *id;
    char *title;
    char **chains; /* chain ids, nchains of them */
    size_t nchains;
    int line;
} config_cluster_t;

typedef enum {
    RULE_THRESHOLD = 0, /* a reading above (or below) a limit, with hysteresis */
    RULE_GROWTH,        /* year-to-date growth of a period metric against a target */
    RULE_CHANGE,        /* a firm's month-on-month (or year-on-year) change beyond +-X % */
    RULE_OUTLIER,       /* a firm's latest month far from its own history (median/MAD) */
    RULE_SILENCE,       /* a firm that has not reported when it should have */
    RULE_ABOVE_SCALE,   /* a firm crossing the above-scale revenue line */
    RULE_TYPE_COUNT
} rule_type_t;

/* How a growth rule pro-rates last year: seasonal compares the same months
 * of last year, linear last year's total times months / 12; auto (the
 * default) is seasonal for each firm whose last-year months are in, linear
 * for a firm that reported last year only as a total. */
typedef enum { PRORATE_AUTO = 0, PRORATE_SEASONAL, PRORATE_LINEAR } rule_prorate_t;

typedef struct {
    char *id;
    rule_type_t type;
    proto_severity_t severity;
    int line;
    /* scope: the cluster, optionally narrowed to a chain and/or a tier */
    int metric; /* index into metrics; -1 = any (silence) */
    int cluster;
    int chain;         /* -1 = every chain */
    int tier;          /* tier_t, -1 = every tier */
    char *city;        /* silence: only the firms of this city (registry city column); NULL = any */
    int64_t repeat_ms; /* reminder interval while firing, 0 = none */
    /* threshold */
    double above, below, clear;
    bool has_above, has_below;
    uint32_t for_samples; /* consecutive breaching samples before firing (>= 1) */
    int64_t for_ms;       /* or: breaching continuously this long (sample time) */
    /* growth */
    int year; /* 0 = current: the year now in the configured time zone */
    double target_pct, tolerance_pp, quorum_pct;
    rule_prorate_t prorate;
    /* change */
    bool vs_last_year;         /* compare = last-year (else previous month) */
    double drop_pct, rise_pct; /* 0 = that direction is not watched */
    /* outlier */
    uint32_t window, min_history;
    double k;
    bool outlier_seasonal; /* judge year-on-year ratios, so seasonality is not flagged */
    double min_spread_pct; /* the MAD is at least this % of |median| */
    /* silence */
    bool continuous;  /* schedule = continuous (readings), else monthly reports */
    int due_day;      /* monthly: the report for month m is due by this day of m+1 */
    int64_t quiet_ms; /* continuous: silent after this long without a sample */
    bool data_clock;  /* clock = data: "now" is what the peers have reported */
    int64_t grace_ms; /* never-reported firms are quiet this long after first seen; -1 =
                           * until the schedule makes their first report due */
} config_rule_t;

typedef struct {
    char *path;   /* where it came from, for messages */
    char *ingest; /* ZeroMQ endpoints the daemon binds */
    char *alerts;
    char *control;
    char *state_dir;
    char *registry; /* firm registry CSV */
    char *timezone; /* IANA name, periods are local to it */
    char *log_level;
    double above_scale_line; /* yuan of annual revenue */
    char *revenue_metric;    /* which metrics the report and the above-scale line use */
    char *profit_metric;
    int revenue_idx, profit_idx; /* resolved indexes, -1 if profit is not configured */
    char *fsync;                 /* always | interval | never */
    int fsync_policy;            /* wal_fsync_t */
    double fsync_interval_ms;
    char *group_writes; /* "yes": WAL group writes per ingest drain (wal.h) */
    double snapshot_interval_s;
    double snapshot_wal_mb; /* a snapshot is also taken once the WAL grew this much */
    double alerts_hwm;      /* PUB high-water mark per subscriber */
    char *allow_plaintext;  /* "yes": plain TCP may bind beyond loopback */
    char *http;             /* host:port of /metrics and /healthz, "" = off */
    char *http_users;       /* the dashboard's logins (daemon/webusers.h), "" = none */
    /* security: see README "Security" */
    char *curve_secret_key;     /* path of the daemon's key pair, "" = no CURVE */
    char *access;               /* access CSV, "" = none */
    double rate_per_connection; /* samples/s, 0 = unlimited */
    double rate_global;
    double agent_lease_s;     /* an agent stream idle this long no longer owns its id */
    char *user, *group;       /* "" = stay who we are */
    char *run_as_root;        /* warn | refuse */
    double peer_timeout;      /* seconds: a peer stalled mid-handshake or mid-frame is dropped */
    double future_slack_days; /* periods up to the month of now + this are taken (judge.h) */
    char *ts_floor;           /* YYYY-MM-DD: timestamps before it are refused (judge.h) */
    char *tiers;              /* the tiers the registry may use, comma-separated */
    char *designations;       /* the designations it may use; "" = any */

    config_metric_t *metrics;
    size_t nmetrics;
    config_cluster_t *clusters;
    size_t nclusters;
    config_rule_t *rules;
    size_t nrules;
    /* [alerting] */
    int64_t flap_window_ms; /* an alert changing state flap_max times within this is flapping */
    uint32_t flap_max;
    uint32_t group_max; /* more alerts than this of one rule and cluster at once: grouped */
    int64_t history_retention_ms; /* alert history (history.h) kept this long; 0 = for ever */
    /* [upstream]: forwarding to a province daemon (upstream.h); off while up_endpoints is
     * NULL. Read once at start: a reload keeps the forwarder as it started. */
    char *up_endpoints;   /* comma-separated ZeroMQ endpoints, tried in turn (failover) */
    char *up_city;        /* this city's id: the province's registry city column */
    char *up_server_key;  /* the province's public key (Z85, or a file holding it); NULL = plain */
    char *up_key;         /* this city's key pair file (clustermonctl keygen) */
    char *up_metrics;     /* comma-separated metric names, or "all" */
    char *up_state_dir;   /* the forwarder's cursor; default state_dir/upstream */
    char *up_agent_id;    /* its stream's agent id at the province; default the city id */
    double up_timeout_ms; /* an unanswered batch is resent (and fails over) after this */
    double up_window;     /* batches in flight, 1..PROTO_MAX_WINDOW */
    int up_line;          /* where [upstream] began, for messages */
    /* [remote_write]: Prometheus remote-write from the WAL (remotewrite.h); off while
     * rw_url is NULL. Read once at start, like [upstream]. */
    char *rw_url;           /* http://HOST[:PORT]/PATH of the receiver */
    char *rw_user;          /* basic auth user; NULL = none */
    char *rw_password_file; /* basic auth password, the file's first line */
    char *rw_metrics;       /* comma-separated metric names, or "all" */
    char *rw_state_dir;     /* its cursor and revisions; default state_dir/remote_write */
    double rw_batch;        /* samples per request (a WAL record is never split) */
    double rw_timeout_ms;   /* a request unanswered this long is retried */
    int rw_line;
} config_t;

/* True if metric name[0..len) is sent by [remote_write] metrics. */
bool config_remote_write_sends(const config_t *cfg, const char *name, size_t len);

/* True if metric name[0..len) is forwarded by [upstream] metrics. */
bool config_upstream_forwards(const config_t *cfg, const char *name, size_t len);

/*
 * Parses and validates a config. path names the file; if text is non-NULL it
 * is parsed instead of reading path (the embedded default) and path is only
 * used in messages. Relative paths in the file are resolved against base_dir
 * (NULL = as given, i.e. against the working directory).
 * Returns 0 and a new config in *ret (caller owns: config_destroy), or -1
 * with "file:line: section.field: reason" in err.
 */
int config_load(const char *path, const char *text, const char *base_dir, config_t **ret, char *err,
                size_t errlen);
void config_destroy(config_t **cfg);

/* Index lookups by name; -1 if absent. len-bounded so wire strings need no copy. */
int config_metric_find(const config_t *cfg, const char *name, size_t len);
int config_cluster_find(const config_t *cfg, const char *id, size_t len);
int config_chain_find(const config_cluster_t *cl, const char *id, size_t len);

const char *config_metric_kind_name(metric_kind_t k);

/* Parses a date "YYYY-MM-DD" (year PROTO_MIN_YEAR..PROTO_MAX_YEAR); 0 or -1. */
int config_parse_date(const char *s, int *ret_y, int *ret_m, int *ret_d);

#endif
