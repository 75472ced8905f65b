/*
 * query.c -- the read-only figures the control socket answers with: the
 * yearly report, one metric's totals per cluster and chain, the cluster
 * overview, one cluster year to date per chain and tier, the firms and which
 * of them have gone silent, and the daemon's runtime figures. Computed on
 * demand from the firm figures in the aggregate (a walk over the firms).
 *
 * Former members (registry.h, members.h) count for a period exactly where
 * they reported for it: their figures stay in the totals, and they count
 * among the firms, the reporting firms and the above-scale firms of that
 * period (also "former", so a reader sees why); for a period they sent
 * nothing for, typically any after they left, they do not count at all.
 * They are never silent. Current members count as before.
 */
#include "daemon/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/control.h"
#include "daemon/members.h"
#include "daemon/series.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

/* The totals command's sums for one cluster or chain (query_tally_t is the
 * year's figures); a total that does not fit int64 is reported as nil. */
typedef struct {
    uint32_t firms, reporting, former;
    __int128 total;
} totals_t;

static void pack_milli(msgpack_packer *pk, __int128 v)
{
    if (v > INT64_MAX || v < INT64_MIN)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_int64(pk, (int64_t)v);
}

static void pack_tally(msgpack_packer *pk, const query_tally_t *t, bool has_profit)
{
    control_pack_str(pk, "firms");
    msgpack_pack_uint32(pk, t->firms);
    control_pack_str(pk, "reporting");
    msgpack_pack_uint32(pk, t->reporting);
    control_pack_str(pk, "above_scale");
    msgpack_pack_uint32(pk, t->above_scale);
    control_pack_str(pk, "former");
    msgpack_pack_uint32(pk, t->former);
    control_pack_str(pk, "revenue_milli");
    pack_milli(pk, t->revenue);
    control_pack_str(pk, "profit_milli");
    if (has_profit)
        pack_milli(pk, t->profit);
    else
        msgpack_pack_nil(pk);
}

bool query_firm_above_scale(const server_t *srv, int firm, int year)
{
    proto_period_t py = {.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    int64_t rev;
    return agg_firm_total(srv->agg, firm, srv->cfg->revenue_idx, py, &rev) &&
           rev >= agg_to_milli(srv->cfg->above_scale_line);
}

static void tally_firm(query_tally_t *t, const server_t *srv, int firm, int year)
{
    const config_t *cfg = srv->cfg;
    proto_period_t py = {.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    int64_t rev = 0, profit = 0;
    bool reported = agg_firm_reported(srv->agg, firm, year);
    if (registry_is_former(srv->reg, firm)) {
        if (!reported)
            return; /* not a member that year, as far as the figures go */
        t->former++;
    }
    t->firms++;
    /* reporting means reporting the revenue the row sums: a firm that sent
     * only readings (or only profit) has not */
    if (agg_firm_total(srv->agg, firm, cfg->revenue_idx, py, &rev))
        t->reporting++;
    if (query_firm_above_scale(srv, firm, year))
        t->above_scale++;
    t->revenue += rev;
    if (cfg->profit_idx >= 0 && agg_firm_total(srv->agg, firm, cfg->profit_idx, py, &profit))
        t->profit += profit;
}

query_cluster_tally_t *query_tally_clusters(const server_t *srv, int year)
{
    const config_t *cfg = srv->cfg;
    query_cluster_tally_t *ct = xcalloc(cfg->nclusters + 1, sizeof *ct);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        const firm_t *firm = &srv->reg->firms[f];
        if (firm->cluster < 0 || (size_t)firm->cluster >= cfg->nclusters)
            continue;
        tally_firm(&ct[firm->cluster].cluster, srv, (int)f, year);
        if (firm->chain >= 0)
            tally_firm(&ct[firm->cluster].chains[firm->chain], srv, (int)f, year);
    }
    return ct;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const query_group_t *)a)->id, ((const query_group_t *)b)->id);
}

query_breakdown_t *query_breakdown(const server_t *srv, int year)
{
    const config_t *cfg = srv->cfg;
    query_breakdown_t *bd = xcalloc(cfg->nclusters + 1, sizeof *bd);
    size_t *caps = xcalloc(cfg->nclusters + 1, sizeof *caps);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        const firm_t *firm = &srv->reg->firms[f];
        if (firm->cluster < 0 || (size_t)firm->cluster >= cfg->nclusters)
            continue;
        query_breakdown_t *b = &bd[firm->cluster];
        tally_firm(&b->cluster, srv, (int)f, year);
        tally_firm(firm->chain >= 0 ? &b->chains[firm->chain] : &b->no_chain, srv, (int)f, year);
        if ((unsigned)firm->tier < 4)
            tally_firm(&b->tiers[firm->tier], srv, (int)f, year);
        for (const char *p = firm->designations; p && *p;) {
            const char *semi = strchr(p, ';');
            size_t len = semi ? (size_t)(semi - p) : strlen(p);
            size_t g = 0;
            while (g < b->ndesignations && !(strlen(b->designations[g].id) == len &&
                                             memcmp(b->designations[g].id, p, len) == 0))
                g++;
            if (len && g == b->ndesignations) {
                xgrow(&b->designations, &caps[firm->cluster], b->ndesignations + 1,
                      sizeof *b->designations);
                b->designations[b->ndesignations++] =
                    (query_group_t){.id = xstrndup(p, len), .t = {0}};
            }
            if (len)
                tally_firm(&b->designations[g].t, srv, (int)f, year);
            p = semi ? semi + 1 : NULL;
        }
    }
    for (size_t c = 0; c < cfg->nclusters; c++)
        if (bd[c].ndesignations)
            qsort(bd[c].designations, bd[c].ndesignations, sizeof *bd[c].designations, cmp_group);
    free(caps);
    return bd;
}

