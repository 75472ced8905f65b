/* streams.c -- see streams.h. */
#include "daemon/streams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/xalloc.h"
#include "proto/hash.h"

#define W PROTO_MAX_WINDOW

static uint64_t hash_key(const char *key, proto_str_t agent)
{
    uint64_t h = hash_fnv1a_str(key);
    h = hash_fnv1a_update(h, "\xff", 1); /* a separator no id contains */
    return hash_fnv1a_update(h, agent.ptr, agent.len);
}

void streams_init(streams_t *t, int64_t lease_ms)
{
    memset(t, 0, sizeof *t);
    t->mask = 63;
    t->slots = xcalloc(t->mask + 1, sizeof *t->slots);
    t->lease_ms = lease_ms;
}

/* Empties a ring slot, freeing its refusal list. */
static void outcome_clear(stream_outcome_t *o)
{
    free(o->refused);
    *o = (stream_outcome_t){0};
}

static void ring_clear(stream_t *s)
{
    for (int k = 0; s->ring && k < W; k++)
        outcome_clear(&s->ring[k]);
}

void streams_free(streams_t *t)
{
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        free(t->slots[i].key);
        free(t->slots[i].agent);
        ring_clear(&t->slots[i]);
        free(t->slots[i].ring);
    }
    free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

static void grow(streams_t *t)
{
    size_t nmask = t->mask * 2 + 1;
    stream_t *ns = xcalloc(nmask + 1, sizeof *ns);
    for (size_t i = 0; i <= t->mask; i++) {
        stream_t *s = &t->slots[i];
        if (!s->key)
            continue;
        size_t j = hash_key(s->key, proto_str(s->agent)) & nmask;
        while (ns[j].key)
            j = (j + 1) & nmask;
        ns[j] = *s;
    }
    free(t->slots);
    t->slots = ns;
    t->mask = nmask;
}

stream_t *streams_get(streams_t *t, const char *key, proto_str_t agent)
{
    if (t->count * 2 >= t->mask + 1) {
        if (t->mask + 1 >= STREAMS_MAX * 2)
            goto find_only;
        grow(t);
    }
    for (size_t i = hash_key(key, agent) & t->mask;; i = (i + 1) & t->mask) {
        stream_t *s = &t->slots[i];
        if (!s->key) {
            s->key = xstrdup(key);
            s->agent = xstrndup(agent.ptr, agent.len);
            t->count++;
            return s;
        }
        if (strcmp(s->key, key) == 0 && proto_str_eq(agent, s->agent))
            return s;
    }
find_only:
    /* full: an existing stream is still found, a new one is refused */
    for (size_t i = hash_key(key, agent) & t->mask;; i = (i + 1) & t->mask) {
        stream_t *s = &t->slots[i];
        if (!s->key)
            return NULL;
        if (strcmp(s->key, key) == 0 && proto_str_eq(agent, s->agent))
            return s;
    }
}

stream_verdict_t streams_check(const streams_t *t, const stream_t *s, uint64_t epoch, uint64_t seq,
                               int64_t now, const stream_outcome_t **ret_outcome)
{
    *ret_outcome = NULL;
    if (seq == 0)
        return STREAM_GAP; /* never valid (the decoder refuses it): no slot to look at */
    if (s->epoch == 0)
        return seq == 1 ? STREAM_TAKE : STREAM_GAP; /* a free id: streams start at 1 */
    if (epoch == s->epoch) {
        if (seq == s->next)
            return STREAM_TAKE;
        if (seq > s->next)
            return STREAM_GAP;
        if (s->next - seq > W)
            return STREAM_FORGOTTEN;
        *ret_outcome = &s->ring[seq % W];
        return STREAM_DUPLICATE;
    }
    /* another epoch on an owned id */
    if (now - s->last_ms < t->lease_ms)
        return STREAM_CONFLICT;
    if (epoch == s->prev_epoch)
        return STREAM_SUPERSEDED;
    if (seq == 1)
        return STREAM_TAKE;
    /* An epoch the daemon has never settled anything of: its first batch
     * may still be on its way (rate limited, resent), so ask for seq 1. An
     * epoch it knew and then handed over is fenced for good. */
    return STREAM_GAP;
}

