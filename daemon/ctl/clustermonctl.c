/*
 * clustermonctl -- the control client: sends ctl requests to the daemon's
 * control socket and prints the reply as a table or as JSON.
 *
 * Every subcommand is one row of the command table below: its name, its
 * synopsis and help, the options it takes, what it talks to (the control
 * socket, the ingest socket or nothing) and the function that asks and
 * prints. Every option is one row of the option table: getopt's tables and
 * the --help lines are made from it. Options may come before or after the
 * subcommand (GNU getopt permutes); an option a subcommand does not take is
 * a usage error.
 *
 * The daemon is trusted here (it is ours), but a missing daemon is not: every
 * wait is bounded by --timeout, and the socket never lingers. With
 * --server-key (or $CLUSTERMON_SERVER_KEY) every socket is a CURVE client
 * (agents/clientkey.h); keygen makes the key pairs and needs no daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "agents/alertjson.h"
#include "daemon/ctl/render.h"
#include "agents/args.h"
#include "agents/clientkey.h"
#include "agents/delivery.h"
#include "agents/input.h"
#include "daemon/webusers.h"
#include "proto/clock.h"
#include "proto/fileio.h"
#include "proto/keyfile.h"
#include "proto/proto.h"

#define EXIT_REPLY_ERROR 1
#define EXIT_USAGE 2
#define EXIT_NO_REPLY 3

/* Options a subcommand may take (bits). */
enum {
    OPT_YEAR = 1 << 0,
    OPT_METRIC = 1 << 1,
    OPT_PERIOD = 1 << 2,
    OPT_CLUSTER = 1 << 3,
    OPT_SILENT = 1 << 4,
    OPT_DAYS = 1 << 5,
    OPT_AS_OF = 1 << 6,
    OPT_THROUGH = 1 << 7,
    OPT_RULE = 1 << 8,
    OPT_FIRM = 1 << 9,
    OPT_FOR = 1 << 10,
    OPT_REASON = 1 << 11,
    OPT_INGEST = 1 << 12,
    OPT_OUTPUT_DIR = 1 << 13,
    OPT_FORCE = 1 << 14,
    OPT_ALL = 1 << 15,
    OPT_CSV = 1 << 16,
    OPT_RANGE = 1 << 17, /* --from, --to, --by */
    OPT_YOY = 1 << 18,
    OPT_SCOPE = 1 << 19, /* --chain, --tier, --designation */
    OPT_TARGET = 1 << 20,
    OPT_SINCE = 1 << 21, /* --since, --until */
    OPT_NOTE = 1 << 22,
    OPT_LIMIT = 1 << 23,
};

typedef struct {
    const char *endpoint;
    int timeout_ms;
    bool json;
    unsigned given; /* OPT_* bits seen on the command line */
    long year, days;
    const char *metric, *period, *cluster, *as_of, *through;
    const char *rule, *firm, *duration, *reason, *ingest;
    bool silent;
    bool help;
    const char *output_dir;               /* keygen */
    bool force;                           /* keygen */
    bool all;                             /* firms: former members too */
    const char *server_key_arg, *key_arg; /* NULL: from the environment */
    clientkey_t key;                      /* CURVE: every command that connects */
    const char *arg;                      /* the subcommand's first argument, if it takes one */
    const char *arg2;                     /* its second, if it takes two */
    bool csv, yoy;
    const char *lang; /* --lang, NULL: from the locale */
    const char *from, *to, *by, *chain, *tier, *designation, *city, *target, *since, *until, *note;
    long limit;
} ctl_opts_t;

/* What a command talks to: the key pair (--server-key, --key) is read only
 * for those that connect. */
typedef enum {
    NEEDS_NOTHING, /* local: keygen */
    NEEDS_CONTROL, /* the control socket (--control) */
    NEEDS_INGEST,  /* the ingest socket (--ingest), as an agent does */
} ctl_needs_t;

typedef struct {
    const char *name;
    const char *synopsis; /* arguments and options, for usage lines */
    const char *summary;  /* one line for the command list */
    const char *help;     /* the rest of `clustermonctl CMD --help` */
    unsigned opts;        /* OPT_* it takes */
    int takes_arg;        /* 0: no arguments, 1: exactly one, 2: one or two, -1: none or one */
    ctl_needs_t needs;
    int (*run)(const ctl_opts_t *o);
} ctl_command_t;

static const ctl_command_t *command_find(const char *name);
static const ctl_command_t commands[];

/* ---- msgpack -> JSON ------------------------------------------------------ */

static json_t *to_json(const msgpack_object *o, int depth)
{
    if (depth > 32)
        return json_null();
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? json_real((double)o->via.u64)
                                                : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, to_json(&o->via.array.ptr[i], depth + 1));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
            json_t *v = to_json(&kv->val, depth + 1);
            /* milli-unit amounts are shown in units, as exact decimal
             * strings with the three stored decimals ("20580000000.000"): a
             * JSON number would go through a double in most readers */
            size_t kl = strlen(key);
            if (kl > 6 && strcmp(key + kl - 6, "_milli") == 0) {
                key[kl - 6] = '\0';
                if (json_is_integer(v)) {
                    char text[48];
                    render_milli_text((int64_t)json_integer_value(v), text, sizeof text);
                    json_decref(v);
                    v = json_string(text);
                }
            }
            json_object_set_new(m, key, v);
        }
        return m;
    }
    default: return json_null();
    }
}

/* ---- helpers to read the reply body ------------------------------------- */

static int64_t get_int(const msgpack_object *map, const char *key, bool *ok)
{
    const msgpack_object *v = proto_obj_get(map, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX)
        return (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    if (ok)
        *ok = false;
    return 0;
}

static void get_str(const msgpack_object *map, const char *key, char *buf, size_t size)
{
    const msgpack_object *v = proto_obj_get(map, key);
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    else
        snprintf(buf, size, "-");
}

/* Formats milli-units as "20,580,000,000" (or "1,234.5" with a fraction). */
static void fmt_milli(const msgpack_object *map, const char *key, char *buf, size_t size)
{
    bool ok = true;
    int64_t v = get_int(map, key, &ok);
    if (!ok) {
        snprintf(buf, size, "-");
        return;
    }
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t whole = u / 1000, frac = u % 1000;
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)whole);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, ".%03llu", (unsigned long long)frac);
        for (size_t k = strlen(f) - 1; f[k] == '0'; k--)
            f[k] = '\0';
        snprintf(buf, size, "%s%s", out, f);
    } else {
        snprintf(buf, size, "%s", out);
    }
}

static void print_generic(const msgpack_object *body, int indent)
{
    if (body->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < body->via.map.size; i++) {
            const msgpack_object_kv *kv = &body->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            printf("%*s%.*s:", indent, "", (int)kv->key.via.str.size, kv->key.via.str.ptr);
            if (kv->val.type == MSGPACK_OBJECT_MAP) {
                printf("\n");
                print_generic(&kv->val, indent + 2);
            } else {
                printf(" ");
                msgpack_object_print(stdout, kv->val);
                printf("\n");
            }
        }
    } else if (body->type == MSGPACK_OBJECT_STR) {
        printf("%.*s\n", (int)body->via.str.size, body->via.str.ptr);
    } else {
        msgpack_object_print(stdout, *body);
        printf("\n");
    }
}

/* ---- the request -------------------------------------------------------- */

/* ---- talking to the daemon ---------------------------------------------- */

typedef struct {
    void *ctx, *sock;
    const ctl_opts_t *o;
} conn_t;

static int conn_open(conn_t *c, const ctl_opts_t *o)
{
    char err[512];
    c->o = o;
    c->ctx = zmq_ctx_new();
    zmq_ctx_set(c->ctx, ZMQ_IPV6, 1); /* so that tcp://[::1]:P connects */
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (clientkey_setup(&o->key, c->sock, err, sizeof err) != 0) {
        fprintf(stderr, "clustermonctl: %s: %s\n", o->endpoint, err);
        return EXIT_USAGE;
    }
    if (zmq_connect(c->sock, o->endpoint) != 0) {
        fprintf(stderr, "clustermonctl: cannot connect to %s: %s\n", o->endpoint,
                zmq_strerror(errno));
        return EXIT_USAGE;
    }
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    c->sock = c->ctx = NULL;
}

/* One request and its reply. On success (0) *body lives in zone (and *msg,
 * which the caller closes). Otherwise prints why and returns the exit status. */
static int call(conn_t *c, const proto_ctl_request_t *req, zmq_msg_t *msg, msgpack_zone *zone,
                msgpack_object *body)
{
    const ctl_opts_t *o = c->o;
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    int status = EXIT_NO_REPLY;
    zmq_msg_init(msg);
    if (proto_ctl_request_encode(req, &out) != PROTO_OK) {
        fprintf(stderr, "clustermonctl: cannot encode the request\n");
        status = EXIT_USAGE;
        goto done;
    }
    if (zmq_send(c->sock, out.data, out.size, 0) < 0) {
        fprintf(stderr, "clustermonctl: send to %s: %s\n", o->endpoint, zmq_strerror(errno));
        goto done;
    }
    zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, o->timeout_ms) <= 0) {
        fprintf(stderr,
                "clustermonctl: no reply from %s within %d ms (is clustermond running?%s)\n",
                o->endpoint, o->timeout_ms,
                o->key.on ? " With CURVE: does --server-key match its key, and does it admit --key?"
                          : "");
        goto done;
    }
    if (zmq_msg_recv(msg, c->sock, 0) < 0) {
        fprintf(stderr, "clustermonctl: receive: %s\n", zmq_strerror(errno));
        goto done;
    }
    bool ok = false;
    proto_str_t reason = {0};
    char err[PROTO_ERRLEN];
    if (proto_ctl_reply_decode(zmq_msg_data(msg), zmq_msg_size(msg), zone, &ok, &reason, body, err,
                               sizeof err) != PROTO_OK) {
        fprintf(stderr, "clustermonctl: malformed reply from %s: %s\n", o->endpoint, err);
    } else if (!ok) {
        fprintf(stderr, "clustermonctl: " PROTO_STR_FMT ": " PROTO_STR_FMT "\n",
                PROTO_STR_ARG(req->cmd), PROTO_STR_ARG(reason));
        status = EXIT_REPLY_ERROR;
    } else {
        status = 0;
    }
done:
    msgpack_sbuffer_destroy(&out);
    return status;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s)
        puts(s);
    free(s);
}

/* The common case: one request, then the table printer or JSON. */
static int ask(const ctl_opts_t *o, const proto_ctl_request_t *req,
               void (*print)(const msgpack_object *body, const ctl_opts_t *o))
{
    conn_t c = {0};
    int status = conn_open(&c, o);
    if (status == 0) {
        zmq_msg_t msg;
        msgpack_zone zone;
        msgpack_object body;
        msgpack_zone_init(&zone, 4096);
        status = call(&c, req, &msg, &zone, &body);
        if (status == 0) {
            if (o->json) {
                json_t *j = to_json(&body, 0);
                print_json(j);
                json_decref(j);
            } else {
                print(&body, o);
            }
        }
        msgpack_zone_destroy(&zone);
        zmq_msg_close(&msg);
    }
    conn_close(&c);
    return status;
}

static void req_str(proto_ctl_request_t *r, const char *key, const char *val)
{
    r->args[r->nargs++] =
        (proto_ctl_arg_t){.key = proto_str(key), .kind = PROTO_ARG_STR, .sval = proto_str(val)};
}

static void req_int(proto_ctl_request_t *r, const char *key, int64_t val)
{
    r->args[r->nargs++] =
        (proto_ctl_arg_t){.key = proto_str(key), .kind = PROTO_ARG_INT, .ival = val};
}

/* ---- formatting helpers ---------------------------------------------------- */

