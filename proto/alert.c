/*
 * alert.c -- alerts the daemon publishes when a rule fires or resolves.
 *
 * Published on the PUB socket as two frames: the topic
 * "alert.<cluster>.<severity>" (so subscribers filter by prefix without
 * decoding) and the alert map. "chain" and "firm" are nil when the rule's
 * scope has none; every other field is always present.
 */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

enum {
    K_V,
    K_TYPE,
    K_ID,
    K_RULE,
    K_SEVERITY,
    K_STATE,
    K_CLUSTER,
    K_CHAIN,
    K_FIRM,
    K_METRIC,
    K_OBSERVED,
    K_EXPECTED,
    K_SUMMARY,
    K_SINCE,
    K_TS,
    K_SEQ,
    K_REMINDER,
    K_NGROUPED,
    K_N,
    K_RN,
    K_DETAILS,
    K_COUNT
};
static const char *const alert_keys[K_COUNT] = {
    "v",     "type", "id",       "rule",     "severity", "state",   "cluster",
    "chain", "firm", "metric",   "observed", "expected", "summary", "since",
    "ts",    "seq",  "reminder", "count",    "n",        "rn",      "details",
};
/* chain and firm may be absent as well as nil; the keys from reminder on are optional */
#define ALERT_REQUIRED (((1u << K_REMINDER) - 1) & ~(1u << K_CHAIN | 1u << K_FIRM))

/* The encoder's half of the decoder's checks; *ret_field names the failing field. */
static int check_alert(const proto_alert_t *a, const char **ret_field, char *why, size_t whylen)
{
    int rc;

#define CHECK(key, expr)                                                                           \
    do {                                                                                           \
        *ret_field = alert_keys[key];                                                              \
        if ((rc = (expr)) < 0)                                                                     \
            return rc;                                                                             \
    } while (0)
    CHECK(K_ID, wire_check_str(a->id, 1, PROTO_MAX_ALERT_ID_LEN, why, whylen));
    CHECK(K_RULE, wire_check_id(a->rule, why, whylen));
    *ret_field = alert_keys[K_SEVERITY];
    if (a->severity >= PROTO_SEV_COUNT) {
        snprintf(why, whylen, "unknown severity %u", (unsigned)a->severity);
        return PROTO_EVALUE;
    }
    *ret_field = alert_keys[K_STATE];
    if (a->state >= PROTO_ALERT_STATE_COUNT) {
        snprintf(why, whylen, "unknown state %u", (unsigned)a->state);
        return PROTO_EVALUE;
    }
    CHECK(K_CLUSTER, wire_check_id(a->cluster, why, whylen));
    if (a->chain.len > 0)
        CHECK(K_CHAIN, wire_check_id(a->chain, why, whylen));
    if (a->firm.len > 0)
        CHECK(K_FIRM, wire_check_id(a->firm, why, whylen));
    CHECK(K_METRIC, wire_check_id(a->metric, why, whylen));
    CHECK(K_OBSERVED, wire_check_finite(a->observed, why, whylen));
    CHECK(K_EXPECTED, wire_check_finite(a->expected, why, whylen));
    CHECK(K_SUMMARY, wire_check_text(a->summary, why, whylen));
    CHECK(K_SINCE, wire_check_ts(a->since_ms, why, whylen));
    CHECK(K_TS, wire_check_ts(a->ts_ms, why, whylen));
    *ret_field = alert_keys[K_SEQ];
    if (a->seq == 0) {
        snprintf(why, whylen, "0 (must be >= 1)");
        return PROTO_EVALUE;
    }
    *ret_field = alert_keys[K_DETAILS];
    if (a->ndetails > PROTO_MAX_DETAILS) {
        snprintf(why, whylen, "%u entries exceed %d", a->ndetails, PROTO_MAX_DETAILS);
        return PROTO_ELIMIT;
    }
    for (uint32_t i = 0; i < a->ndetails; i++) {
        const proto_detail_t *d = &a->details[i];
        CHECK(K_DETAILS, wire_check_id(d->key, why, whylen));
        if (d->is_str)
            CHECK(K_DETAILS, wire_check_text(d->str, why, whylen));
        else
            CHECK(K_DETAILS, wire_check_finite(d->num, why, whylen));
    }
#undef CHECK
    *ret_field = NULL;
    return PROTO_OK;
}

static int pack_opt_id(msgpack_packer *pk, proto_str_t s)
{
    if (s.len == 0)
        return msgpack_pack_nil(pk) != 0 ? PROTO_ENOMEM : PROTO_OK;
    return wire_pack_str(pk, s);
}

