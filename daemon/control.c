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
#include "daemon/seed.h"
#include "daemon/series.h"
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

void control_pack_kv_bool(msgpack_packer *pk, const char *key, bool v)
{
    control_pack_str(pk, key);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
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
        snprintf(reason, sizeof reason, "rejected, still running on the previous config: %s", err);
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

/* key: value for a row of metrics.h's counter table. */
static void pack_counter(msgpack_packer *pk, const server_t *srv, const metrics_counter_t *c)
{
    uint64_t v = c->get(srv);
    if (c->kind == METRICS_BOOL)
        control_pack_kv_bool(pk, c->key, v != 0);
    else if (c->kind == METRICS_I64)
        control_pack_kv_i64(pk, c->key, (int64_t)v);
    else
        control_pack_kv_u64(pk, c->key, v);
}

/* The counter table's rows of section, in table order. */
static void pack_section(msgpack_packer *pk, const server_t *srv, const char *section)
{
    const metrics_counter_t *c;
    for (size_t i = 0; (c = metrics_counter(i)) != NULL; i++)
        if (c->section && strcmp(c->section, section) == 0)
            pack_counter(pk, srv, c);
}

/* The top-level row key of the counter table. */
static void pack_top(msgpack_packer *pk, const server_t *srv, const char *key)
{
    const metrics_counter_t *c;
    for (size_t i = 0; (c = metrics_counter(i)) != NULL; i++)
        if (c->section && !*c->section && strcmp(c->key, key) == 0)
            pack_counter(pk, srv, c);
}

/* The counters come from metrics.h's table, which /metrics renders too;
 * what only status shows (strings, lists, the nacks map) is packed here. */
static void cmd_status(server_t *srv, msgpack_packer *pk, const proto_ctl_request_t *req)
{
    (void)req;
    const server_stats_t *st = &srv->stats;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 19);
    control_pack_str(pk, "reload");
    msgpack_pack_map(pk, metrics_counters_in("reload") + 2);
    pack_section(pk, srv, "reload");
    control_pack_kv_str(pk, "last_error", srv->reload.last_error);
    control_pack_str(pk, "restart_needed");
    pack_pending(pk, &srv->reload);
    static const char *const sections[] = {"control", "security", "wal", "snapshots", "recovery"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        bool wal = strcmp(sections[i], "wal") == 0;
        control_pack_str(pk, sections[i]);
        msgpack_pack_map(pk, metrics_counters_in(sections[i]) + wal);
        if (wal)
            control_pack_kv_str(pk, "fsync", srv->cfg->fsync);
        pack_section(pk, srv, sections[i]);
    }
    control_pack_kv_u64(pk, "replay_skipped", srv->ingest.replay_skipped);
    control_pack_kv_str(pk, "version", CLUSTERMON_VERSION);
    control_pack_kv_i64(pk, "uptime_ms", calendar_now_ms() - srv->started_ms);
    control_pack_kv_u64(pk, "firms", srv->reg->nfirms);
    control_pack_kv_u64(pk, "clusters", srv->cfg->nclusters);
    control_pack_kv_u64(pk, "rules", srv->cfg->nrules);
    pack_top(pk, srv, "samples_applied");
    pack_top(pk, srv, "batches_ok");
    pack_top(pk, srv, "batches_duplicate");
    pack_top(pk, srv, "bad_envelopes");
    control_pack_str(pk, "nacks");
    msgpack_pack_map(pk, PROTO_STATUS_COUNT - 1);
    for (int s = 1; s < PROTO_STATUS_COUNT; s++) {
        control_pack_str(pk, proto_status_name((proto_status_t)s));
        msgpack_pack_uint64(pk, st->nacks[s]);
    }
    control_pack_kv_u64(pk, "alerts_published", srv->alerts.published);
    pack_top(pk, srv, "alerts_firing");
}

/* ---- arguments ------------------------------------------------------------ */

static const char *arg_kind_name(unsigned kind)
{
    return kind == PROTO_ARG_INT ? "an integer" : kind == PROTO_ARG_STR ? "a string" : "nil";
}

