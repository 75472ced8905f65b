/*
 * check_config.c -- clustermond's config parser and validator (daemon/config.c).
 *
 * First the shipped default (daemon/clustermond.conf, and the copy compiled
 * into the binary) must parse into exactly the metrics, clusters, chains and
 * resolved rule indexes it spells out, with the documented defaults filled
 * in. Then a table of broken configs, each given as a string, and each
 * asserting the start of the exact "file:line: field: reason" message: the
 * line a user has to go and fix. A few of those live as golden files under
 * tests/data/config/ so the file path (not only a label) reaches the message.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

/* The copy of daemon/clustermond.conf compiled into libdaemon.a by the Makefile. */
extern const char clustermond_default_conf[];

#define DEFAULT_CONF "daemon/clustermond.conf"
#define DATA "tests/data/config/"

static config_t *load_ok(const char *path, const char *text, const char *base_dir)
{
    config_t *cfg = NULL;
    char err[CONFIG_ERRLEN];

    ck_assert_msg(config_load(path, text, base_dir, &cfg, err, sizeof err) == 0, "%s: %s", path,
                  err);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* Asserts that loading fails with a message that starts with want, and leaves
 * the caller's pointer alone: a reload keeps running on the config it has
 * (the pointer starts at a sentinel, so a NULL or a half-built config
 * written into it on failure is caught). */
static void expect_error(const char *what, const char *path, const char *text, const char *want)
{
    static config_t sentinel;
    config_t *cfg = &sentinel;
    char err[CONFIG_ERRLEN];

    ck_assert_msg(config_load(path, text, NULL, &cfg, err, sizeof err) == -1,
                  "%s: loaded, expected \"%s\"", what, want);
    ck_assert_msg(cfg == &sentinel, "%s: a failed load changed the caller's pointer", what);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                  "%s:\n got      \"%s\"\n expected \"%s...\"", what, err, want);
}

/* ---- the shipped default ------------------------------------------------- */

static void check_default(const config_t *cfg)
{
    static const struct {
        const char *name;
        metric_kind_t kind;
        const char *unit;
    } metrics[] = {
        {"revenue", METRIC_PERIOD, "yuan"},
        {"profit", METRIC_PERIOD, "yuan"},
        {"energy", METRIC_PERIOD, "tce"},
        {"cod", METRIC_READING, "mg/L"},
    };
    static const struct {
        const char *id;
        const char *chains[2];
    } clusters[] = {
        {"energy-env", {"water-pollution-control", "green-building-materials"}},
        {"new-energy", {"solar-pv", "energy-storage"}},
    };

    ck_assert_uint_eq(cfg->nmetrics, sizeof metrics / sizeof metrics[0]);
    for (size_t i = 0; i < cfg->nmetrics; i++) {
        ck_assert_str_eq(cfg->metrics[i].name, metrics[i].name);
        ck_assert_int_eq(cfg->metrics[i].kind, metrics[i].kind);
        ck_assert_str_eq(cfg->metrics[i].unit, metrics[i].unit);
    }
    ck_assert_uint_eq(cfg->nclusters, sizeof clusters / sizeof clusters[0]);
    for (size_t i = 0; i < cfg->nclusters; i++) {
        ck_assert_str_eq(cfg->clusters[i].id, clusters[i].id);
        ck_assert_uint_eq(cfg->clusters[i].nchains, 2);
        for (size_t j = 0; j < 2; j++)
            ck_assert_str_eq(cfg->clusters[i].chains[j], clusters[i].chains[j]);
    }
    ck_assert_str_eq(cfg->clusters[0].title, "Energy conservation & environmental protection");

    static const struct {
        const char *id;
        rule_type_t type;
        int metric, cluster, chain;
        proto_severity_t severity;
    } rules[] = {
        {"cod-limit", RULE_THRESHOLD, 3, 0, 0, PROTO_SEV_WARNING},
        {"ne-revenue-growth", RULE_GROWTH, 0, 1, -1, PROTO_SEV_CRITICAL},
        {"revenue-drop", RULE_CHANGE, 0, 0, -1, PROTO_SEV_WARNING},
        {"revenue-outlier", RULE_OUTLIER, 0, 0, -1, PROTO_SEV_INFO},
        {"monthly-report", RULE_SILENCE, 0, 1, -1, PROTO_SEV_WARNING},
        {"above-scale", RULE_ABOVE_SCALE, 0, 0, -1, PROTO_SEV_INFO}, /* the revenue metric */
    };

    ck_assert_uint_eq(cfg->nrules, sizeof rules / sizeof rules[0]);
    for (size_t i = 0; i < cfg->nrules; i++) {
        const config_rule_t *r = &cfg->rules[i];
        ck_assert_str_eq(r->id, rules[i].id);
        ck_assert_int_eq(r->type, rules[i].type);
        ck_assert_int_eq(r->metric, rules[i].metric);
        ck_assert_int_eq(r->cluster, rules[i].cluster);
        ck_assert_int_eq(r->chain, rules[i].chain);
        ck_assert_int_eq(r->tier, -1);
        ck_assert_int_eq(r->severity, rules[i].severity);
        ck_assert_int_eq(r->repeat_ms, 0);
    }
    const config_rule_t *r = &cfg->rules[0];
    ck_assert(r->has_above);
    ck_assert(!r->has_below);
    ck_assert_double_eq(r->above, 50);
    ck_assert_double_eq(r->clear, 40);
    ck_assert_uint_eq(r->for_samples, 2);
    ck_assert_int_eq(r->for_ms, 0);
    r = &cfg->rules[1];
    ck_assert_int_eq(r->year, 2022);
    ck_assert_double_eq(r->target_pct, 15);
    ck_assert_double_eq(r->tolerance_pp, 2);
    ck_assert_double_eq(r->quorum_pct, 80);
    ck_assert_int_eq(r->prorate, PRORATE_SEASONAL);
    r = &cfg->rules[2];
    ck_assert(!r->vs_last_year);
    ck_assert_double_eq(r->drop_pct, 50);
    ck_assert_double_eq(r->rise_pct, 0);
    r = &cfg->rules[3];
    ck_assert_uint_eq(r->window, 6);
    ck_assert_uint_eq(r->min_history, 4);
    ck_assert_double_eq(r->k, 5);
    ck_assert(r->outlier_seasonal); /* the default */
    ck_assert_double_eq(r->min_spread_pct, 5);
    r = &cfg->rules[4];
    ck_assert(!r->continuous);
    ck_assert(r->data_clock);
    ck_assert_int_eq(r->due_day, 10);
    /* [alerting] */
    ck_assert_int_eq(cfg->flap_window_ms, 3600 * 1000);
    ck_assert_uint_eq(cfg->flap_max, 6);
    ck_assert_uint_eq(cfg->group_max, 5);

    ck_assert_str_eq(cfg->ingest, "tcp://127.0.0.1:7601");
    ck_assert_str_eq(cfg->alerts, "tcp://127.0.0.1:7602");
    ck_assert_str_eq(cfg->control, "tcp://127.0.0.1:7603");
    ck_assert_str_eq(cfg->state_dir, "clustermon-state");
    ck_assert_str_eq(cfg->registry, "daemon/demo/registry.csv");
    ck_assert_str_eq(cfg->timezone, "Asia/Shanghai");
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_double_eq(cfg->above_scale_line, 20000000);
    ck_assert_str_eq(cfg->revenue_metric, "revenue");
    ck_assert_str_eq(cfg->profit_metric, "profit");
    ck_assert_int_eq(cfg->revenue_idx, 0);
    ck_assert_int_eq(cfg->profit_idx, 1);
}

