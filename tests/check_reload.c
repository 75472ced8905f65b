/*
 * check_reload.c -- a reload (daemon/reload.c) of a real server: the state
 * carries over by name, and a config that does not load changes nothing.
 *
 * Each test opens a server_t with server_open() from a config file in a
 * temp dir of its own (inproc:// endpoints, the demo registry), so that
 * reload_run() reads that file again, as SIGHUP does. Alerts are made to
 * fire the way ingest makes them: a reading applied to the aggregate and
 * handed to rules_on_reading, then the book flushed (the cod-limit rule of
 * the default config: above 50 for 2 samples, the water-pollution-control
 * chain). Between the two, the test rewrites the file: a rule put before
 * cod-limit (its index moves), a rule removed, a setting that needs a
 * restart, a broken line. server_close() then runs the loop until
 * uv_loop_close() succeeds.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/reload.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "tests/testlib.h"

#define FIRM "ee-001" /* energy-env, water-pollution-control: in cod-limit's scope */
#define OTHER "ee-002"
#define T0 1773547200000LL /* data time of the readings: 2026-03-15 */

static testlib_dir_t tdir;
static server_t srv;
static char conf_path[128], state_dir[128], sd_line[160];
static server_source_t src;

/* A new rule, put before cod-limit: every later rule's index moves by one. */
static const char extra_rule[] = "[rule energy-watch]\n"
                                 "type = threshold\n"
                                 "metric = cod\n"
                                 "cluster = new-energy\n"
                                 "above = 90\n"
                                 "severity = info\n"
                                 "\n";

/* ---- the config file ----------------------------------------------------------------- */

/* The default config on the test endpoints and state dir, with [daemon]
 * keys in extra (NULL-terminated, may be NULL). Caller frees. */
static char *config_text(const char *const *extra)
{
    const char *kv[8] = {"ingest = inproc://ingest", "alerts = inproc://alerts",
                         "control = inproc://control", sd_line};
    size_t n = 4;
    for (const char *const *p = extra; p && *p; p++) {
        ck_assert_uint_lt(n, 7);
        kv[n++] = *p;
    }
    kv[n] = NULL;
    return testlib_config_text(kv);
}

/* text with the section that starts with header removed (up to the next
 * section). Takes text; returns the new one (caller frees). */
static char *drop_section(char *text, const char *header)
{
    char *at = strstr(text, header);
    ck_assert_msg(at != NULL, "no %s", header);
    char *next = strstr(at + 1, "\n[");
    size_t tail = next ? strlen(next + 1) : 0;
    memmove(at, next ? next + 1 : at + strlen(at), tail + 1);
    return text;
}

/* text with what put before header. Takes text; returns the new one. */
static char *insert_before(char *text, const char *header, const char *what)
{
    char *at = strstr(text, header);
    ck_assert_msg(at != NULL, "no %s", header);
    size_t head = (size_t)(at - text);
    char *out = malloc(strlen(text) + strlen(what) + 1);
    ck_assert_ptr_nonnull(out);
    sprintf(out, "%.*s%s%s", (int)head, text, what, at);
    free(text);
    return out;
}

/* Writes text as the config file. Takes text. */
static void write_config(char *text)
{
    testlib_write_file(conf_path, text, 0600);
    free(text);
}

/* ---- the server ------------------------------------------------------------------------ */

