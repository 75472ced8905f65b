/*
 * alertjson.h -- alerts as JSON objects, for clustermon-sub and clustermonctl.
 *
 * One place decides how an alert looks to scripts: the keys, their order,
 * null for absent optional fields, and times both as ISO 8601 UTC strings
 * with milliseconds and as Unix milliseconds:
 *
 *   {"seq":7,"id":"...","rule":"...","severity":"warning","state":"firing",
 *    "cluster":"...","chain":null,"firm":"...","metric":"...","observed":1.5,
 *    "expected":1.0,"summary":"...","since":"2022-07-01T01:00:00.000Z",
 *    "ts":"2022-07-01T01:00:00.000Z","since_ms":1656637200000,
 *    "ts_ms":1656637200000}
 *
 * Strings that are not valid UTF-8 are repaired with U+FFFD so the output is
 * always valid JSON; non-finite numbers become null.
 */
#ifndef CLUSTERMON_AGENTS_ALERTJSON_H
#define CLUSTERMON_AGENTS_ALERTJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/proto.h"

/*
 * Flags for json_dumps()/json_dumpf() of these objects: one line, and 15
 * significant digits so 0.1 prints as 0.1 rather than 0.10000000000000001.
 */
#define ALERTJSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Bytes for alertjson_time_format() output, NUL included. */
#define ALERTJSON_TIME_STRLEN 32

/*
 * Returns a new JSON object for the alert (keys as above, in that order).
 * The alert's strings are copied: it may be freed afterwards. Caller owns
 * the result (json_decref()). Returns NULL only if jansson runs out of
 * memory. Pure; callable from any thread.
 */
json_t *alertjson_from_alert(const proto_alert_t *a);

/*
 * Writes ms (Unix time in milliseconds) as "YYYY-MM-DDThh:mm:ss.mmmZ" into
 * buf. Returns the length, or -1 if buf is too small (ALERTJSON_TIME_STRLEN
 * always suffices) or the time cannot be represented.
 */
int alertjson_time_format(int64_t ms, char *buf, size_t bufsize);

#endif