START_TEST(test_default_file)
{
    config_t *cfg = load_ok(DEFAULT_CONF, NULL, NULL);

    check_default(cfg);
    ck_assert_str_eq(cfg->path, DEFAULT_CONF);
    config_destroy(&cfg);
    ck_assert_ptr_null(cfg);
}
END_TEST

START_TEST(test_default_embedded)
{
    config_t *cfg = load_ok("(built-in)", clustermond_default_conf, NULL);

    check_default(cfg);
    config_destroy(&cfg);
}
END_TEST

/* Relative paths are resolved against base_dir; absolute ones are kept. */
START_TEST(test_base_dir)
{
    config_t *cfg = load_ok(DEFAULT_CONF, NULL, "/etc/clustermon");

    ck_assert_str_eq(cfg->registry, "/etc/clustermon/daemon/demo/registry.csv");
    ck_assert_str_eq(cfg->state_dir, "/etc/clustermon/clustermon-state");
    ck_assert_str_eq(cfg->timezone, "Asia/Shanghai"); /* not a path */
    config_destroy(&cfg);

    cfg = load_ok("t.conf",
                  "[daemon]\nregistry = /srv/firms.csv\n[metric revenue]\nkind = period\n"
                  "[cluster c]\nchains = x\n",
                  "/etc/clustermon");
    ck_assert_str_eq(cfg->registry, "/srv/firms.csv");
    ck_assert_str_eq(cfg->state_dir, "/etc/clustermon/clustermon-state"); /* the default, too */
    config_destroy(&cfg);
}
END_TEST

/* Everything but the registry has a default; profit may be unconfigured. */
START_TEST(test_minimal_defaults)
{
    config_t *cfg = load_ok("t.conf",
                            "[daemon]\nregistry = r.csv\n[metric revenue]\nkind = period\n"
                            "[cluster c]\nchains = x\n",
                            NULL);

    ck_assert_str_eq(cfg->ingest, "tcp://127.0.0.1:7601");
    ck_assert_str_eq(cfg->alerts, "tcp://127.0.0.1:7602");
    ck_assert_str_eq(cfg->control, "tcp://127.0.0.1:7603");
    ck_assert_str_eq(cfg->timezone, "Asia/Shanghai");
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_double_eq(cfg->above_scale_line, 20000000);
    ck_assert_int_eq(cfg->revenue_idx, 0);
    ck_assert_int_eq(cfg->profit_idx, -1);
    ck_assert_str_eq(cfg->metrics[0].unit, "");
    ck_assert_str_eq(cfg->clusters[0].title, "c"); /* the id stands in for a title */
    ck_assert_uint_eq(cfg->nrules, 0);
    config_destroy(&cfg);
}
END_TEST

