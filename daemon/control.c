/* control.c -- see control.h. */
#include "daemon/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "daemon/envelope.h"
#include "daemon/log.h"
#include "daemon/server.h"

/* Sums for one cluster or chain. __int128 (a GNU extension) because a sum of
 * many firm-years of milli-units can pass int64 even though no single
 * firm-year can; a total that does not fit int64 is reported as nil. */
typedef struct {
    uint32_t firms, reporting, above_scale;
    __int128 revenue, profit;
    __int128 total;   /* the totals command's one metric */
} tally_t;

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_milli(msgpack_packer *pk, __int128 v)
{
    if (v > INT64_MAX || v < INT64_MIN)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_int64(pk, (int64_t)v);
}

static void pack_tally(msgpack_packer *pk, const tally_t *t, bool has_profit)
{
    pack_cstr(pk, "firms");
    msgpack_pack_uint32(pk, t->firms);
    pack_cstr(pk, "reporting");
    msgpack_pack_uint32(pk, t->reporting);
    pack_cstr(pk, "above_scale");
    msgpack_pack_uint32(pk, t->above_scale);
    pack_cstr(pk, "revenue_milli");
    pack_milli(pk, t->revenue);
    pack_cstr(pk, "profit_milli");
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

static void cmd_report(control_t *c, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    server_t *srv = c->srv;
    const config_t *cfg = srv->cfg;
    int year, month;
    calendar_month_of(&srv->cal, calendar_now_ms(), &year, &month);
    const proto_ctl_arg_t *ay = proto_ctl_arg(req, "year");
    if (ay && ay->kind == PROTO_ARG_INT) {
        if (ay->ival < PROTO_MIN_YEAR || ay->ival > PROTO_MAX_YEAR) {
            proto_ctl_reply_begin(pk, false, "year: out of range");
            msgpack_pack_nil(pk);
            return;
        }
        year = (int)ay->ival;
    } else if (ay && ay->kind != PROTO_ARG_NIL) {
        proto_ctl_reply_begin(pk, false, "year: expected an integer");
        msgpack_pack_nil(pk);
        return;
    }
    int64_t line_milli = agg_to_milli(cfg->above_scale_line);
    bool has_profit = cfg->profit_idx >= 0;

    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 6);
    pack_cstr(pk, "year");
    msgpack_pack_int(pk, year);
    pack_cstr(pk, "timezone");
    pack_cstr(pk, cfg->timezone);
    pack_cstr(pk, "revenue_metric");
    pack_cstr(pk, cfg->revenue_metric);
    pack_cstr(pk, "profit_metric");
    if (has_profit)
        pack_cstr(pk, cfg->profit_metric);
    else
        msgpack_pack_nil(pk);
    pack_cstr(pk, "above_scale_line_milli");
    msgpack_pack_int64(pk, line_milli);
    pack_cstr(pk, "clusters");
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
        pack_cstr(pk, "id");
        pack_cstr(pk, cl->id);
        pack_cstr(pk, "title");
        pack_cstr(pk, cl->title);
        pack_tally(pk, &total, has_profit);
        pack_cstr(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 6);
            pack_cstr(pk, "id");
            pack_cstr(pk, cl->chains[k]);
            pack_tally(pk, &chains[k], has_profit);
        }
    }
}

/* One metric over one period, per cluster and chain: firms, how many of them
 * reported for the period, and the total. */
