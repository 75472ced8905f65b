/*
 * check_rules.c -- the rule engine end to end (daemon/rules.c).
 *
 * Each test starts the engine as the server does (config, registry,
 * aggregate, calendar in Asia/Shanghai, alertbook, rules), with only the
 * rules it is about, feeds it figures the way ingest does (agg_put_* then
 * rules_on_*), runs it (rules_evaluate_dirty / rules_tick) and checks two
 * things: what the alertbook queued for publication, in order, and the
 * alert's state and basis (alertbook_get). No sockets: the alerts_t has
 * none, the events are read off the book just before each flush.
 *
 * The registry has three firms on the water-pollution-control chain, one
 * on green-building-materials, one on no chain (energy-env), and five
 * active firms and one inactive in new-energy.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/rules.h"
#include "tests/testlib.h"

#define T0 INT64_C(1656604800000) /* 2022-07-01T00:00:00+08:00 */
#define SEC INT64_C(1000)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define M 1e6

#define REV 0 /* metric indexes, in the order of BASE_CONF */
#define COD 1

#define BASE_CONF                                                                                  \
    "[daemon]\nregistry = unused.csv\ntimezone = Asia/Shanghai\n"                                  \
    "above_scale_line = 20000000\n"                                                                \
    "[metric revenue]\nkind = period\nunit = yuan\n"                                               \
    "[metric cod]\nkind = reading\nunit = mg/L\n"                                                  \
    "[cluster energy-env]\nchains = water-pollution-control, green-building-materials\n"           \
    "[cluster new-energy]\nchains = solar-pv, energy-storage\n"                                    \
    "[alerting]\ngroup_max = 1000\n"

static const char registry_csv[] =
    "id,name,cluster,chain,tier,designations,status\n"
    "wp-1,Water One,energy-env,water-pollution-control,leading,,\n"
    "wp-2,Water Two,energy-env,water-pollution-control,backbone,,\n"
    "wp-3,Water Three,energy-env,water-pollution-control,member,,\n"
    "gb-1,Green Bricks,energy-env,green-building-materials,potential,,\n"
    "ee-m,Member,energy-env,,member,,\n"
    "pv-1,Solar One,new-energy,solar-pv,leading,,\n"
    "pv-2,Solar Two,new-energy,solar-pv,backbone,,active\n"
    "pv-3,Solar Three,new-energy,solar-pv,potential,,\n"
    "pv-4,Storage One,new-energy,energy-storage,leading,,\n"
    "pv-5,Storage Two,new-energy,energy-storage,member,,\n"
    "pv-x,Closed Down,new-energy,energy-storage,member,,inactive\n";

static char tmpdir[64], csv_path[128];
static bool started;
static config_t *cfg;
static registry_t *reg;
static agg_t *agg;
static calendar_t cal;
static alerts_t al;
static silences_t sil;
static alertbook_t b;
static rules_t rs;

/* What the book queued, "state id" per line, since the last expect(). */
static char pubs[16384];
static size_t npubs;

/* ---- fixtures ------------------------------------------------------------------------ */

static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_rules.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(csv_path, sizeof csv_path, "%s/firms.csv", tmpdir);
    FILE *fp = fopen(csv_path, "w");
    if (!fp || fputs(registry_csv, fp) < 0 || fclose(fp) != 0) {
        perror(csv_path);
        abort();
    }
}

static void tmpdir_remove(void)
{
    if (testlib_rm_rf(tmpdir) != 0)
        perror(tmpdir);
}