/* ZeroMQ cannot bind a host name: localhost is read as the IPv4 loopback;
 * an IPv6 literal is kept (the daemon's context enables IPv6). */
START_TEST(test_localhost_endpoints)
{
    config_t *cfg = load_ok("t.conf",
                            "[daemon]\nregistry = r.csv\ningest = tcp://localhost:7601\n"
                            "control = tcp://[::1]:7603\n[metric revenue]\nkind = period\n"
                            "[cluster c]\nchains = x\n",
                            NULL);

    ck_assert_str_eq(cfg->ingest, "tcp://127.0.0.1:7601");
    ck_assert_str_eq(cfg->control, "tcp://[::1]:7603");
    config_destroy(&cfg);
}
END_TEST

/* A rule without clear resolves at its limit; comments and CRLF are fine. */
START_TEST(test_rule_clear_default)
{
    config_t *cfg = load_ok("t.conf",
                            "; a comment\r\n[daemon]\r\nregistry = r.csv\r\ntimezone = UTC\r\n"
                            "ingest = ipc:///tmp/x.sock\r\nalerts = inproc://alerts\r\n"
                            "[metric revenue]\r\nkind = period\r\n[metric ph]\r\nkind = reading\r\n"
                            "[cluster c]\r\nchains = x, y\r\n"
                            "[rule r]\r\ntype = threshold\r\nmetric = ph\r\ncluster = c\r\n"
                            "above = 9.5\r\nseverity = critical\r\n",
                            NULL);

    ck_assert_str_eq(cfg->timezone, "UTC");
    ck_assert_str_eq(cfg->ingest, "ipc:///tmp/x.sock");
    ck_assert_str_eq(cfg->alerts, "inproc://alerts");
    ck_assert_uint_eq(cfg->nrules, 1);
    ck_assert_int_eq(cfg->rules[0].metric, 1);
    ck_assert_int_eq(cfg->rules[0].cluster, 0);
    ck_assert_int_eq(cfg->rules[0].chain, -1); /* every firm of the cluster */
    ck_assert_double_eq(cfg->rules[0].above, 9.5);
    ck_assert_double_eq(cfg->rules[0].clear, 9.5);
    ck_assert_int_eq(cfg->rules[0].severity, PROTO_SEV_CRITICAL);
    ck_assert_int_eq(cfg->rules[0].line, 13);
    config_destroy(&cfg);
}
END_TEST

/* Growth and silence keys: defaults (year = current, quorum 80 %, prorate
 * auto, grace by the schedule) and the accepted spellings. */
static const struct {
    const char *keys;
    int year;
    double target, quorum;
    rule_prorate_t prorate;
} growth_ok[] = {
    {"target = 12\n", 0, 12, 80, PRORATE_AUTO},
    {"target = 12\nyear = current\n", 0, 12, 80, PRORATE_AUTO},
    {"target = 12\nyear = 2024\n", 2024, 12, 80, PRORATE_AUTO},
    {"target = 0.5%\n", 0, 0.5, 80, PRORATE_AUTO}, /* the percent sign: a sub-1 % target */
    {"target = -0.5%\n", 0, -0.5, 80, PRORATE_AUTO},
    {"target = 12%\n", 0, 12, 80, PRORATE_AUTO},
    {"target = 0\n", 0, 0, 80, PRORATE_AUTO}, /* hold last year's level */
    {"target = -3\n", 0, -3, 80, PRORATE_AUTO},
    {"target = 1\nquorum = 0\nprorate = linear\n", 0, 1, 0, PRORATE_LINEAR},
    {"target = 1\nprorate = seasonal\n", 0, 1, 80, PRORATE_SEASONAL},
    {"target = 1\nprorate = auto\n", 0, 1, 80, PRORATE_AUTO},
};

START_TEST(test_growth_keys)
{
    char text[512];
    snprintf(text, sizeof text,
             "[daemon]\nregistry = r.csv\n[metric revenue]\nkind = period\n"
             "[cluster c]\nchains = x\n[rule g]\ntype = growth\nmetric = revenue\ncluster = c\n%s"
             "[rule s]\ntype = silence\ncluster = c\n[rule s2]\ntype = silence\ncluster = c\n"
             "grace = 2h\n",
             growth_ok[_i].keys);
    config_t *cfg = load_ok("t.conf", text, NULL);
    const config_rule_t *r = &cfg->rules[0];
    ck_assert_int_eq(r->year, growth_ok[_i].year);
    ck_assert_double_eq(r->target_pct, growth_ok[_i].target);
    ck_assert_double_eq(r->quorum_pct, growth_ok[_i].quorum);
    ck_assert_int_eq(r->prorate, growth_ok[_i].prorate);
    ck_assert_int_eq(cfg->rules[1].grace_ms, -1);
    ck_assert_int_eq(cfg->rules[2].grace_ms, 2 * 3600 * 1000);
    config_destroy(&cfg);
}
END_TEST

