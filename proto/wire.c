/*
 * wire.c -- the envelope, key loop, shared value checks and reasons of proto/.
 *
 * See wire.h. The rule this file enforces for every message: "v" is the first
 * key and is checked before anything else is interpreted, so that a message
 * of a future version is refused as a whole (PROTO_EVERSION) instead of being
 * half-understood; "type" is the second key.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

const proto_str_t wire_empty = {"", 0};

/* Returns the offset of the first byte that is not part of valid UTF-8 (or
 * is NUL), or n when all of s is valid. Overlong forms, surrogates and code
 * points above U+10FFFF are invalid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint32_t cp, min;

        if (b >= 0x01 && b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            need = 1, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            need = 2, cp = b & 0x0f, min = 0x800;
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return i; /* NUL, continuation byte, 0xc0/0xc1, 0xf5.. */
        }
        if (n - i - 1 < need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cb = s[i + k];

            if ((cb & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (cb & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return n;
}

int wire_check_str(proto_str_t s, uint32_t min, uint32_t max, char *why, size_t whylen)
{
    size_t bad;

    if (s.len > max) {
        snprintf(why, whylen, "string of %" PRIu32 " bytes exceeds %" PRIu32, s.len, max);
        return PROTO_ELIMIT;
    }
    if (s.len < min) {
        snprintf(why, whylen, "empty string");
        return PROTO_EVALUE;
    }
    if (s.len > 0 && (bad = utf8_invalid_at((const uint8_t *)s.ptr, s.len)) != s.len) {
        snprintf(why, whylen, "%s at byte %zu", s.ptr[bad] == '\0' ? "NUL" : "invalid UTF-8", bad);
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

int wire_check_id(proto_str_t s, char *why, size_t whylen)
{
    return wire_check_str(s, 1, PROTO_MAX_ID_LEN, why, whylen);
}

int wire_check_text(proto_str_t s, char *why, size_t whylen)
{
    return wire_check_str(s, 0, PROTO_MAX_TEXT_LEN, why, whylen);
}

int wire_check_finite(double v, char *why, size_t whylen)
{
    if (isnan(v)) {
        snprintf(why, whylen, "is NaN");
        return PROTO_EVALUE;
    }
    if (isinf(v)) {
        snprintf(why, whylen, "is %cInf", v > 0 ? '+' : '-');
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

int wire_check_value(double v, char *why, size_t whylen)
{
    int rc;

    if ((rc = wire_check_finite(v, why, whylen)) < 0)
        return rc;
    if (fabs(v) > PROTO_MAX_ABS_VALUE) {
        snprintf(why, whylen, "%g exceeds %g in magnitude", v, PROTO_MAX_ABS_VALUE);
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

int wire_check_ts(int64_t ts, char *why, size_t whylen)
{
    if (ts < 0 || ts >= PROTO_MAX_TS_MS) {
        snprintf(why, whylen, "%" PRId64 " outside [0, %lld)", ts, PROTO_MAX_TS_MS);
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

/* ---- decoding ---------------------------------------------------------- */

/* Prefixes the cursor's reason with "<field>: " and returns rc. */
static int prefix_why(cursor_t *c, const char *field, int rc)
{
    char prefix[48];

    snprintf(prefix, sizeof prefix, "%s: ", field);
    cursor_why_prefix(c, prefix);
    return rc;
}

int wire_open(cursor_t *c, const char *type, uint32_t *ret_npairs)
{
    return wire_open2(c, type, NULL, ret_npairs, NULL);
}

int wire_open2(cursor_t *c, const char *type, const char *type2, uint32_t *ret_npairs,
               bool *ret_second)
{
    proto_str_t key, t;
    uint64_t v;
    char q[48];
    int rc;

    if (cursor_left(c) > PROTO_MAX_MSG_SIZE) {
        snprintf(c->why, sizeof c->why, "message of %zu bytes exceeds %u", cursor_left(c),
                 PROTO_MAX_MSG_SIZE);
        return PROTO_ELIMIT;
    }
    if (cursor_left(c) == 0) {
        snprintf(c->why, sizeof c->why, "empty message");
        return PROTO_EMALFORMED;
    }
    if ((rc = cursor_read_map(c, ret_npairs)) < 0)
        return rc;
    if (*ret_npairs >= 1 && (rc = cursor_read_str(c, &key)) < 0)
        return prefix_why(c, "key", rc);
    if (*ret_npairs < 1 || !proto_str_eq(key, "v")) {
        snprintf(c->why, sizeof c->why, "\"v\" must be the first key");
        return PROTO_EMALFORMED;
    }
    if ((rc = cursor_read_uint(c, &v)) < 0) {
        if (rc != PROTO_EVALUE)
            return prefix_why(c, "v", rc);
        /* a negative version is just another unsupported one */
        snprintf(c->why, sizeof c->why, "v: unsupported version (this build speaks %d..%d)",
                 PROTO_VERSION_MIN, PROTO_VERSION);
        return PROTO_EVERSION;
    }
    if (v < PROTO_VERSION_MIN || v > PROTO_VERSION) {
        snprintf(c->why, sizeof c->why, "v: unsupported version %llu (this build speaks %d..%d)",
                 (unsigned long long)v, PROTO_VERSION_MIN, PROTO_VERSION);
        return PROTO_EVERSION;
    }
    if (*ret_npairs < 2) {
        snprintf(c->why, sizeof c->why, "missing key \"type\"");
        return PROTO_EMALFORMED;
    }
    if ((rc = cursor_read_str(c, &key)) < 0)
        return prefix_why(c, "key", rc);
    if (!proto_str_eq(key, "type")) {
        snprintf(c->why, sizeof c->why, "\"type\" must be the second key");
        return PROTO_EMALFORMED;
    }
    if ((rc = cursor_read_str(c, &t)) < 0)
        return prefix_why(c, "type", rc);
    if (ret_second)
        *ret_second = type2 && proto_str_eq(t, type2);
    if (!proto_str_eq(t, type) && !(type2 && proto_str_eq(t, type2))) {
        snprintf(c->why, sizeof c->why, "unexpected type %s (want \"%s\"%s%s%s)",
                 wire_quote(t, q, sizeof q), type, type2 ? " or \"" : "", type2 ? type2 : "",
                 type2 ? "\"" : "");
        return PROTO_ETYPE;
    }
    return PROTO_OK;
}

int wire_next_key(cursor_t *c, const char *const *keys, unsigned nkeys, uint32_t *seen,
                  int *ret_key)
{
    proto_str_t key;
    int rc;

    if ((rc = cursor_read_str(c, &key)) < 0)
        return prefix_why(c, "key", rc);
    for (unsigned k = 0; k < nkeys; k++) {
        if (!proto_str_eq(key, keys[k]))
            continue;
        if (*seen & (1u << k)) {
            snprintf(c->why, sizeof c->why, "duplicate key \"%s\"", keys[k]);
            return PROTO_EMALFORMED;
        }
        *seen |= 1u << k;
        *ret_key = (int)k;
        return PROTO_OK;
    }
    *ret_key = -1;
    if ((rc = cursor_skip(c, 1)) < 0) {
        char q[48], prefix[64];

        snprintf(prefix, sizeof prefix, "unknown key %s: ", wire_quote(key, q, sizeof q));
        cursor_why_prefix(c, prefix);
        return rc;
    }
    return PROTO_OK;
}

int wire_close(cursor_t *c, const char *const *keys, unsigned nkeys, uint32_t seen,
               uint32_t required)
{
    for (unsigned k = 0; k < nkeys; k++) {
        if ((required & (1u << k)) && !(seen & (1u << k))) {
            snprintf(c->why, sizeof c->why, "missing key \"%s\"", keys[k]);
            return PROTO_EMALFORMED;
        }
    }
    if (c->p != c->end) {
        snprintf(c->why, sizeof c->why, "trailing bytes (%zu) after the map", cursor_left(c));
        return PROTO_EMALFORMED;
    }
    return PROTO_OK;
}

int wire_read_id(cursor_t *c, proto_str_t *ret)
{
    int rc;

    if ((rc = cursor_read_str(c, ret)) < 0)
        return rc;
    return wire_check_id(*ret, c->why, sizeof c->why);
}

int wire_read_text(cursor_t *c, proto_str_t *ret)
{
    int rc;

    if ((rc = cursor_read_str(c, ret)) < 0)
        return rc;
    return wire_check_text(*ret, c->why, sizeof c->why);
}

int wire_read_opt_id(cursor_t *c, proto_str_t *ret)
{
    if (cursor_peek_nil(c)) {
        *ret = wire_empty;
        return cursor_read_nil(c);
    }
    return wire_read_id(c, ret);
}

int wire_read_seq(cursor_t *c, uint64_t *ret)
{
    int rc;

    if ((rc = cursor_read_uint(c, ret)) < 0)
        return rc;
    if (*ret == 0) {
        snprintf(c->why, sizeof c->why, "0 (must be >= 1)");
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

int wire_read_uint_max(cursor_t *c, uint64_t max, uint64_t *ret)
{
    int rc;

    if ((rc = cursor_read_uint(c, ret)) < 0)
        return rc;
    if (*ret > max) {
        snprintf(c->why, sizeof c->why, "%llu exceeds %llu", (unsigned long long)*ret,
                 (unsigned long long)max);
        return PROTO_EVALUE;
    }
    return PROTO_OK;
}

int wire_read_ts(cursor_t *c, int64_t *ret)
{
    int rc;

    if ((rc = cursor_read_int(c, ret)) < 0)
        return rc;
    return wire_check_ts(*ret, c->why, sizeof c->why);
}

void wire_reason(char *err, size_t errlen, const char *ctx, const char *field, const char *why)
{
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "%s%s%s%s%s", ctx ? ctx : "", ctx ? ": " : "", field ? field : "",
             field ? ": " : "", why);
}

const char *wire_quote(proto_str_t s, char *buf, size_t bufsize)
{
    if (s.len + 3 > bufsize)
        goto opaque;
    for (uint32_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e || s.ptr[i] == '"' || s.ptr[i] == '\\')
            goto opaque;
    snprintf(buf, bufsize, "\"%.*s\"", PROTO_STR_ARG(s));
    return buf;
opaque:
    snprintf(buf, bufsize, "(%" PRIu32 " bytes)", s.len);
    return buf;
}

/* ---- encoding ---------------------------------------------------------- */

int wire_pack_str(msgpack_packer *pk, proto_str_t s)
{
    if (msgpack_pack_str(pk, s.len) != 0 ||
        (s.len > 0 && msgpack_pack_str_body(pk, s.ptr, s.len) != 0))
        return PROTO_ENOMEM;
    return PROTO_OK;
}

int wire_pack_cstr(msgpack_packer *pk, const char *s)
{
    return wire_pack_str(pk, proto_str(s));
}

int wire_pack_open(msgpack_packer *pk, uint32_t npairs, const char *type)
{
    if (msgpack_pack_map(pk, npairs) != 0 || wire_pack_cstr(pk, "v") != 0 ||
        msgpack_pack_uint64(pk, PROTO_VERSION) != 0 || wire_pack_cstr(pk, "type") != 0 ||
        wire_pack_cstr(pk, type) != 0)
        return PROTO_ENOMEM;
    return PROTO_OK;
}

void wire_reason_fmt(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
