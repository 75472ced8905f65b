/* keys.c -- see keys.h. */
#include "daemon/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/csvtable.h"
#include "daemon/ids.h"
#include "daemon/xalloc.h"
#include "proto/hash.h"
#include "proto/keyfile.h"

enum { COL_NAME, COL_KEY, COL_ROLE, COL_SCOPE, NCOLS };
static const char *const col_names[NCOLS] = {"name", "key", "role", "scope"};
static const bool col_required[NCOLS] = {true, true, true, false};

static const char *const role_names[] = {"agent", "subscriber", "viewer", "admin"};
#define NROLES (sizeof role_names / sizeof role_names[0])

typedef struct {
    keys_t *keys;
    const config_t *cfg;
    const registry_t *reg;
} load_t;

static access_key_t *linear_find(keys_t *keys, const char *z85)
{
    for (size_t i = 0; i < keys->nkeys; i++)
        if (strcmp(keys->keys[i].z85, z85) == 0)
            return &keys->keys[i];
    return NULL;
}

/* The entry for z85, created (with name) if new. Loading is not the hot
 * path: a linear search keeps it simple; the hash is built once at the end. */
static access_key_t *entry(keys_t *keys, const char *z85, const char *name)
{
    access_key_t *k = linear_find(keys, z85);
    if (k)
        return k;
    xgrow(&keys->keys, &keys->cap, keys->nkeys + 1, sizeof *keys->keys);
    k = &keys->keys[keys->nkeys++];
    memset(k, 0, sizeof *k);
    memcpy(k->z85, z85, KEYS_Z85_LEN + 1);
    k->name = xstrdup(name);
    k->report_cluster = xcalloc(keys->nclusters ? keys->nclusters : 1, 1);
    k->see_cluster = xcalloc(keys->nclusters ? keys->nclusters : 1, 1);
    return k;
}

static void add_firm(access_key_t *k, uint32_t firm)
{
    xgrow(&k->report_firms, &k->report_firms_cap, k->nreport_firms + 1, sizeof *k->report_firms);
    k->report_firms[k->nreport_firms++] = firm;
}

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -1)

/* Applies one scope item ("*", a cluster id or a firm id) to k for role. */
static int scope_item(load_t *l, access_key_t *k, unsigned role, const char *item, char *err,
                      size_t errlen)
{
    int cl = config_cluster_find(l->cfg, item, strlen(item));
    int firm = cl < 0 ? registry_find(l->reg, item, strlen(item)) : -1;
    bool all = strcmp(item, "*") == 0;
    if (role == KEY_ROLE_AGENT && strncmp(item, "city:", 5) == 0) {
        /* a city's forwarder (README "Province deployment"): its own firms */
        int city = registry_city_find(l->reg, item + 5, strlen(item + 5));
        if (city < 0)
            FAIL("scope: '%.64s': no firm of the registry is in city '%.64s' (its city column)",
                 item, item + 5);
        for (size_t f = 0; f < l->reg->nfirms; f++)
            if (l->reg->firms[f].city == city)
                add_firm(k, (uint32_t)f);
        return 0;
    }
    if (role == KEY_ROLE_AGENT) {
        if (all)
            k->report_all = true;
        else if (cl >= 0)
            k->report_cluster[cl] = 1;
        else if (firm >= 0)
            add_firm(k, (uint32_t)firm);
        else
            FAIL("scope: '%.64s' is neither a cluster, a firm nor city:ID in the registry", item);
        return 0;
    }
    if (role == KEY_ROLE_SUBSCRIBER) {
        if (all)
            k->see_all = true;
        else if (cl >= 0)
            k->see_cluster[cl] = 1;
        else
            FAIL("scope: '%.64s' is not a cluster (a subscriber sees whole clusters)", item);
        return 0;
    }
    if (!all)
        FAIL("scope: a %s key sees every cluster: leave the scope empty or '*'",
             role == KEY_ROLE_VIEWER ? "viewer" : "admin");
    return 0;
}

