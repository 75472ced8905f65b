/*
 * loadgen -- the benchmark's load generator, written from proto/PROTOCOL.md
 * (not from the agent): protocol-2 batches of valid samples for the firms
 * and `period` metrics of the config it is pointed at, sent to an ingest
 * endpoint from several DEALER connections, each its own stream (agent id,
 * random epoch, seq 1, 2, 3 ...) with a window of batches in flight and
 * every ack matched to its batch by seq.
 *
 *   loadgen [-c CONNS] [-w WINDOW] [-b SAMPLES] (-n SAMPLES | -d SECONDS)
 *           [-r SAMPLES_PER_S] [-y FIRST_YEAR] [-Y YEARS] [-a AGENT_PREFIX]
 *           [-k SERVER_KEY -K CLIENT_KEYFILE] [-t TIMEOUT_MS] CONFIG ENDPOINT
 *
 * Batches are encoded before the clock starts, so the generator spends its
 * time sending, not packing: the samples enumerate firm x metric x month
 * (from January FIRST_YEAR, YEARS years; default 2000, 200) once, as a pool
 * of batch bodies; a run longer than the pool goes round it again with
 * every value raised (patched in place: each value is a float64 at a known
 * offset), so a restatement never repeats the value it replaces. Each
 * frame is a per-connection header (seq, epoch and agent, written with
 * fixed-width integers so the seq is patched in place) followed by a body.
 *
 * -r caps the rate (samples/s over all connections), for a steady
 * background; -d sends for SECONDS instead of a count. The run then waits
 * for every ack due (at most TIMEOUT_MS, default 10000, without progress).
 * Prints one line of key=value figures on stdout:
 *
 *   loadgen: conns=.. batch=.. sent_batches=.. sent_samples=.. acked_batches=..
 *            acked_samples=.. nacks=.. unanswered=.. elapsed_s=.. samples_per_s=..
 *            distinct=.. [nack_STATUS=..]...
 *
 * (`distinct`: the firm-metric-months the run touched.) Exit status 0 if
 * every batch was acked `ok` with all its samples, 3 if any was nacked or
 * unanswered (the first nack's reason goes to stderr), 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/clock.h"
#include "proto/keyfile.h"
#include "proto/proto.h"
#include "tests/tools/toolcfg.h"

#define MAX_CONNS 64

/* One sample's place in the enumeration firm x metric x month. */
typedef struct {
    long nfirms, nmetrics, nmonths, space;
    int first_year;
} space_t;