static void fmt_count(uint64_t v, char *buf, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static const char *count_str(const msgpack_object *map, const char *key, char *buf, size_t size)
{
    bool ok = true;
    int64_t v = get_int(map, key, &ok);
    if (!ok)
        snprintf(buf, size, "-");
    else
        fmt_count((uint64_t)(v < 0 ? 0 : v), buf, size);
    return buf;
}

static double get_double(const msgpack_object *map, const char *key, bool *ok)
{
    const msgpack_object *v = proto_obj_get(map, key);
    if (v && (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32))
        return v->via.f64;
    bool iok = true;
    int64_t i = get_int(map, key, &iok);
    if (!iok && ok)
        *ok = false;
    return (double)i;
}

static void fmt_duration(int64_t ms, char *buf, size_t size)
{
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, size, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, size, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(buf, size, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/* A Unix ms time as a date in the daemon's time zone (tz), or as a UTC
 * date and time (tz NULL). */
static void fmt_date(int64_t ms, const char *tz, char *buf, size_t size)
{
    if (tz && *tz && strcmp(tz, "-") != 0) {
        setenv("TZ", tz, 1);
        tzset();
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (tz) {
        localtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%d", &tm);
    } else {
        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
}

/* ---- status ---------------------------------------------------------------- */

/* "daemon.http (127.0.0.1:9100 -> 127.0.0.1:9200), ..." from a restart_needed array */
static void print_restart_needed(const msgpack_object *list)
{
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
         i++) {
        const msgpack_object *c = &list->via.array.ptr[i];
        char setting[64], running[160], configured[160];
        get_str(c, "setting", setting, sizeof setting);
        get_str(c, "running", running, sizeof running);
        get_str(c, "configured", configured, sizeof configured);
        printf("%s%s (%s -> %s)", i ? ", " : "", setting, *running ? running : "\"\"",
               *configured ? configured : "\"\"");
    }
}

static bool has_items(const msgpack_object *list)
{
    return list && list->type == MSGPACK_OBJECT_ARRAY && list->via.array.size > 0;
}

static void print_status(const msgpack_object *st, const msgpack_object *rt)
{
    char a[48], b[48], c[48], d[48], since[48], up[32], rate[32];
    char version[32];
    get_str(st, "version", version, sizeof version);
    fmt_duration(get_int(st, "uptime_ms", NULL), up, sizeof up);
    bool have_rt = rt && rt->type == MSGPACK_OBJECT_MAP;
    printf("clustermond %s", version);
    if (have_rt) {
        fmt_date(get_int(rt, "started_ms", NULL), NULL, since, sizeof since);
        printf(", pid %lld, up %s (since %s)", (long long)get_int(rt, "pid", NULL), up, since);
    } else {
        printf(", up %s", up);
    }
    const msgpack_object *rec = proto_obj_get(st, "recovery");
    printf(", ready in %lld ms\n", (long long)get_int(rec, "ready_ms", NULL));
    if (have_rt) {
        const msgpack_object *sd = proto_obj_get(rt, "systemd");
        char level[16];
        get_str(rt, "log_level", level, sizeof level);
        printf("log level %s; systemd notify %s", level,
               proto_obj_get(sd, "notify") &&
                       proto_obj_get(sd, "notify")->type == MSGPACK_OBJECT_BOOLEAN &&
                       proto_obj_get(sd, "notify")->via.boolean
                   ? "on"
                   : "off");
        int64_t wd = get_int(sd, "watchdog_ms", NULL);
        if (wd)
            printf(", watchdog %lld ms", (long long)wd);
        printf("\n\n%-10s %-40s %6s %9s\n", "socket", "endpoint", "peers", "accepted");
        const msgpack_object *socks = proto_obj_get(rt, "sockets");
        for (uint32_t i = 0;
             socks && socks->type == MSGPACK_OBJECT_ARRAY && i < socks->via.array.size; i++) {
            const msgpack_object *s = &socks->via.array.ptr[i];
            char name[16], ep[256];
            get_str(s, "name", name, sizeof name);
            get_str(s, "endpoint", ep, sizeof ep);
            printf("%-10s %-40s %6s %9s\n", name, *ep ? ep : "(off)",
                   count_str(s, "peers", a, sizeof a), count_str(s, "accepted", b, sizeof b));
        }
        printf("\n");
    }
    snprintf(rate, sizeof rate, "%.1f", have_rt ? get_double(rt, "samples_per_s", NULL) : 0.0);
    printf("ingest     %s samples applied (%s/s now); %s batches acked, %s duplicates\n",
           count_str(st, "samples_applied", a, sizeof a), have_rt ? rate : "-",
           count_str(st, "batches_ok", b, sizeof b),
           count_str(st, "batches_duplicate", c, sizeof c));
    if (have_rt)
        printf("agents     %s connected, %s known\n",
               count_str(rt, "agents_connected", a, sizeof a),
               count_str(rt, "agents_known", b, sizeof b));
    printf("nacks     ");
    const msgpack_object *nacks = proto_obj_get(st, "nacks");
    int shown = 0;
    for (uint32_t i = 0; nacks && nacks->type == MSGPACK_OBJECT_MAP && i < nacks->via.map.size;
         i++) {
        const msgpack_object_kv *kv = &nacks->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            kv->val.via.u64 == 0)
            continue;
        printf("%s %.*s %llu", shown++ ? "," : "", (int)kv->key.via.str.size, kv->key.via.str.ptr,
               (unsigned long long)kv->val.via.u64);
    }
    printf("%s; bad envelopes %s\n", shown ? "" : " none",
           count_str(st, "bad_envelopes", a, sizeof a));
    printf("firms      %s in %s clusters; %s rules; alerts: %s firing, %s published\n",
           count_str(st, "firms", a, sizeof a), count_str(st, "clusters", b, sizeof b),
           count_str(st, "rules", c, sizeof c), count_str(st, "alerts_firing", d, sizeof d),
           count_str(st, "alerts_published", since, sizeof since));
    const msgpack_object *sec = proto_obj_get(st, "security");
    const msgpack_object *curve = proto_obj_get(sec, "curve");
    if (curve && curve->type == MSGPACK_OBJECT_BOOLEAN && curve->via.boolean)
        printf("security   CURVE, %s keys; refused: %s connections, %s commands, %s "
               "subscriptions; %s failed handshakes\n",
               count_str(sec, "keys", a, sizeof a),
               count_str(sec, "connections_refused", b, sizeof b),
               count_str(sec, "commands_denied", c, sizeof c),
               count_str(sec, "subscriptions_refused", d, sizeof d),
               count_str(sec, "handshakes_failed", since, sizeof since));
    else if (sec)
        printf("security   no CURVE: plain text, every client trusted\n");
    if (have_rt)
        printf("loop       lag %lld ms (worst in the last 10 s)\n",
               (long long)get_int(rt, "loop_lag_ms", NULL));
    const msgpack_object *rl = proto_obj_get(st, "reload");
    if (rl) {
        const msgpack_object *lok = proto_obj_get(rl, "last_ok");
        char when[48], why[640];
        fmt_date(get_int(rl, "last_success_ms", NULL), NULL, when, sizeof when);
        if (lok && lok->type == MSGPACK_OBJECT_BOOLEAN && !lok->via.boolean) {
            get_str(rl, "last_error", why, sizeof why);
            printf("reload     LAST RELOAD FAILED, running the config loaded %s: %s\n", when, why);
        } else {
            printf("reload     config loaded %s; ", when);
            printf("%s reloads, %s rejected\n", count_str(rl, "ok", a, sizeof a),
                   count_str(rl, "failed", b, sizeof b));
        }
        const msgpack_object *pending = proto_obj_get(rl, "restart_needed");
        if (has_items(pending)) {
            printf("           needs a restart: ");
            print_restart_needed(pending);
            printf("\n");
        }
    }
    const msgpack_object *w = proto_obj_get(st, "wal");
    char fs[16];
    get_str(w, "fsync", fs, sizeof fs);
    printf("WAL        segment %lld, fsync %s: %s appends, %s bytes written, %s unsynced\n",
           (long long)get_int(w, "segment", NULL), fs, count_str(w, "appends", a, sizeof a),
           count_str(w, "bytes_written", b, sizeof b), count_str(w, "unsynced_bytes", c, sizeof c));
    printf("           %s fsyncs, average %.1f ms, worst %.1f ms\n",
           count_str(w, "fsyncs", a, sizeof a), (double)get_int(w, "fsync_avg_us", NULL) / 1000.0,
           (double)get_int(w, "fsync_max_us", NULL) / 1000.0);
    const msgpack_object *full = proto_obj_get(w, "disk_full");
    bool is_full = full && full->type == MSGPACK_OBJECT_BOOLEAN && full->via.boolean;
    if (is_full || get_int(w, "append_failed", NULL))
        printf("           %s appends failed%s\n", count_str(w, "append_failed", a, sizeof a),
               is_full ? "; DISK FULL: ingest paused until a snapshot trimmed the WAL" : "");
    const msgpack_object *sn = proto_obj_get(st, "snapshots");
    printf("snapshots  %s written, %s failed", count_str(sn, "written", a, sizeof a),
           count_str(sn, "failed", b, sizeof b));
    if (get_int(sn, "last_segment", NULL))
        printf("; newest covers WAL segment %lld (%s bytes)",
               (long long)get_int(sn, "last_segment", NULL),
               count_str(sn, "last_bytes", c, sizeof c));
    printf("\n");
    int64_t snapseg = get_int(rec, "snapshot_segment", NULL);
    if (snapseg)
        snprintf(d, sizeof d, "snapshot of segment %lld", (long long)snapseg);
    else
        snprintf(d, sizeof d, "no snapshot");
    printf(
        "recovery   %s, %s WAL records replayed, %s damaged regions (%s bytes skipped, %s cut)\n",
        d, count_str(rec, "wal_records", a, sizeof a), count_str(rec, "wal_damaged", b, sizeof b),
        count_str(rec, "wal_bytes_skipped", c, sizeof c),
        count_str(rec, "wal_truncated", since, sizeof since));
}

/* status = the daemon's "status" plus its "runtime" (older daemons: status only). */
static int run_status(const ctl_opts_t *o)
{
    conn_t c = {0};
    int status = conn_open(&c, o);
    if (status != 0) {
        conn_close(&c);
        return status;
    }
    proto_ctl_request_t rs = {.cmd = proto_str("status")}, rr = {.cmd = proto_str("runtime")};
    zmq_msg_t ms, mr;
    msgpack_zone zs, zr;
    msgpack_object bs, br;
    msgpack_zone_init(&zs, 4096);
    msgpack_zone_init(&zr, 4096);
    status = call(&c, &rs, &ms, &zs, &bs);
    int rt_status = status == 0 ? call(&c, &rr, &mr, &zr, &br) : -1;
    if (rt_status > 0 && rt_status != EXIT_REPLY_ERROR) /* a refusal means an older daemon */
        status = rt_status;
    if (status == 0) {
        if (o->json) {
            json_t *j = to_json(&bs, 0);
            if (rt_status == 0) {
                json_t *r = to_json(&br, 0);
                if (json_is_object(j) && json_is_object(r))
                    json_object_update(j, r);
                json_decref(r);
            }
            print_json(j);
            json_decref(j);
        } else {
            print_status(&bs, rt_status == 0 ? &br : NULL);
        }
    }
    msgpack_zone_destroy(&zs);
    msgpack_zone_destroy(&zr);
    zmq_msg_close(&ms);
    if (rt_status >= 0)
        zmq_msg_close(&mr);
    conn_close(&c);
    return status;
}

/* ---- ping, report, totals ----------------------------------------------------- */

static void print_ping(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    print_generic(body, 0);
}

static int run_ping(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("ping")};
    return ask(o, &req, print_ping);
}

static void print_report(const msgpack_object *body, const ctl_opts_t *o);

static int run_report(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("report")};
    if (o->given & OPT_YEAR)
        req_int(&req, "year", o->year);
    return ask(o, &req, print_report);
}

/* The body of a reply with --json (exact amounts, see to_json), --csv or a
 * table: print_csv_or_table fills and prints a render table. */
static render_format_t out_format(const ctl_opts_t *o)
{
    return o->csv ? RENDER_CSV : RENDER_TABLE;
}

static const msgpack_object *get_array(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_obj_get(map, key);
    return v && v->type == MSGPACK_OBJECT_ARRAY ? v : NULL;
}

/* A milli-unit field, or nil. */
static void cell_milli(render_table_t *t, size_t col, const msgpack_object *map, const char *key)
{
    bool ok = true;
    int64_t v = get_int(map, key, &ok);
    if (ok)
        render_int(t, col, v);
    else
        render_nil(t, col);
}

static void cell_int(render_table_t *t, size_t col, const msgpack_object *map, const char *key)
{
    bool ok = true;
    int64_t v = get_int(map, key, &ok);
    if (ok)
        render_int(t, col, v);
    else
        render_nil(t, col);
}

static void cell_double(render_table_t *t, size_t col, const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_obj_get(map, key);
    if (v && (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32))
        render_double(t, col, v->via.f64);
    else
        render_nil(t, col);
}

static void cell_str(render_table_t *t, size_t col, const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_obj_get(map, key);
    char buf[1024];
    if (v && v->type == MSGPACK_OBJECT_STR) {
        snprintf(buf, sizeof buf, "%.*s", (int)v->via.str.size, v->via.str.ptr);
        render_text(t, col, buf);
    } else {
        render_nil(t, col);
    }
}

static void print_totals_cb(const msgpack_object *body, const ctl_opts_t *o)
{
    render_lang_t lang = render_lang_pick(o->lang);
    char metric[PROTO_MAX_ID_LEN + 1], unit[64], period[32];
    get_str(body, "metric", metric, sizeof metric);
    get_str(body, "unit", unit, sizeof unit);
    get_str(body, "period", period, sizeof period);
    static const render_col_t cols[] = {
        {"row", "类别", COL_TEXT},      {"cluster / chain", "集群 / 产业链", COL_TEXT},
        {"firms", "企业数", COL_COUNT}, {"reporting", "已报", COL_COUNT},
        {"total", "合计", COL_MILLI},
    };
    render_table_t t;
    render_table_init(&t, cols, sizeof cols / sizeof cols[0], strcmp(unit, "yuan") == 0);
    const msgpack_object *cls = proto_obj_get(body, "clusters");
    for (uint32_t i = 0; cls && cls->type == MSGPACK_OBJECT_ARRAY && i < cls->via.array.size; i++) {
        const msgpack_object *cl = &cls->via.array.ptr[i];
        const msgpack_object *chains = proto_obj_get(cl, "chains");
        uint32_t n = chains && chains->type == MSGPACK_OBJECT_ARRAY ? chains->via.array.size : 0;
        for (uint32_t k = 0; k <= n; k++) {
            const msgpack_object *row = k == 0 ? cl : &chains->via.array.ptr[k - 1];
            render_row(&t);
            render_text(&t, 0,
                        k == 0 ? (lang == RENDER_ZH ? "集群" : "cluster")
                               : (lang == RENDER_ZH ? "产业链" : "chain"));
            cell_str(&t, 1, row, "id");
            cell_int(&t, 2, row, "firms");
            cell_int(&t, 3, row, "reporting");
            cell_milli(&t, 4, row, "total_milli");
        }
    }
    if (!o->csv)
        printf(lang == RENDER_ZH ? "%s，%s（%s）\n\n" : "%s for %s (%s)\n\n", metric, period, unit);
    render_print(&t, out_format(o), lang, NULL, stdout);
    render_table_free(&t);
}

static int run_totals(const ctl_opts_t *o)
{
    if (!o->metric || !o->period) {
        fprintf(stderr, "clustermonctl: totals needs --metric M and --period P\n");
        return EXIT_USAGE;
    }
    proto_ctl_request_t req = {.cmd = proto_str("totals")};
    req_str(&req, "metric", o->metric);
    req_str(&req, "period", o->period);
    return ask(o, &req, print_totals_cb);
}

/* ---- clusters --------------------------------------------------------------- */

static void print_clusters(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    char tz[64];
    get_str(body, "timezone", tz, sizeof tz);
    printf("clusters in %lld (time zone %s; silent = no data for %lld days)\n\n",
           (long long)get_int(body, "year", NULL), tz,
           (long long)get_int(body, "silent_days", NULL));
    printf("%-20s %6s %6s %9s %11s %6s %6s %18s  %s\n", "cluster", "chains", "firms", "reporting",
           "above-scale", "silent", "alerts", "revenue", "title");
    const msgpack_object *cls = proto_obj_get(body, "clusters");
    for (uint32_t i = 0; cls && cls->type == MSGPACK_OBJECT_ARRAY && i < cls->via.array.size; i++) {
        const msgpack_object *cl = &cls->via.array.ptr[i];
        char id[PROTO_MAX_ID_LEN + 1], title[256], rev[48];
        get_str(cl, "id", id, sizeof id);
        get_str(cl, "title", title, sizeof title);
        fmt_milli(cl, "revenue_milli", rev, sizeof rev);
        const msgpack_object *chains = proto_obj_get(cl, "chains");
        printf("%-20s %6u %6lld %9lld %11lld %6lld %6lld %18s  %s\n", id,
               chains && chains->type == MSGPACK_OBJECT_ARRAY ? chains->via.array.size : 0,
               (long long)get_int(cl, "firms", NULL), (long long)get_int(cl, "reporting", NULL),
               (long long)get_int(cl, "above_scale", NULL), (long long)get_int(cl, "silent", NULL),
               (long long)get_int(cl, "alerts_firing", NULL), rev, title);
    }
}

static int run_clusters(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("clusters")};
    if (o->given & OPT_YEAR)
        req_int(&req, "year", o->year);
    if (o->given & OPT_DAYS)
        req_int(&req, "days", o->days);
    return ask(o, &req, print_clusters);
}

