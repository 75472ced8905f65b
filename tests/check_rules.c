/*
 * check_rules.c -- threshold rules and the alerts they publish (daemon/rules.c).
 *
 * The hysteresis step is a pure function, tested by a table. rules_on_reading
 * is tested end to end through a real alerts_t: a PUB bound on inproc:// and
 * a SUB connected to it, so each test sees the exact frames a subscriber
 * would. "Nothing was published" is proved, not waited for: the test sends a
 * numbered probe on the same PUB socket and the probe must be the very next
 * message the SUB receives (one pipe keeps order).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/rules.h"

/* ---- the pure step ----------------------------------------------------------- */

static const struct {
    double above, clear;
    bool firing;
    double value;
    rule_step_t want;
} steps[] = {
    /* above 50, clear 40 */
    {50, 40, false, 49, RULE_STEP_NONE},
    {50, 40, false, 50, RULE_STEP_NONE}, /* at the limit is not above it */
    {50, 40, false, 50.001, RULE_STEP_FIRE},
    {50, 40, false, 1e9, RULE_STEP_FIRE},
    {50, 40, false, 39, RULE_STEP_NONE},  /* resolved stays resolved */
    {50, 40, true, 1e9, RULE_STEP_NONE},  /* firing stays firing: no second fire */
    {50, 40, true, 50.001, RULE_STEP_NONE},
    {50, 40, true, 50, RULE_STEP_NONE},   /* between clear and above: hold */
    {50, 40, true, 45, RULE_STEP_NONE},
    {50, 40, true, 40.001, RULE_STEP_NONE},
    {50, 40, true, 40, RULE_STEP_RESOLVE}, /* at the clear level resolves */
    {50, 40, true, 39, RULE_STEP_RESOLVE},
    {50, 40, true, -1e9, RULE_STEP_RESOLVE},
    /* clear defaults to above: no gap */
    {50, 50, false, 50, RULE_STEP_NONE},
    {50, 50, false, 51, RULE_STEP_FIRE},
    {50, 50, true, 50, RULE_STEP_RESOLVE},
    {50, 50, true, 50.5, RULE_STEP_NONE},
    /* negative limits */
    {-10, -20, false, -5, RULE_STEP_FIRE},
    {-10, -20, true, -15, RULE_STEP_NONE},
    {-10, -20, true, -20, RULE_STEP_RESOLVE},
};

START_TEST(test_threshold_step)
{
    config_rule_t r = {.id = "r", .above = steps[_i].above, .clear = steps[_i].clear};

    ck_assert_msg(rules_threshold_step(&r, steps[_i].firing, steps[_i].value) == steps[_i].want,
                  "above %g clear %g %s, value %g: got %d, want %d", steps[_i].above,
                  steps[_i].clear,
                  steps[_i].firing ? "firing" : "resolved", steps[_i].value,
                  (int)rules_threshold_step(&r, steps[_i].firing, steps[_i].value),
                  (int)steps[_i].want);
}
END_TEST

/* ---- through a real PUB socket ---------------------------------------------- */

#define ENDPOINT "inproc://check-rules-alerts"
#define TS0 INT64_C(1656604800000) /* 2022-06-30T16:00:00Z */

static const char conf_text[] =
    "[daemon]\n"
    "registry = tests/data/registry/good.csv\n"
    "alerts = " ENDPOINT "\n"
    "[metric revenue]\nkind = period\n"
    "[metric cod]\nkind = reading\nunit = mg/L\n"
    "[cluster energy-env]\nchains = water-pollution-control, green-building-materials\n"
    "[cluster new-energy]\nchains = solar-pv, energy-storage\n"
    "[rule cod-limit]\ntype = threshold\nmetric = cod\ncluster = energy-env\n"
    "chain = water-pollution-control\nabove = 50\nclear = 40\nseverity = warning\n"
    "[rule cod-critical]\ntype = threshold\nmetric = cod\ncluster = energy-env\n"
    "above = 100\nseverity = critical\n";

static config_t *cfg;
static registry_t *reg;
static void *zctx, *sub;
static alerts_t al;
static rules_t rs;
static int revenue, cod;
static unsigned probes;

