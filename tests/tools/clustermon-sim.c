/*
 * clustermon-sim -- a province-scale world with an answer key, fed to a real
 * clustermond through the real protocol, and a checker that scores the
 * alerts the daemon publishes against the key.
 *
 *   clustermon-sim world [--seed N] [--firms N] [--year Y] [--ingest E] [--alerts E]
 *                        [--control E] [--state DIR] DIR
 *       writes DIR/world.ini (the parameters), DIR/clustermond.conf and
 *       DIR/registry.csv (the daemon's config for that world), DIR/key.csv
 *       (every alert the rules must fire, with firm and period) and
 *       DIR/planted.csv (the anomalies planted in the data).
 *   clustermon-sim run [--streams N] [--window N] [--rate SAMPLES/S] [--json FILE]
 *                      [--show N] [-v] DIR
 *       regenerates the world of DIR/world.ini, subscribes to the daemon's
 *       alerts, feeds the data through N agent streams (agents/delivery.c:
 *       exactly once, windows, resends) and prints recall and precision
 *       per rule type, the first misses and false alarms, and the rate.
 *
 * Why the key can be exact. Every cluster's data for a month goes in one
 * batch (a cluster holds at most SIM_CLUSTER_FIRMS firms, so a batch stays
 * under the 10,000-sample limit), and every cluster has its own rules and is
 * always fed through the same stream, in month order. The daemon evaluates
 * period rules at the end of each batch, so the state each rule sees is
 * known: the reference model below applies the same samples and evaluates
 * the same rules at the same points, implementing the rule semantics as
 * README "Rules and alerts" states them (it shares no code with
 * daemon/rules.c, so a disagreement is a finding, not a tautology). Streams
 * interleave clusters in any order; that changes nothing, since no rule
 * spans two clusters.
 *
 * Time. Nothing in the world depends on today's date: growth rules name
 * their year (`year = Y+2`), silence rules use the data clock
 * (`clock = data`: a month is due once half the scope reported it) with
 * `grace = 0s` (a firm registered is expected at once), threshold rules
 * judge readings by their own timestamps. Flapping and grouping (policies
 * of how alerts are published, which depend on the daemon's wall clock) are
 * turned off in the generated config so that every transition is published
 * one by one: [alerting] flap_max and group_max = 1000000. Continuous
 * silence rules (judged against the wall clock) are not simulated.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agents/delivery.h"
#include "proto/clock.h"
#include "proto/hash.h"
#include "proto/proto.h"

#define SIM_MONTHS 36         /* three years of months */
#define SIM_CITIES 16         /* a province's prefecture-level cities */
#define SIM_CLUSTER_FIRMS 700 /* most firms in one cluster: one batch a month */
#define SIM_PERIOD_METRICS 8  /* revenue .. rnd */
#define SIM_READINGS 2        /* cod readings per firm and month */
#define SIM_LINE 20000000.0   /* above_scale_line, yuan a year */
#define SIM_TARGET 10.0       /* growth target, % */
#define SIM_TOLERANCE 2.0     /* pp */
#define SIM_QUORUM 80.0       /* % */
#define SIM_DROP 50.0         /* change rule: a halving */
#define SIM_OUTLIER_K 5.0
#define SIM_OUTLIER_WINDOW 6
#define SIM_OUTLIER_MIN_HISTORY 4
#define SIM_OUTLIER_MIN_SPREAD 5.0
#define SIM_COD_ABOVE 50.0
#define SIM_COD_CLEAR 40.0

static const char *const metric_names[] = {"revenue", "profit",  "energy", "output", "tax",
                                           "wages",   "exports", "rnd",    "cod",    "nh3n"};
static const char *const metric_units[] = {"yuan", "yuan", "tce",  "yuan", "yuan",
                                           "yuan", "yuan", "yuan", "mg/L", "mg/L"};
enum { M_REVENUE = 0, M_ENERGY = 2, M_COD = 8, M_NH3N = 9, NMETRICS = 10 };

static const char *const city_names[SIM_CITIES] = {
    "nanjing",  "wuxi",     "xuzhou",    "changzhou", "suzhou", "nantong", "lianyungang", "huaian",
    "yancheng", "yangzhou", "zhenjiang", "taizhou",   "suqian", "kunshan", "jiangyin",    "yixing"};
static const char *const industry_names[] = {"newenergy", "biomed", "equipment", "textiles",
                                             "chemicals", "ict",    "autoparts", "food"};

/* Rule types, in report order; a world has one rule of each per cluster. */
enum { T_THRESHOLD, T_GROWTH, T_CHANGE, T_OUTLIER, T_SILENCE, T_NEVER, T_ABOVE_SCALE, NTYPES };
static const char *const type_names[NTYPES] = {
    "threshold", "growth", "change", "outlier", "silence", "silence-never", "above-scale"};
static const char *const rule_suffix[NTYPES] = {"cod",    "growth", "drop", "energy",
                                                "report", "report", "scale"};

/* ---- deterministic randomness: a hash of (seed, what, firm, month, k) ---------- */

static uint64_t g_seed;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t what, uint64_t a, uint64_t b, uint64_t c)
{
    return mix(mix(mix(mix(g_seed ^ what) ^ a) ^ b) ^ c);
}

/* uniform in [0, 1) */
static double u01(uint64_t what, uint64_t a, uint64_t b, uint64_t c)
{
    return (double)(rnd(what, a, b, c) >> 11) / 9007199254740992.0;
}

