/* silences.c -- see silences.h. A few dozen at most: a flat array. */
#include "daemon/silences.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/xalloc.h"
#include "proto/proto.h"

void silences_init(silences_t *s)
{
    memset(s, 0, sizeof *s);
    s->next_id = 1;
}

static void item_free(silence_t *x)
{
    free(x->rule);
    free(x->cluster);
    free(x->firm);
    free(x->reason);
}

void silences_free(silences_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        item_free(&s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = s->cap = 0;
}

static void pack_str(msgpack_packer *pk, const char *str)
{
    size_t n = strlen(str);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, str, n);
}

static void pack_item(msgpack_packer *pk, const silence_t *x)
{
    msgpack_pack_array(pk, 7);
    msgpack_pack_uint64(pk, x->id);
    pack_str(pk, x->rule);
    pack_str(pk, x->cluster);
    if (x->firm)
        pack_str(pk, x->firm);
    else
        msgpack_pack_nil(pk);
    msgpack_pack_int64(pk, x->created_ms);
    msgpack_pack_int64(pk, x->until_ms);
    pack_str(pk, x->reason);
}

/* Journals [RECORD_SILENCE][item] (an add) or [RECORD_SILENCE][[id]] (a
 * removal). True if written, or if there is no journal. */
static bool journal(silences_t *s, const silence_t *add, uint64_t removed_id)
{
    if (!s->journal)
        return true;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    unsigned char tag = RECORD_SILENCE;
    msgpack_sbuffer_write(&buf, (const char *)&tag, 1);
    if (add) {
        pack_item(&pk, add);
    } else {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint64(&pk, removed_id);
    }
    bool ok = s->journal(s->journal_data, buf.data, buf.size) > 0;
    msgpack_sbuffer_destroy(&buf);
    return ok;
}

/* Inserts without journaling; id 0 takes the next one. */
static silence_t *insert(silences_t *s, uint64_t id, const char *rule, const char *cluster,
                         const char *firm, int64_t created_ms, int64_t until_ms, const char *reason)
{
    xgrow(&s->items, &s->cap, s->n + 1, sizeof *s->items);
    silence_t *x = &s->items[s->n++];
    x->id = id ? id : s->next_id;
    if (x->id >= s->next_id)
        s->next_id = x->id + 1;
    x->rule = xstrdup(rule);
    x->cluster = xstrdup(cluster);
    x->firm = firm && *firm ? xstrdup(firm) : NULL;
    x->created_ms = created_ms;
    x->until_ms = until_ms;
    x->reason = xstrdup(reason ? reason : "");
    return x;
}

static void drop_at(silences_t *s, size_t i)
{
    item_free(&s->items[i]);
    memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof *s->items);
    s->n--;
}

static ssize_t find(const silences_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].id == id)
            return (ssize_t)i;
    return -1;
}

uint64_t silences_add(silences_t *s, const char *rule, const char *cluster, const char *firm,
                      int64_t created_ms, int64_t until_ms, const char *reason)
{
    silence_t *x = insert(s, 0, rule, cluster, firm, created_ms, until_ms, reason);
    if (!journal(s, x, 0)) {
        /* not durable, so not added: the operator is told and retries */
        s->next_id--;
        drop_at(s, s->n - 1);
        return 0;
    }
    return x->id;
}

int silences_remove(silences_t *s, uint64_t id)
{
    ssize_t i = find(s, id);
    if (i < 0)
        return -1;
    if (!journal(s, NULL, id))
        return -2;
    drop_at(s, (size_t)i);
    return 0;
}

size_t silences_expire(silences_t *s, int64_t now_ms)
{
    size_t dropped = 0;
    for (size_t i = 0; i < s->n;) {
        if (s->items[i].until_ms <= now_ms) {
            /* dropped even if the journal fails: replayed, it is expired too */
            if (!journal(s, NULL, s->items[i].id))
                s->journal_failed++;
            drop_at(s, i);
            dropped++;
        } else {
            i++;
        }
    }
    return dropped;
}

bool silences_match(const silences_t *s, const char *rule, const char *cluster, const char *firm,
                    int64_t now_ms)
{
    for (size_t i = 0; i < s->n; i++) {
        const silence_t *x = &s->items[i];
        if (x->until_ms <= now_ms || strcmp(x->rule, rule) != 0 || strcmp(x->cluster, cluster) != 0)
            continue;
        if (!x->firm || (firm && strcmp(x->firm, firm) == 0))
            return true;
    }
    return false;
}

/* ---- durable state ----------------------------------------------------------- */

void silences_pack(const silences_t *s, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pack_str(pk, "next_id");
    msgpack_pack_uint64(pk, s->next_id);
    pack_str(pk, "items");
    msgpack_pack_array(pk, s->n);
    for (size_t i = 0; i < s->n; i++)
        pack_item(pk, &s->items[i]);
}

