/*
 * webapi.c -- see webapi.h. Each view is a few control commands run through
 * control_run and put side by side: the cluster and firm pages' monthly
 * points are the "series" command's reply and the drag firms the
 * "ranking" command's, so a page shows exactly what `clustermonctl series
 * --json` and `ranking --json` print. The only figures computed here are
 * what the overview derives from a command's exact figures (run-rate, the
 * gap to the growth target).
 */
#include "daemon/webapi.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/alertjson.h"
#include "agents/ctljson.h"
#include "daemon/control.h"
#include "daemon/registry.h"
#include "daemon/server.h"
#include "daemon/webupload.h"
#include "daemon/xalloc.h"

#define YEARS_BACK 12 /* how far back the default year is looked for */

/* ---- replies ---------------------------------------------------------------- */

/* Takes ownership of j. */
void webapi_reply_json(webapi_reply_t *rep, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s) { /* jansson out of memory */
        s = xstrdup("{\"error\":\"out of memory\"}");
        status = 500;
    }
    rep->status = status;
    rep->body = s;
    rep->len = strlen(s);
}

void webapi_reply_error(webapi_reply_t *rep, int status, const char *fmt, ...)
{
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    webapi_reply_json(rep, status, json_pack("{s:s}", "error", why));
}

/* ---- running a command -------------------------------------------------------- */

/* Arguments being collected for a request; strings point into buf. */
typedef struct {
    proto_ctl_request_t req;
    char buf[2048];
    size_t used;
} args_t;

static const char *args_keep(args_t *a, const char *s, size_t n)
{
    if (a->used + n + 1 > sizeof a->buf)
        return NULL;
    char *p = a->buf + a->used;
    memcpy(p, s, n);
    p[n] = '\0';
    a->used += n + 1;
    return p;
}

static int args_add(args_t *a, const char *key, proto_arg_kind_t kind, int64_t ival,
                    const char *sval, size_t slen)
{
    if (a->req.nargs >= PROTO_MAX_CTL_ARGS)
        return -1;
    const char *k = args_keep(a, key, strlen(key));
    const char *v = kind == PROTO_ARG_STR ? args_keep(a, sval, slen) : "";
    if (!k || !v)
        return -1;
    proto_ctl_arg_t *arg = &a->req.args[a->req.nargs++];
    arg->key = (proto_str_t){k, (uint32_t)strlen(k)};
    arg->kind = (uint8_t)kind;
    arg->ival = ival;
    arg->sval = (proto_str_t){v, (uint32_t)slen};
    return 0;
}

static void args_cmd(args_t *a, const char *cmd)
{
    memset(&a->req, 0, sizeof a->req);
    a->used = 0;
    const char *c = args_keep(a, cmd, strlen(cmd));
    a->req.cmd = (proto_str_t){c, (uint32_t)strlen(c)};
}

/*
 * Runs a's command as the caller; returns its body as JSON (caller owns) or
 * NULL with the HTTP status and reason (a refusal: 403 permission, 404
 * unknown command, 400 anything else).
 */
static json_t *run(server_t *srv, const webapi_request_t *wr, const args_t *a, int *ret_status,
                   char *why, size_t whylen)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    control_run(&srv->control, wr->roles, wr->user ? wr->user : "dashboard (no logins: read-only)",
                &a->req, &pk);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    bool ok = false;
    proto_str_t reason = {0};
    msgpack_object body;
    char err[PROTO_ERRLEN];
    json_t *j = NULL;
    if (proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &reason, &body, err, sizeof err) !=
        PROTO_OK) {
        *ret_status = 500;
        snprintf(why, whylen, "reply: %s", err);
    } else if (!ok) {
        snprintf(why, whylen, "%.*s", (int)reason.len, reason.ptr);
        *ret_status = strncmp(why, "permission denied", 17) == 0 ? 403
                      : strncmp(why, "unknown command", 15) == 0 ? 404
                                                                 : 400;
    } else {
        j = ctljson_from_msgpack(&body);
        *ret_status = 200;
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return j;
}

/* run() for a view's parts: a refusal ends the view with it. */
static json_t *run_part(server_t *srv, const webapi_request_t *wr, const args_t *a,
                        webapi_reply_t *rep)
{
    char why[512];
    int status;
    json_t *j = run(srv, wr, a, &status, why, sizeof why);
    if (!j)
        webapi_reply_error(rep, status, "%.*s: %s", (int)a->req.cmd.len, a->req.cmd.ptr, why);
    return j;
}

