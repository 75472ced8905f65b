/*
 * fuzz_input.c -- the agent's CSV sample reader (agents/input.c) on hostile
 * input, read as the agent reads it: batch by batch from a stdio stream (here
 * fmemopen over a copy of the input) until the end or an error.
 *
 * Asserted beyond the sanitizers:
 *   - every sample the reader yields is one the wire encoder accepts (the
 *     agent encodes exactly these; a disagreement would make it spool a batch
 *     no daemon can take);
 *   - an error names the input ("fuzz:LINE: ...");
 *   - resuming works as the agent's restart promises: a second reader that
 *     skips to the position recorded after the first batch reads exactly the
 *     samples that followed it, and ends with the same error, if any.
 * input_timestamp_parse() also gets the raw input, as a fourth column would.
 */
#include <string.h>
#include <time.h>

#include "agents/input.h"
#include "proto/clock.h"
#include "tests/fuzz/fuzz.h"

#define BATCH 3 /* small, so that most inputs take several batches */

typedef struct {
    char firm[PROTO_MAX_ID_LEN + 1];
    char metric[PROTO_MAX_ID_LEN + 1];
    double value;
    int64_t ts_ms;
    proto_period_t period;
} owned_sample_t;

typedef struct {
    owned_sample_t *v;
    size_t n, cap;
    int rc; /* INPUT_OK or the error the reading ended with */
    char err[INPUT_ERRLEN];
    input_pos_t after_first; /* the position after the first non-empty batch */
    size_t first_n;          /* samples in that batch */
} run_t;

static void keep(run_t *run, const proto_sample_t *s)
{
    if (run->n == run->cap) {
        run->cap = run->cap ? run->cap * 2 : 64;
        run->v = realloc(run->v, run->cap * sizeof *run->v);
        FUZZ_ASSERT(run->v != NULL, "out of memory");
    }
    owned_sample_t *o = &run->v[run->n++];
    FUZZ_ASSERT(s->firm.len <= PROTO_MAX_ID_LEN && s->metric.len <= PROTO_MAX_ID_LEN,
                "id over %d bytes", PROTO_MAX_ID_LEN);
    memcpy(o->firm, s->firm.ptr, s->firm.len);
    o->firm[s->firm.len] = '\0';
    memcpy(o->metric, s->metric.ptr, s->metric.len);
    o->metric[s->metric.len] = '\0';
    o->value = s->value;
    o->ts_ms = s->ts_ms;
    o->period = s->period;
}

/* Every batch the reader yields must encode: the agent sends exactly these. */
static void check_encodes(proto_sample_t *samples, size_t n)
{
    proto_batch_t b = {.agent = proto_str("fuzz"),
                       .epoch = 1,
                       .seq = 1,
                       .nsamples = (uint32_t)n,
                       .samples = samples,
                       .cap = (uint32_t)n};
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(&sb);
    FUZZ_ASSERT(proto_batch_encode(&b, &sb, err, sizeof err) == PROTO_OK,
                "the reader yielded a sample the encoder refuses: %s", err);
    msgpack_sbuffer_destroy(&sb);
}

/* Reads the whole input with a reader skipped to *skip_to (NULL: from the start). */
static void read_all(char *buf, size_t size, const input_pos_t *skip_to, run_t *run)
{
    FILE *fp = fmemopen(buf, size, "r");
    proto_sample_t samples[BATCH];
    size_t n;

    memset(run, 0, sizeof *run);
    FUZZ_ASSERT(fp != NULL, "fmemopen failed");
    input_reader_t *r = input_reader_new(fp, "fuzz");
    if (skip_to) {
        int rc = input_reader_skip(r, skip_to, run->err, sizeof run->err);
        FUZZ_ASSERT(rc == INPUT_OK, "cannot skip to offset %llu of the same input: %s",
                    (unsigned long long)skip_to->offset, run->err);
    }
    for (;;) {
        run->rc = input_read_batch(r, samples, BATCH, &n, NULL, run->err, sizeof run->err);
        FUZZ_ASSERT(n <= BATCH, "%zu samples in a batch of %d", n, BATCH);
        if (n > 0)
            check_encodes(samples, n);
        for (size_t i = 0; i < n; i++)
            keep(run, &samples[i]);
        if (n > 0 && run->first_n == 0) {
            run->first_n = n;
            input_reader_pos(r, &run->after_first);
            FUZZ_ASSERT(run->after_first.offset <= size, "position %llu past the input's %zu bytes",
                        (unsigned long long)run->after_first.offset, size);
        }
        if (run->rc != INPUT_OK) {
            FUZZ_ASSERT(run->rc == INPUT_ESYNTAX, "reading memory gave %d: %s", run->rc, run->err);
            FUZZ_ASSERT(strncmp(run->err, "fuzz:", 5) == 0, "error does not name the input: '%s'",
                        run->err);
            /* the error is sticky */
            FUZZ_ASSERT(input_read_batch(r, samples, BATCH, &n, NULL, run->err, sizeof run->err) ==
                                run->rc &&
                            n == 0,
                        "an error was not sticky");
            break;
        }
        if (n == 0)
            break;
    }
    input_reader_destroy(&r);
    FUZZ_ASSERT(r == NULL, "input_reader_destroy did not NULL the pointer");
    fclose(fp);
}

static bool same_sample(const owned_sample_t *a, const owned_sample_t *b, int64_t t0, int64_t t1)
{
    /* an empty column or a period is stamped with "now", which moved on */
    bool now_a = a->ts_ms >= t0 && a->ts_ms <= t1, now_b = b->ts_ms >= t0 && b->ts_ms <= t1;
    return strcmp(a->firm, b->firm) == 0 && strcmp(a->metric, b->metric) == 0 &&
           memcmp(&a->value, &b->value, sizeof a->value) == 0 && a->period.kind == b->period.kind &&
           a->period.year == b->period.year && a->period.index == b->period.index &&
           (a->ts_ms == b->ts_ms || (now_a && now_b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ts;
    char err[INPUT_ERRLEN];

    if (input_timestamp_parse((const char *)data, size, &ts, err, sizeof err) == INPUT_OK)
        FUZZ_ASSERT(ts >= 0 && ts < PROTO_MAX_TS_MS, "timestamp %lld out of range", (long long)ts);
    if (size == 0)
        return 0; /* fmemopen wants a non-empty buffer */

    char *buf = malloc(size);
    FUZZ_ASSERT(buf != NULL, "out of memory");
    memcpy(buf, data, size);

    int64_t t0 = clock_wall_ms() - 1000;
    run_t whole, rest;
    read_all(buf, size, NULL, &whole);
    if (whole.first_n > 0) {
        read_all(buf, size, &whole.after_first, &rest);
        int64_t t1 = clock_wall_ms() + 1000;
        FUZZ_ASSERT(rest.n == whole.n - whole.first_n,
                    "resumed after %zu samples: %zu more, not %zu", whole.first_n, rest.n,
                    whole.n - whole.first_n);
        for (size_t i = 0; i < rest.n; i++)
            FUZZ_ASSERT(same_sample(&rest.v[i], &whole.v[whole.first_n + i], t0, t1),
                        "resumed reading differs at sample %zu", whole.first_n + i);
        FUZZ_ASSERT(rest.rc == whole.rc && strcmp(rest.err, whole.err) == 0,
                    "resumed reading ends differently: '%s' vs '%s'", rest.err, whole.err);
        free(rest.v);
    }
    free(whole.v);
    free(buf);
    return 0;
}