/* A non-empty string without NUL (ids are copied as C strings). */
static bool is_name(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 && o->via.str.size <= 255 &&
           !memchr(o->via.str.ptr, '\0', o->via.str.size);
}

static bool is_text(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR && !memchr(o->via.str.ptr, '\0', o->via.str.size);
}

/* Checks one packed silence; says what is wrong in why. */
static bool item_ok(const msgpack_object *e, char *why, size_t size)
{
    int64_t t;
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 7) {
        snprintf(why, size, "not an array of 7");
        return false;
    }
    const msgpack_object *v = e->via.array.ptr;
    const char *bad = v[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[0].via.u64 == 0 ||
                              v[0].via.u64 == UINT64_MAX
                          ? "id"
                      : !is_name(&v[1])                                    ? "rule"
                      : !is_name(&v[2])                                    ? "cluster"
                      : v[3].type != MSGPACK_OBJECT_NIL && !is_name(&v[3]) ? "firm"
                      : !proto_obj_i64(&v[4], &t)                          ? "created_ms"
                      : !proto_obj_i64(&v[5], &t)                          ? "until_ms"
                      : !is_text(&v[6])                                    ? "reason"
                                                                           : NULL;
    if (bad)
        snprintf(why, size, "%s: malformed", bad);
    return !bad;
}

/* Adds a checked item (replacing one of the same id). */
static void item_load(silences_t *s, const msgpack_object *e)
{
    const msgpack_object *v = e->via.array.ptr;
    ssize_t old = find(s, v[0].via.u64);
    if (old >= 0)
        drop_at(s, (size_t)old);
    char *rule = xstrndup(v[1].via.str.ptr, v[1].via.str.size);
    char *cl = xstrndup(v[2].via.str.ptr, v[2].via.str.size);
    char *firm =
        v[3].type == MSGPACK_OBJECT_STR ? xstrndup(v[3].via.str.ptr, v[3].via.str.size) : NULL;
    char *reason = xstrndup(v[6].via.str.ptr, v[6].via.str.size);
    int64_t created = 0, until = 0;
    proto_obj_i64(&v[4], &created);
    proto_obj_i64(&v[5], &until);
    insert(s, v[0].via.u64, rule, cl, firm, created, until, reason);
    free(rule);
    free(cl);
    free(firm);
    free(reason);
}

int silences_unpack(silences_t *s, const msgpack_object *o, bool apply, char *err, size_t errlen)
{
    const msgpack_object *items = o;
    uint64_t next_id = 0;
    if (o && o->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *n = NULL;
        items = NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            if (kv->key.via.str.size == 7 && memcmp(kv->key.via.str.ptr, "next_id", 7) == 0)
                n = &kv->val;
            else if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "items", 5) == 0)
                items = &kv->val;
        }
        if (!n || n->type != MSGPACK_OBJECT_POSITIVE_INTEGER || n->via.u64 == 0) {
            snprintf(err, errlen, "silences: next_id missing or not a positive integer");
            return -1;
        }
        next_id = n->via.u64;
    }
    if (!items || items->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "silences: missing, or not a map with an items array");
        return -1;
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        char why[64];
        if (!item_ok(&items->via.array.ptr[i], why, sizeof why)) {
            snprintf(err, errlen, "silences: entry %u: %s", i + 1, why);
            return -1;
        }
    }
    if (!apply)
        return 0;
    for (uint32_t i = 0; i < items->via.array.size; i++)
        item_load(s, &items->via.array.ptr[i]);
    if (next_id > s->next_id)
        s->next_id = next_id; /* ids of removed silences are not given again */
    return 0;
}

int silences_replay(silences_t *s, const void *payload, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = payload;
    if (len < 2 || p[0] != RECORD_SILENCE) {
        snprintf(err, errlen, "silence record: too short or not tagged 0x%02x", RECORD_SILENCE);
        return -1;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object o;
    size_t off = 0;
    int rc = -1;
    char why[64];
    if (msgpack_unpack((const char *)p + 1, len - 1, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS ||
        off != len - 1 || o.type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "silence record: not one MessagePack array");
    } else if (o.via.array.size == 1) {
        const msgpack_object *id = &o.via.array.ptr[0];
        if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || id->via.u64 == 0) {
            snprintf(err, errlen, "silence record: removal: id malformed");
        } else {
            ssize_t i = find(s, id->via.u64);
            if (i >= 0)
                drop_at(s, (size_t)i);
            if (id->via.u64 >= s->next_id && id->via.u64 < UINT64_MAX)
                s->next_id = id->via.u64 + 1;
            rc = 0;
        }
    } else if (!item_ok(&o, why, sizeof why)) {
        snprintf(err, errlen, "silence record: %s", why);
    } else {
        item_load(s, &o);
        rc = 0;
    }
    msgpack_zone_destroy(&zone);
    return rc;
}
