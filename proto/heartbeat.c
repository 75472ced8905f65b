/*
 * heartbeat.c -- the alert publisher's heartbeat: once a second, one per
 * cluster, on the PUB socket under the topic "alert.<cluster>.heartbeat"
 * (ids have no '.', and "heartbeat" is no severity, so no alert topic equals
 * it; the cluster's prefix "alert.<cluster>." receives it):
 *
 *   {"v":2,"type":"heartbeat","cluster":str,"seq":uint,"ts":int ms}
 *
 * seq is the last alert sequence number published for that cluster. A
 * subscriber that lost the *last* alerts of a cluster before a quiet spell
 * has no later alert to show the gap; the heartbeat shows it within a
 * second. One message per cluster, under the cluster's own topic, means a
 * subscriber that may see only some clusters (the XPUB narrows its
 * subscriptions by cluster prefix) learns nothing of the others.
 */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

enum { K_V, K_TYPE, K_CLUSTER, K_SEQ, K_TS, K_COUNT };
static const char *const hb_keys[K_COUNT] = {"v", "type", "cluster", "seq", "ts"};
#define HB_REQUIRED ((1u << K_COUNT) - 1)

int proto_heartbeat_topic(proto_str_t cluster, char *buf, size_t bufsize)
{
    if (!buf || bufsize == 0)
        return -1;
    int n = snprintf(buf, bufsize, "alert." PROTO_STR_FMT ".heartbeat", PROTO_STR_ARG(cluster));
    if (cluster.len == 0 || n < 0 || (size_t)n >= bufsize) {
        buf[0] = '\0';
        return -1;
    }
    return n;
}

int proto_heartbeat_encode(const proto_heartbeat_t *hb, msgpack_sbuffer *out, char *err,
                           size_t errlen)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN];
    int rc;

    if ((rc = wire_check_id(hb->cluster, why, sizeof why)) < 0) {
        wire_reason(err, errlen, NULL, hb_keys[K_CLUSTER], why);
        return rc;
    }
    if ((rc = wire_check_ts(hb->ts_ms, why, sizeof why)) < 0) {
        wire_reason(err, errlen, NULL, hb_keys[K_TS], why);
        return rc;
    }
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (wire_pack_open(&pk, K_COUNT, "heartbeat") < 0 || wire_pack_cstr(&pk, "cluster") < 0 ||
        wire_pack_str(&pk, hb->cluster) < 0 || wire_pack_cstr(&pk, "seq") < 0 ||
        msgpack_pack_uint64(&pk, hb->seq) != 0 || wire_pack_cstr(&pk, "ts") < 0 ||
        msgpack_pack_int64(&pk, hb->ts_ms) != 0) {
        out->size = start;
        wire_reason(err, errlen, NULL, NULL, "out of memory");
        return PROTO_ENOMEM;
    }
    return PROTO_OK;
}

int proto_heartbeat_decode(const void *buf, size_t len, proto_heartbeat_t *hb, char *err,
                           size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i;
    const char *field = NULL;
    int rc, key;

    memset(hb, 0, sizeof *hb);
    hb->cluster = wire_empty;
    cursor_init(&c, buf, len);
    if ((rc = wire_open(&c, "heartbeat", &npairs)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, hb_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = hb_keys[key];
        switch (key) {
        case K_CLUSTER: rc = wire_read_id(&c, &hb->cluster); break;
        case K_SEQ: rc = wire_read_uint_max(&c, UINT64_MAX, &hb->seq); break;
        default: rc = wire_read_ts(&c, &hb->ts_ms); break;
        }
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