/* ---- cluster ID --------------------------------------------------------------- */

static const char *row_label(const msgpack_object *row, char *buf, size_t size)
{
    char kind[16], id[PROTO_MAX_ID_LEN + 1];
    get_str(row, "kind", kind, sizeof kind);
    get_str(row, "id", id, sizeof id);
    if (strcmp(kind, "cluster") == 0)
        snprintf(buf, size, "%s", id);
    else if (strcmp(kind, "chain") == 0)
        snprintf(buf, size, "  chain %s", *id ? id : "(none)");
    else
        snprintf(buf, size, "  tier %s", id);
    return buf;
}

static void print_cluster(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    char id[PROTO_MAX_ID_LEN + 1], title[256], tz[64], line[48], revm[PROTO_MAX_ID_LEN + 1];
    get_str(body, "id", id, sizeof id);
    get_str(body, "title", title, sizeof title);
    get_str(body, "timezone", tz, sizeof tz);
    get_str(body, "revenue_metric", revm, sizeof revm);
    fmt_milli(body, "above_scale_line_milli", line, sizeof line);
    int year = (int)get_int(body, "year", NULL), through = (int)get_int(body, "through", NULL);
    char cur[32], prev[32];
    snprintf(cur, sizeof cur, "%d-01..%02d", year, through);
    snprintf(prev, sizeof prev, "%d-01..%02d", year - 1, through);
    printf("cluster %s (%s)\n", id, title);
    printf("year to date %s against %s, time zone %s\n", cur, prev, tz);
    printf("above-scale: %s in %d at or above %s\n\n", revm, year - 1, line);
    const msgpack_object *rows = proto_obj_get(body, "rows");
    if (!rows || rows->type != MSGPACK_OBJECT_ARRAY)
        return;
    printf("%-36s %6s %9s %11s\n", "", "firms", "reporting", "above-scale");
    for (uint32_t i = 0; i < rows->via.array.size; i++) {
        const msgpack_object *r = &rows->via.array.ptr[i];
        char label[96];
        printf("%-36s %6lld %9lld %11lld\n", row_label(r, label, sizeof label),
               (long long)get_int(r, "firms", NULL), (long long)get_int(r, "reporting", NULL),
               (long long)get_int(r, "above_scale", NULL));
    }
    /* one table per period metric, in the order the daemon lists them */
    const msgpack_object *units = proto_obj_get(body, "units");
    for (uint32_t m = 0; units && units->type == MSGPACK_OBJECT_MAP && m < units->via.map.size;
         m++) {
        const msgpack_object_kv *kv = &units->via.map.ptr[m];
        char metric[PROTO_MAX_ID_LEN + 1], unit[64], head[160];
        snprintf(metric, sizeof metric, "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
        snprintf(unit, sizeof unit, "%.*s",
                 kv->val.type == MSGPACK_OBJECT_STR ? (int)kv->val.via.str.size : 0,
                 kv->val.type == MSGPACK_OBJECT_STR ? kv->val.via.str.ptr : "");
        snprintf(head, sizeof head, "%s%s%s%s", metric, *unit ? " (" : "", unit, *unit ? ")" : "");
        printf("\n%-36s %18s %18s %9s\n", head, cur, prev, "growth");
        if (m == 0)
            printf("(totals of every report for those months, not like for like)\n");
        for (uint32_t i = 0; i < rows->via.array.size; i++) {
            const msgpack_object *r = &rows->via.array.ptr[i];
            const msgpack_object *fig = proto_obj_get(proto_obj_get(r, "metrics"), metric);
            char label[96], a[48], b[48], g[16];
            fmt_milli(fig, "ytd_milli", a, sizeof a);
            fmt_milli(fig, "last_year_milli", b, sizeof b);
            bool ok = true;
            double pct = get_double(fig, "growth_pct", &ok);
            const msgpack_object *gp = proto_obj_get(fig, "growth_pct");
            if (!gp || gp->type == MSGPACK_OBJECT_NIL || !ok)
                snprintf(g, sizeof g, "-");
            else
                snprintf(g, sizeof g, "%+.2f%%", pct);
            printf("%-36s %18s %18s %9s\n", row_label(r, label, sizeof label), a, b, g);
        }
    }
    const msgpack_object *targets = proto_obj_get(body, "targets");
    if (targets && targets->type == MSGPACK_OBJECT_ARRAY && targets->via.array.size) {
        printf("\n%-32s %6s %9s %9s %9s  %s\n", "growth targets", "year", "target", "growth", "gap",
               "state");
        for (uint32_t i = 0; i < targets->via.array.size; i++) {
            const msgpack_object *t = &targets->via.array.ptr[i];
            char rule[PROTO_MAX_ID_LEN + 1], metric[PROTO_MAX_ID_LEN + 1], cov[160], label[160];
            char measures[160];
            char growth[16] = "-", gap[16] = "-";
            bool have = true;
            get_str(t, "rule", rule, sizeof rule);
            get_str(t, "metric", metric, sizeof metric);
            get_str(t, "coverage", cov, sizeof cov);
            get_str(t, "measures", measures, sizeof measures);
            double target = get_double(t, "target_pct", NULL);
            double g = get_double(t, "growth_pct", &have);
            if (have) {
                snprintf(growth, sizeof growth, "%+.1f%%", g);
                snprintf(gap, sizeof gap, "%+.1f pp", g - target);
            }
            const msgpack_object *f = proto_obj_get(t, "firing");
            bool firing = f && f->type == MSGPACK_OBJECT_POSITIVE_INTEGER && f->via.u64;
            snprintf(label, sizeof label, "%s (%s)", rule, metric);
            printf("%-32s %6lld %+8.1f%% %9s %9s  %s%s%s%s\n", label,
                   (long long)get_int(t, "year", NULL), target, growth, gap,
                   firing ? "FIRING"
                   : have ? "on target"
                          : "no data yet",
                   strcmp(cov, "-") ? " (" : "", strcmp(cov, "-") ? cov : "",
                   strcmp(cov, "-") ? ")" : "");
            if (strcmp(measures, "-"))
                printf("%-32s %s\n", "", measures);
        }
    }
}

static int run_cluster(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("cluster")};
    req_str(&req, "id", o->arg);
    if (o->through)
        req_str(&req, "through", o->through);
    return ask(o, &req, print_cluster);
}

/* ---- firms -------------------------------------------------------------------- */

static void print_firms(const msgpack_object *body, const ctl_opts_t *o)
{
    char tz[64], asof[32];
    get_str(body, "timezone", tz, sizeof tz);
    const msgpack_object *firms = proto_obj_get(body, "firms");
    uint32_t n = firms && firms->type == MSGPACK_OBJECT_ARRAY ? firms->via.array.size : 0;
    /* as_of is the end of a day: show that day */
    fmt_date(get_int(body, "as_of_ms", NULL) - 1, tz, asof, sizeof asof);
    if (o->silent)
        printf("%u firm%s silent: no data for more than %lld days before the end of %s (%s)\n\n", n,
               n == 1 ? "" : "s", (long long)get_int(body, "silent_days", NULL), asof, tz);
    else
        printf("%u firm%s; silent = no data for more than %lld days before the end of %s (%s)\n\n",
               n, n == 1 ? "" : "s", (long long)get_int(body, "silent_days", NULL), asof, tz);
    if (n == 0)
        return;
    printf("%-10s %-12s %-26s %-10s %-10s %6s %-6s %s\n", "firm", "cluster", "chain", "tier",
           "last data", "days", "silent", "name");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *f = &firms->via.array.ptr[i];
        char id[PROTO_MAX_ID_LEN + 1], cl[PROTO_MAX_ID_LEN + 1], ch[PROTO_MAX_ID_LEN + 1], tier[16],
            status[16], last[32], days[24], name[512];
        get_str(f, "id", id, sizeof id);
        get_str(f, "cluster", cl, sizeof cl);
        get_str(f, "chain", ch, sizeof ch);
        get_str(f, "tier", tier, sizeof tier);
        get_str(f, "status", status, sizeof status);
        get_str(f, "last_data", last, sizeof last);
        get_str(f, "name", name, sizeof name);
        bool ok = true;
        int64_t d = get_int(f, "days_since", &ok);
        if (ok)
            snprintf(days, sizeof days, "%lld", (long long)d);
        else
            snprintf(days, sizeof days, "never");
        const msgpack_object *s = proto_obj_get(f, "silent");
        bool silent = s && s->type == MSGPACK_OBJECT_BOOLEAN && s->via.boolean;
        char left[32], note[64] = "";
        bool former = strcmp(status, "left") == 0;
        if (former) {
            get_str(f, "left_on", left, sizeof left);
            snprintf(note, sizeof note, " [former member, left on %s]", left);
        } else if (strcmp(status, "inactive") == 0) {
            snprintf(note, sizeof note, " [inactive]");
        }
        printf("%-10s %-12s %-26s %-10s %-10s %6s %-6s %s%s\n", id, cl, ch, tier, last, days,
               former                            ? "(left)"
               : strcmp(status, "inactive") == 0 ? "(off)"
               : silent                          ? "yes"
                                                 : "no",
               name, note);
    }
}

static int run_firms(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("firms")};
    if (o->cluster)
        req_str(&req, "cluster", o->cluster);
    if (o->silent)
        req_int(&req, "silent", 1);
    if (o->given & OPT_DAYS)
        req_int(&req, "days", o->days);
    if (o->as_of)
        req_str(&req, "as_of", o->as_of);
    if (o->all)
        req_int(&req, "all", 1);
    return ask(o, &req, print_firms);
}

/* ---- describe ---------------------------------------------------------------------- */

/* s of a str object, or "-" for anything else (nil). */
static void obj_str(const msgpack_object *v, char *buf, size_t size)
{
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    else
        snprintf(buf, size, "-");
}

static uint32_t array_len(const msgpack_object *v)
{
    return v && v->type == MSGPACK_OBJECT_ARRAY ? v->via.array.size : 0;
}

static void print_describe(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    char a[128], b[128], c[128];
    const msgpack_object *proto = proto_obj_get(body, "protocol");
    const msgpack_object *key = proto_obj_get(body, "key");
    printf("protocol   versions %lld..%lld, requests up to %lld bytes\n",
           (long long)get_int(proto, "min_version", NULL),
           (long long)get_int(proto, "max_version", NULL),
           (long long)get_int(proto, "max_request_bytes", NULL));
    if (key && key->type == MSGPACK_OBJECT_MAP) {
        obj_str(proto_obj_get(key, "name"), a, sizeof a);
        obj_str(proto_obj_get(key, "roles"), b, sizeof b);
        printf("key        %s (%s): the lists below are what it may see and do\n", a, b);
    } else {
        printf("key        none (no CURVE): everything\n");
    }
    obj_str(proto_obj_get(body, "timezone"), a, sizeof a);
    printf("time zone  %s\n\n", a);

    const msgpack_object *list = proto_obj_get(body, "metrics");
    printf("%-24s %-8s %s\n", "metric", "kind", "unit");
    for (uint32_t i = 0; i < array_len(list); i++) {
        const msgpack_object *m = &list->via.array.ptr[i];
        obj_str(proto_obj_get(m, "name"), a, sizeof a);
        obj_str(proto_obj_get(m, "kind"), b, sizeof b);
        obj_str(proto_obj_get(m, "unit"), c, sizeof c);
        printf("%-24s %-8s %s\n", a, b, c);
    }

    list = proto_obj_get(body, "clusters");
    printf("\n%-24s %s\n", "cluster", "chains");
    for (uint32_t i = 0; i < array_len(list); i++) {
        const msgpack_object *cl = &list->via.array.ptr[i], *ch = proto_obj_get(cl, "chains");
        obj_str(proto_obj_get(cl, "id"), a, sizeof a);
        printf("%-24s", a);
        for (uint32_t k = 0; k < array_len(ch); k++) {
            obj_str(&ch->via.array.ptr[k], b, sizeof b);
            printf("%s%s", k ? ", " : " ", b);
        }
        printf("\n");
    }

    list = proto_obj_get(body, "firms");
    uint32_t nfirms = array_len(list);
    printf("\nfirms it may report for: %u\n", nfirms);
    for (uint32_t i = 0; i < nfirms && i < 20; i++) {
        const msgpack_object *f = &list->via.array.ptr[i];
        obj_str(proto_obj_get(f, "id"), a, sizeof a);
        obj_str(proto_obj_get(f, "cluster"), b, sizeof b);
        obj_str(proto_obj_get(f, "chain"), c, sizeof c);
        printf("  %-22s %-24s %s\n", a, b, c);
    }
    if (nfirms > 20)
        printf("  ... and %u more (--json lists them all)\n", nfirms - 20);

    list = proto_obj_get(body, "commands");
    printf("\ncommands it may run (arguments as name:type, * = required)\n");
    for (uint32_t i = 0; i < array_len(list); i++) {
        const msgpack_object *cmd = &list->via.array.ptr[i], *args = proto_obj_get(cmd, "args");
        obj_str(proto_obj_get(cmd, "name"), a, sizeof a);
        printf(array_len(args) ? "  %-14s" : "  %s", a);
        for (uint32_t k = 0; k < array_len(args); k++) {
            const msgpack_object *arg = &args->via.array.ptr[k];
            const msgpack_object *req = proto_obj_get(arg, "required");
            obj_str(proto_obj_get(arg, "name"), b, sizeof b);
            obj_str(proto_obj_get(arg, "type"), c, sizeof c);
            printf(" %s:%s%s", b, c,
                   req && req->type == MSGPACK_OBJECT_BOOLEAN && req->via.boolean ? "*" : "");
        }
        printf("\n");
    }
}

