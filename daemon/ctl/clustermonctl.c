/*
 * clustermonctl -- the control client: sends one ctl request to the
 * daemon's control socket and prints the reply as a table or as JSON.
 *
 * The daemon is trusted here (it is ours), but a missing daemon is not: every
 * wait is bounded by --timeout, and the socket never lingers.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "proto/proto.h"

#define EXIT_REPLY_ERROR 1
#define EXIT_USAGE 2
#define EXIT_NO_REPLY 3

typedef struct {
    const char *endpoint;
    int timeout_ms;
    bool json;
} ctl_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clustermonctl [options] COMMAND [command options]\n"
            "\n"
            "Queries a running clustermond over its control socket.\n"
            "\n"
            "commands:\n"
            "  report [--year Y] [--json]   per cluster and chain: member firms, reporting firms,\n"
            "                               above-scale firms, revenue and profit for year Y\n"
            "                               (default: the current year in the daemon's time zone)\n"
            "  totals --metric M --period P per cluster and chain: firms, firms that reported,\n"
            "                               and the total of period metric M for period P\n"
            "                               (YYYY, YYYY-Qn or YYYY-MM)\n"
            "  status [--json]              version, uptime, counters\n"
            "  ping                         check that the daemon answers\n"
            "\n"
            "options:\n"
            "  -e, --control ENDPOINT  the daemon's control endpoint\n"
            "                          (default $CLUSTERMON_CONTROL or tcp://127.0.0.1:7603)\n"
            "  -t, --timeout MS        how long to wait for the reply (default 5000)\n"
            "  -j, --json              print the reply as JSON\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "\n"
            "Exit status: 0 ok, 1 the daemon refused the request, 2 usage error,\n"
            "3 no reply (daemon not running or not reachable).\n");
}

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
            /* milli-unit amounts are shown in units, the way people read them */
            size_t kl = strlen(key);
            if (kl > 6 && strcmp(key + kl - 6, "_milli") == 0) {
                key[kl - 6] = '\0';
                if (json_is_integer(v)) {
                    json_int_t mv = json_integer_value(v);
                    json_t *u = mv % 1000 == 0 ? json_integer(mv / 1000) : json_real((double)mv / 1000.0);
                    json_decref(v);
                    v = u;
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

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int64_t get_int(const msgpack_object *map, const char *key, bool *ok)
{
    const msgpack_object *v = get(map, key);
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
    const msgpack_object *v = get(map, key);
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

static void print_tally_row(const msgpack_object *t, const char *label)
{
    char rev[48], profit[48];
    fmt_milli(t, "revenue_milli", rev, sizeof rev);
    fmt_milli(t, "profit_milli", profit, sizeof profit);
    printf("%-28s %6lld %9lld %11lld %18s %16s\n", label, (long long)get_int(t, "firms", NULL),
           (long long)get_int(t, "reporting", NULL), (long long)get_int(t, "above_scale", NULL), rev,
           profit);
}

static void print_report(const msgpack_object *body)
{
    char tz[64], line[48], revm[PROTO_MAX_ID_LEN + 1], profm[PROTO_MAX_ID_LEN + 1];
    get_str(body, "timezone", tz, sizeof tz);
    get_str(body, "revenue_metric", revm, sizeof revm);
    get_str(body, "profit_metric", profm, sizeof profm);
    fmt_milli(body, "above_scale_line_milli", line, sizeof line);
    printf("clustermon report for %lld (time zone %s; above-scale: annual %s >= %s)\n\n",
           (long long)get_int(body, "year", NULL), tz, revm, line);
    printf("%-28s %6s %9s %11s %18s %16s\n", "cluster / chain", "firms", "reporting",
           "above-scale", revm, profm);
    const msgpack_object *cls = get(body, "clusters");
    if (!cls || cls->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < cls->via.array.size; i++) {
        const msgpack_object *cl = &cls->via.array.ptr[i];
        char id[PROTO_MAX_ID_LEN + 1], label[PROTO_MAX_ID_LEN + 8];
        get_str(cl, "id", id, sizeof id);
        print_tally_row(cl, id);
        const msgpack_object *chains = get(cl, "chains");
        for (uint32_t k = 0; chains && chains->type == MSGPACK_OBJECT_ARRAY &&
                             k < chains->via.array.size; k++) {
            const msgpack_object *ch = &chains->via.array.ptr[k];
            get_str(ch, "id", id, sizeof id);
            snprintf(label, sizeof label, "  %s", id);
            print_tally_row(ch, label);
        }
    }
}

static void print_totals(const msgpack_object *body)
{
    char metric[PROTO_MAX_ID_LEN + 1], unit[64], period[16];
    get_str(body, "metric", metric, sizeof metric);
    get_str(body, "unit", unit, sizeof unit);
    get_str(body, "period", period, sizeof period);
    printf("%s for %s (%s)\n\n", metric, period, unit);
    printf("%-28s %6s %9s %18s\n", "cluster / chain", "firms", "reporting", "total");
    const msgpack_object *cls = get(body, "clusters");
    for (uint32_t i = 0; cls && cls->type == MSGPACK_OBJECT_ARRAY && i < cls->via.array.size; i++) {
        const msgpack_object *cl = &cls->via.array.ptr[i];
        const msgpack_object *chains = get(cl, "chains");
        uint32_t n = chains && chains->type == MSGPACK_OBJECT_ARRAY ? chains->via.array.size : 0;
        for (uint32_t k = 0; k <= n; k++) {
            const msgpack_object *row = k == 0 ? cl : &chains->via.array.ptr[k - 1];
            char id[PROTO_MAX_ID_LEN + 1], label[PROTO_MAX_ID_LEN + 8], total[48];
            get_str(row, "id", id, sizeof id);
            snprintf(label, sizeof label, "%s%s", k ? "  " : "", id);
            fmt_milli(row, "total_milli", total, sizeof total);
            printf("%-28s %6lld %9lld %18s\n", label, (long long)get_int(row, "firms", NULL),
                   (long long)get_int(row, "reporting", NULL), total);
        }
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

static int request(const ctl_opts_t *o, const proto_ctl_request_t *req, const char *cmd)
{
    int status = EXIT_NO_REPLY;
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    if (proto_ctl_request_encode(req, &out) != PROTO_OK) {
        fprintf(stderr, "clustermonctl: cannot encode the request\n");
        msgpack_sbuffer_destroy(&out);
        return EXIT_USAGE;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sock, o->endpoint) != 0) {
        fprintf(stderr, "clustermonctl: cannot connect to %s: %s\n", o->endpoint,
                zmq_strerror(errno));
        status = EXIT_USAGE;
        goto done;
    }
    if (zmq_send(sock, out.data, out.size, 0) < 0) {
        fprintf(stderr, "clustermonctl: send to %s: %s\n", o->endpoint, zmq_strerror(errno));
        goto done;
    }
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&item, 1, o->timeout_ms);
    if (rc <= 0) {
        fprintf(stderr, "clustermonctl: no reply from %s within %d ms (is clustermond running?)\n",
                o->endpoint, o->timeout_ms);
        goto done;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
        fprintf(stderr, "clustermonctl: receive: %s\n", zmq_strerror(errno));
        zmq_msg_close(&msg);
        goto done;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    bool ok = false;
    proto_str_t reason = {0};
    msgpack_object body;
    char err[PROTO_ERRLEN];
    if (proto_ctl_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &zone, &ok, &reason, &body,
                               err, sizeof err) != PROTO_OK) {
        fprintf(stderr, "clustermonctl: malformed reply from %s: %s\n", o->endpoint, err);
    } else if (!ok) {
        fprintf(stderr, "clustermonctl: %s: " PROTO_STR_FMT "\n", cmd, PROTO_STR_ARG(reason));
        status = EXIT_REPLY_ERROR;
    } else {
        if (o->json) {
            json_t *j = to_json(&body, 0);
            char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
            if (s)
                puts(s);
            free(s);
            json_decref(j);
        } else if (strcmp(cmd, "report") == 0) {
            print_report(&body);
        } else if (strcmp(cmd, "totals") == 0) {
            print_totals(&body);
        } else {
            print_generic(&body, 0);
        }
        status = 0;
    }
    msgpack_zone_destroy(&zone);
    zmq_msg_close(&msg);
done:
    zmq_close(sock);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&out);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"control", required_argument, NULL, 'e'}, {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},          {"year", required_argument, NULL, 'y'},
        {"metric", required_argument, NULL, 'm'},  {"period", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},          {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    ctl_opts_t o = {.endpoint = getenv("CLUSTERMON_CONTROL"), .timeout_ms = 5000};
    if (!o.endpoint || !*o.endpoint)
        o.endpoint = "tcp://127.0.0.1:7603";
    long year = -1;
    const char *metric = NULL, *period = NULL;
    int c;
    char *end;
    /* Options may come before or after the command (GNU getopt permutes). */
    while ((c = getopt_long(argc, argv, "e:t:jy:m:p:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'm': metric = optarg; break;
        case 'p': period = optarg; break;
        case 'e': o.endpoint = optarg; break;
        case 't':
            o.timeout_ms = (int)strtol(optarg, &end, 10);
            if (*end || o.timeout_ms <= 0) {
                fprintf(stderr, "clustermonctl: --timeout: '%s' is not a positive number of ms\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j': o.json = true; break;
        case 'y':
            year = strtol(optarg, &end, 10);
            if (*end || year < PROTO_MIN_YEAR || year > PROTO_MAX_YEAR) {
                fprintf(stderr, "clustermonctl: --year: '%s' is not a year in %d..%d\n", optarg,
                        PROTO_MIN_YEAR, PROTO_MAX_YEAR);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("clustermonctl %s\n", CLUSTERMON_VERSION); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "clustermonctl: %s\n",
                optind >= argc ? "a command is needed" : "one command at a time");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "report") != 0 && strcmp(cmd, "status") != 0 && strcmp(cmd, "ping") != 0 &&
        strcmp(cmd, "totals") != 0) {
        fprintf(stderr, "clustermonctl: unknown command '%s' (report, totals, status, ping)\n", cmd);
        return EXIT_USAGE;
    }
    bool is_totals = strcmp(cmd, "totals") == 0;
    if (is_totals != (metric != NULL) || is_totals != (period != NULL)) {
        fprintf(stderr, "clustermonctl: totals needs --metric and --period (and only totals takes them)\n");
        return EXIT_USAGE;
    }
    if (year >= 0 && strcmp(cmd, "report") != 0) {
        fprintf(stderr, "clustermonctl: --year goes with report\n");
        return EXIT_USAGE;
    }
    proto_ctl_request_t req = {.cmd = proto_str(cmd)};
    if (year >= 0) {
        req.args[0] = (proto_ctl_arg_t){.key = proto_str("year"), .kind = PROTO_ARG_INT, .ival = year};
        req.nargs = 1;
    }
    if (is_totals) {
        req.args[0] = (proto_ctl_arg_t){.key = proto_str("metric"), .kind = PROTO_ARG_STR,
                                        .sval = proto_str(metric)};
        req.args[1] = (proto_ctl_arg_t){.key = proto_str("period"), .kind = PROTO_ARG_STR,
                                        .sval = proto_str(period)};
        req.nargs = 2;
    }
    return request(&o, &req, cmd);
}
