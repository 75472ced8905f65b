/*
 * cursor.c -- the bounded MessagePack reader every proto/ decoder is built on.
 *
 * One function, read_head(), understands the MessagePack type bytes: it
 * consumes a marker and its length or immediate value and says what kind of
 * object follows. For str, bin and ext it checks that the payload is really
 * there but leaves it unread. The typed readers below accept only their kinds
 * and turn everything else into "expected X, got Y". Big-endian fields are
 * assembled with shifts (no unaligned loads), and signed values are sign
 * extended arithmetically so that no conversion is implementation-defined.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/cursor.h"

typedef enum {
    MP_NIL,
    MP_BOOL,
    MP_UINT,  /* any integer format holding a value >= 0 */
    MP_NEG,   /* any integer format holding a value < 0 */
    MP_FLOAT, /* float32 or float64 */
    MP_STR,
    MP_BIN,
    MP_EXT,
    MP_ARRAY,
    MP_MAP,
} mp_kind_t;

static const char *const kind_names[] = {
    [MP_NIL] = "nil",     [MP_BOOL] = "bool", [MP_UINT] = "int", [MP_NEG] = "int",
    [MP_FLOAT] = "float", [MP_STR] = "str",   [MP_BIN] = "bin",  [MP_EXT] = "ext",
    [MP_ARRAY] = "array", [MP_MAP] = "map",
};

typedef struct {
    mp_kind_t kind;
    uint64_t u; /* MP_UINT value; MP_BOOL 0/1; length or count for str/bin/ext/array/map */
    int64_t i;  /* MP_NEG value */
    double d;   /* MP_FLOAT value */
} mp_head_t;

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Interprets the low `bits` bits of u as two's complement, without relying on
 * implementation-defined unsigned-to-signed conversion. */
static int64_t sign_extend(uint64_t u, unsigned bits)
{
    uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;

    u &= mask;
    if (!(u >> (bits - 1)))
        return (int64_t)u;
    /* negative: -(~u & mask) - 1 is in [-2^(bits-1), -1] and never overflows */
    return -(int64_t)(~u & mask) - 1;
}

