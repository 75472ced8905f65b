/*
 * check_metrics.c -- what metrics_collect (daemon/metrics.c) reads out of a
 * server state built by hand, the exposition rendered from it, and the HTTP
 * endpoint that serves it (daemon/http.c). check_exposition.c tests the
 * rendering alone, from a struct filled by hand.
 *
 * The exposition tests render a server that never ran: the demo config and
 * registry, an aggregate with a few figures put in directly, counters set by
 * hand, and a fixed "now" (2026-03-15 in Asia/Shanghai), so every expected
 * line is known exactly. A small parser checks the text format's rules on
 * the whole output: HELP and TYPE once per family and before its samples,
 * a family's samples together, names and labels well formed, values numbers.
 *
 * The HTTP tests run the endpoint on a loop of their own with clients on
 * the same loop, in libuv's manner: count what happened, close everything,
 * and assert uv_loop_close() == 0.
 */
#include <check.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/query.h"
#include "daemon/registry.h"
#include "daemon/server.h"
#include "tests/testlib.h"

#define REGISTRY "daemon/demo/registry.csv"
/* 2026-03-15T12:00:00+08:00 */
#define NOW_MS 1773547200000LL

extern const char clustermond_default_conf[];

static server_t *srv;

static void setup(void)
{
    char err[CONFIG_ERRLEN];
    srv = calloc(1, sizeof *srv);
    ck_assert_msg(
        config_load("default", clustermond_default_conf, NULL, &srv->cfg, err, sizeof err) == 0,
        "%s", err);
    ck_assert_msg(registry_load(REGISTRY, srv->cfg, &srv->reg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(calendar_init(&srv->cal, srv->cfg->timezone), 0);
    srv->agg = agg_new(srv->reg->nfirms, srv->cfg->nmetrics);
    srv->started_ms = NOW_MS - 60000;
}

static void teardown(void)
{
    agg_destroy(&srv->agg);
    registry_destroy(&srv->reg);
    config_destroy(&srv->cfg);
    free(srv);
}

static int firm(const char *id)
{
    int f = registry_find(srv->reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static int metric(const char *name)
{
    int m = config_metric_find(srv->cfg, name, strlen(name));
    ck_assert_msg(m >= 0, "no metric %s", name);
    return m;
}

static void put(const char *f, const char *m, const char *period, double value)
{
    proto_period_t p;
    ck_assert_int_eq(proto_period_parse(period, strlen(period), &p), PROTO_OK);
    agg_put_period(srv->agg, firm(f), metric(m), p, agg_to_milli(value));
}

static char *render(void)
{
    metrics_text_t t = {0};
    metrics_render(srv, NOW_MS, &t);
    metrics_text_printf(&t, "%s", ""); /* NUL-terminated even if empty */
    return t.data;
}

/* ---- the text format ------------------------------------------------------ */

typedef struct {
    char name[128];
    bool help, type, samples_done;
    int nsamples;
    char kind[16];
} family_t;

static bool name_char(int c, bool first)
{
    return isalpha(c) || c == '_' || c == ':' || (!first && isdigit(c));
}

/* The family a sample belongs to: its name less a summary's suffixes. */
static void family_of(const char *sample, const family_t *fams, size_t n, char *out, size_t size)
{
    snprintf(out, size, "%s", sample);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fams[i].kind, "summary") != 0 && strcmp(fams[i].kind, "histogram") != 0)
            continue;
        size_t l = strlen(fams[i].name);
        if (strncmp(sample, fams[i].name, l) == 0 &&
            (strcmp(sample + l, "_sum") == 0 || strcmp(sample + l, "_count") == 0 ||
             strcmp(sample + l, "_bucket") == 0)) {
            snprintf(out, size, "%s", fams[i].name);
            return;
        }
    }
}

/* Checks the whole exposition; returns the number of samples. */
static int check_format(const char *text)
{
    family_t fams[256];
    size_t nfam = 0;
    int samples = 0;
    char cur[128] = "";
    const char *line = text;
    ck_assert_msg(*text, "empty exposition");
    while (*line) {
        const char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "last line has no newline");
        char buf[1024];
        size_t len = (size_t)(end - line);
        ck_assert_uint_lt(len, sizeof buf);
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (buf[0] == '#') {
            char what[8], name[128];
            ck_assert_msg(sscanf(buf, "# %7s %127s", what, name) == 2, "bad comment: %s", buf);
            family_t *f = NULL;
            for (size_t i = 0; i < nfam; i++)
                if (strcmp(fams[i].name, name) == 0)
                    f = &fams[i];
            if (!f) {
                ck_assert_uint_lt(nfam, 256);
                f = &fams[nfam++];
                memset(f, 0, sizeof *f);
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            ck_assert_msg(f->nsamples == 0, "%s: HELP/TYPE after its samples", name);
            if (strcmp(what, "HELP") == 0) {
                ck_assert_msg(!f->help, "%s: two HELP lines", name);
                f->help = true;
            } else {
                ck_assert_str_eq(what, "TYPE");
                ck_assert_msg(!f->type, "%s: two TYPE lines", name);
                f->type = true;
                ck_assert(sscanf(buf, "# TYPE %*s %15s", f->kind) == 1);
                ck_assert_msg(strcmp(f->kind, "counter") == 0 || strcmp(f->kind, "gauge") == 0 ||
                                  strcmp(f->kind, "summary") == 0 ||
                                  strcmp(f->kind, "untyped") == 0,
                              "%s: type %s", name, f->kind);
            }
            continue;
        }
        /* name{label="value",...} value */
        const char *p = buf;
        ck_assert_msg(name_char((unsigned char)*p, true), "bad sample line: %s", buf);
        while (name_char((unsigned char)*p, false))
            p++;
        char sname[128];
        snprintf(sname, sizeof sname, "%.*s", (int)(p - buf), buf);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                ck_assert_msg(name_char((unsigned char)*p, true), "bad label in: %s", buf);
                while (name_char((unsigned char)*p, false))
                    p++;
                ck_assert_msg(p[0] == '=' && p[1] == '"', "bad label in: %s", buf);
                p += 2;
                while (*p != '"') {
                    ck_assert_msg(*p && *p != '\n', "unterminated label value: %s", buf);
                    if (*p == '\\') {
                        ck_assert_msg(p[1] == '\\' || p[1] == '"' || p[1] == 'n', "bad escape: %s",
                                      buf);
                        p++;
                    }
                    p++;
                }
                p++;
                if (*p == ',')
                    p++;
            }
            p++;
        }
        ck_assert_msg(*p == ' ', "no value in: %s", buf);
        char *vend;
        strtod(p + 1, &vend);
        ck_assert_msg(vend != p + 1 && *vend == '\0', "bad value in: %s", buf);
        char fname[128];
        family_of(sname, fams, nfam, fname, sizeof fname);
        family_t *f = NULL;
        for (size_t i = 0; i < nfam; i++)
            if (strcmp(fams[i].name, fname) == 0)
                f = &fams[i];
        ck_assert_msg(f && f->help && f->type, "%s: sample without HELP and TYPE", sname);
        if (strcmp(cur, fname) != 0) {
            for (size_t i = 0; i < nfam; i++)
                if (strcmp(fams[i].name, cur) == 0)
                    fams[i].samples_done = true;
            ck_assert_msg(!f->samples_done, "%s: samples split in two groups", fname);
            snprintf(cur, sizeof cur, "%s", fname);
        }
        f->nsamples++;
        ck_assert_msg(strcmp(f->kind, "counter") != 0 || strstr(fname, "_total"),
                      "counter %s does not end in _total", fname);
        samples++;
    }
    return samples;
}

