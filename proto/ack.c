/*
 * ack.c -- the daemon's answer to each batch: an ack (status "ok") or a nack.
 *
 * {"v":2,"type":"ack","seq":uint,"status":str,"accepted":uint,
 *  "expected":uint,"max_version":uint,"reason":str[,"dry_run":true][,"refused":[[i,status,reason],...]]}.
 * The two optional keys answer only senders that asked for per-sample
 * answers (a "partial" batch, a "check"), so older agents never meet them. Exactly one is sent per batch received,
 * so an agent can match it to its in-flight batch by seq (0 when the batch
 * was too broken for its seq to be read).
 */
#include <stdio.h>

#include "proto/wire.h"

enum {
    K_V,
    K_TYPE,
    K_SEQ,
    K_STATUS,
    K_ACCEPTED,
    K_EXPECTED,
    K_MAX_VERSION,
    K_REASON,
    K_DRY_RUN,
    K_REFUSED,
    K_COUNT
};
static const char *const ack_keys[K_COUNT] = {"v",        "type",     "seq",         "status",
                                              "accepted", "expected", "max_version", "reason",
                                              "dry_run",  "refused"};
#define ACK_REQUIRED ((1u << K_DRY_RUN) - 1) /* dry_run and refused are optional */

/* The statuses a single sample can be refused with. */
static bool sample_status(unsigned st)
{
    return st == PROTO_STATUS_UNKNOWN_FIRM || st == PROTO_STATUS_UNKNOWN_METRIC ||
           st == PROTO_STATUS_INVALID || st == PROTO_STATUS_FORBIDDEN;
}

static int check_ack(const proto_ack_t *a, char *why, size_t whylen)
{
    int rc;

    if (a->status >= PROTO_STATUS_COUNT) {
        snprintf(why, whylen, "status: unknown status %u", (unsigned)a->status);
        return PROTO_EVALUE;
    }
    if (a->accepted > PROTO_MAX_SAMPLES) {
        snprintf(why, whylen, "accepted: %" PRIu32 " exceeds %d", a->accepted, PROTO_MAX_SAMPLES);
        return PROTO_EVALUE;
    }
    if ((rc = wire_check_text(a->reason, why, whylen)) < 0)
        return rc;
    if (a->nrefused > PROTO_MAX_SAMPLES || (a->nrefused > 0 && !a->refused)) {
        snprintf(why, whylen, "refused: %" PRIu32 " entries (at most %d)", a->nrefused,
                 PROTO_MAX_SAMPLES);
        return PROTO_ELIMIT;
    }
    for (uint32_t i = 0; i < a->nrefused; i++) {
        const proto_refusal_t *r = &a->refused[i];
        if (r->index >= PROTO_MAX_SAMPLES || !sample_status(r->status)) {
            snprintf(why, whylen, "refused %" PRIu32 ": index %" PRIu32 ", status %u", i, r->index,
                     (unsigned)r->status);
            return PROTO_EVALUE;
        }
        if ((rc = wire_check_text(r->reason, why, whylen)) < 0)
            return rc;
    }
    return PROTO_OK;
}

int proto_ack_encode(const proto_ack_t *a, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN];
    int rc;

    if ((rc = check_ack(a, why, sizeof why)) < 0)
        return rc;
    bool has_refused = a->nrefused > 0 || a->status == PROTO_STATUS_PARTIAL;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (wire_pack_open(&pk, K_DRY_RUN + a->dry_run + has_refused, "ack") < 0 ||
        wire_pack_cstr(&pk, "seq") < 0 || msgpack_pack_uint64(&pk, a->seq) != 0 ||
        wire_pack_cstr(&pk, "status") < 0 ||
        wire_pack_cstr(&pk, proto_status_name(a->status)) < 0 ||
        wire_pack_cstr(&pk, "accepted") < 0 || msgpack_pack_uint64(&pk, a->accepted) != 0 ||
        wire_pack_cstr(&pk, "expected") < 0 || msgpack_pack_uint64(&pk, a->expected) != 0 ||
        wire_pack_cstr(&pk, "max_version") < 0 || msgpack_pack_uint64(&pk, a->max_version) != 0 ||
        wire_pack_cstr(&pk, "reason") < 0 || wire_pack_str(&pk, a->reason) < 0)
        goto nomem;
    if (a->dry_run && (wire_pack_cstr(&pk, "dry_run") < 0 || msgpack_pack_true(&pk) != 0))
        goto nomem;
    if (has_refused) {
        if (wire_pack_cstr(&pk, "refused") < 0 || msgpack_pack_array(&pk, a->nrefused) != 0)
            goto nomem;
        for (uint32_t i = 0; i < a->nrefused; i++) {
            const proto_refusal_t *r = &a->refused[i];
            if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_uint32(&pk, r->index) != 0 ||
                wire_pack_cstr(&pk, proto_status_name(r->status)) < 0 ||
                wire_pack_str(&pk, r->reason) < 0)
                goto nomem;
        }
    }
    return PROTO_OK;