static double normal(uint64_t what, uint64_t a, uint64_t b, uint64_t c)
{
    double u = u01(what, a, b, c * 2 + 1), v = u01(what, a, b, c * 2 + 2);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

enum {
    R_BASE = 1,
    R_GROWTH,
    R_CLGROWTH,
    R_MISS,
    R_NOISE,
    R_LATE,
    R_SILENT,
    R_NEVER,
    R_INACTIVE,
    R_HALVE,
    R_OUTLIER,
    R_BREACH,
    R_CROSS,
    R_RESTATE,
    R_COD,
    R_TIER,
    R_MARGIN,
    R_ENERGY,
    R_PICK,
};

/* ---- the world ---------------------------------------------------------------- */

typedef struct {
    char id[16];
    int cluster, chain, tier;
    bool inactive, never;
    int silent_from;  /* first month not reported, or -1 */
    uint64_t late;    /* bit p: month p is delivered with month p + 1 */
    uint64_t restate; /* bit p: month p's revenue is first off, corrected at p + 2 */
    double base, growth, energy_base;
    int halve;   /* month whose revenue halves, or -1 */
    int outlier; /* month whose energy is far off, or -1 */
    double outlier_factor;
    int breach, breach_len; /* first cod reading (month * 2 + k) of a breach, or -1 */
    bool cross;             /* planted to cross the above-scale line */
} firm_t;

typedef struct {
    char id[48];
    int city, nfirms, first; /* its firms are first, first + nclusters, ... */
    double growth;
    bool miss;       /* planted: misses its growth target */
    int for_samples; /* its threshold rule's */
} cluster_t;

typedef struct {
    uint64_t seed;
    int nfirms, year, nclusters;
    char ingest[512], alerts[512], control[512], state[512];
    firm_t *firms;
    cluster_t *clusters;
} world_t;

static int month_year(const world_t *w, int p)
{
    return w->year + p / 12;
}

/* Spring Festival (Chinese New Year) of each year: the month it falls in and
 * how it moves the first two months of the year. */
static int cny_month(int year)
{
    static const unsigned char jan[] = {/* 2015 .. 2035: 1 if it falls in January */
                                        0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1,
                                        0, 0, 1, 0, 0, 1, 0, 1, 0, 0};
    if (year < 2015 || year > 2035)
        return 2;
    return jan[year - 2015] ? 1 : 2;
}

static double season(int year, int month, bool energy)
{
    double s = 1.0 + 0.06 * sin(2 * M_PI * (month - 4) / 12.0) + (month == 12 ? 0.10 : 0);
    double deep = energy ? 0.85 : 0.72, near = energy ? 0.93 : 0.86;
    if (cny_month(year) == 1) {
        if (month == 1)
            s *= deep + 0.08;
        else if (month == 2)
            s *= near;
    } else {
        if (month == 1)
            s *= 0.96;
        else if (month == 2)
            s *= deep;
    }
    return s;
}

static void world_make(world_t *w)
{
    g_seed = mix(w->seed);
    int per_city =
        (w->nfirms + SIM_CITIES * SIM_CLUSTER_FIRMS - 1) / (SIM_CITIES * SIM_CLUSTER_FIRMS);
    if (per_city < 1)
        per_city = 1;
    w->nclusters = SIM_CITIES * per_city;
    w->clusters = calloc((size_t)w->nclusters, sizeof *w->clusters);
    w->firms = calloc((size_t)w->nfirms, sizeof *w->firms);
    if (!w->clusters || !w->firms)
        abort();
    int nmiss = 0;
    for (int c = 0; c < w->nclusters; c++) {
        cluster_t *cl = &w->clusters[c];
        cl->city = c / per_city;
        snprintf(cl->id, sizeof cl->id, "%s-%s", city_names[cl->city],
                 industry_names[(cl->city * 3 + c % per_city) % 8]);
        cl->miss = u01(R_MISS, (uint64_t)c, 0, 0) < 0.3 || (c == 1 && nmiss == 0);
        nmiss += cl->miss;
        cl->growth = cl->miss ? -0.04 + 0.07 * u01(R_CLGROWTH, (uint64_t)c, 0, 0)
                              : 0.14 + 0.08 * u01(R_CLGROWTH, (uint64_t)c, 0, 0);
        cl->for_samples = c % 2 ? 2 : 1;
        cl->first = c;
    }
    for (int i = 0; i < w->nfirms; i++) {
        firm_t *f = &w->firms[i];
        uint64_t fi = (uint64_t)i;
        snprintf(f->id, sizeof f->id, "f%05d", i + 1);
        f->cluster = i % w->nclusters;
        w->clusters[f->cluster].nfirms++;
        f->chain = (int)(rnd(R_PICK, fi, 1, 0) % 3) - 1; /* -1: on no chain */
        f->tier = (int)(rnd(R_TIER, fi, 0, 0) % 4);
        f->inactive = u01(R_INACTIVE, fi, 0, 0) < 0.003;
        f->never = !f->inactive && u01(R_NEVER, fi, 0, 0) < 0.003;
        f->silent_from = -1;
        if (!f->inactive && !f->never && u01(R_SILENT, fi, 0, 0) < 0.01)
            f->silent_from = 12 + (int)(rnd(R_SILENT, fi, 1, 0) % (SIM_MONTHS - 13));
        /* annual revenue: log-normal around 60 M yuan; a few planted near the
         * line, growing or shrinking across it */
        double annual = 6e7 * exp(1.1 * normal(R_BASE, fi, 0, 0));
        f->growth = w->clusters[f->cluster].growth + 0.04 * normal(R_GROWTH, fi, 0, 0);
        f->cross = u01(R_CROSS, fi, 0, 0) < 0.01;
        if (f->cross) {
            bool up = rnd(R_CROSS, fi, 1, 0) & 1;
            annual = SIM_LINE * (up ? 0.80 + 0.06 * u01(R_CROSS, fi, 2, 0)
                                    : 1.14 + 0.06 * u01(R_CROSS, fi, 2, 0));
            f->growth = up ? 0.30 : -0.25;
        }
        f->base = annual / 12.0;
        f->energy_base = f->base / 8000.0 * (0.5 + u01(R_ENERGY, fi, 0, 0));
        f->halve = u01(R_HALVE, fi, 0, 0) < 0.02 ? 1 + (int)(rnd(R_HALVE, fi, 1, 0) % 35) : -1;
        f->outlier = -1;
        if (u01(R_OUTLIER, fi, 0, 0) < 0.02) {
            f->outlier = 18 + (int)(rnd(R_OUTLIER, fi, 1, 0) % 17);
            f->outlier_factor = rnd(R_OUTLIER, fi, 2, 0) & 1 ? 3.0 : 0.3;
        }
        f->breach = -1;
        if (u01(R_BREACH, fi, 0, 0) < 0.03) {
            f->breach = (int)(rnd(R_BREACH, fi, 1, 0) % (SIM_MONTHS * SIM_READINGS - 4));
            f->breach_len = 1 + (int)(rnd(R_BREACH, fi, 2, 0) % 3);
        }
        int stop = f->silent_from >= 0 ? f->silent_from : SIM_MONTHS;
        for (int p = 1; p < stop - 1; p++) {
            /* late: never two months running, and never around a planted
             * halving or outlier (the rules judge a firm's latest month: a
             * month delivered with the next one is never the latest) */
            if ((f->late >> (p - 1)) & 1)
                continue;
            if ((f->halve >= 0 && abs(p - f->halve) <= 1) ||
                (f->outlier >= 0 && abs(p - f->outlier) <= 1))
                continue;
            if (u01(R_LATE, fi, (uint64_t)p, 0) < 0.01)
                f->late |= 1ull << p;
        }
        for (int p = 0; p < stop - 2; p++)
            if (u01(R_RESTATE, fi, (uint64_t)p, 0) < 0.01)
                f->restate |= 1ull << p;
    }
}

static void world_free(world_t *w)
{
    free(w->firms);
    free(w->clusters);
}

/* Whole yuan (exact in a double and in the daemon's thousandths). */
static double revenue_true(const world_t *w, const firm_t *f, int p)
{
    int fi = (int)(f - w->firms);
    double v = f->base * pow(1.0 + f->growth, p / 12.0) *
               season(month_year(w, p), p % 12 + 1, false) *
               (1.0 + 0.03 * normal(R_NOISE, (uint64_t)fi, (uint64_t)p, M_REVENUE));
    if (p == f->halve)
        v *= 0.40;
    return v < 1000 ? 1000 : round(v);
}

static double revenue_first(const world_t *w, const firm_t *f, int p)
{
    double v = revenue_true(w, f, p);
    if ((f->restate >> p) & 1) {
        int fi = (int)(f - w->firms);
        double e = 0.01 + 0.03 * u01(R_RESTATE, (uint64_t)fi, (uint64_t)p, 1);
        v = round(v * (rnd(R_RESTATE, (uint64_t)fi, (uint64_t)p, 2) & 1 ? 1 + e : 1 - e));
    }
    return v;
}

static double energy_value(const world_t *w, const firm_t *f, int p)
{
    int fi = (int)(f - w->firms);
    double v = f->energy_base * pow(1.0 + f->growth * 0.6, p / 12.0) *
               season(month_year(w, p), p % 12 + 1, true) *
               (1.0 + 0.02 * normal(R_NOISE, (uint64_t)fi, (uint64_t)p, M_ENERGY));
    if (p == f->outlier)
        v *= f->outlier_factor;
    return v < 1 ? 1 : round(v);
}

static double other_value(const world_t *w, const firm_t *f, int p, int metric)
{
    int fi = (int)(f - w->firms);
    static const double share[] = {1, 0.07, 0, 1.12, 0.05, 0.11, 0.25, 0.03};
    double r = revenue_true(w, f, p) * share[metric] *
               (1.0 + 0.05 * normal(R_MARGIN, (uint64_t)fi, (uint64_t)p, (uint64_t)metric));
    return round(r);
}

/* cod reading k (0 .. SIM_READINGS-1) of month p; one decimal */
static double cod_value(const firm_t *f, int fi, int p, int k)
{
    int r = p * SIM_READINGS + k;
    double v;
    if (f->breach >= 0 && r >= f->breach && r < f->breach + f->breach_len)
        v = 55 + 35 * u01(R_COD, (uint64_t)fi, (uint64_t)r, 1);
    else if (f->breach >= 0 && r == f->breach + f->breach_len && (f->breach & 1))
        v = 42 + 6 * u01(R_COD, (uint64_t)fi, (uint64_t)r, 2); /* hovers: stays firing */
    else
        v = 12 + 23 * u01(R_COD, (uint64_t)fi, (uint64_t)r, 0);
    return round(v * 10) / 10;
}

/* Unix ms of local (UTC+8, Asia/Shanghai: no DST since 1991) y-m-d h:00. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

static int64_t local_ms(int y, int m, int d, int h)
{
    return (days_from_civil(y, m, d) * 86400 + h * 3600 - 8 * 3600) * 1000;
}

static int64_t reading_ts(const world_t *w, int p, int k)
{
    return local_ms(month_year(w, p), p % 12 + 1, k ? 20 : 5, 10);
}

static void period_label(const world_t *w, int p, char *buf, size_t size)
{
    snprintf(buf, size, "%04d-%02d", month_year(w, p), p % 12 + 1);
}

/* ---- the answer key: expected firing events ------------------------------------ */

typedef struct {
    int type, cluster, firm; /* firm -1: the rule's scope */
    char label[40];
    bool planted;
} expect_t;

typedef struct {
    expect_t *v;
    size_t n, cap;
} expects_t;

static void expect_add(expects_t *e, int type, int cluster, int firm, const char *label,
                       bool planted)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        if (!e->v)
            abort();
    }
    expect_t *x = &e->v[e->n++];
    x->type = type;
    x->cluster = cluster;
    x->firm = firm;
    snprintf(x->label, sizeof x->label, "%s", label);
    x->planted = planted;
}

