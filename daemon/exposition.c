/*
 * exposition.c -- see exposition.h.
 *
 * The format: one "# HELP" and one "# TYPE" line per family, before its
 * samples, families never split; label values escaped; counters end in
 * _total. Amounts are kept in milli-units and printed exactly ("1234.5",
 * not a rounded double).
 *
 * clustermon_cluster_metric_total is named as the operations issue asks
 * (dashboards query it by that name) but is a sum that can go down when a
 * report is restated, not a counter: it is declared untyped, which
 * Prometheus stores like a gauge, because promtool rejects a gauge whose
 * name ends in _total.
 */
#include "daemon/exposition.h"

#include <stdio.h>
#include <string.h>

void exposition_label_escape(metrics_text_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            metrics_text_printf(out, "\\\\");
        else if (*s == '"')
            metrics_text_printf(out, "\\\"");
        else if (*s == '\n')
            metrics_text_printf(out, "\\n");
        else
            metrics_text_printf(out, "%c", *s);
    }
}

static void family(metrics_text_t *o, const char *name, const char *type, const char *help)
{
    metrics_text_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(metrics_text_t *o, const char *name, uint64_t v)
{
    metrics_text_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void sample_d(metrics_text_t *o, const char *name, double v)
{
    metrics_text_printf(o, "%s %.15g\n", name, v);
}

/* name{key="value"} v, for one label */
static void sample_lu(metrics_text_t *o, const char *name, const char *key, const char *val,
                      uint64_t v)
{
    metrics_text_printf(o, "%s{%s=\"", name, key);
    exposition_label_escape(o, val);
    metrics_text_printf(o, "\"} %llu\n", (unsigned long long)v);
}

static void counter(metrics_text_t *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    sample_u(o, name, v);
}

static void gauge(metrics_text_t *o, const char *name, const char *help, double v)
{
    family(o, name, "gauge", help);
    sample_d(o, name, v);
}

/* A family of one sample per ZeroMQ socket, labelled socket="ingest" ... */
static void per_socket(metrics_text_t *o, const char *name, const char *type, const char *help,
                       const uint64_t v[METRICS_NSOCKS])
{
    family(o, name, type, help);
    for (int i = 0; i < METRICS_NSOCKS; i++)
        sample_lu(o, name, "socket", metrics_sock_name(i), v[i]);
}

/* An exact decimal from milli-units: "-1234.5", "20580000000". */
static void print_milli(metrics_text_t *o, __int128 v)
{
    if (v > INT64_MAX || v < INT64_MIN) {
        metrics_text_printf(o, "%.17g", (double)v / 1000.0);
        return;
    }
    int64_t x = (int64_t)v;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    unsigned frac = (unsigned)(u % 1000);
    metrics_text_printf(o, "%s%llu", x < 0 ? "-" : "", (unsigned long long)(u / 1000));
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, ".%03u", frac);
        for (size_t k = strlen(f) - 1; f[k] == '0'; k--)
            f[k] = '\0';
        metrics_text_printf(o, "%s", f);
    }
}

/* One sample of a counter table row, its value v. */
static void sample_counter(metrics_text_t *o, const metrics_counter_t *c, uint64_t v)
{
    metrics_text_printf(o, "%s", c->family);
    if (c->label) {
        metrics_text_printf(o, "{%s=\"", c->label);
        exposition_label_escape(o, c->label_value);
        metrics_text_printf(o, "\"}");
    }
    if (c->scale)
        metrics_text_printf(o, " %.15g\n",
                            (c->kind == METRICS_I64 ? (double)(int64_t)v : (double)v) / c->scale);
    else if (c->kind == METRICS_I64)
        metrics_text_printf(o, " %lld\n", (long long)(int64_t)v);
    else
        metrics_text_printf(o, " %llu\n", (unsigned long long)v);
}

/* The counter table's families: each at its first row, all its rows together. */
static void render_counters(const metrics_collected_t *m, metrics_text_t *o)
{
    const metrics_counter_t *c, *d;
    for (size_t i = 0; (c = metrics_counter(i)) != NULL; i++) {
        if (!c->family || !c->type)
            continue; /* status's only, or not its family's first row */
        family(o, c->family, c->type, c->help);
        for (size_t j = i; (d = metrics_counter(j)) != NULL; j++)
            if (d->family && strcmp(d->family, c->family) == 0)
                sample_counter(o, d, m->counters[j]);
    }
}