static void cmd_totals(control_t *c, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    server_t *srv = c->srv;
    const config_t *cfg = srv->cfg;
    const proto_ctl_arg_t *am = proto_ctl_arg(req, "metric");
    const proto_ctl_arg_t *ap = proto_ctl_arg(req, "period");
    int metric = am && am->kind == PROTO_ARG_STR ? config_metric_find(cfg, am->sval.ptr, am->sval.len)
                                                : -1;
    proto_period_t period;
    if (metric < 0 || cfg->metrics[metric].kind != METRIC_PERIOD) {
        proto_ctl_reply_begin(pk, false, "metric: expected the name of a period metric");
        msgpack_pack_nil(pk);
        return;
    }
    if (!ap || ap->kind != PROTO_ARG_STR ||
        proto_period_parse(ap->sval.ptr, ap->sval.len, &period) != PROTO_OK) {
        proto_ctl_reply_begin(pk, false, "period: expected YYYY, YYYY-Qn or YYYY-MM");
        msgpack_pack_nil(pk);
        return;
    }
    char pbuf[PROTO_PERIOD_STRLEN];
    proto_period_format(period, pbuf, sizeof pbuf);
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "metric");
    pack_cstr(pk, cfg->metrics[metric].name);
    pack_cstr(pk, "unit");
    pack_cstr(pk, cfg->metrics[metric].unit);
    pack_cstr(pk, "period");
    pack_cstr(pk, pbuf);
    pack_cstr(pk, "clusters");
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
        pack_cstr(pk, "id");
        pack_cstr(pk, cl->id);
        pack_cstr(pk, "firms");
        msgpack_pack_uint32(pk, total.firms);
        pack_cstr(pk, "reporting");
        msgpack_pack_uint32(pk, total.reporting);
        pack_cstr(pk, "total_milli");
        pack_milli(pk, total.total);
        pack_cstr(pk, "title");
        pack_cstr(pk, cl->title);
        pack_cstr(pk, "chains");
        msgpack_pack_array(pk, cl->nchains);
        for (size_t k = 0; k < cl->nchains; k++) {
            msgpack_pack_map(pk, 4);
            pack_cstr(pk, "id");
            pack_cstr(pk, cl->chains[k]);
            pack_cstr(pk, "firms");
            msgpack_pack_uint32(pk, chains[k].firms);
            pack_cstr(pk, "reporting");
            msgpack_pack_uint32(pk, chains[k].reporting);
            pack_cstr(pk, "total_milli");
            pack_milli(pk, chains[k].total);
        }
    }
}

static void cmd_status(control_t *c, msgpack_packer *pk)
{
    server_t *srv = c->srv;
    const server_stats_t *st = &srv->stats;
    const wal_t *w = &srv->wal;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 16);
    pack_cstr(pk, "wal");
    msgpack_pack_map(pk, 8);
    pack_cstr(pk, "fsync");
    pack_cstr(pk, srv->cfg->fsync);
    pack_cstr(pk, "segment");
    msgpack_pack_uint64(pk, w->segment);
    pack_cstr(pk, "appends");
    msgpack_pack_uint64(pk, w->appends);
    pack_cstr(pk, "bytes_written");
    msgpack_pack_uint64(pk, w->bytes_written);
    pack_cstr(pk, "unsynced_bytes");
    msgpack_pack_uint64(pk, w->pos - w->synced);
    pack_cstr(pk, "fsyncs");
    msgpack_pack_uint64(pk, w->fsyncs);
    pack_cstr(pk, "fsync_avg_us");
    msgpack_pack_uint64(pk, w->fsyncs ? w->fsync_ns_total / w->fsyncs / 1000 : 0);
    pack_cstr(pk, "fsync_max_us");
    msgpack_pack_uint64(pk, w->fsync_ns_max / 1000);
    pack_cstr(pk, "snapshots");
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "written");
    msgpack_pack_uint64(pk, srv->snap.written);
    pack_cstr(pk, "failed");
    msgpack_pack_uint64(pk, srv->snap.failed);
    pack_cstr(pk, "last_segment");
    msgpack_pack_uint64(pk, srv->snap.last_segment);
    pack_cstr(pk, "last_bytes");
    msgpack_pack_uint64(pk, srv->snap.last_bytes);
    pack_cstr(pk, "recovery");
    msgpack_pack_map(pk, 6);
    pack_cstr(pk, "snapshot_segment");
    msgpack_pack_uint64(pk, srv->recovery.snapshot_segment);
    pack_cstr(pk, "wal_records");
    msgpack_pack_uint64(pk, srv->recovery.wal.records);
    pack_cstr(pk, "wal_damaged");
    msgpack_pack_uint64(pk, srv->recovery.wal.damaged);
    pack_cstr(pk, "wal_bytes_skipped");
    msgpack_pack_uint64(pk, srv->recovery.wal.bytes_skipped);
    pack_cstr(pk, "wal_truncated");
    msgpack_pack_uint64(pk, srv->recovery.wal.truncated);
    pack_cstr(pk, "ready_ms");
    msgpack_pack_int64(pk, srv->recovery.ready_ms);
    pack_cstr(pk, "replay_skipped");
    msgpack_pack_uint64(pk, srv->ingest.replay_skipped);
    pack_cstr(pk, "version");
    pack_cstr(pk, CLUSTERMON_VERSION);
    pack_cstr(pk, "uptime_ms");
    msgpack_pack_int64(pk, calendar_now_ms() - srv->started_ms);
    pack_cstr(pk, "firms");
    msgpack_pack_uint64(pk, srv->reg->nfirms);
    pack_cstr(pk, "clusters");
    msgpack_pack_uint64(pk, srv->cfg->nclusters);
    pack_cstr(pk, "rules");
    msgpack_pack_uint64(pk, srv->cfg->nrules);
    pack_cstr(pk, "samples_applied");
    msgpack_pack_uint64(pk, st->samples_applied);
    pack_cstr(pk, "batches_ok");
    msgpack_pack_uint64(pk, st->batches_ok);
    pack_cstr(pk, "batches_duplicate");
    msgpack_pack_uint64(pk, st->batches_duplicate);
    pack_cstr(pk, "bad_envelopes");
    msgpack_pack_uint64(pk, st->bad_envelopes);
    pack_cstr(pk, "nacks");
    msgpack_pack_map(pk, PROTO_STATUS_COUNT - 1);
    for (int s = 1; s < PROTO_STATUS_COUNT; s++) {
        pack_cstr(pk, proto_status_name((proto_status_t)s));
        msgpack_pack_uint64(pk, st->nacks[s]);
    }
    pack_cstr(pk, "alerts_published");
    msgpack_pack_uint64(pk, srv->alerts.published);
    pack_cstr(pk, "alerts_firing");
    msgpack_pack_uint64(pk, srv->rules.firing);
}

