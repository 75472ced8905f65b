/*
 * proto.c -- the small shared pieces of proto.h: borrowed strings, the wire
 * names of enums and the English names of error codes.
 *
 * Wire names live in one table per enum so that the name written by an
 * encoder and the name accepted by a decoder can never drift apart.
 */
#include <string.h>

#include "proto/proto.h"

proto_str_t proto_str(const char *s)
{
    proto_str_t r = {"", 0};

    if (s) {
        r.ptr = s;
        r.len = (uint32_t)strlen(s);
    }
    return r;
}

bool proto_str_eq(proto_str_t a, const char *b)
{
    size_t n = b ? strlen(b) : 0;

    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

static int name_lookup(const char *const *names, int count, proto_str_t name)
{
    for (int i = 0; i < count; i++)
        if (proto_str_eq(name, names[i]))
            return i;
    return -1;
}

static const char *const status_names[PROTO_STATUS_COUNT] = {
    [PROTO_STATUS_OK] = "ok",
    [PROTO_STATUS_MALFORMED] = "malformed",
    [PROTO_STATUS_VERSION] = "version",
    [PROTO_STATUS_UNKNOWN_FIRM] = "unknown_firm",
    [PROTO_STATUS_UNKNOWN_METRIC] = "unknown_metric",
    [PROTO_STATUS_INVALID] = "invalid",
    [PROTO_STATUS_TOO_LARGE] = "too_large",
    [PROTO_STATUS_BUSY] = "busy",
    [PROTO_STATUS_FORBIDDEN] = "forbidden",
    [PROTO_STATUS_RATE_LIMITED] = "rate_limited",
    [PROTO_STATUS_INTERNAL] = "internal",
    [PROTO_STATUS_OUT_OF_ORDER] = "out_of_order",
    [PROTO_STATUS_AGENT_CONFLICT] = "agent_conflict",
    [PROTO_STATUS_PARTIAL] = "partial",
};

proto_next_t proto_status_next(proto_status_t s)
{
    switch (s) {
    case PROTO_STATUS_OK:
    case PROTO_STATUS_PARTIAL: return PROTO_NEXT_DONE; /* settled: what was good is applied */
    case PROTO_STATUS_BUSY:
    case PROTO_STATUS_RATE_LIMITED:
    case PROTO_STATUS_INTERNAL: return PROTO_NEXT_RETRY;
    case PROTO_STATUS_OUT_OF_ORDER: return PROTO_NEXT_REWIND;
    case PROTO_STATUS_AGENT_CONFLICT: return PROTO_NEXT_STOP;
    default: return PROTO_NEXT_FINAL;
    }
}

const char *proto_status_name(proto_status_t s)
{
    return (unsigned)s < PROTO_STATUS_COUNT ? status_names[s] : "?";
}

int proto_status_from_name(proto_str_t name)
{
    return name_lookup(status_names, PROTO_STATUS_COUNT, name);
}

static const char *const severity_names[PROTO_SEV_COUNT] = {
    [PROTO_SEV_INFO] = "info",
    [PROTO_SEV_WARNING] = "warning",
    [PROTO_SEV_CRITICAL] = "critical",
};

const char *proto_severity_name(proto_severity_t s)
{
    return (unsigned)s < PROTO_SEV_COUNT ? severity_names[s] : "?";
}

int proto_severity_from_name(proto_str_t name)
{
    return name_lookup(severity_names, PROTO_SEV_COUNT, name);
}

static const char *const alert_state_names[PROTO_ALERT_STATE_COUNT] = {
    [PROTO_ALERT_FIRING] = "firing",
    [PROTO_ALERT_REVISED] = "revised",
    [PROTO_ALERT_FLAPPING] = "flapping",
    [PROTO_ALERT_RESOLVED] = "resolved",
};

const char *proto_alert_state_name(proto_alert_state_t s)
{
    return (unsigned)s < PROTO_ALERT_STATE_COUNT ? alert_state_names[s] : "?";
}

int proto_alert_state_from_name(proto_str_t name)
{
    return name_lookup(alert_state_names, PROTO_ALERT_STATE_COUNT, name);
}

const char *proto_strerror(int err)
{
    switch (err) {
    case PROTO_OK: return "success";
    case PROTO_EMALFORMED: return "malformed message";
    case PROTO_EVERSION: return "unsupported protocol version";
    case PROTO_ETYPE: return "unexpected message type";
    case PROTO_ELIMIT: return "limit exceeded";
    case PROTO_EVALUE: return "invalid value";
    case PROTO_ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

const msgpack_object *proto_obj_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool proto_obj_i64(const msgpack_object *o, int64_t *ret)
{
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *ret = o->via.i64;
        return true;
    }
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *ret = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

bool proto_obj_u64(const msgpack_object *o, uint64_t *ret)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *ret = o->via.u64;
    return true;
}
