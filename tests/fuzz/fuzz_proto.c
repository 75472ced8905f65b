/*
 * fuzz_proto.c -- every wire decoder of proto/ on the same hostile bytes.
 *
 * The input goes through proto_batch_decode, proto_ack_decode,
 * proto_alert_decode, proto_heartbeat_decode, proto_ctl_request_decode and
 * proto_period_parse. Besides the sanitizers' own checks, it asserts what
 * PROTOCOL.md promises of a decoder:
 *   - a failure returns a known proto_err_t with a reason that is non-empty
 *     printable ASCII (section 5: "Decoder reasons are ASCII, at most 255
 *     bytes");
 *   - whatever decodes, the encoder accepts (the encoder runs the decoder's
 *     checks, so a disagreement means one of them is wrong), the encoding
 *     decodes again, and encoding that gives the same bytes (one canonical
 *     form: unknown keys, key order and integer widths are normalised once);
 *   - a batch decoded into a smaller sample array either fits it with the
 *     same result or is refused as PROTO_ELIMIT;
 *   - a period parses only from its one spelling: format(parse(s)) == s.
 *
 * proto_ctl_reply_decode is left out on purpose: it uses msgpack_unpack, which
 * sizes its allocations from array headers, because a client trusts its own
 * daemon (proto.h); it never sees bytes from an agent.
 */
#include <stdbool.h>
#include <string.h>

#include "proto/proto.h"
#include "tests/fuzz/fuzz.h"

static proto_sample_t samples_a[PROTO_MAX_SAMPLES];
static proto_sample_t samples_b[PROTO_MAX_SAMPLES];

/* Checks a decoder's failure: a known code and a printable ASCII reason. */
static void check_failure(const char *what, int rc, const char *err)
{
    FUZZ_ASSERT(rc == PROTO_EMALFORMED || rc == PROTO_EVERSION || rc == PROTO_ETYPE ||
                    rc == PROTO_ELIMIT || rc == PROTO_EVALUE,
                "%s: unexpected return %d", what, rc);
    FUZZ_ASSERT(err[0] != '\0', "%s: failed (%s) without a reason", what, proto_strerror(rc));
    for (const char *p = err; *p; p++)
        FUZZ_ASSERT(*p >= 0x20 && *p <= 0x7e, "%s: reason has byte 0x%02x at %zu: %s", what,
                    (unsigned)(unsigned char)*p, (size_t)(p - err), err);
}

/* Asserts that two encodings are the same bytes. */
static void check_same(const char *what, const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
    FUZZ_ASSERT(a->size == b->size && memcmp(a->data, b->data, a->size) == 0,
                "%s: re-encoding is not canonical (%zu vs %zu bytes)", what, a->size, b->size);
}