/* ---- query strings -------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes (and '+' to space) s[0..n) into out; returns the length or -1. */
static int url_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) /* %00 would cut a string short */
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (k + 1 >= size)
            return -1;
        out[k++] = ch;
    }
    out[k] = '\0';
    return (int)k;
}

/* The value of key in the query string, decoded into out; false if absent. */
static bool query_get(const webapi_request_t *wr, const char *key, char *out, size_t size)
{
    const char *s = wr->query, *end = wr->query + wr->query_len;
    size_t klen = strlen(key);
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        if (eq && (size_t)(eq - s) == klen && memcmp(s, key, klen) == 0)
            return url_decode(eq + 1, (size_t)(pe - eq - 1), out, size) >= 0;
        s = pe + 1;
    }
    return false;
}

/* The command table's spec of cmd, or NULL if there is no such command. */
static const control_arg_t *command_spec(const char *cmd, unsigned *ret_need)
{
    const char *name;
    const control_arg_t *spec;
    for (size_t i = 0; (name = control_command(i, ret_need, &spec)) != NULL; i++)
        if (strcmp(name, cmd) == 0)
            return spec;
    return NULL;
}

/* GET cmd/NAME?k=v: each argument typed by the command's spec (an argument
 * it does not take is passed on as a string, for control_args_check to name). */
static int args_from_query(args_t *a, const webapi_request_t *wr, const control_arg_t *spec,
                           char *why, size_t whylen)
{
    const char *s = wr->query, *end = wr->query + wr->query_len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        char key[PROTO_MAX_ID_LEN + 1], val[PROTO_MAX_TEXT_LEN];
        if (pe == s) {
            s = pe + 1;
            continue;
        }
        const char *ke = eq ? eq : pe;
        int kl = url_decode(s, (size_t)(ke - s), key, sizeof key);
        int vl = eq ? url_decode(eq + 1, (size_t)(pe - eq - 1), val, sizeof val) : 0;
        if (!eq)
            val[0] = '\0';
        if (kl <= 0 || vl < 0) {
            snprintf(why, whylen, "query: '%.*s' is not key=value (percent-encoded)",
                     (int)(pe - s > 64 ? 64 : pe - s), s);
            return -1;
        }
        const control_arg_t *sp = spec;
        while (sp->name && strcmp(sp->name, key) != 0)
            sp++;
        int rc;
        if (sp->name && sp->kind == PROTO_ARG_INT) {
            char *e;
            long long v = strtoll(val, &e, 10);
            if (!*val || *e) {
                snprintf(why, whylen, "%s: expected an integer, got '%s'", key, val);
                return -1;
            }
            rc = args_add(a, key, PROTO_ARG_INT, v, NULL, 0);
        } else {
            rc = args_add(a, key, PROTO_ARG_STR, 0, val, (size_t)vl);
        }
        if (rc != 0) {
            snprintf(why, whylen, "query: too many or too long arguments");
            return -1;
        }
        s = pe + 1;
    }
    return 0;
}

/* POST cmd/NAME with {"k": v}: integers, strings and null only. */
static int args_from_body(args_t *a, const webapi_request_t *wr, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *j = json_loadb(wr->body, wr->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        snprintf(why, whylen, "body: expected a JSON object of arguments%s%s", j ? "" : ": ",
                 j ? "" : jerr.text);
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        int rc;
        if (json_is_integer(v))
            rc = args_add(a, key, PROTO_ARG_INT, (int64_t)json_integer_value(v), NULL, 0);
        else if (json_is_string(v))
            rc = args_add(a, key, PROTO_ARG_STR, 0, json_string_value(v), json_string_length(v));
        else if (json_is_null(v))
            rc = args_add(a, key, PROTO_ARG_NIL, 0, NULL, 0);
        else {
            snprintf(why, whylen, "%s: expected an integer, a string or null", key);
            json_decref(j);
            return -1;
        }
        if (rc != 0) {
            snprintf(why, whylen, "body: too many or too long arguments");
            json_decref(j);
            return -1;
        }
    }
    json_decref(j);
    return 0;
}