static int run_describe(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("describe")};
    return ask(o, &req, print_describe);
}

/* ---- alerts, silences, reload, import-baseline ----------------------------------- */

/* The acknowledgement of alert id in the reply's "acks", or NULL. */
static const msgpack_object *ack_for(const msgpack_object *body, proto_str_t id)
{
    const msgpack_object *acks = proto_obj_get(body, "acks");
    for (uint32_t i = 0; acks && acks->type == MSGPACK_OBJECT_ARRAY && i < acks->via.array.size;
         i++) {
        const msgpack_object *v = proto_obj_get(&acks->via.array.ptr[i], "alert_id");
        if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == id.len &&
            memcmp(v->via.str.ptr, id.ptr, id.len) == 0)
            return &acks->via.array.ptr[i];
    }
    return NULL;
}

static void print_alerts(const msgpack_object *body, const ctl_opts_t *o)
{
    const msgpack_object *list = proto_obj_get(body, "alerts");
    json_t *arr = json_array();
    if (!o->json)
        printf("%-6s %-8s %-9s %-40s %s\n", "seq", "severity", "state", "id", "summary");
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
         i++) {
        const msgpack_object *b = &list->via.array.ptr[i];
        proto_alert_t a;
        char err[PROTO_ERRLEN];
        if (b->type != MSGPACK_OBJECT_BIN ||
            proto_alert_decode(b->via.bin.ptr, b->via.bin.size, &a, err, sizeof err) != PROTO_OK)
            continue;
        if (o->json) {
            json_t *j = alertjson_from_alert(&a);
            if (j)
                json_array_append_new(arr, j);
            continue;
        }
        printf("%-6llu %-8s %-9s %-40.*s %.*s\n", (unsigned long long)a.seq,
               proto_severity_name(a.severity), proto_alert_state_name(a.state), (int)a.id.len,
               a.id.ptr, (int)a.summary.len, a.summary.ptr);
        const msgpack_object *k = ack_for(body, a.id);
        if (k) {
            char who[128], note[PROTO_MAX_TEXT_LEN], at[64];
            get_str(k, "who", who, sizeof who);
            get_str(k, "note", note, sizeof note);
            render_time_text(get_int(k, "at_ms", NULL), render_lang_pick(o->lang), NULL, at,
                             sizeof at);
            printf("%-6s ACKED by %s at %s: %s\n", "", who, at, note);
        }
    }
    const msgpack_object *seqs = proto_obj_get(body, "seqs");
    bool has_seqs = seqs && seqs->type == MSGPACK_OBJECT_MAP;
    if (o->json) {
        json_t *root = json_object(), *js = json_object();
        for (uint32_t i = 0; has_seqs && i < seqs->via.map.size; i++) {
            const msgpack_object_kv *kv = &seqs->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                json_object_setn_new(js, kv->key.via.str.ptr, kv->key.via.str.size,
                                     json_integer((json_int_t)kv->val.via.u64));
        }
        json_object_set_new(root, "seqs", js);
        json_object_set_new(root, "alerts", arr);
        const msgpack_object *acks = proto_obj_get(body, "acks");
        json_object_set_new(root, "acks", acks ? to_json(acks, 0) : json_array());
        print_json(root);
        json_decref(root);
    } else {
        json_decref(arr);
        printf("\n%u firing, current to alert seqs",
               list && list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0);
        for (uint32_t i = 0; has_seqs && i < seqs->via.map.size; i++) {
            const msgpack_object_kv *kv = &seqs->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                printf("%s %.*s %llu", i ? "," : "", (int)kv->key.via.str.size, kv->key.via.str.ptr,
                       (unsigned long long)kv->val.via.u64);
        }
        printf("\n");
    }
}

static int run_alerts(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("alerts")};
    ctl_opts_t own = *o;
    own.json = false; /* the body holds encoded alerts: print_alerts does both forms */
    conn_t c = {0};
    int status = conn_open(&c, &own);
    if (status == 0) {
        zmq_msg_t msg;
        msgpack_zone zone;
        msgpack_object body;
        msgpack_zone_init(&zone, 4096);
        status = call(&c, &req, &msg, &zone, &body);
        if (status == 0)
            print_alerts(&body, o);
        msgpack_zone_destroy(&zone);
        zmq_msg_close(&msg);
    }
    conn_close(&c);
    return status;
}

static void print_silences(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    printf("%-4s %-20s %-14s %-10s %-22s %s\n", "id", "rule", "cluster", "firm", "until (UTC)",
           "reason");
    for (uint32_t i = 0; body->type == MSGPACK_OBJECT_ARRAY && i < body->via.array.size; i++) {
        const msgpack_object *x = &body->via.array.ptr[i];
        char rule[PROTO_MAX_ID_LEN + 1], cl[PROTO_MAX_ID_LEN + 1], firm[PROTO_MAX_ID_LEN + 1];
        char reason[PROTO_MAX_TEXT_LEN], until[48];
        get_str(x, "rule", rule, sizeof rule);
        get_str(x, "cluster", cl, sizeof cl);
        get_str(x, "firm", firm, sizeof firm);
        get_str(x, "reason", reason, sizeof reason);
        fmt_date(get_int(x, "until_ms", NULL), NULL, until, sizeof until);
        printf("%-4lld %-20s %-14s %-10s %-22s %s\n", (long long)get_int(x, "id", NULL), rule, cl,
               firm, until, reason);
    }
}

static void print_silence_done(const msgpack_object *body, const ctl_opts_t *o)
{
    char until[48];
    if (strcmp(o->arg, "add") == 0) {
        fmt_date(get_int(body, "until_ms", NULL), NULL, until, sizeof until);
        printf("silence %lld until %s\n", (long long)get_int(body, "id", NULL), until);
    } else {
        printf("silence %lld removed\n", (long long)get_int(body, "id", NULL));
    }
}

static int run_silence(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {0};
    long id;
    if (strcmp(o->arg, "list") == 0 && !o->arg2) {
        req.cmd = proto_str("silence_list");
        return ask(o, &req, print_silences);
    }
    if (strcmp(o->arg, "rm") == 0 && o->arg2) {
        if (!args_parse_long(o->arg2, 1, LONG_MAX, &id)) {
            fprintf(stderr, "clustermonctl: silence rm: '%s' is not a silence id\n", o->arg2);
            return EXIT_USAGE;
        }
        req.cmd = proto_str("silence_rm");
        req_int(&req, "id", id);
        return ask(o, &req, print_silence_done);
    }
    if (strcmp(o->arg, "add") == 0 && !o->arg2) {
        if (!o->rule || !o->cluster || !o->duration || !o->reason) {
            fprintf(stderr,
                    "clustermonctl: silence add needs --rule, --cluster, --for and --reason\n");
            return EXIT_USAGE;
        }
        req.cmd = proto_str("silence_add");
        req_str(&req, "rule", o->rule);
        req_str(&req, "cluster", o->cluster);
        if (o->firm)
            req_str(&req, "firm", o->firm);
        req_str(&req, "for", o->duration);
        req_str(&req, "reason", o->reason);
        return ask(o, &req, print_silence_done);
    }
    fprintf(stderr, "clustermonctl: silence add|list|rm ID\n");
    return EXIT_USAGE;
}

static void print_reload(const msgpack_object *body, const ctl_opts_t *o)
{
    (void)o;
    printf("reloaded: %lld firms, %lld rules (reload %lld)",
           (long long)get_int(body, "firms", NULL), (long long)get_int(body, "rules", NULL),
           (long long)get_int(body, "reloads", NULL));
    const msgpack_object *pending = proto_obj_get(body, "restart_needed");
    if (has_items(pending)) {
        printf("; needs a restart: ");
        print_restart_needed(pending);
    }
    printf("\n");
}

static int run_reload(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("reload")};
    return ask(o, &req, print_reload);
}

/* import-baseline's batches: one at a time, held in memory until settled. */
typedef struct {
    msgpack_sbuffer sb; /* the encoded batch in flight (size 0: none) */
    uint64_t seq;
    bool settled;
    proto_status_t status;
} import_queue_t;

static bool import_next(void *arg, bool first, uint64_t after, uint64_t *ret_seq)
{
    import_queue_t *q = arg;
    if (q->sb.size == 0 || q->settled || (!first && after >= q->seq))
        return false;
    *ret_seq = q->seq;
    return true;
}

static int import_load(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    import_queue_t *q = arg;
    (void)seq;
    *ret_msg = malloc(q->sb.size);
    if (!*ret_msg)
        abort();
    memcpy(*ret_msg, q->sb.data, q->sb.size);
    *ret_len = q->sb.size;
    return 0;
}

static int import_settled(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten,
                          bool lost)
{
    import_queue_t *q = arg;
    (void)seq, (void)forgotten, (void)lost;
    q->settled = true;
    q->status = (proto_status_t)ack->status;
    return ack->status == PROTO_STATUS_OK ? 0 : EXIT_REPLY_ERROR; /* the engine said why */
}

/*
 * import-baseline FILE: last year's figures, in the agents' CSV format, sent
 * to the ingest socket in acknowledged batches through the agent's delivery
 * engine (agents/delivery.h: the same resends, backoff and answers), so they
 * are in the WAL, applied exactly once, and feed the growth rules at once.
 */
static int run_import(const ctl_opts_t *o)
{
    enum { BATCH = 1000 };
    char err[512], host[64] = "host", agent[PROTO_MAX_ID_LEN + 1];
    input_reader_t *in = input_reader_open(o->arg, err, sizeof err);
    if (!in) {
        fprintf(stderr, "clustermonctl: import-baseline: %s\n", err);
        return EXIT_USAGE;
    }
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '-';
    /* Each run is a stream of its own (PROTOCOL.md 2): an id of its own too,
     * so a second import right after the first is not taken for a second
     * agent on the first one's id. */
    uint64_t epoch = (uint64_t)clock_wall_ms();
    snprintf(agent, sizeof agent, "import-baseline-%.24s.%llx.%x", host, (unsigned long long)epoch,
             (unsigned)getpid());
    proto_sample_t *samples = calloc(BATCH, sizeof *samples);
    void *ctx = zmq_ctx_new();
    import_queue_t q = {.seq = 0};
    msgpack_sbuffer_init(&q.sb);
    delivery_t *dl = NULL;
    char endpoint[1024];
    snprintf(endpoint, sizeof endpoint, "%s", o->ingest);
    char *endpoints[1] = {endpoint};
    delivery_opts_t dopts = {
        .endpoints = endpoints,
        .nendpoints = 1,
        .key = &o->key,
        .agent_id = agent,
        .epoch = epoch,
        .timeout_ms = o->timeout_ms,
        .retries = 5,
        .window = 1,
        .prog = "clustermonctl: import-baseline",
    };
    delivery_source_t src = {
        .next = import_next, .load = import_load, .settled = import_settled, .arg = &q};
    int status = 0;
    if (!samples || !ctx) {
        fprintf(stderr, "clustermonctl: import-baseline: out of memory\n");
        status = EXIT_USAGE;
        goto done;
    }
    zmq_ctx_set(ctx, ZMQ_IPV6, 1);
    if ((status = delivery_open(ctx, &dopts, &src, &dl)) != 0) {
        status = status == DELIVERY_USAGE ? EXIT_USAGE : EXIT_NO_REPLY;
        goto done;
    }
    uint64_t total = 0, batches = 0;
    for (;;) {
        size_t n = 0;
        int rc = input_read_batch(in, samples, BATCH, &n, NULL, err, sizeof err);
        if (rc != INPUT_OK && n == 0) {
            fprintf(stderr, "clustermonctl: import-baseline: %s\n", err);
            status = EXIT_USAGE;
            break;
        }
        if (n == 0)
            break;
        proto_batch_t b = {.agent = proto_str(agent),
                           .epoch = epoch,
                           .seq = ++q.seq,
                           .nsamples = (uint32_t)n,
                           .samples = samples,
                           .cap = BATCH};
        msgpack_sbuffer_clear(&q.sb);
        q.settled = false;
        if (proto_batch_encode(&b, &q.sb, err, sizeof err) != PROTO_OK) {
            fprintf(stderr, "clustermonctl: import-baseline: %s\n", err);
            status = EXIT_USAGE;
            break;
        }
        while (!q.settled && (status = delivery_step(dl, -1)) == 0)
            ;
        if (status != 0) {
            if (status == DELIVERY_NOACK)
                fprintf(stderr, "clustermonctl: import-baseline: is clustermond running at %s?%s\n",
                        o->ingest,
                        o->key.on ? " (with CURVE: does --server-key match the daemon's key, "
                                    "and does it admit --key?)"
                                  : "");
            status = status == DELIVERY_NOACK ? EXIT_NO_REPLY : EXIT_REPLY_ERROR;
            break;
        }
        total += n;
        batches++;
        if (rc != INPUT_OK) {
            fprintf(stderr, "clustermonctl: import-baseline: %s\n", err);
            status = EXIT_USAGE;
            break;
        }
    }
    if (status == 0)
        printf("imported %llu samples from %s in %llu batches\n", (unsigned long long)total, o->arg,
               (unsigned long long)batches);
done:
    delivery_close(&dl);
    msgpack_sbuffer_destroy(&q.sb);
    if (ctx)
        zmq_ctx_term(ctx);
    free(samples);
    input_reader_destroy(&in);
    return status;
}