START_TEST(test_format_empty_state)
{
    char *text = render();
    ck_assert_int_gt(check_format(text), 100);
    free(text);
}
END_TEST

START_TEST(test_format_with_data)
{
    put("ee-001", "revenue", "2026-01", 1000.5);
    put("ee-001", "profit", "2026-02", -20.25);
    srv->stats.nacks[PROTO_STATUS_MALFORMED] = 2;
    char *text = render();
    ck_assert_int_gt(check_format(text), 100);
    free(text);
}
END_TEST

/* ---- values ---------------------------------------------------------------- */

START_TEST(test_cluster_months_and_years)
{
    put("ee-001", "revenue", "2026-01", 1000.5); /* water-pollution-control */
    put("ee-003", "revenue", "2026-01", 2000);   /* green-building-materials */
    put("ee-041", "revenue", "2026-02", 7);      /* a member on no chain */
    put("ee-001", "revenue", "2025", 500000);
    put("ee-001", "revenue", "2025-03", 1); /* the year's own value wins */
    char *t = render();
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"\",metric="
                      "\"revenue\",period=\"2026-01\"} 3000.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"water-"
                      "pollution-control\",metric=\"revenue\",period=\"2026-01\"} 1000.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"green-"
                      "building-materials\",metric=\"revenue\",period=\"2026-01\"} 2000");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"\",metric="
                      "\"revenue\",period=\"2026-02\"} 7");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"\",metric="
                      "\"revenue\",period=\"2026\"} 3007.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"energy-env\",chain=\"\",metric="
                      "\"revenue\",period=\"2025\"} 500000");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"solar-pv\","
                      "metric=\"revenue\",period=\"2026-03\"} 0");
    /* months after now's month are not exposed; reading metrics never are */
    ck_assert_ptr_null(strstr(t, "period=\"2026-04\""));
    ck_assert_ptr_null(strstr(t, "metric=\"cod\""));
    free(t);
}
END_TEST