static void view_cmd(server_t *srv, const webapi_request_t *wr, const char *cmd,
                     webapi_reply_t *rep)
{
    unsigned need = 0;
    const control_arg_t *spec = command_spec(cmd, &need);
    if (!spec) {
        webapi_reply_error(rep, 404, "unknown command '%s'", cmd);
        return;
    }
    /* GET reads, POST changes: a command a viewer may run only reads */
    bool reads = (need & KEY_ROLE_VIEWER) != 0;
    if (reads == wr->post) {
        webapi_reply_error(rep, 405, "%s: use %s", cmd, reads ? "GET" : "POST");
        return;
    }
    args_t *a = xcalloc(1, sizeof *a);
    args_cmd(a, cmd);
    char why[512];
    if ((wr->post ? args_from_body(a, wr, why, sizeof why)
                  : args_from_query(a, wr, spec, why, sizeof why)) != 0) {
        webapi_reply_error(rep, 400, "%s", why);
        free(a);
        return;
    }
    json_t *j = run_part(srv, wr, a, rep);
    if (j)
        webapi_reply_json(rep, 200, j);
    free(a);
}

/* ---- views' defaults and composite parts ------------------------------------------ */

/* The latest year (of the last YEARS_BACK) any firm reported for, else this year. */
static int default_year(server_t *srv)
{
    int year, month;
    calendar_month_of(&srv->cal, calendar_now_ms(), &year, &month);
    for (int y = year; y > year - YEARS_BACK; y--)
        for (size_t f = 0; f < srv->reg->nall; f++)
            if (agg_firm_reported(srv->agg, (int)f, y))
                return y;
    return year;
}

/* The last month of year with any revenue reported, 0 if none. */
static int last_month(server_t *srv, int year)
{
    for (int m = 12; m >= 1; m--) {
        proto_period_t p = {
            .year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)m};
        for (size_t f = 0; f < srv->reg->nall; f++) {
            int64_t v;
            if (agg_firm_total(srv->agg, (int)f, srv->cfg->revenue_idx, p, &v))
                return m;
        }
    }
    return 0;
}

static json_t *milli_json(__int128 v)
{
    char buf[CTLJSON_MILLI_STRLEN];
    if (v > INT64_MAX || v < INT64_MIN)
        return json_null();
    return json_string(ctljson_milli_format((int64_t)v, buf, sizeof buf));
}

/*
 * The "series" command for one metric of a cluster (firm NULL) or of one
 * firm (cluster NULL), month by month through year with the same months a
 * year before (yoy): the very reply `clustermonctl series --json` prints.
 */
static json_t *series_cmd(server_t *srv, const webapi_request_t *wr, const char *cluster,
                          const char *firm, const char *metric, int year, webapi_reply_t *rep)
{
    args_t *a = xcalloc(1, sizeof *a);
    char y[8];
    snprintf(y, sizeof y, "%04d", year);
    args_cmd(a, "series");
    args_add(a, "metric", PROTO_ARG_STR, 0, metric, strlen(metric));
    if (cluster)
        args_add(a, "cluster", PROTO_ARG_STR, 0, cluster, strlen(cluster));
    else
        args_add(a, "firm", PROTO_ARG_STR, 0, firm, strlen(firm));
    args_add(a, "from", PROTO_ARG_STR, 0, y, strlen(y));
    args_add(a, "to", PROTO_ARG_STR, 0, y, strlen(y));
    args_add(a, "by", PROTO_ARG_STR, 0, "month", 5);
    args_add(a, "yoy", PROTO_ARG_INT, 1, NULL, 0);
    json_t *j = run_part(srv, wr, a, rep);
    free(a);
    return j;
}

/* series_cmd for the revenue and the profit metric, keyed by metric name;
 * NULL after replying with a refusal. */
static json_t *series_json(server_t *srv, const webapi_request_t *wr, const char *cluster,
                           const char *firm, int year, webapi_reply_t *rep)
{
    const config_t *cfg = srv->cfg;
    json_t *o = json_object();
    int idx[2] = {cfg->revenue_idx, cfg->profit_idx};
    for (int k = 0; k < 2; k++) {
        if (idx[k] < 0)
            continue;
        json_t *j = series_cmd(srv, wr, cluster, firm, cfg->metrics[idx[k]].name, year, rep);
        if (!j) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, cfg->metrics[idx[k]].name, j);
    }
    return o;
}

/* The "ranking" command on revenue for a cluster over year-01..through
 * against the same months a year before: every firm's growth and share of
 * the gap to the cluster's growth target, largest drag first (as
 * `clustermonctl ranking --json` prints it). */