int proto_alert_encode(const proto_alert_t *a, msgpack_sbuffer *out, char *err, size_t errlen)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN];
    const char *field;
    int rc;

    if ((rc = check_alert(a, &field, why, sizeof why)) < 0) {
        wire_reason(err, errlen, NULL, field, why);
        return rc;
    }
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    uint32_t npairs = K_REMINDER + (a->reminder ? 1 : 0) + (a->count ? 1 : 0) + (a->n ? 1 : 0) +
                      (a->rn ? 1 : 0) + (a->ndetails ? 1 : 0);
    if (wire_pack_open(&pk, npairs, "alert") < 0 || wire_pack_cstr(&pk, "id") < 0 ||
        wire_pack_str(&pk, a->id) < 0 || wire_pack_cstr(&pk, "rule") < 0 ||
        wire_pack_str(&pk, a->rule) < 0 || wire_pack_cstr(&pk, "severity") < 0 ||
        wire_pack_cstr(&pk, proto_severity_name(a->severity)) < 0 ||
        wire_pack_cstr(&pk, "state") < 0 ||
        wire_pack_cstr(&pk, proto_alert_state_name(a->state)) < 0 ||
        wire_pack_cstr(&pk, "cluster") < 0 || wire_pack_str(&pk, a->cluster) < 0 ||
        wire_pack_cstr(&pk, "chain") < 0 || pack_opt_id(&pk, a->chain) < 0 ||
        wire_pack_cstr(&pk, "firm") < 0 || pack_opt_id(&pk, a->firm) < 0 ||
        wire_pack_cstr(&pk, "metric") < 0 || wire_pack_str(&pk, a->metric) < 0 ||
        wire_pack_cstr(&pk, "observed") < 0 || msgpack_pack_double(&pk, a->observed) != 0 ||
        wire_pack_cstr(&pk, "expected") < 0 || msgpack_pack_double(&pk, a->expected) != 0 ||
        wire_pack_cstr(&pk, "summary") < 0 || wire_pack_str(&pk, a->summary) < 0 ||
        wire_pack_cstr(&pk, "since") < 0 || msgpack_pack_int64(&pk, a->since_ms) != 0 ||
        wire_pack_cstr(&pk, "ts") < 0 || msgpack_pack_int64(&pk, a->ts_ms) != 0 ||
        wire_pack_cstr(&pk, "seq") < 0 || msgpack_pack_uint64(&pk, a->seq) != 0 ||
        (a->reminder && (wire_pack_cstr(&pk, "reminder") < 0 || msgpack_pack_true(&pk) != 0)) ||
        (a->count &&
         (wire_pack_cstr(&pk, "count") < 0 || msgpack_pack_uint32(&pk, a->count) != 0)) ||
        (a->n && (wire_pack_cstr(&pk, "n") < 0 || msgpack_pack_uint64(&pk, a->n) != 0)) ||
        (a->rn && (wire_pack_cstr(&pk, "rn") < 0 || msgpack_pack_uint32(&pk, a->rn) != 0)))
        goto nomem;
    if (a->ndetails) {
        if (wire_pack_cstr(&pk, "details") < 0 || msgpack_pack_map(&pk, a->ndetails) != 0)
            goto nomem;
        for (uint32_t i = 0; i < a->ndetails; i++) {
            const proto_detail_t *d = &a->details[i];
            if (wire_pack_str(&pk, d->key) < 0 ||
                (d->is_str ? wire_pack_str(&pk, d->str) < 0
                           : msgpack_pack_double(&pk, d->num) != 0))
                goto nomem;
        }
    }
    return PROTO_OK;
nomem:
    out->size = start;
    wire_reason(err, errlen, NULL, NULL, "out of memory");
    return PROTO_ENOMEM;
}

