/*
 * ack.c -- the daemon's answer to each batch: an ack (status "ok") or a nack.
 *
 * {"v":2,"type":"ack","seq":uint,"status":str,"accepted":uint,
 *  "expected":uint,"max_version":uint,"reason":str}. Exactly one is sent per batch received,
 * so an agent can match it to its in-flight batch by seq (0 when the batch
 * was too broken for its seq to be read).
 */
#include <stdio.h>

#include "proto/wire.h"

enum { K_V, K_TYPE, K_SEQ, K_STATUS, K_ACCEPTED, K_EXPECTED, K_MAX_VERSION, K_REASON, K_COUNT };
static const char *const ack_keys[K_COUNT] = {"v",        "type",     "seq",         "status",
                                              "accepted", "expected", "max_version", "reason"};
#define ACK_REQUIRED ((1u << K_COUNT) - 1)

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
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (wire_pack_open(&pk, K_COUNT, "ack") < 0 || wire_pack_cstr(&pk, "seq") < 0 ||
        msgpack_pack_uint64(&pk, a->seq) != 0 || wire_pack_cstr(&pk, "status") < 0 ||
        wire_pack_cstr(&pk, proto_status_name(a->status)) < 0 ||
        wire_pack_cstr(&pk, "accepted") < 0 || msgpack_pack_uint64(&pk, a->accepted) != 0 ||
        wire_pack_cstr(&pk, "expected") < 0 || msgpack_pack_uint64(&pk, a->expected) != 0 ||
        wire_pack_cstr(&pk, "max_version") < 0 || msgpack_pack_uint64(&pk, a->max_version) != 0 ||
        wire_pack_cstr(&pk, "reason") < 0 || wire_pack_str(&pk, a->reason) < 0) {
        out->size = start;
        return PROTO_ENOMEM;
    }
    return PROTO_OK;
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