void query_breakdown_free(query_breakdown_t *b, size_t n)
{
    if (!b)
        return;
    for (size_t c = 0; c < n; c++) {
        for (size_t g = 0; g < b[c].ndesignations; g++)
            free(b[c].designations[g].id);
        free(b[c].designations);
    }
    free(b);
}

void query_report(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    int year, month;
    calendar_month_of(&srv->cal, calendar_now_ms(), &year, &month);
    const proto_ctl_arg_t *ay = proto_ctl_arg(req, "year");
    if (ay && ay->kind == PROTO_ARG_INT) {
        if (ay->ival < PROTO_MIN_YEAR || ay->ival > PROTO_MAX_YEAR) {
            control_reply_error(pk, "year: out of range");
            return;
        }
        year = (int)ay->ival;
    } else if (ay && ay->kind != PROTO_ARG_NIL) {
        control_reply_error(pk, "year: expected an integer");
        return;
    }
    int64_t line_milli = agg_to_milli(cfg->above_scale_line);
    bool has_profit = cfg->profit_idx >= 0;

    query_breakdown_t *bd = query_breakdown(srv, year);
    /* cities (a province's registry, README "Province deployment"): a row
     * each, and the firms on no city, so the rows add up to the clusters' */
    const registry_t *reg = srv->reg;
    query_tally_t *cities = xcalloc(reg->ncities + 1, sizeof *cities);
    for (size_t f = 0; f < reg->nall; f++) {
        const firm_t *firm = &reg->firms[f];
        if (firm->cluster < 0 || (size_t)firm->cluster >= cfg->nclusters)
            continue;
        tally_firm(&cities[firm->city >= 0 ? (size_t)firm->city : reg->ncities], srv, (int)f, year);
    }
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 8);
    control_pack_str(pk, "year");
    msgpack_pack_int(pk, year);
    control_pack_kv_str(pk, "timezone", cfg->timezone);
    control_pack_kv_str(pk, "revenue_metric", cfg->revenue_metric);
    control_pack_str(pk, "profit_metric");
    if (has_profit)
        control_pack_str(pk, cfg->profit_metric);
    else
        msgpack_pack_nil(pk);
    control_pack_kv_i64(pk, "above_scale_line_milli", line_milli);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, cfg->nclusters);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        const query_breakdown_t *b = &bd[ci];
        msgpack_pack_map(pk, 12);
        control_pack_kv_str(pk, "id", cl->id);
        control_pack_kv_str(pk, "title", cl->title);
        pack_tally(pk, &b->cluster, has_profit);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 7);
            control_pack_kv_str(pk, "id", cl->chains[k]);
            pack_tally(pk, &b->chains[k], has_profit);
        }
        /* the members on no chain: with it the chain rows add up to the cluster */
        control_pack_str(pk, "no_chain");
        msgpack_pack_map(pk, 6);
        pack_tally(pk, &b->no_chain, has_profit);
        control_pack_str(pk, "tiers");
        msgpack_pack_array(pk, 4);
        for (int t = 0; t < 4; t++) {
            msgpack_pack_map(pk, 7);
            control_pack_kv_str(pk, "id", registry_tier_name((tier_t)t));
            pack_tally(pk, &b->tiers[t], has_profit);
        }
        control_pack_str(pk, "designations");
        msgpack_pack_array(pk, b->ndesignations);
        for (size_t g = 0; g < b->ndesignations; g++) {
            msgpack_pack_map(pk, 7);
            control_pack_kv_str(pk, "id", b->designations[g].id);
            pack_tally(pk, &b->designations[g].t, has_profit);
        }
    }
    control_pack_str(pk, "cities");
    msgpack_pack_array(pk, reg->ncities);
    for (size_t c = 0; c < reg->ncities; c++) {
        msgpack_pack_map(pk, 7);
        control_pack_kv_str(pk, "id", reg->cities[c]);
        pack_tally(pk, &cities[c], has_profit);
    }
    control_pack_str(pk, "no_city"); /* every firm, without a city column */
    msgpack_pack_map(pk, 6);
    pack_tally(pk, &cities[reg->ncities], has_profit);
    free(cities);
    query_breakdown_free(bd, cfg->nclusters);
}

/* One metric over one period, per cluster and chain: firms, how many of them
 * reported for the period, and the total. */