START_TEST(test_negative_and_fractional_amounts)
{
    put("ne-021", "profit", "2026-01", -1234.5);
    put("ne-021", "profit", "2026-02", 0.001);
    char *t = render();
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"\",metric="
                      "\"profit\",period=\"2026-01\"} -1234.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"\",metric="
                      "\"profit\",period=\"2026-02\"} 0.001");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"new-energy\",chain=\"\",metric="
                      "\"profit\",period=\"2026\"} -1234.499");
    free(t);
}
END_TEST

START_TEST(test_firms_reporting_and_above_scale)
{
    put("ee-001", "revenue", "2026-01", 30000000); /* above the 20,000,000 line */
    put("ee-002", "revenue", "2026-01", 19999999); /* just below */
    put("ee-003", "profit", "2026-01", 5);         /* reports, but no revenue: not reporting */
    put("ee-004", "revenue", "2025", 20000000);    /* last year, at the line */
    char *t = render();
    ck_assert_line(t, "clustermon_cluster_firms{cluster=\"energy-env\",chain=\"\"} 197");
    ck_assert_line(
        t, "clustermon_cluster_firms{cluster=\"energy-env\",chain=\"water-pollution-control\"} 22");
    ck_assert_line(t,
                   "clustermon_cluster_firms{cluster=\"new-energy\",chain=\"energy-storage\"} 20");
    ck_assert_line(
        t, "clustermon_cluster_firms_reporting{cluster=\"energy-env\",chain=\"\",year=\"2026\"} 2");
    ck_assert_line(t, "clustermon_cluster_firms_reporting{cluster=\"energy-env\",chain=\"water-"
                      "pollution-control\",year=\"2026\"} 2");
    ck_assert_line(
        t, "clustermon_cluster_firms_reporting{cluster=\"energy-env\",chain=\"\",year=\"2025\"} 1");
    ck_assert_line(
        t,
        "clustermon_cluster_firms_above_scale{cluster=\"energy-env\",chain=\"\",year=\"2026\"} 1");
    ck_assert_line(t, "clustermon_cluster_firms_above_scale{cluster=\"energy-env\",chain=\"green-"
                      "building-materials\",year=\"2025\"} 1");
    ck_assert_line(
        t,
        "clustermon_cluster_firms_above_scale{cluster=\"new-energy\",chain=\"\",year=\"2026\"} 0");
    free(t);
}
END_TEST

/* ---- the year's tallies (query.h), shared by /metrics and the control queries ---- */

/* At the line is above scale, a milli-unit below is not, and so is a firm
 * with no revenue for the year (a profit only, or another year's). */
START_TEST(test_above_scale_line)
{
    put("ee-001", "revenue", "2026", 20000000);
    put("ee-002", "revenue", "2026", 19999999.999);
    put("ee-003", "profit", "2026", 30000000);
    put("ee-004", "revenue", "2025", 30000000);
    ck_assert(query_firm_above_scale(srv, firm("ee-001"), 2026));
    ck_assert(!query_firm_above_scale(srv, firm("ee-002"), 2026));
    ck_assert(!query_firm_above_scale(srv, firm("ee-003"), 2026));
    ck_assert(!query_firm_above_scale(srv, firm("ee-004"), 2026));
    ck_assert(query_firm_above_scale(srv, firm("ee-004"), 2025));
}
END_TEST

/* A former member counts for a year only if it reported for it; firms less
 * former is the members now, whatever the year. */
