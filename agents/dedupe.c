/* dedupe.c -- see dedupe.h. */
#include "agents/dedupe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dedupe_init(dedupe_t *d)
{
    memset(d, 0, sizeof *d);
}

void dedupe_free(dedupe_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].id);
    free(d->items);
    memset(d, 0, sizeof *d);
}

/* The entry of id, or where it goes (*ret_found false). Binary search. */
static size_t find(const dedupe_t *d, const char *id, size_t len, bool *ret_found)
{
    size_t lo = 0, hi = d->n;

    *ret_found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = d->items[mid].id;
        size_t mlen = strlen(m);
        int c = memcmp(m, id, mlen < len ? mlen : len);
        if (c == 0)
            c = mlen < len ? -1 : mlen > len ? 1 : 0;
        if (c == 0) {
            *ret_found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static dedupe_entry_t *insert(dedupe_t *d, size_t at, const char *id, size_t len)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        dedupe_entry_t *p = realloc(d->items, cap * sizeof *p);
        if (p == NULL)
            abort();
        d->items = p;
        d->cap = cap;
    }
    memmove(&d->items[at + 1], &d->items[at], (d->n - at) * sizeof *d->items);
    d->n++;
    dedupe_entry_t *e = &d->items[at];
    memset(e, 0, sizeof *e);
    e->id = malloc(len + 1);
    if (e->id == NULL)
        abort();
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    return e;
}

bool dedupe_take(dedupe_t *d, const proto_alert_t *a, bool *ret_unnumbered)
{
    bool found;

    *ret_unnumbered = a->n == 0;
    if (a->n == 0)
        return true;
    size_t at = find(d, a->id.ptr, a->id.len, &found);
    dedupe_entry_t *e = found ? &d->items[at] : insert(d, at, a->id.ptr, a->id.len);
    if (a->count > 0) {
        for (unsigned k = 0; k < e->nring && k < DEDUPE_GROUP_RING; k++)
            if (e->ring[k].state == a->state && e->ring[k].n == a->n) {
                d->dropped++;
                return false;
            }
        e->ring[e->nring++ % DEDUPE_GROUP_RING] = (dedupe_key_t){a->state, a->n};
        return true;
    }
    if (found && (a->n < e->n || (a->n == e->n && a->rn <= e->rn))) {
        d->dropped++;
        return false;
    }
    e->n = a->n;
    e->rn = a->rn;
    return true;
}

json_t *dedupe_json(const dedupe_t *d)
{
    json_t *o = json_object();

    for (size_t i = 0; o != NULL && i < d->n; i++) {
        const dedupe_entry_t *e = &d->items[i];
        json_t *v = json_pack("[II]", (json_int_t)e->n, (json_int_t)e->rn);
        if (v == NULL || json_object_set_new(o, e->id, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int dedupe_load(dedupe_t *d, json_t *j, char *err, size_t errlen)
{
    const char *id;
    json_t *v;
    dedupe_t fresh;

    if (!json_is_object(j)) {
        snprintf(err, errlen, "delivered_keys: not an object");
        return -1;
    }
    dedupe_init(&fresh);
    json_object_foreach(j, id, v)
    {
        json_int_t n, rn;
        bool found;
        size_t len = strlen(id);
        if (len == 0 || len > PROTO_MAX_ALERT_ID_LEN || !json_is_array(v) ||
            json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
            !json_is_integer(json_array_get(v, 1)) ||
            (n = json_integer_value(json_array_get(v, 0))) < 0 ||
            (rn = json_integer_value(json_array_get(v, 1))) < 0 || rn > UINT32_MAX) {
            snprintf(err, errlen, "delivered_keys: '%.*s': not [n, rn]", 64, id);
            dedupe_free(&fresh);
            return -1;
        }
        size_t at = find(&fresh, id, len, &found);
        dedupe_entry_t *e = insert(&fresh, at, id, len);
        e->n = (uint64_t)n;
        e->rn = (uint32_t)rn;
    }
    dedupe_free(d);
    *d = fresh;
    return 0;
}