static json_t *ranking_cmd(server_t *srv, const webapi_request_t *wr, const char *cluster, int year,
                           int through, webapi_reply_t *rep)
{
    args_t *a = xcalloc(1, sizeof *a);
    char from[16], to[16];
    snprintf(from, sizeof from, "%04d-01", year);
    snprintf(to, sizeof to, "%04d-%02d", year, through);
    args_cmd(a, "ranking");
    args_add(a, "metric", PROTO_ARG_STR, 0, srv->cfg->revenue_metric,
             strlen(srv->cfg->revenue_metric));
    args_add(a, "cluster", PROTO_ARG_STR, 0, cluster, strlen(cluster));
    args_add(a, "from", PROTO_ARG_STR, 0, from, strlen(from));
    args_add(a, "to", PROTO_ARG_STR, 0, to, strlen(to));
    json_t *j = run_part(srv, wr, a, rep);
    free(a);
    return j;
}

static json_t *firm_json(server_t *srv, int f)
{
    const firm_t *firm = &srv->reg->firms[f];
    const config_t *cfg = srv->cfg;
    const config_cluster_t *cl = firm->cluster >= 0 && (size_t)firm->cluster < cfg->nclusters
                                     ? &cfg->clusters[firm->cluster]
                                     : NULL;
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:b}", "id", firm->id, "name", firm->name,
                     "cluster", cl ? cl->id : NULL, "chain",
                     cl && firm->chain >= 0 ? cl->chains[firm->chain] : NULL, "tier",
                     registry_tier_name(firm->tier), "designations", firm->designations, "former",
                     registry_is_former(srv->reg, f));
}

/* The cluster's members as the registry has them (no figures: those are the
 * ranking's): current members, and former ones the ranking still lists
 * because they reported in its range. */
static json_t *cluster_members(server_t *srv, int ci, const json_t *ranking)
{
    json_t *arr = json_array();
    const json_t *ranked = json_object_get(ranking, "firms");
    for (size_t f = 0; f < srv->reg->nall; f++) {
        if (srv->reg->firms[f].cluster != ci)
            continue;
        if (registry_is_former(srv->reg, (int)f)) {
            bool listed = false;
            size_t i;
            const json_t *r;
            json_array_foreach(ranked, i, r)
            {
                const char *id = json_string_value(json_object_get(r, "id"));
                if (id && strcmp(id, srv->reg->firms[f].id) == 0) {
                    listed = true;
                    break;
                }
            }
            if (!listed)
                continue;
        }
        json_array_append_new(arr, firm_json(srv, (int)f));
    }
    return arr;
}

/* "123.456" (ctljson's form) back to milli-units; false if j is not one. */
static bool milli_of(const json_t *j, __int128 *ret)
{
    const char *s = json_string_value(j);
    if (!s)
        return false;
    bool neg = *s == '-';
    s += neg;
    __int128 v = 0;
    int frac = -1;
    for (; *s; s++) {
        if (*s == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || frac >= 3)
            return false;
        v = v * 10 + (*s - '0');
        if (frac >= 0)
            frac++;
    }
    for (int k = frac < 0 ? 0 : frac; k < 3; k++)
        v *= 10;
    *ret = neg ? -v : v;
    return true;
}

/* The acknowledgement in force for the alert with public id id (the
 * "alerts" reply's "acks": who, when, why), or NULL. */
static const msgpack_object *ack_of(const msgpack_object *body, proto_str_t id)
{
    const msgpack_object *acks = proto_obj_get(body, "acks");
    for (uint32_t i = 0; acks && acks->type == MSGPACK_OBJECT_ARRAY && i < acks->via.array.size;
         i++) {
        const msgpack_object *k = &acks->via.array.ptr[i];
        const msgpack_object *aid = proto_obj_get(k, "alert_id");
        if (aid && aid->type == MSGPACK_OBJECT_STR && aid->via.str.size == id.len &&
            memcmp(aid->via.str.ptr, id.ptr, id.len) == 0)
            return k;
    }
    return NULL;
}

/* The firing alerts (the "alerts" command: each encoded as on the PUB
 * socket) as clustermon-sub prints them, each with its acknowledgement as
 * "ack" (null if none), optionally only one cluster's or one firm's. */