/*
 * keygen NAME: a new CURVE key pair in DIR/NAME.key (both keys) and
 * DIR/NAME.pub (the public one, for the other side). Local: no daemon.
 */
static int run_keygen(const ctl_opts_t *o)
{
    const char *dir = o->output_dir ? o->output_dir : ".";
    char err[1024];
    keyfile_t k;

    errno = 0;
    if (keyfile_generate(dir, o->arg, o->force, &k, err, sizeof err) != 0) {
        fprintf(stderr, "clustermonctl: keygen: %s%s\n", err,
                errno == EEXIST ? " (--force replaces the pair)" : "");
        return EXIT_REPLY_ERROR;
    }
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s+++, s:s+++}", "public", k.public_z85, "key_file", dir, "/",
                              o->arg, ".key", "pub_file", dir, "/", o->arg, ".pub");
        print_json(j);
        json_decref(j);
    } else {
        printf("public key: %s\n", k.public_z85);
        printf("wrote %s/%s.key (secret: keep it on the machine that uses it, readable only by its "
               "owner)\n"
               "  and %s/%s.pub (public: give it to the other side)\n",
               dir, o->arg, dir, o->arg);
    }
    explicit_bzero(&k, sizeof k);
    return 0;
}

/* ---- officials: series, ranking, report, history, ack ------------------------------ */

static bool is_yuan(const msgpack_object *body)
{
    char unit[64];
    get_str(body, "unit", unit, sizeof unit);
    return strcmp(unit, "yuan") == 0 || strcmp(unit, "-") == 0;
}

static void scope_title(const msgpack_object *body, render_lang_t lang)
{
    char metric[64], unit[64], cluster[64], chain[64], tier[64], des[64], firm[64], range[40];
    get_str(body, "metric", metric, sizeof metric);
    get_str(body, "unit", unit, sizeof unit);
    get_str(body, "cluster", cluster, sizeof cluster);
    get_str(body, "chain", chain, sizeof chain);
    get_str(body, "tier", tier, sizeof tier);
    get_str(body, "designation", des, sizeof des);
    get_str(body, "firm", firm, sizeof firm);
    get_str(body, "range", range, sizeof range);
    if (strcmp(firm, "-") != 0)
        printf(lang == RENDER_ZH ? "%s，企业 %s（%s），%s\n\n" : "%s of firm %s (%s), %s\n\n",
               metric, firm, cluster, range);
    else
        printf(lang == RENDER_ZH ? "%s，%s%s%s%s%s%s%s，%s\n\n" : "%s of %s%s%s%s%s%s%s, %s\n\n",
               metric, cluster, strcmp(chain, "-") ? " chain " : "",
               strcmp(chain, "-") ? chain : "", strcmp(tier, "-") ? " tier " : "",
               strcmp(tier, "-") ? tier : "", strcmp(des, "-") ? " designation " : "",
               strcmp(des, "-") ? des : "", range);
}

static void print_series(const msgpack_object *body, const ctl_opts_t *o)
{
    render_lang_t lang = render_lang_pick(o->lang);
    const msgpack_object *yv = proto_obj_get(body, "yoy");
    bool yoy = yv && yv->type == MSGPACK_OBJECT_BOOLEAN && yv->via.boolean;
    static const render_col_t cols[] = {
        {"period", "期间", COL_TEXT},
        {"value", "数值", COL_MILLI},
        {"reporting", "已报企业", COL_COUNT},
        {"members", "成员企业", COL_COUNT},
        {"coverage", "覆盖率", COL_SHARE},
        {"last_year", "上年同期", COL_MILLI},
        {"yoy", "同比", COL_PCT},
    };
    render_table_t t;
    render_table_init(&t, cols, yoy ? 7 : 5, is_yuan(body));
    const msgpack_object *pts = get_array(body, "points");
    for (uint32_t i = 0; pts && i < pts->via.array.size; i++) {
        const msgpack_object *p = &pts->via.array.ptr[i];
        render_row(&t);
        cell_str(&t, 0, p, "period");
        cell_milli(&t, 1, p, "value_milli");
        cell_int(&t, 2, p, "reporting");
        cell_int(&t, 3, p, "members");
        cell_double(&t, 4, p, "coverage_pct");
        if (yoy) {
            cell_milli(&t, 5, p, "last_year_milli");
            cell_double(&t, 6, p, "yoy_pct");
        }
    }
    if (!o->csv)
        scope_title(body, lang);
    render_print(&t, out_format(o), lang, NULL, stdout);
    if (!o->csv) {
        char sum[64];
        bool ok = true;
        int64_t s = get_int(body, "sum_milli", &ok);
        if (ok)
            render_milli_text(s, sum, sizeof sum);
        printf(lang == RENDER_ZH ? "\n合计 %s\n" : "\nsum %s\n", ok ? sum : "-");
    }
    render_table_free(&t);
}

static void scope_args(proto_ctl_request_t *req, const ctl_opts_t *o)
{
    req_str(req, "metric", o->metric);
    if (o->cluster)
        req_str(req, "cluster", o->cluster);
    if (o->firm)
        req_str(req, "firm", o->firm);
    if (o->chain)
        req_str(req, "chain", o->chain);
    if (o->tier)
        req_str(req, "tier", o->tier);
    if (o->designation)
        req_str(req, "designation", o->designation);
    if (o->city)
        req_str(req, "city", o->city);
    req_str(req, "from", o->from);
    req_str(req, "to", o->to);
    if (o->by)
        req_str(req, "by", o->by);
}

