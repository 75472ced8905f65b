/* delivery.c -- see delivery.h. */
#include "agents/delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "proto/clock.h"

#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 2000
#define SOCKET_HWM 100

typedef enum {
    PHASE_SENT,   /* waiting for the answer until the deadline */
    PHASE_PAUSED, /* backing off until the deadline, then resend */
    PHASE_PARKED, /* out_of_order: resent once every batch before it is settled */
} phase_t;

/* One batch in the window: the oldest unsettled ones, by seq. */
typedef struct {
    uint64_t seq;
    void *msg; /* owned */
    size_t len;
    unsigned tries;
    phase_t phase;
    const char *deferred; /* the last answer put it off: "busy" or "rate limited"; else NULL */
    int64_t deadline;
    bool lost; /* its bytes were gone: an empty batch stands in */
} flight_t;

struct delivery {
    delivery_opts_t o;
    delivery_source_t src;
    void *ctx, *sock;
    size_t ep; /* the endpoint sock is connected to */
    uint64_t rng;
    flight_t fl[PROTO_MAX_WINDOW];
    size_t nfl;
    delivery_stats_t stats;
    proto_refusal_t *refused; /* PROTO_MAX_SAMPLES: the refused samples of a partial answer */
};

static void say(const delivery_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const delivery_t *d, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", d->o.prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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
static long backoff_ms(delivery_t *d, unsigned tries)
{
    long t = BACKOFF_BASE_MS;

    for (unsigned i = 1; i < tries && t < BACKOFF_CAP_MS; i++)
        t *= 2;
    if (t > BACKOFF_CAP_MS)
        t = BACKOFF_CAP_MS;
    return t / 2 + (long)(rng_next(&d->rng) % (uint64_t)(t / 2 + 1));
}

const char *delivery_endpoint(const delivery_t *d)
{
    return d->o.endpoints[d->ep];
}

const delivery_stats_t *delivery_stats(const delivery_t *d)
{
    return &d->stats;
}

size_t delivery_inflight(const delivery_t *d)
{
    return d->nfl;
}

void *delivery_socket(const delivery_t *d)
{
    return d->sock;
}

long delivery_wait_ms(const delivery_t *d)
{
    int64_t now = clock_monotonic_ms(), first = INT64_MAX;

    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i].phase != PHASE_PARKED && d->fl[i].deadline < first)
            first = d->fl[i].deadline;
    if (first == INT64_MAX)
        return -1;
    return first > now ? (long)(first - now) : 0;
}

/* ---- the socket ------------------------------------------------------------ */

