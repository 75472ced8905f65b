/* rules.c -- see rules.h; the arithmetic itself is in rulemath.c. */
#include "daemon/rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/rulemath.h"
#include "daemon/xalloc.h"

/* ---- small helpers ------------------------------------------------------------ */

static double units(int64_t milli)
{
    return (double)milli / 1000.0;
}

/* "6.84 bn", "448.0 M", "12,345": amounts people read at a glance. */
static const char *fmt_amount(double v, char *buf, size_t size)
{
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(buf, size, "%.2f bn", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, size, "%.1f M", v / 1e6);
    else
        snprintf(buf, size, "%.6g", v);
    return buf;
}

static bool month_value(const agg_t *agg, int firm, int metric, int year, int month, double *ret)
{
    int64_t v;
    proto_period_t p = {
        .year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)month};
    if (year < PROTO_MIN_YEAR || year > PROTO_MAX_YEAR || !agg_firm_total(agg, firm, metric, p, &v))
        return false;
    *ret = units(v);
    return true;
}

/* Month index: year * 12 + month - 1, so consecutive months differ by 1. */
static int mi(int year, int month)
{
    return year * 12 + month - 1;
}

/* The latest month the firm reported for metric (month-level figures). */
static bool latest_month(const agg_t *agg, int firm, int metric, int *ret_index)
{
    const agg_series_t *s = agg_series(agg, firm, metric);
    for (uint32_t y = s->nyears; y-- > 0;) {
        uint16_t mask = s->years[y].month_mask;
        for (int m = 12; m >= 1; m--)
            if (mask & (1u << (m - 1))) {
                *ret_index = mi(s->years[y].year, m);
                return true;
            }
    }
    return false;
}

/* Did the firm report anything for (year, month)? metric -1 = any metric. */
static bool reported_month(const rules_t *rs, int firm, int metric, int index)
{
    int year = index / 12, month = index % 12 + 1;
    size_t lo = metric >= 0 ? (size_t)metric : 0;
    size_t hi = metric >= 0 ? (size_t)metric + 1 : rs->cfg->nmetrics;
    for (size_t m = lo; m < hi; m++) {
        const agg_year_t *yr = agg_series_year(agg_series(rs->agg, firm, (int)m), year);
        if (yr && ((yr->month_mask & (1u << (month - 1))) || yr->has_annual ||
                   (yr->quarter_mask & (1u << ((month - 1) / 3)))))
            return true;
    }
    return false;
}

/* The latest reported month (any metric if -1) at or before index, or -1. */
static int last_reported_before(const rules_t *rs, int firm, int metric, int index)
{
    for (int i = index; i >= mi(PROTO_MIN_YEAR, 1) && i > index - 12 * 30; i--)
        if (reported_month(rs, firm, metric, i))
            return i;
    return -1;
}

/* The latest month the firm reported anything for (any metric), or -1.
 * last_reported_before() looks back at most 30 years, so start it from the
 * firm's latest year, not from PROTO_MAX_YEAR. */
static int latest_reported(const rules_t *rs, int firm)
{
    int year = -1;
    for (size_t m = 0; m < rs->cfg->nmetrics; m++) {
        const agg_series_t *s = agg_series(rs->agg, firm, (int)m);
        if (s->nyears && s->years[s->nyears - 1].year > year)
            year = s->years[s->nyears - 1].year; /* years are sorted */
    }
    return year < 0 ? -1 : last_reported_before(rs, firm, -1, mi(year, 12));
}

/* "2021-07", written out by hand: rules name periods on every evaluation.
 * buf holds at least 8 bytes; years are 4 digits (PROTO_MIN_YEAR..MAX). */
static const char *period_str(int index, char *buf, size_t size)
{
    int y = index / 12, m = index % 12 + 1;
    if (size < 8 || y < 1000 || y > 9999) {
        snprintf(buf, size, "%04d-%02d", y, m);
        return buf;
    }
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + m / 10);
    buf[6] = (char)('0' + m % 10);
    buf[7] = '\0';
    return buf;
}

bool rules_in_scope(const config_rule_t *r, const firm_t *f)
{
    return f->cluster == r->cluster && (r->chain < 0 || f->chain == r->chain) &&
           (r->tier < 0 || (int)f->tier == r->tier) &&
           (!r->city || (f->city_id && strcmp(f->city_id, r->city) == 0));
}

static const char *scope_name(const rules_t *rs, const config_rule_t *r, char *buf, size_t size)
{
    const config_cluster_t *cl = &rs->cfg->clusters[r->cluster];
    snprintf(buf, size, "%s%s%s%s%s%s%s", cl->id, r->chain >= 0 ? "/" : "",
             r->chain >= 0 ? cl->chains[r->chain] : "", r->tier >= 0 ? " tier " : "",
             r->tier >= 0 ? registry_tier_name((tier_t)r->tier) : "", r->city ? " city " : "",
             r->city ? r->city : "");
    return buf;
}

/* ---- set-up -------------------------------------------------------------------- */

static void growth_state_free(rules_growth_state_t *st);
static void growth_touch(rules_t *rs, int rule, int firm);

void rules_init(rules_t *rs, const config_t *cfg, const registry_t *reg, const agg_t *agg,
                calendar_t *cal, alertbook_t *book)
{
    memset(rs, 0, sizeof *rs);
    rs->cfg = cfg;
    rs->reg = reg;
    rs->agg = agg;
    rs->cal = cal;
    rs->book = book;
    rs->dirty = xcalloc(cfg->nrules * (reg->nfirms + 1), 1);
    rs->never_next = xmalloc((cfg->nrules ? cfg->nrules : 1) * sizeof *rs->never_next);
    rs->growth = xcalloc(cfg->nrules ? cfg->nrules : 1, sizeof *rs->growth);
    for (size_t i = 0; i < cfg->nrules; i++)
        rs->never_next[i] = INT64_MAX;
}

void rules_free(rules_t *rs)
{
    for (size_t i = 0; rs->growth && i < rs->cfg->nrules; i++)
        growth_state_free(&rs->growth[i]);
    free(rs->growth);
    rs->growth = NULL;
    free(rs->dirty);
    free(rs->dirty_list);
    free(rs->never_next);
    rs->never_next = NULL;
    free(rs->drag);
    rs->drag = NULL;
    rs->drag_cap = 0;
    rs->dirty = NULL;
    rs->dirty_list = NULL;
}