START_TEST(test_tally_clusters)
{
    const firm_t *ee1 = &srv->reg->firms[firm("ee-001")];
    firm_t gone = *ee1;
    gone.id = "gone-1";
    int g = registry_add_former(srv->reg, &gone, NOW_MS - 86400000);
    ck_assert_int_ge(g, 0);
    agg_grow(srv->agg, srv->reg->nall);
    put("ee-001", "revenue", "2026-01", 30000000);
    put("ee-001", "profit", "2026-01", -2.5);
    agg_put_period(srv->agg, g, metric("revenue"),
                   (proto_period_t){.year = 2025, .kind = PROTO_PERIOD_YEAR},
                   agg_to_milli(25000000));
    int ci = ee1->cluster, chain = ee1->chain;
    ck_assert_int_ge(chain, 0);

    query_cluster_tally_t *t26 = query_tally_clusters(srv, 2026);
    query_cluster_tally_t *t25 = query_tally_clusters(srv, 2025);
    const query_tally_t *c26 = &t26[ci].cluster, *c25 = &t25[ci].cluster;
    ck_assert_uint_eq(c26->firms, 197); /* the members of energy-env */
    ck_assert_uint_eq(c26->former, 0);  /* gone-1 sent nothing for 2026 */
    ck_assert_uint_eq(c26->reporting, 1);
    ck_assert_uint_eq(c26->above_scale, 1);
    ck_assert(c26->revenue == agg_to_milli(30000000));
    ck_assert(c26->profit == -2500);
    ck_assert_uint_eq(c25->firms, 198); /* gone-1 reported for 2025 */
    ck_assert_uint_eq(c25->former, 1);
    ck_assert_uint_eq(c25->reporting, 1);
    ck_assert_uint_eq(c25->above_scale, 1);
    ck_assert_uint_eq(t25[ci].chains[chain].firms - t25[ci].chains[chain].former,
                      t26[ci].chains[chain].firms);
    ck_assert_uint_eq(t25[ci].chains[chain].above_scale, 1);
    ck_assert_uint_eq(t26[ci].chains[chain].above_scale, 1);
    free(t26);
    free(t25);
}
END_TEST

/* The counter table status and /metrics share: every row is read, a family
 * is declared once on its first row, status keys are unique in a section,
 * and a value set on the server shows in the exposition. */
START_TEST(test_counter_table)
{
    const metrics_counter_t *c, *d;
    size_t n = 0;
    for (size_t i = 0; (c = metrics_counter(i)) != NULL; i++, n++) {
        ck_assert_ptr_nonnull(c->get);
        ck_assert_msg(c->section || c->family, "row %zu shown nowhere", i);
        bool first = true;
        for (size_t j = 0; j < i; j++) {
            d = metrics_counter(j);
            if (c->family && d->family && strcmp(c->family, d->family) == 0)
                first = false;
            if (c->section && d->section && strcmp(c->section, d->section) == 0)
                ck_assert_str_ne(c->key, d->key);
        }
        if (c->family)
            ck_assert_msg(first == (c->type != NULL && c->help != NULL),
                          "%s: type and help belong on its first row only", c->family);
    }
    ck_assert_uint_gt(n, 40);
    ck_assert_uint_eq(metrics_counters_in("control"), 5);
    ck_assert_uint_eq(metrics_counters_in("nosuch"), 0);
    srv->control.oversize = 9;
    srv->recovery.ready_ms = 1500;
    srv->wal.full = true;
    char *t = render();
    ck_assert_line(t, "clustermon_control_refusals_total{reason=\"too_large\"} 9");
    ck_assert_line(t, "clustermon_ready_seconds 1.5");
    ck_assert_line(t, "clustermon_wal_disk_full 1");
    ck_assert_line(t, "# TYPE clustermon_config_reloads_total counter");
    free(t);
}
END_TEST

/* What metrics_collect reads, before any rendering: the counter table's
 * values in table order, the groups in config order (each cluster, then its
 * chains), the period metrics only, the periods of now (2026-03). */
START_TEST(test_collect)
{
    srv->stats.samples_applied = 77;
    srv->http.responses_5xx = 4;
    put("ee-001", "revenue", "2026-02", 12.5); /* energy-env, water-pollution-control */
    metrics_collected_t c;
    metrics_collect(srv, NOW_MS, &c);
    const metrics_counter_t *r;
    for (size_t i = 0; (r = metrics_counter(i)) != NULL; i++)
        ck_assert_uint_eq(c.counters[i], r->get(srv));
    ck_assert_uint_eq(c.http_5xx, 4);
    ck_assert_int_eq(c.started_ms, NOW_MS - 60000);
    ck_assert_int_eq(c.year, 2026);
    ck_assert_uint_eq(c.nperiods, 2 + 3);
    ck_assert_uint_eq(c.ngroups, 2 + 2 + 2);
    ck_assert_str_eq(c.groups[0].cluster, "energy-env");
    ck_assert_str_eq(c.groups[0].chain, "");
    ck_assert_str_eq(c.groups[1].chain, "water-pollution-control");
    ck_assert_str_eq(c.groups[3].cluster, "new-energy");
    size_t nperiod = 0, rev = SIZE_MAX;
    for (size_t m = 0; m < srv->cfg->nmetrics; m++)
        nperiod += srv->cfg->metrics[m].kind == METRIC_PERIOD;
    ck_assert_uint_eq(c.nmetrics, nperiod);
    for (size_t k = 0; k < c.nmetrics; k++)
        if (strcmp(c.metrics[k], "revenue") == 0)
            rev = k;
    ck_assert_uint_ne(rev, SIZE_MAX);
    /* 2026-02 is period 3; ee-001 counts in its cluster and its chain */
    for (size_t g = 0; g < 3; g++)
        ck_assert_msg(c.totals[(g * c.nmetrics + rev) * c.nperiods + 3] == (g < 2 ? 12500 : 0),
                      "group %zu", g);
    metrics_collected_free(&c);
    ck_assert_ptr_null(c.groups);
}
END_TEST

