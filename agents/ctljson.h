/*
 * ctljson.h -- a control reply's body (msgpack) as JSON, with amounts exact:
 * every map key ending in "_milli" loses the suffix and its integer value
 * becomes a decimal string with the three decimals the daemon stores
 * ("revenue_milli": 1222598656560 -> "revenue": "1222598656.560"), so no
 * reader ever sees a binary float of money. Other numbers stay numbers.
 *
 * The dashboard's JSON API (daemon/webapi.c) answers with it; clustermonctl
 * --json can use the same to give scripts the same figures.
 */
#ifndef CLUSTERMON_AGENTS_CTLJSON_H
#define CLUSTERMON_AGENTS_CTLJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

/* Bytes for ctljson_milli_format() output, NUL included. */
#define CTLJSON_MILLI_STRLEN 32

/* Writes milli-units as an exact decimal string, "-12.345". Returns buf. */
char *ctljson_milli_format(int64_t milli, char *buf, size_t size);

/* Returns a new JSON value for o (nesting deeper than 32 becomes null).
 * Caller owns the result (json_decref). Pure. */
json_t *ctljson_from_msgpack(const msgpack_object *o);

#endif
