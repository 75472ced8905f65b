/* series.c -- see series.h. */
#include "daemon/series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

/* ---- months and ranges ------------------------------------------------------------ */

static int month_of(int year, int month)
{
    return year * 12 + month - 1;
}

/* The first and last month a period covers. */
static void period_months(proto_period_t p, int *lo, int *hi)
{
    if (p.kind == PROTO_PERIOD_YEAR) {
        *lo = month_of(p.year, 1);
        *hi = month_of(p.year, 12);
    } else if (p.kind == PROTO_PERIOD_QUARTER) {
        *lo = month_of(p.year, p.index * 3 - 2);
        *hi = month_of(p.year, p.index * 3);
    } else {
        *lo = *hi = month_of(p.year, p.index);
    }
}

static proto_period_t month_period(int m)
{
    return (proto_period_t){
        .year = (uint16_t)(m / 12), .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)(m % 12 + 1)};
}

int series_range_parse(const char *s, size_t len, int *ret_from, int *ret_to)
{
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == '.' && s[i + 1] == '.')
            dots = s + i;
    proto_period_t a, b;
    int lo, hi, lo2, hi2;
    if (!dots) {
        if (proto_period_parse(s, len, &a) != PROTO_OK)
            return -1;
        period_months(a, ret_from, ret_to);
        return 0;
    }
    if (proto_period_parse(s, (size_t)(dots - s), &a) != PROTO_OK ||
        proto_period_parse(dots + 2, len - (size_t)(dots - s) - 2, &b) != PROTO_OK)
        return -1;
    period_months(a, &lo, &hi);
    period_months(b, &lo2, &hi2);
    if (hi2 < lo)
        return -1;
    *ret_from = lo;
    *ret_to = hi2;
    return 0;
}

void series_range_format(int from, int to, char *buf, size_t size)
{
    if (from == to)
        snprintf(buf, size, "%04d-%02d", from / 12, from % 12 + 1);
    else
        snprintf(buf, size, "%04d-%02d..%04d-%02d", from / 12, from % 12 + 1, to / 12, to % 12 + 1);
}

void series_milli_str(__int128 v, char *buf, size_t size)
{
    bool neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    char tmp[48];
    size_t n = 0;
    unsigned __int128 whole = u / 1000;
    unsigned frac = (unsigned)(u % 1000);
    do {
        tmp[n++] = (char)('0' + (int)(whole % 10));
        whole /= 10;
    } while (whole && n < sizeof tmp - 1);
    size_t o = 0;
    if (neg && o + 1 < size)
        buf[o++] = '-';
    while (n && o + 1 < size)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    snprintf(buf + o, size > o ? size - o : 0, ".%03u", frac);
}

/* Appends to out the periods that tile [from, to]: whole years first, then
 * whole quarters, then months. Returns how many. */
static size_t tile(int from, int to, proto_period_t *out, size_t cap)
{
    size_t n = 0;
    for (int m = from; m <= to && n < cap;) {
        int y = m / 12, mo = m % 12 + 1;
        if (mo == 1 && m + 11 <= to) {
            out[n++] = (proto_period_t){.year = (uint16_t)y, .kind = PROTO_PERIOD_YEAR};
            m += 12;
        } else if ((mo - 1) % 3 == 0 && m + 2 <= to) {
            out[n++] = (proto_period_t){.year = (uint16_t)y,
                                        .kind = PROTO_PERIOD_QUARTER,
                                        .index = (uint8_t)((mo + 2) / 3)};
            m += 3;
        } else {
            out[n++] = month_period(m);
            m++;
        }
    }
    return n;
}

bool series_firm_range(const server_t *srv, int firm, int metric, int from, int to, __int128 *ret)
{
    proto_period_t ps[SERIES_MAX_POINTS];
    size_t n = tile(from, to, ps, SERIES_MAX_POINTS);
    bool any = false;
    *ret = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if (agg_firm_total(srv->agg, firm, metric, ps[i], &v)) {
            *ret += v;
            any = true;
        }
    }
    return any;
}

/* ---- scope -------------------------------------------------------------------------- */

static bool has_designation(const char *list, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = list; p && *p;) {
        const char *semi = strchr(p, ';');
        size_t l = semi ? (size_t)(semi - p) : strlen(p);
        if (l == wl && memcmp(p, want, l) == 0)
            return true;
        p = semi ? semi + 1 : NULL;
    }
    return false;
}