/* The lookups take (ptr, len): a wire string is not NUL-terminated. */
START_TEST(test_find_bounded)
{
    config_t *cfg = load_ok(DEFAULT_CONF, NULL, NULL);
    const char wire[] = "codxyz";

    ck_assert_int_eq(config_metric_find(cfg, wire, 3), 3);
    ck_assert_int_eq(config_metric_find(cfg, wire, 4), -1);
    ck_assert_int_eq(config_metric_find(cfg, "co", 2), -1);
    ck_assert_int_eq(config_metric_find(cfg, "", 0), -1);
    ck_assert_int_eq(config_cluster_find(cfg, "new-energy!", 10), 1);
    ck_assert_int_eq(config_cluster_find(cfg, "new-energ", 9), -1);
    ck_assert_int_eq(config_chain_find(&cfg->clusters[1], "energy-storage..", 14), 1);
    ck_assert_int_eq(config_chain_find(&cfg->clusters[1], "solar-pv", 8), 0);
    ck_assert_int_eq(config_chain_find(&cfg->clusters[0], "solar-pv", 8), -1);
    ck_assert_str_eq(config_metric_kind_name(METRIC_PERIOD), "period");
    ck_assert_str_eq(config_metric_kind_name(METRIC_READING), "reading");
    config_destroy(&cfg);
}
END_TEST