static int fail(cursor_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(cursor_t *c, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return code;
}

static int truncated(cursor_t *c)
{
    return fail(c, PROTO_EMALFORMED, "truncated");
}

void cursor_why_prefix(cursor_t *c, const char *prefix)
{
    size_t plen = strlen(prefix), wlen = strnlen(c->why, sizeof c->why - 1);

    if (plen > sizeof c->why - 1)
        plen = sizeof c->why - 1;
    if (plen + wlen > sizeof c->why - 1)
        wlen = sizeof c->why - 1 - plen;
    memmove(c->why + plen, c->why, wlen);
    memcpy(c->why, prefix, plen);
    c->why[plen + wlen] = '\0';
}

void cursor_init(cursor_t *c, const void *buf, size_t len)
{
    /* (NULL, 0) is an empty message; pointer arithmetic on NULL is not defined */
    c->p = buf && len ? (const uint8_t *)buf : (const uint8_t *)"";
    c->end = buf && len ? c->p + len : c->p;
    c->why[0] = '\0';
}

/* Consumes n bytes of fixed-size header field and returns a pointer to them,
 * or NULL if fewer are left. */
static const uint8_t *take(cursor_t *c, size_t n)
{
    const uint8_t *q = c->p;

    if (cursor_left(c) < n)
        return NULL;
    c->p += n;
    return q;
}

/* Reads one type marker with its length/value fields; see the file comment. */
static int read_head(cursor_t *c, mp_head_t *h)
{
    const uint8_t *q;
    size_t lenbytes = 0;

    if (c->p >= c->end)
        return truncated(c);
    uint8_t m = *c->p++;
    h->u = 0;

    if (m <= 0x7f) {
        h->kind = MP_UINT;
        h->u = m;
        return PROTO_OK;
    }
    if (m >= 0xe0) {
        h->kind = MP_NEG;
        h->i = sign_extend(m, 8);
        return PROTO_OK;
    }
    if (m <= 0x8f) {
        h->kind = MP_MAP;
        h->u = m & 0x0f;
        return PROTO_OK;
    }
    if (m <= 0x9f) {
        h->kind = MP_ARRAY;
        h->u = m & 0x0f;
        return PROTO_OK;
    }
    if (m <= 0xbf) {
        h->kind = MP_STR;
        h->u = m & 0x1f;
        goto payload;
    }

    switch (m) {
    case 0xc0: h->kind = MP_NIL; return PROTO_OK;
    case 0xc2:
    case 0xc3:
        h->kind = MP_BOOL;
        h->u = m & 1;
        return PROTO_OK;
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        h->kind = MP_BIN;
        lenbytes = (size_t)1 << (m - 0xc4);
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, then a type byte */
        h->kind = MP_EXT;
        lenbytes = (size_t)1 << (m - 0xc7);
        break;
    case 0xca:
        if (!(q = take(c, 4)))
            return truncated(c);
        {
            uint32_t u = be32(q);
            float f;

            memcpy(&f, &u, sizeof f);
            h->kind = MP_FLOAT;
            h->d = f;
        }
        return PROTO_OK;
    case 0xcb:
        if (!(q = take(c, 8)))
            return truncated(c);
        {
            uint64_t u = be64(q);

            memcpy(&h->d, &u, sizeof h->d);
            h->kind = MP_FLOAT;
        }
        return PROTO_OK;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: { /* uint 8/16/32/64 */
        size_t n = (size_t)1 << (m - 0xcc);

        if (!(q = take(c, n)))
            return truncated(c);
        h->kind = MP_UINT;
        h->u = n == 1 ? q[0] : n == 2 ? be16(q) : n == 4 ? be32(q) : be64(q);
        return PROTO_OK;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: { /* int 8/16/32/64 */
        size_t n = (size_t)1 << (m - 0xd0);

        if (!(q = take(c, n)))
            return truncated(c);
        uint64_t u = n == 1 ? q[0] : n == 2 ? be16(q) : n == 4 ? be32(q) : be64(q);
        h->i = sign_extend(u, (unsigned)n * 8);
        if (h->i >= 0) {
            h->kind = MP_UINT;
            h->u = (uint64_t)h->i;
        } else {
            h->kind = MP_NEG;
        }
        return PROTO_OK;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:           /* fixext 1..16 */
        if (!take(c, 1)) /* the ext type byte */
            return truncated(c);
        h->kind = MP_EXT;
        h->u = (uint64_t)1 << (m - 0xd4);
        goto payload;
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        h->kind = MP_STR;
        lenbytes = (size_t)1 << (m - 0xd9);
        break;
    case 0xdc:
    case 0xdd: /* array 16/32 */
        h->kind = MP_ARRAY;
        lenbytes = (size_t)2 << (m - 0xdc);
        break;
    case 0xde:
    case 0xdf: /* map 16/32 */
        h->kind = MP_MAP;
        lenbytes = (size_t)2 << (m - 0xde);
        break;
    default: /* 0xc1 is never used */
        return fail(c, PROTO_EMALFORMED, "invalid MessagePack byte 0x%02x", m);
    }

    if (!(q = take(c, lenbytes)))
        return truncated(c);
    h->u = lenbytes == 1 ? q[0] : lenbytes == 2 ? be16(q) : be32(q);
    if (h->kind == MP_ARRAY || h->kind == MP_MAP)
        return PROTO_OK;
    if (h->kind == MP_EXT && !take(c, 1))
        return truncated(c);
payload:
    if (h->u > cursor_left(c))
        return fail(c, PROTO_EMALFORMED, "truncated: %s of %llu bytes, %zu left",
                    kind_names[h->kind], (unsigned long long)h->u, cursor_left(c));
    return PROTO_OK;
}

static int wrong_kind(cursor_t *c, const char *want, const mp_head_t *h)
{
    return fail(c, PROTO_EMALFORMED, "expected %s, got %s", want, kind_names[h->kind]);
}

int cursor_read_map(cursor_t *c, uint32_t *ret_n)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind != MP_MAP)
        return wrong_kind(c, "map", &h);
    *ret_n = (uint32_t)h.u;
    return PROTO_OK;
}

int cursor_read_array(cursor_t *c, uint32_t *ret_n)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind != MP_ARRAY)
        return wrong_kind(c, "array", &h);
    *ret_n = (uint32_t)h.u;
    return PROTO_OK;
}

int cursor_read_str(cursor_t *c, proto_str_t *ret)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind != MP_STR)
        return wrong_kind(c, "str", &h);
    ret->ptr = (const char *)c->p;
    ret->len = (uint32_t)h.u;
    c->p += h.u;
    return PROTO_OK;
}

int cursor_read_uint(cursor_t *c, uint64_t *ret)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind == MP_NEG)
        return fail(c, PROTO_EVALUE, "negative integer %lld", (long long)h.i);
    if (h.kind != MP_UINT)
        return wrong_kind(c, "int", &h);
    *ret = h.u;
    return PROTO_OK;
}