static void setup(void)
{
    log_set_level(LOG_LVL_ERROR); /* reload's warnings and info lines */
    testlib_dir_make(&tdir, "reload");
    testlib_dir_file(&tdir, "state", state_dir, sizeof state_dir);
    testlib_dir_file(&tdir, "d.conf", conf_path, sizeof conf_path);
    snprintf(sd_line, sizeof sd_line, "state_dir = %s", state_dir);
    write_config(config_text(NULL));
    /* the registry path is relative: to the working directory, the repo */
    src = (server_source_t){.path = conf_path, .log_level_fixed = true};
    char err[CONFIG_ERRLEN];
    config_t *cfg = NULL;
    registry_t *reg = NULL;
    ck_assert_msg(source_load_config(&src, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(source_load_registry(cfg, false, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(server_open(&srv, &src, &cfg, &reg, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    server_close(&srv);
    testlib_dir_remove(&tdir);
}

static int firm(const char *id)
{
    int f = registry_find(srv.reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static int rule(const char *id)
{
    for (size_t r = 0; r < srv.cfg->nrules; r++)
        if (strcmp(srv.cfg->rules[r].id, id) == 0)
            return (int)r;
    return -1;
}

/* A cod reading of firm, as ingest applies one (data time ts). */
static void reading(const char *id, double value, int64_t ts)
{
    int f = firm(id);
    int m = config_metric_find(srv.cfg, "cod", 3);
    ck_assert_int_ge(m, 0);
    int64_t now = calendar_now_ms();
    agg_put_reading(srv.agg, f, m, 2026, 3, value, ts);
    rules_on_reading(&srv.rules, f, m, value, ts, now);
    alertbook_flush(&srv.book, now);
}

/* cod-limit fires for firm: two readings above 50. */
static void fire(const char *id)
{
    reading(id, 60, T0);
    reading(id, 61, T0 + 60000);
}

/* The alert of rule id for firm in the book now, or NULL. */
static ab_alert_t *alert(const char *rule_id, const char *firm_id)
{
    int r = rule(rule_id);
    if (r < 0)
        return NULL;
    return alertbook_get(&srv.book, r, firm(firm_id), false);
}

static void reload_ok(void)
{
    char err[CONFIG_ERRLEN];
    ck_assert_msg(reload_run(&srv, err, sizeof err) == 0, "%s", err);
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* A firing alert whose rule and firm still exist keeps its state -- firing,
 * since when, its seq -- though its rule's index moved: nothing is
 * published for it, it does not fire again. */
START_TEST(test_firing_alert_carried_by_name)
{
    fire(FIRM);
    ab_alert_t *a = alert("cod-limit", FIRM);
    ck_assert_ptr_nonnull(a);
    ck_assert(a->firing);
    int64_t since = a->since_ms;
    uint64_t seq = a->seq;
    int before = rule("cod-limit");
    uint64_t fired = srv.book.by_state[PROTO_ALERT_FIRING];
    uint64_t resolved = srv.book.by_state[PROTO_ALERT_RESOLVED];

    write_config(insert_before(config_text(NULL), "[rule cod-limit]", extra_rule));
    reload_ok();
    ck_assert_int_eq(rule("cod-limit"), before + 1);
    a = alert("cod-limit", FIRM);
    ck_assert_ptr_nonnull(a);
    ck_assert(a->firing);
    ck_assert_int_eq(a->rule, before + 1);
    ck_assert_int_eq(a->since_ms, since);
    ck_assert_uint_eq(a->seq, seq);
    ck_assert_uint_eq(srv.book.firing, 1);
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_FIRING], fired);
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_RESOLVED], resolved);
    ck_assert_uint_eq(srv.reloads, 1);
    ck_assert(srv.reload.last_ok);
    /* the rule under its new index goes on from the carried state: a low
     * reading resolves it (clear = 40) */
    reading(FIRM, 10, T0 + 120000);
    ck_assert(!alert("cod-limit", FIRM)->firing);
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_RESOLVED], resolved + 1);
}
END_TEST

/* A removed rule's firing alert ends: published as resolved (counted), gone
 * from the book; the other rules' alerts are untouched. */
START_TEST(test_removed_rule_resolves)
{
    fire(FIRM);
    fire(OTHER);
    ck_assert_uint_eq(srv.book.firing, 2);
    uint64_t resolved = srv.book.by_state[PROTO_ALERT_RESOLVED];
    size_t nrules = srv.cfg->nrules;

    write_config(drop_section(config_text(NULL), "[rule cod-limit]"));
    reload_ok();
    ck_assert_uint_eq(srv.cfg->nrules, nrules - 1);
    ck_assert_int_eq(rule("cod-limit"), -1);
    ck_assert_uint_eq(srv.book.firing, 0);
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_RESOLVED], resolved + 2);
    for (size_t r = 0; r < srv.cfg->nrules; r++)
        ck_assert_ptr_null(alertbook_get(&srv.book, (int)r, firm(FIRM), false));
    /* readings of cod no longer fire anything */
    fire(FIRM);
    ck_assert_uint_eq(srv.book.firing, 0);
}
END_TEST

/* A config that does not load is refused with its file and line; the
 * running config, rules, alerts and figures stay as they were, and the
 * outcome is recorded. A good file afterwards is taken. */
START_TEST(test_bad_config_changes_nothing)
{
    fire(FIRM);
    const config_t *cfg = srv.cfg;
    const registry_t *reg = srv.reg;
    const agg_t *agg = srv.agg;
    size_t nrules = cfg->nrules;
    uint64_t published = srv.book.by_state[PROTO_ALERT_FIRING];

    static const struct {
        const char *what;
        const char *daemon_kv; /* a [daemon] key replaced, or NULL */
        const char *tail;      /* appended to the file */
        const char *want;      /* in the reason */
    } cases[] = {
        {"an unknown rule type", NULL, "[rule broken]\ntype = nonsense\n",
         "rule.broken.type: 'nonsense' is not threshold"},
        {"an unknown metric", NULL,
         "[rule broken]\ntype = threshold\nmetric = nosuch\ncluster = energy-env\nabove = 1\n",
         "nosuch"},
        {"a missing registry", "registry = /nonexistent/registry.csv", "",
         "/nonexistent/registry.csv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *kv[] = {cases[i].daemon_kv, NULL};
        char *text = config_text(kv);
        char *bad = malloc(strlen(text) + strlen(cases[i].tail) + 2);
        sprintf(bad, "%s\n%s", text, cases[i].tail);
        free(text);
        write_config(bad);
        char err[CONFIG_ERRLEN] = "";
        ck_assert_msg(reload_run(&srv, err, sizeof err) == -1, "%s: taken", cases[i].what);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "%s: \"%s\" lacks \"%s\"", cases[i].what,
                      err, cases[i].want);
        ck_assert_ptr_eq(srv.cfg, cfg);
        ck_assert_ptr_eq(srv.reg, reg);
        ck_assert_ptr_eq(srv.agg, agg);
        ck_assert_uint_eq(srv.cfg->nrules, nrules);
        ck_assert(alert("cod-limit", FIRM)->firing);
        ck_assert_uint_eq(srv.book.firing, 1);
        ck_assert(!srv.reload.last_ok);
        ck_assert_uint_eq(srv.reload.failed, i + 1);
        ck_assert_str_eq(srv.reload.last_error, err);
        ck_assert_uint_eq(srv.reloads, 0);
    }
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_FIRING], published);

    write_config(config_text(NULL));
    reload_ok();
    ck_assert(srv.reload.last_ok);
    ck_assert_str_eq(srv.reload.last_error, "");
    ck_assert_uint_eq(srv.reloads, 1);
    ck_assert(alert("cod-limit", FIRM)->firing);
}
END_TEST