bool series_in_scope(const server_t *srv, const series_scope_t *s, int f)
{
    const firm_t *firm = &srv->reg->firms[f];
    if (s->firm >= 0)
        return f == s->firm;
    if (firm->cluster != s->cluster)
        return false;
    if (s->chain == SERIES_NO_CHAIN ? firm->chain >= 0 : s->chain >= 0 && firm->chain != s->chain)
        return false;
    if (s->tier >= 0 && (int)firm->tier != s->tier)
        return false;
    if (*s->city && !(firm->city_id && strcmp(firm->city_id, s->city) == 0))
        return false;
    return !*s->designation || has_designation(firm->designations, s->designation);
}

static const char *arg_text(const proto_ctl_request_t *req, const char *key, char *buf, size_t size)
{
    const proto_ctl_arg_t *a = proto_ctl_arg(req, key);
    if (!a || a->kind != PROTO_ARG_STR)
        return NULL;
    snprintf(buf, size, "%.*s", (int)a->sval.len, a->sval.ptr);
    return buf;
}

int series_scope_parse(const server_t *srv, const proto_ctl_request_t *req, series_scope_t *ret,
                       char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    char buf[PROTO_MAX_ID_LEN + 1], cl[PROTO_MAX_ID_LEN + 1];
    memset(ret, 0, sizeof *ret);
    ret->cluster = ret->chain = ret->tier = ret->firm = -1;
    ret->by = PROTO_PERIOD_MONTH;
    const char *m = arg_text(req, "metric", buf, sizeof buf);
    ret->metric = m ? config_metric_find(cfg, m, strlen(m)) : -1;
    if (ret->metric < 0 || cfg->metrics[ret->metric].kind != METRIC_PERIOD) {
        snprintf(err, errlen, "metric: expected the name of a period metric");
        return -1;
    }
    const char *c = arg_text(req, "cluster", cl, sizeof cl);
    const char *f = arg_text(req, "firm", buf, sizeof buf);
    if (!!c == !!f) {
        snprintf(err, errlen, "cluster, firm: give one of them");
        return -1;
    }
    if (f) {
        ret->firm = registry_find_any(srv->reg, f, strlen(f));
        if (ret->firm < 0) {
            snprintf(err, errlen, "firm: unknown firm '%s'", f);
            return -1;
        }
        if (proto_ctl_arg(req, "chain") || proto_ctl_arg(req, "tier") ||
            proto_ctl_arg(req, "designation") || proto_ctl_arg(req, "city")) {
            snprintf(err, errlen, "firm: chain, tier, designation and city go with cluster only");
            return -1;
        }
    } else {
        ret->cluster = config_cluster_find(cfg, c, strlen(c));
        if (ret->cluster < 0) {
            snprintf(err, errlen, "cluster: unknown cluster '%s'", c);
            return -1;
        }
        const config_cluster_t *cc = &cfg->clusters[ret->cluster];
        const char *ch = arg_text(req, "chain", buf, sizeof buf);
        if (ch && (strcmp(ch, "none") == 0 || !*ch)) {
            ret->chain = SERIES_NO_CHAIN;
        } else if (ch) {
            for (size_t k = 0; k < cc->nchains && ret->chain < 0; k++)
                if (strcmp(cc->chains[k], ch) == 0)
                    ret->chain = (int)k;
            if (ret->chain < 0) {
                snprintf(err, errlen, "chain: cluster %s has no chain '%s' (or 'none')", cc->id,
                         ch);
                return -1;
            }
        }
        const char *t = arg_text(req, "tier", buf, sizeof buf);
        if (t && (ret->tier = registry_tier_parse(t)) < 0) {
            snprintf(err, errlen, "tier: '%s' is not leading, backbone, potential or member", t);
            return -1;
        }
        const char *d = arg_text(req, "designation", ret->designation, sizeof ret->designation);
        if (d && !*d) {
            snprintf(err, errlen, "designation: empty");
            return -1;
        }
        const char *cy = arg_text(req, "city", ret->city, sizeof ret->city);
        if (cy && registry_city_find(srv->reg, cy, strlen(cy)) < 0) {
            snprintf(err, errlen, "city: no firm of the registry is in city '%s'", cy);
            return -1;
        }
    }
    const char *by = arg_text(req, "by", buf, sizeof buf);
    if (by) {
        if (strcmp(by, "month") == 0)
            ret->by = PROTO_PERIOD_MONTH;
        else if (strcmp(by, "quarter") == 0)
            ret->by = PROTO_PERIOD_QUARTER;
        else if (strcmp(by, "year") == 0)
            ret->by = PROTO_PERIOD_YEAR;
        else {
            snprintf(err, errlen, "by: '%s' is not month, quarter or year", by);
            return -1;
        }
    }
    int lo, hi, lo2, hi2;
    char tb[32];
    const char *from = arg_text(req, "from", tb, sizeof tb);
    if (!from || series_range_parse(from, strlen(from), &lo, &hi) != 0) {
        snprintf(err, errlen, "from: expected a period, YYYY, YYYY-Qn or YYYY-MM");
        return -1;
    }
    const char *to = arg_text(req, "to", tb, sizeof tb);
    if (!to || series_range_parse(to, strlen(to), &lo2, &hi2) != 0) {
        snprintf(err, errlen, "to: expected a period, YYYY, YYYY-Qn or YYYY-MM");
        return -1;
    }
    if (hi2 < lo) {
        snprintf(err, errlen, "to: before from");
        return -1;
    }
    int step = ret->by == PROTO_PERIOD_YEAR ? 12 : ret->by == PROTO_PERIOD_QUARTER ? 3 : 1;
    ret->from = lo - lo % step;              /* whole quarters or years */
    ret->to = hi2 + (step - 1 - hi2 % step); /* ... through the last one's end */
    if ((ret->to - ret->from) / step + 1 > SERIES_MAX_POINTS) {
        snprintf(err, errlen, "to: more than %d points", SERIES_MAX_POINTS);
        return -1;
    }
    if (ret->from / 12 <= PROTO_MIN_YEAR) {
        snprintf(err, errlen, "from: out of range");
        return -1;
    }
    return 0;
}

