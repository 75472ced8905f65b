/*
 * wire.h -- what every message of the protocol shares (internal to proto/).
 *
 * The envelope ({"v", "type", ...} with "v" first and "type" second), the key
 * loop with duplicate and missing-key detection, the value checks that
 * encoders and decoders must agree on (ids, text, sample values, timestamps),
 * and the reason formatting. Keeping these in one place is what guarantees
 * that an encoder cannot write something the matching decoder refuses.
 */
#ifndef CLUSTERMON_PROTO_WIRE_H
#define CLUSTERMON_PROTO_WIRE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/cursor.h"
#include "proto/proto.h"

/* Key 0 and 1 of every decoder's key table; the envelope reads them. */
#define WIRE_KEY_V 0
#define WIRE_KEY_TYPE 1
#define WIRE_ENVELOPE_SEEN (1u << WIRE_KEY_V | 1u << WIRE_KEY_TYPE)

/* An empty proto_str_t that is safe to print (ptr is never NULL). */
extern const proto_str_t wire_empty;

/* ---- checks shared by encoders and decoders (reason into why) --------- */

/*
 * Checks a string: byte length in [min, max] (PROTO_EVALUE below, PROTO_ELIMIT
 * above), then valid UTF-8 without NUL (PROTO_EVALUE).
 */
int wire_check_str(proto_str_t s, uint32_t min, uint32_t max, char *why, size_t whylen);
int wire_check_id(proto_str_t s, char *why, size_t whylen);
int wire_check_text(proto_str_t s, char *why, size_t whylen);
/* A sample value: finite and |v| <= PROTO_MAX_ABS_VALUE. PROTO_EVALUE. */
int wire_check_value(double v, char *why, size_t whylen);
/* A finite double (alerts). PROTO_EVALUE. */
int wire_check_finite(double v, char *why, size_t whylen);
/* A timestamp in [0, PROTO_MAX_TS_MS). PROTO_EVALUE. */
int wire_check_ts(int64_t ts, char *why, size_t whylen);

/* ---- decoding ---------------------------------------------------------- */

/*
 * Checks the frame size, reads the map header, "v" (first key, in
 * [PROTO_VERSION_MIN, PROTO_VERSION]) and "type" (second key, equal to type).
 * *ret_npairs is the map's pair count, including the two just read.
 */
int wire_open(cursor_t *c, const char *type, uint32_t *ret_npairs);
/* The same for a message of one of two types (a batch or a check): *ret_second
 * is true for type2. */
int wire_open2(cursor_t *c, const char *type, const char *type2, uint32_t *ret_npairs,
               bool *ret_second);
/*
 * Reads the next key. A known key (index >= 2 in keys[0..nkeys)) is marked in
 * *seen and returned in *ret_key, its value left to the caller; a known key
 * already seen is PROTO_EMALFORMED. An unknown key's value is skipped and
 * *ret_key is -1.
 */
int wire_next_key(cursor_t *c, const char *const *keys, unsigned nkeys, uint32_t *seen,
                  int *ret_key);
/* Checks that every key in `required` was seen and that no bytes follow the map. */
int wire_close(cursor_t *c, const char *const *keys, unsigned nkeys, uint32_t seen,
               uint32_t required);

int wire_read_id(cursor_t *c, proto_str_t *ret);
int wire_read_text(cursor_t *c, proto_str_t *ret);
/* An id or nil (-> wire_empty). */
int wire_read_opt_id(cursor_t *c, proto_str_t *ret);
/* A sequence number >= 1. */
int wire_read_seq(cursor_t *c, uint64_t *ret);
/* An unsigned integer <= max. */
int wire_read_uint_max(cursor_t *c, uint64_t max, uint64_t *ret);
/* A timestamp, see wire_check_ts(). */
int wire_read_ts(cursor_t *c, int64_t *ret);

/*
 * Writes the decoder's reason: "<ctx>: <field>: <why>", leaving out ctx or
 * field when NULL. err may be NULL (errlen 0).
 */
void wire_reason(char *err, size_t errlen, const char *ctx, const char *field, const char *why);
/*
 * Quotes an untrusted string for a reason: "\"...\"" when it is short
 * printable ASCII, else "(N bytes)". Reasons travel back to peers inside acks,
 * so they must stay valid UTF-8 whatever the input was. Returns buf.
 */
const char *wire_quote(proto_str_t s, char *buf, size_t bufsize);

/* ---- encoding (return PROTO_OK or PROTO_ENOMEM) ------------------------ */

int wire_pack_str(msgpack_packer *pk, proto_str_t s);
int wire_pack_cstr(msgpack_packer *pk, const char *s);
/* Writes the map header for npairs pairs (including v and type), "v" and "type". */
int wire_pack_open(msgpack_packer *pk, uint32_t npairs, const char *type);
/* printf into an encoder's reason buffer; err may be NULL (errlen 0). */
void wire_reason_fmt(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
