/*
 * clustermon-agent.c -- sends CSV samples to clustermond, batch by batch,
 * through a durable spool, so that nothing is lost and nothing is counted
 * twice.
 *
 * The agent runs at the reporting firms, so it is small and has no event
 * loop: one ZeroMQ DEALER socket, one batch in flight, and a spool directory
 * (agents/spool.c). Every batch read from the input is encoded once, with
 * the next seq, and written to the spool before it is first sent; it is
 * removed only when the daemon acks that seq. The agent reads ahead of the
 * acks (into the spool, up to --spool-max), sends the spooled batches
 * strictly in seq order, and resends the same bytes (same seq: the daemon
 * acks a duplicate without applying it) after a timeout, with exponential
 * backoff, failing over round-robin to the next endpoint (on a new
 * socket) when there are several. ZMQ_LINGER 0: an ack is the only proof of delivery, and the spool
 * is what survives.
 *
 * Seqs come from the spool: strictly increasing across runs (the first run
 * starts at the wall clock in milliseconds), never reused for other bytes.
 *
 * Restarts: the spooled batches are resent first. Then, if the input is the
 * same regular file as last time (same absolute path, device and inode, and
 * its first OFFSET bytes unchanged, by CRC-32), reading resumes after the
 * last line spooled; a file that changed identity is read from the start.
 * Stdin cannot be re-read, but everything read from it was spooled before
 * the next read, so nothing is lost: new stdin content follows the resends.
 *
 * A regular file is checked (from where reading resumes) before anything is
 * sent, so a bad line in a file means nothing new is sent. A stream (stdin,
 * a pipe) cannot be read twice: every line before a bad one is delivered,
 * then the agent stops. A stream read blocks until a batch is full or the
 * stream ends, so from a stream the agent reads only with no batch in
 * flight: each batch is sent as soon as it is full (with -b 1, each line as
 * it comes) and its ack is never held up by the next read.
 *
 * An answer "busy" or "rate_limited" means the daemon is up but cannot take
 * the batch now: the same bytes are resent after the backoff, like an
 * unacked batch, but to the same endpoint. With --server-key (or
 * $CLUSTERMON_SERVER_KEY) every socket is a CURVE client (agents/clientkey.h).
 *
 * Exit status: 0 every batch acked and the spool empty; 1 a batch rejected
 * (moved to the spool's rejected/; on status "internal" it stays spooled), a
 * corrupt spool file, or another failure; 2 bad input or usage; 3 no ack after all tries (the spool stays).
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

#include "agents/args.h"
#include "agents/clientkey.h"
#include "agents/input.h"
#include "agents/spool.h"
#include "proto/proto.h"

#define PROG "clustermon-agent"

enum {
    EXIT_NACK = 1,
    EXIT_INPUT = 2,
    EXIT_NOACK = 3,
    EXIT_CONFLICT = 4,
};

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7601"
#define DEFAULT_SPOOL "clustermon-agent-spool"
#define DEFAULT_SPOOL_MAX (1ULL << 30)
#define DEFAULT_BATCH 1000
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRIES 5
#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 2000
#define SOCKET_HWM 100
#define MAX_ENDPOINTS 16

/*
 * The most bytes a batch of n samples can encode to: the envelope with a
 * 64-byte agent id and a uint64 seq, then per sample an array header, two
 * 64-byte ids (str8), a float64, an int64 and a 7-byte period. The agent
 * reads a batch only when the spool can take this many more bytes, so it
 * never holds input it could not spool.
 */
#define BATCH_MSG_MAX(n) (128 + 160 * (uint64_t)(n))

typedef struct {
    char *endpoints[MAX_ENDPOINTS]; /* owned */
    size_t nendpoints;
    char agent_id[PROTO_MAX_ID_LEN + 1];
    const char *path; /* NULL: stdin */
    const char *spool_root;
    uint64_t spool_max;
    long batch;
    long timeout_ms;
    long retries; /* 0: forever */
    long window;  /* batches in flight at once, 1 (stop and wait) .. PROTO_MAX_WINDOW */
    bool verbose;
    const char *server_key_arg, *key_arg; /* NULL: from the environment */
    clientkey_t key;                      /* CURVE, for every socket */
} options_t;

typedef enum {
    PHASE_SENT,   /* waiting for the ack until the deadline */
    PHASE_PAUSED, /* backing off until the deadline, then resend */
    PHASE_PARKED, /* out_of_order: resent once every batch before it is settled */
} phase_t;

/* One batch in the window: the oldest unsettled spooled batches, by seq. */
typedef struct {
    uint64_t seq;
    void *msg; /* malloc()ed, from spool_read() (or an empty batch for a lost one) */
    size_t len;
    unsigned tries;
    phase_t phase;
    const char *deferred; /* the last answer put the batch off: "busy" or "rate limited"; else NULL */
    int64_t deadline;
    bool lost; /* its spool file was corrupt: an empty batch stands in (not in the spool) */
} flight_t;