static void mark(rules_t *rs, size_t rule, int firm)
{
    size_t cell = rule * (rs->reg->nfirms + 1) + (size_t)(firm + 1);
    if (rs->dirty[cell])
        return;
    rs->dirty[cell] = 1;
    xgrow(&rs->dirty_list, &rs->dirty_cap, rs->ndirty + 1, sizeof *rs->dirty_list);
    rs->dirty_list[rs->ndirty++] = (uint32_t)cell;
}

/* ---- threshold ------------------------------------------------------------------ */

static void eval_threshold(rules_t *rs, int rule, int firm, double v, int64_t ts, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const config_metric_t *m = &rs->cfg->metrics[r->metric];
    const firm_t *f = &rs->reg->firms[firm];
    ab_alert_t *a = alertbook_get(rs->book, rule, firm, true);
    bool breach = r->has_above ? v > r->above : v < r->below;
    bool cleared = r->has_above ? v <= r->clear : v >= r->clear;
    double limit = r->has_above ? r->above : r->below;
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.ts_ms = ts;
    ev.observed = v;
    rs->evaluations++;
    if (!a->firing) {
        if (!breach) {
            a->pending_count = 0;
            return;
        }
        if (a->pending_count++ == 0)
            a->pending_since = ts;
        if (a->pending_count < r->for_samples || ts - a->pending_since < r->for_ms)
            return; /* pending: breaching, not yet long enough */
        ev.active = true;
        ev.ts_ms = a->pending_since;
    } else {
        ev.active = !cleared;
        if (cleared)
            a->pending_count = 0;
    }
    ev.expected = ev.active ? limit : r->clear;
    ab_eval_num(&ev, "value", v);
    ab_eval_num(&ev, "limit", limit);
    ab_eval_num(&ev, "clear", r->clear);
    ab_eval_num(&ev, "for_samples", r->for_samples);
    ab_eval_num(&ev, "breaching_samples", a->pending_count);
    if (!alertbook_wants_summary(rs->book, rule, firm, &ev))
        ; /* the text is made only where it is kept */
    else if (ev.active)
        snprintf(ev.summary, sizeof ev.summary, "%s %g %s at %s (%s) is %s the limit %g %s%s",
                 m->name, v, m->unit, f->id, f->name, r->has_above ? "above" : "below", limit,
                 m->unit, r->for_samples > 1 ? " (consecutive samples)" : "");
    else
        snprintf(ev.summary, sizeof ev.summary, "%s %g %s at %s (%s) is back %s %g %s", m->name, v,
                 m->unit, f->id, f->name, r->has_above ? "at or below" : "at or above", r->clear,
                 m->unit);
    alertbook_eval(rs->book, rule, firm, &ev, now);
}

void rules_on_reading(rules_t *rs, int firm, int metric, double value, int64_t ts_ms,
                      int64_t now_ms)
{
    const firm_t *f = &rs->reg->firms[firm];
    for (size_t i = 0; i < rs->cfg->nrules; i++) {
        const config_rule_t *r = &rs->cfg->rules[i];
        if (!rules_in_scope(r, f))
            continue;
        if (r->type == RULE_THRESHOLD && r->metric == metric)
            eval_threshold(rs, (int)i, firm, value, ts_ms, now_ms);
        else if (r->type == RULE_SILENCE && (r->metric < 0 || r->metric == metric))
            mark(rs, i, r->data_clock ? -1 : firm);
    }
}

/*
 * A change or outlier rule judges the firm's latest month against months at
 * most `reach` before it (the previous month or the same month last year; the
 * outlier's window, a year further back for year-on-year ratios), month
 * figures only. Called after the figure was applied, so a month that became
 * the latest is the latest here; any other month outside that reach leaves
 * the evaluation's inputs as they were, and its result with them (a late or
 * restated figure for an old month: most of a backfill).
 */
static bool in_latest_window(const rules_t *rs, const config_rule_t *r, int firm, proto_period_t p)
{
    if (p.kind != PROTO_PERIOD_MONTH)
        return false;
    int cur;
    if (!latest_month(rs->agg, firm, r->metric, &cur))
        return false;
    int reach = r->type == RULE_CHANGE ? (r->vs_last_year ? 12 : 1)
                                       : (int)r->window + (r->outlier_seasonal ? 12 : 0);
    return mi(p.year, p.index) >= cur - reach;
}

void rules_on_period(rules_t *rs, int firm, int metric, proto_period_t p)
{
    const firm_t *f = &rs->reg->firms[firm];
    for (size_t i = 0; i < rs->cfg->nrules; i++) {
        const config_rule_t *r = &rs->cfg->rules[i];
        if (!rules_in_scope(r, f))
            continue;
        switch (r->type) {
        case RULE_GROWTH:
            /* year = current: which year is current is the evaluation's business */
            if (r->metric == metric && (!r->year || p.year == r->year || p.year == r->year - 1)) {
                mark(rs, i, -1);
                growth_touch(rs, (int)i, firm);
            }
            break;
        case RULE_CHANGE:
        case RULE_OUTLIER:
            if (r->metric == metric && in_latest_window(rs, r, firm, p))
                mark(rs, i, firm);
            break;
        case RULE_ABOVE_SCALE:
            if (r->metric == metric)
                mark(rs, i, firm);
            break;
        case RULE_SILENCE:
            if (r->metric < 0 || r->metric == metric)
                mark(rs, i, r->data_clock ? -1 : firm); /* data clock: peers move "now" */
            break;
        default: break;
        }
    }
}

/* ---- growth ---------------------------------------------------------------------- */

static int local_year(int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_year + 1900;
}

int rules_growth_year(const config_rule_t *r, int64_t now_ms)
{
    return r->year ? r->year : local_year(now_ms);
}

/* Last year complete: an annual report, 4 quarters or 12 months. */
static bool year_complete(const agg_t *agg, int firm, int metric, int year)
{
    const agg_year_t *y = agg_series_year(agg_series(agg, firm, metric), year);
    return y && (y->has_annual || y->month_mask == 0xfff || y->quarter_mask == 0xf);
}

