/*
 * ctl.c -- control requests (clustermonctl -> daemon) and their replies.
 *
 * A request is {"v":2,"type":"ctl","cmd":str,"args":{key: int|str|nil}}: a
 * command name and a handful of flat, typed arguments, decoded without
 * allocation into a fixed array. A reply is {"v":2,"type":"ctl_reply",
 * "ok":bool,"reason":str,"max_version":uint,"body":any}; its body is whatever the command returns
 * (a report can be large and nested), so the daemon packs it directly after
 * the envelope and the client decodes it with msgpack-c's general unpacker.
 * The client trusts its daemon, but still checks the envelope.
 */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

enum { K_V, K_TYPE, K_CMD, K_ARGS, K_COUNT };
static const char *const ctl_keys[K_COUNT] = {"v", "type", "cmd", "args"};
#define CTL_REQUIRED (WIRE_ENVELOPE_SEEN | 1u << K_CMD)

static int check_request(const proto_ctl_request_t *r, char *why, size_t whylen)
{
    int rc;

    if ((rc = wire_check_id(r->cmd, why, whylen)) < 0)
        return rc;
    if (r->nargs > PROTO_MAX_CTL_ARGS)
        return PROTO_ELIMIT;
    for (uint32_t i = 0; i < r->nargs; i++) {
        const proto_ctl_arg_t *a = &r->args[i];

        if ((rc = wire_check_id(a->key, why, whylen)) < 0)
            return rc;
        for (uint32_t j = 0; j < i; j++)
            if (a->key.len == r->args[j].key.len &&
                memcmp(a->key.ptr, r->args[j].key.ptr, a->key.len) == 0)
                return PROTO_EMALFORMED;
        if (a->kind == PROTO_ARG_STR) {
            if ((rc = wire_check_text(a->sval, why, whylen)) < 0)
                return rc;
        } else if (a->kind != PROTO_ARG_INT && a->kind != PROTO_ARG_NIL) {
            return PROTO_EVALUE;
        }
    }
    return PROTO_OK;
}

int proto_ctl_request_encode(const proto_ctl_request_t *r, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    size_t start = out->size;
    char why[CURSOR_WHYLEN];
    int rc;

    if ((rc = check_request(r, why, sizeof why)) < 0)
        return rc;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (wire_pack_open(&pk, K_COUNT, "ctl") < 0 || wire_pack_cstr(&pk, "cmd") < 0 ||
        wire_pack_str(&pk, r->cmd) < 0 || wire_pack_cstr(&pk, "args") < 0 ||
        msgpack_pack_map(&pk, r->nargs) != 0)
        goto nomem;
    for (uint32_t i = 0; i < r->nargs; i++) {
        const proto_ctl_arg_t *a = &r->args[i];

        if (wire_pack_str(&pk, a->key) < 0)
            goto nomem;
        if (a->kind == PROTO_ARG_INT)
            rc = msgpack_pack_int64(&pk, a->ival) != 0 ? PROTO_ENOMEM : PROTO_OK;
        else if (a->kind == PROTO_ARG_STR)
            rc = wire_pack_str(&pk, a->sval);
        else
            rc = msgpack_pack_nil(&pk) != 0 ? PROTO_ENOMEM : PROTO_OK;
        if (rc < 0)
            goto nomem;
    }
    return PROTO_OK;

nomem:
    out->size = start;
    return PROTO_ENOMEM;
}