static json_t *alerts_json(server_t *srv, const webapi_request_t *wr, const char *cluster,
                           const char *firm, webapi_reply_t *rep)
{
    args_t *a = xcalloc(1, sizeof *a);
    args_cmd(a, "alerts");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    control_run(&srv->control, wr->roles, wr->user ? wr->user : "dashboard (no logins: read-only)",
                &a->req, &pk);
    free(a);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    bool ok = false;
    proto_str_t reason = {0};
    msgpack_object body;
    char err[PROTO_ERRLEN];
    json_t *arr = NULL;
    if (proto_ctl_reply_decode(sb.data, sb.size, &zone, &ok, &reason, &body, err, sizeof err) !=
            PROTO_OK ||
        !ok) {
        webapi_reply_error(rep, 500, "alerts: %.*s", ok ? (int)strlen(err) : (int)reason.len,
                           ok ? err : reason.ptr);
    } else {
        arr = json_array();
        const msgpack_object *list = proto_obj_get(&body, "alerts");
        for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
             i++) {
            const msgpack_object *o = &list->via.array.ptr[i];
            proto_alert_t al;
            if (o->type != MSGPACK_OBJECT_BIN ||
                proto_alert_decode(o->via.bin.ptr, o->via.bin.size, &al, err, sizeof err) !=
                    PROTO_OK)
                continue;
            if (cluster && !proto_str_eq(al.cluster, cluster))
                continue;
            if (firm && !proto_str_eq(al.firm, firm))
                continue;
            json_t *j = alertjson_from_alert(&al);
            if (!j)
                continue;
            const msgpack_object *k = ack_of(&body, al.id);
            json_object_set_new(j, "ack", k ? ctljson_from_msgpack(k) : json_null());
            json_array_append_new(arr, j);
        }
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return arr;
}

/* year and through from the query (defaults: the latest year with data and
 * its last month with revenue); false after replying 400. */
static bool year_through(server_t *srv, const webapi_request_t *wr, int *ret_year, int *ret_through,
                         webapi_reply_t *rep)
{
    char v[32];
    int year = default_year(srv);
    if (query_get(wr, "year", v, sizeof v)) {
        char *e;
        long y = strtol(v, &e, 10);
        if (!*v || *e || y < PROTO_MIN_YEAR + 1 || y > PROTO_MAX_YEAR) {
            webapi_reply_error(rep, 400, "year: expected a year, got '%s'", v);
            return false;
        }
        year = (int)y;
    }
    int through = last_month(srv, year);
    if (query_get(wr, "through", v, sizeof v)) {
        char *e;
        long m = strtol(v, &e, 10);
        if (!*v || *e || m < 1 || m > 12) {
            webapi_reply_error(rep, 400, "through: expected a month 1..12, got '%s'", v);
            return false;
        }
        through = (int)m;
    }
    *ret_year = year;
    *ret_through = through ? through : 12;
    return true;
}

/* The cluster command for one cluster through year-through. */
static json_t *cluster_cmd(server_t *srv, const webapi_request_t *wr, const char *id, int year,
                           int through, webapi_reply_t *rep)
{
    args_t *a = xcalloc(1, sizeof *a);
    char month[16];
    snprintf(month, sizeof month, "%04d-%02d", year, through);
    args_cmd(a, "cluster");
    args_add(a, "id", PROTO_ARG_STR, 0, id, strlen(id));
    args_add(a, "through", PROTO_ARG_STR, 0, month, strlen(month));
    json_t *j = run_part(srv, wr, a, rep);
    free(a);
    return j;
}

/* From a cluster command's reply: year to date, last year, run-rate,
 * growth target, gap and coverage for the revenue metric. */