void streams_settle(streams_t *t, stream_t *s, uint64_t epoch, uint64_t seq, uint8_t status,
                    uint32_t accepted, int64_t now, int64_t wall_ms)
{
    streams_settle_refused(t, s, epoch, seq, status, accepted, NULL, 0, now, wall_ms);
}

void streams_settle_refused(streams_t *t, stream_t *s, uint64_t epoch, uint64_t seq, uint8_t status,
                            uint32_t accepted, const uint32_t *refused, uint32_t nrefused,
                            int64_t now, int64_t wall_ms)
{
    (void)t;
    if (!s->ring)
        s->ring = xcalloc(W, sizeof *s->ring);
    if (epoch != s->epoch) {
        s->prev_epoch = s->epoch;
        s->epoch = epoch;
        s->since_wall_ms = wall_ms;
        ring_clear(s);
    }
    s->next = seq + 1;
    stream_outcome_t *o = &s->ring[seq % W];
    outcome_clear(o);
    *o = (stream_outcome_t){.status = status, .accepted = accepted, .nrefused = nrefused};
    if (nrefused) {
        o->refused = xmalloc(nrefused * sizeof *o->refused);
        memcpy(o->refused, refused, nrefused * sizeof *o->refused);
    }
    s->last_ms = now;
}

void streams_touch(stream_t *s, int64_t now)
{
    s->last_ms = now;
}

void streams_all_live(streams_t *t, int64_t now)
{
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i].key)
            t->slots[i].last_ms = now;
}

/* ---- snapshot ------------------------------------------------------------ */

/*
 * Each stream is [key, agent, epoch, next, since_wall_ms, outcomes, prev_epoch
 * [, refusals]] where outcomes is a bin of W * 5 bytes: status (1) and
 * accepted (4, little endian) of seq s at (s % W) * 5, and refusals (only
 * when some slot has them: partial answers) is a map of slot -> bin of
 * 4-byte little-endian index << 8 | status entries. Unclaimed slots are not
 * written.
 */
void streams_pack(const streams_t *t, msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i <= t->mask; i++)
        n += t->slots[i].key && t->slots[i].epoch;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i <= t->mask; i++) {
        const stream_t *s = &t->slots[i];
        if (!s->key || !s->epoch)
            continue;
        unsigned char ring[W * 5];
        for (int k = 0; k < W; k++) {
            ring[k * 5] = s->ring[k].status;
            for (int b = 0; b < 4; b++)
                ring[k * 5 + 1 + b] = (unsigned char)(s->ring[k].accepted >> (8 * b));
        }
        uint32_t nslots = 0;
        for (int k = 0; k < W; k++)
            nslots += s->ring[k].nrefused > 0;
        msgpack_pack_array(pk, nslots ? 8 : 7);
        msgpack_pack_str_with_body(pk, s->key, strlen(s->key));
        msgpack_pack_str_with_body(pk, s->agent, strlen(s->agent));
        msgpack_pack_uint64(pk, s->epoch);
        msgpack_pack_uint64(pk, s->next);
        msgpack_pack_int64(pk, s->since_wall_ms);
        msgpack_pack_bin_with_body(pk, ring, sizeof ring);
        msgpack_pack_uint64(pk, s->prev_epoch);
        if (!nslots)
            continue;
        msgpack_pack_map(pk, nslots);
        for (int k = 0; k < W; k++) {
            const stream_outcome_t *o = &s->ring[k];
            if (!o->nrefused)
                continue;
            msgpack_pack_uint32(pk, (uint32_t)k);
            msgpack_pack_bin(pk, (size_t)o->nrefused * 4);
            for (uint32_t r = 0; r < o->nrefused; r++) {
                unsigned char b4[4];
                for (int b = 0; b < 4; b++)
                    b4[b] = (unsigned char)(o->refused[r] >> (8 * b));
                msgpack_pack_bin_body(pk, b4, 4);
            }
        }
    }
}

