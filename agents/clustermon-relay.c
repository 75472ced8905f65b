/*
 * clustermon-relay.c -- one alert endpoint for the alerts of several city
 * daemons (a province's subscribers follow every city through it).
 *
 * The stream goes through ZeroMQ's own proxy, zmq_proxy_steerable, in a
 * thread of its own: an XSUB connected to every city's alerts endpoint and
 * an XPUB bound for the subscribers. Messages pass untouched, so each keeps
 * its city's topic, cluster and per-cluster seq, and clustermon-sub's gap
 * detection works through the relay as it does on a city. Subscriptions
 * travel the other way through the same proxy: a subscriber's prefix
 * becomes the relay's subscription at every city (the city narrows it to
 * what the relay's own key may see).
 *
 * What the proxy cannot do is narrow one subscriber's subscription, as the
 * daemon's gated XPUB does. So the relay carries a fixed scope (--clusters;
 * its upstream key must be narrowed to exactly those at the cities) and
 * admits, through ZAP on its bound sockets, only keys whose access rows let
 * them see every cluster of that scope (agents/relayacl.h). A key that may
 * see less is refused at the handshake.
 *
 * The relay also binds a control endpoint (--control) that answers `alerts`
 * -- the Clone snapshot -- with the union of every city's snapshot
 * (agents/snapmerge.h), so `clustermon-sub -e RELAY -C RELAY-CONTROL`
 * resynchronises through the relay exactly as it would from one daemon;
 * `ping`; and `status` (the proxy's message counters). Everything else
 * is for the cities' own control endpoints.
 *
 * The main thread answers ZAP and control requests with zmq_poll and stops
 * the proxy with TERMINATE on SIGINT or SIGTERM.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zmq.h>

#include "agents/args.h"
#include "agents/relayacl.h"
#include "agents/snapmerge.h"
#include "proto/clock.h"
#include "proto/keyfile.h"
#include "proto/proto.h"

#define PROG "clustermon-relay"

#define MAX_CITIES 32
#define MAX_SCOPE 256
#define DEFAULT_HWM 100000
#define DEFAULT_SNAPSHOT_MS 3000 /* under clustermon-sub's 5 s wait for a snapshot */
#define POLL_STEP_MS 250
#define STEER_ENDPOINT "inproc://clustermon-relay.steer"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN_ALERTS "alerts"
#define ZAP_DOMAIN_CONTROL "control"
#define CONTROL_MAX_FRAME (1 << 20)

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct {
    char name[64];
    char *alerts, *control;           /* endpoints, owned (one strdup'ed spec, cut in place) */
    char server[KEYFILE_Z85_LEN + 1]; /* its public key, "" without CURVE */
} city_t;

typedef struct {
    city_t cities[MAX_CITIES];
    size_t ncities;
    const char *bind, *control_bind, *key_path, *access_path;
    const char *scope[MAX_SCOPE];
    size_t nscope;
    long hwm, snapshot_ms;
    bool verbose;
} options_t;

/* Everything the main thread works on. The proxy thread owns front, back
 * and its steer end from the moment it starts until it returns. */
typedef struct {
    const options_t *opt;
    void *ctx;
    void *front, *back, *steer_proxy; /* the proxy's */
    void *steer, *zap, *control;      /* the main thread's */
    keyfile_t key;                    /* the relay's pair (CURVE) */
    bool curve_up, curve_down;
    relayacl_t *acl;
    int proxy_rc, proxy_errno;
    uint64_t admitted, refused, snapshots, snapshots_failed;
} relay_t;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* warnx (err.h): "PROG: message" on stderr, PROG being the name the program
 * was run by (program_invocation_short_name). */
static void usage(FILE *f)
{
    fputs("usage: " PROG " -u NAME=ALERTS,CONTROL[,SERVER_KEY] [-u ...] -b ENDPOINT [-C ENDPOINT]\n"
          "       [-k KEYFILE] [-A ACCESS.csv] [--clusters ID,ID...] [--hwm N]\n"
          "       [--snapshot-timeout MS] [-v]\n"
          "  -u, --upstream    a city daemon: its alerts and control endpoints and, for\n"
          "                    CURVE, its public key (Z85 or a .pub/.key file); repeat per city\n"
          "  -b, --bind        the alerts endpoint subscribers connect to (XPUB)\n"
          "  -C, --control     the control endpoint answering alerts, ping and status\n"
          "  -k, --key         the relay's key pair: its client key at the cities and its\n"
          "                    server key for subscribers\n"
          "  -A, --access      admit only these keys (the daemon's access.csv format);\n"
          "                    turns CURVE on for -b and -C (needs -k)\n"
          "      --clusters    the clusters this relay carries (default: every one its\n"
          "                    cities send); a key is admitted only if it may see them all\n"
          "      --hwm         messages queued per peer before ZeroMQ drops (default 100000)\n"
          "      --snapshot-timeout  how long to wait for every city's snapshot (3000 ms)\n"
          "  -v, --verbose     say every admission\n",
          f);
}