static json_t *summary_json(server_t *srv, json_t *cl, int through)
{
    const char *rev = srv->cfg->revenue_metric;
    json_t *row = json_array_get(json_object_get(cl, "rows"), 0);
    json_t *fig = json_object_get(json_object_get(row, "metrics"), rev);
    __int128 ytd = 0, last = 0;
    bool has_ytd = milli_of(json_object_get(fig, "ytd"), &ytd);
    bool has_last = milli_of(json_object_get(fig, "last_year"), &last);
    json_t *s = json_object();
    json_object_set_new(s, "metric", json_string(rev));
    json_object_set_new(s, "ytd", has_ytd ? milli_json(ytd) : json_null());
    json_object_set_new(s, "last_year", has_last ? milli_json(last) : json_null());
    json_object_set_new(s, "run_rate", has_ytd ? milli_json(ytd * 12 / through) : json_null());
    json_object_set_new(s, "growth_pct", json_incref(json_object_get(fig, "growth_pct")));
    json_object_set_new(s, "firms", json_incref(json_object_get(row, "firms")));
    json_object_set_new(s, "reporting", json_incref(json_object_get(fig, "ytd_firms")));
    /* the cluster-wide growth rule on revenue, if there is one */
    json_t *t, *target = NULL;
    size_t i;
    json_array_foreach(json_object_get(cl, "targets"), i, t)
    {
        if (json_is_null(json_object_get(t, "chain")) &&
            json_is_string(json_object_get(t, "metric")) &&
            strcmp(json_string_value(json_object_get(t, "metric")), rev) == 0) {
            target = t;
            break;
        }
    }
    json_object_set_new(s, "target", target ? json_incref(target) : json_null());
    if (target && has_last && json_is_number(json_object_get(target, "target_pct"))) {
        /* the figure the target asks for by now: last year's same months
         * grown by the target, in milli-units of a percent so it stays exact */
        double pct = json_number_value(json_object_get(target, "target_pct"));
        __int128 want = last * (100000 + (__int128)(pct * 1000 + (pct < 0 ? -0.5 : 0.5))) / 100000;
        json_object_set_new(s, "target_ytd", milli_json(want));
        json_object_set_new(s, "gap", has_ytd ? milli_json(want - ytd) : json_null());
    } else {
        json_object_set_new(s, "target_ytd", json_null());
        json_object_set_new(s, "gap", json_null());
    }
    return s;
}

/* ---- views ------------------------------------------------------------------------- */

static void view_overview(server_t *srv, const webapi_request_t *wr, webapi_reply_t *rep)
{
    int year, through;
    if (!year_through(srv, wr, &year, &through, rep))
        return;
    args_t *a = xcalloc(1, sizeof *a);
    args_cmd(a, "report");
    args_add(a, "year", PROTO_ARG_INT, year, NULL, 0);
    json_t *report = run_part(srv, wr, a, rep);
    free(a);
    if (!report)
        return;
    json_t *clusters = json_array();
    for (size_t ci = 0; ci < srv->cfg->nclusters; ci++) {
        const char *id = srv->cfg->clusters[ci].id;
        json_t *cl = cluster_cmd(srv, wr, id, year, through, rep);
        if (!cl) {
            json_decref(report);
            json_decref(clusters);
            return;
        }
        json_array_append_new(clusters, json_pack("{s:s, s:s, s:o, s:o}", "id", id, "title",
                                                  srv->cfg->clusters[ci].title, "summary",
                                                  summary_json(srv, cl, through), "cluster", cl));
    }
    json_t *alerts = alerts_json(srv, wr, NULL, NULL, rep);
    if (!alerts) {
        json_decref(report);
        json_decref(clusters);
        return;
    }
    webapi_reply_json(rep, 200,
                      json_pack("{s:i, s:i, s:s, s:o, s:o, s:o}", "year", year, "through", through,
                                "timezone", srv->cfg->timezone, "report", report, "clusters",
                                clusters, "alerts", alerts));
}

static void view_cluster(server_t *srv, const webapi_request_t *wr, const char *id,
                         webapi_reply_t *rep)
{
    int ci = config_cluster_find(srv->cfg, id, strlen(id));
    if (ci < 0) {
        webapi_reply_error(rep, 404, "no cluster '%s'", id);
        return;
    }
    int year, through;
    if (!year_through(srv, wr, &year, &through, rep))
        return;
    json_t *cl = cluster_cmd(srv, wr, id, year, through, rep);
    json_t *series = cl ? series_json(srv, wr, id, NULL, year, rep) : NULL;
    json_t *ranking = series ? ranking_cmd(srv, wr, id, year, through, rep) : NULL;
    json_t *alerts = ranking ? alerts_json(srv, wr, id, NULL, rep) : NULL;
    if (!alerts) {
        json_decref(cl);
        json_decref(series);
        json_decref(ranking);
        return;
    }
    webapi_reply_json(rep, 200,
                      json_pack("{s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "year", year, "through",
                                through, "summary", summary_json(srv, cl, through), "cluster", cl,
                                "series", series, "ranking", ranking, "firms",
                                cluster_members(srv, ci, ranking), "alerts", alerts));
}