static bool str_eq(proto_str_t a, proto_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool sample_eq(const proto_sample_t *a, const proto_sample_t *b)
{
    return str_eq(a->firm, b->firm) && str_eq(a->metric, b->metric) &&
           memcmp(&a->value, &b->value, sizeof a->value) == 0 && a->ts_ms == b->ts_ms &&
           a->period.kind == b->period.kind && a->period.year == b->period.year &&
           a->period.index == b->period.index;
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
    char err[PROTO_ERRLEN], err2[PROTO_ERRLEN];
    proto_batch_t b = {.samples = samples_a, .cap = PROTO_MAX_SAMPLES};
    int rc = proto_batch_decode(data, size, &b, err, sizeof err);

    /* the same bytes into an array of 3: fits, or is refused as too large */
    proto_batch_t small = {.samples = samples_b, .cap = 3};
    int rc_small = proto_batch_decode(data, size, &small, err2, sizeof err2);
    if (rc != PROTO_OK) {
        check_failure("batch", rc, err);
        FUZZ_ASSERT(b.nsamples == 0, "batch: failed with nsamples %u", b.nsamples);
        FUZZ_ASSERT(rc_small != PROTO_OK, "batch: refused with cap %d, accepted with cap 3",
                    PROTO_MAX_SAMPLES);
        return;
    }
    /* 0 samples is a valid batch (it settles its seq with nothing) */
    FUZZ_ASSERT(b.nsamples <= PROTO_MAX_SAMPLES && b.seq >= 1 && b.epoch >= 1 && b.agent.len >= 1,
                "batch: n %u seq %llu epoch %llu agent len %u", b.nsamples,
                (unsigned long long)b.seq, (unsigned long long)b.epoch, b.agent.len);
    if (b.nsamples <= 3) {
        FUZZ_ASSERT(rc_small == PROTO_OK && small.nsamples == b.nsamples,
                    "batch: cap 3 gave %d: %s", rc_small, err2);
        for (uint32_t i = 0; i < b.nsamples; i++)
            FUZZ_ASSERT(sample_eq(&samples_a[i], &samples_b[i]),
                        "batch: sample %u differs with cap 3", i);
    } else {
        FUZZ_ASSERT(rc_small == PROTO_ELIMIT, "batch: %u samples into cap 3 gave %d", b.nsamples,
                    rc_small);
    }

    msgpack_sbuffer e1, e2;
    msgpack_sbuffer_init(&e1);
    msgpack_sbuffer_init(&e2);
    rc = proto_batch_encode(&b, &e1, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "batch: decoded, but the encoder refuses it: %s", err);
    proto_batch_t b2 = {.samples = samples_b, .cap = PROTO_MAX_SAMPLES};
    rc = proto_batch_decode(e1.data, e1.size, &b2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "batch: own encoding does not decode: %s", err);
    FUZZ_ASSERT(str_eq(b.agent, b2.agent) && b.seq == b2.seq && b.epoch == b2.epoch &&
                    b.nsamples == b2.nsamples,
                "batch: header changed in a round trip");
    for (uint32_t i = 0; i < b.nsamples; i++)
        FUZZ_ASSERT(sample_eq(&samples_a[i], &samples_b[i]),
                    "batch: sample %u changed in a round trip", i);
    rc = proto_batch_encode(&b2, &e2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "batch: second encode: %s", err);
    check_same("batch", &e1, &e2);
    msgpack_sbuffer_destroy(&e1);
    msgpack_sbuffer_destroy(&e2);
}

static void fuzz_ack(const uint8_t *data, size_t size)
{
    char err[PROTO_ERRLEN];
    proto_ack_t a, a2;
    int rc = proto_ack_decode(data, size, &a, err, sizeof err);

    if (rc != PROTO_OK) {
        check_failure("ack", rc, err);
        return;
    }
    msgpack_sbuffer e1, e2;
    msgpack_sbuffer_init(&e1);
    msgpack_sbuffer_init(&e2);
    FUZZ_ASSERT(proto_ack_encode(&a, &e1) == PROTO_OK, "ack: decoded, but the encoder refuses it");
    rc = proto_ack_decode(e1.data, e1.size, &a2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "ack: own encoding does not decode: %s", err);
    FUZZ_ASSERT(a.seq == a2.seq && a.expected == a2.expected && a.status == a2.status &&
                    a.accepted == a2.accepted && a.max_version == a2.max_version &&
                    str_eq(a.reason, a2.reason),
                "ack: changed in a round trip");
    FUZZ_ASSERT(proto_ack_encode(&a2, &e2) == PROTO_OK, "ack: second encode");
    check_same("ack", &e1, &e2);
    msgpack_sbuffer_destroy(&e1);
    msgpack_sbuffer_destroy(&e2);
}

static void fuzz_alert(const uint8_t *data, size_t size)
{
    static proto_alert_t a, a2; /* 24 details each: off the stack */
    char err[PROTO_ERRLEN];
    int rc = proto_alert_decode(data, size, &a, err, sizeof err);

    if (rc != PROTO_OK) {
        check_failure("alert", rc, err);
        return;
    }
    msgpack_sbuffer e1, e2;
    msgpack_sbuffer_init(&e1);
    msgpack_sbuffer_init(&e2);
    rc = proto_alert_encode(&a, &e1, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "alert: decoded, but the encoder refuses it: %s", err);
    rc = proto_alert_decode(e1.data, e1.size, &a2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "alert: own encoding does not decode: %s", err);
    FUZZ_ASSERT(str_eq(a.id, a2.id) && str_eq(a.rule, a2.rule) && str_eq(a.cluster, a2.cluster) &&
                    str_eq(a.chain, a2.chain) && str_eq(a.firm, a2.firm) &&
                    str_eq(a.metric, a2.metric) && str_eq(a.summary, a2.summary) &&
                    a.severity == a2.severity && a.state == a2.state && a.since_ms == a2.since_ms &&
                    a.ts_ms == a2.ts_ms && a.seq == a2.seq && a.reminder == a2.reminder &&
                    a.count == a2.count && a.ndetails == a2.ndetails,
                "alert: changed in a round trip");
    rc = proto_alert_encode(&a2, &e2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "alert: second encode: %s", err);
    check_same("alert", &e1, &e2);

    char topic[256];
    FUZZ_ASSERT(proto_alert_topic(a.cluster, (proto_severity_t)a.severity, topic, sizeof topic) > 0,
                "alert: no topic for a decoded alert");
    msgpack_sbuffer_destroy(&e1);
    msgpack_sbuffer_destroy(&e2);
}

static void fuzz_heartbeat(const uint8_t *data, size_t size)
{
    char err[PROTO_ERRLEN], topic[256];
    proto_heartbeat_t hb, hb2;
    int rc = proto_heartbeat_decode(data, size, &hb, err, sizeof err);

    if (rc != PROTO_OK) {
        check_failure("heartbeat", rc, err);
        return;
    }
    msgpack_sbuffer e1;
    msgpack_sbuffer_init(&e1);
    FUZZ_ASSERT(proto_heartbeat_encode(&hb, &e1, err, sizeof err) == PROTO_OK,
                "heartbeat: decoded, but the encoder refuses it: %s", err);
    rc = proto_heartbeat_decode(e1.data, e1.size, &hb2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK && hb.seq == hb2.seq && hb.ts_ms == hb2.ts_ms &&
                    hb.cluster.len == hb2.cluster.len &&
                    memcmp(hb.cluster.ptr, hb2.cluster.ptr, hb.cluster.len) == 0,
                "heartbeat: round trip: %s", err);
    FUZZ_ASSERT(proto_heartbeat_topic(hb.cluster, topic, sizeof topic) > 0,
                "heartbeat: no topic for a decoded heartbeat");
    msgpack_sbuffer_destroy(&e1);
}

static void fuzz_ctl(const uint8_t *data, size_t size)
{
    static proto_ctl_request_t r, r2;
    char err[PROTO_ERRLEN];
    int rc = proto_ctl_request_decode(data, size, &r, err, sizeof err);

    if (rc != PROTO_OK) {
        check_failure("ctl", rc, err);
        return;
    }
    FUZZ_ASSERT(r.nargs <= PROTO_MAX_CTL_ARGS, "ctl: %u args", r.nargs);
    for (uint32_t i = 0; i < r.nargs; i++) {
        char key[PROTO_MAX_ID_LEN + 1];
        memcpy(key, r.args[i].key.ptr, r.args[i].key.len);
        key[r.args[i].key.len] = '\0';
        FUZZ_ASSERT(proto_ctl_arg(&r, key) == &r.args[i], "ctl: argument %u not found by its key",
                    i);
    }
    msgpack_sbuffer e1, e2;
    msgpack_sbuffer_init(&e1);
    msgpack_sbuffer_init(&e2);
    FUZZ_ASSERT(proto_ctl_request_encode(&r, &e1) == PROTO_OK,
                "ctl: decoded, but the encoder refuses it");
    rc = proto_ctl_request_decode(e1.data, e1.size, &r2, err, sizeof err);
    FUZZ_ASSERT(rc == PROTO_OK, "ctl: own encoding does not decode: %s", err);
    FUZZ_ASSERT(str_eq(r.cmd, r2.cmd) && r.nargs == r2.nargs, "ctl: changed in a round trip");
    FUZZ_ASSERT(proto_ctl_request_encode(&r2, &e2) == PROTO_OK, "ctl: second encode");
    check_same("ctl", &e1, &e2);
    msgpack_sbuffer_destroy(&e1);
    msgpack_sbuffer_destroy(&e2);
}

static void fuzz_period(const uint8_t *data, size_t size)
{
    proto_period_t p;
    char buf[PROTO_PERIOD_STRLEN];

    if (proto_period_parse((const char *)data, size, &p) != PROTO_OK)
        return;
    size_t n = proto_period_format(p, buf, sizeof buf);
    FUZZ_ASSERT(n == size && memcmp(buf, data, size) == 0, "period: parsed '%.*s' formats as '%s'",
                (int)size, (const char *)data, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_batch(data, size);
    fuzz_ack(data, size);
    fuzz_alert(data, size);
    fuzz_heartbeat(data, size);
    fuzz_ctl(data, size);
    fuzz_period(data, size);
    return 0;
}