/* A firm's index, by id. */
static int firm(const char *id)
{
    int f = registry_find(reg, id, strlen(id));

    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

/* Receives one frame into buf (NUL-terminated), waiting at most 5 s. */
static size_t recv_frame(char *buf, size_t size, bool *ret_more)
{
    zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
    int more = 0;
    size_t len = sizeof more;

    ck_assert_msg(zmq_poll(&item, 1, 5000) == 1, "nothing received within 5 s");
    int n = zmq_recv(sub, buf, size - 1, ZMQ_DONTWAIT);
    ck_assert_int_ge(n, 0);
    ck_assert_uint_lt((size_t)n, size - 1); /* not truncated */
    buf[n] = '\0';
    ck_assert_int_eq(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &len), 0);
    *ret_more = more != 0;
    return (size_t)n;
}

static void send_probe(unsigned n)
{
    char probe[32];
    int len = snprintf(probe, sizeof probe, "probe.%u", n);

    ck_assert_int_eq(zmq_send(al.sock, probe, (size_t)len, ZMQ_DONTWAIT), len);
}

/* Proves that the SUB has seen everything published before this call and
 * that none of it was an alert. Earlier probes are skipped. */
static void expect_nothing(void)
{
    char buf[8192], want[32];
    bool more;
    unsigned n = ++probes;

    snprintf(want, sizeof want, "probe.%u", n);
    send_probe(n);
    for (;;) {
        recv_frame(buf, sizeof buf, &more);
        ck_assert_msg(strncmp(buf, "probe.", 6) == 0, "unexpected message, topic \"%s\"", buf);
        ck_assert(!more);
        if (strcmp(buf, want) == 0)
            return;
    }
}

/* Receives the next alert: its topic into topic, the alert decoded from body
 * (whose strings borrow from body). Stale probes are skipped. */
static void recv_alert(char *topic, size_t topicsize, char *body, size_t bodysize, proto_alert_t *a)
{
    char err[PROTO_ERRLEN];
    bool more;

    do {
        recv_frame(topic, topicsize, &more);
    } while (!more && strncmp(topic, "probe.", 6) == 0);
    ck_assert_msg(more, "topic \"%s\" without a body", topic);
    size_t n = recv_frame(body, bodysize, &more);
    ck_assert(!more);
    ck_assert_msg(proto_alert_decode(body, n, a, err, sizeof err) == PROTO_OK, "%s", err);
}

static void assert_str(proto_str_t s, const char *want)
{
    ck_assert_msg(proto_str_eq(s, want), "\"%.*s\" is not \"%s\"", PROTO_STR_ARG(s), want);
}

static void setup(void)
{
    char err[CONFIG_ERRLEN];
    int linger = 0;

    log_set_level(LOG_LVL_WARN); /* every published alert is logged at info */
    ck_assert_msg(config_load("rules.conf", conf_text, NULL, &cfg, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(registry_load(cfg->registry, cfg, &reg, err, sizeof err) == 0, "%s", err);
    revenue = config_metric_find(cfg, "revenue", 7);
    cod = config_metric_find(cfg, "cod", 3);
    ck_assert_int_ge(cod, 0);

    zctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(zctx);
    ck_assert_msg(alerts_open(&al, zctx, cfg->alerts, err, sizeof err) == 0, "%s", err);
    sub = zmq_socket(zctx, ZMQ_SUB);
    ck_assert_ptr_nonnull(sub);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "alert.", 6), 0);
    ck_assert_int_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "probe.", 6), 0);
    ck_assert_int_eq(zmq_connect(sub, cfg->alerts), 0);

    /* PUB drops what it sends before the subscription reaches it: probe,
     * every 10 ms, until one arrives (at most 5 s). */
    zmq_pollitem_t item = {.socket = sub, .events = ZMQ_POLLIN};
    probes = 0;
    for (int i = 0; i < 500; i++) {
        send_probe(++probes);
        if (zmq_poll(&item, 1, 10) == 1)
            break;
    }
    ck_assert_msg(item.revents & ZMQ_POLLIN, "the subscription never reached the PUB socket");
    expect_nothing(); /* drains the probes */

    rules_init(&rs, cfg, reg);
    ck_assert_uint_eq(rs.firing, 0);
}

static void teardown(void)
{
    rules_free(&rs);
    ck_assert_ptr_null(rs.state);
    alerts_close(&al);
    zmq_close(sub);
    ck_assert_int_eq(zmq_ctx_term(zctx), 0);
    registry_destroy(&reg);
    config_destroy(&cfg);
}