static void *socket_new(delivery_t *d)
{
    int linger = 0, hwm = SOCKET_HWM;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;
    char err[512];
    void *s = zmq_socket(d->ctx, ZMQ_DEALER);

    if (s == NULL) {
        say(d, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        say(d, "zmq_setsockopt: %s", zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (d->o.key != NULL && clientkey_setup(d->o.key, s, err, sizeof err) != 0) {
        say(d, "%s", err);
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Connects a fresh DEALER to endpoint ep (closing the old one). Returns 0 or the exit status. */
static int connect_to(delivery_t *d, size_t ep)
{
    if (d->sock != NULL)
        zmq_close(d->sock); /* linger 0: whatever it still queued is dropped */
    d->sock = socket_new(d);
    if (d->sock == NULL)
        return DELIVERY_FAILED;
    d->ep = ep;
    if (zmq_connect(d->sock, delivery_endpoint(d)) != 0) {
        say(d, "cannot connect to %s: %s", delivery_endpoint(d), zmq_strerror(errno));
        return DELIVERY_USAGE;
    }
    if (d->o.verbose)
        say(d, "sending to %s", delivery_endpoint(d));
    return 0;
}

/* Checks every endpoint's syntax up front, so a failover cannot fail on a typo. */
static int check_endpoints(delivery_t *d)
{
    for (size_t i = 0; i < d->o.nendpoints; i++) {
        void *s = socket_new(d);

        if (s == NULL)
            return DELIVERY_FAILED;
        int rc = zmq_connect(s, d->o.endpoints[i]);
        if (rc != 0)
            say(d, "cannot connect to %s: %s", d->o.endpoints[i], zmq_strerror(errno));
        zmq_close(s);
        if (rc != 0)
            return DELIVERY_USAGE;
    }
    return 0;
}

int delivery_open(void *zctx, const delivery_opts_t *opts, const delivery_source_t *src,
                  delivery_t **ret)
{
    delivery_t *d = calloc(1, sizeof *d);

    if (d != NULL && (d->refused = calloc(PROTO_MAX_SAMPLES, sizeof *d->refused)) == NULL) {
        free(d);
        d = NULL;
    }
    int rc;

    if (d == NULL)
        abort();
    d->o = *opts;
    d->src = *src;
    d->ctx = zctx;
    d->rng = clock_wall_ns() ^ ((uint64_t)getpid() << 32);
    if (d->rng == 0)
        d->rng = 1;
    if ((rc = check_endpoints(d)) != 0 || (rc = connect_to(d, 0)) != 0) {
        delivery_close(&d);
        return rc;
    }
    *ret = d;
    return 0;
}

void delivery_close(delivery_t **dp)
{
    delivery_t *d = *dp;

    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nfl; i++)
        free(d->fl[i].msg);
    if (d->sock != NULL)
        zmq_close(d->sock);
    free(d->refused);
    free(d);
    *dp = NULL;
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

static void flight_drop(delivery_t *d, size_t i)
{
    free(d->fl[i].msg);
    memmove(&d->fl[i], &d->fl[i + 1], (d->nfl - i - 1) * sizeof d->fl[0]);
    d->nfl--;
}

static flight_t *flight_find(delivery_t *d, uint64_t seq)
{
    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i].seq == seq)
            return &d->fl[i];
    return NULL;
}

static void send_msg(delivery_t *d, flight_t *f)
{
    if (zmq_send(d->sock, f->msg, f->len, ZMQ_DONTWAIT) < 0 && d->o.verbose)
        /* Queue full (peer gone): counts as a try; the timeout paces us. */
        say(d, "batch %" PRIu64 ": cannot queue it for %s: %s", f->seq, delivery_endpoint(d),
            zmq_strerror(errno));
    f->phase = PHASE_SENT;
    f->deferred = NULL;
    f->deadline = clock_monotonic_ms() + d->o.timeout_ms;
}

/* An empty batch with seq: it settles a seq whose bytes were lost. */
static int empty_batch(delivery_t *d, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    char err[PROTO_ERRLEN];
    proto_batch_t b = {.agent = proto_str(d->o.agent_id), .epoch = d->o.epoch, .seq = seq};
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    if (proto_batch_encode(&b, &sb, err, sizeof err) < 0) {
        say(d, "cannot encode an empty batch %" PRIu64 ": %s", seq, err);
        msgpack_sbuffer_destroy(&sb);
        return DELIVERY_FAILED;
    }
    *ret_msg = sb.data; /* malloc()ed by the sbuffer: ours now */
    *ret_len = sb.size;
    return 0;
}

/* Fills the window with the next batches (after the newest in it) and sends each. */
static int window_fill(delivery_t *d)
{
    uint64_t seq;
    bool more = d->src.next(d->src.arg, d->nfl == 0, d->nfl == 0 ? 0 : d->fl[d->nfl - 1].seq, &seq);

    while (more && d->nfl < (size_t)d->o.window) {
        flight_t *f = &d->fl[d->nfl];
        int rc = d->src.load(d->src.arg, seq, &f->msg, &f->len);

        f->lost = rc == DELIVERY_LOST;
        if (f->lost) {
            /* Its samples are gone (the source said so), but its seq was
             * handed out, and the daemon takes no later seq before it. */
            if ((rc = empty_batch(d, seq, &f->msg, &f->len)) != 0)
                return rc;
        } else if (rc != 0) {
            return rc;
        }
        f->seq = seq;
        f->tries = 1;
        d->nfl++;
        send_msg(d, f);
        more = d->src.next(d->src.arg, false, seq, &seq);
    }
    return 0;
}

/* Resends the parked batches that now lead the window. */
static void unpark(delivery_t *d)
{
    for (size_t i = 0; i < d->nfl; i++) {
        if (d->fl[i].phase != PHASE_PARKED)
            return; /* the first unsettled one is on its way: the rest wait for it */
        d->stats.resends++;
        send_msg(d, &d->fl[i]);
    }
}

/* The deadline of batch f has passed. Returns 0 or the exit status. */
static int on_deadline(delivery_t *d, flight_t *f)
{
    unsigned max_tries = d->o.retries == 0 ? 0 : (unsigned)d->o.retries + 1;

    if (f->phase == PHASE_SENT) {

        if (max_tries != 0 && f->tries >= max_tries) {
            say(d, "batch %" PRIu64 ": no ack from %s after %u tries%s%s%s", f->seq,
                d->o.nendpoints > 1 ? "any endpoint" : delivery_endpoint(d), f->tries,
                f->deferred ? " (the daemon stayed " : "", f->deferred ? f->deferred : "",
                f->deferred ? ")" : "");
            return DELIVERY_NOACK;
        }
        long pause = backoff_ms(d, f->tries);
        if (d->o.verbose)
            say(d, "batch %" PRIu64 ": %s %s %s, resending in %ld ms (try %u%s)", f->seq,
                f->deferred ? f->deferred : "no ack", f->deferred ? "at" : "from",
                delivery_endpoint(d), pause, f->tries + 1, max_tries ? "" : ", retrying forever");
        /* A late answer may still arrive during the pause: it counts. */
        f->phase = PHASE_PAUSED;
        f->deadline = clock_monotonic_ms() + pause;
        return 0;
    }
    /*
     * A busy or rate-limiting daemon is up: stay. A silent one: try the next
     * endpoint, on a new socket, and send the whole window there. With a
     * single endpoint the socket stays: ZeroMQ reconnects by itself, and the
     * copies it queued meanwhile (at most SOCKET_HWM) reach the daemon as
     * duplicates, answered with their first answer and not applied again.
     */
    if (f->deferred == NULL && d->o.nendpoints > 1) {
        size_t next = (d->ep + 1) % d->o.nendpoints;
        int rc;

        if (d->o.verbose)
            say(d, "batch %" PRIu64 ": failing over from %s to %s", f->seq, delivery_endpoint(d),
                d->o.endpoints[next]);
        if ((rc = connect_to(d, next)) != 0)
            return rc;
        for (size_t i = 0; i < d->nfl; i++)
            if (&d->fl[i] != f && d->fl[i].phase != PHASE_PARKED) {
                d->fl[i].tries++;
                d->stats.resends++;
                send_msg(d, &d->fl[i]);
            }
    }
    f->tries++;
    d->stats.resends++;
    send_msg(d, f);
    return 0;
}

/* Hands a settled batch back to the source and drops it from the window. */
static int settle(delivery_t *d, flight_t *f, const proto_ack_t *ack, bool forgotten)
{
    uint64_t seq = f->seq;
    bool lost = f->lost;

    flight_drop(d, (size_t)(f - d->fl));
    return d->src.settled(d->src.arg, seq, ack, forgotten, lost);
}

/* Handles one decoded answer. Returns 0 or the exit status. */
static int on_ack(delivery_t *d, const proto_ack_t *ack)
{
    flight_t *f = flight_find(d, ack->seq);
    proto_next_t next = proto_status_next((proto_status_t)ack->status);
    const char *name = proto_status_name((proto_status_t)ack->status);
    int rc;

    if (ack->seq == 0 && next != PROTO_NEXT_DONE) {
        /* The daemon could not tell which batch or stream: every batch this
         * sender sends would fare the same. */
        say(d, "the daemon refused a batch it could not attribute: %s: " PROTO_STR_FMT, name,
            PROTO_STR_ARG(ack->reason));
        return DELIVERY_FAILED;
    }
    if (f == NULL) {
        /* A late answer to an earlier copy of a batch already settled. */
        if (d->o.verbose)
            say(d, "ignoring an ack for seq %" PRIu64 " (not in flight)", ack->seq);
        return 0;
    }
    switch (next) {
    case PROTO_NEXT_DONE:
        d->stats.samples_acked += ack->accepted;
        d->stats.batches_acked++;
        if (d->o.verbose)
            say(d, "batch %" PRIu64 ": %" PRIu32 " samples acked by %s%s", f->seq, ack->accepted,
                delivery_endpoint(d), ack->nrefused ? " (partial: the others refused)" : "");
        if ((rc = settle(d, f, ack, false)) != 0)
            return rc;
        unpark(d);
        return 0;
    case PROTO_NEXT_RETRY:
        if (ack->status == PROTO_STATUS_INTERNAL) {
            /* The daemon failed, not the batch (e.g. its disk): keep it for later. */
            say(d, "batch %" PRIu64 " rejected: %s: " PROTO_STR_FMT, f->seq, name,
                PROTO_STR_ARG(ack->reason));
            say(d, "batch %" PRIu64 " is kept: the daemon's fault, not the data's", f->seq);
            return DELIVERY_FAILED;
        } else {
            /* The daemon is there but cannot take it now: the same bytes, later. */
            const char *why = ack->status == PROTO_STATUS_BUSY ? "busy" : "rate limited";
            size_t n = strlen(why);
            bool said = ack->reason.len >= n && memcmp(ack->reason.ptr, why, n) == 0;

            say(d, "batch %" PRIu64 " deferred: %s%s" PROTO_STR_FMT, f->seq, said ? "" : why,
                said ? "" : ": ", PROTO_STR_ARG(ack->reason));
            if (f->phase == PHASE_SENT) {
                f->deferred = why;
                f->deadline = clock_monotonic_ms(); /* back off now */
            }
        }
        return 0;
    case PROTO_NEXT_REWIND:
        if (ack->expected > f->seq) {
            /* Settled so long ago that the daemon forgot the answer: it was
             * acked or refused then, and cannot be sent again. */
            say(d, "batch %" PRIu64 ": settled by the daemon long ago (" PROTO_STR_FMT ")", f->seq,
                PROTO_STR_ARG(ack->reason));
            if ((rc = settle(d, f, ack, true)) != 0)
                return rc;
            unpark(d);
            return 0;
        }
        if (ack->expected < d->fl[0].seq && d->src.rewind != NULL &&
            d->src.rewind(d->src.arg, ack->expected)) {
            /* The source still has them: start again where the daemon is. */
            say(d,
                "%s expects seq %" PRIu64 " of stream %" PRIu64 ", older than what it had "
                "acked: its state was reset (re-seeded?); resending from there",
                delivery_endpoint(d), ack->expected, d->o.epoch);
            while (d->nfl > 0)
                flight_drop(d, d->nfl - 1);
            return 0;
        }
        if (ack->expected < d->fl[0].seq) {
            say(d,
                "the daemon expects seq %" PRIu64 " of stream %" PRIu64 ", which was delivered "
                "(acked) and dropped long ago: the daemon's state was reset or lost (" PROTO_STR_FMT
                ")",
                ack->expected, d->o.epoch, PROTO_STR_ARG(ack->reason));
            return DELIVERY_FAILED;
        }
        if (d->o.verbose)
            say(d, "batch %" PRIu64 ": out of order, the daemon expects %" PRIu64 " first", f->seq,
                ack->expected);
        /* the one it waits for is in the window, on its way or backing off:
         * this one goes again once it is settled */
        f->phase = PHASE_PARKED;
        return 0;
    case PROTO_NEXT_STOP:
        say(d, "batch %" PRIu64 " refused: %s: " PROTO_STR_FMT, f->seq, name,
            PROTO_STR_ARG(ack->reason));
        say(d, "stopping: agent id '%s' belongs to another agent; give this one its own id",
            d->o.agent_id);
        return DELIVERY_CONFLICT;
    case PROTO_NEXT_FINAL: break;
    }
    say(d, "batch %" PRIu64 " rejected: %s: " PROTO_STR_FMT, f->seq, name,
        PROTO_STR_ARG(ack->reason));
    if (ack->expected != f->seq + 1)
        say(d,
            "batch %" PRIu64 ": the daemon did not settle it (expected %" PRIu64 "): the sender "
            "itself is at fault",
            f->seq, ack->expected);
    return settle(d, f, ack, false);
}

/* Receives and handles every answer waiting. Returns 0 or the exit status. */
static int drain(delivery_t *d)
{
    zmq_msg_t msg;
    int rc, status = 0;

    zmq_msg_init(&msg);
    while (status == 0) {
        proto_ack_t ack = {.refused = d->refused, .refused_cap = PROTO_MAX_SAMPLES};
        char err[PROTO_ERRLEN];

        rc = recv_reply(d->sock, &msg);
        if (rc < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                say(d, "receive from %s: %s", delivery_endpoint(d), zmq_strerror(errno));
                status = DELIVERY_FAILED;
            }
            break;
        }
        if (rc == 0) {
            say(d, "ignoring a reply from %s with an unexpected frame layout",
                delivery_endpoint(d));
            continue;
        }
        if (proto_ack_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &ack, err, sizeof err) < 0) {
            say(d, "ignoring a malformed reply from %s: %s", delivery_endpoint(d), err);
            continue;
        }
        status = on_ack(d, &ack);
    }
    zmq_msg_close(&msg);
    return status;
}

int delivery_step(delivery_t *d, long wait_ms)
{
    int rc;

    if ((rc = window_fill(d)) != 0)
        return rc;
    int64_t now = clock_monotonic_ms(), first = INT64_MAX;
    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i].phase != PHASE_PARKED && d->fl[i].deadline < first)
            first = d->fl[i].deadline;
    long timeout = wait_ms;
    if (first != INT64_MAX && (timeout < 0 || first - now < timeout))
        timeout = (long)(first - now);
    if (timeout < 0)
        timeout = 0; /* a deadline passed, or nothing to wait for */
    zmq_pollitem_t item = {.socket = d->sock, .events = ZMQ_POLLIN};
    rc = zmq_poll(&item, 1, timeout);
    if (rc < 0 && errno != EINTR) {
        say(d, "zmq_poll: %s", zmq_strerror(errno));
        return DELIVERY_FAILED;
    }
    if (rc > 0 && (rc = drain(d)) != 0)
        return rc;
    now = clock_monotonic_ms();
    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i].phase != PHASE_PARKED && now >= d->fl[i].deadline &&
            (rc = on_deadline(d, &d->fl[i])) != 0)
            return rc;
    return 0;
}
