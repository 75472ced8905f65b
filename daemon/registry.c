/*
 * registry.c -- loads the firm registry CSV (csvtable.c) and indexes firm
 * ids in an open-addressing hash table. See registry.h.
 */
#include "daemon/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/csvtable.h"
#include "daemon/ids.h"
#include "daemon/log.h"
#include "daemon/xalloc.h"
#include "proto/hash.h"
#include "proto/keyfile.h"

enum {
    COL_ID,
    COL_NAME,
    COL_CLUSTER,
    COL_CHAIN,
    COL_TIER,
    COL_DESIGNATIONS,
    COL_STATUS,
    COL_KEY,
    COL_CITY,
    NCOLS
};
static const char *const col_names[NCOLS] = {"id",           "name",   "cluster", "chain", "tier",
                                             "designations", "status", "key",     "city"};
static const bool col_required[NCOLS] = {true, true, true, false, true, false, false, false, false};

typedef struct {
    const config_t *cfg;
    registry_t *reg;
} load_t;

bool registry_has_member(void *reg, const char *id, size_t len)
{
    return registry_find(reg, id, len) >= 0;
}

int registry_find(const registry_t *reg, const char *id, size_t len)
{
    int f = registry_find_any(reg, id, len);
    return registry_is_former(reg, f) ? -1 : f;
}

int registry_city_find(const registry_t *reg, const char *id, size_t len)
{
    for (size_t i = 0; i < reg->ncities; i++)
        if (strnlen(reg->cities[i], len + 1) == len && memcmp(reg->cities[i], id, len) == 0)
            return (int)i;
    return -1;
}

int registry_find_any(const registry_t *reg, const char *id, size_t len)
{
    if (!reg->slots)
        return -1;
    for (size_t i = hash_fnv1a(id, len) & reg->mask;; i = (i + 1) & reg->mask) {
        uint32_t s = reg->slots[i];
        if (s == 0)
            return -1;
        const char *fid = reg->firms[s - 1].id;
        /* id may hold a NUL: bound the length check so fid is never read past its end */
        if (strnlen(fid, len + 1) == len && memcmp(fid, id, len) == 0)
            return (int)(s - 1);
    }
}

static void index_build(registry_t *reg)
{
    size_t n = 16;
    while (n < reg->nall * 2)
        n *= 2;
    free(reg->slots);
    reg->slots = xcalloc(n, sizeof *reg->slots);
    reg->mask = n - 1;
    for (size_t f = 0; f < reg->nall; f++) {
        size_t i = hash_fnv1a(reg->firms[f].id, strlen(reg->firms[f].id)) & reg->mask;
        while (reg->slots[i])
            i = (i + 1) & reg->mask;
        reg->slots[i] = (uint32_t)(f + 1);
    }
}

const char *registry_tier_name(tier_t t)
{
    static const char *const names[TIER_COUNT] = {"leading", "backbone", "potential", "member"};
    return t < TIER_COUNT ? names[t] : "?";
}

int registry_tier_parse(const char *s)
{
    for (int t = 0; t < TIER_COUNT; t++)
        if (strcmp(s, registry_tier_name((tier_t)t)) == 0)
            return t;
    return -1;
}

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -1)

/* Whether the comma-separated list (spaces around items ignored) has item. */
static bool list_has(const char *list, const char *item, size_t len)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == len && memcmp(p, item, len) == 0)
            return true;
        p += n;
    }
    return false;
}