nomem:
    out->size = start;
    return PROTO_ENOMEM;
}

/* Reads one [index, status, reason] entry of "refused". */
static int read_refusal(cursor_t *c, proto_refusal_t *r)
{
    uint32_t n;
    uint64_t u;
    proto_str_t s;
    int rc, st;
    char q[48];

    if ((rc = cursor_read_array(c, &n)) < 0)
        return rc;
    if (n != 3) {
        snprintf(c->why, sizeof c->why, "array of %" PRIu32 " elements (want 3)", n);
        return PROTO_EMALFORMED;
    }
    if ((rc = wire_read_uint_max(c, PROTO_MAX_SAMPLES - 1, &u)) < 0)
        return rc;
    r->index = (uint32_t)u;
    if ((rc = cursor_read_str(c, &s)) < 0)
        return rc;
    if ((st = proto_status_from_name(s)) < 0 || !sample_status((unsigned)st)) {
        snprintf(c->why, sizeof c->why, "status %s is not a sample's", wire_quote(s, q, sizeof q));
        return PROTO_EVALUE;
    }
    r->status = (uint8_t)st;
    return wire_read_text(c, &r->reason);
}

int proto_ack_decode(const void *buf, size_t len, proto_ack_t *a, char *err, size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i;
    const char *field = NULL;
    uint64_t u;
    proto_str_t s;
    int rc, key, st;

    a->seq = 0;
    a->status = PROTO_STATUS_INTERNAL;
    a->max_version = 0;
    a->accepted = 0;
    a->expected = 0;
    a->reason = wire_empty;
    a->dry_run = false;
    a->nrefused = 0;
    cursor_init(&c, buf, len);
    if ((rc = wire_open(&c, "ack", &npairs)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, ack_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = ack_keys[key];
        switch (key) {
        case K_SEQ: rc = cursor_read_uint(&c, &a->seq); break;
        case K_STATUS:
            if ((rc = cursor_read_str(&c, &s)) < 0)
                break;
            if ((st = proto_status_from_name(s)) < 0) {
                char q[48];

                snprintf(c.why, sizeof c.why, "unknown status %s", wire_quote(s, q, sizeof q));
                rc = PROTO_EVALUE;
                break;
            }
            a->status = (uint8_t)st;
            break;
        case K_ACCEPTED:
            if ((rc = wire_read_uint_max(&c, PROTO_MAX_SAMPLES, &u)) == PROTO_OK)
                a->accepted = (uint32_t)u;
            break;
        case K_EXPECTED: rc = cursor_read_uint(&c, &a->expected); break;
        case K_MAX_VERSION:
            if ((rc = wire_read_uint_max(&c, UINT8_MAX, &u)) == PROTO_OK)
                a->max_version = (uint8_t)u;
            break;
        case K_REASON: rc = wire_read_text(&c, &a->reason); break;
        case K_DRY_RUN: rc = cursor_read_bool(&c, &a->dry_run); break;
        case K_REFUSED: {
            uint32_t n;
            proto_refusal_t scratch;
            if ((rc = cursor_read_array(&c, &n)) < 0)
                break;
            if (n > PROTO_MAX_SAMPLES || (a->refused && n > a->refused_cap)) {
                snprintf(c.why, sizeof c.why, "%" PRIu32 " entries exceed %s %u", n,
                         n > PROTO_MAX_SAMPLES ? "the limit" : "the capacity",
                         n > PROTO_MAX_SAMPLES ? PROTO_MAX_SAMPLES : (unsigned)a->refused_cap);
                rc = PROTO_ELIMIT;
                break;
            }
            for (uint32_t k = 0; k < n && rc == PROTO_OK; k++)
                rc = read_refusal(&c, a->refused ? &a->refused[k] : &scratch);
            if (rc == PROTO_OK)
                a->nrefused = n;
            break;
        }
        default: break;
        }
        if (rc < 0)
            goto fail;
        field = NULL;
    }
    if ((rc = wire_close(&c, ack_keys, K_COUNT, seen, ACK_REQUIRED)) < 0)
        goto fail;
    return PROTO_OK;

fail:
    wire_reason(err, errlen, NULL, field, c.why);
    return rc;
}