/* Starts the engine with BASE_CONF and the given [rule] sections. */
static void start(const char *rules_text)
{
    char err[CONFIG_ERRLEN], *text = malloc(strlen(BASE_CONF) + strlen(rules_text) + 1);

    ck_assert_ptr_nonnull(text);
    strcpy(text, BASE_CONF);
    strcat(text, rules_text);
    int rc = config_load("rules.conf", text, NULL, &cfg, err, sizeof err);
    free(text);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(registry_load(csv_path, cfg, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(reg->nfirms, 11);
    agg = agg_new(reg->nfirms, cfg->nmetrics);
    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    /* an alerts_t with no socket: publications fail quietly, the book does not care */
    memset(&al, 0, sizeof al);
    al.seq_fd = -1;
    msgpack_sbuffer_init(&al.buf);
    silences_init(&sil);
    alertbook_init(&b, cfg, reg, &al, &sil);
    rules_init(&rs, cfg, reg, agg, &cal, &b);
    pubs[0] = '\0';
    npubs = 0;
    started = true;
}

static void stop(void)
{
    if (!started)
        return;
    rules_free(&rs);
    ck_assert_ptr_null(rs.dirty);
    alertbook_free(&b);
    silences_free(&sil);
    alerts_close(&al);
    agg_destroy(&agg);
    registry_destroy(&reg);
    config_destroy(&cfg);
    started = false;
}

static void setup(void)
{
    log_set_level(LOG_LVL_ERROR);
    started = false;
}

/* ---- driving the engine ------------------------------------------------------------- */

static int firm(const char *id)
{
    if (!id)
        return -1;
    int f = registry_find(reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static int rule(const char *id)
{
    for (size_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].id, id) == 0)
            return (int)i;
    ck_abort_msg("no rule %s", id);
    return -1;
}

static proto_period_t month(int y, int m)
{
    return (proto_period_t){.year = (uint16_t)y, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)m};
}

/* Records what the book queued, then publishes it. */
static void flush(int64_t now)
{
    for (size_t i = 0; i < b.nevents; i++) {
        const ab_event_t *e = &b.events[i];
        size_t used = strlen(pubs);
        snprintf(pubs + used, sizeof pubs - used, "%s%s%s %s", npubs ? "\n" : "",
                 proto_alert_state_name((proto_alert_state_t)e->state), e->reminder ? "*" : "",
                 e->a->id);
        npubs++;
    }
    alertbook_flush(&b, now);
    ck_assert_uint_eq(b.nevents, 0);
}

/* Asserts what was queued since the last call: "state id" lines, in order. */
static void expect_at(int line, const char *want)
{
    ck_assert_msg(strcmp(pubs, want) == 0, "line %d: published\n%s\n-- expected\n%s", line, pubs,
                  want);
    pubs[0] = '\0';
    npubs = 0;
}
#define expect(want) expect_at(__LINE__, want)

/* A firm's monthly figure, as ingest applies it. */
static void put(const char *firm_id, int y, int m, double v)
{
    agg_put_period(agg, firm(firm_id), REV, month(y, m), agg_to_milli(v));
    rules_on_period(&rs, firm(firm_id), REV, month(y, m));
}

static void put_year(const char *firm_id, int y, double v)
{
    proto_period_t p = {.year = (uint16_t)y, .kind = PROTO_PERIOD_YEAR};
    agg_put_period(agg, firm(firm_id), REV, p, agg_to_milli(v));
    rules_on_period(&rs, firm(firm_id), REV, p);
}

/* The end of an ingest batch: dirty rules run, the book is flushed. */
static void run(int64_t now)
{
    rules_evaluate_dirty(&rs, now);
    ck_assert_uint_eq(rs.ndirty, 0);
    flush(now);
}

static void reading(const char *firm_id, double v, int64_t ts)
{
    int y, m;

    ck_assert_int_eq(calendar_month_of(&cal, ts, &y, &m), 0);
    agg_put_reading(agg, firm(firm_id), COD, y, m, v, ts);
    rules_on_reading(&rs, firm(firm_id), COD, v, ts, ts);
    run(ts); /* a reading may also make silence rules dirty */
}

static void tick(int64_t now)
{
    rules_tick(&rs, now);
    alertbook_tick(&b, now);
    flush(now);
}

/* Every firm was first seen in the registry at ts (the daemon sets it). */
static void seen_at(int64_t ts)
{
    for (size_t i = 0; i < reg->nfirms; i++)
        reg->firms[i].first_seen_ms = ts;
}

static ab_alert_t *find(const char *rule_id, const char *firm_id)
{
    return alertbook_get(&b, rule(rule_id), firm(firm_id), false);
}

static ab_alert_t *alert(const char *rule_id, const char *firm_id)
{
    ab_alert_t *a = find(rule_id, firm_id);
    ck_assert_msg(a != NULL, "no alert %s:%s", rule_id, firm_id ? firm_id : "(scope)");
    return a;
}

static const ab_detail_t *detail(const ab_alert_t *a, const char *key)
{
    for (uint32_t i = 0; i < a->ndetails; i++)
        if (strcmp(a->details[i].key, key) == 0)
            return &a->details[i];
    ck_abort_msg("%s: no detail %s", a->id, key);
    return NULL;
}

static double num(const ab_alert_t *a, const char *key)
{
    const ab_detail_t *d = detail(a, key);
    ck_assert_msg(!d->is_str, "%s: %s is a string", a->id, key);
    return d->num;
}

static const char *str(const ab_alert_t *a, const char *key)
{
    const ab_detail_t *d = detail(a, key);
    ck_assert_msg(d->is_str, "%s: %s is a number", a->id, key);
    return d->str;
}

static bool has_detail(const ab_alert_t *a, const char *key)
{
    for (uint32_t i = 0; i < a->ndetails; i++)
        if (strcmp(a->details[i].key, key) == 0)
            return true;
    return false;
}

static void assert_near_at(int line, double x, double want)
{
    ck_assert_msg(fabs(x - want) <= 1e-6 * (1 + fabs(want)), "line %d: %.12g, want %.12g", line, x,
                  want);
}
#define assert_near(x, want) assert_near_at(__LINE__, (x), (want))

/* ---- threshold ------------------------------------------------------------------------ */

#define COD_LIMIT                                                                                  \
    "[rule cod-limit]\ntype = threshold\nmetric = cod\ncluster = energy-env\n"                     \
    "chain = water-pollution-control\nabove = 50\nclear = 40\nfor_samples = 2\n"

START_TEST(test_threshold_for_samples)
{
    start(COD_LIMIT);
    reading("wp-1", 55, T0);
    expect(""); /* one breach: pending */
    ab_alert_t *a = alert("cod-limit", "wp-1");
    ck_assert(!a->firing);
    ck_assert_uint_eq(a->pending_count, 1);

    reading("wp-1", 56, T0 + MINUTE);
    expect("firing cod-limit:wp-1");
    ck_assert(a->firing);
    ck_assert_int_eq(a->since_ms, T0); /* the first breaching sample */
    ck_assert_double_eq(a->observed, 56);
    ck_assert_double_eq(a->expected, 50);
    ck_assert_double_eq(num(a, "breaching_samples"), 2);
    ck_assert_double_eq(num(a, "for_samples"), 2);
    ck_assert_double_eq(num(a, "clear"), 40);
    ck_assert_str_eq(a->summary, "cod 56 mg/L at wp-1 (Water One) is above the limit 50 mg/L "
                                 "(consecutive samples)");

    reading("wp-1", 45, T0 + 2 * MINUTE); /* between clear and above: holds */
    reading("wp-1", 40.5, T0 + 3 * MINUTE);
    reading("wp-1", 99, T0 + 4 * MINUTE);
    expect("");
    ck_assert(a->firing);

    reading("wp-1", 40, T0 + 5 * MINUTE);
    expect("resolved cod-limit:wp-1");
    ck_assert(!a->firing);
    ck_assert_str_eq(a->summary, "cod 40 mg/L at wp-1 (Water One) is back at or below 40 mg/L");
    ck_assert_double_eq(a->expected, 40);
    ck_assert_uint_eq(b.firing, 0);
}
END_TEST

/* The breaching samples must be consecutive. */
START_TEST(test_threshold_interrupted)
{
    start(COD_LIMIT);
    reading("wp-2", 55, T0);
    reading("wp-2", 30, T0 + MINUTE);
    reading("wp-2", 55, T0 + 2 * MINUTE);
    expect("");
    ck_assert(!alert("cod-limit", "wp-2")->firing);
    reading("wp-2", 60, T0 + 3 * MINUTE);
    expect("firing cod-limit:wp-2");
    ck_assert_int_eq(alert("cod-limit", "wp-2")->since_ms, T0 + 2 * MINUTE);
}
END_TEST

/* Only firms in scope are evaluated at all. */
START_TEST(test_threshold_scope)
{
    start(COD_LIMIT);
    for (int i = 0; i < 3; i++) {
        reading("gb-1", 500, T0 + i * MINUTE); /* another chain */
        reading("ee-m", 500, T0 + i * MINUTE); /* no chain */
        reading("pv-1", 500, T0 + i * MINUTE); /* another cluster */
    }
    expect("");
    ck_assert_uint_eq(b.nalerts, 0);
    ck_assert_uint_eq(rs.evaluations, 0);
}
END_TEST

START_TEST(test_threshold_below)
{
    start("[rule cod-low]\ntype = threshold\nmetric = cod\ncluster = energy-env\nbelow = 5\n"
          "clear = 6\nseverity = critical\n");
    reading("gb-1", 5, T0); /* at the limit is not below it */
    expect("");
    reading("gb-1", 4.9, T0 + MINUTE);
    expect("firing cod-low:gb-1");
    ab_alert_t *a = alert("cod-low", "gb-1");
    ck_assert_str_eq(a->summary, "cod 4.9 mg/L at gb-1 (Green Bricks) is below the limit 5 mg/L");
    ck_assert_double_eq(a->expected, 5);
    reading("gb-1", 5.5, T0 + 2 * MINUTE);
    expect("");
    reading("gb-1", 6, T0 + 3 * MINUTE);
    expect("resolved cod-low:gb-1");
    ck_assert_str_eq(a->summary, "cod 6 mg/L at gb-1 (Green Bricks) is back at or above 6 mg/L");
}
END_TEST

/* for = 10m: breaching continuously that long, by sample time. */
START_TEST(test_threshold_for_duration)
{
    start("[rule cod-for]\ntype = threshold\nmetric = cod\ncluster = new-energy\nabove = 100\n"
          "for = 10m\n");
    reading("pv-1", 120, T0);
    reading("pv-1", 130, T0 + 5 * MINUTE);
    reading("pv-1", 125, T0 + 10 * MINUTE - 1);
    expect("");
    reading("pv-1", 125, T0 + 10 * MINUTE);
    expect("firing cod-for:pv-1");
    ck_assert_int_eq(alert("cod-for", "pv-1")->since_ms, T0);

    /* a dip restarts the clock */
    reading("pv-2", 120, T0);
    reading("pv-2", 90, T0 + 5 * MINUTE);
    reading("pv-2", 120, T0 + 10 * MINUTE);
    reading("pv-2", 120, T0 + 15 * MINUTE);
    expect("");
    reading("pv-2", 120, T0 + 20 * MINUTE);
    expect("firing cod-for:pv-2");
    ck_assert_int_eq(alert("cod-for", "pv-2")->since_ms, T0 + 10 * MINUTE);
}
END_TEST

/* ---- growth ----------------------------------------------------------------------------- */

#define NE_GROWTH                                                                                  \
    "[rule ne-growth]\ntype = growth\nmetric = revenue\ncluster = new-energy\nyear = 2022\n"       \
    "target = 15\ntolerance = 2\nquorum = 80\nprorate = seasonal\n"
#define NE_LINEAR                                                                                  \
    "[rule ne-linear]\ntype = growth\nmetric = revenue\ncluster = new-energy\nyear = 2022\n"       \
    "target = 15\nprorate = linear\n"

static const char *const ne_firms[] = {"pv-1", "pv-2", "pv-3", "pv-4", "pv-5"};

/* 2021: h1 a month in January-June, h2 in July-December; 2022: cur a month
 * in January..months. */
static void growth_data(const char *f, double h1, double h2, double cur, int months)
{
    for (int m = 1; m <= 12; m++)
        put(f, 2021, m, m <= 6 ? h1 : h2);
    for (int m = 1; m <= months; m++)
        put(f, 2022, m, cur);
}

/* The worked example, cluster-wide: 2021 back-loaded (6 M of 24 M in H1),
 * 2022 H1 at 1.08 M a month: +8 % on the same months, target 15 +- 2. */
START_TEST(test_growth_fires)
{
    start(NE_GROWTH);
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, 6);
    run(T0);
    expect("firing ne-growth:new-energy");
    ab_alert_t *a = alert("ne-growth", NULL);
    ck_assert_int_eq(a->firm, -1);
    assert_near(a->observed, 8);
    ck_assert_double_eq(a->expected, 15);
    assert_near(num(a, "growth_pct"), 8);
    assert_near(num(a, "gap_pp"), -7);
    ck_assert_double_eq(num(a, "tolerance_pp"), 2);
    assert_near(num(a, "ytd"), 32.4 * M);
    assert_near(num(a, "last_year_same_months"), 30 * M);
    assert_near(num(a, "last_year_annual"), 120 * M);
    assert_near(num(a, "base"), 30 * M);
    assert_near(num(a, "expected_ytd"), 34.5 * M);
    assert_near(num(a, "projection"), 129.6 * M);
    assert_near(num(a, "target_annual"), 138 * M);
    ck_assert_double_eq(num(a, "firms_compared"), 5);
    ck_assert_str_eq(str(a, "prorate"), "seasonal");
    ck_assert_str_eq(str(a, "months"), "2022-01..2022-06");
    ck_assert_str_eq(str(a, "coverage"), "5 of 5 firms"); /* pv-x is inactive */
    ck_assert(!has_detail(a, "drag"));                    /* nobody shrank */
    ck_assert_str_eq(a->summary,
                     "new-energy revenue 2022-01..06 like for like (5 of 5 firms, seasonal): +8.0% "
                     "year on year vs target +15.0% (gap -7.0 pp; 5 of 5 firms reported 2022-06); "
                     "year-end run-rate 129.6 M vs target 138.0 M");

    /* a restated month that changes the figure: revised */
    put("pv-1", 2022, 6, 0.58 * M);
    run(T0 + MINUTE);
    expect("revised ne-growth:new-energy");
    assert_near(num(a, "growth_pct"), (31.9 / 30 - 1) * 100);
    ck_assert_str_eq(str(a, "drag"), "pv-1 -20000 (-0.07 pp)");

    /* restated months that lift growth above target - tolerance resolve it */
    for (int i = 0; i < 5; i++)
        put(ne_firms[i], 2022, 6, 1.5 * M);
    run(T0 + 2 * MINUTE);
    expect("resolved ne-growth:new-energy");
    assert_near(num(a, "growth_pct"), 15);
    ck_assert(!a->firing);
}
END_TEST