/* NAME=ALERTS,CONTROL[,SERVER_KEY] into c. Returns 0 or -1 with err. */
static int parse_city(const char *arg, city_t *c, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof c->name) {
        snprintf(err, errlen, "--upstream '%s': expected NAME=ALERTS,CONTROL[,SERVER_KEY]", arg);
        return -1;
    }
    memcpy(c->name, arg, (size_t)(eq - arg));
    c->name[eq - arg] = '\0';
    char *spec = strdup(eq + 1);
    if (!spec)
        abort();
    c->alerts = spec;
    char *comma = strchr(spec, ',');
    if (!comma || comma == spec || !comma[1]) {
        snprintf(err, errlen, "--upstream %s: expected ALERTS,CONTROL after '='", c->name);
        free(spec);
        return -1;
    }
    *comma = '\0';
    c->control = comma + 1;
    comma = strchr(c->control, ',');
    c->server[0] = '\0';
    if (comma) {
        *comma = '\0';
        char why[256];
        if (keyfile_public_arg(comma + 1, c->server, why, sizeof why) != 0) {
            snprintf(err, errlen, "--upstream %s: server key: %s", c->name, why);
            free(spec);
            return -1;
        }
    }
    return 0;
}

static int parse_scope(char *list, options_t *o, char *err, size_t errlen)
{
    char *save = NULL;
    for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        if (o->nscope == MAX_SCOPE) {
            snprintf(err, errlen, "--clusters: more than %d clusters", MAX_SCOPE);
            return -1;
        }
        o->scope[o->nscope++] = id;
    }
    return 0;
}