/* A firm's part in a growth rule's figure: its like-for-like months of year
 * y against y - 1 (rulemath_growth_part) and last year's total. */
typedef struct rules_growth_firm {
    growth_part_t part;
    double annual; /* last year's total, when has_annual */
    bool has_annual;
} growth_firm_t;

static void growth_firm(const agg_t *agg, const config_rule_t *r, int f, int y, int months,
                        growth_firm_t *ret)
{
    double cur[12], prev[12];
    unsigned cm = 0, pm = 0;
    for (int m = 1; m <= months; m++) {
        if (month_value(agg, f, r->metric, y, m, &cur[m - 1]))
            cm |= 1u << (m - 1);
        if (month_value(agg, f, r->metric, y - 1, m, &prev[m - 1]))
            pm |= 1u << (m - 1);
    }
    int64_t annual = 0;
    proto_period_t py = {.year = (uint16_t)(y - 1), .kind = PROTO_PERIOD_YEAR};
    ret->has_annual = y - 1 >= PROTO_MIN_YEAR && agg_firm_total(agg, f, r->metric, py, &annual);
    ret->annual = units(annual);
    rulemath_growth_part(cur, cm, prev, pm, ret->annual,
                         ret->has_annual && year_complete(agg, f, r->metric, y - 1), months,
                         r->prorate, &ret->part);
}

/* Adds a firm's part to the scope's figure (firms in registry order, so the
 * sums come out the same however the parts were arrived at). */
static void growth_add(rules_growth_t *ret, const growth_firm_t *gf, int f, rules_drag_t *drag,
                       size_t *ret_ndrag)
{
    if (!gf->part.used)
        return;
    ret->ytd += gf->part.ytd;
    ret->base += gf->part.base;
    ret->ly_annual += gf->has_annual ? gf->annual : 0;
    if (gf->part.seasonal)
        ret->seasonal_firms++;
    else
        ret->linear_firms++;
    ret->compared++;
    if (drag)
        drag[(*ret_ndrag)++] = (rules_drag_t){f, gf->part.ytd - gf->part.base};
}

/* Months in: the latest month that enough of the scope's active firms
 * reported. One early firm's month is not the scope's month: until the
 * quorum has it, it counts for nobody (a late reporter is not a collapse,
 * nor is an early one a verdict). */
static int growth_months(const config_rule_t *r, const uint32_t reported[13], uint32_t members,
                         int through)
{
    for (int m = through; m >= 1; m--)
        if (reported[m] > 0 && 100.0 * reported[m] >= r->quorum_pct * members)
            return m;
    return 0;
}

void rules_growth_figure(const config_t *cfg, const registry_t *reg, const agg_t *agg, int rule,
                         int year, int through, int64_t now_ms, rules_growth_t *ret,
                         rules_drag_t *drag, size_t *ret_ndrag)
{
    const config_rule_t *r = &cfg->rules[rule];
    int y = year ? year : rules_growth_year(r, now_ms);
    memset(ret, 0, sizeof *ret);
    ret->year = y;
    if (ret_ndrag)
        *ret_ndrag = 0;
    if (through > 12)
        through = 12;
    uint32_t reported[13] = {0};
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *firm = &reg->firms[f];
        if (!rules_in_scope(r, firm) || firm->inactive)
            continue;
        ret->members++;
        for (int m = 1; m <= through; m++) {
            double v;
            reported[m] += month_value(agg, (int)f, r->metric, y, m, &v);
        }
    }
    ret->months = growth_months(r, reported, ret->members, through);
    if (!ret->months)
        return;
    ret->reporting = reported[ret->months];
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *firm = &reg->firms[f];
        if (!rules_in_scope(r, firm) || firm->inactive)
            continue;
        growth_firm_t gf;
        growth_firm(agg, r, (int)f, y, ret->months, &gf);
        growth_add(ret, &gf, (int)f, drag, ret_ndrag);
    }
    rulemath_growth(ret->ytd, ret->base, ret->ly_annual, r->target_pct, &ret->g);
}

/*
 * The rule engine's own figure, kept between evaluations: each in-scope
 * firm's month mask and part are recomputed only for the firms a batch
 * touched (rules_on_period), all of them when the months in or the year
 * move. The sums are then added again over the kept parts in registry order
 * -- the very additions rules_growth_figure makes, so the two agree to the
 * last bit (a running sum moved by deltas would drift from it, and a
 * restart's fresh figure would then differ from the live one).
 */
static uint32_t months_of(const agg_t *agg, int f, int metric, int y)
{
    if (y < PROTO_MIN_YEAR || y > PROTO_MAX_YEAR)
        return 0;
    const agg_year_t *yr = agg_series_year(agg_series(agg, f, metric), y);
    return yr ? yr->month_mask : 0;
}

static void growth_state_free(rules_growth_state_t *st)
{
    free(st->firms);
    free(st->slot);
    free(st->mask);
    free(st->parts);
    free(st->touched);
    free(st->touched_list);
    memset(st, 0, sizeof *st);
}

static void growth_state_rebuild(rules_t *rs, int rule, int y)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    rules_growth_state_t *st = &rs->growth[rule];
    size_t n = rs->reg->nfirms ? rs->reg->nfirms : 1;
    if (!st->slot) {
        st->slot = xmalloc(n * sizeof *st->slot);
        st->firms = xmalloc(n * sizeof *st->firms);
        st->mask = xmalloc(n * sizeof *st->mask);
        st->parts = xmalloc(n * sizeof *st->parts);
        st->touched = xmalloc(n * sizeof *st->touched);
        st->touched_list = xmalloc(n * sizeof *st->touched_list);
    }
    st->nfirms = 0;
    memset(st->reported, 0, sizeof st->reported);
    for (size_t f = 0; f < rs->reg->nfirms; f++) {
        const firm_t *firm = &rs->reg->firms[f];
        st->slot[f] = -1;
        if (!rules_in_scope(r, firm) || firm->inactive)
            continue;
        uint32_t i = st->nfirms++;
        st->slot[f] = (int32_t)i;
        st->firms[i] = (uint32_t)f;
        st->mask[i] = months_of(rs->agg, (int)f, r->metric, y);
        st->touched[i] = 0;
        for (int m = 1; m <= 12; m++)
            st->reported[m] += (st->mask[i] >> (m - 1)) & 1;
    }
    st->ntouched = 0;
    st->year = y;
    st->months = growth_months(r, st->reported, st->nfirms, 12);
    for (uint32_t i = 0; i < st->nfirms && st->months; i++)
        growth_firm(rs->agg, r, (int)st->firms[i], y, st->months, &st->parts[i]);
    st->valid = true;
}