START_TEST(test_missing_file)
{
    expect_error("missing file", DATA "no-such-file.conf", NULL,
                 DATA "no-such-file.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_destroy_null)
{
    config_t *cfg = load_ok(DEFAULT_CONF, NULL, NULL);

    config_destroy(&cfg);
    ck_assert_ptr_null(cfg); /* set to NULL, so a second destroy ... */
    config_destroy(&cfg);    /* ... is a no-op, as free(NULL) is */
    ck_assert_ptr_null(cfg);
}
END_TEST

/* ---- broken configs -------------------------------------------------------- */

/* Lines 1-2: a [daemon] with its one required key. */
#define DAEMON "[daemon]\nregistry = r.csv\n"
/* Lines 3-8 (after DAEMON): two metrics and a cluster. */
#define BODY                                                                                       \
    "[metric revenue]\nkind = period\n[metric cod]\nkind = reading\n[cluster ee]\nchains = a, b\n"
/* Lines 1-8: a valid config; cases append from line 9. */
#define BASE DAEMON BODY
/* Lines 9-12 of a rule, then the case's own keys from line 13. */
#define RULE "[rule r1]\ntype = threshold\nmetric = cod\ncluster = ee\n"

static const struct {
    const char *name;
    const char *text;
    const char *want; /* the start of the message */
} bad[] = {
    /* structure */
    /* [upstream] (a city forwarding to its province) */
    {"upstream without endpoint", BASE "[upstream]\ncity = jining\n",
     "t.conf:9: upstream.endpoint: required in [upstream]"},
    {"upstream without city", BASE "[upstream]\nendpoint = tcp://127.0.0.1:7601\n",
     "t.conf:9: upstream.city: required"},
    {"upstream bad endpoint", BASE "[upstream]\nendpoint = http://x\ncity = jining\n",
     "t.conf:9: upstream.endpoint: 'http://x' is not a ZeroMQ endpoint"},
    {"upstream key alone", BASE "[upstream]\nendpoint = ipc://x\ncity = j\nkey = j.key\n",
     "t.conf:9: upstream.server_key: server_key and key go together"},
    {"upstream unknown metric",
     BASE "[upstream]\nendpoint = ipc://x\ncity = j\nmetrics = revenue, gdp\n",
     "t.conf:9: upstream.metrics: 'gdp' is not a configured metric"},
    {"upstream unknown key", BASE "[upstream]\nregion = x\n",
     "t.conf:10: upstream.region: unknown option"},
    {"upstream twice", BASE "[upstream]\ncity = j\n[upstream]\n",
     "t.conf:11: upstream: [upstream] is defined twice (first on line 9)"},
    {"upstream window", BASE "[upstream]\nwindow = 65\n",
     "t.conf:10: upstream.window: '65' is not"},
    {"silence city bad id", BASE "[rule q]\ntype = silence\ncluster = ee\ncity = a b\n",
     "t.conf:12: rule.q.city: 'a b'"},
    {"city on a threshold", BASE RULE "city = jining\n", "t.conf:13: rule.r1.city"},
    /* [remote_write] (Prometheus remote-write from the WAL) */
    {"remote_write without url", BASE "[remote_write]\nmetrics = revenue\n",
     "t.conf:9: remote_write.url: required in [remote_write]"},
    {"remote_write https", BASE "[remote_write]\nurl = https://tsdb/api/v1/write\n",
     "t.conf:9: remote_write.url: 'https://tsdb/api/v1/write': only http://"},
    {"remote_write user alone", BASE "[remote_write]\nurl = http://h:9090/w\nuser = j\n",
     "t.conf:9: remote_write.password_file: basic auth needs both"},
    {"remote_write unknown metric",
     BASE "[remote_write]\nurl = http://h:9090/w\nmetrics = revenue, gdp\n",
     "t.conf:9: remote_write.metrics: 'gdp' is not a configured metric"},
    {"remote_write batch", BASE "[remote_write]\nbatch_size = 0\n",
     "t.conf:10: remote_write.batch_size: '0' is not a whole number from 1 to 100000"},
    {"remote_write unknown key", BASE "[remote_write]\nendpoint = x\n",
     "t.conf:10: remote_write.endpoint: unknown option (expected url"},
    {"remote_write twice", BASE "[remote_write]\n[remote_write]\n",
     "t.conf:10: remote_write: [remote_write] is defined twice (first on line 9)"},
    {"unknown section", BASE "[widget w]\n",
     "t.conf:9: widget: unknown section (expected [daemon]"},
    {"section without id", BASE "[metric]\nkind = reading\n",
     "t.conf:9: metric: section needs an id, e.g. [metric my-id]"},
    {"section with blank id", BASE "[rule   ]\n", "t.conf:9: rule: section needs an id"},
    {"daemon with an id", BASE "[daemon extra]\n", "t.conf:9: daemon: unknown section"},
    {"key before any section", "registry = r.csv\n" BASE,
     "t.conf:1: registry: key outside a known section"},
    {"syntax error", BASE "this line has no equals sign\n",
     "t.conf:9: syntax: not a [section] or key = value line"},
    {"unclosed section header", BASE "[metric x\n", "t.conf:9: syntax: "},
    {"no cluster at all", DAEMON "[metric revenue]\nkind = period\n",
     "t.conf:4: cluster: no [cluster ID] section: nothing to monitor"},
    /* ids: a dot would make the alert topic ambiguous */
    {"dot in a cluster id", BASE "[cluster energy.env]\nchains = a\n",
     "t.conf:9: cluster: 'energy.env': character 7 of the id is not a letter, digit, '_' or '-'"},
    {"space in a metric id", BASE "[metric a b]\nkind = period\n",
     "t.conf:9: metric: 'a b': character 2 of the id"},
    {"dot in a chain id", BASE "[cluster nn]\nchains = ok, water.treatment\n",
     "t.conf:10: cluster.chains: 'water.treatment': character 6 of the id"},
    {"blank chain in the list", BASE "[cluster nn]\nchains = a, , b\n",
     "t.conf:10: cluster.chains: '': empty id"},
    {"id too long",
     BASE "[rule "
          "r123456789012345678901234567890123456789012345678901234567890123456789]\n",
     "t.conf:9: rule: 'r1234567890"},
    /* [daemon] */
    {"unknown daemon key", DAEMON "colour = red\n" BODY, "t.conf:3: daemon.colour: unknown option"},
    {"run_as_root not warn or refuse", DAEMON "run_as_root = yes\n" BODY,
     "t.conf:3: daemon.run_as_root: 'yes' is not warn or refuse"},
    {"group without user", DAEMON "group = nogroup\n" BODY,
     "t.conf:3: daemon.group: needs daemon.user"},
    {"peer_timeout of 0", DAEMON "peer_timeout = 0\n" BODY,
     "t.conf:3: daemon.peer_timeout: 0 is not a number of seconds from 1 to 3600"},
    {"peer_timeout over an hour", DAEMON "peer_timeout = 3601\n" BODY,
     "t.conf:3: daemon.peer_timeout: 3601 is not a number of seconds from 1 to 3600"},
    {"access without CURVE", DAEMON "access = a.csv\n" BODY,
     "t.conf:3: daemon.access: keys need CURVE: set curve_secret_key too"},
    {"http beyond loopback", DAEMON "http = 0.0.0.0:9730\n" BODY,
     "t.conf:3: daemon.http: '0.0.0.0:9730' is plain HTTP that others on the network can read"},
    {"negative rate", DAEMON "rate_global = -5\n" BODY,
     "t.conf:3: daemon.rate_global: '-5' is not a non-negative number"},
    {"duplicate daemon key", DAEMON "timezone = UTC\nregistry = s.csv\n" BODY,
     "t.conf:4: daemon.registry: set twice (first on line 2)"},
    {"missing registry", "[daemon]\ntimezone = UTC\n" BODY,
     "t.conf:8: daemon.registry: required (firm registry CSV)"},
    {"bad number", DAEMON "above_scale_line = 2e7x\n" BODY,
     "t.conf:3: daemon.above_scale_line: '2e7x' is not a non-negative number"},
    {"negative number", DAEMON "above_scale_line = -1\n" BODY,
     "t.conf:3: daemon.above_scale_line: '-1' is not a non-negative number"},
    {"infinite number", DAEMON "above_scale_line = inf\n" BODY,
     "t.conf:3: daemon.above_scale_line: 'inf' is not a non-negative number"},
    {"bad endpoint scheme", DAEMON "ingest = http://127.0.0.1:7601\n" BODY,
     "t.conf:3: daemon.ingest: 'http://127.0.0.1:7601' is not a ZeroMQ endpoint"},
    {"endpoint without scheme", DAEMON "alerts = 127.0.0.1:7602\n" BODY,
     "t.conf:3: daemon.alerts: '127.0.0.1:7602' is not a ZeroMQ endpoint"},
    {"empty path", DAEMON "state_dir =\n" BODY, "t.conf:3: daemon.state_dir: must not be empty"},
    {"unknown time zone", DAEMON "timezone = Mars/Olympus\n" BODY,
     "t.conf:3: daemon.timezone: unknown time zone 'Mars/Olympus'"},
    {"time zone escaping zoneinfo", DAEMON "timezone = ../../etc/passwd\n" BODY,
     "t.conf:3: daemon.timezone: unknown time zone '../../etc/passwd'"},
    {"bad log level", DAEMON "log_level = loud\n" BODY,
     "t.conf:3: daemon.log_level: 'loud' is not error, warn, info or debug"},
    {"revenue metric unknown", DAEMON "revenue_metric = sales\n" BODY,
     "t.conf:3: daemon.revenue_metric: 'sales' is not a configured period metric"},
    {"revenue metric a reading", DAEMON "revenue_metric = cod\n" BODY,
     "t.conf:3: daemon.revenue_metric: 'cod' is not a configured period metric"},
    {"profit metric a reading", DAEMON "profit_metric = cod\n" BODY,
     "t.conf:3: daemon.profit_metric: 'cod' is not a period metric"},
    /* left at their defaults, they are blamed on line 1 or the metric's own line */
    {"default revenue metric missing",
     DAEMON "[metric sales]\nkind = period\n[cluster c]\nchains = x\n",
     "t.conf:1: daemon.revenue_metric: 'revenue' is not a configured period metric"},
    {"default profit metric a reading", BASE "\n[metric profit]\nkind = reading\n",
     "t.conf:10: daemon.profit_metric: 'profit' is not a period metric"},
    /* [metric] */
    {"unknown metric key", BASE "[metric x]\nkind = reading\nscale = 2\n",
     "t.conf:11: metric: unknown key 'scale' in [metric x] (expected kind, unit, min, max)"},
    {"duplicate metric", BASE "[metric cod]\nkind = reading\n",
     "t.conf:9: metric: 'cod' is defined twice"},
    {"bad kind", BASE "[metric x]\nunit = t\nkind = gauge\n",
     "t.conf:11: metric.kind: 'gauge' is not period or reading"},
    {"metric without kind", BASE "[metric x]\nunit = t\n",
     "t.conf:9: metric.kind: [metric x] needs kind = period | reading"},
    /* [cluster] */
    {"unknown cluster key", BASE "[cluster nn]\nchains = x\nowner = me\n",
     "t.conf:11: cluster: unknown key 'owner' in [cluster nn] (expected title, chains)"},
    {"duplicate cluster", BASE "[cluster ee]\nchains = c\n",
     "t.conf:9: cluster: 'ee' is defined twice"},
    {"cluster without chains", BASE "[cluster nn]\ntitle = New\n\n",
     "t.conf:9: cluster.chains: [cluster nn] needs chains = a, b, ..."},
    {"empty cluster section", BASE "[cluster nn]\n[metric x]\nkind = period\n",
     "t.conf:9: cluster.chains: [cluster nn] needs chains = a, b, ..."},
    {"chain listed twice", BASE "[cluster nn]\nchains = x, y, x\n",
     "t.conf:10: cluster.chains: 'x' is listed twice"},
    /* [rule] */
    {"unknown rule key", BASE RULE "colour = red\nabove = 1\n",
     "t.conf:13: rule.r1.colour: unknown key 'colour' (rule keys: type, severity, metric, cluster, "
     "chain, tier, repeat and the type's own; see README)"},
    {"key of another rule type", BASE RULE "window = 5\nabove = 1\n",
     "t.conf:13: rule.r1.window: does not apply to a threshold rule"},
    {"rule key set twice", BASE RULE "above = 1\nabove = 2\n",
     "t.conf:14: rule.r1.above: set twice (first on line 13)"},
    {"duplicate rule", BASE RULE "above = 1\n[rule r1]\n",
     "t.conf:14: rule: 'r1' is defined twice"},
    {"bad rule type", BASE "[rule r1]\ntype = rate\n",
     "t.conf:10: rule.r1.type: 'rate' is not threshold, growth, change, outlier, silence or "
     "above-scale"},
    {"rule without type", BASE "[rule r1]\nmetric = cod\ncluster = ee\nabove = 1\n",
     "t.conf:9: rule.r1.type: [rule r1] needs a type: threshold, growth, change, outlier, silence "
     "or above-scale"},
    {"rule without metric", BASE "[rule r1]\ntype = threshold\ncluster = ee\nabove = 1\n",
     "t.conf:9: rule.r1.metric: [rule r1] needs metric"},
    {"rule on an unknown metric",
     BASE "[rule r1]\ntype = threshold\ncluster = ee\nmetric = ph\nabove = 1\n",
     "t.conf:12: rule.r1.metric: unknown metric 'ph'"},
    {"rule on a period metric",
     BASE "[rule r1]\ntype = threshold\n\nmetric = revenue\ncluster = ee\nabove = 1\n",
     "t.conf:12: rule.r1.metric: threshold rules watch readings; 'revenue' is a period metric"},
    {"rule without cluster", BASE "[rule r1]\ntype = threshold\nmetric = cod\nabove = 1\n",
     "t.conf:9: rule.r1.cluster: [rule r1] needs cluster"},
    {"rule on an unknown cluster",
     BASE "[rule r1]\ntype = threshold\nmetric = cod\n\ncluster = eee\nabove = 1\n",
     "t.conf:13: rule.r1.cluster: unknown cluster 'eee'"},
    {"rule on an unknown chain", BASE RULE "above = 1\nchain = solar-pv\n",
     "t.conf:14: rule.r1.chain: cluster 'ee' has no chain 'solar-pv'"},
    {"rule without above", BASE RULE "clear = 1\n",
     "t.conf:9: rule.r1.above: [rule r1] needs above = LIMIT"},
    {"rule above not a number", BASE RULE "above = fifty\n",
     "t.conf:13: rule.r1.above: 'fifty' is not a number"},
    {"rule clear not a number", BASE RULE "above = 5\nclear = 4,5\n",
     "t.conf:14: rule.r1.clear: '4,5' is not a number"},
    {"clear above the limit", BASE RULE "clear = 60\nabove = 50\n",
     "t.conf:13: rule.r1.clear: clear level 60 is above the limit 50"},
    {"unknown severity", BASE RULE "above = 1\nseverity = loud\n",
     "t.conf:14: rule.r1.severity: 'loud' is not info, warning or critical"},
    {"above and below", BASE RULE "above = 1\nbelow = 0\n",
     "t.conf:14: rule.r1.below: a threshold rule takes above or below, not both"},
    {"clear below a below limit", BASE RULE "below = 5\nclear = 4\n",
     "t.conf:14: rule.r1.clear: clear level 4 is below the limit 5"},
    {"bad duration", BASE RULE "above = 1\nfor = 5 minutes\n",
     "t.conf:14: rule.r1.for: '5 minutes' is not a duration (e.g. 90s, 15m, 2h, 1d)"},
    {"for_samples zero", BASE RULE "above = 1\nfor_samples = 0\n",
     "t.conf:14: rule.r1.for_samples: 0 is outside 1..1e+06"},
    /* the other rule types, from line 9 */
    {"growth without target",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\nyear = 2022\n",
     "t.conf:9: rule.g.target: [rule g] needs target = PERCENT (15 means +15 %)"},
    {"growth target as a fraction",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 0.12\n",
     "t.conf:13: rule.g.target: target is in percent: 12 means +12 % (0.12 here would mean +0.12 "
     "%; "
     "write 0.12% if that is meant)"},
    {"growth target as a negative fraction",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = -0.5\n",
     "t.conf:13: rule.g.target: target is in percent: 12 means +12 % (-0.5 here would mean -0.5 %"},
    {"growth target not a number",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 12pc\n",
     "t.conf:13: rule.g.target: '12pc' is not a number of percent (e.g. 12 or 0.5%)"},
    {"growth target two percent signs",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 12%%\n",
     "t.conf:13: rule.g.target: '12%%' is not a number of percent"},
    {"growth year not a year",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 12\nyear = 2022.5\n",
     "t.conf:14: rule.g.year: '2022.5' is not a year (YYYY or current)"},
    {"growth year misspelt",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 12\nyear = curent\n",
     "t.conf:14: rule.g.year: 'curent' is not a number"},
    {"silence grace not a duration", BASE "[rule s]\ntype = silence\ncluster = ee\ngrace = soon\n",
     "t.conf:12: rule.s.grace: 'soon' is not a duration (e.g. 90s, 15m, 2h, 1d)"},
    {"grace on a growth rule",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\ntarget = 12\ngrace = 1d\n",
     "t.conf:14: rule.g.grace: does not apply to a growth rule"},
    {"growth on a reading",
     BASE "[rule g]\ntype = growth\nmetric = cod\ncluster = ee\nyear = 2022\n"
          "target = 15\n",
     "t.conf:11: rule.g.metric: growth rules watch period metrics; 'cod' is a reading"},
    {"growth bad prorate",
     BASE "[rule g]\ntype = growth\nmetric = revenue\ncluster = ee\nyear = 2022\n"
          "target = 15\nprorate = monthly\n",
     "t.conf:15: rule.g.prorate: 'monthly' is not auto, seasonal or linear"},
    {"change without a limit", BASE "[rule c]\ntype = change\nmetric = revenue\ncluster = ee\n",
     "t.conf:9: rule.c.drop: [rule c] needs drop = PERCENT and/or rise = PERCENT"},
    {"change drop over 100",
     BASE "[rule c]\ntype = change\nmetric = revenue\ncluster = ee\ndrop = 150\n",
     "t.conf:13: rule.c.drop: 150 is outside 0..100"},
    {"outlier history beyond window",
     BASE "[rule o]\ntype = outlier\nmetric = revenue\ncluster = ee\n"
          "window = 4\nmin_history = 5\n",
     "t.conf:14: rule.o.min_history: 5 is more than the window 4"},
    {"silence quiet on monthly", BASE "[rule s]\ntype = silence\ncluster = ee\nquiet = 1h\n",
     "t.conf:12: rule.s.quiet: applies to schedule = continuous only"},
    {"silence continuous data clock",
     BASE "[rule s]\ntype = silence\ncluster = ee\nmetric = cod\n"
          "schedule = continuous\nclock = data\n",
     "t.conf:14: rule.s.clock: schedule = continuous is judged by the wall clock"},
    {"above-scale with a metric",
     BASE "[rule a]\ntype = above-scale\ncluster = ee\nmetric = revenue\n",
     "t.conf:12: rule.a.metric: does not apply to a above-scale rule"},
    {"bad tier", BASE RULE "above = 1\ntier = gold\n",
     "t.conf:14: rule.r1.tier: 'gold' is not leading, backbone, potential or member"},
    /* [alerting] */
    {"unknown alerting key", BASE "[alerting]\nflap = 3\n",
     "t.conf:10: alerting.flap: unknown option (expected flap_window, flap_max, group_max, "
     "history_retention)"},
    {"flap_max zero", BASE "[alerting]\nflap_max = 0\n",
     "t.conf:10: alerting.flap_max: '0' is not a whole number >= 1"},
    {"bad flap_window", BASE "[alerting]\nflap_window = soon\n",
     "t.conf:10: alerting.flap_window: 'soon' is not a duration"},
};

START_TEST(test_bad_config)
{
    expect_error(bad[_i].name, "t.conf", bad[_i].text, bad[_i].want);
}
END_TEST

/* Only the first error is reported: later ones are usually its echoes. */
START_TEST(test_first_error_wins)
{
    expect_error("first error", "t.conf", DAEMON "colour = red\nflavour = mint\n" BODY "[widget]\n",
                 "t.conf:3: daemon.colour: unknown option");
}
END_TEST

/* ---- golden files ------------------------------------------------------------ */

static const struct {
    const char *file;
    const char *want;
} golden[] = {
    {DATA "bad-empty-cluster.conf", DATA
     "bad-empty-cluster.conf:19: cluster.chains: [cluster new-energy] needs chains = a, b, ..."},
    {DATA "bad-rule-chain.conf", DATA
     "bad-rule-chain.conf:27: rule.cod-limit.chain: cluster 'energy-env' has no chain 'solar-pv'"},
    {DATA "bad-dup-key.conf",
     DATA "bad-dup-key.conf:6: daemon.timezone: set twice (first on line 4)"},
    {DATA "bad-timezone.conf",
     DATA "bad-timezone.conf:4: daemon.timezone: unknown time zone 'Mars/Olympus'"},
    {DATA "bad-id.conf", DATA "bad-id.conf:15: cluster: 'energy.env': character 7 of the id is not "
                              "a letter, digit, '_' or '-'"},
};

START_TEST(test_golden)
{
    expect_error(golden[_i].file, golden[_i].file, NULL, golden[_i].want);
}
END_TEST

/* The golden files differ from a valid one only where the test says. */
START_TEST(test_golden_good)
{
    config_t *cfg = load_ok(DATA "good.conf", NULL, NULL);

    ck_assert_uint_eq(cfg->nclusters, 2);
    ck_assert_uint_eq(cfg->nrules, 1);
    ck_assert_int_eq(cfg->rules[0].chain, 0);
    ck_assert_str_eq(cfg->timezone, "Asia/Shanghai");
    config_destroy(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("default");

    tcase_add_test(tc, test_default_file);
    tcase_add_test(tc, test_default_embedded);
    tcase_add_test(tc, test_base_dir);
    tcase_add_test(tc, test_minimal_defaults);
    tcase_add_test(tc, test_localhost_endpoints);
    tcase_add_test(tc, test_rule_clear_default);
    tcase_add_loop_test(tc, test_growth_keys, 0, (int)(sizeof growth_ok / sizeof growth_ok[0]));
    tcase_add_test(tc, test_find_bounded);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_destroy_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_bad_config, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_first_error_wins);
    tcase_add_loop_test(tc, test_golden, 0, (int)(sizeof golden / sizeof golden[0]));
    tcase_add_test(tc, test_golden_good);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