/* Returns 0, or EXIT_USAGE having said why. */
static int parse_args(int argc, char **argv, options_t *o)
{
    static const struct option longs[] = {
        {"upstream", required_argument, NULL, 'u'},
        {"bind", required_argument, NULL, 'b'},
        {"control", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'k'},
        {"access", required_argument, NULL, 'A'},
        {"clusters", required_argument, NULL, 'S'},
        {"hwm", required_argument, NULL, 'H'},
        {"snapshot-timeout", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[512];
    int c;
    o->hwm = DEFAULT_HWM;
    o->snapshot_ms = DEFAULT_SNAPSHOT_MS;
    while ((c = getopt_long(argc, argv, "u:b:C:k:A:vh", longs, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (o->ncities == MAX_CITIES) {
                warnx("--upstream: at most %d cities", MAX_CITIES);
                return EXIT_USAGE;
            }
            if (parse_city(optarg, &o->cities[o->ncities], err, sizeof err) != 0) {
                warnx("%s", err);
                return EXIT_USAGE;
            }
            o->ncities++;
            break;
        case 'b': o->bind = optarg; break;
        case 'C': o->control_bind = optarg; break;
        case 'k': o->key_path = optarg; break;
        case 'A': o->access_path = optarg; break;
        case 'S':
            if (parse_scope(optarg, o, err, sizeof err) != 0) {
                warnx("%s", err);
                return EXIT_USAGE;
            }
            break;
        case 'H':
            if (!args_parse_long(optarg, 1, 10000000, &o->hwm)) {
                warnx("--hwm '%s': expected 1..10000000", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'T':
            if (!args_parse_long(optarg, 100, 60000, &o->snapshot_ms)) {
                warnx("--snapshot-timeout '%s': expected 100..60000 ms", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'v': o->verbose = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc || o->ncities == 0 || !o->bind) {
        usage(stderr);
        return EXIT_USAGE;
    }
    size_t curve = 0;
    for (size_t i = 0; i < o->ncities; i++)
        curve += o->cities[i].server[0] != '\0';
    if (curve != 0 && curve != o->ncities) {
        /* one XSUB connects to them all, and CURVE is a socket's setting */
        warnx("--upstream: give every city a server key, or none");
        return EXIT_USAGE;
    }
    if ((curve || o->access_path) && !o->key_path) {
        warnx("%s needs the relay's key pair (--key)",
              curve ? "--upstream with a server key" : "--access");
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- ZAP (RFC 27) ------------------------------------------------------- */

static bool frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

static void zap_send(void *sock, zmq_msg_t *reqid, const char *code, const char *text,
                     const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(reqid), zmq_msg_size(reqid), ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

/* Answers one ZAP request: admitted if the key covers the relay's scope. */
static void zap_handle(relay_t *r)
{
    enum { VERSION, REQID, DOMAIN, ADDRESS, IDENTITY, MECHANISM, CRED, NFRAMES };
    zmq_msg_t f[NFRAMES + 1];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t *m = &f[n < NFRAMES ? n : NFRAMES];
        zmq_msg_init(m);
        if (zmq_msg_recv(m, r->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return; /* nothing to read: a spurious wake */
            break;
        }
        more = zmq_msg_more(m);
        if (n >= NFRAMES)
            zmq_msg_close(m);
        n++;
    }
    if (n < CRED || !frame_is(&f[VERSION], "1.0")) {
        /* RFC 27: a malformed request is answered 500 when it can be */
        if (n > REQID)
            zap_send(r->zap, &f[REQID], "500", "malformed ZAP request", "");
        else
            zap_send(r->zap, &f[0], "500", "malformed ZAP request", "");
        r->refused++;
        goto out;
    }
    char why[256] = "";
    char z85[KEYFILE_Z85_LEN + 1] = "";
    bool ok = false;
    if (n == NFRAMES && frame_is(&f[MECHANISM], "CURVE") && zmq_msg_size(&f[CRED]) == 32 &&
        (frame_is(&f[DOMAIN], ZAP_DOMAIN_ALERTS) || frame_is(&f[DOMAIN], ZAP_DOMAIN_CONTROL))) {
        zmq_z85_encode(z85, zmq_msg_data(&f[CRED]), 32);
        const relayacl_key_t *k = relayacl_find(r->acl, z85, KEYFILE_Z85_LEN);
        ok = relayacl_covers(k, r->opt->scope, r->opt->nscope, why, sizeof why);
        if (ok && r->opt->verbose)
            warnx("admitted key '%s' (%.8s...) on %.*s", k->name, z85,
                  (int)zmq_msg_size(&f[DOMAIN]), (const char *)zmq_msg_data(&f[DOMAIN]));
    } else {
        snprintf(why, sizeof why, "not a CURVE handshake on the relay's alerts or control socket");
    }
    if (ok) {
        r->admitted++;
        zap_send(r->zap, &f[REQID], "200", "OK", z85);
    } else {
        r->refused++;
        warnx("refused a connection (key %.8s...): %s", z85[0] ? z85 : "none", why);
        zap_send(r->zap, &f[REQID], "400", why, "");
    }
out:
    for (int i = 0; i < n && i < NFRAMES; i++)
        zmq_msg_close(&f[i]);
}

/* ---- control ------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void reply_error(msgpack_packer *pk, const char *reason)
{
    proto_ctl_reply_begin(pk, false, reason);
    msgpack_pack_nil(pk);
}

/* Asks every city for its `alerts` snapshot at once, waits at most
 * --snapshot-timeout for all of them, and packs their union (or why not). */
static void answer_alerts(relay_t *r, msgpack_packer *pk)
{
    const options_t *o = r->opt;
    size_t n = o->ncities;
    void *socks[MAX_CITIES] = {NULL};
    zmq_msg_t replies[MAX_CITIES];
    bool got[MAX_CITIES] = {false};
    msgpack_object bodies[MAX_CITIES];
    const char *names[MAX_CITIES];
    char reason[512] = "";
    msgpack_sbuffer req;
    msgpack_sbuffer_init(&req);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 8192);
    proto_ctl_request_t rq = {.cmd = proto_str("alerts")};
    proto_ctl_request_encode(&rq, &req);
    r->snapshots++;
    for (size_t i = 0; i < n; i++) {
        zmq_msg_init(&replies[i]);
        names[i] = o->cities[i].name;
        socks[i] = zmq_socket(r->ctx, ZMQ_DEALER);
        if (!socks[i])
            abort();
        zmq_setsockopt(socks[i], ZMQ_LINGER, &(int){0}, sizeof(int));
        zmq_setsockopt(socks[i], ZMQ_MAXMSGSIZE, &(int64_t){256 << 20}, sizeof(int64_t));
        char why[256];
        if (r->curve_up &&
            keyfile_client_setup(socks[i], o->cities[i].server, &r->key, why, sizeof why) != 0) {
            snprintf(reason, sizeof reason, "city %s: %s", names[i], why);
            goto done;
        }
        if (zmq_connect(socks[i], o->cities[i].control) != 0 ||
            zmq_send(socks[i], req.data, req.size, ZMQ_DONTWAIT) < 0) {
            snprintf(reason, sizeof reason, "city %s: control %s: %s", names[i],
                     o->cities[i].control, zmq_strerror(errno));
            goto done;
        }
    }
    int64_t deadline = clock_monotonic_ms() + o->snapshot_ms;
    size_t have = 0;
    while (have < n) {
        int64_t left = deadline - clock_monotonic_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t items[MAX_CITIES];
        for (size_t i = 0; i < n; i++)
            items[i] = (zmq_pollitem_t){.socket = socks[i], .events = got[i] ? 0 : ZMQ_POLLIN};
        if (zmq_poll(items, (int)n, (long)left) < 0 && errno != EINTR)
            break;
        for (size_t i = 0; i < n; i++)
            if (!got[i] && (items[i].revents & ZMQ_POLLIN) &&
                zmq_msg_recv(&replies[i], socks[i], ZMQ_DONTWAIT) >= 0) {
                got[i] = true;
                have++;
            }
    }
    for (size_t i = 0; i < n; i++) {
        if (!got[i]) {
            snprintf(reason, sizeof reason,
                     "city %s (%s) did not answer its alerts snapshot within %ld ms", names[i],
                     o->cities[i].control, o->snapshot_ms);
            goto done;
        }
        bool ok;
        proto_str_t why;
        char err[PROTO_ERRLEN];
        if (proto_ctl_reply_decode(zmq_msg_data(&replies[i]), zmq_msg_size(&replies[i]), &zone, &ok,
                                   &why, &bodies[i], err, sizeof err) != 0) {
            snprintf(reason, sizeof reason, "city %s: its snapshot reply: %s", names[i], err);
            goto done;
        }
        if (!ok) {
            snprintf(reason, sizeof reason, "city %s refused the snapshot: %.*s", names[i],
                     PROTO_STR_ARG(why));
            goto done;
        }
    }
    if (snapmerge_pack(bodies, names, n, o->scope, o->nscope, pk, reason, sizeof reason) != 0)
        goto done;
    reason[0] = '\0';
done:
    if (reason[0]) {
        r->snapshots_failed++;
        warnx("snapshot: %s", reason);
        reply_error(pk, reason);
    }
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&replies[i]);
        if (socks[i])
            zmq_close(socks[i]);
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&req);
}

/* The proxy's counters (STATISTICS over the steer socket): frontend then
 * backend, each messages in, bytes in, messages out, bytes out. */
static int proxy_stats(relay_t *r, uint64_t st[8])
{
    if (zmq_send(r->steer, "STATISTICS", 10, 0) < 0)
        return -1;
    for (int i = 0; i < 8; i++) {
        zmq_pollitem_t it = {.socket = r->steer, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 1000) <= 0 ||
            zmq_recv(r->steer, &st[i], sizeof st[i], 0) != (int)sizeof st[i])
            return -1;
    }
    return 0;
}

static void answer_status(relay_t *r, msgpack_packer *pk)
{
    uint64_t st[8] = {0};
    bool have = proxy_stats(r, st) == 0;
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 9);
    pack_str(pk, "cities");
    msgpack_pack_uint64(pk, r->opt->ncities);
    pack_str(pk, "from_cities");
    msgpack_pack_uint64(pk, st[0]); /* frontend messages in */
    pack_str(pk, "to_subscribers");
    msgpack_pack_uint64(pk, st[6]); /* backend messages out */
    pack_str(pk, "subscriptions");
    msgpack_pack_uint64(pk, st[4]); /* backend messages in: (un)subscriptions */
    pack_str(pk, "statistics");
    msgpack_pack_int(pk, have);
    pack_str(pk, "admitted");
    msgpack_pack_uint64(pk, r->admitted);
    pack_str(pk, "refused");
    msgpack_pack_uint64(pk, r->refused);
    pack_str(pk, "snapshots");
    msgpack_pack_uint64(pk, r->snapshots);
    pack_str(pk, "snapshots_failed");
    msgpack_pack_uint64(pk, r->snapshots_failed);
}

/* One control request: [routing id][empty delimiter from REQ]?[ctl]. */
static void control_handle(relay_t *r)
{
    zmq_msg_t f[3];
    int n = 0, more = 1;
    bool extra = false;
    while (more) {
        zmq_msg_t tmp, *m = n < 3 ? &f[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, r->control, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return;
            break;
        }
        more = zmq_msg_more(m);
        if (n >= 3) {
            zmq_msg_close(m);
            extra = true;
        }
        n++;
    }
    int body = n - 1; /* [id][body] or [id][][body] */
    bool delim = n == 3 && zmq_msg_size(&f[1]) == 0;
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    proto_ctl_request_t req;
    char err[PROTO_ERRLEN];
    if (extra || n < 2 || (n == 3 && !delim)) {
        reply_error(&pk, "malformed: expected one ctl frame");
    } else if (proto_ctl_request_decode(zmq_msg_data(&f[body]), zmq_msg_size(&f[body]), &req, err,
                                        sizeof err) != 0) {
        char why[PROTO_ERRLEN + 16];
        snprintf(why, sizeof why, "malformed: %s", err);
        reply_error(&pk, why);
    } else if (proto_str_eq(req.cmd, "alerts")) {
        answer_alerts(r, &pk);
    } else if (proto_str_eq(req.cmd, "ping")) {
        proto_ctl_reply_begin(&pk, true, "");
        pack_str(&pk, "pong");
    } else if (proto_str_eq(req.cmd, "status")) {
        answer_status(r, &pk);
    } else {
        char why[256];
        snprintf(why, sizeof why,
                 "clustermon-relay answers alerts, ping and status only: ask a city's daemon "
                 "for '%.*s'",
                 PROTO_STR_ARG(req.cmd));
        reply_error(&pk, why);
    }
    if (n >= 2) {
        zmq_send(r->control, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), ZMQ_SNDMORE);
        if (delim)
            zmq_send(r->control, "", 0, ZMQ_SNDMORE);
        zmq_send(r->control, out.data, out.size, ZMQ_DONTWAIT);
    }
    msgpack_sbuffer_destroy(&out);
    for (int i = 0; i < n && i < 3; i++)
        zmq_msg_close(&f[i]);
}

/* ---- sockets -------------------------------------------------------------- */

/* Makes a bound socket a CURVE server whose handshakes ZAP checks in domain. */
static int curve_server(relay_t *r, void *sock, const char *domain)
{
    if (!r->curve_down)
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &(int){1}, sizeof(int)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, r->key.secret_z85, KEYFILE_Z85_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0) {
        warnx("CURVE on the %s socket: %s", domain, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int open_sockets(relay_t *r)
{
    const options_t *o = r->opt;
    char why[256];
    if (r->curve_down) {
        /* before any CURVE server binds: without a handler libzmq admits every key */
        r->zap = zmq_socket(r->ctx, ZMQ_REP);
        if (zmq_bind(r->zap, ZAP_ENDPOINT) != 0) {
            warnx("ZAP handler: %s", zmq_strerror(errno));
            return -1;
        }
    }
    int hwm = (int)o->hwm;
    r->front = zmq_socket(r->ctx, ZMQ_XSUB);
    r->back = zmq_socket(r->ctx, ZMQ_XPUB);
    zmq_setsockopt(r->front, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r->back, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r->front, ZMQ_LINGER, &(int){0}, sizeof(int));
    zmq_setsockopt(r->back, ZMQ_LINGER, &(int){0}, sizeof(int));
    for (size_t i = 0; i < o->ncities; i++) {
        const city_t *c = &o->cities[i];
        /* CURVE options are taken at zmq_connect: each city gets its own server key */
        if (r->curve_up &&
            keyfile_client_setup(r->front, c->server, &r->key, why, sizeof why) != 0) {
            warnx("city %s: %s", c->name, why);
            return -1;
        }
        if (zmq_connect(r->front, c->alerts) != 0) {
            warnx("city %s: alerts %s: %s", c->name, c->alerts, zmq_strerror(errno));
            return -1;
        }
    }
    if (curve_server(r, r->back, ZAP_DOMAIN_ALERTS) != 0)
        return -1;
    if (zmq_bind(r->back, o->bind) != 0) {
        warnx("bind %s: %s", o->bind, zmq_strerror(errno));
        return -1;
    }
    if (o->control_bind) {
        r->control = zmq_socket(r->ctx, ZMQ_ROUTER);
        zmq_setsockopt(r->control, ZMQ_LINGER, &(int){0}, sizeof(int));
        zmq_setsockopt(r->control, ZMQ_MAXMSGSIZE, &(int64_t){CONTROL_MAX_FRAME}, sizeof(int64_t));
        if (curve_server(r, r->control, ZAP_DOMAIN_CONTROL) != 0)
            return -1;
        if (zmq_bind(r->control, o->control_bind) != 0) {
            warnx("bind %s: %s", o->control_bind, zmq_strerror(errno));
            return -1;
        }
    }
    r->steer = zmq_socket(r->ctx, ZMQ_PAIR);
    r->steer_proxy = zmq_socket(r->ctx, ZMQ_PAIR);
    if (zmq_bind(r->steer, STEER_ENDPOINT) != 0 ||
        zmq_connect(r->steer_proxy, STEER_ENDPOINT) != 0) {
        warnx("steer socket: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void *proxy_main(void *arg)
{
    relay_t *r = arg;
    r->proxy_rc = zmq_proxy_steerable(r->front, r->back, NULL, r->steer_proxy);
    r->proxy_errno = errno;
    return NULL;
}

static void close_socket(void **s)
{
    if (*s) {
        zmq_setsockopt(*s, ZMQ_LINGER, &(int){0}, sizeof(int));
        zmq_close(*s);
        *s = NULL;
    }
}

int main(int argc, char **argv)
{
    static options_t opt;
    int rc = parse_args(argc, argv, &opt);
    if (rc != 0)
        return rc;
    relay_t r = {.opt = &opt};
    char err[512];
    if (opt.key_path && keyfile_load(opt.key_path, true, &r.key, err, sizeof err) != 0) {
        warnx("--key: %s", err);
        return EXIT_FAIL;
    }
    r.curve_up = opt.cities[0].server[0] != '\0';
    r.curve_down = opt.access_path != NULL;
    if (r.curve_down && relayacl_load(opt.access_path, &r.acl, err, sizeof err) != 0) {
        warnx("--access: %s", err);
        return EXIT_FAIL;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    r.ctx = zmq_ctx_new();
    pthread_t proxy;
    bool started = false;
    rc = EXIT_FAIL;
    if (open_sockets(&r) != 0)
        goto out;
    if (pthread_create(&proxy, NULL, proxy_main, &r) != 0) {
        warnx("cannot start the proxy thread");
        goto out;
    }
    started = true;
    warnx("relaying %zu cities to %s%s%s (CURVE: upstream %s, subscribers %s; scope %s)",
          opt.ncities, opt.bind, opt.control_bind ? ", control " : "",
          opt.control_bind ? opt.control_bind : "", r.curve_up ? "on" : "off",
          r.curve_down ? "on" : "off", opt.nscope ? "--clusters" : "every cluster sent");
    while (!stop_signal) {
        zmq_pollitem_t items[2];
        int ni = 0;
        if (r.zap)
            items[ni++] = (zmq_pollitem_t){.socket = r.zap, .events = ZMQ_POLLIN};
        if (r.control)
            items[ni++] = (zmq_pollitem_t){.socket = r.control, .events = ZMQ_POLLIN};
        if (zmq_poll(items, ni, POLL_STEP_MS) < 0) {
            if (errno == EINTR)
                continue;
            warnx("poll: %s", zmq_strerror(errno));
            break;
        }
        for (int i = 0; i < ni; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            if (items[i].socket == r.zap)
                zap_handle(&r);
            else
                control_handle(&r);
        }
    }
    uint64_t st[8] = {0};
    if (proxy_stats(&r, st) == 0)
        warnx("stopping: %" PRIu64 " messages from the cities, %" PRIu64 " to subscribers; %" PRIu64
              " connections admitted, %" PRIu64 " refused",
              st[0], st[6], r.admitted, r.refused);
    rc = stop_signal ? 0 : EXIT_FAIL;
out:
    if (started) {
        zmq_send(r.steer, "TERMINATE", 9, 0);
        pthread_join(proxy, NULL);
        if (r.proxy_rc != 0 && r.proxy_errno != ETERM && rc == 0)
            warnx("proxy: %s", zmq_strerror(r.proxy_errno));
    }
    close_socket(&r.front);
    close_socket(&r.back);
    close_socket(&r.steer_proxy);
    close_socket(&r.steer);
    close_socket(&r.control);
    close_socket(&r.zap);
    zmq_ctx_term(r.ctx);
    relayacl_destroy(&r.acl);
    for (size_t i = 0; i < opt.ncities; i++)
        free(opt.cities[i].alerts);
    explicit_bzero(&r.key, sizeof r.key);
    return rc;
}