void query_totals(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    const proto_ctl_arg_t *am = proto_ctl_arg(req, "metric");
    const proto_ctl_arg_t *ap = proto_ctl_arg(req, "period");
    int metric =
        am && am->kind == PROTO_ARG_STR ? config_metric_find(cfg, am->sval.ptr, am->sval.len) : -1;
    proto_period_t period = {0};
    int from = 0, to = -1; /* a range of months (series.h), or to < from: one period */
    if (metric < 0 || cfg->metrics[metric].kind != METRIC_PERIOD) {
        control_reply_error(pk, "metric: expected the name of a period metric");
        return;
    }
    bool one = ap && ap->kind == PROTO_ARG_STR &&
               proto_period_parse(ap->sval.ptr, ap->sval.len, &period) == PROTO_OK;
    if (!one && (!ap || ap->kind != PROTO_ARG_STR ||
                 series_range_parse(ap->sval.ptr, ap->sval.len, &from, &to) != 0)) {
        control_reply_error(pk, "period: expected YYYY, YYYY-Qn or YYYY-MM, or a range P..P "
                                "(2024-01..2024-06)");
        return;
    }
    char pbuf[32];
    if (one)
        proto_period_format(period, pbuf, sizeof pbuf);
    else
        series_range_format(from, to, pbuf, sizeof pbuf);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    control_pack_kv_str(pk, "metric", cfg->metrics[metric].name);
    control_pack_kv_str(pk, "unit", cfg->metrics[metric].unit);
    control_pack_kv_str(pk, "period", pbuf);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, cfg->nclusters);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        totals_t total = {0}, chains[CONFIG_MAX_CHAINS] = {{0}};
        for (size_t f = 0; f < srv->reg->nall; f++) {
            const firm_t *firm = &srv->reg->firms[f];
            if (firm->cluster != (int)ci)
                continue;
            int64_t v = 0;
            __int128 rv = 0;
            bool has = one ? agg_firm_total(srv->agg, (int)f, metric, period, &v)
                           : series_firm_range(srv, (int)f, metric, from, to, &rv);
            if (!one)
                v = 0;
            bool former = registry_is_former(srv->reg, (int)f);
            if (former && !has)
                continue;
            totals_t *ts[2] = {&total, firm->chain >= 0 ? &chains[firm->chain] : NULL};
            for (int k = 0; k < 2 && ts[k]; k++) {
                ts[k]->former += former;
                ts[k]->firms++;
                ts[k]->reporting += has;
                ts[k]->total += one ? v : rv;
            }
        }
        msgpack_pack_map(pk, 7);
        control_pack_kv_str(pk, "id", cl->id);
        control_pack_str(pk, "firms");
        msgpack_pack_uint32(pk, total.firms);
        control_pack_str(pk, "former");
        msgpack_pack_uint32(pk, total.former);
        control_pack_str(pk, "reporting");
        msgpack_pack_uint32(pk, total.reporting);
        control_pack_str(pk, "total_milli");
        pack_milli(pk, total.total);
        control_pack_kv_str(pk, "title", cl->title);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 5);
            control_pack_kv_str(pk, "id", cl->chains[k]);
            control_pack_str(pk, "firms");
            msgpack_pack_uint32(pk, chains[k].firms);
            control_pack_str(pk, "former");
            msgpack_pack_uint32(pk, chains[k].former);
            control_pack_str(pk, "reporting");
            msgpack_pack_uint32(pk, chains[k].reporting);
            control_pack_str(pk, "total_milli");
            pack_milli(pk, chains[k].total);
        }
    }
}

/* ---- operations views: clusters, cluster, firms, runtime -------------------- */

/* Unix ms of local midnight starting (year, month 1..12, day); months and
 * days past the end roll over, as mktime does. */
static int64_t local_ms(int year, int month, int day)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day, .tm_isdst = -1};
    time_t t = mktime(&tm);
    return (int64_t)t * 1000;
}

/*
 * The newest data a firm has sent: the end of the latest period it reported
 * any metric for, or the time of its latest reading if that is later.
 * Returns 0 if it never sent anything; writes a label for it ("2022-06",
 * "2022-Q2", "2022" or a reading's "2022-07-01") into label.
 */
static int64_t firm_last_data(const server_t *srv, int firm, char *label, size_t size)
{
    const config_t *cfg = srv->cfg;
    int64_t best = 0;
    snprintf(label, size, "-");
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        const agg_series_t *s = agg_series(srv->agg, firm, (int)m);
        if (cfg->metrics[m].kind == METRIC_READING) {
            if (s->count && s->last_ts > best) {
                best = s->last_ts;
                time_t t = (time_t)(s->last_ts / 1000);
                struct tm tm;
                localtime_r(&t, &tm);
                strftime(label, size, "%Y-%m-%d", &tm);
            }
            continue;
        }
        for (uint32_t i = s->nyears; i-- > 0;) {
            const agg_year_t *y = &s->years[i];
            if (!y->any)
                continue;
            int64_t end;
            char buf[PROTO_PERIOD_STRLEN];
            proto_period_t p = {.year = y->year, .kind = PROTO_PERIOD_YEAR};
            if (y->has_annual) {
                end = local_ms(y->year + 1, 1, 1);
            } else {
                int mo = 0, q = 0;
                for (int k = 12; k >= 1 && !mo; k--)
                    if (y->month_mask & (1u << (k - 1)))
                        mo = k;
                for (int k = 4; k >= 1 && !q; k--)
                    if (y->quarter_mask & (1u << (k - 1)))
                        q = k;
                if (q * 3 >= mo && q) {
                    p = (proto_period_t){
                        .year = y->year, .kind = PROTO_PERIOD_QUARTER, .index = (uint8_t)q};
                    end = local_ms(y->year, q * 3 + 1, 1);
                } else if (mo) {
                    p = (proto_period_t){
                        .year = y->year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)mo};
                    end = local_ms(y->year, mo + 1, 1);
                } else {
                    continue;
                }
            }
            if (end > best) {
                best = end;
                proto_period_format(p, buf, sizeof buf);
                snprintf(label, size, "%s", buf);
            }
            break; /* years are sorted: the newest with data decides */
        }
    }
    return best;
}

/* A firm's total of months 1..through of year: whole quarters by their
 * quarter totals (so quarterly reporters count), the rest month by month,
 * and the whole year by its year total. */