static void view_firm(server_t *srv, const webapi_request_t *wr, const char *id,
                      webapi_reply_t *rep)
{
    int f = registry_find_any(srv->reg, id, strlen(id));
    if (f < 0) {
        webapi_reply_error(rep, 404, "no firm '%s'", id);
        return;
    }
    int year, through;
    if (!year_through(srv, wr, &year, &through, rep))
        return;
    json_t *series = series_json(srv, wr, NULL, srv->reg->firms[f].id, year, rep);
    json_t *alerts = series ? alerts_json(srv, wr, NULL, id, rep) : NULL;
    if (!alerts) {
        json_decref(series);
        return;
    }
    webapi_reply_json(rep, 200,
                      json_pack("{s:i, s:i, s:o, s:o, s:o}", "year", year, "through", through,
                                "firm", firm_json(srv, f), "series", series, "alerts", alerts));
}

static void view_alerts(server_t *srv, const webapi_request_t *wr, webapi_reply_t *rep)
{
    json_t *alerts = alerts_json(srv, wr, NULL, NULL, rep);
    if (!alerts)
        return;
    args_t *a = xcalloc(1, sizeof *a);
    args_cmd(a, "silence_list");
    json_t *silences = run_part(srv, wr, a, rep);
    free(a);
    if (!silences) {
        json_decref(alerts);
        return;
    }
    webapi_reply_json(rep, 200, json_pack("{s:o, s:o}", "alerts", alerts, "silences", silences));
}

static void view_me(const webapi_request_t *wr, webapi_reply_t *rep)
{
    json_t *roles = json_array();
    if (wr->roles & KEY_ROLE_VIEWER)
        json_array_append_new(roles, json_string("viewer"));
    if (wr->roles & KEY_ROLE_ADMIN)
        json_array_append_new(roles, json_string("admin"));
    webapi_reply_json(rep, 200,
                      json_pack("{s:s?, s:o, s:b, s:s}", "user", wr->user, "roles", roles, "admin",
                                (wr->roles & KEY_ROLE_ADMIN) != 0, "firms",
                                wr->firms ? wr->firms : ""));
}

/* path begins with prefix; the rest (an id or command name) into out. */
static bool path_arg(const webapi_request_t *wr, const char *prefix, char *out, size_t size)
{
    size_t n = strlen(prefix);
    if (wr->path_len <= n || memcmp(wr->path, prefix, n) != 0)
        return false;
    int k = url_decode(wr->path + n, wr->path_len - n, out, size);
    return k > 0 && !memchr(out, '/', (size_t)k);
}

void webapi_handle(server_t *srv, const webapi_request_t *wr, webapi_reply_t *rep)
{
    char id[PROTO_MAX_ID_LEN + 1];
    memset(rep, 0, sizeof *rep);
    if (path_arg(wr, "cmd/", id, sizeof id)) {
        view_cmd(srv, wr, id, rep);
        return;
    }
    if (wr->path_len > 7 && memcmp(wr->path, "upload/", 7) == 0) {
        webupload_handle(srv, &srv->http.upload, wr, wr->path + 7, wr->path_len - 7, rep);
        return;
    }
    if (wr->post) {
        webapi_reply_error(rep, 405, "only cmd/NAME takes POST");
        return;
    }
#define IS(p) (wr->path_len == strlen(p) && memcmp(wr->path, p, wr->path_len) == 0)
    if (IS("overview"))
        view_overview(srv, wr, rep);
    else if (IS("alerts"))
        view_alerts(srv, wr, rep);
    else if (IS("me"))
        view_me(wr, rep);
    else if (path_arg(wr, "cluster/", id, sizeof id))
        view_cluster(srv, wr, id, rep);
    else if (path_arg(wr, "firm/", id, sizeof id))
        view_firm(srv, wr, id, rep);
    else
        webapi_reply_error(rep, 404, "no such API: see proto/PROTOCOL.md section 9");
#undef IS
}

void webapi_alert_published(void *data, const proto_alert_t *a)
{
    server_t *srv = data;
    if (srv->http.nsse == 0)
        return;
    json_t *j = alertjson_from_alert(a);
    char *s = j ? json_dumps(j, ALERTJSON_DUMP_FLAGS) : NULL;
    json_decref(j);
    if (s)
        http_events_send(&srv->http, "alert", s, strlen(s));
    free(s);
}