/* ---- series ---------------------------------------------------------------------- */

static proto_period_t bucket_period(const series_scope_t *s, int m)
{
    if (s->by == PROTO_PERIOD_YEAR)
        return (proto_period_t){.year = (uint16_t)(m / 12), .kind = PROTO_PERIOD_YEAR};
    if (s->by == PROTO_PERIOD_QUARTER)
        return (proto_period_t){.year = (uint16_t)(m / 12),
                                .kind = PROTO_PERIOD_QUARTER,
                                .index = (uint8_t)(m % 12 / 3 + 1)};
    return month_period(m);
}

series_point_t *series_compute(const server_t *srv, const series_scope_t *s, bool yoy,
                               size_t *ret_n)
{
    int step = s->by == PROTO_PERIOD_YEAR ? 12 : s->by == PROTO_PERIOD_QUARTER ? 3 : 1;
    size_t n = (size_t)((s->to - s->from) / step + 1);
    series_point_t *pts = xcalloc(n, sizeof *pts);
    for (size_t i = 0; i < n; i++)
        pts[i].period = bucket_period(s, s->from + (int)i * step);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        if (!series_in_scope(srv, s, (int)f))
            continue;
        bool former = registry_is_former(srv->reg, (int)f);
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            bool has = agg_firm_total(srv->agg, (int)f, s->metric, pts[i].period, &v);
            if (has) {
                pts[i].total += v;
                pts[i].reporting++;
            }
            if (!former || has)
                pts[i].members++;
            if (yoy) {
                proto_period_t p = pts[i].period;
                p.year--;
                if (p.year >= PROTO_MIN_YEAR &&
                    agg_firm_total(srv->agg, (int)f, s->metric, p, &v)) {
                    pts[i].prev_total += v;
                    pts[i].prev_reporting++;
                }
            }
        }
    }
    *ret_n = n;
    return pts;
}

/* ---- ranking ---------------------------------------------------------------------- */

static int cmp_rank(const void *a, const void *b)
{
    const series_rank_t *x = a, *y = b;
    double gx = isnan(x->gap_pp) ? -INFINITY : x->gap_pp,
           gy = isnan(y->gap_pp) ? -INFINITY : y->gap_pp;
    if (gx != gy)
        return gx < gy ? 1 : -1;
    return x->firm - y->firm;
}