static bool firm_ytd(const agg_t *agg, int firm, int metric, int year, int through, int64_t *ret)
{
    proto_period_t p = {.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    if (through >= 12)
        return agg_firm_total(agg, firm, metric, p, ret);
    bool any = false;
    int64_t sum = 0, v;
    int q = through / 3;
    for (int k = 1; k <= q; k++) {
        p = (proto_period_t){
            .year = (uint16_t)year, .kind = PROTO_PERIOD_QUARTER, .index = (uint8_t)k};
        if (agg_firm_total(agg, firm, metric, p, &v)) {
            sum += v;
            any = true;
        }
    }
    for (int mo = q * 3 + 1; mo <= through; mo++) {
        p = (proto_period_t){
            .year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)mo};
        if (agg_firm_total(agg, firm, metric, p, &v)) {
            sum += v;
            any = true;
        }
    }
    *ret = sum;
    return any;
}

/* Reads an optional integer argument; returns false (and replies) if it is
 * there but not an integer in [lo, hi]. */
static bool int_arg(msgpack_packer *pk, const proto_ctl_request_t *req, const char *key, int64_t lo,
                    int64_t hi, int64_t *val)
{
    const proto_ctl_arg_t *a = proto_ctl_arg(req, key);
    if (!a || a->kind == PROTO_ARG_NIL)
        return true;
    if (a->kind != PROTO_ARG_INT || a->ival < lo || a->ival > hi) {
        char reason[128];
        snprintf(reason, sizeof reason, "%s: expected an integer in %lld..%lld", key, (long long)lo,
                 (long long)hi);
        control_reply_error(pk, reason);
        return false;
    }
    *val = a->ival;
    return true;
}

/* Reads an optional cluster id argument: -1 if absent; -2 (and replies) if unknown. */
static int cluster_arg(msgpack_packer *pk, const server_t *srv, const proto_ctl_request_t *req,
                       const char *key, bool required)
{
    const proto_ctl_arg_t *a = proto_ctl_arg(req, key);
    if (!a || a->kind == PROTO_ARG_NIL) {
        if (!required)
            return -1;
    } else if (a->kind == PROTO_ARG_STR) {
        int ci = config_cluster_find(srv->cfg, a->sval.ptr, a->sval.len);
        if (ci >= 0)
            return ci;
    }
    char reason[512];
    size_t off = (size_t)snprintf(reason, sizeof reason, "%s: expected a cluster id (", key);
    for (size_t i = 0; i < srv->cfg->nclusters && off < sizeof reason; i++)
        off += (size_t)snprintf(reason + off, sizeof reason - off, "%s%s", i ? ", " : "",
                                srv->cfg->clusters[i].id);
    if (off < sizeof reason)
        snprintf(reason + off, sizeof reason - off, ")");
    control_reply_error(pk, reason);
    return -2;
}

static bool firm_silent(const server_t *srv, int firm, int64_t as_of_ms, int64_t days,
                        int64_t *ret_last, char *label, size_t size)
{
    int64_t last = firm_last_data(srv, firm, label, size);
    if (ret_last)
        *ret_last = last;
    if (srv->reg->firms[firm].inactive || registry_is_former(srv->reg, firm))
        return false;
    return last == 0 || as_of_ms - last > days * 86400000;
}

/* Alerts firing now, per cluster (counts has nclusters slots). */
static void firing_per_cluster(const server_t *srv, uint64_t *counts)
{
    const alertbook_t *b = &srv->book;
    for (size_t i = 0; i < b->nalerts; i++) {
        const ab_alert_t *a = b->alerts[i];
        if (!a->firing || a->rule < 0 || (size_t)a->rule >= srv->cfg->nrules)
            continue;
        int ci = srv->cfg->rules[a->rule].cluster;
        if (ci >= 0 && (size_t)ci < srv->cfg->nclusters)
            counts[ci]++;
    }
}

void query_clusters(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    int64_t now = calendar_now_ms();
    int year, month;
    calendar_month_of(&srv->cal, now, &year, &month);
    int64_t y = year, days = QUERY_SILENT_DAYS;
    if (!int_arg(pk, req, "year", PROTO_MIN_YEAR, PROTO_MAX_YEAR, &y) ||
        !int_arg(pk, req, "days", 1, 36500, &days))
        return;
    uint64_t *firing = xcalloc(cfg->nclusters + 1, sizeof *firing);
    firing_per_cluster(srv, firing);
    query_cluster_tally_t *ct = query_tally_clusters(srv, (int)y);

    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    control_pack_kv_i64(pk, "year", y);
    control_pack_kv_str(pk, "timezone", cfg->timezone);
    control_pack_kv_i64(pk, "silent_days", days);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, cfg->nclusters);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        uint32_t silent = 0;
        for (size_t f = 0; f < srv->reg->nall; f++) {
            if (srv->reg->firms[f].cluster != (int)ci)
                continue;
            char label[32];
            silent += firm_silent(srv, (int)f, now, days, NULL, label, sizeof label);
        }
        msgpack_pack_map(pk, 11);
        control_pack_kv_str(pk, "id", cl->id);
        control_pack_kv_str(pk, "title", cl->title);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++)
            control_pack_str(pk, cl->chains[k]);
        pack_tally(pk, &ct[ci].cluster, cfg->profit_idx >= 0);
        control_pack_str(pk, "silent");
        msgpack_pack_uint32(pk, silent);
        control_pack_kv_u64(pk, "alerts_firing", firing[ci]);
    }
    free(ct);
    free(firing);
}