START_TEST(test_self_counters)
{
    srv->stats.samples_applied = 12345;
    srv->stats.batches_ok = 10;
    srv->stats.batches_duplicate = 2;
    srv->stats.nacks[PROTO_STATUS_UNKNOWN_FIRM] = 3;
    srv->stats.nacks[PROTO_STATUS_MALFORMED] = 4;
    srv->stats.bad_envelopes = 5;
    srv->wal.fsyncs = 4;
    srv->wal.fsync_ns_total = 2000000; /* 2 ms */
    srv->wal.pos = 100;
    srv->wal.synced = 60;
    srv->book.firing = 2;
    srv->metrics.peers[METRICS_SOCK_INGEST].peers = 3;
    char *t = render();
    ck_assert_line(t, "clustermon_build_info{version=\"" CLUSTERMON_VERSION "\"} 1");
    ck_assert_line(t, "clustermon_samples_applied_total 12345");
    ck_assert_line(t, "clustermon_batches_acked_total{result=\"ok\"} 10");
    ck_assert_line(t, "clustermon_batches_acked_total{result=\"duplicate\"} 2");
    ck_assert_line(t, "clustermon_batches_nacked_total{reason=\"unknown_firm\"} 3");
    ck_assert_line(t, "clustermon_batches_nacked_total{reason=\"busy\"} 0");
    ck_assert_line(t, "clustermon_decode_errors_total{kind=\"malformed\"} 4");
    ck_assert_line(t, "clustermon_decode_errors_total{kind=\"envelope\"} 5");
    ck_assert_line(t, "clustermon_wal_fsync_seconds_sum 0.002");
    ck_assert_line(t, "clustermon_wal_fsync_seconds_count 4");
    ck_assert_line(t, "clustermon_wal_unsynced_bytes 40");
    ck_assert_line(t, "clustermon_alerts{state=\"firing\"} 2");
    ck_assert_line(t, "clustermon_socket_peers{socket=\"ingest\"} 3");
    ck_assert_line(t, "clustermon_start_time_seconds 1773547140");
    ck_assert_line(t, "# TYPE clustermon_cluster_metric_total untyped");
    free(t);
}
END_TEST

START_TEST(test_text_grows)
{
    metrics_text_t t = {0};
    for (int i = 0; i < 10000; i++)
        metrics_text_printf(&t, "%05d\n", i);
    ck_assert_uint_eq(t.len, 60000);
    ck_assert(memcmp(t.data + 59994, "09999\n", 6) == 0);
    metrics_text_free(&t);
    ck_assert_ptr_null(t.data);
}
END_TEST

/* ---- the listen address and the config key ----------------------------------- */

START_TEST(test_listen_parse)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"127.0.0.1:9730", 1}, {"0.0.0.0:1", 1},       {"localhost:9730", 1}, {"[::1]:9730", 1},
        {"[::]:65535", 1},     {"127.0.0.1", 0},       {":9730", 0},          {"127.0.0.1:", 0},
        {"127.0.0.1:0", 0},    {"127.0.0.1:65536", 0}, {"127.0.0.1:97x", 0},  {"example.org:80", 0},
        {"::1:9730", 0},       {"[::1]", 0},           {"300.1.1.1:80", 0},   {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[128] = "";
        struct sockaddr_storage ss;
        int rc = http_listen_parse(cases[i].s, &ss, why, sizeof why);
        ck_assert_msg((rc == 0) == cases[i].ok, "'%s': %d (%s)", cases[i].s, rc, why);
        if (!cases[i].ok)
            ck_assert_msg(*why, "'%s': no reason given", cases[i].s);
    }
}
END_TEST