/* Figures carry over by firm id and metric name: a metric put before
 * revenue moves its index; the totals stay. */
START_TEST(test_figures_carried_by_name)
{
    int m = config_metric_find(srv.cfg, "revenue", 7);
    proto_period_t p = {.year = 2026, .kind = PROTO_PERIOD_MONTH, .index = 2};
    agg_put_period(srv.agg, firm(FIRM), m, p, agg_to_milli(1234.5));
    write_config(
        insert_before(config_text(NULL), "[metric revenue]", "[metric water]\nkind = period\n\n"));
    reload_ok();
    int m2 = config_metric_find(srv.cfg, "revenue", 7);
    ck_assert_int_eq(m2, m + 1);
    int64_t v = 0;
    ck_assert(agg_firm_total(srv.agg, firm(FIRM), m2, p, &v));
    ck_assert_int_eq(v, agg_to_milli(1234.5));
    ck_assert(!agg_firm_total(srv.agg, firm(FIRM), m, p, &v)); /* water: nothing */
}
END_TEST

/* Silences are kept by rule and cluster name: one set before the reload
 * still suppresses the carried rule's new alerts after it. */
START_TEST(test_silence_survives)
{
    int64_t now = calendar_now_ms();
    ck_assert_uint_ne(silences_add(&srv.silences, "cod-limit", "energy-env", NULL, now,
                                   now + 3600000, "maintenance"),
                      0);
    write_config(insert_before(config_text(NULL), "[rule cod-limit]", extra_rule));
    reload_ok();
    ck_assert_uint_eq(srv.silences.n, 1);
    uint64_t suppressed = srv.book.suppressed, published = srv.book.by_state[PROTO_ALERT_FIRING];
    fire(FIRM);
    ck_assert(alert("cod-limit", FIRM)->firing);
    ck_assert_uint_gt(srv.book.suppressed, suppressed);
    ck_assert_uint_eq(srv.book.by_state[PROTO_ALERT_FIRING], published);
}
END_TEST

/* A setting that belongs to what is open waits for a restart: the running
 * value stays, and the change is listed. */
START_TEST(test_restart_setting_pending)
{
    static const char *const http[] = {"http = 127.0.0.1:9999", NULL};
    write_config(config_text(http));
    reload_ok();
    ck_assert_str_eq(srv.cfg->http, "");
    ck_assert_uint_eq(srv.reload.npending, 1);
    ck_assert_str_eq(srv.reload.pending[0].setting, "daemon.http");
    ck_assert_str_eq(srv.reload.pending[0].configured, "127.0.0.1:9999");
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_firing_alert_carried_by_name,
        test_removed_rule_resolves,
        test_bad_config_changes_nothing,
        test_figures_carried_by_name,
        test_silence_survives,
        test_restart_setting_pending,
    };
    return testlib_run(
        testlib_suite("reload", setup, teardown, tests, sizeof tests / sizeof tests[0]));
}
