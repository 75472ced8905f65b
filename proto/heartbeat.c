/*
 * heartbeat.c -- the alert publisher's heartbeat, once a second on the PUB
 * socket under the topic "alert..heartbeat" (an empty cluster: no real
 * alert topic can match it exactly):
 *
 *   {"v":2,"type":"heartbeat","seq":uint,"ts":int ms}
 *
 * seq is the last alert sequence number published. A subscriber that lost
 * the *last* alerts before a quiet spell has no later alert to show the
 * gap; the heartbeat shows it within a second.
 */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

enum { K_V, K_TYPE, K_SEQ, K_TS, K_COUNT };
static const char *const hb_keys[K_COUNT] = {"v", "type", "seq", "ts"};
#define HB_REQUIRED ((1u << K_COUNT) - 1)

const char proto_heartbeat_topic[] = "alert..heartbeat";

int proto_heartbeat_encode(uint64_t seq, int64_t ts_ms, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN];

    if (wire_check_ts(ts_ms, why, sizeof(why)) < 0)
        return PROTO_EVALUE;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (wire_pack_open(&pk, K_COUNT, "heartbeat") < 0 || wire_pack_cstr(&pk, "seq") < 0 ||
        msgpack_pack_uint64(&pk, seq) != 0 || wire_pack_cstr(&pk, "ts") < 0 ||
        msgpack_pack_int64(&pk, ts_ms) != 0) {
        out->size = start;
        return PROTO_ENOMEM;
    }
    return PROTO_OK;
}

int proto_heartbeat_decode(const void *buf, size_t len, uint64_t *ret_seq, int64_t *ret_ts,
                           char *err, size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i;
    const char *field = NULL;
    int rc, key;

    *ret_seq = 0;
    *ret_ts = 0;
    cursor_init(&c, buf, len);
    if ((rc = wire_open(&c, "heartbeat", &npairs)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, hb_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = hb_keys[key];
        rc = key == K_SEQ ? wire_read_uint_max(&c, UINT64_MAX, ret_seq) : wire_read_ts(&c, ret_ts);
        if (rc < 0)
            goto fail;
        field = NULL;
    }
    if ((rc = wire_close(&c, hb_keys, K_COUNT, seen, HB_REQUIRED)) < 0)
        goto fail;
    return PROTO_OK;
fail:
    wire_reason(err, errlen, NULL, field, c.why);
    return rc;
}