static int scope_check(const ctl_opts_t *o, const char *cmd)
{
    if (!o->metric || !o->from || !o->to || !o->cluster == !o->firm) {
        fprintf(
            stderr,
            "clustermonctl: %s needs --metric M, --cluster C or --firm F, --from P and --to P\n",
            cmd);
        return EXIT_USAGE;
    }
    if (o->csv && o->json) {
        fprintf(stderr, "clustermonctl: --csv and --json: pick one\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int run_series(const ctl_opts_t *o)
{
    int rc = scope_check(o, "series");
    if (rc)
        return rc;
    proto_ctl_request_t req = {.cmd = proto_str("series")};
    scope_args(&req, o);
    if (o->yoy)
        req_int(&req, "yoy", 1);
    return ask(o, &req, print_series);
}

static void print_ranking(const msgpack_object *body, const ctl_opts_t *o)
{
    render_lang_t lang = render_lang_pick(o->lang);
    static const render_col_t cols[] = {
        {"rank", "序号", COL_COUNT},       {"firm", "企业", COL_TEXT},
        {"name", "名称", COL_TEXT},        {"tier", "层级", COL_TEXT},
        {"value", "本期", COL_MILLI},      {"last_year", "上年同期", COL_MILLI},
        {"growth", "增速", COL_PCT},       {"contribution", "拉动", COL_PP},
        {"gap_share", "缺口贡献", COL_PP},
    };
    render_table_t t;
    render_table_init(&t, cols, sizeof cols / sizeof cols[0], is_yuan(body));
    const msgpack_object *fs = get_array(body, "firms");
    for (uint32_t i = 0; fs && i < fs->via.array.size; i++) {
        const msgpack_object *f = &fs->via.array.ptr[i];
        render_row(&t);
        render_int(&t, 0, i + 1);
        cell_str(&t, 1, f, "id");
        cell_str(&t, 2, f, "name");
        cell_str(&t, 3, f, "tier");
        cell_milli(&t, 4, f, "value_milli");
        cell_milli(&t, 5, f, "base_milli");
        cell_double(&t, 6, f, "growth_pct");
        cell_double(&t, 7, f, "contribution_pp");
        cell_double(&t, 8, f, "gap_pp");
    }
    if (!o->csv) {
        scope_title(body, lang);
        char total[48], base[48], rule[64], range[40];
        bool ok = true;
        fmt_milli(body, "total_milli", total, sizeof total);
        fmt_milli(body, "base_milli", base, sizeof base);
        get_str(body, "target_rule", rule, sizeof rule);
        get_str(body, "base_range", range, sizeof range);
        double g = get_double(body, "growth_pct", &ok),
               target = get_double(body, "target_pct", NULL),
               gap = get_double(body, "gap_pp", NULL);
        if (lang == RENDER_ZH)
            printf("本期 %s，上年同期（%s）%s，增速 %s%.2f %%，目标 %.2f %%（%s），缺口 %.2f "
                   "个百分点\n"
                   "按缺口贡献排序（拖累最大的在前）\n\n",
                   total, range, base, ok && g >= 0 ? "+" : "", ok ? g : 0.0, target, rule, gap);
        else
            printf("total %s against %s in %s: growth %s%.2f %%, target %.2f %% (%s), gap %.2f pp\n"
                   "firms by their share of the gap, the largest drag first\n\n",
                   total, base, range, ok && g >= 0 ? "+" : "", ok ? g : 0.0, target, rule, gap);
    }
    render_print(&t, out_format(o), lang, NULL, stdout);
    render_table_free(&t);
}

static int run_ranking(const ctl_opts_t *o)
{
    int rc = scope_check(o, "ranking");
    if (rc)
        return rc;
    proto_ctl_request_t req = {.cmd = proto_str("ranking")};
    scope_args(&req, o);
    if (o->target)
        req_str(&req, "target", o->target);
    if (o->given & OPT_LIMIT)
        req_int(&req, "limit", o->limit);
    return ask(o, &req, print_ranking);
}

/* One report row: label, firms, reporting, above scale, revenue, profit. */
static void report_row(render_table_t *t, const char *kind, const char *label,
                       const msgpack_object *m)
{
    render_row(t);
    render_text(t, 0, kind);
    render_text(t, 1, label);
    cell_int(t, 2, m, "firms");
    cell_int(t, 3, m, "reporting");
    cell_int(t, 4, m, "above_scale");
    cell_milli(t, 5, m, "revenue_milli");
    cell_milli(t, 6, m, "profit_milli");
}

static const char *tier_zh(const char *id)
{
    static const char *const map[][2] = {{"leading", "龙头企业"},
                                         {"backbone", "骨干企业"},
                                         {"potential", "潜力企业"},
                                         {"member", "一般成员"},
                                         {"provincial-tech-demo", "省级技术创新示范企业"},
                                         {"provincial-sme-scitech", "省级科技型中小企业"},
                                         {"specialized-new", "专精特新企业"},
                                         {"high-tech", "高新技术企业"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], id) == 0)
            return map[i][1];
    return id;
}

static void print_report(const msgpack_object *body, const ctl_opts_t *o)
{
    render_lang_t lang = render_lang_pick(o->lang);
    bool zh = lang == RENDER_ZH;
    char revm[PROTO_MAX_ID_LEN + 1], profm[PROTO_MAX_ID_LEN + 1], tz[64], line[48];
    get_str(body, "revenue_metric", revm, sizeof revm);
    get_str(body, "profit_metric", profm, sizeof profm);
    get_str(body, "timezone", tz, sizeof tz);
    fmt_milli(body, "above_scale_line_milli", line, sizeof line);
    static const render_col_t cols[] = {
        {"row", "类别", COL_TEXT},
        {"cluster / chain / group", "集群 / 产业链 / 分组", COL_TEXT},
        {"firms", "企业数", COL_COUNT},
        {"reporting", "已报", COL_COUNT},
        {"above-scale", "规上", COL_COUNT},
        {"revenue", "营业收入", COL_MILLI},
        {"profit", "利润总额", COL_MILLI},
    };
    render_table_t t;
    render_table_init(&t, cols, sizeof cols / sizeof cols[0], true);
    const msgpack_object *cls = get_array(body, "clusters");
    for (uint32_t i = 0; cls && i < cls->via.array.size; i++) {
        const msgpack_object *cl = &cls->via.array.ptr[i];
        char id[PROTO_MAX_ID_LEN + 1], label[PROTO_MAX_ID_LEN + 64];
        get_str(cl, "id", id, sizeof id);
        report_row(&t, zh ? "集群" : "cluster", id, cl);
        const msgpack_object *chains = get_array(cl, "chains");
        for (uint32_t k = 0; chains && k < chains->via.array.size; k++) {
            get_str(&chains->via.array.ptr[k], "id", label, sizeof label);
            report_row(&t, zh ? "产业链" : "chain", label, &chains->via.array.ptr[k]);
        }
        const msgpack_object *nc = proto_obj_get(cl, "no_chain");
        if (nc && nc->type == MSGPACK_OBJECT_MAP && (get_int(nc, "firms", NULL) || o->csv))
            report_row(&t, zh ? "产业链" : "chain",
                       zh ? "其他成员（未入链）" : "other members (no chain)", nc);
        const msgpack_object *tiers = get_array(cl, "tiers");
        for (uint32_t k = 0; tiers && k < tiers->via.array.size; k++) {
            get_str(&tiers->via.array.ptr[k], "id", label, sizeof label);
            report_row(&t, zh ? "层级" : "tier", zh ? tier_zh(label) : label,
                       &tiers->via.array.ptr[k]);
        }
        const msgpack_object *des = get_array(cl, "designations");
        for (uint32_t k = 0; des && k < des->via.array.size; k++) {
            get_str(&des->via.array.ptr[k], "id", label, sizeof label);
            report_row(&t, zh ? "称号" : "designation", zh ? tier_zh(label) : label,
                       &des->via.array.ptr[k]);
        }
    }
    /* a province's registry: a row per city, and the firms on none */
    const msgpack_object *cities = get_array(body, "cities");
    for (uint32_t i = 0; cities && i < cities->via.array.size; i++) {
        char id[PROTO_MAX_ID_LEN + 1];
        get_str(&cities->via.array.ptr[i], "id", id, sizeof id);
        report_row(&t, zh ? "城市" : "city", id, &cities->via.array.ptr[i]);
    }
    const msgpack_object *nocity = proto_obj_get(body, "no_city");
    if (cities && cities->via.array.size && nocity && nocity->type == MSGPACK_OBJECT_MAP &&
        (get_int(nocity, "firms", NULL) || o->csv))
        report_row(&t, zh ? "城市" : "city", zh ? "（未注明城市）" : "(no city)", nocity);
    if (!o->csv) {
        if (zh)
            printf("%lld 年度报告（时区 %s；规上标准：年%s ≥ %s 元）\n"
                   "产业链各行（含“其他成员”）相加等于集群；层级各行相加亦然；称号可重叠\n\n",
                   (long long)get_int(body, "year", NULL), tz, revm, line);
        else
            printf("clustermon report for %lld (time zone %s; above-scale: annual %s >= %s)\n"
                   "the chain rows (with other members) add up to the cluster, so do the tier "
                   "rows; designations may overlap\n\n",
                   (long long)get_int(body, "year", NULL), tz, revm, line);
    }
    render_print(&t, out_format(o), lang, tz, stdout);
    render_table_free(&t);
}

static void print_history(const msgpack_object *body, const ctl_opts_t *o)
{
    render_lang_t lang = render_lang_pick(o->lang);
    char tz[64];
    get_str(body, "timezone", tz, sizeof tz);
    static const render_col_t cols[] = {
        {"time", "时间", COL_TIME},     {"kind", "类型", COL_TEXT},  {"state", "状态", COL_TEXT},
        {"severity", "级别", COL_TEXT}, {"alert", "告警", COL_TEXT}, {"cluster", "集群", COL_TEXT},
        {"firm", "企业", COL_TEXT},     {"who", "操作人", COL_TEXT}, {"text", "说明", COL_TEXT},
    };
    render_table_t t;
    render_table_init(&t, cols, sizeof cols / sizeof cols[0], false);
    const msgpack_object *es = get_array(body, "entries");
    for (uint32_t i = 0; es && i < es->via.array.size; i++) {
        const msgpack_object *e = &es->via.array.ptr[i];
        char kind[32], text[1024];
        get_str(e, "kind", kind, sizeof kind);
        render_row(&t);
        cell_int(&t, 0, e, "ts_ms");
        render_text(&t, 1, kind);
        cell_str(&t, 2, e, "state");
        cell_str(&t, 3, e, "severity");
        if (strncmp(kind, "silence", 7) == 0) {
            char rule[PROTO_MAX_ID_LEN + 1];
            get_str(e, "rule", rule, sizeof rule);
            snprintf(text, sizeof text, "silence %lld (rule %s)",
                     (long long)get_int(e, "silence_id", NULL), rule);
            render_text(&t, 4, text);
        } else {
            cell_str(&t, 4, e, "alert_id");
        }
        cell_str(&t, 5, e, "cluster");
        cell_str(&t, 6, e, "firm");
        cell_str(&t, 7, e, "who");
        if (strcmp(kind, "alert") == 0) {
            cell_str(&t, 8, e, "summary");
        } else {
            char note[900];
            get_str(e, "note", note, sizeof note);
            bool ok = true;
            int64_t until = get_int(e, "until_ms", &ok);
            if (ok) {
                char at[64];
                render_time_text(until, lang, tz, at, sizeof at);
                snprintf(text, sizeof text, "%s (%s %s)", note, lang == RENDER_ZH ? "至" : "until",
                         at);
            } else {
                snprintf(text, sizeof text, "%s", note);
            }
            render_text(&t, 8, text);
        }
    }
    if (!o->csv)
        printf(lang == RENDER_ZH ? "告警历史（%lld 条匹配；时间为北京时间）\n\n"
                                 : "alert history (%lld matching; times in %s)\n\n",
               (long long)get_int(body, "matched", NULL), tz);
    render_print(&t, out_format(o), lang, tz, stdout);
    render_table_free(&t);
}

static int run_history(const ctl_opts_t *o)
{
    proto_ctl_request_t req = {.cmd = proto_str("history")};
    if (o->since)
        req_str(&req, "since", o->since);
    if (o->until)
        req_str(&req, "until", o->until);
    if (o->cluster)
        req_str(&req, "cluster", o->cluster);
    if (o->rule)
        req_str(&req, "rule", o->rule);
    if (o->firm)
        req_str(&req, "firm", o->firm);
    if (o->arg)
        req_str(&req, "alert", o->arg);
    if (o->given & OPT_LIMIT)
        req_int(&req, "limit", o->limit);
    return ask(o, &req, print_history);
}

static void print_ack(const msgpack_object *body, const ctl_opts_t *o)
{
    char id[PROTO_MAX_ALERT_ID_LEN + 1], who[128], at[64];
    get_str(body, "alert_id", id, sizeof id);
    get_str(body, "who", who, sizeof who);
    render_lang_t lang = render_lang_pick(o->lang);
    render_time_text(get_int(body, "at_ms", NULL), lang, NULL, at, sizeof at);
    printf(lang == RENDER_ZH ? "告警 %s 已由 %s 于 %s 确认（历史记录 %lld）\n"
                             : "alert %s acknowledged by %s at %s (history entry %lld)\n",
           id, who, at, (long long)get_int(body, "entry", NULL));
}

static int run_ack(const ctl_opts_t *o)
{
    if (!o->note || !*o->note) {
        fprintf(stderr, "clustermonctl: ack needs --note TEXT (why: what the firm answered)\n");
        return EXIT_USAGE;
    }
    proto_ctl_request_t req = {.cmd = proto_str("ack")};
    req_str(&req, "id", o->arg);
    req_str(&req, "note", o->note);
    return ask(o, &req, print_ack);
}

/*
 * passwd NAME [ROLE]: an http_users line for the dashboard, the password
 * read from the terminal (twice, not echoed) or the first line of stdin.
 * Local: no daemon.
 */
static int read_password(const char *prompt, char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool got = fgets(buf, (int)size, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int run_passwd(const ctl_opts_t *o)
{
    char pw[512], again[512], line[1024], err[256];
    int rc = EXIT_USAGE;
    if (read_password("password: ", pw, sizeof pw) != 0) {
        fprintf(stderr, "clustermonctl: passwd: no password on stdin\n");
        return EXIT_USAGE;
    }
    if (isatty(STDIN_FILENO) &&
        (read_password("again: ", again, sizeof again) != 0 || strcmp(pw, again) != 0)) {
        fprintf(stderr, "clustermonctl: passwd: the two passwords differ\n");
    } else if (webusers_entry(o->arg, o->arg2 ? o->arg2 : "viewer", pw, line, sizeof line, err,
                              sizeof err) != 0) {
        fprintf(stderr, "clustermonctl: passwd: %s\n", err);
    } else {
        fputs(line, stdout);
        rc = 0;
    }
    explicit_bzero(pw, sizeof pw);
    explicit_bzero(again, sizeof again);
    return rc;
}

/* ---- reseed: rebuild an HA partner's state_dir from this daemon's ----------------- */

/* One seed_read after another until name's first `size` bytes (its size when
 * listed) are in *buf (malloc()ed, *len bytes). Returns 0 or an exit status. */
static int reseed_fetch(conn_t *c, const char *name, uint64_t size, char **buf, size_t *len)
{
    size_t cap = size > 0 ? (size_t)size : 1, off = 0;
    char *p = malloc(cap);
    int status = 0;

    if (p == NULL)
        abort();
    while (status == 0 && off < size) {
        proto_ctl_request_t req = {.cmd = proto_str("seed_read")};
        zmq_msg_t msg;
        msgpack_zone zone;
        msgpack_object body;
        req_str(&req, "name", name);
        req_int(&req, "offset", (int64_t)off);
        msgpack_zone_init(&zone, 4096);
        status = call(c, &req, &msg, &zone, &body);
        if (status == 0) {
            const msgpack_object *d = proto_obj_get(&body, "data");
            if (d == NULL || d->type != MSGPACK_OBJECT_BIN) {
                fprintf(stderr, "clustermonctl: reseed: %s: a reply without data\n", name);
                status = EXIT_REPLY_ERROR;
            } else if (d->via.bin.size == 0) {
                fprintf(stderr,
                        "clustermonctl: reseed: %s: shorter than listed (%zu of %llu bytes): "
                        "removed or cut meanwhile; run reseed again\n",
                        name, off, (unsigned long long)size);
                status = EXIT_REPLY_ERROR;
            } else {
                if (off + d->via.bin.size > cap) {
                    cap = off + d->via.bin.size;
                    if ((p = realloc(p, cap)) == NULL)
                        abort();
                }
                memcpy(p + off, d->via.bin.ptr, d->via.bin.size);
                off += d->via.bin.size;
            }
        }
        msgpack_zone_destroy(&zone);
        zmq_msg_close(&msg);
    }
    if (status != 0) {
        free(p);
        return status;
    }
    *buf = p;
    *len = off;
    return 0;
}

/* The live side's state files: names and sizes (names sorted). */
typedef struct {
    char name[32];
    uint64_t size;
} reseed_file_t;

static int reseed_list(conn_t *c, reseed_file_t **ret, size_t *ret_n, char *state_dir,
                       size_t dirlen)
{
    proto_ctl_request_t req = {.cmd = proto_str("seed_files")};
    zmq_msg_t msg;
    msgpack_zone zone;
    msgpack_object body;
    msgpack_zone_init(&zone, 4096);
    int status = call(c, &req, &msg, &zone, &body);
    if (status == 0) {
        const msgpack_object *files = get_array(&body, "files");
        size_t n = files ? files->via.array.size : 0;
        reseed_file_t *v = calloc(n ? n : 1, sizeof *v);
        if (v == NULL)
            abort();
        for (size_t i = 0; i < n; i++) {
            get_str(&files->via.array.ptr[i], "name", v[i].name, sizeof v[i].name);
            v[i].size = (uint64_t)get_int(&files->via.array.ptr[i], "size", NULL);
        }
        get_str(&body, "state_dir", state_dir, dirlen);
        *ret = v;
        *ret_n = n;
    }
    msgpack_zone_destroy(&zone);
    zmq_msg_close(&msg);
    return status;
}

static const reseed_file_t *reseed_find(const reseed_file_t *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Fetches name (its listed size) into dir/name, atomically, 0600. */
static int reseed_copy(conn_t *c, const reseed_file_t *f, const char *dir, uint64_t *bytes)
{
    char *buf = NULL, path[4096], err[4096 + 256];
    size_t len = 0;
    int status = reseed_fetch(c, f->name, f->size, &buf, &len);
    if (status != 0)
        return status;
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    if (fileio_write_atomic(path, buf, len, 0600, err, sizeof err) != 0) {
        fprintf(stderr, "clustermonctl: reseed: %s\n", err);
        status = EXIT_REPLY_ERROR;
    }
    *bytes += len;
    free(buf);
    return status;
}

/*
 * `reseed DIR` with -e the live side's control endpoint: DIR (absent or
 * empty) becomes a consistent copy of its state: a snapshot taken now plus
 * every WAL segment after it, the alert history and the alert seqs. The
 * dead side then starts on DIR; the agents' spools resend it what came after
 * the copy, answered from memory where it already has it (daemon/seed.h).
 */
static int run_reseed(const ctl_opts_t *o)
{
    const char *dir = o->arg;
    conn_t c = {0};
    reseed_file_t *files = NULL;
    size_t nfiles = 0;
    char live_dir[4096] = "", name[32];
    uint64_t bytes = 0, snap = 0;
    DIR *d = opendir(dir);
    int status;

    if (d != NULL) {
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        closedir(d);
        if (!empty) {
            fprintf(stderr,
                    "clustermonctl: reseed: %s is not empty: a re-seed writes only into an "
                    "empty (or new) state directory; move the old one aside\n",
                    dir);
            return EXIT_USAGE;
        }
    } else if (errno != ENOENT || mkdir(dir, 0700) != 0) {
        fprintf(stderr, "clustermonctl: reseed: %s: %s\n", dir, strerror(errno));
        return EXIT_USAGE;
    }
    if ((status = conn_open(&c, o)) != 0)
        goto done;
    /* the history first: what is published during the copy is then at worst
     * missing from the new side's history, never in it twice */
    if ((status = reseed_list(&c, &files, &nfiles, live_dir, sizeof live_dir)) != 0)
        goto done;
    const reseed_file_t *h = reseed_find(files, nfiles, "history");
    if (h != NULL && (status = reseed_copy(&c, h, dir, &bytes)) != 0)
        goto done;
    {
        proto_ctl_request_t req = {.cmd = proto_str("seed_snapshot")};
        zmq_msg_t msg;
        msgpack_zone zone;
        msgpack_object body;
        msgpack_zone_init(&zone, 1024);
        status = call(&c, &req, &msg, &zone, &body);
        if (status == 0)
            snap = (uint64_t)get_int(&body, "snapshot", NULL);
        msgpack_zone_destroy(&zone);
        zmq_msg_close(&msg);
        if (status != 0)
            goto done;
    }
    snprintf(name, sizeof name, "snap-%016llu.snap", (unsigned long long)snap);
    /* written off the live side's loop: wait until it is listed (bounded) */
    const reseed_file_t *sf = NULL;
    for (int tries = 0; sf == NULL && tries < 600; tries++) {
        free(files);
        files = NULL;
        if ((status = reseed_list(&c, &files, &nfiles, live_dir, sizeof live_dir)) != 0)
            goto done;
        if ((sf = reseed_find(files, nfiles, name)) == NULL) {
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (sf == NULL) {
        fprintf(stderr,
                "clustermonctl: reseed: %s did not appear within 60 s (see the live "
                "daemon's log)\n",
                name);
        status = EXIT_REPLY_ERROR;
        goto done;
    }
    if ((status = reseed_copy(&c, sf, dir, &bytes)) != 0)
        goto done;
    /* every segment after the snapshot, contiguous to the newest */
    uint64_t first = 0, last = snap;
    for (size_t i = 0; i < nfiles; i++) {
        unsigned long long n;
        if (sscanf(files[i].name, "wal-%16llu.log", &n) != 1 || n <= snap)
            continue;
        if (n != last + 1) {
            fprintf(stderr,
                    "clustermonctl: reseed: WAL segment %llu is missing on the live side after "
                    "%llu (trimmed meanwhile?): run reseed again\n",
                    (unsigned long long)(last + 1), (unsigned long long)last);
            status = EXIT_REPLY_ERROR;
            goto done;
        }
        if ((status = reseed_copy(&c, &files[i], dir, &bytes)) != 0)
            goto done;
        if (first == 0)
            first = n;
        last = n;
    }
    const reseed_file_t *seqs = reseed_find(files, nfiles, "alert-seqs");
    if (seqs != NULL && (status = reseed_copy(&c, seqs, dir, &bytes)) != 0)
        goto done;
    if (fileio_sync_dir(dir) != 0) {
        fprintf(stderr, "clustermonctl: reseed: fsync %s: %s\n", dir, strerror(errno));
        status = EXIT_REPLY_ERROR;
        goto done;
    }
    printf("re-seeded %s from %s (state_dir %s): snapshot %llu", dir, o->endpoint, live_dir,
           (unsigned long long)snap);
    if (first != 0)
        printf(" + WAL segments %llu..%llu", (unsigned long long)first, (unsigned long long)last);
    printf("%s%s, %llu bytes\n", h ? ", history" : "", seqs ? ", alert-seqs" : "",
           (unsigned long long)bytes);
    printf("start clustermond on it; the agents' spools resend what came after the copy\n");
done:
    if (status != 0)
        fprintf(stderr,
                "clustermonctl: reseed: %s may hold a partial copy: empty it before "
                "trying again\n",
                dir);
    free(files);
    conn_close(&c);
    return status;
}

/* ---- the command table ------------------------------------------------------------ */

static const ctl_command_t commands[] = {
    {"status", "", "version, uptime, sockets, rates, agents, WAL, snapshots, recovery",
     "Shows the daemon's version, process id and uptime, each socket's endpoint and\n"
     "connected peers, samples applied (and per second over the last 10 s), batches\n"
     "acked and refused by reason, agents connected and known, alerts, the event\n"
     "loop's lag, the write-ahead log, the snapshots and what start-up recovery found.\n",
     0, 0, NEEDS_CONTROL, run_status},
    {"clusters", "[--year Y] [--days N]",
     "per cluster: firms, reporting, above-scale, silent, alerts",
     "One line per cluster: its chains, member firms, firms that reported for year Y,\n"
     "above-scale firms (revenue for Y at or above the line), firms silent for N days\n"
     "(default 45, see firms), alerts firing now, revenue for Y and the title.\n"
     "Y defaults to the current year in the daemon's time zone.\n",
     OPT_YEAR | OPT_DAYS, 0, NEEDS_CONTROL, run_clusters},
    {"cluster", "ID [--through YYYY-MM]", "one cluster year to date, per chain and tier",
     "Per chain (and the firms on no chain) and per tier of cluster ID: member firms,\n"
     "firms that reported in the period, above-scale firms (by last year's revenue, the\n"
     "way the year's directory is drawn up), and for every period metric the total from\n"
     "January through --through against the same months of the previous year, with the\n"
     "growth in percent. --through defaults to the last complete month.\n",
     OPT_THROUGH, 1, NEEDS_CONTROL, run_cluster},
    {"firms", "[--cluster C] [--silent] [--days N] [--as-of YYYY-MM-DD] [--all]",
     "the firms and their newest data; --silent: those that went quiet",
     "One line per firm (of cluster C): chain, tier, its newest data (the latest period\n"
     "it reported anything for, or its latest reading), days since that ended, and\n"
     "whether it is silent: no data for more than N days (default 45), or never any.\n"
     "Firms marked inactive in the registry are never silent. --silent lists only the\n"
     "silent firms; --as-of judges at the end of that day instead of now. --all adds\n"
     "the former members: firms that left the registry, whose figures are kept, shown\n"
     "as (left) with the date they left.\n",
     OPT_CLUSTER | OPT_SILENT | OPT_DAYS | OPT_AS_OF | OPT_ALL, 0, NEEDS_CONTROL, run_firms},
    {"report", "[--year Y] [--csv]",
     "per cluster: chains, other members, tiers, designations; revenue, profit",
     "Per cluster, per chain and the members on no chain (so the chain rows add up to\n"
     "the cluster), per tier and per designation: member firms, firms that reported\n"
     "revenue for year Y, above-scale firms (annual revenue at or above the line),\n"
     "revenue and profit for Y. Y defaults to the current year in the daemon's time\n"
     "zone. --csv and --json give exact amounts (decimal strings, three decimals).\n",
     OPT_YEAR | OPT_CSV, 0, NEEDS_CONTROL, run_report},
    {"totals", "--metric M --period P[..P] [--csv]",
     "one period metric's total per cluster and chain",
     "Per cluster and chain: member firms, how many reported for period P, and the\n"
     "total of period metric M for P (YYYY, YYYY-Qn or YYYY-MM), or for a range of\n"
     "them (2024-01..2024-06: the months cut into whole years, quarters and months).\n",
     OPT_METRIC | OPT_PERIOD | OPT_CSV, 0, NEEDS_CONTROL, run_totals},
    {"series",
     "--metric M (--cluster C [--chain X] [--tier T] [--designation D] | --firm F)\n"
     "                  --from P --to P [--by month|quarter|year] [--yoy] [--csv]",
     "one metric over time, with coverage per point",
     "One point per month (quarter, year) from P through P: the metric's total over\n"
     "the scope's firms, how many of them reported it and how many members the scope\n"
     "had (coverage); --yoy adds the same period a year before and the change. The\n"
     "sum of the points closes the table. A point nobody reported shows -, not 0.\n",
     OPT_METRIC | OPT_CLUSTER | OPT_FIRM | OPT_SCOPE | OPT_RANGE | OPT_YOY | OPT_CSV, 0,
     NEEDS_CONTROL, run_series},
    {"ranking",
     "--metric M --cluster C [--chain X] [--tier T] [--designation D] --from P --to P\n"
     "                  [--target PCT] [--limit N] [--csv]",
     "firms by their share of the scope's growth gap (drag firms)",
     "Each firm of the scope over the range against the same months a year before:\n"
     "growth, contribution to the scope's growth in percentage points, and share of the\n"
     "gap to the target (--target, default the growth rule on that cluster and chain,\n"
     "else 0): (last year x target - change) / scope's last year. The shares add up to\n"
     "the scope's gap; the largest drag comes first.\n",
     OPT_METRIC | OPT_CLUSTER | OPT_FIRM | OPT_SCOPE | OPT_RANGE | OPT_TARGET | OPT_LIMIT | OPT_CSV,
     0, NEEDS_CONTROL, run_ranking},
    {"history",
     "[ALERT_ID] [--since T] [--until T] [--cluster C] [--rule R] [--firm F] [--limit N]",
     "alert history: transitions, acknowledgements, silences",
     "Every alert published (firing, resolved, revised, flapping; not reminders), every\n"
     "acknowledgement and every silence added or removed, with who and why, oldest\n"
     "first: the newest N (default 1000) that match. T is YYYY-MM-DD or\n"
     "YYYY-MM-DDTHH:MM in the daemon's time zone, Unix ms, or a duration ago (7d).\n"
     "Kept for [alerting] history_retention (default 400d); survives restarts.\n",
     OPT_SINCE | OPT_CLUSTER | OPT_RULE | OPT_FIRM | OPT_LIMIT | OPT_CSV, -1, NEEDS_CONTROL,
     run_history},
    {"ack", "ALERT_ID --note TEXT", "acknowledge a firing alert: who, when, why",
     "Records that the firing alert ALERT_ID is being followed up: by whom (the key's\n"
     "name under CURVE, else local), when and why (--note: the firm's answer). The\n"
     "alert is marked in alerts and the acknowledgement is in the history; its\n"
     "reminders stop until the alert changes (resolves, is revised, fires anew).\n",
     OPT_NOTE, 1, NEEDS_CONTROL, run_ack},
    {"alerts", "", "the firing alerts",
     "One line per firing (or flapping) alert: its sequence number, severity, state,\n"
     "id and summary; --json gives each alert as clustermon-sub prints it, with its\n"
     "details, and the sequence number the list is current to.\n",
     0, 0, NEEDS_CONTROL, run_alerts},
    {"silence", "add|list|rm [ID] [--rule R --cluster C [--firm F] --for 2h --reason TEXT]",
     "silence a rule's alerts for a while; list; remove",
     "silence add: alerts of rule R in cluster C (only firm F's, with --firm) are\n"
     "tracked but not published for the duration (90s, 30m, 2h, 1d). silence list:\n"
     "the live silences. silence rm ID: end one now. Silences expire by themselves\n"
     "and survive restarts.\n",
     OPT_RULE | OPT_CLUSTER | OPT_FIRM | OPT_FOR | OPT_REASON, 2, NEEDS_CONTROL, run_silence},
    {"reload", "", "re-read the config and the firm registry (as SIGHUP does)",
     "Asks the daemon to read its config and firm registry again. A broken one is\n"
     "refused with its file:line: field: reason, and the daemon keeps running on the\n"
     "previous one.\n",
     0, 0, NEEDS_CONTROL, run_reload},
    {"import-baseline", "FILE [--ingest ENDPOINT]", "send last year's figures from a CSV file",
     "Sends FILE (the agents' CSV: enterprise,metric,value,period) to the daemon's\n"
     "ingest socket in acknowledged batches, like an agent: the growth rules compare\n"
     "this year with them. The ingest endpoint defaults to $CLUSTERMON_INGEST or\n"
     "tcp://127.0.0.1:7601.\n",
     OPT_INGEST, 1, NEEDS_INGEST, run_import},
    {"describe", "", "metrics, clusters, firms and commands this key may use",
     "What a client needs to talk to this daemon: the protocol versions and the request\n"
     "size limit, every metric (period or reading, and its unit), and, narrowed to the\n"
     "key under CURVE (--key), the clusters it may see, the firms it may report for and\n"
     "the control commands it may run with their arguments. Any key may ask, an agent's\n"
     "too. --json gives the whole reply (proto/PROTOCOL.md, section 4.7).\n",
     0, 0, NEEDS_CONTROL, run_describe},
    {"ping", "", "check that the daemon answers", "Prints pong if the daemon answers.\n", 0, 0,
     NEEDS_CONTROL, run_ping},
    {"passwd", "NAME [viewer|admin|firm:ID]",
     "an http_users line for the dashboard (no daemon needed)",
     "Reads a password (from the terminal, twice, or the first line of stdin) and prints\n"
     "NAME:ROLE:HASH for the file [daemon] http_users names; HASH is libsodium's\n"
     "crypto_pwhash_str (Argon2id). ROLE defaults to viewer: viewers read the\n"
     "dashboard, admins may also add silences there. Append the line to the file and\n"
     "restart clustermond.\n",
     0, 2, NEEDS_NOTHING, run_passwd},
    {"reseed", "DIR", "rebuild an HA partner's state directory from this daemon's",
     "For an HA pair whose other daemon lost its disk: with -e this (live) daemon's\n"
     "control endpoint, asks it for a snapshot now and copies that snapshot, every WAL\n"
     "segment after it, its alert history and alert seqs into DIR (absent or empty),\n"
     "over the control socket (admin key). Start the other daemon on DIR: the agents'\n"
     "spools (--ha) resend what came after the copy. The live daemon does not stop.\n",
     0, 1, NEEDS_CONTROL, run_reseed},
    {"keygen", "NAME [-o DIR] [--force]", "make a CURVE key pair (no daemon needed)",
     "Makes a new CURVE key pair and writes DIR/NAME.key (public and secret key; it\n"
     "stays on the machine that uses it) and DIR/NAME.pub (the public key, for the\n"
     "other side), both mode 0600, and prints the public key. NAME is letters,\n"
     "digits, '.', '_' and '-' (not starting with '.'); DIR defaults to the current\n"
     "directory. An existing pair is never replaced without --force. The daemon's\n"
     "pair goes in its curve_secret_key; a client's in its --key, with the daemon's\n"
     ".pub as --server-key. Exit status 1: nothing was written.\n",
     OPT_OUTPUT_DIR | OPT_FORCE, 1, NEEDS_NOTHING, run_keygen},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const ctl_command_t *command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static const char exit_text[] =
    "Exit status: 0 ok, 1 the daemon refused the request (the reason is printed),\n"
    "2 usage error, 3 no reply (daemon not running or not reachable).\n";

/* ---- the option table ------------------------------------------------------------- */

/* How an option's value is kept in ctl_opts_t. */
typedef enum {
    ARG_FLAG,    /* bool, set */
    ARG_STR,     /* const char *, the argument */
    ARG_LONG,    /* long, the argument in [min, max] */
    ARG_INT,     /* int, likewise */
    ARG_VERSION, /* print the version and exit */
} ctl_arg_kind_t;

/*
 * Every option, once: getopt_long's table, the short option string and each
 * --help line are made from it. bit 0 marks the common options, which every
 * command takes; the others go only with the commands whose opts have their
 * bit. Rows are in getopt's order (its "ambiguous" message lists them so);
 * the help lists the common options, then the command's, in this order too.
 */
typedef struct {
    const char *name; /* the long option, without "--" */
    int letter;       /* the short option, or 0 */
    const char *arg;  /* the argument's name in the help, or NULL: takes none */
    unsigned bit;     /* OPT_*, or 0: common */
    ctl_arg_kind_t kind;
    size_t offset;   /* of the value in ctl_opts_t */
    long min, max;   /* ARG_LONG, ARG_INT: the accepted range */
    const char *bad; /* ARG_LONG, ARG_INT: "'ARG' is not ..." (" MIN..MAX" follows if show_range) */
    bool show_range;
    const char *help; /* after '\n': lines of their own, in the same column */
} ctl_option_t;

#define AT(field) offsetof(ctl_opts_t, field)
static const ctl_option_t options[] = {
    {"control", 'e', "ENDPOINT", 0, ARG_STR, AT(endpoint), 0, 0, NULL, false,
     "the daemon's control endpoint\n(default $CLUSTERMON_CONTROL or tcp://127.0.0.1:7603)"},
    {"timeout", 't', "MS", 0, ARG_INT, AT(timeout_ms), 1, 3600000, "is not a positive number of ms",
     false, "how long to wait for a reply (default 5000)"},
    {"json", 'j', NULL, 0, ARG_FLAG, AT(json), 0, 0, NULL, false,
     "print the reply as JSON (amounts as exact decimal strings)"},
    {"lang", 0, "en|zh", 0, ARG_STR, AT(lang), 0, 0, NULL, false,
     "table language (default: zh if LANG is zh_*, else en)"},
    {"csv", 0, NULL, OPT_CSV, ARG_FLAG, AT(csv), 0, 0, NULL, false,
     "print CSV (exact amounts, ISO 8601 times)"},
    {"from", 0, "P", OPT_RANGE, ARG_STR, AT(from), 0, 0, NULL, false,
     "first period: YYYY, YYYY-Qn or YYYY-MM"},
    {"to", 0, "P", OPT_RANGE, ARG_STR, AT(to), 0, 0, NULL, false, "last period"},
    {"by", 0, "month|quarter|year", OPT_RANGE, ARG_STR, AT(by), 0, 0, NULL, false,
     "one point per month (default), quarter or year"},
    {"yoy", 0, NULL, OPT_YOY, ARG_FLAG, AT(yoy), 0, 0, NULL, false,
     "with the same period a year before"},
    {"chain", 0, "X", OPT_SCOPE, ARG_STR, AT(chain), 0, 0, NULL, false,
     "only the firms of chain X ('none': on no chain)"},
    {"tier", 0, "T", OPT_SCOPE, ARG_STR, AT(tier), 0, 0, NULL, false,
     "only tier T: leading, backbone, potential, member"},
    {"designation", 0, "D", OPT_SCOPE, ARG_STR, AT(designation), 0, 0, NULL, false,
     "only firms with designation D"},
    {"city", 0, "ID", OPT_SCOPE, ARG_STR, AT(city), 0, 0, NULL, false,
     "only firms of city ID (a province's registry city column)"},
    {"target", 0, "PCT", OPT_TARGET, ARG_STR, AT(target), 0, 0, NULL, false,
     "growth target in % (default: the scope's growth rule)"},
    {"since", 0, "T", OPT_SINCE, ARG_STR, AT(since), 0, 0, NULL, false,
     "from T: YYYY-MM-DD[THH:MM], Unix ms, or 7d / 24h ago"},
    {"until", 0, "T", OPT_SINCE, ARG_STR, AT(until), 0, 0, NULL, false, "before T"},
    {"note", 0, "TEXT", OPT_NOTE, ARG_STR, AT(note), 0, 0, NULL, false,
     "why (shown with the alert and in the history)"},
    {"limit", 0, "N", OPT_LIMIT, ARG_LONG, AT(limit), 1, 100000, "is not a number in", true,
     "at most N rows (the newest / the first)"},
    {"year", 'y', "Y", OPT_YEAR, ARG_LONG, AT(year), PROTO_MIN_YEAR, PROTO_MAX_YEAR,
     "is not a year in", true, "the year (default: the current one)"},
    {"metric", 'm', "M", OPT_METRIC, ARG_STR, AT(metric), 0, 0, NULL, false,
     "a period metric, e.g. revenue"},
    {"period", 'p', "P", OPT_PERIOD, ARG_STR, AT(period), 0, 0, NULL, false,
     "YYYY, YYYY-Qn or YYYY-MM"},
    {"cluster", 'c', "C", OPT_CLUSTER, ARG_STR, AT(cluster), 0, 0, NULL, false,
     "only the firms of cluster C"},
    {"silent", 's', NULL, OPT_SILENT, ARG_FLAG, AT(silent), 0, 0, NULL, false,
     "only the silent firms"},
    {"days", 'd', "N", OPT_DAYS, ARG_LONG, AT(days), 1, 36500, "is not a number of days in", true,
     "silent after N days without data (default 45)"},
    {"as-of", 0, "YYYY-MM-DD", OPT_AS_OF, ARG_STR, AT(as_of), 0, 0, NULL, false,
     "judge silence at the end of that day"},
    {"through", 0, "YYYY-MM", OPT_THROUGH, ARG_STR, AT(through), 0, 0, NULL, false,
     "the last month of the year to date"},
    {"rule", 'r', "R", OPT_RULE, ARG_STR, AT(rule), 0, 0, NULL, false,
     "the rule (silence: the one to silence)"},
    {"firm", 'f', "F", OPT_FIRM, ARG_STR, AT(firm), 0, 0, NULL, false,
     "one firm (silence: only its alerts)"},
    {"for", 0, "DURATION", OPT_FOR, ARG_STR, AT(duration), 0, 0, NULL, false,
     "how long (90s, 30m, 2h, 1d)"},
    {"reason", 0, "TEXT", OPT_REASON, ARG_STR, AT(reason), 0, 0, NULL, false,
     "why (shown with the silence)"},
    {"ingest", 'i', "ENDPOINT", OPT_INGEST, ARG_STR, AT(ingest), 0, 0, NULL, false,
     "the daemon's ingest endpoint"},
    {"output-dir", 'o', "DIR", OPT_OUTPUT_DIR, ARG_STR, AT(output_dir), 0, 0, NULL, false,
     "where to write the pair (default .)"},
    {"force", 0, NULL, OPT_FORCE, ARG_FLAG, AT(force), 0, 0, NULL, false,
     "replace an existing pair"},
    {"all", 0, NULL, OPT_ALL, ARG_FLAG, AT(all), 0, 0, NULL, false,
     "former members too (firms that left the registry)"},
    {"server-key", 0, "KEY", 0, ARG_STR, AT(server_key_arg), 0, 0, NULL, false,
     "the daemon's CURVE public key: Z85 text or a .pub/.key\nfile (default "
     "$CLUSTERMON_SERVER_KEY); needs --key"},
    {"key", 0, "FILE", 0, ARG_STR, AT(key_arg), 0, 0, NULL, false,
     "this client's key pair, from keygen (default\n$CLUSTERMON_KEY)"},
    {"help", 'h', NULL, 0, ARG_FLAG, AT(help), 0, 0, NULL, false,
     "help (for a command: clustermonctl COMMAND --help)"},
    {"version", 'V', NULL, 0, ARG_VERSION, 0, 0, 0, NULL, false, "print the version"},
};
#undef AT
#define NOPTIONS (sizeof options / sizeof options[0])
#define LONG_ONLY 256 /* getopt's value for options[i] without a letter: LONG_ONLY + i */

/* The help lines of the options whose bit is among bits (0: the common ones). */
static void options_usage(unsigned bits, FILE *out)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const ctl_option_t *op = &options[i];
        if (bits ? !(op->bit & bits) : op->bit != 0)
            continue;
        char flag[5] = "    ", longopt[64];
        if (op->letter)
            snprintf(flag, sizeof flag, "-%c, ", op->letter);
        snprintf(longopt, sizeof longopt, "--%s%s%s", op->name, op->arg ? " " : "",
                 op->arg ? op->arg : "");
        const char *line = op->help, *nl;
        fprintf(out, "  %s%-19s ", flag, longopt);
        while ((nl = strchr(line, '\n')) != NULL) {
            fprintf(out, "%.*s\n%26s", (int)(nl - line), line, "");
            line = nl + 1;
        }
        fprintf(out, "%s\n", line);
    }
}

/* getopt_long's table and short option string for options[]. */
static void options_getopt(struct option *ret_long, char *ret_short)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const ctl_option_t *op = &options[i];
        int val = op->letter ? op->letter : LONG_ONLY + (int)i;
        ret_long[i] =
            (struct option){op->name, op->arg ? required_argument : no_argument, NULL, val};
        if (op->letter) {
            *ret_short++ = (char)op->letter;
            if (op->arg)
                *ret_short++ = ':';
        }
    }
    ret_long[NOPTIONS] = (struct option){NULL, 0, NULL, 0};
    *ret_short = '\0';
}

/* The row getopt_long's return value c stands for, or NULL (unknown). */
static const ctl_option_t *option_of(int c)
{
    if (c >= LONG_ONLY && (size_t)(c - LONG_ONLY) < NOPTIONS)
        return &options[c - LONG_ONLY];
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].letter && options[i].letter == c)
            return &options[i];
    return NULL;
}

/* Keeps op's value (arg: its argument) in o. Returns 0, or EXIT_USAGE after
 * saying why. */
static int option_set(const ctl_option_t *op, const char *arg, ctl_opts_t *o)
{
    char *at = (char *)o + op->offset;
    long v;
    switch (op->kind) {
    case ARG_FLAG: *(bool *)at = true; break;
    case ARG_STR: *(const char **)at = arg; break;
    case ARG_LONG:
    case ARG_INT:
        if (!args_parse_long(arg, op->min, op->max, &v)) {
            fprintf(stderr, "clustermonctl: --%s: '%s' %s", op->name, arg, op->bad);
            if (op->show_range)
                fprintf(stderr, " %ld..%ld", op->min, op->max);
            fprintf(stderr, "\n");
            return EXIT_USAGE;
        }
        if (op->kind == ARG_INT)
            *(int *)at = (int)v;
        else
            *(long *)at = v;
        break;
    case ARG_VERSION: break;
    }
    o->given |= op->bit;
    return 0;
}

static const char *opt_name(unsigned bit)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].bit == bit)
            return options[i].name;
    return "?";
}