static int record_cb(void *user, char *const *f, int line, char *err, size_t errlen)
{
    load_t *l = user;
    const config_t *cfg = l->cfg;
    registry_t *reg = l->reg;
    char why[128];

    const char *id = f[COL_ID];
    if (ids_validate(id, strlen(id), why, sizeof why) != 0)
        FAIL("id: '%s': %s", id, why);
    for (size_t i = 0; i < reg->nfirms; i++) {
        if (strcmp(reg->firms[i].id, id) == 0)
            FAIL("id: firm '%s' is already defined on line %d", id, reg->firms[i].line);
    }
    const char *name = f[COL_NAME];
    if (!*name)
        FAIL("name: firm '%s' has an empty name", id);
    if (!ids_utf8_valid(name, strlen(name)))
        FAIL("name: firm '%s': name is not valid UTF-8", id);
    const char *cl = f[COL_CLUSTER];
    int cluster = config_cluster_find(cfg, cl, strlen(cl));
    if (cluster < 0)
        FAIL("cluster: firm '%s': unknown cluster '%s'", id, cl);
    const char *ch = f[COL_CHAIN];
    int chain = -1;
    if (*ch) {
        chain = config_chain_find(&cfg->clusters[cluster], ch, strlen(ch));
        if (chain < 0)
            FAIL("chain: firm '%s': cluster '%s' has no chain '%s'", id, cl, ch);
    }
    int tier = registry_tier_parse(f[COL_TIER]);
    if (tier < 0)
        FAIL("tier: firm '%s': '%s' is not leading, backbone, potential or member", id,
             f[COL_TIER]);
    if (!list_has(cfg->tiers, f[COL_TIER], strlen(f[COL_TIER])))
        FAIL("tier: firm '%s': tier '%s' is not declared in the config (daemon.tiers = %s)", id,
             f[COL_TIER], cfg->tiers);
    const char *des = f[COL_DESIGNATIONS];
    if (!ids_utf8_valid(des, strlen(des)))
        FAIL("designations: firm '%s': not valid UTF-8", id);
    for (const char *d = des; *cfg->designations && *d;) {
        size_t n = strcspn(d, ";");
        if (n > 0 && !list_has(cfg->designations, d, n))
            FAIL("designations: firm '%s': '%.*s' is not declared in the config "
                 "(daemon.designations = %s)",
                 id, (int)n, d, cfg->designations);
        d += n + (d[n] == ';');
    }
    for (size_t i = 0; i < reg->nfirms; i++)
        if (strcmp(reg->firms[i].name, name) == 0)
            log_warnx("%s:%d: name: firm '%s' has the name of firm '%s' (line %d), '%s': two "
                      "firms with one name are usually one firm entered twice",
                      cfg->registry ? cfg->registry : "registry", line, id, reg->firms[i].id,
                      reg->firms[i].line, name);
    const char *status = f[COL_STATUS];
    if (*status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0)
        FAIL("status: firm '%s': '%s' is not active or inactive", id, status);
    const char *key = f[COL_KEY];
    if (*key && !keyfile_z85_valid(key, strlen(key)))
        FAIL("key: firm '%s': '%.48s' is not a 40-character Z85 CURVE public key "
             "(clustermonctl keygen prints one)",
             id, key);
    const char *city = f[COL_CITY];
    int ci = -1;
    if (*city) {
        if (ids_validate(city, strlen(city), why, sizeof why) != 0)
            FAIL("city: firm '%s': '%s': %s", id, city, why);
        ci = registry_city_find(reg, city, strlen(city));
        if (ci < 0) {
            xgrow(&reg->cities, &reg->cities_cap, reg->ncities + 1, sizeof *reg->cities);
            reg->cities[reg->ncities] = xstrdup(city);
            ci = (int)reg->ncities++;
        }
    }
    xgrow(&reg->firms, &reg->cap, reg->nfirms + 1, sizeof *reg->firms);
    reg->firms[reg->nfirms++] = (firm_t){
        .city = ci,
        .city_id = ci >= 0 ? reg->cities[ci] : NULL,
        .id = xstrdup(id),
        .name = xstrdup(name),
        .cluster = cluster,
        .chain = chain,
        .tier = (tier_t)tier,
        .designations = xstrdup(des),
        .inactive = strcmp(status, "inactive") == 0,
        .line = line,
        .key = *key ? xstrdup(key) : NULL,
    };
    reg->nall = reg->nfirms;
    return 0;
}

int registry_load(const char *path, const config_t *cfg, registry_t **ret, char *err, size_t errlen)
{
    static const csvtable_spec_t spec = {col_names, col_required, NCOLS, "firm registry"};
    registry_t *reg = xcalloc(1, sizeof *reg);
    load_t l = {.cfg = cfg, .reg = reg};
    if (csvtable_read(path, &spec, record_cb, &l, err, errlen) != 0) {
        registry_destroy(&reg);
        return -1;
    }
    index_build(reg);
    *ret = reg;
    return 0;
}

int registry_add_former(registry_t *reg, const firm_t *f, int64_t left_ms)
{
    xgrow(&reg->firms, &reg->cap, reg->nall + 1, sizeof *reg->firms);
    reg->firms[reg->nall] = (firm_t){
        .id = xstrdup(f->id),
        .name = xstrdup(f->name),
        .cluster = f->cluster,
        .chain = f->chain,
        .tier = f->tier,
        .designations = xstrdup(f->designations ? f->designations : ""),
        .city = -1, /* f's city index is its own registry's: not carried over */
        .left_ms = left_ms,
        .known = f->known,
    };
    reg->nall++;
    /* the table stays at most half full: rebuild it when it would not */
    if (reg->nall * 2 > reg->mask + 1)
        index_build(reg);
    else {
        size_t i = hash_fnv1a(f->id, strlen(f->id)) & reg->mask;
        while (reg->slots[i])
            i = (i + 1) & reg->mask;
        reg->slots[i] = (uint32_t)reg->nall;
    }
    return (int)reg->nall - 1;
}

void registry_destroy(registry_t **preg)
{
    registry_t *reg = *preg;
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nall; i++) {
        free(reg->firms[i].id);
        free(reg->firms[i].name);
        free(reg->firms[i].designations);
        free(reg->firms[i].key);
    }
    for (size_t i = 0; i < reg->ncities; i++)
        free(reg->cities[i]);
    free(reg->cities);
    free(reg->firms);
    free(reg->slots);
    free(reg);
    *preg = NULL;
}