static void rule_id(const world_t *w, int type, int cluster, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%s", w->clusters[cluster].id, rule_suffix[type]);
}

static void alert_id(const world_t *w, const expect_t *x, char *buf, size_t size)
{
    char r[80];
    rule_id(w, x->type, x->cluster, r, sizeof r);
    snprintf(buf, size, "%s:%s", r,
             x->firm >= 0 ? w->firms[x->firm].id : w->clusters[x->cluster].id);
}

/* ---- the reference model: what the daemon holds and what each rule says ---------- */

typedef struct {
    int64_t rev[SIM_MONTHS], energy[SIM_MONTHS]; /* thousandths, as the daemon keeps them */
    uint64_t rev_mask, energy_mask;
    bool firing[NTYPES];
    uint32_t pending;
    int64_t pending_since;
} mfirm_t;

typedef struct {
    bool growth_firing, never_firing;
} mcluster_t;

typedef struct {
    const world_t *w;
    mfirm_t *f;
    mcluster_t *c;
    expects_t key;
} model_t;

static int64_t milli(double v)
{
    return (int64_t)llround(v * 1000.0);
}

static double units(int64_t m)
{
    return (double)m / 1000.0;
}

static int latest(uint64_t mask)
{
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

static void transition(model_t *m, bool *firing, bool active, int type, int cluster, int firm,
                       const char *label, bool planted)
{
    if (active && !*firing)
        expect_add(&m->key, type, cluster, firm, label, planted);
    *firing = active;
}

static void model_threshold(model_t *m, int fi, double v, int64_t ts)
{
    const world_t *w = m->w;
    mfirm_t *f = &m->f[fi];
    const firm_t *wf = &w->firms[fi];
    bool breach = v > SIM_COD_ABOVE, cleared = v <= SIM_COD_CLEAR;
    if (!f->firing[T_THRESHOLD]) {
        if (!breach) {
            f->pending = 0;
            return;
        }
        if (f->pending++ == 0)
            f->pending_since = ts;
        if (f->pending < (uint32_t)w->clusters[wf->cluster].for_samples)
            return;
        char label[40];
        snprintf(label, sizeof label, "%lld", (long long)f->pending_since);
        transition(m, &f->firing[T_THRESHOLD], true, T_THRESHOLD, wf->cluster, fi, label, true);
    } else if (cleared) {
        f->pending = 0;
        f->firing[T_THRESHOLD] = false;
    }
}

static void model_change(model_t *m, int fi)
{
    mfirm_t *f = &m->f[fi];
    const firm_t *wf = &m->w->firms[fi];
    int cur = latest(f->rev_mask);
    bool active = false;
    char label[40] = "";
    if (cur >= 1 && ((f->rev_mask >> (cur - 1)) & 1)) {
        double v = units(f->rev[cur]), pv = units(f->rev[cur - 1]);
        double pct = pv == 0 ? NAN : (v - pv) / fabs(pv) * 100.0;
        active = isfinite(pct) && pct <= -SIM_DROP;
        period_label(m->w, cur, label, sizeof label);
    }
    transition(m, &f->firing[T_CHANGE], active, T_CHANGE, wf->cluster, fi, label, cur == wf->halve);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void model_outlier(model_t *m, int fi)
{
    mfirm_t *f = &m->f[fi];
    const firm_t *wf = &m->w->firms[fi];
    int cur = latest(f->energy_mask);
    bool active = false;
    char label[40] = "";
    /* seasonal: each month over the same month of last year */
    if (cur >= 12 && ((f->energy_mask >> (cur - 12)) & 1) && f->energy[cur - 12] > 0) {
        double x = units(f->energy[cur]) / units(f->energy[cur - 12]);
        double hist[SIM_OUTLIER_WINDOW], d[SIM_OUTLIER_WINDOW];
        size_t n = 0;
        for (int i = cur - 1; i >= cur - SIM_OUTLIER_WINDOW && i >= 12; i--)
            if (((f->energy_mask >> i) & 1) && ((f->energy_mask >> (i - 12)) & 1) &&
                f->energy[i - 12] > 0)
                hist[n++] = units(f->energy[i]) / units(f->energy[i - 12]);
        if (n >= SIM_OUTLIER_MIN_HISTORY) {
            double sorted[SIM_OUTLIER_WINDOW];
            memcpy(sorted, hist, n * sizeof *hist);
            double med = median(sorted, n), mean_abs = 0;
            for (size_t i = 0; i < n; i++) {
                d[i] = fabs(hist[i] - med);
                mean_abs += d[i];
            }
            mean_abs /= (double)n;
            double mad = median(d, n);
            if (mad < fabs(med) * SIM_OUTLIER_MIN_SPREAD / 100.0)
                mad = fabs(med) * SIM_OUTLIER_MIN_SPREAD / 100.0;
            double scale = mad > 0 ? mad : mean_abs * (0.6745 / 0.7979);
            double z = scale > 0 ? 0.6745 * (x - med) / scale : x == med ? 0 : 1e9;
            active = fabs(z) > SIM_OUTLIER_K;
            period_label(m->w, cur, label, sizeof label);
        }
    }
    transition(m, &f->firing[T_OUTLIER], active, T_OUTLIER, wf->cluster, fi, label,
               cur == wf->outlier);
}

static void model_above_scale(model_t *m, int fi)
{
    mfirm_t *f = &m->f[fi];
    const firm_t *wf = &m->w->firms[fi];
    int year = -1;
    for (int y = SIM_MONTHS / 12 - 1; y >= 0 && year < 0; y--)
        if (((f->rev_mask >> (y * 12)) & 0xfff) == 0xfff)
            year = y;
    bool active = false;
    char label[40] = "";
    if (year >= 1 && ((f->rev_mask >> ((year - 1) * 12)) & 0xfff) == 0xfff) {
        int64_t cur = 0, prev = 0;
        for (int k = 0; k < 12; k++) {
            cur += f->rev[year * 12 + k];
            prev += f->rev[(year - 1) * 12 + k];
        }
        active = (units(cur) >= SIM_LINE) != (units(prev) >= SIM_LINE);
        snprintf(label, sizeof label, "%d", m->w->year + year);
    }
    transition(m, &f->firing[T_ABOVE_SCALE], active, T_ABOVE_SCALE, wf->cluster, fi, label,
               wf->cross);
}

/* The month due under clock = data: the latest month that at least half the
 * scope's active firms reported, among the months some firm reported last. */
static int model_due(const model_t *m, int c)
{
    const world_t *w = m->w;
    uint32_t members = 0, count[SIM_MONTHS] = {0};
    bool candidate[SIM_MONTHS] = {false};
    for (int i = c; i < w->nfirms; i += w->nclusters) {
        if (w->firms[i].inactive)
            continue;
        members++;
        uint64_t mask = m->f[i].rev_mask;
        if (mask)
            candidate[latest(mask)] = true;
        for (int p = 0; p < SIM_MONTHS; p++)
            count[p] += (mask >> p) & 1;
    }
    for (int p = SIM_MONTHS - 1; p >= 0; p--)
        if (candidate[p] && 2 * count[p] >= members)
            return p;
    return -1;
}

static void model_silence(model_t *m, int c)
{
    const world_t *w = m->w;
    int due = model_due(m, c);
    char label[40] = "";
    if (due >= 0)
        period_label(w, due, label, sizeof label);
    uint32_t never = 0;
    for (int i = c; i < w->nfirms; i += w->nclusters) {
        const firm_t *wf = &w->firms[i];
        mfirm_t *f = &m->f[i];
        if (wf->inactive) {
            f->firing[T_SILENCE] = false;
            continue;
        }
        uint64_t upto = due >= 0 ? f->rev_mask & ((2ull << due) - 1) : 0;
        bool in = due >= 0 && ((f->rev_mask >> due) & 1);
        if (due >= 0 && !upto)
            never++;
        bool active = due >= 0 && !in && upto;
        bool planted = (wf->silent_from >= 0 && due == wf->silent_from) ||
                       (due >= 0 && ((wf->late >> due) & 1));
        transition(m, &f->firing[T_SILENCE], active, T_SILENCE, c, i, label, planted);
    }
    transition(m, &m->c[c].never_firing, never > 0, T_NEVER, c, -1, label, true);
}

static void model_growth(model_t *m, int c)
{
    const world_t *w = m->w;
    int y = 2; /* the rule's year: the world's third */
    uint32_t members = 0, reported[13] = {0};
    for (int i = c; i < w->nfirms; i += w->nclusters) {
        if (w->firms[i].inactive)
            continue;
        members++;
        for (int k = 0; k < 12; k++)
            reported[k + 1] += (m->f[i].rev_mask >> (y * 12 + k)) & 1;
    }
    int months = 0;
    for (int k = 12; k >= 1 && !months; k--)
        if (reported[k] > 0 && 100.0 * reported[k] >= SIM_QUORUM * members)
            months = k;
    char label[40] = "";
    bool *firing = &m->c[c].growth_firing;
    if (!months) {
        *firing = false;
        return;
    }
    double ytd = 0, base = 0;
    for (int i = c; i < w->nfirms; i += w->nclusters) {
        if (w->firms[i].inactive)
            continue;
        const mfirm_t *f = &m->f[i];
        double both_cur = 0, both_prev = 0, this_cur = 0;
        int nboth = 0, nthis = 0;
        for (int k = 0; k < months; k++) {
            if (!((f->rev_mask >> (y * 12 + k)) & 1))
                continue;
            double v = units(f->rev[y * 12 + k]);
            this_cur += v;
            nthis++;
            if ((f->rev_mask >> ((y - 1) * 12 + k)) & 1) {
                both_cur += v;
                both_prev += units(f->rev[(y - 1) * 12 + k]);
                nboth++;
            }
        }
        if (nboth > 0) {
            ytd += both_cur;
            base += both_prev;
        } else if (nthis > 0 && ((f->rev_mask >> ((y - 1) * 12)) & 0xfff) == 0xfff) {
            int64_t annual = 0;
            for (int k = 0; k < 12; k++)
                annual += f->rev[(y - 1) * 12 + k];
            ytd += this_cur;
            base += units(annual) * nthis / 12.0;
        }
    }
    if (base <= 0)
        return; /* no base: the alert stays as it is */
    double g = (ytd / base - 1.0) * 100.0;
    snprintf(label, sizeof label, "%d-01..%d-%02d", w->year + y, w->year + y, months);
    transition(m, firing, isfinite(g) && g < SIM_TARGET - SIM_TOLERANCE, T_GROWTH, c, -1, label,
               w->clusters[c].miss);
}

/* ---- batches: one cluster's month ------------------------------------------------ */

typedef struct {
    proto_sample_t *s;
    uint32_t n, cap;
} samples_t;

static void sample_add(samples_t *b, const firm_t *f, int metric, double v, int64_t ts,
                       const world_t *w, int p)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8192;
        b->s = realloc(b->s, b->cap * sizeof *b->s);
        if (!b->s)
            abort();
    }
    proto_sample_t *s = &b->s[b->n++];
    s->firm = proto_str(f->id);
    s->metric = proto_str(metric_names[metric]);
    s->value = v;
    s->ts_ms = ts;
    s->period.kind = PROTO_PERIOD_NONE;
    if (p >= 0) {
        s->period.kind = PROTO_PERIOD_MONTH;
        s->period.year = (uint16_t)month_year(w, p);
        s->period.index = (uint8_t)(p % 12 + 1);
    }
}