typedef struct {
    const options_t *opt;
    void *ctx, *sock;
    size_t ep; /* the endpoint sock is connected to */
    uint64_t rng;
    spool_t *sp;

    /* Input: NULL once read to the end (or to a bad line of a stream). */
    input_reader_t *r;
    proto_sample_t *samples;
    msgpack_sbuffer buf;
    int input_status; /* EXIT_INPUT after a bad line: reported once the spool is empty */
    bool full_said;

    /* The window: fl[0..nfl) in seq order, the oldest spooled batches. */
    flight_t fl[PROTO_MAX_WINDOW];
    size_t nfl;

    /* totals for the -v summary */
    uint64_t samples_acked, batches, resends, corrupt;
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

static const char *endpoint(const agent_t *a)
{
    return a->opt->endpoints[a->ep];
}

/* Says what stays in the spool when the agent gives up. */
static void say_spool_kept(const agent_t *a)
{
    if (spool_count(a->sp) > 0)
        warnx("%zu unacknowledged batches (%" PRIu64 " bytes) stay in the spool %s for the next run",
              spool_count(a->sp), spool_bytes(a->sp), spool_dir(a->sp));
}

/* ---- the socket ------------------------------------------------------------ */

static void *socket_new(agent_t *a)
{
    int linger = 0, hwm = SOCKET_HWM;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;
    char err[512];
    void *s = zmq_socket(a->ctx, ZMQ_DEALER);

    if (s == NULL) {
        warnx("zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0) {
        warnx("zmq_setsockopt: %s", zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (clientkey_setup(&a->opt->key, s, err, sizeof(err)) != 0) {
        warnx("%s", err);
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Connects a fresh DEALER to endpoint ep (closing the old one). Returns 0 or the exit status. */
static int connect_to(agent_t *a, size_t ep)
{
    if (a->sock != NULL)
        zmq_close(a->sock); /* linger 0: whatever it still queued is dropped */
    a->sock = socket_new(a);
    if (a->sock == NULL)
        return EXIT_NACK;
    a->ep = ep;
    if (zmq_connect(a->sock, endpoint(a)) != 0) {
        warnx("cannot connect to %s: %s", endpoint(a), zmq_strerror(errno));
        return EXIT_INPUT;
    }
    if (a->opt->verbose)
        warnx("sending to %s", endpoint(a));
    return 0;
}

/* Checks every endpoint's syntax up front, so a failover cannot fail on a typo. */
static int check_endpoints(agent_t *a)
{
    for (size_t i = 0; i < a->opt->nendpoints; i++) {
        void *s = socket_new(a);
        int rc;

        if (s == NULL)
            return EXIT_NACK;
        rc = zmq_connect(s, a->opt->endpoints[i]);
        if (rc != 0)
            warnx("cannot connect to %s: %s", a->opt->endpoints[i], zmq_strerror(errno));
        zmq_close(s);
        if (rc != 0)
            return EXIT_INPUT;
    }
    return 0;
}

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

/* ---- the window ----------------------------------------------------------------- */

static void flight_drop(agent_t *a, size_t i)
{
    free(a->fl[i].msg);
    memmove(&a->fl[i], &a->fl[i + 1], (a->nfl - i - 1) * sizeof(a->fl[0]));
    a->nfl--;
}

static void window_clear(agent_t *a)
{
    while (a->nfl > 0)
        flight_drop(a, a->nfl - 1);
}

static flight_t *flight_find(agent_t *a, uint64_t seq)
{
    for (size_t i = 0; i < a->nfl; i++)
        if (a->fl[i].seq == seq)
            return &a->fl[i];
    return NULL;
}

static void send_msg(agent_t *a, flight_t *f)
{
    if (zmq_send(a->sock, f->msg, f->len, ZMQ_DONTWAIT) < 0 && a->opt->verbose)
        /* Queue full (peer gone): counts as a try; the timeout paces us. */
        warnx("batch %" PRIu64 ": cannot queue it for %s: %s", f->seq, endpoint(a), zmq_strerror(errno));
    f->phase = PHASE_SENT;
    f->deferred = NULL;
    f->deadline = monotonic_ms() + a->opt->timeout_ms;
}

/*
 * A spooled batch that failed its checks was moved aside: its samples are
 * lost here (and said so), but its seq was handed out, and the daemon takes
 * no later seq before it. An empty batch settles it with nothing.
 */
static int empty_batch(agent_t *a, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    char err[PROTO_ERRLEN];
    proto_batch_t b = {.agent = proto_str(a->opt->agent_id), .epoch = spool_epoch(a->sp), .seq = seq};

    msgpack_sbuffer_clear(&a->buf);
    if (proto_batch_encode(&b, &a->buf, err, sizeof(err)) < 0) {
        warnx("cannot encode an empty batch %" PRIu64 ": %s", seq, err);
        return EXIT_NACK;
    }
    *ret_msg = malloc(a->buf.size);
    if (*ret_msg == NULL)
        abort();
    memcpy(*ret_msg, a->buf.data, a->buf.size);
    *ret_len = a->buf.size;
    return 0;
}

/*
 * Fills the window with the next spooled batches (after the newest in it)
 * and sends each. Returns 0 or the exit status.
 */
static int window_fill(agent_t *a)
{
    char err[SPOOL_ERRLEN];
    uint64_t seq;
    bool more = a->nfl == 0 ? spool_first(a->sp, &seq)
                            : spool_next_after(a->sp, a->fl[a->nfl - 1].seq, &seq);

    while (more && a->nfl < (size_t)a->opt->window) {
        flight_t *f = &a->fl[a->nfl];
        int rc = spool_read(a->sp, seq, &f->msg, &f->len, err, sizeof(err));

        if (rc == SPOOL_ECORRUPT) {
            /* moved aside; spool_warn() counted it. Its seq is settled empty. */
            if ((rc = empty_batch(a, seq, &f->msg, &f->len)) != 0)
                return rc;
            f->lost = true;
        } else if (rc != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        else
            f->lost = false;
        f->seq = seq;
        f->tries = 1;
        a->nfl++;
        send_msg(a, f);
        more = spool_next_after(a->sp, seq, &seq);
    }
    return 0;
}

/* Resends the parked batches that now follow a settled one in order. */
static void unpark(agent_t *a)
{
    for (size_t i = 0; i < a->nfl; i++) {
        if (a->fl[i].phase != PHASE_PARKED)
            return; /* the first unsettled one is on its way: the rest wait for it */
        a->resends++;
        send_msg(a, &a->fl[i]);
    }
}

/* The deadline of batch f has passed. Returns 0 or the exit status. */
static int on_deadline(agent_t *a, flight_t *f)
{
    unsigned max_tries = a->opt->retries == 0 ? 0 : (unsigned)a->opt->retries + 1;

    if (f->phase == PHASE_SENT) {
        long pause;

        if (max_tries != 0 && f->tries >= max_tries) {
            warnx("batch %" PRIu64 ": no ack from %s after %u tries%s%s%s", f->seq,
                  a->opt->nendpoints > 1 ? "any endpoint" : endpoint(a), f->tries,
                  f->deferred ? " (the daemon stayed " : "", f->deferred ? f->deferred : "",
                  f->deferred ? ")" : "");
            say_spool_kept(a);
            return EXIT_NOACK;
        }
        pause = backoff_ms(a, f->tries);
        if (a->opt->verbose)
            warnx("batch %" PRIu64 ": %s %s %s, resending in %ld ms (try %u%s)", f->seq,
                  f->deferred ? f->deferred : "no ack", f->deferred ? "at" : "from", endpoint(a), pause,
                  f->tries + 1, max_tries ? "" : ", retrying forever");
        /* A late ack may still arrive during the pause: it counts. */
        f->phase = PHASE_PAUSED;
        f->deadline = monotonic_ms() + pause;
        return 0;
    }
    /*
     * A busy or rate-limiting daemon is up: stay. A silent one: try the next
     * endpoint, on a new socket, and send the whole window there. With a
     * single endpoint the socket stays: ZeroMQ reconnects by itself, and the
     * copies it queued meanwhile (at most SOCKET_HWM) reach the daemon as
     * duplicates, answered with their first answer and not applied again.
     */
    if (f->deferred == NULL && a->opt->nendpoints > 1) {
        size_t next = (a->ep + 1) % a->opt->nendpoints;
        int rc;

        if (a->opt->verbose)
            warnx("batch %" PRIu64 ": failing over from %s to %s", f->seq, endpoint(a),
                  a->opt->endpoints[next]);
        if ((rc = connect_to(a, next)) != 0)
            return rc;
        for (size_t i = 0; i < a->nfl; i++)
            if (&a->fl[i] != f && a->fl[i].phase != PHASE_PARKED) {
                a->fl[i].tries++;
                a->resends++;
                send_msg(a, &a->fl[i]);
            }
    }
    f->tries++;
    a->resends++;
    send_msg(a, f);
    return 0;
}

/* Handles one decoded ack. Returns 0 or the exit status. */
static int on_ack(agent_t *a, const proto_ack_t *ack)
{
    char err[SPOOL_ERRLEN], path[SPOOL_PATH_MAX + 64];
    flight_t *f = flight_find(a, ack->seq);
    proto_next_t next = proto_status_next((proto_status_t)ack->status);
    const char *name = proto_status_name((proto_status_t)ack->status);

    if (ack->seq == 0 && next != PROTO_NEXT_DONE) {
        /* The daemon could not tell which batch or stream: every batch this
         * agent sends would fare the same. */
        warnx("the daemon refused a batch it could not attribute: %s: " PROTO_STR_FMT, name,
              PROTO_STR_ARG(ack->reason));
        say_spool_kept(a);
        return EXIT_NACK;
    }
    if (f == NULL) {
        /* A late answer to an earlier copy of a batch already settled. */
        if (a->opt->verbose)
            warnx("ignoring an ack for seq %" PRIu64 " (not in flight)", ack->seq);
        return 0;
    }
    switch (next) {
    case PROTO_NEXT_DONE:
        if (!f->lost && spool_remove(a->sp, f->seq, err, sizeof(err)) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        a->samples_acked += ack->accepted;
        a->batches++;
        if (a->opt->verbose)
            warnx("batch %" PRIu64 ": %" PRIu32 " samples acked by %s", f->seq, ack->accepted, endpoint(a));
        flight_drop(a, (size_t)(f - a->fl));
        unpark(a);
        return 0;
    case PROTO_NEXT_RETRY:
        if (ack->status == PROTO_STATUS_INTERNAL) {
            /* The daemon failed, not the batch (e.g. its disk): keep it for the next run. */
            warnx("batch %" PRIu64 " rejected: %s: " PROTO_STR_FMT, f->seq, name, PROTO_STR_ARG(ack->reason));
            warnx("batch %" PRIu64 " stays in the spool %s: the daemon's fault, not the data's", f->seq,
                  spool_dir(a->sp));
            say_spool_kept(a);
            return EXIT_NACK;
        } else {
            /* The daemon is there but cannot take it now: the same bytes, later. */
            const char *why = ack->status == PROTO_STATUS_BUSY ? "busy" : "rate limited";
            size_t n = strlen(why);
            bool said = ack->reason.len >= n && memcmp(ack->reason.ptr, why, n) == 0;

            warnx("batch %" PRIu64 " deferred: %s%s" PROTO_STR_FMT, f->seq, said ? "" : why, said ? "" : ": ",
                  PROTO_STR_ARG(ack->reason));
            if (f->phase == PHASE_SENT) {
                f->deferred = why;
                f->deadline = monotonic_ms(); /* back off now */
            }
        }
        return 0;
    case PROTO_NEXT_REWIND:
        if (ack->expected > f->seq) {
            /* Settled so long ago that the daemon forgot the answer: it was
             * acked or refused then, and cannot be sent again. */
            warnx("batch %" PRIu64 ": settled by the daemon long ago (" PROTO_STR_FMT "); removed from the spool",
                  f->seq, PROTO_STR_ARG(ack->reason));
            if (spool_remove(a->sp, f->seq, err, sizeof(err)) != SPOOL_OK) {
                warnx("%s", err);
                return EXIT_NACK;
            }
            flight_drop(a, (size_t)(f - a->fl));
            unpark(a);
            return 0;
        }
        if (ack->expected < a->fl[0].seq) {
            warnx("the daemon expects seq %" PRIu64 " of stream %" PRIu64 ", which this agent delivered "
                  "and removed from its spool long ago: the daemon's state was reset or lost. Move the "
                  "spool %s aside to start a new stream (" PROTO_STR_FMT ")",
                  ack->expected, spool_epoch(a->sp), spool_dir(a->sp), PROTO_STR_ARG(ack->reason));
            say_spool_kept(a);
            return EXIT_NACK;
        }
        if (a->opt->verbose)
            warnx("batch %" PRIu64 ": out of order, the daemon expects %" PRIu64 " first", f->seq,
                  ack->expected);
        /* the one it waits for is in the window, on its way or backing off:
         * this one goes again once it is settled */
        f->phase = PHASE_PARKED;
        return 0;
    case PROTO_NEXT_STOP:
        warnx("batch %" PRIu64 " refused: %s: " PROTO_STR_FMT, f->seq, name, PROTO_STR_ARG(ack->reason));
        warnx("stopping: agent id '%s' belongs to another agent; give this one its own id (-a)",
              a->opt->agent_id);
        say_spool_kept(a);
        return EXIT_CONFLICT;
    case PROTO_NEXT_FINAL:
        break;
    }
    warnx("batch %" PRIu64 " rejected: %s: " PROTO_STR_FMT, f->seq, name, PROTO_STR_ARG(ack->reason));
    /* Resending the same bytes would get the same answer: set it aside. */
    if (f->lost) {
        flight_drop(a, (size_t)(f - a->fl));
        return EXIT_NACK;
    }
    if (spool_reject(a->sp, f->seq, path, sizeof(path), err, sizeof(err)) != SPOOL_OK) {
        warnx("%s", err);
        return EXIT_NACK;
    }
    warnx("batch %" PRIu64 " moved to %s", f->seq, path);
    flight_drop(a, (size_t)(f - a->fl));
    say_spool_kept(a);
    return EXIT_NACK;
}

/* Waits up to timeout_ms for replies and handles them. Returns 0 or the exit status. */
static int poll_replies(agent_t *a, long timeout_ms)
{
    zmq_pollitem_t item = {.socket = a->sock, .events = ZMQ_POLLIN};
    zmq_msg_t msg;
    int rc, status = 0;

    rc = zmq_poll(&item, 1, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        warnx("zmq_poll: %s", zmq_strerror(errno));
        return EXIT_NACK;
    }
    if (rc == 0)
        return 0;
    zmq_msg_init(&msg);
    while (status == 0) {
        proto_ack_t ack;
        char err[PROTO_ERRLEN];

        rc = recv_reply(a->sock, &msg);
        if (rc < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                warnx("receive from %s: %s", endpoint(a), zmq_strerror(errno));
                status = EXIT_NACK;
            }
            break;
        }
        if (rc == 0) {
            warnx("ignoring a reply from %s with an unexpected frame layout", endpoint(a));
            continue;
        }
        if (proto_ack_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &ack, err, sizeof(err)) < 0) {
            warnx("ignoring a malformed reply from %s: %s", endpoint(a), err);
            continue;
        }
        status = on_ack(a, &ack);
    }
    zmq_msg_close(&msg);
    return status;
}

/* ---- input -------------------------------------------------------------------- */

/*
 * Reads the next batch from the input, encodes it with the next seq and
 * spools it. At the end of the input (or a bad line) the reader is closed.
 * Returns 0 or the exit status.
 */
static int read_batch(agent_t *a)
{
    char err[INPUT_ERRLEN > SPOOL_ERRLEN ? INPUT_ERRLEN : SPOOL_ERRLEN];
    uint64_t seq = spool_next_seq(a->sp);
    input_pos_t ipos;
    spool_pos_t pos;
    size_t n;
    int rc;

    rc = input_read_batch(a->r, a->samples, (size_t)a->opt->batch, &n, err, sizeof(err));
    if (rc != INPUT_OK) {
        warnx("%s", err);
        a->input_status = EXIT_INPUT;
    }
    if (n > 0) {
        proto_batch_t b = {
            .agent = proto_str(a->opt->agent_id),
            .epoch = spool_epoch(a->sp),
            .seq = seq,
            .nsamples = (uint32_t)n,
            .samples = a->samples,
            .cap = (uint32_t)n,
        };

        msgpack_sbuffer_clear(&a->buf);
        if (proto_batch_encode(&b, &a->buf, err, sizeof(err)) < 0) {
            /* The reader checks what the encoder checks; this is a bug or OOM. */
            warnx("cannot encode batch %" PRIu64 ": %s", seq, err);
            return EXIT_NACK;
        }
        input_reader_pos(a->r, &ipos);
        pos = (spool_pos_t){.offset = ipos.offset, .line = ipos.line, .crc = ipos.crc};
        if (spool_append(a->sp, seq, a->buf.data, a->buf.size, &pos, err, sizeof(err)) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
        if (a->opt->verbose && a->buf.size > BATCH_MSG_MAX(n))
            warnx("batch %" PRIu64 ": %zu bytes, over the estimate: a bug", seq, a->buf.size);
    }
    if (rc != INPUT_OK || n == 0)
        input_reader_destroy(&a->r);
    return 0;
}

/* Whether the spool can take one more batch of the worst-case size. */
static bool spool_has_room(const agent_t *a)
{
    return spool_count(a->sp) == 0 ||
           spool_bytes(a->sp) + SPOOL_HEADER_SIZE + BATCH_MSG_MAX(a->opt->batch) <= a->opt->spool_max;
}

/* Reads a whole regular file from pos without sending, so a bad line sends nothing. */
static int check_file(const options_t *opt, const input_pos_t *pos, proto_sample_t *samples)
{
    char err[INPUT_ERRLEN];
    input_reader_t *r = input_reader_open(opt->path, err, sizeof(err));
    size_t n;
    int rc;

    if (r == NULL) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    rc = pos->offset > 0 ? input_reader_skip(r, pos, err, sizeof(err)) : INPUT_OK;
    while (rc == INPUT_OK &&
           (rc = input_read_batch(r, samples, (size_t)opt->batch, &n, err, sizeof(err))) == INPUT_OK && n > 0)
        ;
    input_reader_destroy(&r);
    if (rc != INPUT_OK) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    return 0;
}

/*
 * Opens the input and decides where reading starts (see the file comment),
 * recording a new input in the spool. Returns 0 or the exit status.
 */
static int open_input(agent_t *a)
{
    const options_t *opt = a->opt;
    const spool_input_t *rec = spool_input(a->sp);
    spool_input_t in = {.path = "-", .pos = {.line = 1}};
    char err[INPUT_ERRLEN > SPOOL_ERRLEN ? INPUT_ERRLEN : SPOOL_ERRLEN];
    input_pos_t pos = {.line = 1};
    bool regular = false;
    struct stat st;
    int rc;

    if (opt->path != NULL) {
        if (stat(opt->path, &st) != 0) {
            warnx("%s: %s", opt->path, strerror(errno));
            return EXIT_INPUT;
        }
        regular = S_ISREG(st.st_mode);
        if (realpath(opt->path, in.path) == NULL) {
            warnx("%s: %s", opt->path, strerror(errno));
            return EXIT_INPUT;
        }
        in.dev = (uint64_t)st.st_dev;
        in.ino = (uint64_t)st.st_ino;
    }
    if ((a->r = input_reader_open(opt->path, err, sizeof(err))) == NULL) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    if (regular && strcmp(rec->path, in.path) == 0 && rec->dev == in.dev && rec->ino == in.ino &&
        rec->pos.offset > 0) {
        pos = (input_pos_t){.offset = rec->pos.offset, .line = rec->pos.line, .crc = rec->pos.crc};
        rc = input_reader_skip(a->r, &pos, err, sizeof(err));
        if (rc == INPUT_OK) {
            if (opt->verbose)
                warnx("%s: resuming after byte %" PRIu64 " (line %" PRIu64 "), read in an earlier run",
                      opt->path, pos.offset, pos.line);
        } else if (rc == INPUT_ECHANGED) {
            if (opt->verbose)
                warnx("%s: changed since an earlier run (%s): reading it from the beginning", opt->path, err);
            input_reader_destroy(&a->r);
            if ((a->r = input_reader_open(opt->path, err, sizeof(err))) == NULL) {
                warnx("%s", err);
                return EXIT_INPUT;
            }
            pos = (input_pos_t){.line = 1};
        } else {
            warnx("%s", err);
            return EXIT_INPUT;
        }
    } else if (opt->verbose && regular && rec->path[0] != '\0' && strcmp(rec->path, "-") != 0) {
        if (strcmp(rec->path, in.path) != 0)
            warnx("%s: not the input of the earlier run (%s): reading it from the beginning", opt->path,
                  rec->path);
        else if (rec->dev != in.dev || rec->ino != in.ino)
            warnx("%s: a new file (inode %" PRIu64 ", was %" PRIu64 "): reading it from the beginning",
                  opt->path, in.ino, rec->ino);
    }
    if (regular && (rc = check_file(opt, &pos, a->samples)) != 0)
        return rc;
    if (pos.offset == 0) {
        /* A new input: record it before the first batch of it is spooled. */
        in.pos = (spool_pos_t){.offset = 0, .line = 1, .crc = 0};
        if (spool_input_set(a->sp, &in, err, sizeof(err)) != SPOOL_OK) {
            warnx("%s", err);
            return EXIT_NACK;
        }
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------ */

static void spool_warn(void *arg, const char *msg)
{
    agent_t *a = arg;

    a->corrupt++;
    warnx("spool: %s", msg);
}

static int loop(agent_t *a)
{
    for (;;) {
        long timeout;
        int rc;

        /* Read ahead while the spool has room, one batch per turn; from a
         * stream only with nothing in flight, since the read may block until
         * the next line comes and the acks in flight would wait. */
        bool may_read = a->r != NULL && !(a->nfl > 0 && input_reader_is_stream(a->r));
        if (may_read) {
            if (spool_has_room(a)) {
                if ((rc = read_batch(a)) != 0)
                    return rc;
            } else if (!a->full_said) {
                warnx("spool full (%" PRIu64 " bytes): waiting for acks before reading more input",
                      spool_bytes(a->sp));
                a->full_said = true;
            }
        }
        if ((rc = window_fill(a)) != 0)
            return rc;
        if (a->nfl == 0 && a->r == NULL)
            return 0; /* everything read is acked */

        int64_t now = monotonic_ms(), first = INT64_MAX;
        for (size_t i = 0; i < a->nfl; i++)
            if (a->fl[i].phase != PHASE_PARKED && a->fl[i].deadline < first)
                first = a->fl[i].deadline;
        if (may_read && spool_has_room(a))
            timeout = 0;
        else if (first != INT64_MAX)
            timeout = (long)(first - now);
        else
            timeout = 0;
        if ((rc = poll_replies(a, timeout < 0 ? 0 : timeout)) != 0)
            return rc;
        now = monotonic_ms();
        for (size_t i = 0; i < a->nfl; i++)
            if (a->fl[i].phase != PHASE_PARKED && now >= a->fl[i].deadline &&
                (rc = on_deadline(a, &a->fl[i])) != 0)
                return rc;
    }
}

static int run(const options_t *opt)
{
    agent_t a = {.opt = opt};
    char err[SPOOL_ERRLEN];
    uint64_t first;
    int status = 0;

    msgpack_sbuffer_init(&a.buf);
    a.samples = calloc((size_t)opt->batch, sizeof(*a.samples));
    if (a.samples == NULL)
        abort();
    a.rng = (uint64_t)realtime_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)monotonic_ms();
    if (a.rng == 0)
        a.rng = 1;

    if (spool_open(opt->spool_root, opt->agent_id, opt->spool_max, 1, spool_warn, &a,
                   &a.sp, err, sizeof(err)) != SPOOL_OK) {
        warnx("%s", err);
        status = EXIT_NACK;
        goto done;
    }
    if (opt->verbose) {
        if (spool_first(a.sp, &first))
            warnx("spool %s: stream %" PRIu64 ", %zu batches (%" PRIu64 " bytes) to resend first, seqs %"
                  PRIu64 "..%" PRIu64, spool_dir(a.sp), spool_epoch(a.sp), spool_count(a.sp),
                  spool_bytes(a.sp), first, spool_next_seq(a.sp) - 1);
        else
            warnx("spool %s: stream %" PRIu64 ", empty, next seq %" PRIu64, spool_dir(a.sp),
                  spool_epoch(a.sp), spool_next_seq(a.sp));
    }
    if ((status = open_input(&a)) != 0) {
        say_spool_kept(&a);
        goto done;
    }
    a.ctx = zmq_ctx_new();
    if (a.ctx == NULL) {
        warnx("zmq_ctx_new: %s", zmq_strerror(errno));
        status = EXIT_NACK;
        goto done;
    }
    zmq_ctx_set(a.ctx, ZMQ_IPV6, 1); /* so that tcp://[::1]:P and IPv6 hosts connect */
    if ((status = check_endpoints(&a)) != 0 || (status = connect_to(&a, 0)) != 0)
        goto done;

    status = loop(&a);
    if (status == 0 && a.input_status != 0)
        status = a.input_status;
    if (status == 0 && a.corrupt > 0) {
        warnx("%" PRIu64 " corrupt spool files were moved to %s/corrupt/ and not sent", a.corrupt,
              spool_dir(a.sp));
        status = EXIT_NACK;
    }
    if (opt->verbose)
        warnx("%" PRIu64 " samples in %" PRIu64 " batches acked by %s (%" PRIu64 " resends)", a.samples_acked,
              a.batches, opt->nendpoints > 1 ? "the endpoints" : endpoint(&a), a.resends);
done:
    window_clear(&a);
    if (a.sock != NULL)
        zmq_close(a.sock);
    if (a.ctx != NULL)
        zmq_ctx_term(a.ctx);
    input_reader_destroy(&a.r);
    spool_close(&a.sp);
    msgpack_sbuffer_destroy(&a.buf);
    free(a.samples);
    return status;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: " PROG " [options] [FILE|-]\n"
            "Sends samples (CSV: enterprise,metric,value,period-or-timestamp) from FILE\n"
            "or stdin to clustermond in acknowledged batches, through an on-disk spool.\n"
            "\n"
            "  -e, --endpoint URL   daemon ingest endpoint (default " DEFAULT_ENDPOINT ");\n"
            "                       repeat it or separate with commas to fail over\n"
            "  -a, --agent-id ID    agent id (default agent-<hostname>)\n"
            "  -b, --batch N        samples per batch, 1..%d (default %d)\n"
            "  -t, --timeout MS     wait this long for an ack (default %d)\n"
            "  -r, --retries N      resends of an unacked batch, 0 = forever (default %d)\n"
            "  -w, --window N       batches in flight at once, 1..%d (default 1: send one,\n"
            "                       wait for its ack, send the next)\n"
            "  -s, --spool DIR      spool root; the spool is DIR/AGENT_ID (default " DEFAULT_SPOOL ")\n"
            "      --spool-max SIZE most bytes to spool, suffix K, M or G (default 1G)\n"
            "      --server-key KEY the daemon's CURVE public key: Z85 text or a .pub/.key\n"
            "                       file (default $CLUSTERMON_SERVER_KEY); needs --key\n"
            "      --key FILE       this agent's key pair, from clustermonctl keygen\n"
            "                       (default $CLUSTERMON_KEY)\n"
            "  -v, --verbose        report batches, resends, failovers and a summary on stderr\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "Every batch is spooled before it is sent and removed when acked; a new run\n"
            "resends what is spooled, then resumes the same FILE after the last line\n"
            "spooled (a changed FILE is read from the start). A FILE is checked before\n"
            "anything new is sent; from stdin, the lines before a bad one are delivered,\n"
            "then the agent stops.\n"
            "\n"
            "Exit status: 0 all acked and the spool empty, 1 a batch rejected (moved to\n"
            "the spool's rejected/) or another failure, 2 bad input or usage, 3 no ack\n"
            "after all tries (the spool is kept for the next run), 4 the agent id is\n"
            "in use by another agent (agent_conflict; the spool is kept).\n",
            PROTO_MAX_SAMPLES, DEFAULT_BATCH, DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES, PROTO_MAX_WINDOW);
}

/* Parses a byte count with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *ret)
{
    unsigned long long v;
    unsigned shift = 0;
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return false;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return false;
    }
    if (*end != '\0' && end[1] != '\0')
        return false;
    if (v == 0 || v > (UINT64_MAX >> shift))
        return false;
    *ret = (uint64_t)v << shift;
    return true;
}

/* Adds the comma-separated endpoints of arg. Returns 0 or EXIT_INPUT. */
static int add_endpoints(options_t *opt, const char *arg)
{
    const char *p = arg;

    for (;;) {
        size_t len = strcspn(p, ",");

        if (len == 0) {
            warnx("--endpoint: empty endpoint in '%s'", arg);
            return EXIT_INPUT;
        }
        if (opt->nendpoints == MAX_ENDPOINTS) {
            warnx("--endpoint: at most %d endpoints", MAX_ENDPOINTS);
            return EXIT_INPUT;
        }
        opt->endpoints[opt->nendpoints] = strndup(p, len);
        if (opt->endpoints[opt->nendpoints] == NULL)
            abort();
        opt->nendpoints++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

enum { OPT_SPOOL_MAX = 256, OPT_SERVER_KEY, OPT_KEY };

static int parse_options(int argc, char **argv, options_t *opt)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"agent-id", required_argument, NULL, 'a'},
        {"batch", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"retries", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'w'},
        {"spool", required_argument, NULL, 's'},
        {"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
        {"server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"key", required_argument, NULL, OPT_KEY},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *agent_id = NULL;
    char err[1024];
    int c, rc;

    while ((c = getopt_long(argc, argv, "e:a:b:t:r:w:s:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            if ((rc = add_endpoints(opt, optarg)) != 0)
                return rc;
            break;
        case 'a':
            agent_id = optarg;
            break;
        case 'b':
            if (!args_parse_long(optarg, 1, PROTO_MAX_SAMPLES, &opt->batch)) {
                warnx("--batch: '%s' is not a number in 1..%d", optarg, PROTO_MAX_SAMPLES);
                return EXIT_INPUT;
            }
            break;
        case 't':
            if (!args_parse_long(optarg, 1, INT_MAX, &opt->timeout_ms)) {
                warnx("--timeout: '%s' is not a positive number of milliseconds", optarg);
                return EXIT_INPUT;
            }
            break;
        case 'r':
            if (!args_parse_long(optarg, 0, 1000000, &opt->retries)) {
                warnx("--retries: '%s' is not a number in 0..1000000", optarg);
                return EXIT_INPUT;
            }
            break;
        case 'w':
            if (!args_parse_long(optarg, 1, PROTO_MAX_WINDOW, &opt->window)) {
                warnx("--window: '%s' is not a number in 1..%d", optarg, PROTO_MAX_WINDOW);
                return EXIT_INPUT;
            }
            break;
        case 's':
            if (optarg[0] == '\0') {
                warnx("--spool: empty directory name");
                return EXIT_INPUT;
            }
            opt->spool_root = optarg;
            break;
        case OPT_SPOOL_MAX:
            if (!parse_size(optarg, &opt->spool_max)) {
                warnx("--spool-max: '%s' is not a positive size (bytes, or with K, M or G)", optarg);
                return EXIT_INPUT;
            }
            break;
        case OPT_SERVER_KEY:
            opt->server_key_arg = optarg;
            break;
        case OPT_KEY:
            opt->key_arg = optarg;
            break;
        case 'v':
            opt->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case 'V':
            printf(PROG " " CLUSTERMON_VERSION "\n");
            return -1;
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
    if (opt->nendpoints == 0 && (rc = add_endpoints(opt, DEFAULT_ENDPOINT)) != 0)
        return rc;

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
    if (!spool_agent_id_ok(opt->agent_id)) {
        warnx("--agent-id: '%s' must be letters, digits, '_', '-' and '.' (not first): it names the "
              "spool directory",
              opt->agent_id);
        return EXIT_INPUT;
    }
    if (clientkey_init(&opt->key, opt->server_key_arg, opt->key_arg, err, sizeof(err)) != 0) {
        warnx("%s", err);
        return EXIT_INPUT;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t opt = {
        .spool_root = DEFAULT_SPOOL,
        .spool_max = DEFAULT_SPOOL_MAX,
        .batch = DEFAULT_BATCH,
        .timeout_ms = DEFAULT_TIMEOUT_MS,
        .retries = DEFAULT_RETRIES,
        .window = 1,
    };
    int rc;

    rc = parse_options(argc, argv, &opt);
    if (rc == 0)
        rc = run(&opt);
    else if (rc < 0)
        rc = 0; /* --help, --version */
    for (size_t i = 0; i < opt.nendpoints; i++)
        free(opt.endpoints[i]);
    clientkey_clear(&opt.key);
    return rc;
}
