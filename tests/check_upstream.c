/*
 * check_upstream.c -- what the province forwarder (daemon/upstream.c) makes
 * of each kind of WAL record: an applied batch becomes one batch of the
 * forwarder's own stream with the same samples (a restatement stays the
 * same sample); a partially applied batch loses exactly the samples the city
 * refused; the metrics filter drops the others; records that apply nothing
 * (a settled refusal, an alert) forward nothing and take no seq.
 */
#include <check.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/record.h"
#include "daemon/upstream.h"
#include "proto/bytes.h"
#include "tests/testlib.h"

static upstream_t up;
static proto_sample_t dec[PROTO_MAX_SAMPLES];

static void setup(void)
{
    log_init(LOG_LVL_ERROR, "check_upstream");
    memset(&up, 0, sizeof up);
    up.agent_id = (char *)"jining";
    up.epoch = 77;
    up.next_seq = 5;
    up.in = calloc(PROTO_MAX_SAMPLES, sizeof *up.in);
    up.out = calloc(PROTO_MAX_SAMPLES, sizeof *up.out);
}

static void teardown(void)
{
    free(up.in);
    free(up.out);
}

static const proto_sample_t samples[] = {
    {.firm = {"ee-001", 6},
     .metric = {"revenue", 7},
     .value = 100,
     .ts_ms = 1000,
     .period = {2021, PROTO_PERIOD_MONTH, 3}},
    {.firm = {"ee-002", 6},
     .metric = {"profit", 6},
     .value = 7.5,
     .ts_ms = 1000,
     .period = {2021, PROTO_PERIOD_MONTH, 3}},
    {.firm = {"ee-003", 6},
     .metric = {"revenue", 7},
     .value = -3,
     .ts_ms = 2000,
     .period = {2021, PROTO_PERIOD_MONTH, 4}},
};

/* A WAL record as ingest journals it: [tag][keylen][key]([u32 n][n codes])[batch]. */
static void record(msgpack_sbuffer *out, int tag, const uint32_t *codes, uint32_t ncodes)
{
    msgpack_sbuffer batch;
    msgpack_sbuffer_init(&batch);
    proto_batch_t b = {.agent = {"feed", 4},
                       .epoch = 9,
                       .seq = 3,
                       .nsamples = 3,
                       .samples = (proto_sample_t *)(uintptr_t)samples,
                       .cap = 3};
    char err[PROTO_ERRLEN];
    ck_assert_msg(proto_batch_encode(&b, &batch, err, sizeof err) == PROTO_OK, "%s", err);
    unsigned char head[2 + 3 + 4];
    head[0] = (unsigned char)tag;
    head[1] = 3;
    memcpy(head + 2, "key", 3);
    msgpack_sbuffer_write(out, (const char *)head, 5);
    if (tag == RECORD_PARTIAL) {
        unsigned char n[4];
        bytes_put_le32(n, ncodes);
        msgpack_sbuffer_write(out, (const char *)n, 4);
        for (uint32_t i = 0; i < ncodes; i++) {
            bytes_put_le32(n, codes[i]);
            msgpack_sbuffer_write(out, (const char *)n, 4);
        }
    }
    msgpack_sbuffer_write(out, batch.data, batch.size);
    msgpack_sbuffer_destroy(&batch);
}

/* Converts rec and decodes what came out into b (samples in dec). */
static int convert(const msgpack_sbuffer *rec, proto_batch_t *b, msgpack_sbuffer *out)
{
    uint32_t n = 0;
    int rc = upstream_convert(&up, rec->data, rec->size, out, &n);
    if (rc == 1) {
        char err[PROTO_ERRLEN];
        *b = (proto_batch_t){.samples = dec, .cap = PROTO_MAX_SAMPLES};
        ck_assert_msg(proto_batch_decode(out->data, out->size, b, err, sizeof err) == PROTO_OK,
                      "%s", err);
        ck_assert_uint_eq(b->nsamples, n);
    }
    return rc;
}