static void add_month(samples_t *b, const world_t *w, const firm_t *f, int p, int64_t ts)
{
    sample_add(b, f, M_REVENUE, revenue_first(w, f, p), ts, w, p);
    sample_add(b, f, M_ENERGY, energy_value(w, f, p), ts, w, p);
    for (int metric = 0; metric < SIM_PERIOD_METRICS; metric++)
        if (metric != M_REVENUE && metric != M_ENERGY)
            sample_add(b, f, metric, other_value(w, f, p, metric), ts, w, p);
}

/* Builds cluster c's batch for month p into b and runs the model over it. */
static void batch_build(model_t *m, int c, int p, samples_t *b)
{
    const world_t *w = m->w;
    b->n = 0;
    int64_t ts = local_ms(month_year(w, p + 1), (p + 1) % 12 + 1, 8, 9); /* exported on the 8th */
    for (int i = c; i < w->nfirms; i += w->nclusters) {
        const firm_t *f = &w->firms[i];
        if (f->inactive || f->never || (f->silent_from >= 0 && p >= f->silent_from))
            continue;
        for (int k = 0; k < SIM_READINGS; k++) {
            sample_add(b, f, M_COD, cod_value(f, i, p, k), reading_ts(w, p, k), w, -1);
            sample_add(b, f, M_NH3N, 0.5 + 1.5 * u01(R_COD, (uint64_t)i, (uint64_t)p, 9 + k),
                       reading_ts(w, p, k) + 60000, w, -1);
        }
        if (p >= 1 && ((f->late >> (p - 1)) & 1))
            add_month(b, w, f, p - 1, ts);
        if (!((f->late >> p) & 1))
            add_month(b, w, f, p, ts);
        if (p >= 2 && ((f->restate >> (p - 2)) & 1) && !((f->late >> p) & 1))
            sample_add(b, f, M_REVENUE, revenue_true(w, f, p - 2), ts, w, p - 2);
    }
    /* the model: apply in order (readings run the threshold rule at once) */
    bool any_rev = false, touched_rev[SIM_CLUSTER_FIRMS] = {false},
         touched_en[SIM_CLUSTER_FIRMS] = {false};
    for (uint32_t k = 0; k < b->n; k++) {
        const proto_sample_t *s = &b->s[k];
        int fi = atoi(s->firm.ptr + 1) - 1, slot = fi / w->nclusters;
        mfirm_t *f = &m->f[fi];
        if (s->period.kind == PROTO_PERIOD_NONE) {
            if (s->metric.ptr == metric_names[M_COD])
                model_threshold(m, fi, s->value, s->ts_ms);
            continue;
        }
        int q = (s->period.year - w->year) * 12 + s->period.index - 1;
        if (s->metric.ptr == metric_names[M_REVENUE]) {
            f->rev[q] = milli(s->value);
            f->rev_mask |= 1ull << q;
            touched_rev[slot] = any_rev = true;
        } else if (s->metric.ptr == metric_names[M_ENERGY]) {
            f->energy[q] = milli(s->value);
            f->energy_mask |= 1ull << q;
            touched_en[slot] = true;
        }
    }
    for (int i = c, slot = 0; i < w->nfirms; i += w->nclusters, slot++) {
        if (touched_rev[slot]) {
            model_change(m, i);
            model_above_scale(m, i);
        }
        if (touched_en[slot])
            model_outlier(m, i);
    }
    if (any_rev) {
        model_silence(m, c);
        if (p >= 12)
            model_growth(m, c); /* revenue of the rule's year or the one before */
    }
}

/* ---- files -------------------------------------------------------------------------- */

static int write_config(const world_t *w, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/clustermond.conf", dir);
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o,
            "; generated by clustermon-sim world --seed %llu --firms %d --year %d\n"
            "[daemon]\ningest = %s\nalerts = %s\ncontrol = %s\nstate_dir = %s\n"
            "registry = registry.csv\ntimezone = Asia/Shanghai\nabove_scale_line = %.0f\n"
            "revenue_metric = revenue\nprofit_metric = profit\nlog_level = warn\n"
            "fsync = interval\nrate_per_connection = 0\nrate_global = 0\n"
            "alerts_hwm = 1000000\n\n",
            (unsigned long long)w->seed, w->nfirms, w->year, w->ingest, w->alerts, w->control,
            w->state, SIM_LINE);
    for (int k = 0; k < NMETRICS; k++)
        fprintf(o, "[metric %s]\nkind = %s\nunit = %s\n\n", metric_names[k],
                k >= M_COD ? "reading" : "period", metric_units[k]);
    for (int c = 0; c < w->nclusters; c++)
        fprintf(o, "[cluster %s]\ntitle = %s cluster %d\nchains = core, supply\n\n",
                w->clusters[c].id, w->clusters[c].id, c + 1);
    for (int c = 0; c < w->nclusters; c++) {
        const char *id = w->clusters[c].id;
        fprintf(o,
                "[rule %s-cod]\ntype = threshold\nmetric = cod\ncluster = %s\nabove = %g\n"
                "clear = %g\nfor_samples = %d\n\n",
                id, id, SIM_COD_ABOVE, SIM_COD_CLEAR, w->clusters[c].for_samples);
        fprintf(o,
                "[rule %s-growth]\ntype = growth\nmetric = revenue\ncluster = %s\nyear = %d\n"
                "target = %g\ntolerance = %g\nquorum = %g\nprorate = auto\nseverity = critical\n\n",
                id, id, w->year + 2, SIM_TARGET, SIM_TOLERANCE, SIM_QUORUM);
        fprintf(o,
                "[rule %s-drop]\ntype = change\nmetric = revenue\ncluster = %s\n"
                "compare = previous\ndrop = %g\n\n",
                id, id, SIM_DROP);
        fprintf(o,
                "[rule %s-energy]\ntype = outlier\nmetric = energy\ncluster = %s\nwindow = %d\n"
                "min_history = %d\nk = %g\nseasonal = yes\nmin_spread = %g\nseverity = info\n\n",
                id, id, SIM_OUTLIER_WINDOW, SIM_OUTLIER_MIN_HISTORY, SIM_OUTLIER_K,
                SIM_OUTLIER_MIN_SPREAD);
        fprintf(o,
                "[rule %s-report]\ntype = silence\nmetric = revenue\ncluster = %s\n"
                "schedule = monthly\nclock = data\ngrace = 0s\n\n",
                id, id);
        fprintf(o, "[rule %s-scale]\ntype = above-scale\ncluster = %s\nseverity = info\n\n", id,
                id);
    }
    fprintf(o, "[alerting]\nflap_max = 1000000\ngroup_max = 1000000\n");
    return fclose(o);
}