/* Reads the "args" map; argname receives the quoted name of the argument being read. */
static int read_args(cursor_t *c, proto_ctl_request_t *r, char *argname, size_t argnamelen)
{
    uint32_t n;
    int rc;

    if ((rc = cursor_read_map(c, &n)) < 0)
        return rc;
    if (n > PROTO_MAX_CTL_ARGS) {
        snprintf(c->why, sizeof c->why, "%" PRIu32 " arguments exceed %d", n, PROTO_MAX_CTL_ARGS);
        return PROTO_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        proto_ctl_arg_t *a = &r->args[i];
        cursor_kind_t k;

        memset(a, 0, sizeof *a);
        a->sval = wire_empty;
        if ((rc = wire_read_id(c, &a->key)) < 0)
            return rc;
        wire_quote(a->key, argname, argnamelen);
        for (uint32_t j = 0; j < i; j++) {
            if (a->key.len == r->args[j].key.len &&
                memcmp(a->key.ptr, r->args[j].key.ptr, a->key.len) == 0) {
                snprintf(c->why, sizeof c->why, "duplicate argument");
                return PROTO_EMALFORMED;
            }
        }
        switch ((k = cursor_peek_kind(c))) {
        case CURSOR_NIL:
            a->kind = PROTO_ARG_NIL;
            rc = cursor_read_nil(c);
            break;
        case CURSOR_INT:
            a->kind = PROTO_ARG_INT;
            rc = cursor_read_int(c, &a->ival);
            break;
        case CURSOR_STR:
            a->kind = PROTO_ARG_STR;
            rc = wire_read_text(c, &a->sval);
            break;
        default:
            snprintf(c->why, sizeof c->why, "expected int, str or nil, got %s",
                     cursor_kind_name(k));
            rc = PROTO_EMALFORMED;
            break;
        }
        if (rc < 0)
            return rc;
        r->nargs = i + 1;
    }
    argname[0] = '\0';
    return PROTO_OK;
}

int proto_ctl_request_decode(const void *buf, size_t len, proto_ctl_request_t *r, char *err,
                             size_t errlen)
{
    cursor_t c;
    uint32_t npairs, seen = WIRE_ENVELOPE_SEEN, i;
    const char *field = NULL;
    char argname[48] = "", ctx[64];
    int rc, key;

    r->cmd = wire_empty;
    r->nargs = 0;
    cursor_init(&c, buf, len);
    if ((rc = wire_open(&c, "ctl", &npairs)) < 0)
        goto fail;
    for (i = 2; i < npairs; i++) {
        if ((rc = wire_next_key(&c, ctl_keys, K_COUNT, &seen, &key)) < 0)
            goto fail;
        if (key < 0)
            continue;
        field = ctl_keys[key];
        switch (key) {
        case K_CMD: rc = wire_read_id(&c, &r->cmd); break;
        case K_ARGS: rc = read_args(&c, r, argname, sizeof argname); break;
        default: break;
        }
        if (rc < 0)
            goto fail;
        field = NULL;
    }
    if ((rc = wire_close(&c, ctl_keys, K_COUNT, seen, CTL_REQUIRED)) < 0)
        goto fail;
    return PROTO_OK;

fail:
    if (field && argname[0]) {
        snprintf(ctx, sizeof ctx, "args: %s", argname);
        wire_reason(err, errlen, ctx, NULL, c.why);
    } else {
        wire_reason(err, errlen, NULL, field, c.why);
    }
    r->nargs = 0;
    return rc;
}

const proto_ctl_arg_t *proto_ctl_arg(const proto_ctl_request_t *r, const char *key)
{
    for (uint32_t i = 0; i < r->nargs && i < PROTO_MAX_CTL_ARGS; i++)
        if (proto_str_eq(r->args[i].key, key))
            return &r->args[i];
    return NULL;
}

int proto_ctl_reply_begin(msgpack_packer *pk, bool ok, const char *reason)
{
    proto_str_t rs = proto_str(reason);
    char why[CURSOR_WHYLEN];
    int rc;

    if ((rc = wire_check_text(rs, why, sizeof why)) < 0)
        return rc;
    /* max_version in every reply, so that a client refused for its version
     * (reason "version: ...") learns which one to retry with. */
    if (wire_pack_open(pk, 6, "ctl_reply") < 0 || wire_pack_cstr(pk, "ok") < 0 ||
        (ok ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) != 0 ||
        wire_pack_cstr(pk, "reason") < 0 || wire_pack_str(pk, rs) < 0 ||
        wire_pack_cstr(pk, "max_version") < 0 || msgpack_pack_uint64(pk, PROTO_VERSION) != 0 ||
        wire_pack_cstr(pk, "body") < 0)
        return PROTO_ENOMEM;
    return PROTO_OK;
}

static bool obj_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