/* The rule keeps each firm's part between evaluations and recomputes only
 * the firms a batch touched (all of them when the months in move): after
 * every batch of a random stream of reports, restatements and annual
 * figures, its published figure equals rules_growth_figure's fresh one to
 * the last bit, auto (mixed seasonal and linear) included. */
START_TEST(test_growth_kept_equals_fresh)
{
    start(NE_GROWTH "[rule ne-auto]\ntype = growth\nmetric = revenue\ncluster = new-energy\n"
                    "year = 2022\ntarget = 15\nquorum = 60\n");
    unsigned seed = 12345;
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, 2);
    for (int batch = 0; batch < 300; batch++) {
        for (int k = 0; k < 1 + batch % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *f = ne_firms[(seed >> 8) % 5];
            int y = 2021 + (int)((seed >> 12) & 1), m = 1 + (int)((seed >> 16) % 12);
            double v = (double)((seed >> 4) % 5000) * 1000.0 + 0.125;
            if ((seed >> 20) % 17 == 0)
                put_year(f, 2021, v * 12);
            else
                put(f, y, m, v);
        }
        run(T0 + batch * MINUTE);
        for (int r = 0; r < 2; r++) {
            const char *id = r ? "ne-auto" : "ne-growth";
            rules_growth_t g;
            rules_growth_figure(cfg, reg, agg, rule(id), 0, 12, T0, &g, NULL, NULL);
            ab_alert_t *a = find(id, NULL);
            if (!a || g.months == 0 || g.base <= 0)
                continue;
            ck_assert_double_eq(num(a, "ytd"), g.ytd);
            ck_assert_double_eq(num(a, "base"), g.g.base);
            ck_assert_double_eq(num(a, "growth_pct"), g.g.growth_pct);
            ck_assert_double_eq(num(a, "last_year_annual"), g.ly_annual);
            ck_assert_double_eq(num(a, "firms_compared"), g.compared);
        }
    }
    ck_assert_ptr_nonnull(find("ne-growth", NULL));
    ck_assert_ptr_nonnull(find("ne-auto", NULL));
}
END_TEST

/* Like for like: a month a firm did not report this year does not count
 * last year either, so a late reporter is not a collapse. */
START_TEST(test_growth_like_for_like)
{
    start(NE_GROWTH);
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, i == 4 ? 2 : 6);
    for (int m = 4; m <= 6; m++)
        put("pv-5", 2022, m, 1.08 * M); /* pv-5: no March */
    run(T0);
    expect("firing ne-growth:new-energy");
    ab_alert_t *a = alert("ne-growth", NULL);
    assert_near(num(a, "growth_pct"), 8); /* not (31.32 / 30 - 1): 4.4 % */
    assert_near(num(a, "ytd"), 31.32 * M);
    assert_near(num(a, "last_year_same_months"), 29 * M);
    ck_assert_str_eq(str(a, "coverage"), "5 of 5 firms");
    ck_assert_double_eq(num(a, "firms_compared"), 5);
}
END_TEST

/* A firm with no last year at all is not compared (nor counted in the base). */
START_TEST(test_growth_new_firm)
{
    start(NE_GROWTH);
    for (int i = 0; i < 4; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, 6);
    for (int m = 1; m <= 6; m++)
        put("pv-5", 2022, m, 50 * M); /* new this year, and big */
    run(T0);
    expect("firing ne-growth:new-energy");
    ab_alert_t *a = alert("ne-growth", NULL);
    assert_near(num(a, "growth_pct"), 8);
    ck_assert_double_eq(num(a, "firms_compared"), 4);
    ck_assert_str_eq(str(a, "coverage"), "5 of 5 firms");
}
END_TEST