static void growth_touch(rules_t *rs, int rule, int firm)
{
    rules_growth_state_t *st = &rs->growth[rule];
    if (!st->valid || st->slot[firm] < 0 || st->touched[st->slot[firm]])
        return; /* not kept yet (built whole at the next evaluation), or not counted */
    st->touched[st->slot[firm]] = 1;
    st->touched_list[st->ntouched++] = (uint32_t)st->slot[firm];
}

/* Brings the kept state up to date for an evaluation at now. */
static void growth_state_update(rules_t *rs, int rule, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    rules_growth_state_t *st = &rs->growth[rule];
    int y = rules_growth_year(r, now);
    if (!st->valid || st->year != y) {
        growth_state_rebuild(rs, rule, y);
        return;
    }
    for (uint32_t k = 0; k < st->ntouched; k++) {
        uint32_t i = st->touched_list[k];
        uint32_t was = st->mask[i], now_mask = months_of(rs->agg, (int)st->firms[i], r->metric, y);
        for (int m = 1; m <= 12; m++)
            st->reported[m] += ((now_mask >> (m - 1)) & 1) - ((was >> (m - 1)) & 1);
        st->mask[i] = (uint16_t)now_mask;
    }
    int months = growth_months(r, st->reported, st->nfirms, 12);
    if (months != st->months) {
        st->months = months;
        for (uint32_t i = 0; i < st->nfirms && months; i++)
            growth_firm(rs->agg, r, (int)st->firms[i], y, months, &st->parts[i]);
    } else if (months) {
        for (uint32_t k = 0; k < st->ntouched; k++) {
            uint32_t i = st->touched_list[k];
            growth_firm(rs->agg, r, (int)st->firms[i], y, months, &st->parts[i]);
        }
    }
    for (uint32_t k = 0; k < st->ntouched; k++)
        st->touched[st->touched_list[k]] = 0;
    st->ntouched = 0;
}

/* rules_growth_figure(year 0, through 12) from the kept state. */
static void growth_state_figure(rules_t *rs, int rule, int64_t now, rules_growth_t *ret,
                                rules_drag_t *drag, size_t *ret_ndrag)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    growth_state_update(rs, rule, now);
    const rules_growth_state_t *st = &rs->growth[rule];
    memset(ret, 0, sizeof *ret);
    *ret_ndrag = 0;
    ret->year = st->year;
    ret->members = st->nfirms;
    ret->months = st->months;
    if (!ret->months)
        return;
    ret->reporting = st->reported[ret->months];
    for (uint32_t i = 0; i < st->nfirms; i++)
        growth_add(ret, &st->parts[i], (int)st->firms[i], drag, ret_ndrag);
    rulemath_growth(ret->ytd, ret->base, ret->ly_annual, r->target_pct, &ret->g);
}

static int drag_cmp(const void *a, const void *b)
{
    const rules_drag_t *x = a, *y = b;
    return x->delta < y->delta ? -1 : x->delta > y->delta ? 1 : x->firm - y->firm;
}

/* "seasonal", "linear" or "seasonal for 27 firms, linear for 2": how the
 * base was drawn up, so the figure says what it measures. */
static const char *prorate_str(const rules_growth_t *gf, char *buf, size_t size)
{
    if (!gf->linear_firms)
        snprintf(buf, size, "seasonal");
    else if (!gf->seasonal_firms)
        snprintf(buf, size, "linear");
    else
        snprintf(buf, size, "seasonal for %u firms, linear for %u", gf->seasonal_firms,
                 gf->linear_firms);
    return buf;
}

