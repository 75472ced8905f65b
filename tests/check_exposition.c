/*
 * check_exposition.c -- the Prometheus text (daemon/exposition.c) of a
 * metrics_collected_t filled by hand: no server, no config, no loop. Every
 * value is chosen so that its line is known exactly: the counter table's
 * scaled and signed rows, the hand-written families, label escaping, the
 * cluster groups and their exact decimal totals. check_metrics.c tests the
 * other half, what metrics_collect reads out of a server.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/exposition.h"
#include "tests/testlib.h"

/* 2026 and 2025, then January and February 2026 */
static const proto_period_t periods[] = {
    {.year = 2026, .kind = PROTO_PERIOD_YEAR},
    {.year = 2025, .kind = PROTO_PERIOD_YEAR},
    {.year = 2026, .kind = PROTO_PERIOD_MONTH, .index = 1},
    {.year = 2026, .kind = PROTO_PERIOD_MONTH, .index = 2},
};
static const char *const metric_names[] = {"revenue", "profit"};
static const metrics_group_t groups[] = {
    {.cluster = "north", .chain = "", .firms = 3, .reporting = {2, 1}, .above_scale = {1, 0}},
    {.cluster = "north", .chain = "a\"b\\c", .firms = 1, .reporting = {1, 0}},
    {.cluster = "south", .chain = "", .firms = 0},
};
/* [group][metric][period], milli-units */
static const __int128 totals[3 * 2 * 4] = {
    3000500,
    2000000,
    1000500,
    2000000, /* north, revenue */
    -20250,
    0,
    0,
    -20250, /* north, profit */
    1000500,
    0,
    1000500,
    0, /* north a"b\c, revenue */
    0,
    0,
    0,
    0, /* north a"b\c, profit */
    7,
    -1,
    0,
    0, /* south, revenue */
    (__int128)INT64_MAX * 10,
    0,
    0,
    0, /* south, profit: past int64 */
};

static metrics_collected_t c;

/* The index of the counter table row of family (and label value, or NULL). */
static size_t row(const char *family, const char *label_value)
{
    const metrics_counter_t *r;
    for (size_t i = 0; (r = metrics_counter(i)) != NULL; i++)
        if (r->family && strcmp(r->family, family) == 0 &&
            (!label_value || (r->label_value && strcmp(r->label_value, label_value) == 0)))
            return i;
    ck_abort_msg("no counter row %s %s", family, label_value ? label_value : "");
    return 0;
}

static void setup(void)
{
    memset(&c, 0, sizeof c);
    c.version = "9.8.7";
    c.started_ms = 1773547140500;
    c.year = 2026;
    c.periods = periods;
    c.nperiods = 4;
    c.metrics = metric_names;
    c.nmetrics = 2;
    c.groups = groups;
    c.ngroups = 3;
    c.totals = totals;
}

static char *render(void)
{
    metrics_text_t t = {0};
    exposition_render(&c, &t);
    metrics_text_printf(&t, "%s", ""); /* NUL-terminated */
    return t.data;
}

START_TEST(test_counter_rows)
{
    c.counters[row("clustermon_samples_applied_total", NULL)] = 12345;
    c.counters[row("clustermon_batches_acked_total", "duplicate")] = 2;
    c.counters[row("clustermon_ready_seconds", NULL)] = 1500; /* ms, shown in s */
    c.counters[row("clustermon_config_last_reload_success_timestamp_seconds", NULL)] =
        (uint64_t)(int64_t)-2500; /* I64, scaled */
    c.counters[row("clustermon_wal_disk_full", NULL)] = 1;
    char *t = render();
    ck_assert_line(t, "clustermon_samples_applied_total 12345");
    ck_assert_line(t, "clustermon_batches_acked_total{result=\"ok\"} 0");
    ck_assert_line(t, "clustermon_batches_acked_total{result=\"duplicate\"} 2");
    ck_assert_line(t, "clustermon_ready_seconds 1.5");
    ck_assert_line(t, "clustermon_config_last_reload_success_timestamp_seconds -2.5");
    ck_assert_line(t, "clustermon_wal_disk_full 1");
    /* a family of several rows: declared once, its rows together */
    ck_assert_int_eq(testlib_count_lines(t, "# TYPE clustermon_batches_acked_total counter"), 1);
    const char *ok = strstr(t, "clustermon_batches_acked_total{result=\"ok\"}");
    ck_assert_ptr_eq(strstr(ok, "\n") + 1,
                     strstr(t, "clustermon_batches_acked_total{result=\"duplicate\"}"));
    free(t);
}
END_TEST