/* A month counts once the quorum has it: 3 of 5 in June is not June yet,
 * so the figure is January-May; the fourth firm brings June in. */
START_TEST(test_growth_quorum)
{
    start(NE_GROWTH);
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, i < 3 ? 6 : 5);
    run(T0);
    expect("firing ne-growth:new-energy");
    ab_alert_t *a = alert("ne-growth", NULL);
    ck_assert_str_eq(str(a, "months"), "2022-01..2022-05");
    ck_assert_str_eq(str(a, "coverage"), "5 of 5 firms");
    assert_near(num(a, "ytd"), 5 * 5 * 1.08 * M);
    put("pv-4", 2022, 6, 1.08 * M); /* 4 of 5: exactly the 80 % quorum */
    run(T0 + MINUTE);
    expect("revised ne-growth:new-energy");
    ck_assert_str_eq(str(a, "months"), "2022-01..2022-06");
    ck_assert_str_eq(str(a, "coverage"), "4 of 5 firms");
    assert_near(num(a, "growth_pct"), 8);
}
END_TEST

/* The user's report: 31 firms through October on +7.2 %, then one firm
 * sends November. Under the default quorum (80 %) November is nobody's
 * month yet: the figure does not move, whatever the pro-rating; with
 * quorum = 0 the November firm-month counts, but only against that firm's
 * own base (like for like), never as a month the others "missed". */
static const struct {
    const char *rule;
    double moved_pct; /* how far one early November may move the figure, in points */
} early[] = {
    {"[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n"
     "year = 2022\n",
     0}, /* the defaults */
    {"[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n"
     "year = 2022\nprorate = linear\n",
     0},
    {"[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n"
     "year = 2022\nquorum = 0\nprorate = linear\n",
     0.5},
    {"[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n"
     "year = 2022\nquorum = 0\n",
     0.5},
};

START_TEST(test_growth_early_firm)
{
    start(early[_i].rule);
    for (int i = 0; i < 5; i++)
        for (int m = 1; m <= 12; m++) {
            put(ne_firms[i], 2021, m, 1 * M);
            if (m <= 10)
                put(ne_firms[i], 2022, m, 1.072 * M);
        }
    run(T0);
    ab_alert_t *a = alert("g", NULL);
    assert_near(num(a, "growth_pct"), 7.2);
    ck_assert_str_eq(str(a, "months"), "2022-01..2022-10");
    put("pv-1", 2022, 11, 0.9 * M); /* early, and weak */
    run(T0 + MINUTE);
    double g = num(a, "growth_pct");
    ck_assert_msg(fabs(g - 7.2) <= early[_i].moved_pct + 1e-9, "moved to %g", g);
    ck_assert_msg(g > 6, "%g: one firm-month reads as a collapse", g);
}
END_TEST

/* year = current follows the local calendar (Asia/Shanghai here): on New
 * Year the rule moves on and the old year's alert resolves. */
START_TEST(test_growth_current_year)
{
    const int64_t dec31 = INT64_C(1672487999000); /* 2022-12-31T19:59:59+08:00 */
    const int64_t jan1 = INT64_C(1672502400000);  /* 2023-01-01T00:00:00+08:00 */

    start("[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n");
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, 6);
    run(dec31);
    expect("firing g:new-energy");
    ab_alert_t *a = alert("g", NULL);
    ck_assert_str_eq(str(a, "months"), "2022-01..2022-06");
    ck_assert_str_eq(str(a, "prorate"), "seasonal"); /* auto, with last year's months */
    tick(dec31);
    expect("");
    tick(jan1);
    expect("resolved g:new-energy");
    ck_assert_double_eq(num(a, "year"), 2023);
    ck_assert_str_eq(a->summary, "new-energy revenue 2023: no month has reached the quorum yet "
                                 "(80 % of 5 firms); nothing to compare");
    /* 2023's months are compared with 2022's */
    for (int i = 0; i < 5; i++)
        put(ne_firms[i], 2023, 1, 1.08 * M * 1.2);
    run(jan1 + MINUTE);
    expect("");
    assert_near(num(a, "growth_pct"), 20);
    ck_assert_str_eq(str(a, "months"), "2023-01..2023-01");
}
END_TEST

/* prorate = auto: seasonal for a firm with last year's months, linear for
 * one that reported last year only as a total. */
START_TEST(test_growth_auto_mixed)
{
    start("[rule g]\ntype = growth\nmetric = revenue\ncluster = new-energy\ntarget = 15\n"
          "year = 2022\n");
    for (int i = 0; i < 4; i++)
        growth_data(ne_firms[i], 1 * M, 3 * M, 1.08 * M, 6);
    put_year("pv-5", 2021, 24 * M);
    for (int m = 1; m <= 6; m++)
        put("pv-5", 2022, m, 2.4 * M); /* +20 % on a linear 12 M */
    run(T0);
    ab_alert_t *a = alert("g", NULL);
    ck_assert_str_eq(str(a, "prorate"), "seasonal for 4 firms, linear for 1");
    ck_assert_double_eq(num(a, "firms_compared"), 5);
    assert_near(num(a, "base"), 4 * 6 * M + 12 * M);
    assert_near(num(a, "ytd"), 4 * 6 * 1.08 * M + 6 * 2.4 * M);
    ck_assert(!has_detail(a, "last_year_same_months")); /* not all of the base is */
}
END_TEST

/* Seasonal against linear proration, and the tolerance: a table over the
 * shape of last year and this year's monthly figure. */
static const struct {
    double h1, h2, cur; /* M a month: 2021 H1, 2021 H2, 2022 H1 */
    double seasonal_pct;
    bool seasonal_fires, linear_fires;
} prorate[] = {
    {1, 3, 1.08, 8, true, true},      /* back-loaded year: linear sees -46 % */
    {1, 3, 1.125, 12.5, true, true},  /* inside the tolerance? no: 12.5 < 13 */
    {1, 3, 1.135, 13.5, false, true}, /* within tolerance */
    {1, 3, 1.16, 16, false, true},
    {3, 1, 3, 0, true, false}, /* front-loaded: linear sees +50 % */
    {3, 1, 3.48, 16, false, false},
    {2, 2, 2.2, 10, true, true}, /* a flat year: both agree */
    {2, 2, 2.32, 16, false, false},
};

