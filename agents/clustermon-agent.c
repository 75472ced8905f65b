/*
 * clustermon-agent.c -- sends CSV samples to clustermond, batch by batch.
 *
 * The agent runs at the reporting firms, so it is small and has no event
 * loop: one ZeroMQ DEALER socket and a stop-and-wait protocol. Each batch
 * carries a sequence number; the agent sends it and waits for the daemon's
 * ack of that seq, resending the same bytes (same seq, so the daemon can
 * drop duplicates) after a timeout with exponential backoff. An ack is the
 * only proof of delivery, hence ZMQ_LINGER 0: nothing unacknowledged is
 * left in a queue at exit.
 *
 * Seqs start at the wall clock in milliseconds so a restarted agent never
 * reuses a seq the daemon may still remember from its previous run.
 *
 * A regular file is checked completely before anything is sent, so a bad
 * line in a file means nothing was sent. A stream (stdin, a pipe) cannot be
 * read twice: every line before a bad one is delivered, then the agent stops.
 *
 * Exit status: 0 every sample acked; 1 a batch rejected (nack) or another
 * failure; 2 bad input or usage; 3 no ack after all tries.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "agents/input.h"
#include "proto/proto.h"

#define PROG "clustermon-agent"

enum {
    EXIT_NACK = 1,
    EXIT_INPUT = 2,
    EXIT_NOACK = 3,
};

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7601"
#define DEFAULT_BATCH 1000
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRIES 5
#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 10000
#define SOCKET_HWM 100

typedef struct {
    const char *endpoint;
    char agent_id[PROTO_MAX_ID_LEN + 1];
    const char *path; /* NULL: stdin */
    long batch;
    long timeout_ms;
    long retries;
    bool verbose;
} options_t;

typedef struct {
    const options_t *opt;
    void *ctx, *sock;
    uint64_t next_seq;
    uint64_t rng;
    /* totals for the -v summary */
    uint64_t samples, batches, resends;
} agent_t;

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

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter only, so any seed that differs between runs will do. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/*
 * The pause before try number `tries + 1`: base * 2^(tries-1), capped, with
 * "equal jitter" (half fixed, half random) so a fleet of agents that lost the
 * daemon at the same moment does not come back in lockstep.
 */
