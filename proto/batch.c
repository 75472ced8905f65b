/*
 * batch.c -- the metric batch an agent sends to the daemon.
 *
 * {"v":2,"type":"batch","seq":uint,"epoch":uint,"agent":str[,"partial":true],"samples":[...]}
 * (or "type":"check": the same batch, to be judged and not applied) where a
 * sample is the array [firm, metric, value, ts_ms] or [firm, metric, value,
 * ts_ms, period|nil]. Samples are arrays rather than maps because a batch
 * carries up to PROTO_MAX_SAMPLES of them and key names would triple its size.
 *
 * The decoder is the daemon's first line of defence: it validates every field
 * of every sample, so that the daemon applies a batch all or nothing without
 * ever meeting a malformed sample halfway through. It never allocates; the
 * sample array is the caller's, and a header claiming more samples than fit is
 * refused before a single sample is read.
 */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

enum { K_V, K_TYPE, K_AGENT, K_SEQ, K_EPOCH, K_SAMPLES, K_PARTIAL, K_COUNT };
static const char *const batch_keys[K_COUNT] = {"v",     "type",    "agent",  "seq",
                                                "epoch", "samples", "partial"};
#define BATCH_REQUIRED ((1u << K_PARTIAL) - 1) /* "partial" is optional */

/* The fields of a sample array, in order, for reasons. */
static const char *const sample_fields[] = {"firm", "metric", "value", "ts_ms", "period"};

static int check_period_str(proto_str_t s, proto_period_t *ret, char *why, size_t whylen)
{
    char q[48];

    if (proto_period_parse(s.ptr, s.len, ret) == PROTO_OK)
        return PROTO_OK;
    snprintf(why, whylen, "%s is not YYYY, YYYY-Qn or YYYY-MM with year %d..%d",
             wire_quote(s, q, sizeof q), PROTO_MIN_YEAR, PROTO_MAX_YEAR);
    return PROTO_EVALUE;
}

/* Reads one sample array into *s; *ret_field names the field that failed. */
static int read_sample(cursor_t *c, proto_sample_t *s, const char **ret_field)
{
    uint32_t n;
    int rc;

    *ret_field = NULL;
    if ((rc = cursor_read_array(c, &n)) < 0)
        return rc;
    if (n != 4 && n != 5) {
        snprintf(c->why, sizeof c->why, "array of %" PRIu32 " elements (want 4 or 5)", n);
        return PROTO_EMALFORMED;
    }
    *ret_field = sample_fields[0];
    if ((rc = wire_read_id(c, &s->firm)) < 0)
        return rc;
    *ret_field = sample_fields[1];
    if ((rc = wire_read_id(c, &s->metric)) < 0)
        return rc;
    *ret_field = sample_fields[2];
    if ((rc = cursor_read_double(c, &s->value)) < 0)
        return rc;
    if ((rc = wire_check_value(s->value, c->why, sizeof c->why)) < 0) {
        /* "value is NaN" reads better than "value: is NaN" */
        cursor_why_prefix(c, "value ");
        *ret_field = NULL;
        return rc;
    }
    *ret_field = sample_fields[3];
    if ((rc = wire_read_ts(c, &s->ts_ms)) < 0)
        return rc;
    *ret_field = sample_fields[4];
    memset(&s->period, 0, sizeof s->period);
    if (n == 5) {
        proto_str_t ps;

        if (cursor_peek_nil(c))
            return cursor_read_nil(c);
        if ((rc = cursor_read_str(c, &ps)) < 0)
            return rc;
        if ((rc = check_period_str(ps, &s->period, c->why, sizeof c->why)) < 0)
            return rc;
    }
    *ret_field = NULL;
    return PROTO_OK;
}