/* One row of the cluster view: a set of firms and its figures. */
typedef struct {
    uint32_t firms, reporting, above_scale, former;
    __int128 ytd[CONFIG_MAX_METRICS], prev[CONFIG_MAX_METRICS];
    uint32_t ytd_n[CONFIG_MAX_METRICS], prev_n[CONFIG_MAX_METRICS];
} ytd_row_t;

static void ytd_add(ytd_row_t *r, const server_t *srv, int firm, int year, int through)
{
    const config_t *cfg = srv->cfg;
    bool reported = false;
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        if (cfg->metrics[m].kind != METRIC_PERIOD)
            continue;
        int64_t v;
        if (firm_ytd(srv->agg, firm, (int)m, year, through, &v)) {
            r->ytd[m] += v;
            r->ytd_n[m]++;
            reported = true;
        }
        if (firm_ytd(srv->agg, firm, (int)m, year - 1, through, &v)) {
            r->prev[m] += v;
            r->prev_n[m]++;
        }
    }
    /* a former member's figures stay in both columns; it counts among the
     * row's firms only if it reported in the period (see the top) */
    if (registry_is_former(srv->reg, firm)) {
        if (!reported)
            return;
        r->former++;
    }
    r->firms++;
    r->reporting += reported;
    r->above_scale += query_firm_above_scale(srv, firm, year - 1);
}

static void pack_ytd_row(msgpack_packer *pk, const server_t *srv, const char *kind, const char *id,
                         const ytd_row_t *r)
{
    const config_t *cfg = srv->cfg;
    size_t nperiod = 0;
    for (size_t m = 0; m < cfg->nmetrics; m++)
        nperiod += cfg->metrics[m].kind == METRIC_PERIOD;
    msgpack_pack_map(pk, 7);
    control_pack_kv_str(pk, "kind", kind);
    control_pack_kv_str(pk, "id", id);
    control_pack_str(pk, "firms");
    msgpack_pack_uint32(pk, r->firms);
    control_pack_str(pk, "former");
    msgpack_pack_uint32(pk, r->former);
    control_pack_str(pk, "reporting");
    msgpack_pack_uint32(pk, r->reporting);
    control_pack_str(pk, "above_scale");
    msgpack_pack_uint32(pk, r->above_scale);
    control_pack_str(pk, "metrics");
    msgpack_pack_map(pk, nperiod);
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        if (cfg->metrics[m].kind != METRIC_PERIOD)
            continue;
        control_pack_str(pk, cfg->metrics[m].name);
        msgpack_pack_map(pk, 5);
        control_pack_str(pk, "ytd_milli");
        pack_milli(pk, r->ytd[m]);
        control_pack_str(pk, "ytd_firms");
        msgpack_pack_uint32(pk, r->ytd_n[m]);
        control_pack_str(pk, "last_year_milli");
        pack_milli(pk, r->prev[m]);
        control_pack_str(pk, "last_year_firms");
        msgpack_pack_uint32(pk, r->prev_n[m]);
        control_pack_str(pk, "growth_pct");
        if (r->prev[m] != 0 && r->ytd_n[m] > 0) {
            double a = (double)r->ytd[m], b = (double)r->prev[m];
            msgpack_pack_double(pk, (a - b) / (b < 0 ? -b : b) * 100.0);
        } else {
            msgpack_pack_nil(pk);
        }
    }
}

/*
 * One cluster, per chain and per tier: firms, reporting firms, above-scale
 * firms (by last year's revenue: the way the year's directory is drawn up)
 * and, for every period metric, the year-to-date total through a month
 * against the same months of the previous year, with the growth in percent.
 * The month defaults to the last complete one (in January: December of the
 * previous year).
 */
/* The growth rules of a cluster and where they stand: target, the growth
 * the rule computes (rules_growth_figure: like for like, months that
 * reached its quorum) through the same month as the table when it watches
 * that year, with what it compared, and whether its alert is firing. The
 * table above sums every report instead; the two answer different
 * questions, so each says what it measures. */