static int load_with_http(const char *value, config_t **cfg, char *err, size_t errlen)
{
    char line[128];
    snprintf(line, sizeof line, "http = %s", value);
    const char *kv[] = {line, NULL};
    char *text = testlib_config_text(kv);
    int rc = config_load("t.conf", text, NULL, cfg, err, errlen);
    free(text);
    return rc;
}

START_TEST(test_config_http)
{
    char err[CONFIG_ERRLEN];
    config_t *cfg = NULL;
    ck_assert_int_eq(load_with_http("127.0.0.1:9730", &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg->http, "127.0.0.1:9730");
    config_destroy(&cfg);
    ck_assert_int_eq(load_with_http("", &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg->http, "");
    config_destroy(&cfg);
    ck_assert_int_eq(config_load("t.conf", clustermond_default_conf, NULL, &cfg, err, sizeof err),
                     0);
    ck_assert_str_eq(cfg->http, ""); /* the default: off */
    config_destroy(&cfg);
    static config_t sentinel;
    cfg = &sentinel;
    ck_assert_int_eq(load_with_http("9730", &cfg, err, sizeof err), -1);
    ck_assert(cfg == &sentinel); /* a failed load hands nothing back */
    /* "[daemon]" is on line 8 of the default config: http is the next line */
    const char *d = strstr(clustermond_default_conf, "[daemon]\n");
    int line = 2;
    for (const char *p = clustermond_default_conf; p < d; p++)
        line += *p == '\n';
    char want[64];
    snprintf(want, sizeof want, "t.conf:%d: daemon.http: '9730'", line);
    ck_assert_msg(strstr(err, want) != NULL, "%s (wanted %s)", err, want);
}
END_TEST

/* ---- HTTP on a loop ------------------------------------------------------------ */

#define MAX_CLIENTS 80
#define DEADLINE_MS 10000

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char *request;
    size_t request_len;
    char resp[1 << 17];
    size_t resp_len;
    bool done;  /* closed */
    int status; /* HTTP status, 0 = none */
} client_t;

static client_t *clients;
static int nclosed;

static void client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    c->done = true;
    nclosed++;
    if (c->resp_len > 12 && memcmp(c->resp, "HTTP/1.1 ", 9) == 0)
        c->status = atoi(c->resp + 9);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = h->data;
    size_t room = sizeof c->resp - 1 - c->resp_len;
    *buf = uv_buf_init(c->resp + c->resp_len, (unsigned)room);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    client_t *c = s->data;
    if (n > 0) {
        c->resp_len += (size_t)n;
        c->resp[c->resp_len] = '\0';
    } else if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, client_closed);
    }
}

static void client_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void client_connected(uv_connect_t *req, int status)
{
    client_t *c = req->data;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, client_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    if (c->request_len) {
        uv_buf_t b = uv_buf_init(c->request, (unsigned)c->request_len);
        uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, client_written);
    }
}

static int port;

static void http_setup(void)
{
    setup();
    log_set_level(LOG_LVL_WARN); /* no "serving on" line per test */
    ck_assert_int_eq(uv_loop_init(&srv->loop), 0);
    /* a free port: bind to 0, read it back, let it go */
    uv_tcp_t probe;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&srv->loop, &probe);
    ck_assert_int_eq(uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &len);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&srv->loop, UV_RUN_NOWAIT);
    char listen[32], err[256];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    ck_assert_msg(http_start(&srv->http, srv, listen, err, sizeof err) == 0, "%s", err);
    clients = calloc(MAX_CLIENTS, sizeof *clients);
    nclosed = 0;
}

static void http_teardown(void)
{
    http_close(&srv->http); /* a second call (after a test's own) is a no-op */
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].tcp.data && !uv_is_closing((uv_handle_t *)&clients[i].tcp))
            uv_close((uv_handle_t *)&clients[i].tcp, client_closed);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    /* the loop ran out: every handle of the server's is closed and freed */
    ck_assert(!srv->http.listening);
    ck_assert_uint_eq(srv->http.nconns, 0);
    ck_assert_ptr_null(srv->http.conns);
    ck_assert_int_eq(uv_loop_close(&srv->loop), 0);
    for (int i = 0; i < MAX_CLIENTS; i++)
        free(clients[i].request);
    free(clients);
    teardown();
}

static client_t *client_start(int i, const char *request, size_t len)
{
    client_t *c = &clients[i];
    c->tcp.data = c;
    c->conn.data = c;
    c->request = malloc(len + 1);
    memcpy(c->request, request, len);
    c->request_len = len;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(&srv->loop, &c->tcp);
    ck_assert_int_eq(
        uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&a, client_connected), 0);
    return c;
}