static long backoff_ms(agent_t *a, unsigned tries)
{
    long d = BACKOFF_BASE_MS;

    for (unsigned i = 1; i < tries && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    return d / 2 + (long)(rng_next(&a->rng) % (uint64_t)(d / 2 + 1));
}

/* ---- acks ----------------------------------------------------------------- */

typedef enum {
    WAIT_ACKED,    /* ok for this seq */
    WAIT_TIMEOUT,  /* nothing for this seq before the deadline */
    WAIT_BUSY,     /* the daemon asked us to come back later */
    WAIT_REJECTED, /* a nack: message printed */
    WAIT_FAILED,   /* a socket error: message printed */
} wait_result_t;

/*
 * Receives one message. The daemon's ROUTER strips its routing frame, so an
 * ack is one frame; an empty delimiter frame before it (REQ-style envelope)
 * is tolerated. Returns 1 with the payload in msg, 0 if the message had some
 * other shape (skipped), -1 on error (errno set).
 */
static int recv_reply(void *sock, zmq_msg_t *msg)
{
    int frames = 0, more, rc;
    bool ok = true;

    do {
        zmq_msg_close(msg);
        zmq_msg_init(msg);
        if ((rc = zmq_msg_recv(msg, sock, ZMQ_DONTWAIT)) < 0)
            return -1;
        more = zmq_msg_more(msg);
        frames++;
        if (more && (frames > 1 || zmq_msg_size(msg) != 0))
            ok = false;
    } while (more);
    return ok ? 1 : 0;
}

/*
 * Waits until deadline (monotonic ms) for the ack of seq, skipping acks of
 * older seqs (late answers to resends) and anything undecodable.
 */
static wait_result_t wait_ack(agent_t *a, uint64_t seq, int64_t deadline)
{
    zmq_pollitem_t item = {.socket = a->sock, .events = ZMQ_POLLIN};
    zmq_msg_t msg;
    wait_result_t result = WAIT_TIMEOUT;

    zmq_msg_init(&msg);
    for (;;) {
        int64_t left = deadline - monotonic_ms();
        int rc;

        if (left <= 0)
            break;
        rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            warnx("zmq_poll: %s", zmq_strerror(errno));
            result = WAIT_FAILED;
            break;
        }
        if (rc == 0)
            continue;
        for (;;) {
            proto_ack_t ack;
            char err[PROTO_ERRLEN];

            rc = recv_reply(a->sock, &msg);
            if (rc < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                warnx("receive from %s: %s", a->opt->endpoint, zmq_strerror(errno));
                result = WAIT_FAILED;
                goto out;
            }
            if (rc == 0) {
                warnx("ignoring a reply from %s with an unexpected frame layout", a->opt->endpoint);
                continue;
            }
            if (proto_ack_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &ack, err, sizeof(err)) < 0) {
                warnx("ignoring a malformed reply from %s: %s", a->opt->endpoint, err);
                continue;
            }
            if (ack.seq != seq) {
                if (a->opt->verbose)
                    warnx("ignoring an ack for seq %" PRIu64 " (waiting for %" PRIu64 ")", ack.seq, seq);
                continue;
            }
            if (ack.status == PROTO_STATUS_OK) {
                result = WAIT_ACKED;
                goto out;
            }
            if (ack.status == PROTO_STATUS_BUSY) {
                warnx("batch %" PRIu64 " deferred: busy: " PROTO_STR_FMT, seq, PROTO_STR_ARG(ack.reason));
                result = WAIT_BUSY;
                goto out;
            }
            {
                const char *name = proto_status_name((proto_status_t)ack.status);
                warnx("batch %" PRIu64 " rejected: %s: " PROTO_STR_FMT, seq, name ? name : "unknown",
                      PROTO_STR_ARG(ack.reason));
            }
            result = WAIT_REJECTED;
            goto out;
        }
    }
out:
    zmq_msg_close(&msg);
    return result;
}

/*
 * Sends one encoded batch until it is acked. Returns 0 or the exit status.
 */
static int deliver(agent_t *a, uint64_t seq, const msgpack_sbuffer *buf)
{
    unsigned tries = 0, max_tries = (unsigned)a->opt->retries + 1;

    for (;;) {
        wait_result_t w;

        tries++;
        if (zmq_send(a->sock, buf->data, buf->size, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                warnx("send to %s: %s", a->opt->endpoint, zmq_strerror(errno));
                return EXIT_NACK;
            }
            /* Queue full (peer gone): counts as a try; the wait below paces us. */
            if (a->opt->verbose)
                warnx("batch %" PRIu64 ": send queue to %s full", seq, a->opt->endpoint);
        }
        w = wait_ack(a, seq, monotonic_ms() + a->opt->timeout_ms);
        if (w == WAIT_ACKED)
            return 0;
        if (w == WAIT_REJECTED || w == WAIT_FAILED)
            return EXIT_NACK;
        if (tries >= max_tries) {
            if (w == WAIT_BUSY)
                warnx("no ack from %s after %u tries (the daemon stayed busy)", a->opt->endpoint, tries);
            else
                warnx("no ack from %s after %u tries", a->opt->endpoint, tries);
            return EXIT_NOACK;
        }
        {
            long pause = backoff_ms(a, tries);
            if (a->opt->verbose)
                warnx("batch %" PRIu64 ": %s, resending in %ld ms (try %u of %u)", seq,
                      w == WAIT_BUSY ? "daemon busy" : "no ack", pause, tries + 1, max_tries);
            /* A late ack may still arrive during the pause: it counts. */
            w = wait_ack(a, seq, monotonic_ms() + pause);
            if (w == WAIT_ACKED)
                return 0;
            if (w == WAIT_REJECTED || w == WAIT_FAILED)
                return EXIT_NACK;
        }
        a->resends++;
    }
}