static void eval_growth(rules_t *rs, int rule, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const registry_t *reg = rs->reg;
    char scope[200], a2[32], a3[32], how[64];
    scope_name(rs, r, scope, sizeof scope);
    rs->evaluations++;
    const char *mname = rs->cfg->metrics[r->metric].name;

    /* the drag list's room is kept from one evaluation to the next */
    xgrow(&rs->drag, &rs->drag_cap, reg->nfirms ? reg->nfirms : 1, sizeof *rs->drag);
    rules_drag_t *drag = rs->drag;
    size_t ndrag = 0;
    rules_growth_t gf;
    growth_state_figure(rs, rule, now, &gf, drag, &ndrag);
    int y = gf.year;
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    if (gf.months == 0) {
        /* nothing to compare yet (or a new year under year = current): resolves, if firing */
        snprintf(ev.summary, sizeof ev.summary,
                 "%s %s %d: no month has reached the quorum yet "
                 "(%g %% of %u firms); nothing to compare",
                 scope, mname, y, r->quorum_pct, gf.members);
        ab_eval_num(&ev, "year", y);
        ab_eval_num(&ev, "quorum_pct", r->quorum_pct);
        alertbook_eval(rs->book, rule, -1, &ev, now);
        return;
    }
    if (gf.base <= 0) {
        return; /* no base to compare with: leave the alert as it is */
    }
    const growth_t *g = &gf.g;
    int months = gf.months;
    qsort(drag, ndrag, sizeof *drag, drag_cmp);
    char drags[400];
    size_t off = 0;
    drags[0] = '\0';
    for (size_t i = 0; i < ndrag && i < 3 && drag[i].delta < 0 && off < sizeof drags; i++) {
        char a1[32];
        off +=
            (size_t)snprintf(drags + off, sizeof drags - off, "%s%s %s (%+.2f pp)", i ? ", " : "",
                             reg->firms[drag[i].firm].id, fmt_amount(drag[i].delta, a1, sizeof a1),
                             100.0 * drag[i].delta / gf.base);
    }

    prorate_str(&gf, how, sizeof how);
    ev.active = isfinite(g->growth_pct) && g->growth_pct < r->target_pct - r->tolerance_pp;
    ev.observed = isfinite(g->growth_pct) ? g->growth_pct : 0;
    ev.expected = r->target_pct;
    snprintf(ev.summary, sizeof ev.summary,
             "%s %s %d-01..%02d like for like (%u of %u firms, %s): %+.1f%% year on year vs "
             "target %+.1f%% (gap %+.1f pp; %u of %u firms reported %d-%02d); year-end run-rate "
             "%s vs target %s%s%s",
             scope, mname, y, months, gf.compared, gf.members, how, g->growth_pct, r->target_pct,
             g->gap_pp, gf.reporting, gf.members, y, months,
             fmt_amount(g->projection, a2, sizeof a2), fmt_amount(g->target_annual, a3, sizeof a3),
             *drags ? "; drag: " : "", drags);
    ab_eval_num(&ev, "growth_pct", g->growth_pct);
    ab_eval_num(&ev, "target_pct", r->target_pct);
    ab_eval_num(&ev, "tolerance_pp", r->tolerance_pp);
    ab_eval_num(&ev, "gap_pp", g->gap_pp);
    ab_eval_num(&ev, "ytd", gf.ytd);
    ab_eval_num(&ev, "base", g->base);
    if (!gf.linear_firms)
        ab_eval_num(&ev, "last_year_same_months", g->base);
    ab_eval_num(&ev, "last_year_annual", gf.ly_annual);
    ab_eval_num(&ev, "expected_ytd", g->expected_ytd);
    ab_eval_cstr(&ev, "prorate", how);
    ab_eval_str(&ev, "months", "%d-01..%d-%02d", y, y, months);
    ab_eval_num(&ev, "projection", g->projection);
    ab_eval_num(&ev, "target_annual", g->target_annual);
    ab_eval_num(&ev, "projection_gap", g->projection_gap);
    ab_eval_str(&ev, "coverage", "%u of %u firms", gf.reporting, gf.members);
    ab_eval_num(&ev, "firms_compared", gf.compared);
    ab_eval_num(&ev, "quorum_pct", r->quorum_pct);
    if (*drags)
        ab_eval_cstr(&ev, "drag", drags);
    /* a scope rule keeps its entry on target too: its figures are listed
     * (clustermonctl cluster) whether it fires or not */
    alertbook_get(rs->book, rule, -1, true);
    alertbook_eval(rs->book, rule, -1, &ev, now);
}

/* ---- change ------------------------------------------------------------------------ */