static void same_sample(const proto_sample_t *a, const proto_sample_t *b)
{
    ck_assert(a->firm.len == b->firm.len && memcmp(a->firm.ptr, b->firm.ptr, a->firm.len) == 0);
    ck_assert(a->metric.len == b->metric.len &&
              memcmp(a->metric.ptr, b->metric.ptr, a->metric.len) == 0);
    ck_assert(a->value == b->value);
    ck_assert_int_eq(a->ts_ms, b->ts_ms);
    ck_assert(memcmp(&a->period, &b->period, sizeof a->period) == 0);
}

START_TEST(applied_batch_forwarded_whole)
{
    msgpack_sbuffer rec, out;
    msgpack_sbuffer_init(&rec);
    msgpack_sbuffer_init(&out);
    record(&rec, RECORD_BATCH, NULL, 0);
    proto_batch_t b;
    ck_assert_int_eq(convert(&rec, &b, &out), 1);
    ck_assert(proto_str_eq(b.agent, "jining"));
    ck_assert_uint_eq(b.epoch, 77);
    ck_assert_uint_eq(b.seq, 5);
    ck_assert(b.partial); /* per-sample answers: a refusal never stalls the stream */
    ck_assert_uint_eq(b.nsamples, 3);
    for (int i = 0; i < 3; i++)
        same_sample(&dec[i], &samples[i]);
    msgpack_sbuffer_destroy(&rec);
    msgpack_sbuffer_destroy(&out);
}
END_TEST

START_TEST(partial_batch_loses_the_refused)
{
    msgpack_sbuffer rec, out;
    msgpack_sbuffer_init(&rec);
    msgpack_sbuffer_init(&out);
    const uint32_t codes[] = {1u << 8 | PROTO_STATUS_UNKNOWN_FIRM};
    record(&rec, RECORD_PARTIAL, codes, 1);
    proto_batch_t b;
    ck_assert_int_eq(convert(&rec, &b, &out), 1);
    ck_assert_uint_eq(b.nsamples, 2);
    same_sample(&dec[0], &samples[0]);
    same_sample(&dec[1], &samples[2]);
    msgpack_sbuffer_destroy(&rec);
    msgpack_sbuffer_destroy(&out);
}
END_TEST

START_TEST(metrics_filter)
{
    char *only[] = {(char *)"profit"};
    up.metrics = only;
    up.nmetrics = 1;
    msgpack_sbuffer rec, out;
    msgpack_sbuffer_init(&rec);
    msgpack_sbuffer_init(&out);
    record(&rec, RECORD_BATCH, NULL, 0);
    proto_batch_t b;
    ck_assert_int_eq(convert(&rec, &b, &out), 1);
    ck_assert_uint_eq(b.nsamples, 1);
    same_sample(&dec[0], &samples[1]);
    /* the only profit sample refused by the city: nothing is left to send */
    msgpack_sbuffer_clear(&rec);
    msgpack_sbuffer_clear(&out);
    const uint32_t codes[] = {1u << 8 | PROTO_STATUS_INVALID};
    record(&rec, RECORD_PARTIAL, codes, 1);
    ck_assert_int_eq(convert(&rec, &b, &out), 0);
    up.metrics = NULL;
    up.nmetrics = 0;
    msgpack_sbuffer_destroy(&rec);
    msgpack_sbuffer_destroy(&out);
}
END_TEST

START_TEST(other_records_forward_nothing)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    const unsigned char settle[] = {RECORD_SETTLE, 0, 1, 4, 'f', 'e', 'e', 'd'};
    const unsigned char alert[] = {RECORD_ALERT, 1, 2, 3};
    const unsigned char torn[] = {RECORD_PARTIAL, 0, 9};
    uint32_t n = 0;
    ck_assert_int_eq(upstream_convert(&up, settle, sizeof settle, &out, &n), 0);
    ck_assert_int_eq(upstream_convert(&up, alert, sizeof alert, &out, &n), 0);
    ck_assert_int_eq(upstream_convert(&up, torn, sizeof torn, &out, &n), -1);
    ck_assert_uint_eq(out.size, 0);
    ck_assert_uint_eq(up.next_seq, 5); /* seqs are read_one's to hand out */
    msgpack_sbuffer_destroy(&out);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {applied_batch_forwarded_whole, partial_batch_loses_the_refused,
                                  metrics_filter, other_records_forward_nothing};
    return testlib_run(
        testlib_suite("upstream", setup, teardown, tests, sizeof tests / sizeof tests[0]));
}