int proto_ctl_reply_decode(const void *buf, size_t len, msgpack_zone *zone, bool *ret_ok,
                           proto_str_t *ret_reason, msgpack_object *ret_body, char *err,
                           size_t errlen)
{
    enum { R_OK = 2, R_REASON, R_BODY, R_COUNT };
    static const char *const keys[R_COUNT] = {"v", "type", "ok", "reason", "body"};
    msgpack_object obj;
    size_t off = 0;
    uint32_t i, k, seen = WIRE_ENVELOPE_SEEN;
    int rc = PROTO_EMALFORMED;

    *ret_ok = false;
    *ret_reason = wire_empty;
    memset(ret_body, 0, sizeof *ret_body);
    ret_body->type = MSGPACK_OBJECT_NIL;

    switch (msgpack_unpack(buf, len, &off, zone, &obj)) {
    case MSGPACK_UNPACK_SUCCESS: break;
    case MSGPACK_UNPACK_EXTRA_BYTES:
        wire_reason_fmt(err, errlen, "trailing bytes (%zu) after the map", len - off);
        return PROTO_EMALFORMED;
    case MSGPACK_UNPACK_CONTINUE:
        wire_reason_fmt(err, errlen, "truncated");
        return PROTO_EMALFORMED;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        wire_reason_fmt(err, errlen, "out of memory");
        return PROTO_ENOMEM;
    default: wire_reason_fmt(err, errlen, "not MessagePack"); return PROTO_EMALFORMED;
    }
    if (obj.type != MSGPACK_OBJECT_MAP) {
        wire_reason_fmt(err, errlen, "expected map");
        return PROTO_EMALFORMED;
    }
    const msgpack_object_kv *kv = obj.via.map.ptr;
    if (obj.via.map.size < 1 || !obj_str_eq(&kv[0].key, "v")) {
        wire_reason_fmt(err, errlen, "\"v\" must be the first key");
        return PROTO_EMALFORMED;
    }
    if (kv[0].val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        kv[0].val.via.u64 < PROTO_VERSION_MIN || kv[0].val.via.u64 > PROTO_VERSION) {
        wire_reason_fmt(err, errlen, "v: unsupported version (this build speaks %d..%d)",
                        PROTO_VERSION_MIN, PROTO_VERSION);
        return PROTO_EVERSION;
    }
    if (obj.via.map.size < 2 || !obj_str_eq(&kv[1].key, "type")) {
        wire_reason_fmt(err, errlen, "\"type\" must be the second key");
        return PROTO_EMALFORMED;
    }
    if (!obj_str_eq(&kv[1].val, "ctl_reply")) {
        wire_reason_fmt(err, errlen, "unexpected type (want \"ctl_reply\")");
        return PROTO_ETYPE;
    }
    for (i = 2; i < obj.via.map.size; i++) {
        for (k = 0; k < R_COUNT && !obj_str_eq(&kv[i].key, keys[k]); k++)
            ;
        if (k == R_COUNT)
            continue; /* unknown key */
        if (seen & (1u << k)) {
            wire_reason_fmt(err, errlen, "duplicate key \"%s\"", keys[k]);
            return PROTO_EMALFORMED;
        }
        seen |= 1u << k;
        if (k == R_OK) {
            if (kv[i].val.type != MSGPACK_OBJECT_BOOLEAN) {
                wire_reason_fmt(err, errlen, "ok: expected bool");
                return PROTO_EMALFORMED;
            }
            *ret_ok = kv[i].val.via.boolean;
        } else if (k == R_REASON) {
            char why[CURSOR_WHYLEN];

            if (kv[i].val.type != MSGPACK_OBJECT_STR) {
                wire_reason_fmt(err, errlen, "reason: expected str");
                return PROTO_EMALFORMED;
            }
            ret_reason->ptr = kv[i].val.via.str.ptr;
            ret_reason->len = kv[i].val.via.str.size;
            if ((rc = wire_check_text(*ret_reason, why, sizeof why)) < 0) {
                *ret_reason = wire_empty;
                wire_reason_fmt(err, errlen, "reason: %s", why);
                return rc;
            }
        } else if (k == R_BODY) {
            *ret_body = kv[i].val;
        }
    }
    for (k = R_OK; k < R_COUNT; k++) {
        if (!(seen & (1u << k))) {
            wire_reason_fmt(err, errlen, "missing key \"%s\"", keys[k]);
            return PROTO_EMALFORMED;
        }
    }
    return PROTO_OK;
}
