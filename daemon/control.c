/* control.c -- see control.h. */
#include "daemon/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "daemon/alertctl.h"
#include "daemon/envelope.h"
#include "daemon/log.h"
#include "daemon/query.h"
#include "daemon/reload.h"
#include "daemon/server.h"

void control_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void control_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    control_pack_str(pk, key);
    msgpack_pack_uint64(pk, v);
}

void control_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t v)
{
    control_pack_str(pk, key);
    msgpack_pack_int64(pk, v);
}

void control_pack_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
    control_pack_str(pk, key);
    control_pack_str(pk, v);
}

void control_reply_error(msgpack_packer *pk, const char *reason)
{
    proto_ctl_reply_begin(pk, false, reason);
    msgpack_pack_nil(pk);
}

/* {"setting": "daemon.http", "running": ..., "configured": ...} for each
 * setting the last good reload could not apply */
static void pack_pending(msgpack_packer *pk, const reload_status_t *rs)
{
    msgpack_pack_array(pk, rs->npending);
    for (size_t i = 0; i < rs->npending; i++) {
        msgpack_pack_map(pk, 3);
        control_pack_kv_str(pk, "setting", rs->pending[i].setting);
        control_pack_kv_str(pk, "running", rs->pending[i].running);
        control_pack_kv_str(pk, "configured", rs->pending[i].configured);
    }
}

static void cmd_reload(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    char err[CONFIG_ERRLEN], reason[CONFIG_ERRLEN + 64];
    (void)req;
    if (reload_run(srv, err, sizeof err) != 0) {
        snprintf(reason, sizeof reason, "rejected, still running on the previous config: %s",
                 err);
        control_reply_error(pk, reason);
        return;
    }
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 4);
    control_pack_kv_u64(pk, "firms", srv->reg->nfirms);
    control_pack_kv_u64(pk, "rules", srv->cfg->nrules);
    control_pack_kv_u64(pk, "reloads", srv->reloads);
    control_pack_str(pk, "restart_needed");
    pack_pending(pk, &srv->reload);
}

static void cmd_ping(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)srv;
    (void)req;
    proto_ctl_reply_begin(pk, true, "");
    control_pack_str(pk, "pong");
}