static void eval_change(rules_t *rs, int rule, int firm, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const firm_t *f = &rs->reg->firms[firm];
    const config_metric_t *m = &rs->cfg->metrics[r->metric];
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    rs->evaluations++;
    int cur;
    double v, pv;
    char p1[16], p2[16], a1[32], a2[32];
    if (!latest_month(rs->agg, firm, r->metric, &cur)) {
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    int prev = r->vs_last_year ? cur - 12 : cur - 1;
    if (!month_value(rs->agg, firm, r->metric, cur / 12, cur % 12 + 1, &v) ||
        !month_value(rs->agg, firm, r->metric, prev / 12, prev % 12 + 1, &pv)) {
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    double pct = rulemath_change_pct(v, pv);
    ev.active = isfinite(pct) && ((r->drop_pct > 0 && pct <= -r->drop_pct) ||
                                  (r->rise_pct > 0 && pct >= r->rise_pct));
    ev.observed = isfinite(pct) ? pct : 0;
    ev.expected = pct < 0 ? -r->drop_pct : r->rise_pct;
    period_str(cur, p1, sizeof p1);
    period_str(prev, p2, sizeof p2);
    ab_eval_cstr(&ev, "period", p1);
    ab_eval_num(&ev, "value", v);
    ab_eval_cstr(&ev, "compared_period", p2);
    ab_eval_num(&ev, "compared_value", pv);
    ab_eval_num(&ev, "change_pct", pct);
    ab_eval_num(&ev, "drop_pct", r->drop_pct);
    ab_eval_num(&ev, "rise_pct", r->rise_pct);
    if (alertbook_wants_summary(rs->book, rule, firm, &ev))
        snprintf(ev.summary, sizeof ev.summary,
                 "%s %s of %s (%s): %s in %s vs %s in %s (%+.1f%%%s)", m->name,
                 r->vs_last_year ? "year on year" : "month on month", f->id, f->name,
                 fmt_amount(v, a1, sizeof a1), p1, fmt_amount(pv, a2, sizeof a2), p2, pct,
                 ev.active ? ", beyond the limit" : "");
    alertbook_eval(rs->book, rule, firm, &ev, now);
}

/* ---- outlier ------------------------------------------------------------------------ */

static void eval_outlier(rules_t *rs, int rule, int firm, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const firm_t *f = &rs->reg->firms[firm];
    const config_metric_t *m = &rs->cfg->metrics[r->metric];
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    rs->evaluations++;
    int cur;
    double x, hist[128];
    size_t n = 0;
    char p1[16], a1[32];
    if (!latest_month(rs->agg, firm, r->metric, &cur) ||
        !month_value(rs->agg, firm, r->metric, cur / 12, cur % 12 + 1, &x)) {
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    double value = x, base = 0;
    if (r->outlier_seasonal) {
        /* judge year-on-year ratios: a steady seasonal pattern has steady ratios */
        if (!month_value(rs->agg, firm, r->metric, (cur - 12) / 12, (cur - 12) % 12 + 1, &base) ||
            base <= 0) {
            alertbook_eval(rs->book, rule, firm, &ev, now);
            return;
        }
        x = value / base;
    }
    for (int i = cur - 1; i >= cur - (int)r->window && n < 128; i--) {
        double v, b;
        if (!month_value(rs->agg, firm, r->metric, i / 12, i % 12 + 1, &v))
            continue;
        if (r->outlier_seasonal) {
            if (!month_value(rs->agg, firm, r->metric, (i - 12) / 12, (i - 12) % 12 + 1, &b) ||
                b <= 0)
                continue;
            v /= b;
        }
        hist[n++] = v;
    }
    if (n < r->min_history) {
        alertbook_eval(rs->book, rule, firm, &ev, now); /* too little history to judge */
        return;
    }
    double med, mad;
    double z = rulemath_robust_z(hist, n, x, r->min_spread_pct, &med, &mad);
    ev.active = fabs(z) > r->k;
    ev.observed = z;
    ev.expected = r->k;
    period_str(cur, p1, sizeof p1);
    ab_eval_cstr(&ev, "period", p1);
    ab_eval_num(&ev, "value", value);
    if (r->outlier_seasonal) {
        ab_eval_num(&ev, "last_year_value", base);
        ab_eval_num(&ev, "ratio", x);
    }
    ab_eval_num(&ev, "median", med);
    ab_eval_num(&ev, "mad", mad);
    ab_eval_num(&ev, "z", z);
    ab_eval_num(&ev, "k", r->k);
    ab_eval_num(&ev, "min_spread_pct", r->min_spread_pct);
    ab_eval_num(&ev, "history", (double)n);
    if (alertbook_wants_summary(rs->book, rule, firm, &ev))
        snprintf(ev.summary, sizeof ev.summary,
                 "%s of %s (%s) in %s: %s is %s its own history (robust z %+.1f, limit %.1f; %s)",
                 m->name, f->id, f->name, p1, fmt_amount(value, a1, sizeof a1),
                 ev.active ? "far from" : "in line with", z, r->k,
                 r->outlier_seasonal ? "year-on-year ratios" : "values");
    alertbook_eval(rs->book, rule, firm, &ev, now);
}

/* ---- silence ------------------------------------------------------------------------- */

/* The month whose report is due now. wall: by due_day of the next month;
 * data: the latest month at least half the scope's active firms reported. */
static int due_month(rules_t *rs, const config_rule_t *r, int64_t now)
{
    if (!r->data_clock) {
        time_t t = (time_t)(now / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        int cur = mi(tm.tm_year + 1900, tm.tm_mon + 1);
        return tm.tm_mday > r->due_day ? cur - 1 : cur - 2;
    }
    int best = -1;
    uint32_t members = 0;
    for (size_t f = 0; f < rs->reg->nfirms; f++)
        members += rules_in_scope(r, &rs->reg->firms[f]) && !rs->reg->firms[f].inactive;
    /* candidate months: each firm's latest; take the latest reached by half */
    for (size_t f = 0; f < rs->reg->nfirms; f++) {
        const firm_t *firm = &rs->reg->firms[f];
        int last;
        if (!rules_in_scope(r, firm) || firm->inactive)
            continue;
        if (r->metric >= 0 ? !latest_month(rs->agg, (int)f, r->metric, &last)
                           : (last = latest_reported(rs, (int)f)) < 0)
            continue;
        if (last <= best)
            continue;
        uint32_t n = 0;
        for (size_t g = 0; g < rs->reg->nfirms; g++)
            if (rules_in_scope(r, &rs->reg->firms[g]) && !rs->reg->firms[g].inactive &&
                reported_month(rs, (int)g, r->metric, last))
                n++;
        if (2 * n >= members)
            best = last;
    }
    return best;
}

static void eval_silence_firm(rules_t *rs, int rule, int firm, int due, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const firm_t *f = &rs->reg->firms[firm];
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    rs->evaluations++;
    if (f->inactive) {
        alertbook_eval(rs->book, rule, firm, &ev, now); /* inactive: never expected */
        return;
    }
    char p1[16], p2[16], when[40];
    if (r->continuous) {
        /* the silence grows with every tick: that is not a new basis */
        ev.revisable = false;
        const agg_series_t *s = agg_series(rs->agg, firm, r->metric);
        if (!s->count) {
            alertbook_eval(rs->book, rule, firm, &ev, now); /* never: the scope's summary */
            return;
        }
        int64_t quiet_for = s->count ? now - s->last_ts : -1;
        ev.active = s->count == 0 || quiet_for > r->quiet_ms;
        ev.observed = s->count ? (double)quiet_for / 1000.0 : 0;
        ev.expected = (double)r->quiet_ms / 1000.0;
        if (s->count) {
            time_t t = (time_t)(s->last_ts / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        ab_eval_cstr(&ev, "last_seen", s->count ? when : "never");
        ab_eval_num(&ev, "quiet_s", ev.expected);
        if (!alertbook_wants_summary(rs->book, rule, firm, &ev))
            ; /* the text is made only where it is kept */
        else if (ev.active)
            snprintf(ev.summary, sizeof ev.summary, "%s (%s) has sent no %s %s", f->id, f->name,
                     rs->cfg->metrics[r->metric].name,
                     s->count ? "for longer than allowed" : "at all");
        else
            snprintf(ev.summary, sizeof ev.summary, "%s (%s) sends %s again", f->id, f->name,
                     rs->cfg->metrics[r->metric].name);
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    if (due < 0) {
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    bool in = reported_month(rs, firm, r->metric, due);
    int last = in ? due : last_reported_before(rs, firm, r->metric, due - 1);
    if (!in && last < 0) {
        alertbook_eval(rs->book, rule, firm, &ev, now); /* never: the scope's summary */
        return;
    }
    const char *state = in                ? "reported"
                        : last < 0        ? "never reported"
                        : last == due - 1 ? "late"
                                          : "silent";
    ev.active = !in;
    ev.observed = last < 0 ? 0 : (double)(due - last);
    ev.expected = 0;
    period_str(due, p1, sizeof p1);
    if (last >= 0)
        period_str(last, p2, sizeof p2);
    ab_eval_cstr(&ev, "state", state);
    ab_eval_cstr(&ev, "due_period", p1);
    ab_eval_cstr(&ev, "last_period", last >= 0 ? p2 : "none");
    ab_eval_cstr(&ev, "clock", r->data_clock ? "data" : "wall");
    if (!r->data_clock)
        ab_eval_num(&ev, "due_day", r->due_day);
    if (!alertbook_wants_summary(rs->book, rule, firm, &ev))
        ; /* the text is made only where it is kept */
    else if (!in && last < 0)
        snprintf(ev.summary, sizeof ev.summary, "%s (%s) has never reported; %s was due", f->id,
                 f->name, p1);
    else if (!in)
        snprintf(ev.summary, sizeof ev.summary,
                 "%s (%s) is %s: the %s report is missing, the last "
                 "one is for %s",
                 f->id, f->name, state, p1, p2);
    else
        snprintf(ev.summary, sizeof ev.summary, "%s (%s) reported for %s", f->id, f->name, p1);
    alertbook_eval(rs->book, rule, firm, &ev, now);
}

/*
 * When a firm that has never reported starts to be expected: grace after the
 * daemon first saw it in its registry, or by default when its first report
 * falls due by the schedule -- the report for the month it was first seen
 * in, due by due_day of the next month (the wall calendar, whatever the
 * rule's clock); for continuous rules, quiet after it was first seen.
 * A firm first seen at 0 (unknown) is expected at once.
 */
static int64_t never_expected_from(const config_rule_t *r, const firm_t *f)
{
    if (f->first_seen_ms <= 0)
        return 0;
    if (r->grace_ms >= 0)
        return f->first_seen_ms + r->grace_ms;
    if (r->continuous)
        return f->first_seen_ms + r->quiet_ms;
    time_t t = (time_t)(f->first_seen_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    struct tm due = {
        .tm_year = tm.tm_year, .tm_mon = tm.tm_mon + 1, .tm_mday = r->due_day + 1, .tm_isdst = -1};
    return (int64_t)mktime(&due) * 1000;
}

/*
 * Firms of the scope that have never reported, as one alert per rule and
 * scope (<rule>:<cluster>) rather than one per firm: at a new deployment
 * they are the whole registry, and sixty alerts saying "nothing yet" bury
 * the one that matters. Firms still within their grace are counted apart and
 * not alerted on; *ret_next is the earliest end of a grace still running.
 */
static void eval_silence_never(rules_t *rs, int rule, int due, int64_t now, int64_t *ret_next)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    char scope[200], p1[16], names[400];
    size_t off = 0;
    uint32_t members = 0, never = 0, waiting = 0;
    int64_t next = INT64_MAX;
    names[0] = '\0';
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    rs->evaluations++;
    for (size_t i = 0; i < rs->reg->nfirms; i++) {
        const firm_t *f = &rs->reg->firms[i];
        if (!rules_in_scope(r, f) || f->inactive)
            continue;
        members++;
        bool silent_always = r->continuous
                                 ? agg_series(rs->agg, (int)i, r->metric)->count == 0
                                 : due >= 0 && last_reported_before(rs, (int)i, r->metric, due) < 0;
        if (!silent_always)
            continue;
        int64_t from = never_expected_from(r, f);
        if (now < from) {
            waiting++;
            if (from < next)
                next = from;
            continue;
        }
        if (never++ < 8 && off < sizeof names)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", never > 1 ? ", " : "",
                                    f->id);
    }
    if (never > 8 && off < sizeof names)
        snprintf(names + off, sizeof names - off, ", ...");
    *ret_next = next;
    ev.active = never > 0;
    ev.observed = never;
    ev.expected = 0;
    if (!r->continuous && due >= 0)
        period_str(due, p1, sizeof p1);
    ab_eval_cstr(&ev, "state", "never reported");
    ab_eval_num(&ev, "count", never);
    ab_eval_num(&ev, "firms", members);
    ab_eval_cstr(&ev, "never_reported", names);
    ab_eval_num(&ev, "in_first_period", waiting);
    if (!r->continuous)
        ab_eval_cstr(&ev, "due_period", due >= 0 ? p1 : "none");
    if (!alertbook_wants_summary(rs->book, rule, -1, &ev))
        ; /* the text is made only where it is kept */
    else if (!ev.active)
        snprintf(ev.summary, sizeof ev.summary,
                 "every firm of %s expected to report has reported "
                 "(%u still within their first reporting period)",
                 scope_name(rs, r, scope, sizeof scope), waiting);
    else if (r->continuous)
        snprintf(ev.summary, sizeof ev.summary, "%u of %u firms of %s have sent no %s at all: %s",
                 never, members, scope_name(rs, r, scope, sizeof scope),
                 rs->cfg->metrics[r->metric].name, names);
    else
        snprintf(ev.summary, sizeof ev.summary,
                 "%u of %u firms of %s have never reported; %s was "
                 "due: %s",
                 never, members, scope_name(rs, r, scope, sizeof scope), p1, names);
    alertbook_eval(rs->book, rule, -1, &ev, now);
}

/* ---- above-scale ------------------------------------------------------------------------ */

/* A firm's revenue for a complete year: its annual report or 12 months. */
static bool complete_year(const rules_t *rs, int firm, int metric, int year, double *ret)
{
    const agg_year_t *y = agg_series_year(agg_series(rs->agg, firm, metric), year);
    if (!y || (!y->has_annual && y->month_mask != 0xfff && y->quarter_mask != 0xf))
        return false;
    int64_t v;
    proto_period_t p = {.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    agg_firm_total(rs->agg, firm, metric, p, &v);
    *ret = units(v);
    return true;
}

static void eval_above_scale(rules_t *rs, int rule, int firm, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    const firm_t *f = &rs->reg->firms[firm];
    double line = rs->cfg->above_scale_line;
    ab_eval_t ev;
    ab_eval_reset(&ev);
    ev.revisable = true;
    ev.ts_ms = now;
    rs->evaluations++;
    const agg_series_t *s = agg_series(rs->agg, firm, r->metric);
    double cur = 0, prev = 0;
    int year = -1;
    for (uint32_t i = s->nyears; i-- > 0;) {
        if (complete_year(rs, firm, r->metric, s->years[i].year, &cur)) {
            year = s->years[i].year;
            break;
        }
    }
    if (year < 0 || !complete_year(rs, firm, r->metric, year - 1, &prev)) {
        alertbook_eval(rs->book, rule, firm, &ev, now);
        return;
    }
    bool above = cur >= line, was = prev >= line;
    ev.active = above != was;
    ev.observed = cur;
    ev.expected = line;
    const ab_alert_t *known = alertbook_get(rs->book, rule, firm, false);
    if (!ev.active && !(known && known->firing))
        return; /* nothing to say: skip the cluster counts (a walk over its firms) */
    /* the cluster's count, both years */
    uint32_t n_now = 0, n_before = 0;
    for (size_t g = 0; g < rs->reg->nfirms; g++) {
        double v;
        if (rs->reg->firms[g].cluster != f->cluster)
            continue;
        n_now += complete_year(rs, (int)g, r->metric, year, &v) && v >= line;
        n_before += complete_year(rs, (int)g, r->metric, year - 1, &v) && v >= line;
    }
    char a1[32], a2[32], a3[32];
    ab_eval_num(&ev, "year", year);
    ab_eval_num(&ev, "revenue", cur);
    ab_eval_num(&ev, "previous_revenue", prev);
    ab_eval_num(&ev, "line", line);
    ab_eval_num(&ev, "cluster_above_scale", n_now);
    ab_eval_num(&ev, "cluster_above_scale_before", n_before);
    if (alertbook_wants_summary(rs->book, rule, firm, &ev))
        snprintf(ev.summary, sizeof ev.summary,
                 "%s (%s) %s the above-scale line of %s in %d (%s %d: %s; %d: %s); %s "
                 "above-scale firms: %u in %d, %u in %d",
                 f->id, f->name,
                 !ev.active ? "stays on its side of"
                 : above    ? "rose above"
                            : "fell below",
                 fmt_amount(line, a1, sizeof a1), year, rs->cfg->metrics[r->metric].name, year,
                 fmt_amount(cur, a2, sizeof a2), year - 1, fmt_amount(prev, a3, sizeof a3),
                 rs->cfg->clusters[f->cluster].id, n_before, year - 1, n_now, year);
    alertbook_eval(rs->book, rule, firm, &ev, now);
}

/* ---- driving ---------------------------------------------------------------------------- */

static void eval_one(rules_t *rs, int rule, int firm, int64_t now, int due)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    switch (r->type) {
    case RULE_GROWTH: eval_growth(rs, rule, now); break;
    case RULE_CHANGE: eval_change(rs, rule, firm, now); break;
    case RULE_OUTLIER: eval_outlier(rs, rule, firm, now); break;
    case RULE_ABOVE_SCALE: eval_above_scale(rs, rule, firm, now); break;
    case RULE_SILENCE: eval_silence_firm(rs, rule, firm, due, now); break;
    default: break;
    }
}

/* Every in-scope firm of a per-firm rule (or the scope once). */
static void eval_rule(rules_t *rs, int rule, int64_t now)
{
    const config_rule_t *r = &rs->cfg->rules[rule];
    if (r->type == RULE_THRESHOLD)
        return;
    if (r->type == RULE_GROWTH) {
        eval_growth(rs, rule, now);
        return;
    }
    int due = r->type == RULE_SILENCE && !r->continuous ? due_month(rs, r, now) : -1;
    for (size_t f = 0; f < rs->reg->nfirms; f++)
        if (rules_in_scope(r, &rs->reg->firms[f]))
            eval_one(rs, rule, (int)f, now, due);
    if (r->type == RULE_SILENCE)
        eval_silence_never(rs, rule, due, now, &rs->never_next[rule]);
}

static int cell_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void rules_evaluate_dirty(rules_t *rs, int64_t now_ms)
{
    if (!rs->ndirty)
        return;
    size_t stride = rs->reg->nfirms + 1;
    /* in cell order (rule, then firm): deterministic. When the marks are
     * dense, a walk over the marks is cheaper than a sort of the list. */
    size_t cells = rs->cfg->nrules * stride;
    if (cells <= 64 * rs->ndirty) {
        size_t n = 0;
        for (size_t c = 0; c < cells; c++)
            if (rs->dirty[c])
                rs->dirty_list[n++] = (uint32_t)c;
    } else {
        qsort(rs->dirty_list, rs->ndirty, sizeof *rs->dirty_list, cell_cmp);
    }
    int last_rule = -1, due = -1, never_rule = -1, never_due = -1;
    for (size_t i = 0; i < rs->ndirty; i++) {
        uint32_t cell = rs->dirty_list[i];
        rs->dirty[cell] = 0;
        int rule = (int)(cell / stride), firm = (int)(cell % stride) - 1;
        const config_rule_t *r = &rs->cfg->rules[rule];
        if (never_rule >= 0 && never_rule != rule) {
            eval_silence_never(rs, never_rule, never_due, now_ms, &rs->never_next[never_rule]);
            never_rule = -1;
        }
        if (firm < 0) {
            eval_rule(rs, rule, now_ms); /* a silence rule's summary included */
            continue;
        }
        if (rule != last_rule && r->type == RULE_SILENCE && !r->continuous)
            due = due_month(rs, r, now_ms);
        last_rule = rule;
        eval_one(rs, rule, firm, now_ms, due);
        if (r->type == RULE_SILENCE) {
            never_rule = rule; /* a firm's first report changes the scope's summary */
            never_due = due;
        }
    }
    if (never_rule >= 0)
        eval_silence_never(rs, never_rule, never_due, now_ms, &rs->never_next[never_rule]);
    rs->ndirty = 0;
}

void rules_evaluate_all(rules_t *rs, int64_t now_ms)
{
    /* after a replay or a snapshot load the aggregate changed behind the
     * kept growth state's back: built again from the figures */
    for (size_t i = 0; i < rs->cfg->nrules; i++)
        rs->growth[i].valid = false;
    for (size_t i = 0; i < rs->cfg->nrules; i++)
        eval_rule(rs, (int)i, now_ms);
}

void rules_tick(rules_t *rs, int64_t now_ms)
{
    /* year = current rolls over at local New Year: the old year's alert resolves */
    int year = local_year(now_ms), last_year = rs->year_now;
    rs->year_now = year;
    for (size_t i = 0; i < rs->cfg->nrules; i++) {
        const config_rule_t *r = &rs->cfg->rules[i];
        if (r->type == RULE_SILENCE &&
            (r->continuous || !r->data_clock || now_ms >= rs->never_next[i]))
            eval_rule(rs, (int)i, now_ms); /* data clock: only once a firm's grace ends */
        else if (r->type == RULE_GROWTH && !r->year && last_year && year != last_year)
            eval_rule(rs, (int)i, now_ms);
    }
}
