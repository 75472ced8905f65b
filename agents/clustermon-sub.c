/*
 * clustermon-sub.c -- prints clustermond's alerts as JSON lines.
 *
 * A ZeroMQ SUB socket on the daemon's alert publisher. Messages are two
 * frames, [topic][alert], with topic "alert.<cluster>.<severity>". Filters
 * are turned into subscriptions so the publisher drops what we do not want,
 * and are applied again after decoding, because a topic prefix is not an
 * exact match ("alert.eu." also matches the cluster "eu.west"). Every alert
 * that passes is one compact JSON object on one line of stdout (see
 * agents/alertjson.h), flushed at once so a pipe sees it immediately.
 *
 * Bad frames from the publisher are reported on stderr and counted; they
 * never stop the program.
 *
 * Exit status: 0 normally (--count reached, --timeout expired, SIGINT or
 * SIGTERM); 1 if --count was not reached before --timeout, or on an error;
 * 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "agents/alertjson.h"
#include "proto/proto.h"

#define PROG "clustermon-sub"

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7602"
#define MAX_CLUSTERS 64
#define POLL_STEP_MS 250 /* how often a pending signal is noticed at worst */
#define TOPIC_MAX (sizeof("alert..") + PROTO_MAX_ID_LEN + sizeof("critical"))
#define SOCKET_RCVHWM 10000

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct {
    const char *endpoint;
    const char *clusters[MAX_CLUSTERS];
    unsigned nclusters;
    bool severity[PROTO_SEV_COUNT]; /* all false: every severity */
    bool any_severity;
    long count;      /* 0: unlimited */
    long timeout_ms; /* 0: none */
    bool verbose;
} options_t;

typedef struct {
    uint64_t printed, malformed, filtered;
} counters_t;

static volatile sig_atomic_t stop_signal;

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Shows a topic frame in a message: printable ASCII, at most 80 bytes. */
static const char *show_topic(const void *data, size_t len, char *buf, size_t bufsize)
{
    const unsigned char *p = data;
    size_t o = 0;

    for (size_t i = 0; i < len && i < 80 && o + 2 < bufsize; i++)
        buf[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    buf[o] = '\0';
    return buf;
}

static bool wanted(const options_t *opt, const proto_alert_t *a)
{
    bool cluster_ok = opt->nclusters == 0;

    for (unsigned i = 0; i < opt->nclusters && !cluster_ok; i++)
        cluster_ok = proto_str_eq(a->cluster, opt->clusters[i]);
    return cluster_ok && (!opt->any_severity || (a->severity < PROTO_SEV_COUNT && opt->severity[a->severity]));
}

/* Prints one alert as a JSON line. Returns 0 or -1 if stdout failed. */
static int print_alert(const proto_alert_t *a)
{
    json_t *j = alertjson_from_alert(a);
    int rc;

    if (j == NULL) {
        warnx("out of memory");
        return -1;
    }
    rc = json_dumpf(j, stdout, ALERTJSON_DUMP_FLAGS);
    json_decref(j);
    if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        warnx("stdout: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Handles one message from the socket (all its frames). Returns 1 if an
 * alert was printed, 0 if not, -1 on a fatal error.
 */
static int handle_message(void *sock, const options_t *opt, counters_t *cnt)
{
    zmq_msg_t topic, body;
    proto_alert_t a;
    char err[PROTO_ERRLEN], shown[96], expect[TOPIC_MAX];
    int nframes = 0, rc = 0, more;
    int tlen;

    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    /* Keep the first two frames; drain any others so the next read starts clean. */
    do {
        zmq_msg_t *m = nframes == 0 ? &topic : &body;
        zmq_msg_t extra;

        if (nframes >= 2) {
            zmq_msg_init(&extra);
            m = &extra;
        }
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            if (nframes >= 2)
                zmq_msg_close(m);
            if (errno == EAGAIN || errno == EINTR) {
                rc = nframes == 0 ? -2 : 0; /* -2: nothing to read */
                goto out;
            }
            warnx("receive from %s: %s", opt->endpoint, zmq_strerror(errno));
            rc = -1;
            goto out;
        }
        more = zmq_msg_more(m);
        if (nframes >= 2)
            zmq_msg_close(m);
        nframes++;
    } while (more);

    show_topic(zmq_msg_data(&topic), zmq_msg_size(&topic), shown, sizeof(shown));
    if (nframes != 2) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): %d frames, expected [topic][alert]", shown, nframes);
        goto out;
    }
    if (proto_alert_decode(zmq_msg_data(&body), zmq_msg_size(&body), &a, err, sizeof(err)) < 0) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): %s", shown, err);
        goto out;
    }
    tlen = proto_alert_topic(a.cluster, (proto_severity_t)a.severity, expect, sizeof(expect));
    if (tlen < 0 || (size_t)tlen != zmq_msg_size(&topic) ||
        memcmp(expect, zmq_msg_data(&topic), (size_t)tlen) != 0) {
        cnt->malformed++;
        warnx("malformed alert (topic '%s'): topic does not match the alert's cluster and severity "
              "(expected '%s')",
              shown, tlen < 0 ? "?" : expect);
        goto out;
    }
    if (!wanted(opt, &a)) {
        cnt->filtered++;
        goto out;
    }
    if (print_alert(&a) < 0) {
        rc = -1;
        goto out;
    }
    cnt->printed++;
    rc = 1;
out:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