static void render_self(const metrics_collected_t *m, metrics_text_t *o)
{
    family(o, "clustermon_build_info", "gauge", "Version of the running clustermond (always 1).");
    sample_lu(o, "clustermon_build_info", "version", m->version, 1);
    gauge(o, "clustermon_start_time_seconds", "When clustermond started, Unix time.",
          (double)m->started_ms / 1000.0);
    render_counters(m, o);
    gauge(o, "clustermon_config_restart_needed",
          "Settings changed in the file that take effect only after a restart.",
          (double)m->restart_needed);
    family(o, "clustermon_batches_nacked_total", "counter", "Batches refused, by reason.");
    for (int s = 1; s < PROTO_STATUS_COUNT; s++)
        sample_lu(o, "clustermon_batches_nacked_total", "reason",
                  proto_status_name((proto_status_t)s), m->nacks[s]);
    family(o, "clustermon_samples_refused_total", "counter",
           "Samples the daemon refused (judge.h), by reason; a partial batch's others applied.");
    for (int k = 0; k < JUDGE_KIND_COUNT; k++)
        sample_lu(o, "clustermon_samples_refused_total", "reason", judge_kind_name((judge_kind_t)k),
                  m->samples_refused[k]);
    family(o, "clustermon_wal_fsync_seconds", "summary", "Latency of WAL fsyncs.");
    sample_d(o, "clustermon_wal_fsync_seconds_sum", (double)m->wal_fsync_ns_total / 1e9);
    sample_u(o, "clustermon_wal_fsync_seconds_count", m->wal_fsyncs);
    gauge(o, "clustermon_wal_fsync_max_seconds", "Slowest WAL fsync since start.",
          (double)m->wal_fsync_ns_max / 1e9);

    gauge(o, "clustermon_loop_lag_seconds",
          "Worst lateness of the event loop's periodic timer in the last ten seconds.",
          (double)m->loop_lag_ms / 1000.0);
    per_socket(o, "clustermon_socket_peers", "gauge", "Connections open on each ZeroMQ socket.",
               m->socket_peers);
    per_socket(o, "clustermon_socket_disconnects_total", "counter",
               "Connections closed on each ZeroMQ socket: by the peer, or by ZeroMQ for a frame "
               "over the socket's size limit (ingest: the protocol's 4 MiB).",
               m->socket_disconnects);
    per_socket(o, "clustermon_socket_handshakes_abandoned_total", "counter",
               "Connections closed by their peer before the ZeroMQ handshake completed (port "
               "probes, clients that gave up); not refusals.",
               m->socket_abandoned);

    gauge(o, "clustermon_agents_known",
          "Agent streams the daemon follows (their seqs, for exactly-once).",
          (double)m->agents_known);
    family(o, "clustermon_http_responses_total", "counter", "HTTP responses, by status class.");
    sample_lu(o, "clustermon_http_responses_total", "code", "2xx", m->http_2xx);
    sample_lu(o, "clustermon_http_responses_total", "code", "4xx", m->http_4xx);
    sample_lu(o, "clustermon_http_responses_total", "code", "5xx", m->http_5xx);
    gauge(o, "clustermon_http_connections", "HTTP connections open now.",
          (double)m->http_connections);

    family(o, "clustermon_alert_events_total", "counter",
           "Alert events published, by the state they announced.");
    for (int s = 0; s < PROTO_ALERT_STATE_COUNT; s++)
        sample_lu(o, "clustermon_alert_events_total", "state",
                  proto_alert_state_name((proto_alert_state_t)s), m->alert_events[s]);
    counter(o, "clustermon_alert_events_suppressed_total",
            "Alert events not published because a silence matched.", m->alert_events_suppressed);
    family(o, "clustermon_alerts_published_total", "counter",
           "Alert transitions published, by severity.");
    for (int s = 0; s < PROTO_SEV_COUNT; s++)
        sample_lu(o, "clustermon_alerts_published_total", "severity",
                  proto_severity_name((proto_severity_t)s), m->alerts_published[s]);
}

/* Labels cluster="...",chain="..." ("" for the whole cluster). */
static void group_labels(metrics_text_t *o, const metrics_group_t *g)
{
    metrics_text_printf(o, "cluster=\"");
    exposition_label_escape(o, g->cluster);
    metrics_text_printf(o, "\",chain=\"");
    exposition_label_escape(o, g->chain);
    metrics_text_printf(o, "\"");
}

/* The cluster figures: the firm counts of each group, then each group's
 * totals of each period metric for each period. */
static void render_clusters(const metrics_collected_t *m, metrics_text_t *o)
{
    static const struct {
        const char *name, *help;
    } firm_families[] = {
        {"clustermon_cluster_firms", "Member firms of a cluster (chain=\"\") or chain."},
        {"clustermon_cluster_firms_reporting", "Member firms that sent anything for the year."},
        {"clustermon_cluster_firms_above_scale",
         "Member firms whose revenue for the year is at or above the above-scale line."},
    };
    for (size_t fam = 0; fam < 3; fam++) {
        const char *name = firm_families[fam].name;
        family(o, name, "gauge", firm_families[fam].help);
        for (size_t gi = 0; gi < m->ngroups; gi++) {
            const metrics_group_t *g = &m->groups[gi];
            if (fam == 0) {
                metrics_text_printf(o, "%s{", name);
                group_labels(o, g);
                metrics_text_printf(o, "} %u\n", g->firms);
                continue;
            }
            for (int yk = 0; yk < 2; yk++) {
                metrics_text_printf(o, "%s{", name);
                group_labels(o, g);
                metrics_text_printf(o, ",year=\"%d\"} %u\n", m->year - yk,
                                    fam == 1 ? g->reporting[yk] : g->above_scale[yk]);
            }
        }
    }

    family(o, "clustermon_cluster_metric_total", "untyped",
           "Total of a period metric over a cluster (chain=\"\") or chain for a year or month, "
           "in the metric's unit.");
    for (size_t gi = 0; gi < m->ngroups; gi++) {
        for (size_t k = 0; k < m->nmetrics; k++) {
            for (size_t p = 0; p < m->nperiods; p++) {
                char pbuf[PROTO_PERIOD_STRLEN];
                proto_period_format(m->periods[p], pbuf, sizeof pbuf);
                metrics_text_printf(o, "clustermon_cluster_metric_total{");
                group_labels(o, &m->groups[gi]);
                metrics_text_printf(o, ",metric=\"");
                exposition_label_escape(o, m->metrics[k]);
                metrics_text_printf(o, "\",period=\"%s\"} ", pbuf);
                print_milli(o, m->totals[(gi * m->nmetrics + k) * m->nperiods + p]);
                metrics_text_printf(o, "\n");
            }
        }
    }
}

void exposition_render(const metrics_collected_t *c, metrics_text_t *out)
{
    render_self(c, out);
    render_clusters(c, out);
}