int cursor_read_int(cursor_t *c, int64_t *ret)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind == MP_NEG) {
        *ret = h.i;
        return PROTO_OK;
    }
    if (h.kind != MP_UINT)
        return wrong_kind(c, "int", &h);
    if (h.u > INT64_MAX)
        return fail(c, PROTO_EVALUE, "integer %llu out of range", (unsigned long long)h.u);
    *ret = (int64_t)h.u;
    return PROTO_OK;
}

int cursor_read_double(cursor_t *c, double *ret)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    switch (h.kind) {
    case MP_FLOAT: *ret = h.d; return PROTO_OK;
    case MP_UINT: *ret = (double)h.u; return PROTO_OK;
    case MP_NEG: *ret = (double)h.i; return PROTO_OK;
    default: return wrong_kind(c, "float", &h);
    }
}

int cursor_read_bool(cursor_t *c, bool *ret)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind != MP_BOOL)
        return wrong_kind(c, "bool", &h);
    *ret = h.u != 0;
    return PROTO_OK;
}

cursor_kind_t cursor_peek_kind(const cursor_t *c)
{
    if (c->p >= c->end)
        return CURSOR_END;
    uint8_t m = *c->p;
    if (m <= 0x7f || m >= 0xe0 || (m >= 0xcc && m <= 0xd3))
        return CURSOR_INT;
    if (m <= 0x8f || m == 0xde || m == 0xdf)
        return CURSOR_MAP;
    if (m <= 0x9f || m == 0xdc || m == 0xdd)
        return CURSOR_ARRAY;
    if (m <= 0xbf || (m >= 0xd9 && m <= 0xdb))
        return CURSOR_STR;
    switch (m) {
    case 0xc0: return CURSOR_NIL;
    case 0xc2:
    case 0xc3: return CURSOR_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6: return CURSOR_BIN;
    case 0xca:
    case 0xcb: return CURSOR_FLOAT;
    case 0xc1: return CURSOR_INVALID;
    default: /* 0xc7..0xc9, 0xd4..0xd8 */ return CURSOR_EXT;
    }
}

const char *cursor_kind_name(cursor_kind_t k)
{
    static const char *const names[] = {
        [CURSOR_END] = "end of message",
        [CURSOR_NIL] = "nil",
        [CURSOR_BOOL] = "bool",
        [CURSOR_INT] = "int",
        [CURSOR_FLOAT] = "float",
        [CURSOR_STR] = "str",
        [CURSOR_BIN] = "bin",
        [CURSOR_EXT] = "ext",
        [CURSOR_ARRAY] = "array",
        [CURSOR_MAP] = "map",
        [CURSOR_INVALID] = "invalid byte 0xc1",
    };

    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

bool cursor_peek_nil(const cursor_t *c)
{
    return c->p < c->end && *c->p == 0xc0;
}

int cursor_read_nil(cursor_t *c)
{
    mp_head_t h;
    int rc;

    if ((rc = read_head(c, &h)) < 0)
        return rc;
    if (h.kind != MP_NIL)
        return wrong_kind(c, "nil", &h);
    return PROTO_OK;
}

int cursor_skip(cursor_t *c, unsigned depth)
{
    /* left[k]: objects still to skip at nesting level k below the start */
    uint64_t left[PROTO_MAX_DEPTH + 1];
    unsigned level = 0;
    mp_head_t h;
    int rc;

    left[0] = 1;
    for (;;) {
        while (left[level] == 0) {
            if (level == 0)
                return PROTO_OK;
            level--;
        }
        left[level]--;
        if ((rc = read_head(c, &h)) < 0)
            return rc;
        switch (h.kind) {
        case MP_STR:
        case MP_BIN:
        case MP_EXT:
            c->p += h.u; /* read_head checked it is there */
            break;
        case MP_ARRAY:
        case MP_MAP: {
            uint64_t n = h.kind == MP_MAP ? 2 * h.u : h.u;

            if (depth + level + 1 > PROTO_MAX_DEPTH)
                return fail(c, PROTO_ELIMIT, "nesting deeper than %d", PROTO_MAX_DEPTH);
            /* every object takes at least one byte: refuse a count that cannot be there */
            if (n > cursor_left(c))
                return fail(c, PROTO_EMALFORMED, "truncated: %s of %llu elements, %zu bytes left",
                            kind_names[h.kind], (unsigned long long)h.u, cursor_left(c));
            left[++level] = n;
            break;
        }
        default: break;
        }
    }
}