int series_ranking(const server_t *srv, const series_scope_t *s, double target_pct,
                   series_ranking_t *ret)
{
    const config_t *cfg = srv->cfg;
    memset(ret, 0, sizeof *ret);
    ret->target_rule = NULL;
    if (isnan(target_pct)) {
        target_pct = 0;
        for (size_t r = 0; r < cfg->nrules && s->firm < 0; r++) {
            const config_rule_t *rule = &cfg->rules[r];
            if (rule->type == RULE_GROWTH && rule->cluster == s->cluster &&
                rule->metric == s->metric && rule->chain == (s->chain >= 0 ? s->chain : -1) &&
                s->chain != SERIES_NO_CHAIN) {
                target_pct = rule->target_pct;
                ret->target_rule = rule->id;
                break;
            }
        }
    }
    ret->target_pct = target_pct;
    ret->firms = xcalloc(srv->reg->nall + 1, sizeof *ret->firms);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        if (!series_in_scope(srv, s, (int)f))
            continue;
        series_rank_t *r = &ret->firms[ret->nfirms];
        r->firm = (int)f;
        r->has_cur = series_firm_range(srv, (int)f, s->metric, s->from, s->to, &r->cur);
        r->has_prev = series_firm_range(srv, (int)f, s->metric, s->from - 12, s->to - 12, &r->prev);
        if (registry_is_former(srv->reg, (int)f) && !r->has_cur && !r->has_prev)
            continue;
        ret->cur += r->cur;
        ret->prev += r->prev;
        ret->nfirms++;
    }
    double base = (double)ret->prev;
    ret->growth_pct = base > 0 ? ((double)ret->cur - base) / base * 100.0 : NAN;
    ret->gap_pp = base > 0 ? target_pct - ret->growth_pct : NAN;
    for (size_t i = 0; i < ret->nfirms; i++) {
        series_rank_t *r = &ret->firms[i];
        double cur = (double)r->cur, prev = (double)r->prev;
        r->growth_pct = r->has_prev && prev > 0 && r->has_cur ? (cur - prev) / prev * 100.0 : NAN;
        r->contribution_pp = base > 0 ? (cur - prev) / base * 100.0 : NAN;
        r->gap_pp = base > 0 ? (prev * target_pct / 100.0 - (cur - prev)) / base * 100.0 : NAN;
    }
    qsort(ret->firms, ret->nfirms, sizeof *ret->firms, cmp_rank);
    return 0;
}

void series_ranking_free(series_ranking_t *r)
{
    free(r->firms);
    r->firms = NULL;
    r->nfirms = 0;
}

/* ---- control commands ----------------------------------------------------------------- */

/* Amounts go out as integer milli-units where they fit int64, as the rest of
 * the control protocol does; clustermonctl renders them exactly. */
static void pack_milli(msgpack_packer *pk, __int128 v)
{
    if (v > INT64_MAX || v < INT64_MIN)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_int64(pk, (int64_t)v);
}

static void pack_num(msgpack_packer *pk, double v)
{
    if (isfinite(v))
        msgpack_pack_double(pk, v);
    else
        msgpack_pack_nil(pk);
}

static void pack_scope(msgpack_packer *pk, const server_t *srv, const series_scope_t *s)
{
    const config_t *cfg = srv->cfg;
    char range[32];
    control_pack_kv_str(pk, "metric", cfg->metrics[s->metric].name);
    control_pack_kv_str(pk, "unit",
                        cfg->metrics[s->metric].unit ? cfg->metrics[s->metric].unit : "");
    control_pack_str(pk, "cluster");
    int ci = s->firm >= 0 ? srv->reg->firms[s->firm].cluster : s->cluster;
    control_pack_str(pk, cfg->clusters[ci].id);
    control_pack_str(pk, "chain");
    if (s->chain >= 0)
        control_pack_str(pk, cfg->clusters[ci].chains[s->chain]);
    else if (s->chain == SERIES_NO_CHAIN)
        control_pack_str(pk, "none");
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "tier");
    if (s->tier >= 0)
        control_pack_str(pk, registry_tier_name((tier_t)s->tier));
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "designation");
    if (*s->designation)
        control_pack_str(pk, s->designation);
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "firm");
    if (s->firm >= 0)
        control_pack_str(pk, srv->reg->firms[s->firm].id);
    else
        msgpack_pack_nil(pk);
    control_pack_kv_str(pk, "by",
                        s->by == PROTO_PERIOD_YEAR      ? "year"
                        : s->by == PROTO_PERIOD_QUARTER ? "quarter"
                                                        : "month");
    series_range_format(s->from, s->to, range, sizeof range);
    control_pack_kv_str(pk, "range", range);
    control_pack_str(pk, "city");
    if (*s->city)
        control_pack_str(pk, s->city);
    else
        msgpack_pack_nil(pk);
}
#define SCOPE_KEYS 10