static int write_registry(const world_t *w, const char *dir)
{
    static const char *const tiers[] = {"leading", "backbone", "potential", "member"};
    char path[1024];
    snprintf(path, sizeof path, "%s/registry.csv", dir);
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "id,name,cluster,chain,tier,designations,status\n");
    for (int i = 0; i < w->nfirms; i++) {
        const firm_t *f = &w->firms[i];
        fprintf(o, "%s,\"Firm %d Co., Ltd.\",%s,%s,%s,%s,%s\n", f->id, i + 1,
                w->clusters[f->cluster].id,
                f->chain < 0 ? ""
                : f->chain   ? "supply"
                             : "core",
                tiers[f->tier], f->tier == 0 ? "provincial-tech-demo;high-tech" : "",
                f->inactive ? "inactive" : "active");
    }
    return fclose(o);
}

static int write_world_ini(const world_t *w, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/world.ini", dir);
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "seed = %llu\nfirms = %d\nyear = %d\ningest = %s\nalerts = %s\ncontrol = %s\n",
            (unsigned long long)w->seed, w->nfirms, w->year, w->ingest, w->alerts, w->control);
    return fclose(o);
}

static int read_world_ini(world_t *w, const char *dir)
{
    char path[1024], line[1200];
    snprintf(path, sizeof path, "%s/world.ini", dir);
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "clustermon-sim: %s: %s (run clustermon-sim world first)\n", path,
                strerror(errno));
        return -1;
    }
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        char key[32], val[500];
        if (sscanf(line, "%31s = %499s", key, val) != 2) {
            fprintf(stderr, "clustermon-sim: %s:%d: not key = value\n", path, lineno);
            rc = -1;
            break;
        }
        if (!strcmp(key, "seed"))
            w->seed = strtoull(val, NULL, 10);
        else if (!strcmp(key, "firms"))
            w->nfirms = atoi(val);
        else if (!strcmp(key, "year"))
            w->year = atoi(val);
        else if (!strcmp(key, "ingest"))
            snprintf(w->ingest, sizeof w->ingest, "%s", val);
        else if (!strcmp(key, "alerts"))
            snprintf(w->alerts, sizeof w->alerts, "%s", val);
        else if (!strcmp(key, "control"))
            snprintf(w->control, sizeof w->control, "%s", val);
        else {
            fprintf(stderr, "clustermon-sim: %s:%d: %s: unknown key\n", path, lineno, key);
            rc = -1;
            break;
        }
    }
    fclose(in);
    if (rc == 0 && (w->nfirms < 1 || w->year < 2015 || w->year > 2033)) {
        fprintf(stderr, "clustermon-sim: %s: firms or year out of range\n", path);
        rc = -1;
    }
    return rc;
}

static int write_key(const model_t *m, const char *dir)
{
    char path[1024], id[200], r[80];
    snprintf(path, sizeof path, "%s/key.csv", dir);
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "type,rule,alert_id,firm,period,cause\n");
    for (size_t k = 0; k < m->key.n; k++) {
        const expect_t *x = &m->key.v[k];
        rule_id(m->w, x->type, x->cluster, r, sizeof r);
        alert_id(m->w, x, id, sizeof id);
        fprintf(o, "%s,%s,%s,%s,%s,%s\n", type_names[x->type], r, id,
                x->firm >= 0 ? m->w->firms[x->firm].id : "", x->label,
                x->planted ? "planted" : "derived");
    }
    return fclose(o);
}

/* The anomalies planted, one a line, and how many of them the key holds. */
static int write_planted(const model_t *m, const char *dir, int *ret_planted, int *ret_in_key)
{
    const world_t *w = m->w;
    char path[1024];
    snprintf(path, sizeof path, "%s/planted.csv", dir);
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "kind,cluster,firm,period\n");
    int n = 0;
    char l[40];
    for (int c = 0; c < w->nclusters; c++)
        if (w->clusters[c].miss) {
            fprintf(o, "growth-miss,%s,,%d (%+.1f %%)\n", w->clusters[c].id, w->year + 2,
                    w->clusters[c].growth * 100);
            n++;
        }
    for (int i = 0; i < w->nfirms; i++) {
        const firm_t *f = &w->firms[i];
        const char *cl = w->clusters[f->cluster].id;
        int stop = f->silent_from >= 0 ? f->silent_from : SIM_MONTHS;
        if (f->halve >= 0 && f->halve < stop) {
            period_label(w, f->halve, l, sizeof l);
            fprintf(o, "halving,%s,%s,%s\n", cl, f->id, l), n++;
        }
        if (f->outlier >= 0 && f->outlier < stop) {
            period_label(w, f->outlier, l, sizeof l);
            fprintf(o, "energy-outlier-x%g,%s,%s,%s\n", f->outlier_factor, cl, f->id, l), n++;
        }
        if (f->breach >= 0 && f->breach / SIM_READINGS < stop) {
            period_label(w, f->breach / SIM_READINGS, l, sizeof l);
            fprintf(o, "cod-breach-%d,%s,%s,%s\n", f->breach_len, cl, f->id, l), n++;
        }
        if (f->cross)
            fprintf(o, "above-scale-%s,%s,%s,%d\n", f->growth > 0 ? "up" : "down", cl, f->id,
                    w->year + 1),
                n++;
        if (f->silent_from >= 0) {
            period_label(w, f->silent_from, l, sizeof l);
            fprintf(o, "silent-from,%s,%s,%s\n", cl, f->id, l), n++;
        }
        if (f->never)
            fprintf(o, "never-reports,%s,%s,\n", cl, f->id), n++;
        if (f->inactive)
            fprintf(o, "inactive,%s,%s,\n", cl, f->id);
        for (int p = 0; p < SIM_MONTHS; p++) {
            if ((f->late >> p) & 1) {
                period_label(w, p, l, sizeof l);
                fprintf(o, "late,%s,%s,%s\n", cl, f->id, l), n++;
            }
            if ((f->restate >> p) & 1) {
                period_label(w, p, l, sizeof l);
                fprintf(o, "restated,%s,%s,%s\n", cl, f->id, l);
            }
        }
    }
    int in_key = 0;
    for (size_t k = 0; k < m->key.n; k++)
        in_key += m->key.v[k].planted;
    *ret_planted = n;
    *ret_in_key = in_key;
    return fclose(o);
}

/* ---- the checker: a multiset of "alert_id|label" --------------------------------- */

typedef struct {
    char *key; /* NULL: empty slot */
    int type;
    int want, got;
    int firm, cluster;
    char label[40];
} slot_t;

typedef struct {
    slot_t *s;
    size_t cap, n;
} table_t;

static slot_t *table_get(table_t *t, const char *key, bool add)
{
    if (add && (t->n + 1) * 2 > t->cap) {
        table_t nt = {calloc(t->cap ? t->cap * 2 : 4096, sizeof(slot_t)),
                      t->cap ? t->cap * 2 : 4096, 0};
        if (!nt.s)
            abort();
        for (size_t i = 0; i < t->cap; i++)
            if (t->s[i].key) {
                size_t h = hash_fnv1a_str(t->s[i].key) & (nt.cap - 1);
                while (nt.s[h].key)
                    h = (h + 1) & (nt.cap - 1);
                nt.s[h] = t->s[i];
                nt.n++;
            }
        free(t->s);
        *t = nt;
    }
    if (!t->cap)
        return NULL;
    size_t h = hash_fnv1a_str(key) & (t->cap - 1);
    while (t->s[h].key) {
        if (!strcmp(t->s[h].key, key))
            return &t->s[h];
        h = (h + 1) & (t->cap - 1);
    }
    if (!add)
        return NULL;
    t->s[h].key = strdup(key);
    t->n++;
    return &t->s[h];
}

typedef struct {
    int want, published, matched;
} score_t;

typedef struct {
    const world_t *w;
    table_t t;
    score_t score[NTYPES];
    /* unmatched published alerts, for the report */
    char (*extra)[240];
    size_t nextra, cap_extra;
    uint64_t *last_seq; /* per cluster */
    uint64_t gaps, lost, revised, resolved, heartbeats, other;
    int64_t *hb_after; /* per cluster: a heartbeat seen after the final ack (ms), or 0 */
} checker_t;

