/*
 * query.c -- the read-only figures the control socket answers with: the
 * yearly report and one metric's totals per cluster and chain. Computed on
 * demand from the firm figures in the aggregate (a walk over the firms).
 */
#include "daemon/query.h"

#include <stdio.h>
#include <string.h>

#include "daemon/control.h"
#include "daemon/server.h"

/* Sums for one cluster or chain. __int128 (a GNU extension) because a sum of
 * many firm-years of milli-units can pass int64 even though no single
 * firm-year can; a total that does not fit int64 is reported as nil. */
typedef struct {
    uint32_t firms, reporting, above_scale;
    __int128 revenue, profit;
    __int128 total;   /* the totals command's one metric */
} tally_t;

static void pack_milli(msgpack_packer *pk, __int128 v)
{
    if (v > INT64_MAX || v < INT64_MIN)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_int64(pk, (int64_t)v);
}

static void pack_tally(msgpack_packer *pk, const tally_t *t, bool has_profit)
{
    control_pack_str(pk, "firms");
    msgpack_pack_uint32(pk, t->firms);
    control_pack_str(pk, "reporting");
    msgpack_pack_uint32(pk, t->reporting);
    control_pack_str(pk, "above_scale");
    msgpack_pack_uint32(pk, t->above_scale);
    control_pack_str(pk, "revenue_milli");
    pack_milli(pk, t->revenue);
    control_pack_str(pk, "profit_milli");
    if (has_profit)
        pack_milli(pk, t->profit);
    else
        msgpack_pack_nil(pk);
}

static void tally_firm(tally_t *t, const server_t *srv, int firm, int year, int64_t line_milli)
{
    const config_t *cfg = srv->cfg;
    proto_period_t py = {.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    int64_t rev = 0, profit = 0;
    t->firms++;
    if (agg_firm_reported(srv->agg, firm, year))
        t->reporting++;
    if (agg_firm_total(srv->agg, firm, cfg->revenue_idx, py, &rev) && rev >= line_milli)
        t->above_scale++;
    t->revenue += rev;
    if (cfg->profit_idx >= 0 && agg_firm_total(srv->agg, firm, cfg->profit_idx, py, &profit))
        t->profit += profit;
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

    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 6);
    control_pack_str(pk, "year");
    msgpack_pack_int(pk, year);
    control_pack_str(pk, "timezone");
    control_pack_str(pk, cfg->timezone);
    control_pack_str(pk, "revenue_metric");
    control_pack_str(pk, cfg->revenue_metric);
    control_pack_str(pk, "profit_metric");
    if (has_profit)
        control_pack_str(pk, cfg->profit_metric);
    else
        msgpack_pack_nil(pk);
    control_pack_str(pk, "above_scale_line_milli");
    msgpack_pack_int64(pk, line_milli);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, cfg->nclusters);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        tally_t total = {0};
        tally_t chains[CONFIG_MAX_CHAINS] = {{0}};
        for (size_t f = 0; f < srv->reg->nfirms; f++) {
            const firm_t *firm = &srv->reg->firms[f];
            if (firm->cluster != (int)ci)
                continue;
            tally_firm(&total, srv, (int)f, year, line_milli);
            if (firm->chain >= 0)
                tally_firm(&chains[firm->chain], srv, (int)f, year, line_milli);
        }
        msgpack_pack_map(pk, 8);
        control_pack_str(pk, "id");
        control_pack_str(pk, cl->id);
        control_pack_str(pk, "title");
        control_pack_str(pk, cl->title);
        pack_tally(pk, &total, has_profit);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 6);
            control_pack_str(pk, "id");
            control_pack_str(pk, cl->chains[k]);
            pack_tally(pk, &chains[k], has_profit);
        }
    }
}

/* One metric over one period, per cluster and chain: firms, how many of them
 * reported for the period, and the total. */
void query_totals(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    const config_t *cfg = srv->cfg;
    const proto_ctl_arg_t *am = proto_ctl_arg(req, "metric");
    const proto_ctl_arg_t *ap = proto_ctl_arg(req, "period");
    int metric = am && am->kind == PROTO_ARG_STR ? config_metric_find(cfg, am->sval.ptr, am->sval.len)
                                                : -1;
    proto_period_t period;
    if (metric < 0 || cfg->metrics[metric].kind != METRIC_PERIOD) {
        control_reply_error(pk, "metric: expected the name of a period metric");
        return;
    }
    if (!ap || ap->kind != PROTO_ARG_STR ||
        proto_period_parse(ap->sval.ptr, ap->sval.len, &period) != PROTO_OK) {
        control_reply_error(pk, "period: expected YYYY, YYYY-Qn or YYYY-MM");
        return;
    }
    char pbuf[PROTO_PERIOD_STRLEN];
    proto_period_format(period, pbuf, sizeof pbuf);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    control_pack_str(pk, "metric");
    control_pack_str(pk, cfg->metrics[metric].name);
    control_pack_str(pk, "unit");
    control_pack_str(pk, cfg->metrics[metric].unit);
    control_pack_str(pk, "period");
    control_pack_str(pk, pbuf);
    control_pack_str(pk, "clusters");
    msgpack_pack_array(pk, cfg->nclusters);
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        tally_t total = {0}, chains[CONFIG_MAX_CHAINS] = {{0}};
        for (size_t f = 0; f < srv->reg->nfirms; f++) {
            const firm_t *firm = &srv->reg->firms[f];
            if (firm->cluster != (int)ci)
                continue;
            int64_t v;
            bool has = agg_firm_total(srv->agg, (int)f, metric, period, &v);
            tally_t *ts[2] = {&total, firm->chain >= 0 ? &chains[firm->chain] : NULL};
            for (int k = 0; k < 2 && ts[k]; k++) {
                ts[k]->firms++;
                ts[k]->reporting += has;
                ts[k]->total += v;
            }
        }
        msgpack_pack_map(pk, 6);
        control_pack_str(pk, "id");
        control_pack_str(pk, cl->id);
        control_pack_str(pk, "firms");
        msgpack_pack_uint32(pk, total.firms);
        control_pack_str(pk, "reporting");
        msgpack_pack_uint32(pk, total.reporting);
        control_pack_str(pk, "total_milli");
        pack_milli(pk, total.total);
        control_pack_str(pk, "title");
        control_pack_str(pk, cl->title);
        control_pack_str(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 4);
            control_pack_str(pk, "id");
            control_pack_str(pk, cl->chains[k]);
            control_pack_str(pk, "firms");
            msgpack_pack_uint32(pk, chains[k].firms);
            control_pack_str(pk, "reporting");
            msgpack_pack_uint32(pk, chains[k].reporting);
            control_pack_str(pk, "total_milli");
            pack_milli(pk, chains[k].total);
        }
    }
}