typedef struct {
    void *sock;
    char agent[32];
    uint64_t epoch, next_seq;
    uint64_t acked_upto;                 /* every seq <= this one is answered */
    uint32_t inflight[PROTO_MAX_WINDOW]; /* samples of seq s at [s % window] */
    bool answered[PROTO_MAX_WINDOW];
    long outstanding;
} conn_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double value_of(long u, long cycle)
{
    /* smooth growth: no month halves, so the rules see ordinary data */
    return 1000.0 + (double)(u % 997) * 3.0 + (double)(u / 997 % 1000) * 0.5 + (double)cycle * 0.25;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

/* Writes the frame header for n samples: a 6-key map up to the samples
 * array's header. Returns its length; *seq_off is where the seq's 8 bytes
 * are. */
static size_t header_encode(unsigned char *h, const char *agent, uint64_t epoch, uint32_t n,
                            size_t *seq_off)
{
    size_t len = 0, alen = strlen(agent);
    static const unsigned char start[] = {0x86, 0xa1, 'v', 0x02, 0xa4, 't',  'y', 'p', 'e', 0xa5,
                                          'b',  'a',  't', 'c',  'h',  0xa3, 's', 'e', 'q', 0xcf};
    memcpy(h, start, sizeof start);
    len = sizeof start;
    *seq_off = len;
    len += 8;
    static const unsigned char ep[] = {0xa5, 'e', 'p', 'o', 'c', 'h', 0xcf};
    memcpy(h + len, ep, sizeof ep);
    len += sizeof ep;
    put_be64(h + len, epoch);
    len += 8;
    static const unsigned char ag[] = {0xa5, 'a', 'g', 'e', 'n', 't'};
    memcpy(h + len, ag, sizeof ag);
    len += sizeof ag;
    h[len++] = (unsigned char)(0xa0 | alen); /* fixstr: agent ids here are < 32 bytes */
    memcpy(h + len, agent, alen);
    len += alen;
    static const unsigned char sa[] = {0xa7, 's', 'a', 'm', 'p', 'l', 'e', 's'};
    memcpy(h + len, sa, sizeof sa);
    len += sizeof sa;
    if (n < 16) {
        h[len++] = (unsigned char)(0x90 | n);
    } else {
        h[len++] = 0xdc;
        h[len++] = (unsigned char)(n >> 8);
        h[len++] = (unsigned char)(n & 0xff);
    }
    return len;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen [-c CONNS] [-w WINDOW] [-b SAMPLES] (-n SAMPLES | -d SECONDS)\n"
            "               [-r SAMPLES_PER_S] [-y FIRST_YEAR] [-Y YEARS] [-a AGENT_PREFIX]\n"
            "               [-k SERVER_KEY -K CLIENT_KEYFILE] [-t TIMEOUT_MS] CONFIG "
            "ENDPOINT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long conns = 4, window = 16, per_batch = 1000, total = 0, rate = 0, timeout_ms = 10000;
    double duration = 0;
    int first_year = 2000, years = 200, c;
    const char *prefix = "loadgen", *server_key = NULL, *client_key = NULL;

    while ((c = getopt(argc, argv, "c:w:b:n:d:r:y:Y:a:k:K:t:")) != -1) {
        switch (c) {
        case 'c': conns = atol(optarg); break;
        case 'w': window = atol(optarg); break;
        case 'b': per_batch = atol(optarg); break;
        case 'n': total = atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'r': rate = atol(optarg); break;
        case 'y': first_year = atoi(optarg); break;
        case 'Y': years = atoi(optarg); break;
        case 'a': prefix = optarg; break;
        case 'k': server_key = optarg; break;
        case 'K': client_key = optarg; break;
        case 't': timeout_ms = atol(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || conns < 1 || conns > MAX_CONNS || window < 1 ||
        window > PROTO_MAX_WINDOW || per_batch < 1 || per_batch > PROTO_MAX_SAMPLES ||
        (total <= 0) == (duration <= 0) || rate < 0 || years < 1 || first_year < PROTO_MIN_YEAR ||
        first_year + years - 1 > PROTO_MAX_YEAR || strlen(prefix) > 16 ||
        (server_key == NULL) != (client_key == NULL))
        usage();

    char err[PROTO_ERRLEN + 512];
    toolcfg_t cfg;
    if (toolcfg_load(argv[optind], &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    space_t sp = {.nfirms = cfg.nfirms,
                  .nmetrics = cfg.nmetrics,
                  .nmonths = 12L * years,
                  .first_year = first_year};
    sp.space = sp.nfirms * sp.nmetrics * sp.nmonths;

    /* The pool: enough batch bodies to cover the space once (or the run,
     * if it is shorter). */
    long pool = (sp.space + per_batch - 1) / per_batch;
    if (total > 0 && (total + per_batch - 1) / per_batch < pool)
        pool = (total + per_batch - 1) / per_batch;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    size_t *slot_off = malloc((size_t)(pool + 1) * sizeof *slot_off);
    uint32_t *value_off = malloc((size_t)(pool * per_batch) * sizeof *value_off);
    uint32_t *sample_off = malloc((size_t)(pool * per_batch) * sizeof *sample_off);
    long *slot_cycle = calloc((size_t)pool, sizeof *slot_cycle);
    if (!slot_off || !value_off || !sample_off || !slot_cycle)
        abort();
    for (long s = 0; s < pool; s++) {
        slot_off[s] = body.size;
        for (long j = 0; j < per_batch; j++) {
            long u = (s * per_batch + j) % sp.space;
            long firm = u % sp.nfirms, metric = u / sp.nfirms % sp.nmetrics,
                 month = u / (sp.nfirms * sp.nmetrics);
            const char *fid = cfg.firms[firm].id, *mid = cfg.metrics[metric];
            char period[16];
            snprintf(period, sizeof period, "%04d-%02d", (first_year + (int)(month / 12)) % 10000,
                     (int)(month % 12) + 1);
            sample_off[s * per_batch + j] = (uint32_t)body.size;
            msgpack_pack_array(&pk, 5);
            msgpack_pack_str_with_body(&pk, fid, strlen(fid));
            msgpack_pack_str_with_body(&pk, mid, strlen(mid));
            msgpack_pack_double(&pk, value_of(u, 0));
            value_off[s * per_batch + j] = (uint32_t)(body.size - 8);
            msgpack_pack_int64(&pk, 0); /* ts_ms: the period decides (PROTOCOL.md 4.1) */
            msgpack_pack_str_with_body(&pk, period, strlen(period));
        }
    }
    slot_off[pool] = body.size;
    if (body.size > UINT32_MAX) {
        fprintf(stderr, "loadgen: the pool is too large (%zu bytes): fewer years or firms\n",
                body.size);
        return 2;
    }

    keyfile_t ck;
    char spub[KEYFILE_Z85_LEN + 1];
    if (server_key && (keyfile_public_arg(server_key, spub, err, sizeof err) != 0 ||
                       keyfile_load(client_key, true, &ck, err, sizeof err) != 0)) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    void *ctx = zmq_ctx_new();
    static conn_t cs[MAX_CONNS];
    uint64_t seed = clock_wall_ns() ^ ((uint64_t)getpid() << 32);
    for (long i = 0; i < conns; i++) {
        conn_t *cn = &cs[i];
        cn->sock = zmq_socket(ctx, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt(cn->sock, ZMQ_LINGER, &linger, sizeof linger);
        if (server_key && keyfile_client_setup(cn->sock, spub, &ck, err, sizeof err) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            return 2;
        }
        if (zmq_connect(cn->sock, argv[optind + 1]) != 0) {
            fprintf(stderr, "loadgen: connect %s: %s\n", argv[optind + 1],
                    zmq_strerror(zmq_errno()));
            return 2;
        }
        snprintf(cn->agent, sizeof cn->agent, "%s-%d-%ld", prefix, (int)(getpid() % 100000), i);
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        cn->epoch = (seed >> 11) | 1; /* 53 random bits, never 0 */
        cn->next_seq = 1;
    }

    long sent_batches = 0, sent_samples = 0, acked_batches = 0, acked_samples = 0, nacks = 0;
    long by_status[PROTO_STATUS_COUNT + 1] = {0};
    long next_batch = 0; /* the pool slot and cycle of the next batch sent */
    bool printed_nack = false;
    unsigned char hdr[128];
    static char reply[65536];
    zmq_pollitem_t items[MAX_CONNS];
    uint64_t t0 = clock_monotonic_ns(), last_progress = t0;
    uint64_t end_ns = duration > 0 ? t0 + (uint64_t)(duration * 1e9) : UINT64_MAX;
    bool sending = true;

    for (;;) {
        uint64_t now = clock_monotonic_ns();
        if (stop_flag || now >= end_ns || (total > 0 && sent_samples >= total))
            sending = false;
        long outstanding = sent_batches - acked_batches;
        if (!sending && outstanding == 0)
            break;
        if (now - last_progress > (uint64_t)timeout_ms * 1000000u)
            break; /* nothing answered for timeout_ms */
        /* how many samples the rate allows by now */
        bool rate_ok = true;
        long poll_ms = 100;
        if (rate > 0) {
            double allowed = (double)rate * (double)(now - t0) / 1e9 + (double)per_batch;
            if ((double)sent_samples + (double)per_batch > allowed) {
                rate_ok = false;
                double wait_s = ((double)sent_samples + (double)per_batch - allowed) / (double)rate;
                poll_ms = (long)(wait_s * 1000) + 1;
                if (poll_ms > 100)
                    poll_ms = 100;
            }
        }
        for (long i = 0; i < conns; i++) {
            bool can = sending && rate_ok && cs[i].outstanding < window;
            items[i] = (zmq_pollitem_t){.socket = cs[i].sock,
                                        .events = (short)(ZMQ_POLLIN | (can ? ZMQ_POLLOUT : 0))};
        }
        int rc = zmq_poll(items, (int)conns, poll_ms);
        if (rc < 0 && zmq_errno() != EINTR) {
            fprintf(stderr, "loadgen: poll: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
        for (long i = 0; i < conns && rc > 0; i++) {
            conn_t *cn = &cs[i];
            int got;
            while ((got = zmq_recv(cn->sock, reply, sizeof reply, ZMQ_DONTWAIT)) >= 0) {
                proto_ack_t ack;
                size_t len = (size_t)got < sizeof reply ? (size_t)got : sizeof reply;
                int drc = proto_ack_decode(reply, len, &ack, err, sizeof err);
                if (drc != PROTO_OK) {
                    by_status[PROTO_STATUS_COUNT]++;
                    nacks++;
                    if (!printed_nack)
                        fprintf(stderr, "loadgen: an undecodable reply: %s\n", err);
                    printed_nack = true;
                    continue;
                }
                /* match by seq: only a seq in flight and not yet answered */
                if (ack.seq <= cn->acked_upto || ack.seq >= cn->next_seq ||
                    cn->answered[ack.seq % (uint64_t)window])
                    continue;
                uint32_t want = cn->inflight[ack.seq % (uint64_t)window];
                cn->answered[ack.seq % (uint64_t)window] = true;
                cn->outstanding--;
                acked_batches++;
                last_progress = clock_monotonic_ns();
                if (ack.status == PROTO_STATUS_OK && ack.accepted == want) {
                    acked_samples += ack.accepted;
                } else {
                    nacks++;
                    by_status[ack.status < PROTO_STATUS_COUNT ? ack.status : PROTO_STATUS_COUNT]++;
                    if (!printed_nack)
                        fprintf(stderr, "loadgen: %s seq %llu: %s accepted=%u of %u: %.*s\n",
                                cn->agent, (unsigned long long)ack.seq,
                                proto_status_name((proto_status_t)ack.status), ack.accepted, want,
                                PROTO_STR_ARG(ack.reason));
                    printed_nack = true;
                }
                while (cn->acked_upto + 1 < cn->next_seq &&
                       cn->answered[(cn->acked_upto + 1) % (uint64_t)window]) {
                    cn->acked_upto++;
                    cn->answered[cn->acked_upto % (uint64_t)window] = false;
                }
            }
            if (!(items[i].revents & ZMQ_POLLOUT))
                continue;
            /* a gap (an ack not yet matched below a later one) still
             * holds its window slot: send only into free slots */
            while (sending && cn->outstanding < window &&
                   (cn->next_seq - cn->acked_upto) <= (uint64_t)window) {
                if (rate > 0 && (double)sent_samples + (double)per_batch >
                                    (double)rate * (double)(clock_monotonic_ns() - t0) / 1e9 +
                                        (double)per_batch)
                    break;
                if (total > 0 && sent_samples >= total)
                    break;
                long slot = next_batch % pool, cycle = next_batch / pool;
                long n = per_batch;
                if (total > 0 && total - sent_samples < n)
                    n = total - sent_samples;
                if (slot_cycle[slot] != cycle) { /* a restatement: new values */
                    for (long j = 0; j < per_batch; j++) {
                        double v = value_of((slot * per_batch + j) % sp.space, cycle);
                        uint64_t bits;
                        memcpy(&bits, &v, sizeof bits);
                        put_be64((unsigned char *)body.data + value_off[slot * per_batch + j],
                                 bits);
                    }
                    slot_cycle[slot] = cycle;
                }
                size_t seq_off;
                size_t hlen = header_encode(hdr, cn->agent, cn->epoch, (uint32_t)n, &seq_off);
                put_be64(hdr + seq_off, cn->next_seq);
                /* n samples of the slot (a short last batch ends early) */
                size_t bstart = slot_off[slot];
                size_t bend =
                    n == per_batch ? slot_off[slot + 1] : sample_off[slot * per_batch + n];
                zmq_msg_t m;
                zmq_msg_init_size(&m, hlen + (bend - bstart));
                memcpy(zmq_msg_data(&m), hdr, hlen);
                memcpy((char *)zmq_msg_data(&m) + hlen, body.data + bstart, bend - bstart);
                if (zmq_msg_send(&m, cn->sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                cn->inflight[cn->next_seq % (uint64_t)window] = (uint32_t)n;
                cn->answered[cn->next_seq % (uint64_t)window] = false;
                cn->next_seq++;
                cn->outstanding++;
                sent_batches++;
                sent_samples += n;
                next_batch++;
            }
        }
    }
    double elapsed = (double)(clock_monotonic_ns() - t0) / 1e9;
    long unanswered = sent_batches - acked_batches;
    long distinct = sent_samples < sp.space ? sent_samples : sp.space;
    if (next_batch < pool && next_batch * per_batch < distinct)
        distinct = next_batch * per_batch;
    printf("loadgen: conns=%ld batch=%ld sent_batches=%ld sent_samples=%ld acked_batches=%ld "
           "acked_samples=%ld nacks=%ld unanswered=%ld elapsed_s=%.3f samples_per_s=%.0f "
           "distinct=%ld",
           conns, per_batch, sent_batches, sent_samples, acked_batches, acked_samples, nacks,
           unanswered, elapsed, elapsed > 0 ? (double)acked_samples / elapsed : 0.0, distinct);
    for (int st = 0; st <= PROTO_STATUS_COUNT; st++)
        if (by_status[st])
            printf(" nack_%s=%ld",
                   st < PROTO_STATUS_COUNT ? proto_status_name((proto_status_t)st) : "undecodable",
                   by_status[st]);
    printf("\n");
    for (long i = 0; i < conns; i++)
        zmq_close(cs[i].sock);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&body);
    free(slot_off);
    free(value_off);
    free(sample_off);
    free(slot_cycle);
    free(cfg.firms);
    return nacks == 0 && unanswered == 0 && sent_batches > 0 ? 0 : 3;
}