static void dispatch(control_t *c, envelope_t *env, msgpack_packer *pk)
{
    char err[PROTO_ERRLEN];
    proto_ctl_request_t req;
    if (!env->well_formed) {
        proto_ctl_reply_begin(pk, false, "expected [request] from a DEALER or [\"\"][request] from a REQ");
        msgpack_pack_nil(pk);
        return;
    }
    if (proto_ctl_request_decode(envelope_data(env), envelope_size(env), &req, err, sizeof err) !=
        PROTO_OK) {
        proto_ctl_reply_begin(pk, false, err);
        msgpack_pack_nil(pk);
        return;
    }
    if (proto_str_eq(req.cmd, "report")) {
        cmd_report(c, pk, &req);
    } else if (proto_str_eq(req.cmd, "totals")) {
        cmd_totals(c, pk, &req);
    } else if (proto_str_eq(req.cmd, "status")) {
        cmd_status(c, pk);
    } else if (proto_str_eq(req.cmd, "ping")) {
        proto_ctl_reply_begin(pk, true, "");
        pack_cstr(pk, "pong");
    } else {
        char reason[PROTO_MAX_ID_LEN + 96];
        snprintf(reason, sizeof reason, "unknown command '%.*s' (known: ping, report, status, totals)",
                 (int)(req.cmd.len > PROTO_MAX_ID_LEN ? PROTO_MAX_ID_LEN : req.cmd.len),
                 req.cmd.ptr);
        proto_ctl_reply_begin(pk, false, reason);
        msgpack_pack_nil(pk);
    }
}

static bool on_message(zpoll_t *zp)
{
    control_t *c = zp->data;
    envelope_t env;
    if (envelope_recv(c->sock, &env) <= 0)
        return false;
    c->requests++;
    msgpack_sbuffer_clear(&c->out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->out, msgpack_sbuffer_write);
    dispatch(c, &env, &pk);
    if (envelope_reply(c->sock, &env, c->out.data, c->out.size) != 0 && errno != EHOSTUNREACH) {
        c->errors++;
        log_warn("control: reply not sent");
    }
    envelope_close(&env);
    return true;
}

int control_start(control_t *c, struct server *srv, const char *endpoint, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->srv = srv;
    msgpack_sbuffer_init(&c->out);
    c->sock = zmq_socket(srv->zctx, ZMQ_ROUTER);
    if (!c->sock) {
        snprintf(err, errlen, "control: zmq_socket(ROUTER): %s", zmq_strerror(errno));
        return -1;
    }
    int linger = 0;
    int64_t maxmsg = 64 * 1024; /* requests are small */
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(c->sock, endpoint) != 0) {
        snprintf(err, errlen, "control: cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    int rc = zpoll_start(&srv->loop, &c->zp, c->sock, on_message, c);
    if (rc < 0) {
        snprintf(err, errlen, "control: cannot watch the socket: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void zp_closed(zpoll_t *zp)
{
    control_t *c = zp->data;
    if (c->sock)
        zmq_close(c->sock);
    c->sock = NULL;
    msgpack_sbuffer_destroy(&c->out);
    if (c->on_closed)
        c->on_closed(c->srv);
}

void control_close(control_t *c, void (*on_closed)(struct server *))
{
    c->on_closed = on_closed;
    c->zp.data = c;
    zpoll_close(&c->zp, zp_closed);
}