static void pack_targets(server_t *srv, msgpack_packer *pk, int ci, int year, int through)
{
    const config_t *cfg = srv->cfg;
    int64_t now = calendar_now_ms();
    uint32_t n = 0;
    for (size_t r = 0; r < cfg->nrules; r++)
        n += cfg->rules[r].type == RULE_GROWTH && cfg->rules[r].cluster == ci;
    control_pack_str(pk, "targets");
    msgpack_pack_array(pk, n);
    for (size_t r = 0; r < cfg->nrules; r++) {
        const config_rule_t *rule = &cfg->rules[r];
        if (rule->type != RULE_GROWTH || rule->cluster != ci)
            continue;
        const ab_alert_t *a = alertbook_get(&srv->book, (int)r, -1, false);
        int ry = rules_growth_year(rule, now);
        rules_growth_t gf;
        rules_growth_figure(cfg, srv->reg, srv->agg, (int)r, ry, ry == year ? through : 12, now,
                            &gf, NULL, NULL);
        bool have = gf.months > 0 && gf.base > 0;
        char buf[160];
        msgpack_pack_map(pk, 11);
        control_pack_kv_str(pk, "rule", rule->id);
        control_pack_kv_str(pk, "metric", cfg->metrics[rule->metric].name);
        control_pack_str(pk, "chain");
        if (rule->chain >= 0)
            control_pack_str(pk, cfg->clusters[ci].chains[rule->chain]);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "year");
        msgpack_pack_int(pk, ry);
        control_pack_str(pk, "target_pct");
        msgpack_pack_double(pk, rule->target_pct);
        control_pack_str(pk, "tolerance_pp");
        msgpack_pack_double(pk, rule->tolerance_pp);
        control_pack_str(pk, "growth_pct");
        if (have)
            msgpack_pack_double(pk, gf.g.growth_pct);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "months");
        if (have) {
            snprintf(buf, sizeof buf, "%d-01..%d-%02d", ry, ry, gf.months);
            control_pack_str(pk, buf);
        } else {
            msgpack_pack_nil(pk);
        }
        control_pack_str(pk, "measures");
        if (have) {
            snprintf(buf, sizeof buf, "like for like %d-01..%02d, %u of %u firms", ry, gf.months,
                     gf.compared, gf.members);
            control_pack_str(pk, buf);
        } else {
            msgpack_pack_nil(pk);
        }
        control_pack_str(pk, "coverage");
        if (have) {
            snprintf(buf, sizeof buf, "%u of %u firms reported %d-%02d", gf.reporting, gf.members,
                     ry, gf.months);
            control_pack_str(pk, buf);
        } else {
            msgpack_pack_nil(pk);
        }
        control_pack_str(pk, "firing");
        msgpack_pack_uint8(pk, a && a->firing);
    }
}

void query_cluster(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    int ci = cluster_arg(pk, srv, req, "id", true);
    if (ci < 0)
        return;
    int year, month;
    calendar_month_of(&srv->cal, calendar_now_ms(), &year, &month);
    if (--month == 0) {
        month = 12;
        year--;
    }
    const proto_ctl_arg_t *at = proto_ctl_arg(req, "through");
    if (at && at->kind != PROTO_ARG_NIL) {
        proto_period_t p;
        if (at->kind != PROTO_ARG_STR ||
            proto_period_parse(at->sval.ptr, at->sval.len, &p) != PROTO_OK ||
            p.kind != PROTO_PERIOD_MONTH || p.year <= PROTO_MIN_YEAR) {
            control_reply_error(pk, "through: expected a month, YYYY-MM");
            return;
        }
        year = p.year;
        month = p.index;
    }
    const config_cluster_t *cl = &cfg->clusters[ci];
    int64_t line_milli = agg_to_milli(cfg->above_scale_line);
    size_t nrows = 1 + cl->nchains + 1 + TIER_COUNT; /* cluster, chains, no chain, tiers */
    ytd_row_t *rows = xcalloc(nrows, sizeof *rows);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        const firm_t *firm = &srv->reg->firms[f];
        if (firm->cluster != ci)
            continue;
        size_t chain_row = firm->chain >= 0 ? 1 + (size_t)firm->chain : 1 + cl->nchains;
        size_t idx[3] = {0, chain_row, 2 + cl->nchains + (size_t)firm->tier};
        for (int k = 0; k < 3; k++)
            ytd_add(&rows[idx[k]], srv, (int)f, year, month);
    }
    const ytd_row_t *unchained = &rows[1 + cl->nchains];
    bool has_unchained = unchained->firms > 0;
    for (size_t m = 0; m < cfg->nmetrics && !has_unchained; m++)
        has_unchained = unchained->prev_n[m] > 0; /* a former member's last year */

    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 10);
    pack_targets(srv, pk, ci, year, month);
    control_pack_kv_str(pk, "id", cl->id);
    control_pack_kv_str(pk, "title", cl->title);
    control_pack_str(pk, "year");
    msgpack_pack_int(pk, year);
    control_pack_str(pk, "through");
    msgpack_pack_int(pk, month);
    control_pack_kv_str(pk, "timezone", cfg->timezone);
    control_pack_kv_str(pk, "revenue_metric", cfg->revenue_metric);
    control_pack_kv_i64(pk, "above_scale_line_milli", line_milli);
    control_pack_str(pk, "units");
    size_t nperiod = 0;
    for (size_t m = 0; m < cfg->nmetrics; m++)
        nperiod += cfg->metrics[m].kind == METRIC_PERIOD;
    msgpack_pack_map(pk, nperiod);
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        if (cfg->metrics[m].kind != METRIC_PERIOD)
            continue;
        control_pack_str(pk, cfg->metrics[m].name);
        control_pack_str(pk, cfg->metrics[m].unit);
    }
    control_pack_str(pk, "rows");
    msgpack_pack_array(pk, 1 + cl->nchains + has_unchained + TIER_COUNT);
    pack_ytd_row(pk, srv, "cluster", cl->id, &rows[0]);
    for (size_t k = 0; k < cl->nchains; k++)
        pack_ytd_row(pk, srv, "chain", cl->chains[k], &rows[1 + k]);
    if (has_unchained)
        pack_ytd_row(pk, srv, "chain", "", &rows[1 + cl->nchains]);
    for (int t = 0; t < TIER_COUNT; t++)
        pack_ytd_row(pk, srv, "tier", registry_tier_name((tier_t)t),
                     &rows[2 + cl->nchains + (size_t)t]);
    free(rows);
}

/*
 * The firms, optionally of one cluster, with the newest data each has sent;
 * with silent, only the firms whose newest data ended more than `days`
 * (default QUERY_SILENT_DAYS) days before as_of (default now; a date
 * YYYY-MM-DD means the end of that day), or that never sent anything.
 * Inactive firms are never silent. With all, former members too (status
 * "left", left_on their date), after the members.
 */