void series_cmd_series(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    series_scope_t s;
    char err[256];
    if (series_scope_parse(srv, req, &s, err, sizeof err) != 0) {
        control_reply_error(pk, err);
        return;
    }
    const proto_ctl_arg_t *ay = proto_ctl_arg(req, "yoy");
    bool yoy = ay && ay->kind == PROTO_ARG_INT && ay->ival != 0;
    size_t n;
    series_point_t *pts = series_compute(srv, &s, yoy, &n);
    __int128 sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += pts[i].total;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, SCOPE_KEYS + 4);
    pack_scope(pk, srv, &s);
    control_pack_kv_bool(pk, "yoy", yoy);
    control_pack_kv_str(pk, "timezone", srv->cfg->timezone);
    control_pack_str(pk, "sum_milli");
    pack_milli(pk, sum);
    control_pack_str(pk, "points");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const series_point_t *p = &pts[i];
        char pb[PROTO_PERIOD_STRLEN];
        proto_period_format(p->period, pb, sizeof pb);
        msgpack_pack_map(pk, yoy ? 8 : 5);
        control_pack_kv_str(pk, "period", pb);
        control_pack_str(pk, "value_milli");
        if (p->reporting)
            pack_milli(pk, p->total);
        else
            msgpack_pack_nil(pk); /* nobody reported: no figure, not 0 */
        control_pack_kv_u64(pk, "reporting", p->reporting);
        control_pack_kv_u64(pk, "members", p->members);
        control_pack_str(pk, "coverage_pct");
        pack_num(pk, p->members ? 100.0 * p->reporting / p->members : NAN);
        if (yoy) {
            control_pack_str(pk, "last_year_milli");
            if (p->prev_reporting)
                pack_milli(pk, p->prev_total);
            else
                msgpack_pack_nil(pk);
            control_pack_kv_u64(pk, "last_year_reporting", p->prev_reporting);
            control_pack_str(pk, "yoy_pct");
            pack_num(pk, p->prev_reporting && p->reporting && p->prev_total > 0
                             ? ((double)p->total - (double)p->prev_total) / (double)p->prev_total *
                                   100.0
                             : NAN);
        }
    }
    free(pts);
}

void series_cmd_ranking(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    series_scope_t s;
    char err[256];
    if (series_scope_parse(srv, req, &s, err, sizeof err) != 0) {
        control_reply_error(pk, err);
        return;
    }
    double target = NAN;
    const proto_ctl_arg_t *at = proto_ctl_arg(req, "target");
    if (at && at->kind == PROTO_ARG_STR) {
        char tb[32], *end;
        snprintf(tb, sizeof tb, "%.*s", (int)at->sval.len, at->sval.ptr);
        target = strtod(tb, &end);
        if (end == tb || *end || !isfinite(target) || target < -100 || target > 10000) {
            control_reply_error(pk, "target: expected a growth target in percent, e.g. 15");
            return;
        }
    }
    int64_t limit = 0;
    const proto_ctl_arg_t *al = proto_ctl_arg(req, "limit");
    if (al && al->kind == PROTO_ARG_INT)
        limit = al->ival;
    series_ranking_t r;
    series_ranking(srv, &s, target, &r);
    size_t n = limit > 0 && (size_t)limit < r.nfirms ? (size_t)limit : r.nfirms;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, SCOPE_KEYS + 8);
    pack_scope(pk, srv, &s);
    char range[32];
    series_range_format(s.from - 12, s.to - 12, range, sizeof range);
    control_pack_kv_str(pk, "base_range", range);
    control_pack_str(pk, "total_milli");
    pack_milli(pk, r.cur);
    control_pack_str(pk, "base_milli");
    pack_milli(pk, r.prev);
    control_pack_str(pk, "growth_pct");
    pack_num(pk, r.growth_pct);
    control_pack_str(pk, "target_pct");
    pack_num(pk, r.target_pct);
    control_pack_str(pk, "target_rule");
    if (r.target_rule)
        control_pack_str(pk, r.target_rule);
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "gap_pp");
    pack_num(pk, r.gap_pp);
    control_pack_str(pk, "firms");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const series_rank_t *x = &r.firms[i];
        const firm_t *f = &srv->reg->firms[x->firm];
        msgpack_pack_map(pk, 9);
        control_pack_kv_str(pk, "id", f->id);
        control_pack_kv_str(pk, "name", f->name);
        control_pack_kv_str(pk, "tier", registry_tier_name(f->tier));
        control_pack_str(pk, "value_milli");
        if (x->has_cur)
            pack_milli(pk, x->cur);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "base_milli");
        if (x->has_prev)
            pack_milli(pk, x->prev);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "growth_pct");
        pack_num(pk, x->growth_pct);
        control_pack_str(pk, "contribution_pp");
        pack_num(pk, x->contribution_pp);
        control_pack_str(pk, "gap_pp");
        pack_num(pk, x->gap_pp);
        control_pack_kv_bool(pk, "missing", x->has_prev && !x->has_cur);
    }
    series_ranking_free(&r);
}