/* Runs the loop until want clients have closed (or the deadline). */
static void run_until_closed(int want)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)DEADLINE_MS * 1000000;
    while (nclosed < want && uv_hrtime() < deadline)
        uv_run(&srv->loop, UV_RUN_ONCE);
    ck_assert_msg(nclosed >= want, "only %d of %d clients done", nclosed, want);
}

START_TEST(test_http_routes)
{
    static const struct {
        const char *req;
        int status;
        const char *body;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200,
         "clustermon_build_info{"},
        {"GET /metrics?name[]=x HTTP/1.0\r\n\r\n", 200,
         "# TYPE clustermon_cluster_metric_total untyped"},
        {"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 200, "\r\n\r\nok\n"},
        {"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 200,
         "Content-Type: text/plain; version=0.0.4"},
        {"GET /nope HTTP/1.1\r\n\r\n", 404, "not found"},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405, "GET and HEAD"},
        {"NONSENSE\r\n\r\n", 400, ""},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 400, "upgrades"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++)
        client_start(i, cases[i].req, strlen(cases[i].req));
    run_until_closed(n);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(clients[i].status == cases[i].status, "case %d: status %d, wanted %d: %s", i,
                      clients[i].status, cases[i].status, clients[i].resp);
        ck_assert_msg(strstr(clients[i].resp, cases[i].body) != NULL, "case %d: no '%s' in %s", i,
                      cases[i].body, clients[i].resp);
    }
    /* HEAD: the headers only */
    ck_assert_ptr_null(strstr(clients[3].resp, "clustermon_build_info"));
    ck_assert_uint_eq(srv->http.responses_2xx, 4);
    ck_assert_uint_eq(srv->http.responses_4xx, 4);
}
END_TEST

START_TEST(test_http_dashboard_routes)
{
    /* without http_users: the pages and the API read, nothing posts */
    static const struct {
        const char *req;
        int status;
        const char *body;
    } cases[] = {
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 200, "Content-Type: text/html"},
        {"GET /app.js HTTP/1.1\r\nConnection: close\r\n\r\n", 200, "Content-Security-Policy:"},
        {"GET /api/v1/me HTTP/1.1\r\nConnection: close\r\n\r\n", 200,
         "{\"user\":null,\"roles\":[\"viewer\"],\"admin\":false,\"firms\":\"\"}"},
        {"GET /api/v1/nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404, "\"error\""},
        {"POST /api/v1/cmd/silence_add HTTP/1.1\r\nContent-Type: text/plain\r\n"
         "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
         415, "application/json"},
        {"POST /api/v1/cmd/nope HTTP/1.1\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
         404, "unknown command 'nope'"},
        {"GET /api/v1/cmd/silence_add HTTP/1.1\r\nConnection: close\r\n\r\n", 405, "use POST"},
        /* an upload is a file, and needs a firm's login: none here */
        {"POST /api/v1/upload/check?name=a.csv HTTP/1.1\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
         415, "application/octet-stream"},
        {"POST /api/v1/upload/check?name=a.csv HTTP/1.1\r\n"
         "Content-Type: application/octet-stream\r\nContent-Length: 25\r\nConnection: close\r\n"
         "\r\nee-001,revenue,1,2021-01\n",
         403, "firm's login"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++)
        client_start(i, cases[i].req, strlen(cases[i].req));
    run_until_closed(n);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(clients[i].status == cases[i].status, "case %d: status %d, wanted %d: %s", i,
                      clients[i].status, cases[i].status, clients[i].resp);
        ck_assert_msg(strstr(clients[i].resp, cases[i].body) != NULL, "case %d: no '%s' in %s", i,
                      cases[i].body, clients[i].resp);
    }
}
END_TEST

START_TEST(test_http_keep_alive)
{
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    client_t *c = client_start(0, two, strlen(two));
    uint64_t deadline = uv_hrtime() + (uint64_t)DEADLINE_MS * 1000000;
    while (!strstr(c->resp, "ok\n") && uv_hrtime() < deadline)
        uv_run(&srv->loop, UV_RUN_ONCE);
    ck_assert_ptr_nonnull(strstr(c->resp, "Connection: keep-alive"));
    ck_assert(!c->done);
    /* a second request on the same connection */
    c->resp_len = 0;
    c->resp[0] = '\0';
    uv_buf_t b = uv_buf_init(c->request, (unsigned)c->request_len);
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, client_written);
    while (!strstr(c->resp, "ok\n") && uv_hrtime() < deadline)
        uv_run(&srv->loop, UV_RUN_ONCE);
    ck_assert_ptr_nonnull(strstr(c->resp, "HTTP/1.1 200 OK"));
    ck_assert_uint_eq(srv->http.accepted, 1);
    ck_assert_uint_eq(srv->http.responses_2xx, 2);
}
END_TEST

