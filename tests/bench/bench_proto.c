/*
 * bench_proto.c -- how fast proto_batch_decode() reads a batch, against a baseline.
 *
 * Encodes one 1000-sample batch, then decodes the same bytes N times with
 * proto_batch_decode() (full validation, no allocation) and N times with
 * msgpack-c's msgpack_unpack() into one reused zone (cleared between runs;
 * parsing only, no validation). Prints samples/s for each and the ratio
 * ours/baseline, so the figure means the same on any machine.
 *
 * Usage: bench_proto [iterations]   (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "proto/clock.h"
#include "proto/proto.h"

#define NSAMPLES 1000

static double now_s(void)
{
    return (double)clock_monotonic_ns() / 1e9;
}

int main(int argc, char **argv)
{
    static proto_sample_t samples[NSAMPLES], out[NSAMPLES];
    static const char *const firms[] = {"acme", "globex", "initech", "umbrella",
                                        "\xe5\x8c\x97\xe4\xba\xac-01"};
    static const char *const metrics[] = {"revenue", "orders", "cpu_load", "disk_free"};
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 2000, i;
    proto_batch_t b = {.agent = proto_str("bench-agent"),
                       .epoch = 1,
                       .seq = 1,
                       .nsamples = NSAMPLES,
                       .samples = samples,
                       .cap = NSAMPLES},
                  d;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    char err[PROTO_ERRLEN];
    double t0, ours, base;
    uint64_t checksum = 0;

    if (iters <= 0) {
        fprintf(stderr, "usage: %s [iterations]\n", argv[0]);
        return 2;
    }
    for (i = 0; i < NSAMPLES; i++) {
        proto_sample_t *s = &samples[i];

        s->firm = proto_str(firms[i % 5]);
        s->metric = proto_str(metrics[i % 4]);
        s->value = (double)i * 1234.567;
        s->ts_ms = 1700000000000LL + i * 1000;
        if (i % 2 == 0)
            s->period = (proto_period_t){2023, PROTO_PERIOD_MONTH, (uint8_t)(1 + i % 12)};
    }
    msgpack_sbuffer_init(&sb);
    if (proto_batch_encode(&b, &sb, err, sizeof(err)) != PROTO_OK) {
        fprintf(stderr, "encode: %s\n", err);
        return 1;
    }

    d.samples = out;
    d.cap = NSAMPLES;
    t0 = now_s();
    for (i = 0; i < iters; i++) {
        if (proto_batch_decode(sb.data, sb.size, &d, err, sizeof(err)) != PROTO_OK) {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }
        checksum += d.nsamples;
    }
    ours = now_s() - t0;

    if (!msgpack_zone_init(&zone, 64 * 1024)) {
        fprintf(stderr, "zone: out of memory\n");
        return 1;
    }
    t0 = now_s();
    for (i = 0; i < iters; i++) {
        msgpack_object obj;
        size_t off = 0;

        if (msgpack_unpack(sb.data, sb.size, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
            fprintf(stderr, "msgpack_unpack failed\n");
            return 1;
        }
        checksum += obj.via.map.size;
        msgpack_zone_clear(&zone);
    }
    base = now_s() - t0;
    msgpack_zone_destroy(&zone);

    printf("batch: %d samples, %zu bytes, %ld iterations (checksum %llu)\n", NSAMPLES, sb.size,
           iters, (unsigned long long)checksum);
    printf("proto_batch_decode: %12.0f samples/s  (%.2f us/batch)\n", NSAMPLES * iters / ours,
           ours * 1e6 / (double)iters);
    printf("msgpack_unpack:     %12.0f samples/s  (%.2f us/batch)\n", NSAMPLES * iters / base,
           base * 1e6 / (double)iters);
    printf("ratio ours/baseline (samples/s, >1 = faster): %.2f\n", base / ours);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