START_TEST(test_fire_publishes_one_alert)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-1"), cod, 55.5, TS0);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_str_eq(topic, "alert.energy-env.warning");
    assert_str(a.id, "cod-limit:wp-1");
    assert_str(a.rule, "cod-limit");
    ck_assert_uint_eq(a.severity, PROTO_SEV_WARNING);
    ck_assert_uint_eq(a.state, PROTO_ALERT_FIRING);
    assert_str(a.cluster, "energy-env");
    assert_str(a.chain, "water-pollution-control");
    assert_str(a.firm, "wp-1");
    assert_str(a.metric, "cod");
    ck_assert_double_eq(a.observed, 55.5);
    ck_assert_double_eq(a.expected, 50);
    ck_assert_int_eq(a.since_ms, TS0);
    ck_assert_int_eq(a.ts_ms, TS0);
    ck_assert_uint_eq(a.seq, 1);
    assert_str(a.summary,
               "cod 55.5 mg/L at wp-1 (Water Plant One (fictional)) is above the limit 50 mg/L");
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 1);
    ck_assert_uint_eq(al.published, 1);
    ck_assert_uint_eq(al.by_severity[PROTO_SEV_WARNING], 1);
    ck_assert_uint_eq(al.send_errors, 0);
}
END_TEST

START_TEST(test_below_limit_publishes_nothing)
{
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 49, TS0);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 50, TS0 + 1); /* at the limit */
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 0);
    ck_assert_uint_eq(al.published, 0);
}
END_TEST

START_TEST(test_further_breaches_publish_nothing)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-1"), cod, 55, TS0);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 60, TS0 + 1000);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 99, TS0 + 2000);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_uint_eq(a.state, PROTO_ALERT_FIRING);
    ck_assert_double_eq(a.observed, 55);
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 1);
    ck_assert_uint_eq(al.published, 1);
}
END_TEST

START_TEST(test_between_clear_and_above_publishes_nothing)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-1"), cod, 55, TS0);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 45, TS0 + 1000);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 40.5, TS0 + 2000);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 50, TS0 + 3000);
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 1);
}
END_TEST

START_TEST(test_clear_publishes_resolved)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-2"), cod, 55, TS0);
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 45, TS0 + 1000);
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 40, TS0 + 2000);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_uint_eq(a.state, PROTO_ALERT_FIRING);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_str_eq(topic, "alert.energy-env.warning");
    assert_str(a.id, "cod-limit:wp-2");
    ck_assert_uint_eq(a.state, PROTO_ALERT_RESOLVED);
    ck_assert_double_eq(a.observed, 40);
    ck_assert_double_eq(a.expected, 40); /* the clear level */
    ck_assert_int_eq(a.since_ms, TS0);   /* when it started firing */
    ck_assert_int_eq(a.ts_ms, TS0 + 2000);
    ck_assert_uint_eq(a.seq, 2);
    assert_str(a.summary, "cod 40 mg/L at wp-2 (Water Plant Two, \"Clearwave\" (fictional)) "
                          "is back at or below 40 mg/L");
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 0);
    /* and once resolved, a value under the limit stays quiet */
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 30, TS0 + 3000);
    expect_nothing();
}
END_TEST

START_TEST(test_fires_again_after_resolving)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-1"), cod, 55, TS0);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 10, TS0 + 1000);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 51, TS0 + 5000);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_uint_eq(a.state, PROTO_ALERT_FIRING);
    ck_assert_int_eq(a.since_ms, TS0 + 5000); /* a new episode */
    ck_assert_uint_eq(a.seq, 3);
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 1);
}
END_TEST

/* firing counts alerts, across firms and rules. */
START_TEST(test_firing_counts)
{
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 55, TS0);
    ck_assert_uint_eq(rs.firing, 1);
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 55, TS0);
    ck_assert_uint_eq(rs.firing, 2);
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 150, TS0 + 1); /* cod-critical too */
    ck_assert_uint_eq(rs.firing, 3);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 0, TS0 + 2);
    ck_assert_uint_eq(rs.firing, 2);
    rules_on_reading(&rs, &al, firm("wp-2"), cod, 0, TS0 + 3); /* resolves both */
    ck_assert_uint_eq(rs.firing, 0);
    ck_assert_uint_eq(al.published, 6);
}
END_TEST