/* Encodes and delivers samples[0..n) as the next batch. Returns 0 or the exit status. */
static int send_batch(agent_t *a, proto_sample_t *samples, size_t n)
{
    proto_batch_t b = {
        .agent = proto_str(a->opt->agent_id),
        .seq = a->next_seq++,
        .nsamples = (uint32_t)n,
        .samples = samples,
        .cap = (uint32_t)n,
    };
    msgpack_sbuffer buf;
    char err[PROTO_ERRLEN];
    int rc;

    msgpack_sbuffer_init(&buf);
    if ((rc = proto_batch_encode(&b, &buf, err, sizeof(err))) < 0) {
        /* The reader checks what the encoder checks; this is a bug or OOM. */
        warnx("cannot encode batch %" PRIu64 ": %s", b.seq, err);
        msgpack_sbuffer_destroy(&buf);
        return EXIT_NACK;
    }
    rc = deliver(a, b.seq, &buf);
    msgpack_sbuffer_destroy(&buf);
    if (rc == 0) {
        a->samples += n;
        a->batches++;
        if (a->opt->verbose)
            warnx("batch %" PRIu64 ": %zu samples acked", b.seq, n);
    }
    return rc;
}

/* Reads a whole regular file once without sending, so a bad line sends nothing. */
static int check_file(const options_t *opt, proto_sample_t *samples)
{
    char err[INPUT_ERRLEN];
    input_reader_t *r = input_reader_open(opt->path, err, sizeof(err));
    size_t n;
    int rc;

    if (r == NULL) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    while ((rc = input_read_batch(r, samples, (size_t)opt->batch, &n, err, sizeof(err))) == INPUT_OK &&
           n > 0)
        ;
    input_reader_destroy(&r);
    if (rc != INPUT_OK) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    return 0;
}