static int cluster_index(const world_t *w, proto_str_t id)
{
    for (int c = 0; c < w->nclusters; c++)
        if (proto_str_eq(id, w->clusters[c].id))
            return c;
    return -1;
}

/* The rule type of a rule id ("<cluster>-<suffix>"), or -1. */
static int rule_type(const world_t *w, proto_str_t rule, proto_str_t firm, int *ret_cluster)
{
    for (int c = 0; c < w->nclusters; c++) {
        size_t n = strlen(w->clusters[c].id);
        if (rule.len <= n + 1 || memcmp(rule.ptr, w->clusters[c].id, n) || rule.ptr[n] != '-')
            continue;
        for (int t = 0; t < NTYPES; t++)
            if (rule.len - n - 1 == strlen(rule_suffix[t]) &&
                !memcmp(rule.ptr + n + 1, rule_suffix[t], rule.len - n - 1)) {
                *ret_cluster = c;
                if (t == T_SILENCE && firm.len == 0)
                    return T_NEVER;
                return t;
            }
    }
    return -1;
}

static const proto_detail_t *detail(const proto_alert_t *a, const char *key)
{
    for (uint32_t i = 0; i < a->ndetails; i++)
        if (proto_str_eq(a->details[i].key, key))
            return &a->details[i];
    return NULL;
}

static void label_of(const proto_alert_t *a, int type, char *buf, size_t size)
{
    const char *k = type == T_CHANGE || type == T_OUTLIER ? "period"
                    : type == T_ABOVE_SCALE               ? "year"
                    : type == T_GROWTH                    ? "months"
                                                          : "due_period";
    if (type == T_THRESHOLD) {
        snprintf(buf, size, "%lld", (long long)a->since_ms);
        return;
    }
    const proto_detail_t *d = detail(a, k);
    if (!d)
        snprintf(buf, size, "?");
    else if (d->is_str)
        snprintf(buf, size, "%.*s", PROTO_STR_ARG(d->str));
    else
        snprintf(buf, size, "%.0f", d->num);
}

static void checker_init(checker_t *ck, const model_t *m)
{
    memset(ck, 0, sizeof *ck);
    ck->w = m->w;
    ck->last_seq = calloc((size_t)m->w->nclusters, sizeof *ck->last_seq);
    ck->hb_after = calloc((size_t)m->w->nclusters, sizeof *ck->hb_after);
    if (!ck->last_seq || !ck->hb_after)
        abort();
}

static void checker_expect(checker_t *ck, const expect_t *x)
{
    char id[200], key[260];
    alert_id(ck->w, x, id, sizeof id);
    snprintf(key, sizeof key, "%s|%s", id, x->label);
    slot_t *s = table_get(&ck->t, key, true);
    s->type = x->type;
    s->firm = x->firm;
    s->cluster = x->cluster;
    snprintf(s->label, sizeof s->label, "%s", x->label);
    s->want++;
    ck->score[x->type].want++;
}

static void checker_alert(checker_t *ck, const proto_alert_t *a)
{
    int c = cluster_index(ck->w, a->cluster);
    if (c >= 0) {
        if (ck->last_seq[c] && a->seq != ck->last_seq[c] + 1) {
            ck->gaps++;
            ck->lost += a->seq > ck->last_seq[c] ? a->seq - ck->last_seq[c] - 1 : 0;
        }
        ck->last_seq[c] = a->seq;
    }
    if (a->state == PROTO_ALERT_REVISED) {
        ck->revised++;
        return;
    }
    if (a->state == PROTO_ALERT_RESOLVED) {
        ck->resolved++;
        return;
    }
    if (a->reminder)
        return;
    int rc = -1, type = rule_type(ck->w, a->rule, a->firm, &rc);
    char label[64], key[300];
    if (type < 0 || a->state != PROTO_ALERT_FIRING || a->count) {
        ck->other++; /* flapping, grouped, or a rule the world does not know */
        type = -1;
    } else {
        label_of(a, type, label, sizeof label);
        snprintf(key, sizeof key, "%.*s|%s", PROTO_STR_ARG(a->id), label);
        ck->score[type].published++;
        slot_t *s = table_get(&ck->t, key, false);
        if (s && s->got < s->want) {
            s->got++;
            ck->score[type].matched++;
            return;
        }
    }
    if (ck->nextra == ck->cap_extra) {
        ck->cap_extra = ck->cap_extra ? ck->cap_extra * 2 : 64;
        ck->extra = realloc(ck->extra, ck->cap_extra * sizeof *ck->extra);
        if (!ck->extra)
            abort();
    }
    snprintf(ck->extra[ck->nextra++], sizeof *ck->extra, "%-13s %.*s %s (%s: %.*s)",
             type >= 0 ? type_names[type] : "?", PROTO_STR_ARG(a->id), type >= 0 ? label : "",
             proto_alert_state_name((proto_alert_state_t)a->state), PROTO_STR_ARG(a->summary));
}

static void checker_free(checker_t *ck)
{
    for (size_t i = 0; i < ck->t.cap; i++)
        free(ck->t.s[i].key);
    free(ck->t.s);
    free(ck->extra);
    free(ck->last_seq);
    free(ck->hb_after);
}

/* ---- feeding: per-stream queues of encoded batches --------------------------------- */

typedef struct {
    uint64_t seq;
    void *buf;
    size_t len;
    bool settled;
} qbatch_t;

typedef struct {
    qbatch_t *q;
    size_t head, n, cap; /* a ring */
    uint64_t next_seq;
    int failed;
    char agent[64];
    uint64_t epoch;
    delivery_t *d;
} stream_t;

static qbatch_t *qat(stream_t *s, size_t i)
{
    return &s->q[(s->head + i) % s->cap];
}

static bool src_next(void *arg, bool first, uint64_t after, uint64_t *ret_seq)
{
    stream_t *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        qbatch_t *b = qat(s, i);
        if (!b->settled && (first || b->seq > after)) {
            *ret_seq = b->seq;
            return true;
        }
    }
    return false;
}

static int src_load(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    stream_t *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        qbatch_t *b = qat(s, i);
        if (b->seq == seq) {
            *ret_msg = malloc(b->len);
            if (!*ret_msg)
                abort();
            memcpy(*ret_msg, b->buf, b->len);
            *ret_len = b->len;
            return 0;
        }
    }
    return DELIVERY_LOST;
}

static int src_settled(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten, bool lost)
{
    stream_t *s = arg;
    (void)forgotten;
    if (ack->status != PROTO_STATUS_OK || lost) {
        fprintf(stderr, "clustermon-sim: %s: batch %llu refused: %s: %.*s\n", s->agent,
                (unsigned long long)seq, proto_status_name((proto_status_t)ack->status),
                PROTO_STR_ARG(ack->reason));
        s->failed = 1;
        return DELIVERY_FAILED;
    }
    for (size_t i = 0; i < s->n; i++)
        if (qat(s, i)->seq == seq)
            qat(s, i)->settled = true;
    while (s->n && qat(s, 0)->settled) {
        free(qat(s, 0)->buf);
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
    return 0;
}

static void stream_push(stream_t *s, void *buf, size_t len)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        qbatch_t *nq = calloc(ncap, sizeof *nq);
        if (!nq)
            abort();
        for (size_t i = 0; i < s->n; i++)
            nq[i] = *qat(s, i);
        free(s->q);
        s->q = nq;
        s->cap = ncap;
        s->head = 0;
    }
    *qat(s, s->n) = (qbatch_t){++s->next_seq, buf, len, false};
    s->n++;
}