int control_args_check(const char *cmd, const control_arg_t *spec, const proto_ctl_request_t *req,
                       char *err, size_t errlen)
{
    for (uint32_t i = 0; i < req->nargs && i < PROTO_MAX_CTL_ARGS; i++) {
        const proto_ctl_arg_t *a = &req->args[i];
        const control_arg_t *s = spec;
        while (s->name && !proto_str_eq(a->key, s->name))
            s++;
        int klen = (int)(a->key.len > PROTO_MAX_ID_LEN ? PROTO_MAX_ID_LEN : a->key.len);
        if (!s->name) {
            size_t off =
                (size_t)snprintf(err, errlen, "%.*s: unknown argument for '%s' (%s", klen,
                                 a->key.ptr, cmd, spec->name ? "allowed:" : "it takes none");
            for (const control_arg_t *t = spec; t->name && off < errlen; t++)
                off += (size_t)snprintf(err + off, errlen - off, "%s %s", t == spec ? "" : ",",
                                        t->name);
            if (off < errlen)
                snprintf(err + off, errlen - off, ")");
            return -1;
        }
        if (a->kind != PROTO_ARG_NIL && a->kind != s->kind) {
            snprintf(err, errlen, "%s: expected %s, got %s", s->name, arg_kind_name(s->kind),
                     arg_kind_name(a->kind));
            return -1;
        }
    }
    for (const control_arg_t *s = spec; s->name; s++) {
        const proto_ctl_arg_t *a = proto_ctl_arg(req, s->name);
        if (s->required && (!a || a->kind == PROTO_ARG_NIL)) {
            snprintf(err, errlen, "%s: required by '%s' (%s)", s->name, cmd,
                     arg_kind_name(s->kind));
            return -1;
        }
    }
    return 0;
}

/* Argument lists, one per command that takes any (PROTOCOL.md 4.7 has them too). */
#define INT_OPT(n)                                                                                 \
    {                                                                                              \
        n, PROTO_ARG_INT, false                                                                    \
    }
#define INT_REQ(n)                                                                                 \
    {                                                                                              \
        n, PROTO_ARG_INT, true                                                                     \
    }
#define STR_OPT(n)                                                                                 \
    {                                                                                              \
        n, PROTO_ARG_STR, false                                                                    \
    }
#define STR_REQ(n)                                                                                 \
    {                                                                                              \
        n, PROTO_ARG_STR, true                                                                     \
    }
