/*
 * cursor.h -- a bounded MessagePack reader for hostile bytes (internal to proto/).
 *
 * A cursor walks a byte range [p, end) one MessagePack object at a time. Every
 * read checks what is left before it touches a byte, nothing is allocated, and
 * skipping an unknown value is iterative and limited to PROTO_MAX_DEPTH levels,
 * so a decoder built on it costs at most O(bytes) whatever the input claims.
 *
 * Every function returns PROTO_OK or a negative proto_err_t and, on failure,
 * leaves a short English reason in c->why (without the field name: the decoder
 * knows which field it was reading and prefixes it). After a failure the cursor
 * position is unspecified; decoders stop at the first error.
 */
#ifndef CLUSTERMON_PROTO_CURSOR_H
#define CLUSTERMON_PROTO_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define CURSOR_WHYLEN 128

typedef struct {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
    char why[CURSOR_WHYLEN];
} cursor_t;

/* Starts a cursor over buf[0..len). buf is borrowed for the cursor's life. */
void cursor_init(cursor_t *c, const void *buf, size_t len);

/* Returns the number of bytes not yet read. */
static inline size_t cursor_left(const cursor_t *c)
{
    return (size_t)(c->end - c->p);
}

/* Prepends prefix (verbatim, e.g. "seq: ") to c->why, truncating its end if needed. */
void cursor_why_prefix(cursor_t *c, const char *prefix);

/* Reads a map header (fixmap, map16, map32); *ret_n is the number of pairs. */
int cursor_read_map(cursor_t *c, uint32_t *ret_n);
/*
 * Reads an array header; *ret_n is the element count as claimed by the
 * header: the caller bounds it before acting on it, and must never allocate
 * from it.
 */
int cursor_read_array(cursor_t *c, uint32_t *ret_n);
/* Reads a str (never bin); ret->ptr borrows from the buffer. No UTF-8 check. */
int cursor_read_str(cursor_t *c, proto_str_t *ret);
/* Reads any integer format holding a value >= 0 (a negative one is PROTO_EVALUE). */
int cursor_read_uint(cursor_t *c, uint64_t *ret);
/* Reads any integer format holding a value in int64_t's range. */
int cursor_read_int(cursor_t *c, int64_t *ret);
/* Reads float64, float32 or any integer format as a double (NaN/Inf pass through). */
int cursor_read_double(cursor_t *c, double *ret);
int cursor_read_bool(cursor_t *c, bool *ret);
/* What the next object is, from its first byte alone. */
typedef enum {
    CURSOR_END = 0, /* no bytes left */
    CURSOR_NIL,
    CURSOR_BOOL,
    CURSOR_INT,
    CURSOR_FLOAT,
    CURSOR_STR,
    CURSOR_BIN,
    CURSOR_EXT,
    CURSOR_ARRAY,
    CURSOR_MAP,
    CURSOR_INVALID, /* 0xc1 */
} cursor_kind_t;

cursor_kind_t cursor_peek_kind(const cursor_t *c);
/* Returns a name for a kind ("int", "str", ...), for reasons. */
const char *cursor_kind_name(cursor_kind_t k);

/* Returns true if the next object is nil (without consuming it; false at the end). */
bool cursor_peek_nil(const cursor_t *c);
int cursor_read_nil(cursor_t *c);
/*
 * Skips one object of any type, including ext. depth is the nesting level of
 * the container the object sits in (1 for a value of the top-level map); a
 * container nested deeper than PROTO_MAX_DEPTH in all is PROTO_ELIMIT.
 */
int cursor_skip(cursor_t *c, unsigned depth);

#endif