int proto_alert_decode(const void *buf, size_t len, proto_alert_t *a, char *err, size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i;
    const char *field = NULL;
    proto_str_t s;
    char q[48];
    int rc, key, v;

    memset(a, 0, sizeof *a);
    a->id = a->rule = a->cluster = a->chain = a->firm = a->metric = a->summary = wire_empty;
    cursor_init(&c, buf, len);
    if ((rc = wire_open(&c, "alert", &npairs)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, alert_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = alert_keys[key];
        switch (key) {
        case K_ID:
            if ((rc = cursor_read_str(&c, &a->id)) == PROTO_OK)
                rc = wire_check_str(a->id, 1, PROTO_MAX_ALERT_ID_LEN, c.why, sizeof c.why);
            break;
        case K_RULE: rc = wire_read_id(&c, &a->rule); break;
        case K_SEVERITY:
            if ((rc = cursor_read_str(&c, &s)) < 0)
                break;
            if ((v = proto_severity_from_name(s)) < 0) {
                snprintf(c.why, sizeof c.why, "unknown severity %s", wire_quote(s, q, sizeof q));
                rc = PROTO_EVALUE;
                break;
            }
            a->severity = (uint8_t)v;
            break;
        case K_STATE:
            if ((rc = cursor_read_str(&c, &s)) < 0)
                break;
            if ((v = proto_alert_state_from_name(s)) < 0) {
                snprintf(c.why, sizeof c.why, "unknown state %s", wire_quote(s, q, sizeof q));
                rc = PROTO_EVALUE;
                break;
            }
            a->state = (uint8_t)v;
            break;
        case K_CLUSTER: rc = wire_read_id(&c, &a->cluster); break;
        case K_CHAIN: rc = wire_read_opt_id(&c, &a->chain); break;
        case K_FIRM: rc = wire_read_opt_id(&c, &a->firm); break;
        case K_METRIC: rc = wire_read_id(&c, &a->metric); break;
        case K_OBSERVED:
            if ((rc = cursor_read_double(&c, &a->observed)) == PROTO_OK)
                rc = wire_check_finite(a->observed, c.why, sizeof c.why);
            break;
        case K_EXPECTED:
            if ((rc = cursor_read_double(&c, &a->expected)) == PROTO_OK)
                rc = wire_check_finite(a->expected, c.why, sizeof c.why);
            break;
        case K_SUMMARY: rc = wire_read_text(&c, &a->summary); break;
        case K_SINCE: rc = wire_read_ts(&c, &a->since_ms); break;
        case K_TS: rc = wire_read_ts(&c, &a->ts_ms); break;
        case K_SEQ: rc = wire_read_seq(&c, &a->seq); break;
        case K_REMINDER: rc = cursor_read_bool(&c, &a->reminder); break;
        case K_NGROUPED: {
            uint64_t n;
            if ((rc = wire_read_uint_max(&c, UINT32_MAX, &n)) == PROTO_OK)
                a->count = (uint32_t)n;
            break;
        }
        case K_N: rc = wire_read_uint_max(&c, UINT64_MAX, &a->n); break;
        case K_RN: {
            uint64_t n;
            if ((rc = wire_read_uint_max(&c, UINT32_MAX, &n)) == PROTO_OK)
                a->rn = (uint32_t)n;
            break;
        }
        case K_DETAILS: {
            uint32_t n;
            if ((rc = cursor_read_map(&c, &n)) < 0)
                break;
            if (n > PROTO_MAX_DETAILS) {
                snprintf(c.why, sizeof c.why, "%u entries exceed %d", n, PROTO_MAX_DETAILS);
                rc = PROTO_ELIMIT;
                break;
            }
            for (uint32_t k = 0; k < n && rc == PROTO_OK; k++) {
                proto_detail_t *d = &a->details[k];
                if ((rc = wire_read_id(&c, &d->key)) < 0)
                    break;
                if (cursor_peek_kind(&c) == CURSOR_STR) {
                    d->is_str = true;
                    rc = wire_read_text(&c, &d->str);
                } else if ((rc = cursor_read_double(&c, &d->num)) == PROTO_OK) {
                    rc = wire_check_finite(d->num, c.why, sizeof c.why);
                }
            }
            if (rc == PROTO_OK)
                a->ndetails = n;
            break;
        }
        default: break;
        }
        if (rc < 0)
            goto fail;
        field = NULL;
    }
    if ((rc = wire_close(&c, alert_keys, K_COUNT, seen, ALERT_REQUIRED)) < 0)
        goto fail;
    return PROTO_OK;

fail:
    wire_reason(err, errlen, NULL, field, c.why);
    return rc;
}

int proto_alert_topic(proto_str_t cluster, proto_severity_t sev, char *buf, size_t bufsize)
{
    if ((unsigned)sev >= PROTO_SEV_COUNT || !buf || bufsize == 0)
        return -1;
    int n = snprintf(buf, bufsize, "alert." PROTO_STR_FMT ".%s", PROTO_STR_ARG(cluster),
                     proto_severity_name(sev));
    if (n < 0 || (size_t)n >= bufsize) {
        buf[0] = '\0';
        return -1;
    }
    return n;
}