int proto_batch_decode(const void *buf, size_t len, proto_batch_t *b, char *err, size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i, n = 0;
    const char *field = NULL;
    int64_t sample = -1; /* index of the sample being read, for the reason */
    char ctx[32];
    int rc, key;

    b->agent = wire_empty;
    b->seq = 0;
    b->epoch = 0;
    b->nsamples = 0;
    b->partial = false;
    b->dry_run = false;
    cursor_init(&c, buf, len);
    /* a "check" is a batch to judge, not to apply (PROTOCOL.md 4.1) */
    if ((rc = wire_open2(&c, "batch", "check", &npairs, &b->dry_run)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, batch_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = batch_keys[key];
        switch (key) {
        case K_AGENT:
            rc = wire_read_id(&c, &b->agent);
            if (rc < 0)
                b->agent = wire_empty;
            break;
        case K_SEQ:
            rc = wire_read_seq(&c, &b->seq);
            if (rc < 0)
                b->seq = 0;
            break;
        case K_EPOCH:
            rc = wire_read_seq(&c, &b->epoch);
            if (rc < 0)
                b->epoch = 0;
            break;
        case K_PARTIAL: rc = cursor_read_bool(&c, &b->partial); break;
        case K_SAMPLES:
            if ((rc = cursor_read_array(&c, &n)) < 0)
                break;
            /* bound the claimed count before reading any of it */
            if (n > PROTO_MAX_SAMPLES || n > b->cap || (n > 0 && !b->samples)) {
                snprintf(c.why, sizeof c.why, "%" PRIu32 " samples exceed %s %u", n,
                         n > PROTO_MAX_SAMPLES ? "the limit" : "the capacity",
                         n > PROTO_MAX_SAMPLES ? PROTO_MAX_SAMPLES
                                               : (unsigned)(b->samples ? b->cap : 0));
                rc = PROTO_ELIMIT;
                break;
            }
            /* n == 0 is a batch that settles its seq with nothing: a sender
             * that lost a batch it had numbered says so (PROTOCOL.md 4.1) */
            for (sample = 0; sample < n; sample++)
                if ((rc = read_sample(&c, &b->samples[sample], &field)) < 0)
                    break;
            if (rc == PROTO_OK)
                sample = -1;
            break;
        default: break;
        }
        if (rc < 0)
            goto fail;
        field = NULL;
    }
    if ((rc = wire_close(&c, batch_keys, K_COUNT, seen, BATCH_REQUIRED)) < 0)
        goto fail;
    b->nsamples = n;
    return PROTO_OK;

fail:
    if (sample >= 0)
        snprintf(ctx, sizeof ctx, "sample %" PRId64, sample);
    wire_reason(err, errlen, sample >= 0 ? ctx : NULL, field, c.why);
    b->nsamples = 0;
    return rc;
}

/* Runs the decoder's checks on one sample; reason into err. */
static int check_sample(const proto_sample_t *s, uint32_t i, char *err, size_t errlen)
{
    char why[CURSOR_WHYLEN], pbuf[PROTO_PERIOD_STRLEN];
    int rc;

    const char *field = sample_fields[0];
    if ((rc = wire_check_id(s->firm, why, sizeof why)) < 0)
        goto fail;
    field = sample_fields[1];
    if ((rc = wire_check_id(s->metric, why, sizeof why)) < 0)
        goto fail;
    field = sample_fields[2];
    if ((rc = wire_check_value(s->value, why, sizeof why)) < 0)
        goto fail;
    field = sample_fields[3];
    if ((rc = wire_check_ts(s->ts_ms, why, sizeof why)) < 0)
        goto fail;
    field = sample_fields[4];
    if (s->period.kind != PROTO_PERIOD_NONE &&
        proto_period_format(s->period, pbuf, sizeof pbuf) == 0) {
        snprintf(why, sizeof why, "invalid period (kind %u, year %u, index %u)",
                 (unsigned)s->period.kind, (unsigned)s->period.year, (unsigned)s->period.index);
        rc = PROTO_EVALUE;
        goto fail;
    }
    return PROTO_OK;
fail:
    /* the value's reasons read "value is NaN", like the decoder's */
    wire_reason_fmt(err, errlen, "sample %" PRIu32 ": %s%s%s", i, field,
                    field == sample_fields[2] ? " " : ": ", why);
    return rc;
}

int proto_batch_encode(const proto_batch_t *b, msgpack_sbuffer *out, char *err, size_t errlen)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN], pbuf[PROTO_PERIOD_STRLEN];
    uint32_t i;
    int rc;

    if ((rc = wire_check_id(b->agent, why, sizeof why)) < 0) {
        wire_reason_fmt(err, errlen, "agent: %s", why);
        return rc;
    }
    if (b->seq == 0) {
        wire_reason_fmt(err, errlen, "seq: 0 (must be >= 1)");
        return PROTO_EVALUE;
    }
    if (b->epoch == 0) {
        wire_reason_fmt(err, errlen, "epoch: 0 (must be >= 1)");
        return PROTO_EVALUE;
    }
    if (b->nsamples > 0 && !b->samples) {
        wire_reason_fmt(err, errlen, "samples: NULL with %" PRIu32 " samples", b->nsamples);
        return PROTO_EVALUE;
    }
    if (b->nsamples > PROTO_MAX_SAMPLES) {
        wire_reason_fmt(err, errlen, "samples: %" PRIu32 " samples exceed the limit %d",
                        b->nsamples, PROTO_MAX_SAMPLES);
        return PROTO_ELIMIT;
    }
    for (i = 0; i < b->nsamples; i++)
        if ((rc = check_sample(&b->samples[i], i, err, errlen)) < 0)
            return rc;

    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    /* seq, epoch and agent first: a decoder that fails on a sample has read
     * them, so the nack names the batch and the daemon can settle its seq */
    if (wire_pack_open(&pk, b->partial ? 7 : 6, b->dry_run ? "check" : "batch") < 0 ||
        wire_pack_cstr(&pk, "seq") < 0 || msgpack_pack_uint64(&pk, b->seq) != 0 ||
        wire_pack_cstr(&pk, "epoch") < 0 || msgpack_pack_uint64(&pk, b->epoch) != 0 ||
        wire_pack_cstr(&pk, "agent") < 0 || wire_pack_str(&pk, b->agent) < 0)
        goto nomem;
    if (b->partial && (wire_pack_cstr(&pk, "partial") < 0 || msgpack_pack_true(&pk) != 0))
        goto nomem;
    if (wire_pack_cstr(&pk, "samples") < 0 || msgpack_pack_array(&pk, b->nsamples) != 0)
        goto nomem;
    for (i = 0; i < b->nsamples; i++) {
        const proto_sample_t *s = &b->samples[i];
        bool has_period = s->period.kind != PROTO_PERIOD_NONE;

        if (msgpack_pack_array(&pk, has_period ? 5 : 4) != 0 || wire_pack_str(&pk, s->firm) < 0 ||
            wire_pack_str(&pk, s->metric) < 0 || msgpack_pack_double(&pk, s->value) != 0 ||
            msgpack_pack_int64(&pk, s->ts_ms) != 0)
            goto nomem;
        if (has_period) {
            proto_str_t ps = {pbuf, (uint32_t)proto_period_format(s->period, pbuf, sizeof pbuf)};

            if (wire_pack_str(&pk, ps) < 0)
                goto nomem;
        }
    }
    return PROTO_OK;

nomem:
    out->size = start;
    wire_reason_fmt(err, errlen, "out of memory");
    return PROTO_ENOMEM;
}