static int open_socket(agent_t *a)
{
    int linger = 0, hwm = SOCKET_HWM;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;

    a->ctx = zmq_ctx_new();
    if (a->ctx == NULL) {
        warnx("zmq_ctx_new: %s", zmq_strerror(errno));
        return EXIT_NACK;
    }
    a->sock = zmq_socket(a->ctx, ZMQ_DEALER);
    if (a->sock == NULL) {
        warnx("zmq_socket: %s", zmq_strerror(errno));
        return EXIT_NACK;
    }
    if (zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(a->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(a->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(a->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0) {
        warnx("zmq_setsockopt: %s", zmq_strerror(errno));
        return EXIT_NACK;
    }
    if (zmq_connect(a->sock, a->opt->endpoint) != 0) {
        warnx("cannot connect to %s: %s", a->opt->endpoint, zmq_strerror(errno));
        return EXIT_INPUT;
    }
    return 0;
}

static void close_socket(agent_t *a)
{
    if (a->sock != NULL)
        zmq_close(a->sock);
    if (a->ctx != NULL)
        zmq_ctx_term(a->ctx);
    a->sock = a->ctx = NULL;
}

static int run(const options_t *opt)
{
    agent_t a = {.opt = opt};
    proto_sample_t *samples;
    input_reader_t *r = NULL;
    char err[INPUT_ERRLEN];
    int status = 0, rc;
    struct stat st;
    size_t n;

    samples = calloc((size_t)opt->batch, sizeof(*samples));
    if (samples == NULL)
        abort();
    if (opt->path != NULL && stat(opt->path, &st) == 0 && S_ISREG(st.st_mode) &&
        (status = check_file(opt, samples)) != 0)
        goto done;
    if ((r = input_reader_open(opt->path, err, sizeof(err))) == NULL) {
        warnx("%s", err);
        status = EXIT_INPUT;
        goto done;
    }
    a.next_seq = (uint64_t)realtime_ms();
    a.rng = a.next_seq ^ ((uint64_t)getpid() << 32) ^ (uint64_t)monotonic_ms();
    if (a.rng == 0)
        a.rng = 1;
    if ((status = open_socket(&a)) != 0)
        goto done;

    do {
        rc = input_read_batch(r, samples, (size_t)opt->batch, &n, err, sizeof(err));
        if (rc != INPUT_OK)
            warnx("%s", err);
        /* On an input error, the good lines before it still go out. */
        if (n > 0 && (status = send_batch(&a, samples, n)) != 0)
            break;
        if (rc != INPUT_OK)
            status = EXIT_INPUT;
    } while (rc == INPUT_OK && n > 0);

    if (opt->verbose)
        warnx("%" PRIu64 " samples in %" PRIu64 " batches acked by %s (%" PRIu64 " resends)", a.samples,
              a.batches, opt->endpoint, a.resends);
done:
    close_socket(&a);
    input_reader_destroy(&r);
    free(samples);
    return status;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: " PROG " [options] [FILE|-]\n"
            "Sends samples (CSV: enterprise,metric,value,period-or-timestamp) from FILE\n"
            "or stdin to clustermond in acknowledged batches.\n"
            "\n"
            "  -e, --endpoint URL   daemon ingest endpoint (default " DEFAULT_ENDPOINT ")\n"
            "  -a, --agent-id ID    agent id (default agent-<hostname>)\n"
            "  -b, --batch N        samples per batch, 1..%d (default %d)\n"
            "  -t, --timeout MS     wait this long for an ack (default %d)\n"
            "  -r, --retries N      resends of an unacked batch (default %d)\n"
            "  -v, --verbose        report batches, resends and a summary on stderr\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "A FILE is checked whole before anything is sent; from stdin, the lines\n"
            "before a bad one are delivered, then the agent stops.\n"
            "\n"
            "Exit status: 0 all samples acked, 1 a batch rejected or another failure,\n"
            "2 bad input or usage, 3 no ack after all tries.\n",
            PROTO_MAX_SAMPLES, DEFAULT_BATCH, DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES);
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
        {"endpoint", required_argument, NULL, 'e'}, {"agent-id", required_argument, NULL, 'a'},
        {"batch", required_argument, NULL, 'b'},    {"timeout", required_argument, NULL, 't'},
        {"retries", required_argument, NULL, 'r'},  {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *agent_id = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "e:a:b:t:r:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            opt->endpoint = optarg;
            break;
        case 'a':
            agent_id = optarg;
            break;
        case 'b':
            if (!parse_long(optarg, 1, PROTO_MAX_SAMPLES, &opt->batch)) {
                warnx("--batch: '%s' is not a number in 1..%d", optarg, PROTO_MAX_SAMPLES);
                return EXIT_INPUT;
            }
            break;
        case 't':
            if (!parse_long(optarg, 1, INT_MAX, &opt->timeout_ms)) {
                warnx("--timeout: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_INPUT;
            }
            break;
        case 'r':
            if (!parse_long(optarg, 0, 1000, &opt->retries)) {
                warnx("--retries: '%s' is not a number in 0..1000", optarg);
                return EXIT_INPUT;
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
            return EXIT_INPUT;
        }
    }
    if (argc - optind > 1) {
        warnx("expected at most one input file");
        usage(stderr);
        return EXIT_INPUT;
    }
    if (optind < argc && strcmp(argv[optind], "-") != 0)
        opt->path = argv[optind];

    if (agent_id == NULL) {
        char host[256];

        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "unknown");
        host[sizeof(host) - 1] = '\0';
        /* Long host names are cut to fit the id limit. */
        snprintf(opt->agent_id, sizeof(opt->agent_id), "agent-%.*s", PROTO_MAX_ID_LEN - 6, host);
    } else {
        size_t len = strlen(agent_id);

        if (len == 0 || len > PROTO_MAX_ID_LEN) {
            warnx("--agent-id: must be 1..%d bytes", PROTO_MAX_ID_LEN);
            return EXIT_INPUT;
        }
        memcpy(opt->agent_id, agent_id, len + 1);
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t opt = {
        .endpoint = DEFAULT_ENDPOINT,
        .batch = DEFAULT_BATCH,
        .timeout_ms = DEFAULT_TIMEOUT_MS,
        .retries = DEFAULT_RETRIES,
    };
    int rc;

    if ((rc = parse_options(argc, argv, &opt)) != 0)
        return rc;
    return run(&opt);
}
