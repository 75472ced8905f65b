/*
 * alertprobe -- the benchmark's latency and fan-out probe. It trips a
 * threshold rule (by default the default config's cod-limit: readings of
 * `cod` above 50 on the water-pollution-control firms, 2 in a row, clear at
 * 40) one firm at a time and times each alert from the send of the batch
 * that trips it to its arrival at a SUB.
 *
 *   alertprobe lat [-n PROBES] [opts] CONFIG INGEST ALERTS
 *       PROBES fire/resolve cycles; each times the firing and the resolved
 *       alert. Prints "alertprobe: lat n=.. p50_us=.. p99_us=.. p999_us=..
 *       max_us=.. lost=.."
 *   alertprobe rtt [-n PROBES] [opts] CONFIG ENDPOINT
 *       the same batches to a receiver that acks them (barerecv), timing
 *       send -> ack: a request/reply round trip measured the same way.
 *   alertprobe fanout [-n CYCLES] [-s SUBS] [-w WINDOW] [opts] CONFIG INGEST ALERTS
 *       SUBS subscribers to `alert.`; CYCLES fire/resolve cycles sent with
 *       WINDOW batches in flight; prints "alertprobe: fanout subs=..
 *       alerts=.. min=.. max=.. gaps=.. elapsed_s=.. alerts_per_s=.."
 *       (alerts: the most any subscriber got; gaps: seq gaps seen).
 *
 * opts: -m METRIC (cod) -C CHAIN (water-pollution-control) -H HIGH (60)
 *       -L LOW (30) -t TIMEOUT_MS (5000: one alert's longest wait).
 *
 * The batches come from one stream (agent "alertprobe-PID", random epoch).
 * Exit 0 if every probe was answered (lat/rtt: every alert came; fanout:
 * every subscriber got every alert, no gaps), 3 otherwise, 2 on usage.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/clock.h"
#include "proto/proto.h"
#include "tests/tools/toolcfg.h"

#define MAX_SUBS 1000

typedef struct {
    void *ing;
    char agent[40];
    uint64_t epoch, seq;
    const char *metric;
    msgpack_sbuffer buf;
} stream_t;

/* Sends one batch of one reading; returns its seq. */
static uint64_t send_reading(stream_t *st, const char *firm, double value)
{
    static proto_sample_t s;
    s = (proto_sample_t){.firm = proto_str(firm),
                         .metric = proto_str(st->metric),
                         .value = value,
                         .ts_ms = clock_wall_ms()};
    proto_batch_t b = {.agent = proto_str(st->agent),
                       .epoch = st->epoch,
                       .seq = ++st->seq,
                       .nsamples = 1,
                       .samples = &s,
                       .cap = 1};
    char err[PROTO_ERRLEN];
    msgpack_sbuffer_clear(&st->buf);
    if (proto_batch_encode(&b, &st->buf, err, sizeof err) != PROTO_OK) {
        fprintf(stderr, "alertprobe: encode: %s\n", err);
        exit(2);
    }
    zmq_send(st->ing, st->buf.data, st->buf.size, 0);
    return st->seq;
}

/* Reads one ack (blocking up to timeout_ms); returns 1 if ok, 0 if a
 * nack, -1 on timeout. */
static int read_ack(void *sock, long timeout_ms)
{
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return -1;
    char buf[4096];
    int n = zmq_recv(sock, buf, sizeof buf, 0);
    proto_ack_t a;
    char err[PROTO_ERRLEN];
    if (n < 0 || proto_ack_decode(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf, &a, err,
                                  sizeof err) != PROTO_OK)
        return 0;
    if (a.status != PROTO_STATUS_OK) {
        fprintf(stderr, "alertprobe: nack %s: %.*s\n", proto_status_name((proto_status_t)a.status),
                PROTO_STR_ARG(a.reason));
        return 0;
    }
    return 1;
}

/* Receives one alert (not a heartbeat) on sub within timeout_ms -- with
 * firm non-NULL, the first about that firm in that state, skipping the
 * rest (other rules' alerts, under a background load); fills *ret_seq and
 * the cluster; returns 1, or -1 on timeout. */
