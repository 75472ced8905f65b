/* snapmerge.c -- see snapmerge.h. */
#include "agents/snapmerge.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -1)

static bool str_is(const msgpack_object *o, const char *s)
{
    size_t len = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
           memcmp(o->via.str.ptr, s, len) == 0;
}

static bool in_scope(const msgpack_object *cluster, const char *const *scope, size_t nscope)
{
    if (nscope == 0)
        return true;
    for (size_t i = 0; i < nscope; i++)
        if (str_is(cluster, scope[i]))
            return true;
    return false;
}

/* Checks one city's body; adds its counts to the totals. */
static int check_body(const msgpack_object *b, const char *city, const char *const *scope,
                      size_t nscope, size_t *nseqs, size_t *nalerts, size_t *nacks, char *err,
                      size_t errlen)
{
    const msgpack_object *seqs = proto_obj_get(b, "seqs");
    const msgpack_object *alerts = proto_obj_get(b, "alerts");
    const msgpack_object *acks = proto_obj_get(b, "acks");
    if (!seqs || seqs->type != MSGPACK_OBJECT_MAP)
        FAIL("city %s: its alerts snapshot has no seqs map", city);
    if (!alerts || alerts->type != MSGPACK_OBJECT_ARRAY)
        FAIL("city %s: its alerts snapshot has no alerts array", city);
    if (acks && acks->type != MSGPACK_OBJECT_ARRAY)
        FAIL("city %s: its alerts snapshot's acks is not an array", city);
    for (uint32_t i = 0; i < seqs->via.map.size; i++) {
        const msgpack_object_kv *kv = &seqs->via.map.ptr[i];
        uint64_t seq;
        if (kv->key.type != MSGPACK_OBJECT_STR || !proto_obj_u64(&kv->val, &seq))
            FAIL("city %s: its seqs entry %u is not cluster: uint", city, i);
        if (!in_scope(&kv->key, scope, nscope))
            FAIL("city %s sends cluster '%.*s', outside this relay's --clusters: its key at the "
                 "city must be narrowed to them",
                 city, (int)kv->key.via.str.size, kv->key.via.str.ptr);
    }
    for (uint32_t i = 0; i < alerts->via.array.size; i++) {
        msgpack_object_type t = alerts->via.array.ptr[i].type;
        if (t != MSGPACK_OBJECT_BIN && t != MSGPACK_OBJECT_NIL)
            FAIL("city %s: its alerts entry %u is neither bin nor nil", city, i);
    }
    *nseqs += seqs->via.map.size;
    *nalerts += alerts->via.array.size;
    *nacks += acks ? acks->via.array.size : 0;
    return 0;
}

/* Whether cluster k appears in the seqs of a city before city i (or earlier in
 * city i's own map): then two cities claim it. Quadratic, but a relay
 * follows a few cities of a few dozen clusters each. */
static int duplicate(const msgpack_object *bodies, size_t i, uint32_t k)
{
    const msgpack_object *seqs = proto_obj_get(&bodies[i], "seqs");
    const msgpack_object *key = &seqs->via.map.ptr[k].key;
    for (size_t j = 0; j <= i; j++) {
        const msgpack_object *other = proto_obj_get(&bodies[j], "seqs");
        uint32_t end = j == i ? k : other->via.map.size;
        for (uint32_t m = 0; m < end; m++) {
            const msgpack_object *o = &other->via.map.ptr[m].key;
            if (o->via.str.size == key->via.str.size &&
                memcmp(o->via.str.ptr, key->via.str.ptr, key->via.str.size) == 0)
                return (int)j;
        }
    }
    return -1;
}

int snapmerge_pack(const msgpack_object *bodies, const char *const *cities, size_t n,
                   const char *const *scope, size_t nscope, msgpack_packer *pk, char *err,
                   size_t errlen)
{
    size_t nseqs = 0, nalerts = 0, nacks = 0;
    for (size_t i = 0; i < n; i++)
        if (check_body(&bodies[i], cities[i], scope, nscope, &nseqs, &nalerts, &nacks, err,
                       errlen) != 0)
            return -1;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *seqs = proto_obj_get(&bodies[i], "seqs");
        for (uint32_t k = 0; k < seqs->via.map.size; k++) {
            int j = duplicate(bodies, i, k);
            if (j >= 0)
                FAIL("cluster '%.*s' is sent by city %s and by city %s: a relay needs cluster ids "
                     "unique across its cities",
                     (int)seqs->via.map.ptr[k].key.via.str.size,
                     seqs->via.map.ptr[k].key.via.str.ptr, cities[j], cities[i]);
        }
    }
    proto_ctl_reply_begin(pk, true, "");
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "acks", 4);
    msgpack_pack_array(pk, nacks);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *acks = proto_obj_get(&bodies[i], "acks");
        for (uint32_t k = 0; acks && k < acks->via.array.size; k++)
            msgpack_pack_object(pk, acks->via.array.ptr[k]);
    }
    msgpack_pack_str_with_body(pk, "seqs", 4);
    msgpack_pack_map(pk, nseqs);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *seqs = proto_obj_get(&bodies[i], "seqs");
        for (uint32_t k = 0; k < seqs->via.map.size; k++) {
            msgpack_pack_object(pk, seqs->via.map.ptr[k].key);
            msgpack_pack_object(pk, seqs->via.map.ptr[k].val);
        }
    }
    msgpack_pack_str_with_body(pk, "alerts", 6);
    msgpack_pack_array(pk, nalerts);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *alerts = proto_obj_get(&bodies[i], "alerts");
        for (uint32_t k = 0; k < alerts->via.array.size; k++)
            msgpack_pack_object(pk, alerts->via.array.ptr[k]);
    }
    return 0;
}