/* Subscribes to the topics the filters need. Returns 0 or -1. */
static int subscribe(void *sock, const options_t *opt)
{
    char topic[TOPIC_MAX];
    int n;

    if (opt->nclusters == 0)
        return zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "alert.", 6);
    for (unsigned i = 0; i < opt->nclusters; i++) {
        if (!opt->any_severity) {
            n = snprintf(topic, sizeof(topic), "alert.%s.", opt->clusters[i]);
            if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, (size_t)n) != 0)
                return -1;
            continue;
        }
        for (int s = 0; s < PROTO_SEV_COUNT; s++) {
            if (!opt->severity[s])
                continue;
            n = proto_alert_topic(proto_str(opt->clusters[i]), (proto_severity_t)s, topic, sizeof(topic));
            if (n < 0 || zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, (size_t)n) != 0)
                return -1;
        }
    }
    return 0;
}

static int run(const options_t *opt)
{
    void *ctx = NULL, *sock = NULL;
    int linger = 0, hwm = SOCKET_RCVHWM, status = 0;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;
    int64_t deadline = opt->timeout_ms > 0 ? monotonic_ms() + opt->timeout_ms : 0;
    counters_t cnt = {0};
    const char *why = NULL; /* why a normal exit happened, for the summary */

    ctx = zmq_ctx_new();
    if (ctx == NULL || (sock = zmq_socket(ctx, ZMQ_SUB)) == NULL) {
        warnx("zmq: %s", zmq_strerror(errno));
        status = EXIT_FAIL;
        goto done;
    }
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 || subscribe(sock, opt) != 0) {
        warnx("zmq_setsockopt: %s", zmq_strerror(errno));
        status = EXIT_FAIL;
        goto done;
    }
    if (zmq_connect(sock, opt->endpoint) != 0) {
        warnx("cannot connect to %s: %s", opt->endpoint, zmq_strerror(errno));
        status = EXIT_USAGE;
        goto done;
    }

    while (!stop_signal) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        long step = POLL_STEP_MS;
        int rc;

        if (deadline != 0) {
            int64_t left = deadline - monotonic_ms();
            if (left <= 0) {
                why = "timeout";
                if (opt->count > 0)
                    status = EXIT_FAIL; /* fewer alerts than asked for */
                break;
            }
            if (left < step)
                step = (long)left;
        }
        rc = zmq_poll(&item, 1, step);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            warnx("zmq_poll: %s", zmq_strerror(errno));
            status = EXIT_FAIL;
            break;
        }
        /* Drain what is queued, a message at a time, until the queue is empty. */
        while (rc > 0 && !stop_signal) {
            rc = handle_message(sock, opt, &cnt);
            if (rc == -1) {
                status = EXIT_FAIL;
                goto done;
            }
            if (rc == -2)
                break;
            if (opt->count > 0 && cnt.printed >= (uint64_t)opt->count)
                goto done;
            rc = 1;
        }
    }
    if (stop_signal)
        why = "interrupted";
done:
    if (why != NULL || opt->verbose)
        warnx("%s: %" PRIu64 " alerts received (%" PRIu64 " malformed, %" PRIu64 " filtered out)",
              why != NULL ? why : "done", cnt.printed, cnt.malformed, cnt.filtered);
    if (sock != NULL)
        zmq_close(sock);
    if (ctx != NULL)
        zmq_ctx_term(ctx);
    return status;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *fp)
{
    fprintf(fp, "usage: " PROG " [options]\n"
                "Prints clustermond's alerts, one JSON object per line.\n"
                "\n"
                "  -e, --endpoint URL     alert publisher (default " DEFAULT_ENDPOINT ")\n"
                "  -c, --cluster C        only alerts of cluster C (may repeat)\n"
                "  -s, --severity S       only info, warning or critical (may repeat)\n"
                "  -n, --count N          exit after N alerts\n"
                "  -t, --timeout MS       exit after MS milliseconds in all\n"
                "  -v, --verbose          print a summary on stderr at every exit\n"
                "  -h, --help             show this help\n"
                "  -V, --version          show the version\n"
                "\n"
                "Exit status: 0 done (count reached, timeout, SIGINT/SIGTERM);\n"
                "1 --count not reached before --timeout, or an error; 2 usage error.\n");
}

static bool parse_long(const char *s, long min, long max, long *ret)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *ret = v;
    return true;
}

static int parse_options(int argc, char **argv, options_t *opt)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'}, {"cluster", required_argument, NULL, 'c'},
        {"severity", required_argument, NULL, 's'}, {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},  {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, sev;
    size_t len;

    while ((c = getopt_long(argc, argv, "e:c:s:n:t:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            opt->endpoint = optarg;
            break;
        case 'c':
            len = strlen(optarg);
            if (len == 0 || len > PROTO_MAX_ID_LEN) {
                warnx("--cluster: must be 1..%d bytes", PROTO_MAX_ID_LEN);
                return EXIT_USAGE;
            }
            if (opt->nclusters == MAX_CLUSTERS) {
                warnx("--cluster: at most %d clusters", MAX_CLUSTERS);
                return EXIT_USAGE;
            }
            opt->clusters[opt->nclusters++] = optarg;
            break;
        case 's':
            sev = proto_severity_from_name(proto_str(optarg));
            if (sev < 0) {
                warnx("--severity: '%s' is not info, warning or critical", optarg);
                return EXIT_USAGE;
            }
            opt->severity[sev] = true;
            opt->any_severity = true;
            break;
        case 'n':
            if (!parse_long(optarg, 1, LONG_MAX, &opt->count)) {
                warnx("--count: '%s' is not a positive number", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (!parse_long(optarg, 1, LONG_MAX / 2, &opt->timeout_ms)) {
                warnx("--timeout: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'v':
            opt->verbose = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf(PROG " " CLUSTERMON_VERSION "\n");
            exit(0);
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        warnx("unexpected argument '%s'", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t opt = {.endpoint = DEFAULT_ENDPOINT};
    struct sigaction sa;
    int rc;

    if ((rc = parse_options(argc, argv, &opt)) != 0)
        return rc;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return run(&opt);
}