static int read_alert(void *sub, long timeout_ms, const char *firm, int state, uint64_t *ret_seq,
                      char *cluster, size_t csize)
{
    int64_t until = clock_monotonic_ms() + timeout_ms;
    for (;;) {
        long left = (long)(until - clock_monotonic_ms());
        zmq_pollitem_t it = {.socket = sub, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, left > 0 ? left : 0) <= 0)
            return -1;
        char topic[256];
        static char body[65536];
        int tn = zmq_recv(sub, topic, sizeof topic - 1, 0);
        int more = 0;
        size_t ms = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &ms);
        if (tn < 0 || !more)
            continue;
        int bn = zmq_recv(sub, body, sizeof body, 0);
        topic[tn < (int)sizeof topic - 1 ? tn : (int)sizeof topic - 1] = '\0';
        if (bn < 0 || strstr(topic, ".heartbeat"))
            continue;
        static proto_alert_t a;
        char err[PROTO_ERRLEN];
        if (proto_alert_decode(body, (size_t)bn < sizeof body ? (size_t)bn : sizeof body, &a, err,
                               sizeof err) != PROTO_OK)
            continue;
        if (firm && (!proto_str_eq(a.firm, firm) || a.state != state))
            continue;
        *ret_seq = a.seq;
        snprintf(cluster, csize, "%.*s", PROTO_STR_ARG(a.cluster));
        return 1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: alertprobe lat|rtt|fanout [-n N] [-s SUBS] [-w WINDOW] [-m METRIC] "
                    "[-C CHAIN] [-H HIGH] [-L LOW] [-t MS] CONFIG ENDPOINT [ALERTS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    long n = 500, subs = 100, window = 8, timeout_ms = 5000;
    double high = 60, low = 30;
    const char *metric = "cod", *chain = "water-pollution-control";
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "n:s:w:m:C:H:L:t:")) != -1) {
        switch (c) {
        case 'n': n = atol(optarg); break;
        case 's': subs = atol(optarg); break;
        case 'w': window = atol(optarg); break;
        case 'm': metric = optarg; break;
        case 'C': chain = optarg; break;
        case 'H': high = atof(optarg); break;
        case 'L': low = atof(optarg); break;
        case 't': timeout_ms = atol(optarg); break;
        default: usage();
        }
    }
    bool rtt = strcmp(mode, "rtt") == 0, fan = strcmp(mode, "fanout") == 0;
    if ((!rtt && !fan && strcmp(mode, "lat") != 0) || argc - optind != (rtt ? 2 : 3) || n < 1 ||
        subs < 1 || subs > MAX_SUBS || window < 1 || window > PROTO_MAX_WINDOW)
        usage();

    char err[1024];
    toolcfg_t cfg;
    if (toolcfg_load(argv[optind], &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "alertprobe: %s\n", err);
        return 2;
    }
    int nf = 0;
    const char **firms = malloc((size_t)cfg.nfirms * sizeof *firms);
    for (int i = 0; i < cfg.nfirms; i++)
        if (strcmp(cfg.firms[i].chain, chain) == 0)
            firms[nf++] = cfg.firms[i].id;
    if (nf == 0) {
        fprintf(stderr, "alertprobe: no firm on chain %s\n", chain);
        return 2;
    }

    void *ctx = zmq_ctx_new();
    int linger = 0, zero = 0;
    stream_t st = {.metric = metric};
    snprintf(st.agent, sizeof st.agent, "alertprobe-%d", (int)getpid());
    st.epoch = ((clock_wall_ns() ^ ((uint64_t)getpid() << 20)) & ((1ULL << 53) - 1)) | 1;
    msgpack_sbuffer_init(&st.buf);
    st.ing = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(st.ing, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(st.ing, argv[optind + 1]);

    long nsub = fan ? subs : (rtt ? 0 : 1);
    void **sub = calloc((size_t)(nsub ? nsub : 1), sizeof *sub);
    for (long i = 0; i < nsub; i++) {
        sub[i] = zmq_socket(ctx, ZMQ_SUB);
        zmq_setsockopt(sub[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sub[i], ZMQ_RCVHWM, &zero, sizeof zero); /* this side keeps up */
        zmq_setsockopt(sub[i], ZMQ_SUBSCRIBE, "alert.", 6);
        zmq_connect(sub[i], argv[optind + 2]);
    }
    /* until every subscription is in place: each SUB hears a heartbeat */
    for (long i = 0; i < nsub; i++) {
        zmq_pollitem_t it = {.socket = sub[i], .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 5000) <= 0) {
            fprintf(stderr, "alertprobe: subscriber %ld heard no heartbeat in 5 s\n", i);
            return 3;
        }
        char drain[65536];
        while (zmq_recv(sub[i], drain, sizeof drain, ZMQ_DONTWAIT) >= 0)
            ;
    }

    int rc = 0;
    if (!fan) {
        long cap = rtt ? n : 2 * n, got = 0, lost = 0;
        uint64_t *lat = malloc((size_t)cap * sizeof *lat);
        for (long i = 0; i < n; i++) {
            const char *firm = firms[i % nf];
            if (rtt) {
                uint64_t t0 = clock_monotonic_ns();
                send_reading(&st, firm, high);
                if (read_ack(st.ing, timeout_ms) != 1) {
                    lost++;
                    continue;
                }
                lat[got++] = clock_monotonic_ns() - t0;
                continue;
            }
            /* first high reading: no alert yet (for_samples = 2) */
            send_reading(&st, firm, high);
            if (read_ack(st.ing, timeout_ms) != 1) {
                lost++;
                continue;
            }
            double values[2] = {high, low};
            for (int k = 0; k < 2; k++) {
                uint64_t seq, t0 = clock_monotonic_ns();
                char cl[80];
                send_reading(&st, firm, values[k]);
                if (read_alert(sub[0], timeout_ms, firm,
                               k == 0 ? PROTO_ALERT_FIRING : PROTO_ALERT_RESOLVED, &seq, cl,
                               sizeof cl) == 1)
                    lat[got++] = clock_monotonic_ns() - t0;
                else
                    lost++;
                if (read_ack(st.ing, timeout_ms) != 1)
                    lost++;
            }
        }
        qsort(lat, (size_t)got, sizeof *lat, cmp_u64);
        printf("alertprobe: %s n=%ld p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f lost=%ld\n",
               mode, got, pct(lat, got, 0.50), pct(lat, got, 0.99), pct(lat, got, 0.999),
               got ? (double)lat[got - 1] / 1000.0 : 0.0, lost);
        rc = lost == 0 && got > 0 ? 0 : 3;
        free(lat);
    } else {
        /* fire/resolve cycles: 3 batches, 2 alerts each, firm by firm */
        long batches = 3 * n, sent = 0, acked = 0, nacked = 0;
        long *count = calloc((size_t)nsub, sizeof *count), gaps = 0;
        uint64_t *last = calloc((size_t)nsub, sizeof *last);
        uint64_t t0 = clock_monotonic_ns(), t_last = t0;
        int64_t idle_since = clock_monotonic_ms();
        zmq_pollitem_t *items = calloc((size_t)nsub + 1, sizeof *items);
        for (;;) {
            while (sent < batches && sent - acked < window) {
                long cyc = sent / 3, k = sent % 3;
                send_reading(&st, firms[cyc % nf], k < 2 ? high : low);
                sent++;
            }
            items[0] = (zmq_pollitem_t){.socket = st.ing, .events = ZMQ_POLLIN};
            for (long i = 0; i < nsub; i++)
                items[i + 1] = (zmq_pollitem_t){.socket = sub[i], .events = ZMQ_POLLIN};
            /* heartbeats keep coming: "idle" is no ack and no alert */
            zmq_poll(items, (int)nsub + 1, 100);
            if (acked == batches && clock_monotonic_ms() - idle_since > 1000)
                break; /* every batch answered, no alert for 1 s */
            if (clock_monotonic_ms() - idle_since > timeout_ms)
                break;
            if (items[0].revents & ZMQ_POLLIN)
                while (acked < sent) {
                    zmq_pollitem_t it = {.socket = st.ing, .events = ZMQ_POLLIN};
                    if (zmq_poll(&it, 1, 0) <= 0)
                        break;
                    int r = read_ack(st.ing, 0);
                    acked++;
                    idle_since = clock_monotonic_ms();
                    if (r != 1)
                        nacked++;
                }
            for (long i = 0; i < nsub; i++) {
                if (!(items[i + 1].revents & ZMQ_POLLIN))
                    continue;
                uint64_t seq;
                char cl[80];
                while (read_alert(sub[i], 0, NULL, 0, &seq, cl, sizeof cl) == 1) {
                    /* one cluster (the rule's): its seq must step by 1 */
                    if (last[i] && seq != last[i] + 1)
                        gaps++;
                    last[i] = seq;
                    count[i]++;
                    t_last = clock_monotonic_ns();
                    idle_since = clock_monotonic_ms();
                }
            }
        }
        long mn = count[0], mx = count[0];
        for (long i = 1; i < nsub; i++) {
            mn = count[i] < mn ? count[i] : mn;
            mx = count[i] > mx ? count[i] : mx;
        }
        double el = (double)(t_last - t0) / 1e9;
        printf("alertprobe: fanout subs=%ld alerts=%ld min=%ld max=%ld gaps=%ld nacks=%ld "
               "unanswered=%ld elapsed_s=%.3f alerts_per_s=%.0f deliveries_per_s=%.0f\n",
               nsub, mx, mn, mx, gaps, nacked, batches - acked, el, el > 0 ? (double)mx / el : 0,
               el > 0 ? (double)mx * (double)nsub / el : 0);
        rc = mn == mx && mx > 0 && gaps == 0 && nacked == 0 && acked == batches ? 0 : 3;
        free(count);
        free(last);
        free(items);
    }
    for (long i = 0; i < nsub; i++)
        zmq_close(sub[i]);
    free(sub);
    zmq_close(st.ing);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&st.buf);
    free(firms);
    free(cfg.firms);
    return rc;
}