void query_firms(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    int ci = cluster_arg(pk, srv, req, "cluster", false);
    if (ci == -2)
        return;
    int64_t silent_only = 0, days = QUERY_SILENT_DAYS, all = 0;
    if (!int_arg(pk, req, "silent", 0, 1, &silent_only) ||
        !int_arg(pk, req, "days", 1, 36500, &days) || !int_arg(pk, req, "all", 0, 1, &all))
        return;
    size_t nlisted = all ? srv->reg->nall : srv->reg->nfirms;
    int64_t as_of = calendar_now_ms();
    const proto_ctl_arg_t *aa = proto_ctl_arg(req, "as_of");
    if (aa && aa->kind != PROTO_ARG_NIL) {
        int y, mo, d;
        char buf[16], extra;
        if (aa->kind != PROTO_ARG_STR || aa->sval.len >= sizeof buf) {
            control_reply_error(pk, "as_of: expected a date, YYYY-MM-DD");
            return;
        }
        memcpy(buf, aa->sval.ptr, aa->sval.len);
        buf[aa->sval.len] = '\0';
        static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (aa->sval.len != 10 || sscanf(buf, "%4d-%2d-%2d%c", &y, &mo, &d, &extra) != 3 ||
            y < PROTO_MIN_YEAR || y > PROTO_MAX_YEAR || mo < 1 || mo > 12 || d < 1 ||
            d > mdays[mo - 1] ||
            (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
            char why[64];
            snprintf(why, sizeof why, "as_of: '%.12s' is not a date, YYYY-MM-DD", buf);
            control_reply_error(pk, why);
            return;
        }
        as_of = local_ms(y, mo, d + 1);
    }
    size_t n = 0;
    for (size_t f = 0; f < nlisted; f++) {
        if (ci >= 0 && srv->reg->firms[f].cluster != ci)
            continue;
        char label[32];
        if (!silent_only || firm_silent(srv, (int)f, as_of, days, NULL, label, sizeof label))
            n++;
    }
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 5);
    control_pack_kv_str(pk, "timezone", cfg->timezone);
    control_pack_kv_i64(pk, "as_of_ms", as_of);
    control_pack_kv_i64(pk, "silent_days", days);
    control_pack_str(pk, "cluster");
    if (ci >= 0)
        control_pack_str(pk, cfg->clusters[ci].id);
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "firms");
    msgpack_pack_array(pk, n);
    for (size_t f = 0; f < nlisted; f++) {
        const firm_t *firm = &srv->reg->firms[f];
        if (ci >= 0 && firm->cluster != ci)
            continue;
        char label[32];
        int64_t last;
        bool silent = firm_silent(srv, (int)f, as_of, days, &last, label, sizeof label);
        if (silent_only && !silent)
            continue;
        const config_cluster_t *cl = &cfg->clusters[firm->cluster];
        bool former = registry_is_former(srv->reg, (int)f);
        msgpack_pack_map(pk, 11);
        control_pack_kv_str(pk, "id", firm->id);
        control_pack_kv_str(pk, "name", firm->name);
        control_pack_kv_str(pk, "cluster", cl->id);
        control_pack_str(pk, "chain");
        if (firm->chain >= 0)
            control_pack_str(pk, cl->chains[firm->chain]);
        else
            msgpack_pack_nil(pk);
        control_pack_kv_str(pk, "tier", registry_tier_name(firm->tier));
        control_pack_kv_str(pk, "status", former ? "left" : firm->inactive ? "inactive" : "active");
        control_pack_str(pk, "left_on");
        if (former) {
            char date[32];
            members_format_date(firm->left_ms, date, sizeof date);
            control_pack_str(pk, date);
        } else {
            msgpack_pack_nil(pk);
        }
        control_pack_str(pk, "last_data");
        if (last)
            control_pack_str(pk, label);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "last_data_ms");
        if (last)
            msgpack_pack_int64(pk, last);
        else
            msgpack_pack_nil(pk);
        control_pack_str(pk, "days_since");
        if (last)
            msgpack_pack_int64(pk, as_of > last ? (as_of - last) / 86400000 : 0);
        else
            msgpack_pack_nil(pk);
        control_pack_kv_bool(pk, "silent", silent);
    }
}

/* What status does not say: sockets and their peers, rates, loop health. */
void query_runtime(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    const config_t *cfg = srv->cfg;
    const metrics_t *m = &srv->metrics;
    const char *endpoints[METRICS_NSOCKS] = {cfg->ingest, cfg->alerts, cfg->control};
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 9);
    control_pack_kv_i64(pk, "pid", (int64_t)getpid());
    control_pack_kv_i64(pk, "started_ms", srv->started_ms);
    control_pack_str(pk, "samples_per_s");
    msgpack_pack_double(pk, metrics_samples_per_s(m));
    control_pack_kv_i64(pk, "loop_lag_ms", metrics_loop_lag_ms(m));
    control_pack_kv_i64(pk, "agents_connected", m->peers[METRICS_SOCK_INGEST].peers);
    control_pack_kv_u64(pk, "agents_known", srv->ingest.streams.count);
    control_pack_str(pk, "sockets");
    msgpack_pack_array(pk, METRICS_NSOCKS + 1);
    for (int i = 0; i < METRICS_NSOCKS; i++) {
        msgpack_pack_map(pk, 5);
        control_pack_kv_str(pk, "name", metrics_sock_name(i));
        control_pack_kv_str(pk, "endpoint", endpoints[i]);
        control_pack_kv_i64(pk, "peers", m->peers[i].peers);
        control_pack_kv_u64(pk, "accepted", m->peers[i].accepted);
        control_pack_kv_u64(pk, "disconnects", m->peers[i].disconnects);
    }
    msgpack_pack_map(pk, 4);
    control_pack_kv_str(pk, "name", "http");
    control_pack_kv_str(pk, "endpoint", srv->http.endpoint);
    control_pack_str(pk, "peers");
    msgpack_pack_uint32(pk, srv->http.nconns);
    control_pack_kv_u64(pk, "accepted", srv->http.accepted);
    control_pack_str(pk, "systemd");
    msgpack_pack_map(pk, 2);
    control_pack_kv_bool(pk, "notify", srv->notify.enabled);
    control_pack_kv_u64(pk, "watchdog_ms", srv->notify.watchdog_usec / 1000);
    control_pack_kv_str(pk, "log_level", cfg->log_level);
}