static int record_cb(void *user, char *const *f, int line, char *err, size_t errlen)
{
    load_t *l = user;
    char why[128];
    (void)line;
    const char *name = f[COL_NAME], *z85 = f[COL_KEY];
    if (ids_validate(name, strlen(name), why, sizeof why) != 0)
        FAIL("name: '%.64s': %s", name, why);
    if (!keyfile_z85_valid(z85, strlen(z85)))
        FAIL("key: '%.48s' is not a 40-character Z85 CURVE public key (clustermonctl keygen "
             "prints one)",
             z85);
    unsigned role = 0;
    for (size_t r = 0; r < NROLES; r++)
        if (strcmp(f[COL_ROLE], role_names[r]) == 0)
            role = 1u << r;
    if (!role)
        FAIL("role: '%.32s' is not agent, subscriber, viewer or admin", f[COL_ROLE]);
    for (size_t i = 0; i < l->keys->nkeys; i++) {
        const access_key_t *o = &l->keys->keys[i];
        if (strcmp(o->name, name) == 0 && strcmp(o->z85, z85) != 0)
            FAIL("name: '%s' is already the name of another key", name);
        if (strcmp(o->z85, z85) == 0 && strcmp(o->name, name) != 0)
            FAIL("key: the same key is already named '%s'", o->name);
    }
    access_key_t *k = entry(l->keys, z85, name);
    k->roles |= role;
    const char *scope = f[COL_SCOPE];
    if (!*scope && (role == KEY_ROLE_AGENT || role == KEY_ROLE_SUBSCRIBER))
        FAIL("scope: required for role %s (a ';' list of %s, or *)", f[COL_ROLE],
             role == KEY_ROLE_AGENT ? "clusters and firms" : "clusters");
    char buf[CSVTABLE_MAX_FIELD + 1];
    snprintf(buf, sizeof buf, "%s", scope);
    char *save = NULL;
    for (char *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        while (*item == ' ')
            item++;
        size_t n = strlen(item);
        while (n && item[n - 1] == ' ')
            item[--n] = '\0';
        if (n && scope_item(l, k, role, item, err, errlen) != 0)
            return -1;
    }
    if (role & (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN))
        k->see_all = true;
    if (role == KEY_ROLE_ADMIN)
        k->report_all = true;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void index_build(keys_t *keys)
{
    size_t n = 16;
    while (n < keys->nkeys * 2)
        n *= 2;
    keys->slots = xcalloc(n, sizeof *keys->slots);
    keys->mask = n - 1;
    for (size_t i = 0; i < keys->nkeys; i++) {
        access_key_t *k = &keys->keys[i];
        size_t j = hash_fnv1a(k->z85, KEYS_Z85_LEN) & keys->mask;
        while (keys->slots[j])
            j = (j + 1) & keys->mask;
        keys->slots[j] = (uint32_t)(i + 1);
        /* sorted and unique, for keys_may_report's binary search */
        if (k->nreport_firms > 1) /* NULL when empty: qsort must not see it */
            qsort(k->report_firms, k->nreport_firms, sizeof *k->report_firms, cmp_u32);
        size_t m = 0;
        for (size_t f = 0; f < k->nreport_firms; f++)
            if (m == 0 || k->report_firms[m - 1] != k->report_firms[f])
                k->report_firms[m++] = k->report_firms[f];
        k->nreport_firms = m;
    }
}

int keys_load(const char *access_path, const config_t *cfg, const registry_t *reg, keys_t **ret,
              char *err, size_t errlen)
{
    static const csvtable_spec_t spec = {col_names, col_required, NCOLS, "access file"};
    keys_t *keys = xcalloc(1, sizeof *keys);
    keys->nclusters = cfg->nclusters;
    load_t l = {.keys = keys, .cfg = cfg, .reg = reg};
    /* the access file first, so its names win over firm ids */
    if (access_path && *access_path &&
        csvtable_read(access_path, &spec, record_cb, &l, err, errlen) != 0) {
        keys_destroy(&keys);
        return -1;
    }
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *firm = &reg->firms[f];
        if (!firm->key)
            continue;
        access_key_t *k = entry(keys, firm->key, firm->id);
        k->roles |= KEY_ROLE_AGENT;
        add_firm(k, (uint32_t)f);
    }
    index_build(keys);
    *ret = keys;
    return 0;
}

void keys_destroy(keys_t **pkeys)
{
    keys_t *keys = *pkeys;
    if (!keys)
        return;
    for (size_t i = 0; i < keys->nkeys; i++) {
        free(keys->keys[i].name);
        free(keys->keys[i].report_cluster);
        free(keys->keys[i].report_firms);
        free(keys->keys[i].see_cluster);
    }
    free(keys->keys);
    free(keys->slots);
    free(keys);
    *pkeys = NULL;
}

const access_key_t *keys_find(const keys_t *keys, const char *z85, size_t len)
{
    if (!keys || !keys->slots || len != KEYS_Z85_LEN)
        return NULL;
    for (size_t i = hash_fnv1a(z85, len) & keys->mask;; i = (i + 1) & keys->mask) {
        uint32_t s = keys->slots[i];
        if (s == 0)
            return NULL;
        if (memcmp(keys->keys[s - 1].z85, z85, KEYS_Z85_LEN) == 0)
            return &keys->keys[s - 1];
    }
}

bool keys_may_report(const access_key_t *k, const registry_t *reg, int firm)
{
    if (firm < 0 || (size_t)firm >= reg->nfirms)
        return false;
    if (k->report_all || k->report_cluster[reg->firms[firm].cluster])
        return true;
    uint32_t want = (uint32_t)firm;
    return k->nreport_firms &&
           bsearch(&want, k->report_firms, k->nreport_firms, sizeof want, cmp_u32) != NULL;
}

bool keys_may_use_agent_id(const access_key_t *k, const registry_t *reg, const char *id, size_t len)
{
    if (k->roles & KEY_ROLE_ADMIN)
        return true;
    const char *dot = memchr(id, '.', len);
    size_t n = dot ? (size_t)(dot - id) : len;
    if (strlen(k->name) == n && memcmp(k->name, id, n) == 0)
        return true;
    return keys_may_report(k, reg, registry_find(reg, id, n));
}

bool keys_may_see(const access_key_t *k, int cluster)
{
    return k->see_all || (cluster >= 0 && k->see_cluster[cluster]);
}

const char *keys_roles_name(unsigned roles, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t r = 0; r < NROLES && off < size; r++)
        if (roles & (1u << r))
            off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? "+" : "", role_names[r]);
    return buf;
}

bool keys_alerts_narrowed(const keys_t *old, const config_t *ocfg, const keys_t *now,
                          const config_t *ncfg)
{
    const unsigned sees = KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN;
    for (size_t i = 0; old && i < old->nkeys; i++) {
        const access_key_t *o = &old->keys[i];
        if (!(o->roles & sees))
            continue;
        const access_key_t *n = keys_find(now, o->z85, KEYS_Z85_LEN);
        if (!n || !(n->roles & sees))
            return true;
        if (n->see_all)
            continue;
        if (o->see_all)
            return true;
        for (size_t c = 0; c < ocfg->nclusters; c++) {
            const char *id = ocfg->clusters[c].id;
            if (o->see_cluster[c] && !keys_may_see(n, config_cluster_find(ncfg, id, strlen(id))))
                return true;
        }
    }
    return false;
}