static void usage(FILE *out)
{
    fprintf(out, "usage: clustermonctl [options] COMMAND [arguments]\n\n"
                 "Queries a running clustermond over its control socket.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions:\n");
    options_usage(0, out);
    fprintf(out, "\n%s", exit_text);
}

static void command_usage(const ctl_command_t *c, FILE *out)
{
    fprintf(out, "usage: clustermonctl [options] %s%s%s\n\n%s\noptions:\n", c->name,
            *c->synopsis ? " " : "", c->synopsis, c->help);
    options_usage(0, out);
    if (c->opts)
        options_usage(c->opts, out);
    fprintf(out, "\n%s", exit_text);
}

int main(int argc, char **argv)
{
    struct option longopts[NOPTIONS + 1];
    char shortopts[2 * NOPTIONS + 1];
    options_getopt(longopts, shortopts);
    setlocale(LC_CTYPE, "");
    ctl_opts_t o = {.endpoint = getenv("CLUSTERMON_CONTROL"),
                    .timeout_ms = 5000,
                    .ingest = getenv("CLUSTERMON_INGEST")};
    if (!o.ingest || !*o.ingest)
        o.ingest = "tcp://127.0.0.1:7601";
    if (!o.endpoint || !*o.endpoint)
        o.endpoint = "tcp://127.0.0.1:7603";
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const ctl_option_t *op = option_of(c);
        if (!op) {
            usage(stderr);
            return EXIT_USAGE;
        }
        if (op->kind == ARG_VERSION) {
            printf("clustermonctl %s\n", CLUSTERMON_VERSION);
            return 0;
        }
        if (option_set(op, optarg, &o) != 0)
            return EXIT_USAGE;
    }
    bool help = o.help;
    if (optind < argc && strcmp(argv[optind], "help") == 0) { /* clustermonctl help [COMMAND] */
        help = true;
        optind++;
    }
    if (optind >= argc) {
        if (help) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "clustermonctl: a command is needed\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    const ctl_command_t *cmd = command_find(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "clustermonctl: unknown command '%s' (", argv[optind]);
        for (size_t i = 0; i < NCOMMANDS; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", commands[i].name);
        fprintf(stderr, ")\n");
        return EXIT_USAGE;
    }
    if (help) {
        command_usage(cmd, stdout);
        return 0;
    }
    int nargs = argc - optind - 1;
    if (cmd->takes_arg < 0    ? nargs > 1
        : cmd->takes_arg == 0 ? nargs != 0
                              : nargs < 1 || nargs > cmd->takes_arg) {
        fprintf(stderr, "clustermonctl: %s %s\n", cmd->name,
                cmd->takes_arg < 0    ? "takes at most one argument"
                : cmd->takes_arg == 0 ? "takes no arguments"
                : cmd->takes_arg == 1 ? "takes one argument"
                                      : "takes one or two arguments");
        command_usage(cmd, stderr);
        return EXIT_USAGE;
    }
    o.arg = nargs >= 1 ? argv[optind + 1] : NULL;
    o.arg2 = nargs >= 2 ? argv[optind + 2] : NULL;
    unsigned extra = o.given & ~cmd->opts;
    if (extra) {
        fprintf(stderr, "clustermonctl: --%s does not go with %s\n", opt_name(extra & -extra),
                cmd->name);
        command_usage(cmd, stderr);
        return EXIT_USAGE;
    }
    if (cmd->needs != NEEDS_NOTHING) {
        char err[1024];
        if (clientkey_init(&o.key, o.server_key_arg, o.key_arg, err, sizeof err) != 0) {
            fprintf(stderr, "clustermonctl: %s\n", err);
            return EXIT_USAGE;
        }
    }
    int status = cmd->run(&o);
    clientkey_clear(&o.key);
    return status;
}