/* ---- describe ---------------------------------------------------------------- */

static void pack_bool(msgpack_packer *pk, bool b)
{
    if (b)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/*
 * What a client needs to talk to this daemon without reading its config:
 * the protocol versions and request limit, the metrics (kind, unit), the
 * clusters the caller may see, the firms it may report for, and the
 * commands it may run with their arguments. Under CURVE everything is
 * narrowed to the caller's key; without CURVE nothing is.
 */
void query_describe(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    const config_t *cfg = srv->cfg;
    const registry_t *reg = srv->reg;
    const access_key_t *k = srv->curve ? srv->control.caller : NULL;
    /* dispatch admitted the caller, so under CURVE k is set */
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 7);

    control_pack_str(pk, "protocol");
    msgpack_pack_map(pk, 3);
    control_pack_kv_u64(pk, "min_version", PROTO_VERSION_MIN);
    control_pack_kv_u64(pk, "max_version", PROTO_VERSION);
    control_pack_kv_u64(pk, "max_request_bytes", CONTROL_MAX_REQUEST);

    control_pack_str(pk, "key");
    if (k) {
        char roles[64];
        msgpack_pack_map(pk, 2);
        control_pack_kv_str(pk, "name", k->name);
        control_pack_kv_str(pk, "roles", keys_roles_name(k->roles, roles, sizeof roles));
    } else {
        msgpack_pack_nil(pk);
    }
    control_pack_kv_str(pk, "timezone", cfg->timezone);

    control_pack_str(pk, "metrics");
    msgpack_pack_array(pk, cfg->nmetrics);
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        msgpack_pack_map(pk, 3);
        control_pack_kv_str(pk, "name", cfg->metrics[m].name);
        control_pack_kv_str(pk, "kind",
                            cfg->metrics[m].kind == METRIC_PERIOD ? "period" : "reading");
        control_pack_str(pk, "unit");
        if (cfg->metrics[m].unit && *cfg->metrics[m].unit)
            control_pack_str(pk, cfg->metrics[m].unit);
        else
            msgpack_pack_nil(pk);
    }

    size_t n = 0;
    for (size_t ci = 0; ci < cfg->nclusters; ci++)
        n += !k || keys_may_see(k, (int)ci);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, n);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        if (k && !keys_may_see(k, (int)ci))
            continue;
        msgpack_pack_map(pk, 3);
        control_pack_kv_str(pk, "id", cl->id);
        control_pack_kv_str(pk, "title", cl->title);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t c = 0; c < cl->nchains; c++)
            control_pack_str(pk, cl->chains[c]);
    }

    n = 0;
    for (size_t f = 0; f < reg->nfirms; f++)
        n += !k || keys_may_report(k, reg, (int)f);
    control_pack_str(pk, "firms");
    msgpack_pack_array(pk, n);
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *firm = &reg->firms[f];
        if (k && !keys_may_report(k, reg, (int)f))
            continue;
        const config_cluster_t *cl = &cfg->clusters[firm->cluster];
        msgpack_pack_map(pk, 3);
        control_pack_kv_str(pk, "id", firm->id);
        control_pack_kv_str(pk, "cluster", cl->id);
        control_pack_str(pk, "chain");
        if (firm->chain >= 0)
            control_pack_str(pk, cl->chains[firm->chain]);
        else
            msgpack_pack_nil(pk);
    }

    n = 0;
    unsigned need;
    for (size_t i = 0; control_command(i, &need, NULL); i++)
        n += !k || (k->roles & need);
    control_pack_str(pk, "commands");
    msgpack_pack_array(pk, n);
    const char *name;
    const control_arg_t *args;
    for (size_t i = 0; (name = control_command(i, &need, &args)) != NULL; i++) {
        if (k && !(k->roles & need))
            continue;
        size_t nargs = 0;
        while (args[nargs].name)
            nargs++;
        msgpack_pack_map(pk, 2);
        control_pack_kv_str(pk, "name", name);
        control_pack_str(pk, "args");
        msgpack_pack_array(pk, nargs);
        for (size_t a = 0; a < nargs; a++) {
            msgpack_pack_map(pk, 3);
            control_pack_kv_str(pk, "name", args[a].name);
            control_pack_kv_str(pk, "type", args[a].kind == PROTO_ARG_INT ? "int" : "str");
            control_pack_str(pk, "required");
            pack_bool(pk, args[a].required);
        }
    }
}
