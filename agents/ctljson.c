/* ctljson.c -- see ctljson.h. */
#include "agents/ctljson.h"

#include <stdio.h>
#include <string.h>

char *ctljson_milli_format(int64_t milli, char *buf, size_t size)
{
    /* through uint64_t: the magnitude of INT64_MIN fits there */
    uint64_t mag = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    snprintf(buf, size, "%s%llu.%03llu", milli < 0 ? "-" : "", (unsigned long long)(mag / 1000),
             (unsigned long long)(mag % 1000));
    return buf;
}

static json_t *convert(const msgpack_object *o, int depth)
{
    if (depth > 32)
        return json_null();
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? json_real((double)o->via.u64)
                                                : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, convert(&o->via.array.ptr[i], depth + 1));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
            size_t kl = strlen(key);
            const msgpack_object *v = &kv->val;
            if (kl > 6 && strcmp(key + kl - 6, "_milli") == 0) {
                key[kl - 6] = '\0';
                char buf[CTLJSON_MILLI_STRLEN];
                if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
                    json_object_set_new(
                        m, key,
                        json_string(ctljson_milli_format((int64_t)v->via.u64, buf, sizeof buf)));
                    continue;
                }
                if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                    json_object_set_new(
                        m, key, json_string(ctljson_milli_format(v->via.i64, buf, sizeof buf)));
                    continue;
                }
            }
            json_object_set_new(m, key, convert(v, depth + 1));
        }
        return m;
    }
    default: return json_null();
    }
}

json_t *ctljson_from_msgpack(const msgpack_object *o)
{
    return convert(o, 0);
}