/* Drains the SUB socket; returns how many messages it read. */
static int drain_alerts(void *sub, checker_t *ck, int64_t final_ack_ms)
{
    int got = 0;
    for (;;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        if (zmq_msg_recv(&topic, sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            return got;
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&topic);
        if (!more || zmq_msg_recv(&body, sub, 0) < 0) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            continue;
        }
        got++;
        const char *t = zmq_msg_data(&topic);
        size_t tl = zmq_msg_size(&topic);
        char err[PROTO_ERRLEN];
        if (tl > 10 && !memcmp(t + tl - 10, ".heartbeat", 10)) {
            proto_heartbeat_t hb;
            if (proto_heartbeat_decode(zmq_msg_data(&body), zmq_msg_size(&body), &hb, err,
                                       sizeof err) == PROTO_OK) {
                int c = cluster_index(ck->w, hb.cluster);
                ck->heartbeats++;
                if (c >= 0 && final_ack_ms && hb.ts_ms > final_ack_ms && !ck->hb_after[c]) {
                    ck->hb_after[c] = hb.ts_ms;
                    if (hb.seq > ck->last_seq[c])
                        ck->lost += hb.seq - ck->last_seq[c], ck->gaps++;
                }
            }
        } else {
            proto_alert_t *a = malloc(sizeof *a);
            if (!a)
                abort();
            if (proto_alert_decode(zmq_msg_data(&body), zmq_msg_size(&body), a, err, sizeof err) ==
                PROTO_OK)
                checker_alert(ck, a);
            else
                fprintf(stderr, "clustermon-sim: undecodable alert: %s\n", err);
            free(a);
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
}

/* ---- options ----------------------------------------------------------------------- */

static void usage(FILE *o)
{
    fprintf(o,
            "usage: clustermon-sim world [--seed N] [--firms N] [--year Y] [--ingest E] "
            "[--alerts E]\n"
            "                            [--control E] [--state DIR] DIR\n"
            "       clustermon-sim run [--streams N] [--window N] [--rate SAMPLES/S] "
            "[--json FILE]\n"
            "                          [--show N] [-v] DIR\n"
            "\n"
            "world  writes DIR/world.ini, DIR/clustermond.conf, DIR/registry.csv, DIR/key.csv\n"
            "       (the alerts the daemon must publish) and DIR/planted.csv. Defaults: seed 1,\n"
            "       20000 firms, years 2022..2024, ipc:// endpoints and the state in DIR.\n"
            "run    feeds DIR's world to the daemon started on DIR/clustermond.conf (a fresh\n"
            "       state dir) through N agent streams (default 4, window 8, rate 0 = flat out),\n"
            "       checks the published alerts against the key and prints recall and\n"
            "       precision per rule type and the first --show (10) misses and false alarms.\n"
            "       Exit 0: recall 100 %% and precision >= 99 %% for every rule type; 1: not;\n"
            "       2: usage or files; 3: delivery failed.\n");
}

typedef struct {
    const char *dir, *json;
    int streams, window, show;
    double rate;
    bool verbose;
} run_opts_t;

static bool parse_int(const char *s, long lo, long hi, long *ret)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *ret = v;
    return true;
}

/* Generates the whole world through the model (no daemon): the key. */
static void model_run(model_t *m, samples_t *b)
{
    for (int p = 0; p < SIM_MONTHS; p++)
        for (int c = 0; c < m->w->nclusters; c++)
            batch_build(m, c, p, b);
}

static int model_open(model_t *m, const world_t *w)
{
    memset(m, 0, sizeof *m);
    m->w = w;
    m->f = calloc((size_t)w->nfirms, sizeof *m->f);
    m->c = calloc((size_t)w->nclusters, sizeof *m->c);
    return m->f && m->c ? 0 : -1;
}

static void model_close(model_t *m)
{
    free(m->f);
    free(m->c);
    free(m->key.v);
}

static int cmd_world(int argc, char **argv)
{
    world_t w = {.seed = 1, .nfirms = 20000, .year = 2022};
    const char *ingest = NULL, *alerts = NULL, *control = NULL, *state = NULL;
    static const struct option lo[] = {
        {"seed", 1, 0, 's'},   {"firms", 1, 0, 'f'},  {"year", 1, 0, 'y'},
        {"ingest", 1, 0, 'i'}, {"alerts", 1, 0, 'a'}, {"control", 1, 0, 'c'},
        {"state", 1, 0, 'S'},  {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': w.seed = strtoull(optarg, NULL, 10); break;
        case 'f':
            if (!parse_int(optarg, 1, 1000000, &v))
                return fprintf(stderr, "clustermon-sim: --firms: 1..1000000\n"), 2;
            w.nfirms = (int)v;
            break;
        case 'y':
            if (!parse_int(optarg, 2015, 2033, &v))
                return fprintf(stderr, "clustermon-sim: --year: 2015..2033\n"), 2;
            w.year = (int)v;
            break;
        case 'i': ingest = optarg; break;
        case 'a': alerts = optarg; break;
        case 'c': control = optarg; break;
        case 'S': state = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[optind];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "clustermon-sim: %s: %s\n", dir, strerror(errno)), 2;
    char abs[512];
    if (!realpath(dir, abs))
        return fprintf(stderr, "clustermon-sim: %s: %s\n", dir, strerror(errno)), 2;
    snprintf(w.ingest, sizeof w.ingest, "%s", ingest ? ingest : "");
    snprintf(w.alerts, sizeof w.alerts, "%s", alerts ? alerts : "");
    snprintf(w.control, sizeof w.control, "%s", control ? control : "");
    if (!ingest)
        snprintf(w.ingest, sizeof w.ingest, "ipc://%.400s/ingest.ipc", abs);
    if (!alerts)
        snprintf(w.alerts, sizeof w.alerts, "ipc://%.400s/alerts.ipc", abs);
    if (!control)
        snprintf(w.control, sizeof w.control, "ipc://%.400s/control.ipc", abs);
    snprintf(w.state, sizeof w.state, "%s", state ? state : "state");
    world_make(&w);
    model_t m;
    samples_t b = {0};
    if (model_open(&m, &w) != 0)
        abort();
    model_run(&m, &b);
    int planted = 0, in_key = 0, rc = 0;
    if (write_world_ini(&w, dir) || write_config(&w, dir) || write_registry(&w, dir) ||
        write_key(&m, dir) || write_planted(&m, dir, &planted, &in_key)) {
        fprintf(stderr, "clustermon-sim: writing %s: %s\n", dir, strerror(errno));
        rc = 2;
    } else {
        int count[NTYPES] = {0};
        for (size_t k = 0; k < m.key.n; k++)
            count[m.key.v[k].type]++;
        printf("world: seed %llu, %d firms in %d clusters of %d cities, %d rules, %d-%d\n",
               (unsigned long long)w.seed, w.nfirms, w.nclusters, SIM_CITIES, w.nclusters * 6,
               w.year, w.year + 2);
        printf("key: %zu alerts (", m.key.n);
        for (int t = 0; t < NTYPES; t++)
            printf("%s%s %d", t ? ", " : "", type_names[t], count[t]);
        printf("); %d planted anomalies, %d key entries from them\n", planted, in_key);
    }
    free(b.s);
    model_close(&m);
    world_free(&w);
    return rc;
}

static void print_score(FILE *o, const char *name, const score_t *s)
{
    double recall = s->want ? 100.0 * s->matched / s->want : 100.0;
    double precision = s->published ? 100.0 * s->matched / s->published : 100.0;
    fprintf(o, "%-14s %9d %9d %9d %8.2f%% %9.2f%%\n", name, s->want, s->published, s->matched,
            recall, precision);
}

static bool score_ok(const score_t *s)
{
    return s->matched == s->want &&
           (s->published == 0 || 100.0 * s->matched >= 99.0 * s->published);
}

static int cmd_run(int argc, char **argv)
{
    run_opts_t o = {.streams = 4, .window = 8, .show = 10};
    static const struct option lo[] = {
        {"streams", 1, 0, 'n'}, {"window", 1, 0, 'w'},  {"rate", 1, 0, 'r'}, {"json", 1, 0, 'j'},
        {"show", 1, 0, 'S'},    {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_int(optarg, 1, 64, &v))
                return fprintf(stderr, "clustermon-sim: --streams: 1..64\n"), 2;
            o.streams = (int)v;
            break;
        case 'w':
            if (!parse_int(optarg, 1, PROTO_MAX_WINDOW, &v))
                return fprintf(stderr, "clustermon-sim: --window: 1..%d\n", PROTO_MAX_WINDOW), 2;
            o.window = (int)v;
            break;
        case 'r': {
            char *end;
            o.rate = strtod(optarg, &end);
            if (end == optarg || *end || !(o.rate >= 0))
                return fprintf(stderr, "clustermon-sim: --rate: samples/s, >= 0\n"), 2;
            break;
        }
        case 'j': o.json = optarg; break;
        case 'S':
            if (!parse_int(optarg, 0, 100000, &v))
                return fprintf(stderr, "clustermon-sim: --show: 0..100000\n"), 2;
            o.show = (int)v;
            break;
        case 'v': o.verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    o.dir = argv[optind];
    world_t w = {0};
    if (read_world_ini(&w, o.dir) != 0)
        return 2;
    world_make(&w);
    model_t m;
    if (model_open(&m, &w) != 0)
        abort();
    checker_t ck;
    checker_init(&ck, &m);

    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "alert.", 6);
    if (zmq_connect(sub, w.alerts) != 0) {
        fprintf(stderr, "clustermon-sim: %s: %s\n", w.alerts, zmq_strerror(errno));
        return 2;
    }
    /* a heartbeat proves the subscription is in place before any alert can be */
    int64_t t0 = clock_monotonic_ms();
    while (!ck.heartbeats && clock_monotonic_ms() - t0 < 10000) {
        zmq_pollitem_t pi = {sub, 0, ZMQ_POLLIN, 0};
        zmq_poll(&pi, 1, 100);
        drain_alerts(sub, &ck, 0);
    }
    if (!ck.heartbeats) {
        fprintf(stderr,
                "clustermon-sim: no heartbeat from %s within 10 s: is clustermond "
                "running on %s/clustermond.conf?\n",
                w.alerts, o.dir);
        return 3;
    }

    stream_t *st = calloc((size_t)o.streams, sizeof *st);
    char endpoint[600];
    snprintf(endpoint, sizeof endpoint, "%s", w.ingest);
    char *endpoints[1] = {endpoint};
    uint64_t epoch = ((uint64_t)clock_wall_ms() << 16) ^ (uint64_t)getpid();
    int status = 0;
    for (int i = 0; i < o.streams && !status; i++) {
        stream_t *s = &st[i];
        s->epoch = epoch + (uint64_t)i;
        snprintf(s->agent, sizeof s->agent, "sim-%llx-%d", (unsigned long long)(epoch & 0xffffffff),
                 i + 1);
        delivery_opts_t dopts = {.endpoints = endpoints,
                                 .nendpoints = 1,
                                 .key = NULL,
                                 .agent_id = s->agent,
                                 .epoch = s->epoch,
                                 .timeout_ms = 30000,
                                 .retries = 5,
                                 .window = o.window,
                                 .verbose = o.verbose,
                                 .prog = "clustermon-sim"};
        clientkey_t nokey;
        memset(&nokey, 0, sizeof nokey);
        dopts.key = &nokey;
        delivery_source_t src = {
            .next = src_next, .load = src_load, .settled = src_settled, .arg = s};
        status = delivery_open(ctx, &dopts, &src, &s->d);
    }
    samples_t b = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int p = 0, cl = 0;
    size_t kseen = 0;
    uint64_t samples = 0, batches = 0;
    int64_t start = clock_monotonic_ms(), final_ack = 0;
    for (;;) {
        /* generate while the stream of the next cluster has room and the rate allows */
        while (!status && p < SIM_MONTHS) {
            stream_t *s = &st[cl % o.streams];
            if (s->n >= (size_t)o.window * 2)
                break;
            if (o.rate > 0 &&
                (double)samples > o.rate * (double)(clock_monotonic_ms() - start) / 1000.0)
                break;
            batch_build(&m, cl, p, &b);
            for (; kseen < m.key.n; kseen++)
                checker_expect(&ck, &m.key.v[kseen]);
            if (b.n) {
                proto_batch_t pb = {.agent = proto_str(s->agent),
                                    .epoch = s->epoch,
                                    .seq = s->next_seq + 1,
                                    .nsamples = b.n,
                                    .samples = b.s,
                                    .cap = b.n};
                char err[PROTO_ERRLEN];
                msgpack_sbuffer_clear(&sb);
                if (proto_batch_encode(&pb, &sb, err, sizeof err) != PROTO_OK) {
                    fprintf(stderr, "clustermon-sim: encoding %s month %d: %s\n", w.clusters[cl].id,
                            p, err);
                    status = 2;
                    break;
                }
                void *copy = malloc(sb.size);
                if (!copy)
                    abort();
                memcpy(copy, sb.data, sb.size);
                stream_push(s, copy, sb.size);
                samples += b.n;
                batches++;
            }
            if (++cl == w.nclusters) {
                cl = 0;
                p++;
            }
        }
        bool busy = false;
        for (int i = 0; i < o.streams && !status; i++) {
            if (st[i].n == 0)
                continue;
            busy = true;
            int rc = delivery_step(st[i].d, 0);
            if (rc != 0) {
                fprintf(stderr, "clustermon-sim: stream %s stopped (status %d)\n", st[i].agent, rc);
                status = 3;
            }
        }
        zmq_pollitem_t pi = {sub, 0, ZMQ_POLLIN, 0};
        if (status)
            break;
        if (!busy && p >= SIM_MONTHS) {
            if (!final_ack)
                final_ack = clock_wall_ms();
            bool all = true;
            for (int k = 0; k < w.nclusters; k++)
                all = all && ck.hb_after[k];
            if (all || clock_wall_ms() - final_ack > 10000)
                break;
            zmq_poll(&pi, 1, 100);
        } else {
            zmq_poll(&pi, 1, 1);
        }
        drain_alerts(sub, &ck, final_ack);
    }
    double secs = (double)(clock_monotonic_ms() - start) / 1000.0;
    drain_alerts(sub, &ck, final_ack);
    for (int i = 0; i < o.streams; i++) {
        delivery_close(&st[i].d);
        while (st[i].n) {
            free(qat(&st[i], 0)->buf);
            st[i].head = (st[i].head + 1) % st[i].cap;
            st[i].n--;
        }
        free(st[i].q);
    }
    free(st);

    /* the report */
    score_t all = {0};
    bool ok = status == 0;
    printf("clustermon-sim: seed %llu, %d firms, %d clusters, %d rules; %llu samples in %llu "
           "batches over %d streams (window %d) in %.1f s: %.0f samples/s\n",
           (unsigned long long)w.seed, w.nfirms, w.nclusters, w.nclusters * 6,
           (unsigned long long)samples, (unsigned long long)batches, o.streams, o.window, secs,
           secs > 0 ? (double)samples / secs : 0.0);
    printf("%-14s %9s %9s %9s %9s %10s\n", "rule type", "expected", "published", "matched",
           "recall", "precision");
    for (int t = 0; t < NTYPES; t++) {
        print_score(stdout, type_names[t], &ck.score[t]);
        all.want += ck.score[t].want;
        all.published += ck.score[t].published;
        all.matched += ck.score[t].matched;
        ok = ok && score_ok(&ck.score[t]);
    }
    print_score(stdout, "all", &all);
    printf("also published: %llu resolved, %llu revised, %llu other; alerts lost (seq gaps): "
           "%llu\n",
           (unsigned long long)ck.resolved, (unsigned long long)ck.revised,
           (unsigned long long)ck.other, (unsigned long long)ck.lost);
    ok = ok && ck.lost == 0 && ck.other == 0;
    int shown = 0;
    for (size_t i = 0; i < ck.t.cap; i++) {
        slot_t *s = &ck.t.s[i];
        if (!s->key || s->got >= s->want)
            continue;
        if (shown++ < o.show)
            printf("miss:        %-13s %s (%s, expected %d, published %d)\n", type_names[s->type],
                   s->key, s->firm >= 0 ? w.firms[s->firm].id : w.clusters[s->cluster].id, s->want,
                   s->got);
    }
    if (shown > o.show)
        printf("miss:        ... %d more\n", shown - o.show);
    for (size_t i = 0; i < ck.nextra && (int)i < o.show; i++)
        printf("false alarm: %s\n", ck.extra[i]);
    if ((int)ck.nextra > o.show)
        printf("false alarm: ... %zu more\n", ck.nextra - (size_t)o.show);
    if (o.json) {
        FILE *j = fopen(o.json, "w");
        if (!j) {
            fprintf(stderr, "clustermon-sim: %s: %s\n", o.json, strerror(errno));
            status = 2;
        } else {
            fprintf(j,
                    "{\"seed\": %llu, \"firms\": %d, \"clusters\": %d, \"rules\": %d, "
                    "\"samples\": %llu, \"batches\": %llu, \"streams\": %d, \"window\": %d, "
                    "\"seconds\": %.3f, \"samples_per_s\": %.0f, \"lost\": %llu, \"ok\": %s, "
                    "\"types\": {",
                    (unsigned long long)w.seed, w.nfirms, w.nclusters, w.nclusters * 6,
                    (unsigned long long)samples, (unsigned long long)batches, o.streams, o.window,
                    secs, secs > 0 ? (double)samples / secs : 0.0, (unsigned long long)ck.lost,
                    ok ? "true" : "false");
            for (int t = 0; t <= NTYPES; t++) {
                const score_t *s = t < NTYPES ? &ck.score[t] : &all;
                fprintf(j,
                        "%s\"%s\": {\"expected\": %d, \"published\": %d, \"matched\": %d, "
                        "\"recall\": %.4f, \"precision\": %.4f}",
                        t ? ", " : "", t < NTYPES ? type_names[t] : "all", s->want, s->published,
                        s->matched, s->want ? 100.0 * s->matched / s->want : 100.0,
                        s->published ? 100.0 * s->matched / s->published : 100.0);
            }
            fprintf(j, "}}\n");
            fclose(j);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    free(b.s);
    checker_free(&ck);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    model_close(&m);
    world_free(&w);
    if (status)
        return status;
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "world"))
        return cmd_world(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