static void cmd_status(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    const server_stats_t *st = &srv->stats;
    const wal_t *w = &srv->wal;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 18);
    const reload_status_t *rl = &srv->reload;
    control_pack_str(pk, "reload");
    msgpack_pack_map(pk, 6);
    control_pack_str(pk, "last_ok");
    if (rl->last_ok)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    control_pack_kv_i64(pk, "last_success_ms", rl->last_success_ms);
    control_pack_kv_u64(pk, "ok", srv->reloads);
    control_pack_kv_u64(pk, "failed", rl->failed);
    control_pack_kv_str(pk, "last_error", rl->last_error);
    control_pack_str(pk, "restart_needed");
    pack_pending(pk, rl);
    control_pack_str(pk, "security");
    msgpack_pack_map(pk, 8);
    control_pack_str(pk, "curve");
    if (srv->curve)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    control_pack_kv_u64(pk, "keys", srv->keys ? srv->keys->nkeys : 0);
    control_pack_kv_u64(pk, "connections_admitted", srv->zap.admitted);
    control_pack_kv_u64(pk, "connections_refused", srv->zap.refused);
    control_pack_kv_u64(pk, "handshakes_failed", metrics_handshakes_failed(&srv->metrics));
    control_pack_kv_u64(pk, "commands_denied", srv->control.denied);
    control_pack_kv_u64(pk, "subscriptions_admitted", srv->alerts.subs_admitted);
    control_pack_kv_u64(pk, "subscriptions_refused", srv->alerts.subs_refused);
    control_pack_str(pk, "wal");
    msgpack_pack_map(pk, 11);
    control_pack_kv_str(pk, "fsync", srv->cfg->fsync);
    control_pack_kv_u64(pk, "segment", w->segment);
    control_pack_kv_u64(pk, "appends", w->appends);
    control_pack_kv_u64(pk, "bytes_written", w->bytes_written);
    control_pack_kv_u64(pk, "unsynced_bytes", w->pos - w->synced);
    control_pack_kv_u64(pk, "fsyncs", w->fsyncs);
    control_pack_kv_u64(pk, "fsync_avg_us", w->fsyncs ? w->fsync_ns_total / w->fsyncs / 1000 : 0);
    control_pack_kv_u64(pk, "fsync_max_us", w->fsync_ns_max / 1000);
    control_pack_kv_u64(pk, "append_failed", w->append_failed);
    control_pack_str(pk, "disk_full");
    if (w->full)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    control_pack_kv_u64(pk, "reserve_bytes", w->reserve_bytes);
    control_pack_str(pk, "snapshots");
    msgpack_pack_map(pk, 4);
    control_pack_kv_u64(pk, "written", srv->snap.written);
    control_pack_kv_u64(pk, "failed", srv->snap.failed);
    control_pack_kv_u64(pk, "last_segment", srv->snap.last_segment);
    control_pack_kv_u64(pk, "last_bytes", srv->snap.last_bytes);
    control_pack_str(pk, "recovery");
    msgpack_pack_map(pk, 9);
    control_pack_kv_u64(pk, "snapshot_segment", srv->recovery.snapshot_segment);
    control_pack_kv_u64(pk, "snapshots_damaged", srv->recovery.snapshots_damaged);
    control_pack_kv_u64(pk, "wal_headers_damaged", srv->recovery.wal.headers_damaged);
    control_pack_kv_u64(pk, "wal_segments_missing", srv->recovery.wal.missing);
    control_pack_kv_u64(pk, "wal_records", srv->recovery.wal.records);
    control_pack_kv_u64(pk, "wal_damaged", srv->recovery.wal.damaged);
    control_pack_kv_u64(pk, "wal_bytes_skipped", srv->recovery.wal.bytes_skipped);
    control_pack_kv_u64(pk, "wal_truncated", srv->recovery.wal.truncated);
    control_pack_kv_i64(pk, "ready_ms", srv->recovery.ready_ms);
    control_pack_kv_u64(pk, "replay_skipped", srv->ingest.replay_skipped);
    control_pack_kv_str(pk, "version", CLUSTERMON_VERSION);
    control_pack_kv_i64(pk, "uptime_ms", calendar_now_ms() - srv->started_ms);
    control_pack_kv_u64(pk, "firms", srv->reg->nfirms);
    control_pack_kv_u64(pk, "clusters", srv->cfg->nclusters);
    control_pack_kv_u64(pk, "rules", srv->cfg->nrules);
    control_pack_kv_u64(pk, "samples_applied", st->samples_applied);
    control_pack_kv_u64(pk, "batches_ok", st->batches_ok);
    control_pack_kv_u64(pk, "batches_duplicate", st->batches_duplicate);
    control_pack_kv_u64(pk, "bad_envelopes", st->bad_envelopes);
    control_pack_str(pk, "nacks");
    msgpack_pack_map(pk, PROTO_STATUS_COUNT - 1);
    for (int s = 1; s < PROTO_STATUS_COUNT; s++) {
        control_pack_str(pk, proto_status_name((proto_status_t)s));
        msgpack_pack_uint64(pk, st->nacks[s]);
    }
    control_pack_kv_u64(pk, "alerts_published", srv->alerts.published);
    control_pack_kv_u64(pk, "alerts_firing", srv->book.firing);
}

/* Every command the control socket knows; handlers live with the module
 * whose state they read or change. With CURVE, need says which keys may run
 * it: a subscriber key only what clustermon-sub needs, a viewer key every
 * query, an admin key also what changes state. */