static const control_arg_t no_args[] = {{NULL, PROTO_ARG_NIL, false}};
static const control_arg_t report_args[] = {INT_OPT("year"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t totals_args[] = {
    STR_REQ("metric"), STR_REQ("period"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t clusters_args[] = {
    INT_OPT("year"), INT_OPT("days"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t cluster_args[] = {
    STR_REQ("id"), STR_OPT("through"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t firms_args[] = {STR_OPT("cluster"), INT_OPT("silent"),
                                           INT_OPT("days"),    STR_OPT("as_of"),
                                           INT_OPT("all"),     {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t silence_add_args[] = {STR_REQ("rule"),   STR_REQ("cluster"),
                                                 STR_OPT("firm"),   STR_REQ("for"),
                                                 STR_REQ("reason"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t silence_rm_args[] = {INT_REQ("id"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t history_args[] = {
    STR_OPT("since"), STR_OPT("until"), STR_OPT("cluster"), STR_OPT("rule"),
    STR_OPT("firm"),  STR_OPT("alert"), INT_OPT("limit"),   {NULL, PROTO_ARG_NIL, false}};
#define SCOPE_ARGS                                                                                 \
    STR_REQ("metric"), STR_OPT("cluster"), STR_OPT("firm"), STR_OPT("chain"), STR_OPT("tier"),     \
        STR_OPT("designation"), STR_OPT("city"), STR_REQ("from"), STR_REQ("to"), STR_OPT("by")
static const control_arg_t series_args[] = {
    SCOPE_ARGS, INT_OPT("yoy"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t ranking_args[] = {
    SCOPE_ARGS, STR_OPT("target"), INT_OPT("limit"), {NULL, PROTO_ARG_NIL, false}};
#undef SCOPE_ARGS
static const control_arg_t ack_args[] = {
    STR_REQ("id"), STR_REQ("note"), {NULL, PROTO_ARG_NIL, false}};
static const control_arg_t seed_read_args[] = {
    STR_REQ("name"), INT_REQ("offset"), {NULL, PROTO_ARG_NIL, false}};
#undef INT_OPT
#undef INT_REQ
#undef STR_OPT
#undef STR_REQ

/* Every command the control socket knows; handlers live with the module
 * whose state they read or change. With CURVE, need says which keys may run
 * it: an agent key only ping and describe, a subscriber key also what
 * clustermon-sub needs, a viewer key every query, an admin key also what
 * changes state. */
static const struct {
    const char *name;
    control_handler_t handler;
    unsigned need; /* KEY_ROLE_* that may run it */
    const control_arg_t *args;
} commands[] = {
#define ALL (KEY_ROLE_AGENT | KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)
#define ANY (KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)
#define READ (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)
#define ADMIN KEY_ROLE_ADMIN
    {"ping", cmd_ping, ALL, no_args},
    {"describe", query_describe, ALL, no_args}, /* scoped to the caller's key */
    {"reload", cmd_reload, ADMIN, no_args},
    {"status", cmd_status, READ, no_args},
    {"report", query_report, READ, report_args},
    {"totals", query_totals, READ, totals_args},
    {"series", series_cmd_series, READ, series_args},
    {"ranking", series_cmd_ranking, READ, ranking_args},
    {"clusters", query_clusters, READ, clusters_args},
    {"cluster", query_cluster, READ, cluster_args},
    {"firms", query_firms, READ, firms_args},
    {"runtime", query_runtime, READ, no_args},
    {"alerts", alertctl_alerts, ANY, no_args}, /* filtered to the clusters the key may see */
    {"silence_add", alertctl_silence_add, ADMIN, silence_add_args},
    {"silence_list", alertctl_silence_list, READ, no_args},
    {"silence_rm", alertctl_silence_rm, ADMIN, silence_rm_args},
    {"history", alertctl_history, READ, history_args}, /* filtered to the key's clusters */
    {"ack", alertctl_ack, ADMIN, ack_args},
    {"seed_snapshot", seed_cmd_snapshot, ADMIN, no_args}, /* re-seeding an HA partner */
    {"seed_files", seed_cmd_files, ADMIN, no_args},
    {"seed_read", seed_cmd_read, ADMIN, seed_read_args},
#undef ALL
#undef ANY
#undef READ
#undef ADMIN
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

size_t control_commands(void)
{
    return NCOMMANDS;
}

const char *control_command(size_t i, unsigned *ret_need, const control_arg_t **ret_args)
{
    if (i >= NCOMMANDS)
        return NULL;
    if (ret_need)
        *ret_need = commands[i].need;
    if (ret_args)
        *ret_args = commands[i].args;
    return commands[i].name;
}

static const char *need_name(unsigned need)
{
    if (need == KEY_ROLE_ADMIN)
        return "an admin";
    if (need & KEY_ROLE_SUBSCRIBER)
        return "a subscriber, viewer or admin";
    return "a viewer or admin";
}

/* The command table's path for a decoded request: the caller's roles
 * (when check_roles), the arguments, the handler; or the refusal. */
static void run(control_t *c, bool check_roles, unsigned roles, const proto_ctl_request_t *req,
                msgpack_packer *pk)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!proto_str_eq(req->cmd, commands[i].name))
            continue;
        if (check_roles && !(roles & commands[i].need)) {
            char reason[256], have[64];
            c->denied++;
            if (c->who)
                snprintf(reason, sizeof reason,
                         "permission denied: '%s' needs %s key; key '%s' "
                         "is %s",
                         commands[i].name, need_name(commands[i].need), c->who,
                         keys_roles_name(roles, have, sizeof have));
            else
                snprintf(reason, sizeof reason,
                         "permission denied: '%s': the connection's key "
                         "was revoked by a reload",
                         commands[i].name);
            if (log_throttle(&c->log, (int64_t)uv_now(&c->srv->loop), 5, "control",
                             "denied commands"))
                log_warnx("control: %s", reason);
            control_reply_error(pk, reason);
            return;
        }
        char why[512];
        if (control_args_check(commands[i].name, commands[i].args, req, why, sizeof why) != 0) {
            c->bad_args++;
            control_reply_error(pk, why);
            return;
        }
        commands[i].handler(c->srv, pk, req);
        return;
    }
    char reason[512];
    size_t off = (size_t)snprintf(
        reason, sizeof reason, "unknown command '%.*s' (known:",
        (int)(req->cmd.len > PROTO_MAX_ID_LEN ? PROTO_MAX_ID_LEN : req->cmd.len), req->cmd.ptr);
    for (size_t i = 0; i < NCOMMANDS && off < sizeof reason; i++)
        off += (size_t)snprintf(reason + off, sizeof reason - off, "%s %s", i ? "," : "",
                                commands[i].name);
    if (off < sizeof reason)
        snprintf(reason + off, sizeof reason - off, ")");
    control_reply_error(pk, reason);
}

void control_run(control_t *c, unsigned roles, const char *who, const proto_ctl_request_t *req,
                 msgpack_packer *pk)
{
    c->caller = NULL; /* a web user sees every cluster: no key narrows it */
    c->who = who;
    run(c, true, roles, req, pk);
    c->who = NULL;
}

static void dispatch(control_t *c, envelope_t *env, msgpack_packer *pk)
{
    char err[PROTO_ERRLEN];
    proto_ctl_request_t req;
    if (!env->well_formed) {
        control_reply_error(pk, "expected [request] from a DEALER or [\"\"][request] from a REQ");
        return;
    }
    if (envelope_size(env) > CONTROL_MAX_REQUEST) {
        char reason[160];
        c->oversize++;
        snprintf(reason, sizeof reason,
                 "too large: a request of %zu bytes exceeds the control "
                 "socket's limit of %d bytes",
                 envelope_size(env), CONTROL_MAX_REQUEST);
        if (log_throttle(&c->log, (int64_t)uv_now(&c->srv->loop), 5, "control", "refused requests"))
            log_warnx("control: %s", reason);
        control_reply_error(pk, reason);
        return;
    }
    int rc =
        proto_ctl_request_decode(envelope_data(env), envelope_size(env), &req, err, sizeof err);
    if (rc == PROTO_EVERSION) {
        /* The reply is in the daemon's own version; max_version (in every
         * ctl_reply) tells the client which one to retry with. */
        char reason[PROTO_ERRLEN + 16];
        c->bad_version++;
        snprintf(reason, sizeof reason, "version: %s", strncmp(err, "v: ", 3) == 0 ? err + 3 : err);
        control_reply_error(pk, reason);
        return;
    }
    if (rc != PROTO_OK) {
        control_reply_error(pk, err);
        return;
    }
    c->who = c->caller ? c->caller->name : NULL;
    run(c, c->srv->curve, c->caller ? c->caller->roles : 0, &req, pk);
}

static bool on_message(zsock_t *zs)
{
    control_t *c = zs->data;
    envelope_t env;
    if (envelope_recv(c->zs.sock, &env) <= 0)
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
    if (envelope_reply(c->zs.sock, &env, c->out.data, c->out.size) != 0 && errno != EHOSTUNREACH) {
        c->errors++;
        log_warn("control: reply not sent");
    }
    c->caller = NULL;
    c->who = NULL;
    envelope_close(&env);
    return true;
}

int control_start(control_t *c, struct server *srv, const char *endpoint, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->srv = srv;
    msgpack_sbuffer_init(&c->out);
    zsock_options_t o = {
        .name = "control",
        .type = ZMQ_ROUTER,
        .endpoint = endpoint,
        /* Requests are small (CONTROL_MAX_REQUEST), but ZeroMQ answers a
         * frame over ZMQ_MAXMSGSIZE by dropping the connection, which a
         * client sees as silence: let frames up to CONTROL_MAX_FRAME through
         * so that dispatch can refuse them with a reply naming the limit. */
        .maxmsgsize = CONTROL_MAX_FRAME,
        .peer_timeout = srv->cfg->peer_timeout,
        .curve_secret = srv->curve ? srv->curve_key.secret_z85 : NULL,
        .zap_domain = ZAP_DOMAIN_CONTROL,
    };
    if (zsock_open(&c->zs, &srv->loop, srv->zctx, &o, on_message, c, err, errlen) != 0)
        return -1;
    /* The umask made the socket file the daemon user's only; its group may
     * use clustermonctl too (README "The service"). */
    if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' && chmod(endpoint + 6, 0770) != 0)
        log_warn("control: chmod 0770 %s", endpoint + 6);
    return 0;
}

static void closed(void *data)
{
    control_t *c = data;
    msgpack_sbuffer_destroy(&c->out);
}

void control_close(control_t *c)
{
    zsock_close(&c->zs, closed, c);
}