START_TEST(test_own_families)
{
    c.restart_needed = 2;
    c.nacks[PROTO_STATUS_UNKNOWN_FIRM] = 3;
    c.wal_fsyncs = 4;
    c.wal_fsync_ns_total = 2000000;
    c.wal_fsync_ns_max = 1500000;
    c.loop_lag_ms = 250;
    c.socket_peers[METRICS_SOCK_INGEST] = 3;
    c.socket_disconnects[METRICS_SOCK_CONTROL] = 8;
    c.socket_abandoned[METRICS_SOCK_ALERTS] = 6;
    c.agents_known = 11;
    c.http_4xx = 5;
    c.http_connections = 1;
    c.alert_events[PROTO_ALERT_RESOLVED] = 7;
    c.alert_events_suppressed = 2;
    c.alerts_published[PROTO_SEV_CRITICAL] = 9;
    char *t = render();
    ck_assert_line(t, "clustermon_build_info{version=\"9.8.7\"} 1");
    ck_assert_line(t, "clustermon_start_time_seconds 1773547140.5");
    ck_assert_line(t, "clustermon_config_restart_needed 2");
    ck_assert_line(t, "clustermon_batches_nacked_total{reason=\"unknown_firm\"} 3");
    ck_assert_line(t, "clustermon_batches_nacked_total{reason=\"busy\"} 0");
    ck_assert_ptr_null(strstr(t, "reason=\"ok\"")); /* status 0 is no refusal */
    ck_assert_line(t, "# TYPE clustermon_wal_fsync_seconds summary");
    ck_assert_line(t, "clustermon_wal_fsync_seconds_sum 0.002");
    ck_assert_line(t, "clustermon_wal_fsync_seconds_count 4");
    ck_assert_line(t, "clustermon_wal_fsync_max_seconds 0.0015");
    ck_assert_line(t, "clustermon_loop_lag_seconds 0.25");
    ck_assert_line(t, "clustermon_socket_peers{socket=\"ingest\"} 3");
    ck_assert_line(t, "clustermon_socket_disconnects_total{socket=\"control\"} 8");
    ck_assert_line(t, "clustermon_socket_handshakes_abandoned_total{socket=\"alerts\"} 6");
    ck_assert_line(t, "clustermon_agents_known 11");
    ck_assert_line(t, "clustermon_http_responses_total{code=\"4xx\"} 5");
    ck_assert_line(t, "clustermon_http_connections 1");
    ck_assert_line(t, "clustermon_alert_events_total{state=\"resolved\"} 7");
    ck_assert_line(t, "clustermon_alert_events_suppressed_total 2");
    ck_assert_line(t, "clustermon_alerts_published_total{severity=\"critical\"} 9");
    free(t);
}
END_TEST

START_TEST(test_cluster_groups)
{
    char *t = render();
    ck_assert_line(t, "clustermon_cluster_firms{cluster=\"north\",chain=\"\"} 3");
    ck_assert_line(t, "clustermon_cluster_firms{cluster=\"north\",chain=\"a\\\"b\\\\c\"} 1");
    ck_assert_line(t, "clustermon_cluster_firms{cluster=\"south\",chain=\"\"} 0");
    ck_assert_line(t, "clustermon_cluster_firms_reporting{cluster=\"north\",chain=\"\","
                      "year=\"2026\"} 2");
    ck_assert_line(t, "clustermon_cluster_firms_reporting{cluster=\"north\",chain=\"\","
                      "year=\"2025\"} 1");
    ck_assert_line(t, "clustermon_cluster_firms_above_scale{cluster=\"north\",chain=\"\","
                      "year=\"2026\"} 1");
    ck_assert_ptr_null(strstr(t, "clustermon_cluster_firms{cluster=\"north\",chain=\"\",year"));
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"north\",chain=\"\","
                      "metric=\"revenue\",period=\"2026\"} 3000.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"north\",chain=\"\","
                      "metric=\"profit\",period=\"2026-02\"} -20.25");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"north\",chain=\"a\\\"b\\\\c\","
                      "metric=\"revenue\",period=\"2026-01\"} 1000.5");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"south\",chain=\"\","
                      "metric=\"revenue\",period=\"2026\"} 0.007");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"south\",chain=\"\","
                      "metric=\"revenue\",period=\"2025\"} -0.001");
    ck_assert_line(t, "clustermon_cluster_metric_total{cluster=\"south\",chain=\"\","
                      "metric=\"profit\",period=\"2026\"} 92233720368547760");
    /* every group x metric x period, once */
    ck_assert_int_eq(testlib_count_lines(t, "# TYPE clustermon_cluster_metric_total untyped"), 1);
    int n = 0;
    for (const char *p = t; (p = strstr(p, "\nclustermon_cluster_metric_total{")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 3 * 2 * 4);
    free(t);
}
END_TEST

/* No clusters (a config without any): the families are declared, empty. */
START_TEST(test_no_groups)
{
    c.ngroups = 0;
    c.nmetrics = 0;
    char *t = render();
    ck_assert_line(t, "# TYPE clustermon_cluster_firms gauge");
    ck_assert_line(t, "# TYPE clustermon_cluster_metric_total untyped");
    ck_assert_ptr_null(strstr(t, "cluster=\""));
    free(t);
}
END_TEST

START_TEST(test_label_escape)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"two\nlines", "two\\nlines"},
        {"", ""},
        {"节能环保", "节能环保"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        metrics_text_t t = {0};
        exposition_label_escape(&t, cases[i].in);
        metrics_text_printf(&t, "%s", "");
        ck_assert_str_eq(t.data, cases[i].out);
        metrics_text_free(&t);
    }
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_counter_rows, test_own_families, test_cluster_groups,
        test_no_groups,    test_label_escape,
    };
    return testlib_run(
        testlib_suite("exposition", setup, NULL, tests, sizeof tests / sizeof tests[0]));
}