START_TEST(test_growth_prorate)
{
    char want[200];

    start(NE_GROWTH NE_LINEAR);
    for (int i = 0; i < 5; i++)
        growth_data(ne_firms[i], prorate[_i].h1 * M, prorate[_i].h2 * M, prorate[_i].cur * M, 6);
    run(T0);
    snprintf(want, sizeof want, "%s%s%s",
             prorate[_i].seasonal_fires ? "firing ne-growth:new-energy" : "",
             prorate[_i].seasonal_fires && prorate[_i].linear_fires ? "\n" : "",
             prorate[_i].linear_fires ? "firing ne-linear:new-energy" : "");
    expect(want);
    /* a growth rule keeps its entry whether it fires or not: the figures are
     * listed either way (clustermonctl cluster) */
    double annual = 6 * (prorate[_i].h1 + prorate[_i].h2);
    ab_alert_t *s = find("ne-growth", NULL), *l = find("ne-linear", NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(l);
    ck_assert(prorate[_i].seasonal_fires == s->firing);
    ck_assert(prorate[_i].linear_fires == l->firing);
    if (s) {
        assert_near(num(s, "growth_pct"), prorate[_i].seasonal_pct);
        ck_assert_str_eq(str(s, "prorate"), "seasonal");
        assert_near(num(s, "base"), 5 * 6 * prorate[_i].h1 * M);
    }
    if (l) {
        assert_near(num(l, "growth_pct"), (6 * prorate[_i].cur / (annual / 2) - 1) * 100);
        ck_assert_str_eq(str(l, "prorate"), "linear");
        assert_near(num(l, "base"), 5 * annual / 2 * M);
        assert_near(num(l, "projection"), 5 * 12 * prorate[_i].cur * M);
    }
}
END_TEST

/* ---- change ----------------------------------------------------------------------------- */

#define DROP                                                                                       \
    "[rule drop]\ntype = change\nmetric = revenue\ncluster = energy-env\n"                         \
    "chain = water-pollution-control\ndrop = 50\n"

START_TEST(test_change_previous)
{
    start(DROP);
    put("wp-1", 2022, 1, 100);
    run(T0);
    put("wp-1", 2022, 2, 100);
    run(T0);
    put("wp-1", 2022, 3, 51); /* -49 % */
    run(T0);
    expect("");
    put("wp-1", 2022, 4, 25.5); /* -50 % */
    run(T0);
    expect("firing drop:wp-1");
    ab_alert_t *a = alert("drop", "wp-1");
    ck_assert_str_eq(str(a, "period"), "2022-04");
    ck_assert_str_eq(str(a, "compared_period"), "2022-03");
    ck_assert_double_eq(num(a, "value"), 25.5);
    ck_assert_double_eq(num(a, "compared_value"), 51);
    assert_near(num(a, "change_pct"), -50);
    ck_assert_double_eq(a->expected, -50);
    ck_assert_str_eq(a->summary, "revenue month on month of wp-1 (Water One): 25.5 in 2022-04 vs "
                                 "51 in 2022-03 (-50.0%, beyond the limit)");
    put("wp-1", 2022, 5, 100); /* +292 %: rises are not watched */
    run(T0);
    expect("resolved drop:wp-1");
    ck_assert_str_eq(str(a, "period"), "2022-05");

    put("gb-1", 2022, 1, 100); /* not on the chain */
    put("gb-1", 2022, 2, 1);
    run(T0);
    expect("");
    ck_assert_ptr_null(find("drop", "gb-1"));
}
END_TEST

START_TEST(test_change_last_year)
{
    start("[rule yoy]\ntype = change\nmetric = revenue\ncluster = energy-env\n"
          "chain = green-building-materials\ncompare = last-year\ndrop = 30\nrise = 50\n");
    put("gb-1", 2021, 4, 100);
    put("gb-1", 2021, 5, 100);
    put("gb-1", 2021, 6, 100);
    put("gb-1", 2022, 4, 40); /* -60 % on the month before would not matter */
    run(T0);
    expect("firing yoy:gb-1");
    put("gb-1", 2022, 5, 75); /* -25 % year on year */
    run(T0);
    expect("resolved yoy:gb-1");
    ab_alert_t *a = alert("yoy", "gb-1");
    ck_assert_str_eq(str(a, "compared_period"), "2021-05");
    put("gb-1", 2022, 6, 160); /* +60 % */
    run(T0);
    expect("firing yoy:gb-1");
    ck_assert_double_eq(a->expected, 50);
    ck_assert_str_eq(a->summary, "revenue year on year of gb-1 (Green Bricks): 160 in 2022-06 vs "
                                 "100 in 2021-06 (+60.0%, beyond the limit)");
    put("gb-1", 2022, 7, 100); /* nothing to compare with: not a verdict */
    run(T0);
    expect("resolved yoy:gb-1");
}
END_TEST

/* ---- outlier ----------------------------------------------------------------------------- */

#define OUTLIERS                                                                                   \
    "[rule outlier]\ntype = outlier\nmetric = revenue\ncluster = energy-env\nwindow = 6\n"         \
    "min_history = 4\nk = 5\n"                                                                     \
    "[rule outlier-plain]\ntype = outlier\nmetric = revenue\ncluster = energy-env\n"               \
    "window = 6\nmin_history = 4\nk = 5\nseasonal = no\n"

/* A steady 10 % a year, with a Spring Festival dip every February. */
static double pattern(int y, int m)
{
    double base = m == 1 ? 150 : m == 2 ? 40 : 100;
    return base * pow(1.1, y - 2020);
}

START_TEST(test_outlier)
{
    start(OUTLIERS);
    for (int y = 2020; y <= 2022; y++)
        for (int m = 1; m <= (y < 2022 ? 12 : 2); m++)
            put("ee-m", y, m, pattern(y, m));
    run(T0);
    /* the February dip is normal by its own last year; on plain values it is not */
    expect("firing outlier-plain:ee-m");
    ck_assert_ptr_null(find("outlier", "ee-m"));
    ab_alert_t *p = alert("outlier-plain", "ee-m");
    assert_near(num(p, "median"), 110);
    assert_near(num(p, "z"), 0.6745 * (48.4 - 110) / 5.5);
    ck_assert_double_eq(num(p, "history"), 6);
    ck_assert(!has_detail(p, "ratio"));

    for (int m = 3; m <= 6; m++)
        put("ee-m", 2022, m, pattern(2022, m));
    run(T0);
    expect("resolved outlier-plain:ee-m");

    put("ee-m", 2022, 7, pattern(2022, 7) / 2); /* one bad month */
    run(T0);
    expect("firing outlier:ee-m\nfiring outlier-plain:ee-m");
    ab_alert_t *s = alert("outlier", "ee-m");
    ck_assert(s->firing);
    ck_assert_str_eq(str(s, "period"), "2022-07");
    assert_near(num(s, "ratio"), 0.55);
    assert_near(num(s, "last_year_value"), 110);
    assert_near(num(s, "median"), 1.1);
    assert_near(num(s, "mad"), 0.055); /* the 5 % floor */
    assert_near(num(s, "z"), -6.745);
    ck_assert_double_eq(s->expected, 5);

    put("ee-m", 2022, 8, pattern(2022, 8)); /* back to normal */
    run(T0);
    expect("resolved outlier:ee-m\nresolved outlier-plain:ee-m");
}
END_TEST

/* Too little history is no verdict, however wild the figures. */
START_TEST(test_outlier_min_history)
{
    start(OUTLIERS);
    put("wp-1", 2022, 1, 100);
    put("wp-1", 2022, 2, 101);
    put("wp-1", 2022, 3, 99);
    put("wp-1", 2022, 4, 1);
    run(T0);
    expect("");
    ck_assert_ptr_null(find("outlier-plain", "wp-1"));
    ck_assert_ptr_null(find("outlier", "wp-1"));
    put("wp-1", 2022, 5, 100);
    put("wp-1", 2022, 6, 1e6);
    run(T0);
    expect("firing outlier-plain:wp-1"); /* 5 months of history now */
}
END_TEST

/* A month outside a change or outlier rule's reach from the latest month
 * (a late or restated old figure) leaves its inputs, and so its result, as
 * they were: it is not evaluated. One inside the reach, or a new latest
 * month, is, and decides as a full evaluation would. */
START_TEST(test_reach_of_latest_month)
{
    start(DROP OUTLIERS);
    for (int y = 2020; y <= 2022; y++)
        for (int m = 1; m <= 12; m++)
            put("wp-1", y, m, pattern(y, m));
    put("wp-1", 2023, 1, pattern(2023, 1) / 4); /* -62 % on December, a quarter of last January */
    run(T0);
    expect("firing drop:wp-1\nfiring outlier:wp-1\nfiring outlier-plain:wp-1");
    uint64_t e0 = rs.evaluations;
    put("wp-1", 2021, 3, 1e9); /* 22 months back: beyond every reach (6 + 12) */
    run(T0);
    expect("");
    ck_assert_uint_eq(rs.evaluations, e0);
    put("wp-1", 2022, 2, 1e9); /* 11 months back: within the seasonal outlier's reach only */
    run(T0);
    expect("");
    ck_assert_uint_eq(rs.evaluations, e0 + 1);
    put("wp-1", 2022, 12, 60); /* the month before: within every rule's */
    run(T0);
    ck_assert_uint_eq(rs.evaluations, e0 + 4);
    expect("resolved drop:wp-1"); /* -17 %; both outliers still far off */
    put("wp-1", 2020, 5, 1);
    run(T0);
    ck_assert_uint_eq(rs.evaluations, e0 + 4);
}
END_TEST

/* ---- silence ------------------------------------------------------------------------------ */

#define REPORT_DATA                                                                                \
    "[rule report]\ntype = silence\ncluster = new-energy\nmetric = revenue\nclock = data\n"

/* pv-1..3 report January-March, pv-5 January-February, pv-4 never; pv-x is
 * inactive. */
static void silence_data(void)
{
    for (int m = 1; m <= 3; m++)
        for (int i = 0; i < 3; i++)
            put(ne_firms[i], 2022, m, 10);
    put("pv-5", 2022, 1, 10);
    put("pv-5", 2022, 2, 10);
}

static void check_data_clock(const char *r)
{
    char id4[64], id5[64], want[200];

    snprintf(id4, sizeof id4, "%s:pv-4", r);
    snprintf(id5, sizeof id5, "%s:pv-5", r);
    char idn[64];
    snprintf(idn, sizeof idn, "%s:new-energy", r);
    silence_data();
    run(T0);
    snprintf(want, sizeof want, "firing %s\nfiring %s", id5, idn);
    expect(want);
    ab_alert_t *late = alert(r, "pv-5"), *never = alert(r, NULL);
    ck_assert_ptr_null(find(r, "pv-4")); /* never reported: in the scope's summary, not alone */
    ck_assert_str_eq(str(late, "state"), "late");
    ck_assert_str_eq(str(late, "due_period"), "2022-03");
    ck_assert_str_eq(str(late, "last_period"), "2022-02");
    ck_assert_str_eq(str(late, "clock"), "data");
    ck_assert_double_eq(late->observed, 1);
    ck_assert_str_eq(late->summary, "pv-5 (Storage Two) is late: the 2022-03 report is missing, "
                                    "the last one is for 2022-02");
    ck_assert_str_eq(str(never, "state"), "never reported");
    ck_assert_str_eq(str(never, "never_reported"), "pv-4");
    ck_assert_double_eq(num(never, "count"), 1);
    ck_assert_double_eq(num(never, "in_first_period"), 0);
    ck_assert_str_eq(never->summary, "1 of 5 firms of new-energy have never reported; 2022-03 was "
                                     "due: pv-4");
    ck_assert_ptr_null(find(r, "pv-x")); /* inactive: never expected */
    ck_assert_ptr_null(find(r, "pv-1")); /* reported: nothing to track */

    /* one firm in April does not move "now" (2 of 5 is not half) */
    put("pv-1", 2022, 4, 10);
    put("pv-2", 2022, 4, 10);
    run(T0);
    expect("");
    /* three do: pv-5 is two months behind now */
    put("pv-3", 2022, 4, 10);
    run(T0);
    snprintf(want, sizeof want, "revised %s\nrevised %s", id5, idn);
    expect(want);
    ck_assert_str_eq(str(never, "due_period"), "2022-04");
    ck_assert_str_eq(str(late, "state"), "silent");
    ck_assert_str_eq(str(late, "due_period"), "2022-04");
    ck_assert_double_eq(late->observed, 2);

    /* pv-5 catches up */
    put("pv-5", 2022, 3, 10);
    put("pv-5", 2022, 4, 10);
    run(T0);
    snprintf(want, sizeof want, "resolved %s", id5);
    expect(want);
    ck_assert_str_eq(str(late, "state"), "reported");
}

START_TEST(test_silence_data_clock)
{
    start(REPORT_DATA);
    check_data_clock("report");
}
END_TEST

/* Without a metric the rule watches any report at all. */
START_TEST(test_silence_data_clock_any_metric)
{
    start("[rule report-any]\ntype = silence\ncluster = new-energy\nclock = data\n");
    check_data_clock("report-any");
}
END_TEST

/* Exactly half of the peers is enough to move the data clock: on the
 * energy-storage chain (pv-4, pv-5; pv-x is inactive) one firm in March
 * makes March due for the other. */
START_TEST(test_silence_data_clock_half)
{
    start("[rule report-es]\ntype = silence\ncluster = new-energy\nchain = energy-storage\n"
          "metric = revenue\nclock = data\n");
    put("pv-4", 2022, 1, 10);
    put("pv-5", 2022, 1, 10);
    run(T0);
    expect("");
    put("pv-4", 2022, 2, 10);
    run(T0);
    expect("firing report-es:pv-5");
    ck_assert_str_eq(str(alert("report-es", "pv-5"), "due_period"), "2022-02");
    put("pv-1", 2022, 3, 10); /* another chain: not a peer */
    run(T0);
    expect("");
}
END_TEST

/* Wall clock: the report for April is due by May 10 (local time). */
START_TEST(test_silence_wall_clock)
{
    const int64_t may10_noon = INT64_C(1652155200000);  /* 2022-05-10T12:00:00+08:00 */
    const int64_t may10_last = INT64_C(1652198399000);  /* 2022-05-10T23:59:59+08:00 */
    const int64_t may11_first = INT64_C(1652198401000); /* 2022-05-11T00:00:01+08:00 */

    start("[rule report-wall]\ntype = silence\ncluster = new-energy\nmetric = revenue\n"
          "due_day = 10\n");
    for (int i = 0; i < 5; i++)
        for (int m = 1; m <= (i == 1 ? 3 : 4); m++) /* pv-2 has not sent April */
            put(ne_firms[i], 2022, m, 10);
    run(may10_noon);
    tick(may10_noon);
    tick(may10_last);
    expect("");
    tick(may11_first);
    expect("firing report-wall:pv-2");
    ab_alert_t *a = alert("report-wall", "pv-2");
    ck_assert_str_eq(str(a, "state"), "late");
    ck_assert_str_eq(str(a, "due_period"), "2022-04");
    ck_assert_str_eq(str(a, "clock"), "wall");
    ck_assert_double_eq(num(a, "due_day"), 10);
    tick(may11_first + HOUR); /* nothing new */
    expect("");
    put("pv-2", 2022, 4, 10);
    run(may11_first + 2 * HOUR);
    expect("resolved report-wall:pv-2");
}
END_TEST

/* Continuous: readings expected at least every 15 min. Every firm was
 * first seen at T0, so one that never sent anything gets the same 15 min. */
START_TEST(test_silence_continuous)
{
    start("[rule cod-quiet]\ntype = silence\ncluster = energy-env\n"
          "chain = water-pollution-control\nmetric = cod\nschedule = continuous\nquiet = 15m\n");
    seen_at(T0);
    reading("wp-1", 10, T0);
    reading("wp-2", 10, T0);
    tick(T0 + 15 * MINUTE - 1);
    expect("");
    tick(T0 + 15 * MINUTE); /* wp-3 has sent nothing at all */
    expect("firing cod-quiet:energy-env");
    ab_alert_t *n = alert("cod-quiet", NULL);
    ck_assert_str_eq(n->summary, "1 of 3 firms of energy-env/water-pollution-control have sent no "
                                 "cod at all: wp-3");
    ck_assert_ptr_null(find("cod-quiet", "wp-3"));
    tick(T0 + 15 * MINUTE + 1);
    expect("firing cod-quiet:wp-1\nfiring cod-quiet:wp-2");
    ab_alert_t *a = alert("cod-quiet", "wp-1");
    ck_assert_str_eq(str(a, "last_seen"), "2022-06-30T16:00:00Z");
    /* staying silent is not news: no revision per tick */
    tick(T0 + 20 * MINUTE);
    tick(T0 + 30 * MINUTE);
    expect("");
    reading("wp-1", 10, T0 + 31 * MINUTE);
    expect("resolved cod-quiet:wp-1");
    ck_assert_str_eq(a->summary, "wp-1 (Water One) sends cod again");
    reading("wp-3", 10, T0 + 32 * MINUTE); /* its first reading ends the summary */
    expect("resolved cod-quiet:energy-env");
}
END_TEST

/* A new deployment: a registry, no data. No firm is "never reported" before
 * its first report is due by the schedule, counted from when the daemon
 * first saw it: first seen 2022-07-01, the July report is due by August 10,
 * so the first alert comes on August 11 -- one for the scope, not one per
 * firm. An explicit grace replaces the schedule's. */
static const struct {
    const char *rule;
    int64_t quiet_until, fires_at;
} fresh[] = {
    {"[rule r]\ntype = silence\ncluster = new-energy\nmetric = revenue\n",
     INT64_C(1660147199000) /* 2022-08-10T23:59:59+08:00 */,
     INT64_C(1660147200000) /* 2022-08-11T00:00:00+08:00 */},
    {"[rule r]\ntype = silence\ncluster = new-energy\nmetric = revenue\ndue_day = 20\n",
     INT64_C(1661011199000) /* 2022-08-20T23:59:59+08:00 */, INT64_C(1661011200000)},
    {"[rule r]\ntype = silence\ncluster = new-energy\nmetric = revenue\ngrace = 2h\n",
     T0 + 2 * HOUR - 1, T0 + 2 * HOUR},
    {"[rule r]\ntype = silence\ncluster = new-energy\nmetric = revenue\nclock = data\n"
     "grace = 2h\n",
     T0 + 2 * HOUR - 1, T0 + 2 * HOUR},
    {"[rule r]\ntype = silence\ncluster = new-energy\nmetric = revenue\ngrace = 0\n", T0 - 1, T0},
};

START_TEST(test_silence_fresh_start)
{
    start(fresh[_i].rule);
    seen_at(T0);
    if (strstr(fresh[_i].rule, "clock = data")) {
        for (int m = 1; m <= 3; m++) /* peers make 2022-03 due; pv-4 never reports */
            for (int i = 0; i < 5; i++)
                if (i != 3)
                    put(ne_firms[i], 2022, m, 10);
        run(T0);
    }
    rules_evaluate_all(&rs, fresh[_i].quiet_until); /* as at start-up */
    flush(fresh[_i].quiet_until);
    tick(fresh[_i].quiet_until);
    expect("");
    ab_alert_t *n = find("r", NULL);
    if (n)
        ck_assert(!n->firing);
    tick(fresh[_i].fires_at);
    expect("firing r:new-energy");
    n = alert("r", NULL);
    ck_assert_double_eq(num(n, "count"), strstr(fresh[_i].rule, "clock = data") ? 1 : 5);
    for (int i = 0; i < 5; i++)
        ck_assert_ptr_null(find("r", ne_firms[i]));
}
END_TEST

/* ---- above-scale -------------------------------------------------------------------------- */

START_TEST(test_above_scale)
{
    start("[rule above-scale]\ntype = above-scale\ncluster = energy-env\n");
    put_year("gb-1", 2020, 18 * M);
    put_year("gb-1", 2021, 22 * M); /* rises above the 20 M line */
    for (int m = 1; m <= 12; m++) { /* 30 M both years, by months */
        put("wp-1", 2020, m, 2.5 * M);
        put("wp-1", 2021, m, 2.5 * M);
    }
    put_year("wp-2", 2020, 25 * M);
    put_year("wp-2", 2021, 15 * M); /* falls below */
    put_year("wp-3", 2021, 30 * M); /* no 2020: not judged */
    for (int m = 1; m <= 11; m++)   /* an incomplete year is no year */
        put("ee-m", 2021, m, 5 * M);
    put_year("ee-m", 2020, 1 * M);
    run(T0);
    expect("firing above-scale:wp-2\nfiring above-scale:gb-1");
    ab_alert_t *a = alert("above-scale", "gb-1");
    ck_assert_str_eq(a->summary,
                     "gb-1 (Green Bricks) rose above the above-scale line of 20.0 M in 2021 "
                     "(revenue 2021: 22.0 M; 2020: 18.0 M); energy-env above-scale firms: 2 in "
                     "2020, 3 in 2021");
    ck_assert_double_eq(num(a, "year"), 2021);
    ck_assert_double_eq(num(a, "revenue"), 22 * M);
    ck_assert_double_eq(num(a, "previous_revenue"), 18 * M);
    ck_assert_double_eq(num(a, "line"), 20 * M);
    ck_assert_double_eq(num(a, "cluster_above_scale"), 3);
    ck_assert_double_eq(num(a, "cluster_above_scale_before"), 2);
    ck_assert_str_eq(alert("above-scale", "wp-2")->summary,
                     "wp-2 (Water Two) fell below the above-scale line of 20.0 M in 2021 "
                     "(revenue 2021: 15.0 M; 2020: 25.0 M); energy-env above-scale firms: 2 in "
                     "2020, 3 in 2021");
    ck_assert_ptr_null(find("above-scale", "wp-1")); /* above both years */
    ck_assert_ptr_null(find("above-scale", "wp-3"));
    ck_assert_ptr_null(find("above-scale", "ee-m"));

    /* 2022 in progress: still judged on 2021 */
    for (int m = 1; m <= 11; m++)
        put("gb-1", 2022, m, 2 * M);
    run(T0);
    expect("");
    put("gb-1", 2022, 12, 2 * M); /* 24 M, above again: no crossing in 2022 */
    run(T0);
    expect("resolved above-scale:gb-1");
    ck_assert_double_eq(num(a, "year"), 2022);
}
END_TEST

/* ---- scope, order, recovery ------------------------------------------------------------------ */

static const struct {
    int cluster, chain, tier; /* the rule's scope */
    int f_cluster, f_chain;
    tier_t f_tier;
    bool want;
} scope[] = {
    {0, -1, -1, 0, 0, TIER_LEADING, true},
    {0, -1, -1, 0, -1, TIER_MEMBER, true}, /* the whole cluster: chainless firms too */
    {0, -1, -1, 1, 0, TIER_LEADING, false},
    {0, 1, -1, 0, 1, TIER_MEMBER, true},
    {0, 1, -1, 0, 0, TIER_MEMBER, false},
    {0, 1, -1, 0, -1, TIER_MEMBER, false},
    {0, 1, -1, 1, 1, TIER_MEMBER, false}, /* chain 1 of another cluster */
    {0, -1, TIER_LEADING, 0, 1, TIER_LEADING, true},
    {0, -1, TIER_LEADING, 0, 1, TIER_BACKBONE, false},
    {0, 0, TIER_BACKBONE, 0, 0, TIER_BACKBONE, true},
    {0, 0, TIER_BACKBONE, 0, 1, TIER_BACKBONE, false},
    {0, 0, TIER_BACKBONE, 0, 0, TIER_LEADING, false},
    {1, -1, TIER_MEMBER, 0, -1, TIER_MEMBER, false},
};

START_TEST(test_in_scope)
{
    config_rule_t r = {
        .cluster = scope[_i].cluster, .chain = scope[_i].chain, .tier = scope[_i].tier};
    firm_t f = {
        .cluster = scope[_i].f_cluster, .chain = scope[_i].f_chain, .tier = scope[_i].f_tier};

    ck_assert_msg(rules_in_scope(&r, &f) == scope[_i].want, "row %d", _i);
}
END_TEST

/* A rule narrowed to a tier sees only that tier. */
START_TEST(test_tier_scope)
{
    start("[rule drop-leading]\ntype = change\nmetric = revenue\ncluster = energy-env\n"
          "tier = leading\ndrop = 50\n");
    static const char *const firms[] = {"wp-1", "wp-2", "gb-1"};
    for (int i = 0; i < 3; i++) {
        put(firms[i], 2022, 1, 100);
        put(firms[i], 2022, 2, 10);
    }
    run(T0);
    expect("firing drop-leading:wp-1"); /* wp-1 is the one leading firm */
}
END_TEST

/* Evaluation order is by rule, then firm, whatever order the data came in,
 * so two daemons fed the same batch publish the same sequence. */
#define ORDER_RULES DROP "[rule above-scale]\ntype = above-scale\ncluster = energy-env\n"

static void order_run(bool reverse, char *out, size_t size)
{
    static const char *const firms[] = {"wp-1", "wp-2", "wp-3", "gb-1"};

    start(ORDER_RULES);
    for (int k = 0; k < 4; k++) {
        const char *f = firms[reverse ? 3 - k : k];
        put_year(f, 2020, 10 * M);
        for (int m = 1; m <= 12; m++)
            put(f, 2021, m, m == 12 ? 1 * M : 2.5 * M); /* 28.5 M, and a December drop */
    }
    run(T0);
    snprintf(out, size, "%s", pubs);
    for (size_t i = 0; i < b.nalerts; i++) { /* the summaries too */
        size_t used = strlen(out);
        snprintf(out + used, size - used, "\n%s", b.alerts[i]->summary);
    }
    pubs[0] = '\0';
    stop();
}

START_TEST(test_deterministic_order)
{
    static char first[16384], second[16384];

    order_run(false, first, sizeof first);
    order_run(true, second, sizeof second);
    ck_assert_str_eq(first, second);
    ck_assert_msg(strncmp(first,
                          "firing drop:wp-1\nfiring drop:wp-2\nfiring drop:wp-3\n"
                          "firing above-scale:wp-1\nfiring above-scale:wp-2\n"
                          "firing above-scale:wp-3\nfiring above-scale:gb-1\n",
                          strlen("firing drop:wp-1\nfiring drop:wp-2\nfiring drop:wp-3\n"
                                 "firing above-scale:wp-1\nfiring above-scale:wp-2\n"
                                 "firing above-scale:wp-3\nfiring above-scale:gb-1\n")) == 0,
                  "%s", first);
}
END_TEST

/* After a replay in quiet mode, evaluating everything again publishes
 * nothing: the states were rebuilt, the transitions published long ago. */
START_TEST(test_replay_then_evaluate_all)
{
    start(DROP COD_LIMIT);
    b.quiet = true;
    put("wp-1", 2022, 1, 100);
    put("wp-1", 2022, 2, 10);
    run(T0);
    reading("wp-2", 90, T0);
    reading("wp-2", 90, T0 + MINUTE);
    expect("");
    ck_assert(alert("drop", "wp-1")->firing);
    ck_assert(alert("cod-limit", "wp-2")->firing);
    b.quiet = false;
    rules_evaluate_all(&rs, T0 + HOUR);
    flush(T0 + HOUR);
    expect("");
    put("wp-1", 2022, 3, 100);
    run(T0 + HOUR);
    reading("wp-2", 10, T0 + HOUR);
    expect("resolved drop:wp-1\nresolved cod-limit:wp-2");
}
END_TEST

/* A province's silence rule for one city: the registry's city column. */
START_TEST(test_city_scope)
{
    config_rule_t r = {.cluster = 0, .chain = -1, .tier = -1, .city = (char *)"zibo"};
    firm_t in = {.cluster = 0, .city = 1, .city_id = "zibo"};
    firm_t other = {.cluster = 0, .city = 0, .city_id = "jining"};
    firm_t none = {.cluster = 0, .city = -1};
    ck_assert(rules_in_scope(&r, &in));
    ck_assert(!rules_in_scope(&r, &other));
    ck_assert(!rules_in_scope(&r, &none));
    r.city = NULL;
    ck_assert(rules_in_scope(&r, &other));
    ck_assert(rules_in_scope(&r, &none));
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("scope");

    tcase_add_loop_test(tc, test_in_scope, 0, (int)(sizeof scope / sizeof scope[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("engine");
    tcase_add_unchecked_fixture(tc, tmpdir_make, tmpdir_remove);
    tcase_add_checked_fixture(tc, setup, stop);
    tcase_add_test(tc, test_threshold_for_samples);
    tcase_add_test(tc, test_threshold_interrupted);
    tcase_add_test(tc, test_threshold_scope);
    tcase_add_test(tc, test_threshold_below);
    tcase_add_test(tc, test_threshold_for_duration);
    tcase_add_test(tc, test_growth_fires);
    tcase_add_test(tc, test_growth_kept_equals_fresh);
    tcase_add_test(tc, test_growth_like_for_like);
    tcase_add_test(tc, test_growth_new_firm);
    tcase_add_test(tc, test_growth_quorum);
    tcase_add_loop_test(tc, test_growth_early_firm, 0, (int)(sizeof early / sizeof early[0]));
    tcase_add_test(tc, test_growth_current_year);
    tcase_add_test(tc, test_growth_auto_mixed);
    tcase_add_loop_test(tc, test_growth_prorate, 0, (int)(sizeof prorate / sizeof prorate[0]));
    tcase_add_test(tc, test_change_previous);
    tcase_add_test(tc, test_change_last_year);
    tcase_add_test(tc, test_outlier);
    tcase_add_test(tc, test_outlier_min_history);
    tcase_add_test(tc, test_reach_of_latest_month);
    tcase_add_test(tc, test_silence_data_clock);
    tcase_add_test(tc, test_silence_data_clock_any_metric);
    tcase_add_test(tc, test_silence_data_clock_half);
    tcase_add_test(tc, test_silence_wall_clock);
    tcase_add_test(tc, test_silence_continuous);
    tcase_add_loop_test(tc, test_silence_fresh_start, 0, (int)(sizeof fresh / sizeof fresh[0]));
    tcase_add_test(tc, test_above_scale);
    tcase_add_test(tc, test_tier_scope);
    tcase_add_test(tc, test_deterministic_order);
    tcase_add_test(tc, test_replay_then_evaluate_all);
    tcase_add_test(tc, test_city_scope);
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