static const struct {
    const char *name;
    control_handler_t handler;
    unsigned need; /* KEY_ROLE_* that may run it */
} commands[] = {
#define ANY (KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)
#define READ (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)
#define ADMIN KEY_ROLE_ADMIN
    {"ping", cmd_ping, ANY},
    {"reload", cmd_reload, ADMIN},
    {"status", cmd_status, READ},
    {"report", query_report, READ},
    {"totals", query_totals, READ},
    {"clusters", query_clusters, READ},
    {"cluster", query_cluster, READ},
    {"firms", query_firms, READ},
    {"runtime", query_runtime, READ},
    {"alerts", alertctl_alerts, ANY}, /* filtered to the clusters the key may see */
    {"silence_add", alertctl_silence_add, ADMIN},
    {"silence_list", alertctl_silence_list, READ},
    {"silence_rm", alertctl_silence_rm, ADMIN},
#undef ANY
#undef READ
#undef ADMIN
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void dispatch(control_t *c, envelope_t *env, msgpack_packer *pk)
{
    char err[PROTO_ERRLEN];
    proto_ctl_request_t req;
    if (!env->well_formed) {
        control_reply_error(pk, "expected [request] from a DEALER or [\"\"][request] from a REQ");
        return;
    }
    if (proto_ctl_request_decode(envelope_data(env), envelope_size(env), &req, err, sizeof err) !=
        PROTO_OK) {
        control_reply_error(pk, err);
        return;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!proto_str_eq(req.cmd, commands[i].name))
            continue;
        if (c->srv->curve && !(c->caller && (c->caller->roles & commands[i].need))) {
            char reason[256], have[64];
            c->denied++;
            if (c->caller)
                snprintf(reason, sizeof reason, "permission denied: '%s' needs %s key; key '%s' "
                         "is %s", commands[i].name,
                         commands[i].need == KEY_ROLE_ADMIN ? "an admin" : "a viewer or admin",
                         c->caller->name, keys_roles_name(c->caller->roles, have, sizeof have));
            else
                snprintf(reason, sizeof reason, "permission denied: '%s': the connection's key "
                         "was revoked by a reload", commands[i].name);
            if (log_throttle(&c->log, (int64_t)uv_now(&c->srv->loop), 5, "control",
                             "denied commands"))
                log_warnx("control: %s", reason);
            control_reply_error(pk, reason);
            return;
        }
        commands[i].handler(c->srv, pk, &req);
        return;
    }
    char reason[512];
    size_t off = (size_t)snprintf(reason, sizeof reason, "unknown command '%.*s' (known:",
                                  (int)(req.cmd.len > PROTO_MAX_ID_LEN ? PROTO_MAX_ID_LEN : req.cmd.len),
                                  req.cmd.ptr);
    for (size_t i = 0; i < NCOMMANDS && off < sizeof reason; i++)
        off += (size_t)snprintf(reason + off, sizeof reason - off, "%s %s", i ? "," : "",
                                commands[i].name);
    if (off < sizeof reason)
        snprintf(reason + off, sizeof reason - off, ")");
    control_reply_error(pk, reason);
}

static bool on_message(zpoll_t *zp)
{
    control_t *c = zp->data;
    envelope_t env;
    if (envelope_recv(c->sock, &env) <= 0)
        return false;
    c->requests++;
    c->caller = NULL;
    if (c->srv->curve && env.well_formed) {
        const char *uid = zmq_msg_gets(&env.body, "User-Id");
        c->caller = uid ? keys_find(c->srv->keys, uid, strlen(uid)) : NULL;
    }
    msgpack_sbuffer_clear(&c->out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->out, msgpack_sbuffer_write);
    dispatch(c, &env, &pk);
    if (envelope_reply(c->sock, &env, c->out.data, c->out.size) != 0 && errno != EHOSTUNREACH) {
        c->errors++;
        log_warn("control: reply not sent");
    }
    c->caller = NULL;
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
    if (server_peer_timeout(c->sock, srv->cfg->peer_timeout, err, errlen) != 0 ||
        server_secure_socket(srv, c->sock, ZAP_DOMAIN_CONTROL, err, errlen) != 0)
        return -1;
    if (zmq_bind(c->sock, endpoint) != 0) {
        snprintf(err, errlen, "control: cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    /* The umask made the socket file the daemon user's only; its group may
     * use clustermonctl too (README "The service"). */
    if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' &&
        chmod(endpoint + 6, 0770) != 0)
        log_warn("control: chmod 0770 %s", endpoint + 6);
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