/* Checks (and with s, applies) a stream's refusals map. Returns 0 or -1. */
static int refusals_unpack(stream_t *s, const msgpack_object *m)
{
    if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size > W)
        return -1;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        uint64_t slot;
        if (!proto_obj_u64(&kv->key, &slot) || slot >= W || kv->val.type != MSGPACK_OBJECT_BIN ||
            kv->val.via.bin.size % 4 != 0 || kv->val.via.bin.size / 4 > PROTO_MAX_SAMPLES)
            return -1;
        if (!s)
            continue;
        stream_outcome_t *o = &s->ring[slot];
        const unsigned char *p = (const unsigned char *)kv->val.via.bin.ptr;
        free(o->refused);
        o->nrefused = kv->val.via.bin.size / 4;
        o->refused = o->nrefused ? xmalloc(o->nrefused * sizeof *o->refused) : NULL;
        for (uint32_t r = 0; r < o->nrefused; r++)
            o->refused[r] = (uint32_t)p[4 * r] | (uint32_t)p[4 * r + 1] << 8 |
                            (uint32_t)p[4 * r + 2] << 16 | (uint32_t)p[4 * r + 3] << 24;
    }
    return 0;
}

int streams_unpack(streams_t *t, const msgpack_object *o, bool apply, int64_t now, char *err,
                   size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "streams: not an array");
        return -1;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        uint64_t epoch, next, prev;
        const msgpack_object *f = e->via.array.ptr;
        if (e->type != MSGPACK_OBJECT_ARRAY || (e->via.array.size != 7 && e->via.array.size != 8) ||
            f[0].type != MSGPACK_OBJECT_STR || f[1].type != MSGPACK_OBJECT_STR ||
            f[1].via.str.size == 0 || f[1].via.str.size > PROTO_MAX_ID_LEN ||
            f[0].via.str.size > 64 || !proto_obj_u64(&f[2], &epoch) || epoch == 0 ||
            !proto_obj_u64(&f[3], &next) || next == 0 ||
            (f[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
             f[4].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
            f[5].type != MSGPACK_OBJECT_BIN || f[5].via.bin.size != W * 5 ||
            !proto_obj_u64(&f[6], &prev) ||
            (e->via.array.size == 8 && refusals_unpack(NULL, &f[7]) != 0)) {
            snprintf(err, errlen, "streams: entry %u malformed", i);
            return -1;
        }
        if (!apply)
            continue;
        char key[65];
        if (f[0].via.str.size) /* "" (no CURVE) may come with a NULL pointer */
            memcpy(key, f[0].via.str.ptr, f[0].via.str.size);
        key[f[0].via.str.size] = '\0';
        stream_t *s = streams_get(t, key, (proto_str_t){f[1].via.str.ptr, f[1].via.str.size});
        if (!s) {
            snprintf(err, errlen, "streams: more than %d streams", STREAMS_MAX);
            return -1;
        }
        if (!s->ring)
            s->ring = xcalloc(W, sizeof *s->ring);
        s->epoch = epoch;
        s->prev_epoch = prev;
        s->next = next;
        s->since_wall_ms = f[4].via.i64;
        s->last_ms = now;
        const unsigned char *ring = (const unsigned char *)f[5].via.bin.ptr;
        for (int k = 0; k < W; k++) {
            uint32_t acc = 0;
            for (int b = 0; b < 4; b++)
                acc |= (uint32_t)ring[k * 5 + 1 + b] << (8 * b);
            outcome_clear(&s->ring[k]);
            s->ring[k] = (stream_outcome_t){.status = ring[k * 5], .accepted = acc};
        }
        if (e->via.array.size == 8)
            refusals_unpack(s, &f[7]);
    }
    return 0;
}
