/*
 * alertjson.c -- alerts as JSON objects (see alertjson.h).
 *
 * Builds the object with jansson, whose objects keep insertion order, so
 * the key order written here is the order scripts see. Every string from
 * the wire goes through json_str(), which never fails on bad UTF-8.
 */
#include "agents/alertjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "agents/utf8.h"

/* A JSON string for a borrowed wire string; invalid UTF-8 is repaired. */
static json_t *json_str(proto_str_t s)
{
    if (utf8_valid(s.ptr, s.len))
        return json_stringn(s.ptr, s.len);
    char *fixed = malloc(UTF8_SANITIZED_MAX((size_t)s.len) + 1);
    if (fixed == NULL)
        return NULL;
    size_t n = utf8_sanitize(s.ptr, s.len, fixed);
    json_t *j = json_stringn(fixed, n);
    free(fixed);
    return j;
}

/* An optional string: null when absent (empty). */
static json_t *json_opt_str(proto_str_t s)
{
    return s.len == 0 ? json_null() : json_str(s);
}

static json_t *json_name(const char *name)
{
    return name != NULL ? json_string(name) : json_null();
}

static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *json_time(int64_t ms)
{
    char buf[ALERTJSON_TIME_STRLEN];

    if (alertjson_time_format(ms, buf, sizeof buf) < 0)
        return json_null();
    return json_string(buf);
}

int alertjson_time_format(int64_t ms, char *buf, size_t bufsize)
{
    /* Floor division, so times before 1970 keep a positive millisecond part. */
    int64_t sec = ms / 1000, frac = ms % 1000;
    struct tm tm;

    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    int n = snprintf(buf, bufsize, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    if (n < 0 || (size_t)n >= bufsize)
        return -1;
    return n;
}

json_t *alertjson_from_alert(const proto_alert_t *a)
{
    json_t *o = json_object();
    const char *sev = a->severity < PROTO_SEV_COUNT ? proto_severity_name(a->severity) : NULL;
    const char *state =
        a->state < PROTO_ALERT_STATE_COUNT ? proto_alert_state_name(a->state) : NULL;
    struct {
        const char *key;
        json_t *value;
    } fields[] = {
        {"seq", json_integer((json_int_t)a->seq)},
        {"id", json_str(a->id)},
        {"rule", json_str(a->rule)},
        {"severity", json_name(sev)},
        {"state", json_name(state)},
        {"cluster", json_str(a->cluster)},
        {"chain", json_opt_str(a->chain)},
        {"firm", json_opt_str(a->firm)},
        {"metric", json_str(a->metric)},
        {"observed", json_num(a->observed)},
        {"expected", json_num(a->expected)},
        {"summary", json_str(a->summary)},
        {"since", json_time(a->since_ms)},
        {"ts", json_time(a->ts_ms)},
        {"since_ms", json_integer(a->since_ms)},
        {"ts_ms", json_integer(a->ts_ms)},
    };
    bool ok = o != NULL;

    /* json_object_set_new() steals the value even when it fails. */
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].value == NULL)
            ok = false;
        else if (!ok)
            json_decref(fields[i].value);
        else if (json_object_set_new(o, fields[i].key, fields[i].value) != 0)
            ok = false;
    }
    /* optional fields, present only when set */
    if (ok && a->reminder)
        ok = json_object_set_new(o, "reminder", json_true()) == 0;
    if (ok && a->count)
        ok = json_object_set_new(o, "count", json_integer(a->count)) == 0;
    if (ok && a->n)
        ok = json_object_set_new(o, "n", json_integer((json_int_t)a->n)) == 0;
    if (ok && a->rn)
        ok = json_object_set_new(o, "rn", json_integer(a->rn)) == 0;
    if (ok && a->ndetails) {
        json_t *d = json_object();
        ok = d != NULL && json_object_set_new(o, "details", d) == 0;
        for (uint32_t i = 0; ok && i < a->ndetails && i < PROTO_MAX_DETAILS; i++) {
            const proto_detail_t *e = &a->details[i];
            char key[PROTO_MAX_ID_LEN + 1];
            snprintf(key, sizeof key, "%.*s", (int)e->key.len, e->key.ptr);
            json_t *v = e->is_str ? json_str(e->str) : json_num(e->num);
            ok = v != NULL && json_object_set_new(d, key, v) == 0;
        }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