START_TEST(test_http_request_too_large)
{
    size_t n = HTTP_MAX_REQUEST + 4096;
    char *big = malloc(n);
    memset(big, 'a', n);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
    client_start(0, big, n);
    free(big);
    run_until_closed(1);
    ck_assert_int_eq(clients[0].status, 431);
    ck_assert_uint_eq(srv->http.bad_requests, 1);
}
END_TEST

START_TEST(test_http_connection_limit)
{
    /* idle clients that never send a request, one more than allowed */
    for (int i = 0; i <= HTTP_MAX_CONNS; i++)
        client_start(i, "", 0);
    uint64_t deadline = uv_hrtime() + (uint64_t)DEADLINE_MS * 1000000;
    while (srv->http.accepted + srv->http.refused < HTTP_MAX_CONNS + 1 && uv_hrtime() < deadline)
        uv_run(&srv->loop, UV_RUN_ONCE);
    ck_assert_uint_eq(srv->http.accepted, HTTP_MAX_CONNS);
    ck_assert_uint_eq(srv->http.refused, 1);
    run_until_closed(1); /* the refused one is closed by the server */
    ck_assert_uint_eq(srv->http.nconns, HTTP_MAX_CONNS);
}
END_TEST

START_TEST(test_http_close_with_clients)
{
    /* closing the server closes idle and half-sent connections alike */
    client_start(0, "", 0);
    client_start(1, "GET /metr", 9);
    uint64_t deadline = uv_hrtime() + (uint64_t)DEADLINE_MS * 1000000;
    while (srv->http.accepted < 2 && uv_hrtime() < deadline)
        uv_run(&srv->loop, UV_RUN_ONCE);
    ck_assert_uint_eq(srv->http.accepted, 2);
    http_close(&srv->http);
    ck_assert_uint_eq(srv->http.nconns, 2); /* closing: freed in their close callbacks */
    run_until_closed(2);
    uv_run(&srv->loop, UV_RUN_NOWAIT); /* the server's side of each, likewise */
    ck_assert_uint_eq(srv->http.nconns, 0);
    ck_assert(!srv->http.listening);
}
END_TEST

START_TEST(test_http_off)
{
    http_t *h = calloc(1, sizeof *h);
    char err[64];
    ck_assert_int_eq(http_start(h, srv, "", err, sizeof err), 0);
    ck_assert(!h->listening);
    http_close(h); /* nothing open: nothing to wait for */
    ck_assert(h->closing);
    ck_assert_uint_eq(h->nconns, 0);
    ck_assert_int_eq(http_start(h, srv, "127.0.0.1:bad", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "port"));
    ck_assert(!h->listening);
    http_close(h);
    free(h); /* nothing of it is the loop's: freed at once */
}
END_TEST

START_TEST(test_http_timeout)
{
    /* a client that connects and never finishes its request is closed */
    srv->http.timeout_ms = 200;
    const char *partial = "GET /metrics HTTP/1.1\r\n";
    client_start(0, partial, strlen(partial));
    run_until_closed(1);
    ck_assert_uint_eq(srv->http.timeouts, 1);
    ck_assert_int_eq(clients[0].status, 0);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("exposition");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format_empty_state);
    tcase_add_test(tc, test_format_with_data);
    tcase_add_test(tc, test_cluster_months_and_years);
    tcase_add_test(tc, test_negative_and_fractional_amounts);
    tcase_add_test(tc, test_firms_reporting_and_above_scale);
    tcase_add_test(tc, test_above_scale_line);
    tcase_add_test(tc, test_tally_clusters);
    tcase_add_test(tc, test_counter_table);
    tcase_add_test(tc, test_collect);
    tcase_add_test(tc, test_self_counters);
    tcase_add_test(tc, test_text_grows);
    tcase_add_test(tc, test_listen_parse);
    tcase_add_test(tc, test_config_http);
    suite_add_tcase(s, tc);
    tc = tcase_create("http");
    tcase_add_checked_fixture(tc, http_setup, http_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_http_routes);
    tcase_add_test(tc, test_http_dashboard_routes);
    tcase_add_test(tc, test_http_keep_alive);
    tcase_add_test(tc, test_http_request_too_large);
    tcase_add_test(tc, test_http_connection_limit);
    tcase_add_test(tc, test_http_close_with_clients);
    tcase_add_test(tc, test_http_off);
    tcase_add_test(tc, test_http_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