/* cod-limit watches one chain of energy-env: firms elsewhere are not evaluated. */
START_TEST(test_other_chain_or_cluster_not_evaluated)
{
    rules_on_reading(&rs, &al, firm("gb-1"), cod, 70, TS0); /* another chain */
    rules_on_reading(&rs, &al, firm("ee-m"), cod, 70, TS0); /* on no chain */
    rules_on_reading(&rs, &al, firm("pv-1"), cod, 1e6, TS0); /* another cluster */
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 0);
}
END_TEST

START_TEST(test_other_metric_not_evaluated)
{
    rules_on_reading(&rs, &al, firm("wp-1"), revenue, 1e6, TS0);
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 0);
}
END_TEST

/* A rule without a chain watches the whole cluster, chainless firms too. */
START_TEST(test_cluster_wide_rule)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("gb-1"), cod, 150, TS0);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_str_eq(topic, "alert.energy-env.critical");
    assert_str(a.id, "cod-critical:gb-1");
    ck_assert_uint_eq(a.severity, PROTO_SEV_CRITICAL);
    assert_str(a.chain, "green-building-materials"); /* the firm's chain */
    ck_assert_double_eq(a.expected, 100);

    rules_on_reading(&rs, &al, firm("ee-m"), cod, 150, TS0);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    assert_str(a.firm, "ee-m");
    ck_assert_uint_eq(a.chain.len, 0); /* absent: the firm is on no chain */
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 2);
    ck_assert_uint_eq(al.by_severity[PROTO_SEV_CRITICAL], 2);

    rules_on_reading(&rs, &al, firm("pv-1"), cod, 150, TS0); /* still not new-energy */
    expect_nothing();
}
END_TEST

/* One reading that breaks two rules publishes two alerts, in rule order. */
START_TEST(test_two_rules_one_reading)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, &al, firm("wp-1"), cod, 150, TS0);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_str_eq(topic, "alert.energy-env.warning");
    assert_str(a.rule, "cod-limit");
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_str_eq(topic, "alert.energy-env.critical");
    assert_str(a.rule, "cod-critical");
    ck_assert_uint_eq(a.seq, 2);
    expect_nothing();
    ck_assert_uint_eq(rs.firing, 2);
}
END_TEST

/* With no alerts_t (a WAL replay) the state moves and nothing is published;
 * the next live transition is published as usual. */
START_TEST(test_replay_without_alerts)
{
    char topic[128], body[8192];
    proto_alert_t a;

    rules_on_reading(&rs, NULL, firm("wp-1"), cod, 55, TS0);
    ck_assert_uint_eq(rs.firing, 1);
    rules_on_reading(&rs, NULL, firm("wp-1"), cod, 60, TS0 + 1000);
    expect_nothing();
    ck_assert_uint_eq(al.published, 0);
    rules_on_reading(&rs, &al, firm("wp-1"), cod, 30, TS0 + 2000);
    recv_alert(topic, sizeof topic, body, sizeof body, &a);
    ck_assert_uint_eq(a.state, PROTO_ALERT_RESOLVED);
    ck_assert_int_eq(a.since_ms, TS0); /* the episode began in the replayed part */
    ck_assert_uint_eq(rs.firing, 0);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("step");

    tcase_add_loop_test(tc, test_threshold_step, 0, (int)(sizeof steps / sizeof steps[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("publish");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fire_publishes_one_alert);
    tcase_add_test(tc, test_below_limit_publishes_nothing);
    tcase_add_test(tc, test_further_breaches_publish_nothing);
    tcase_add_test(tc, test_between_clear_and_above_publishes_nothing);
    tcase_add_test(tc, test_clear_publishes_resolved);
    tcase_add_test(tc, test_fires_again_after_resolving);
    tcase_add_test(tc, test_firing_counts);
    tcase_add_test(tc, test_other_chain_or_cluster_not_evaluated);
    tcase_add_test(tc, test_other_metric_not_evaluated);
    tcase_add_test(tc, test_cluster_wide_rule);
    tcase_add_test(tc, test_two_rules_one_reading);
    tcase_add_test(tc, test_replay_without_alerts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rules_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
