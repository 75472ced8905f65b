/* silences.c -- see silences.h. A few dozen at most: a flat array. */
#include "daemon/silences.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/xalloc.h"

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

uint64_t silences_add(silences_t *s, const char *rule, const char *cluster, const char *firm,
                      int64_t created_ms, int64_t until_ms, const char *reason)
{
    xgrow(&s->items, &s->cap, s->n + 1, sizeof *s->items);
    silence_t *x = &s->items[s->n++];
    x->id = s->next_id++;
    x->rule = xstrdup(rule);
    x->cluster = xstrdup(cluster);
    x->firm = firm && *firm ? xstrdup(firm) : NULL;
    x->created_ms = created_ms;
    x->until_ms = until_ms;
    x->reason = xstrdup(reason ? reason : "");
    return x->id;
}

int silences_remove(silences_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].id == id) {
            item_free(&s->items[i]);
            memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof *s->items);
            s->n--;
            return 0;
        }
    }
    return -1;
}

size_t silences_expire(silences_t *s, int64_t now_ms)
{
    size_t dropped = 0;
    for (size_t i = 0; i < s->n;) {
        if (s->items[i].until_ms <= now_ms) {
            silences_remove(s, s->items[i].id);
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
