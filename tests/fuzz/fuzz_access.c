/*
 * fuzz_access.c -- the access file loader (daemon/keys.c on top of
 * daemon/csvtable.c and libcsv: columns, roles, Z85 keys, scopes, names) on
 * a hostile CSV file, merged with the firm keys of a fixed registry.
 *
 * keys_load() reads a path, so the input is written to a memfd (as in
 * fuzz_registry.c) and loaded through /proc/self/fd/N. The config and the
 * registry are small fixed ones, parsed once: two clusters of two chains,
 * five firms, one with its own key, two sharing a gateway key, one with
 * another key and one with none. The seeds in tests/fuzz/corpus/access/ use
 * these ids and keys. Asserted beyond the sanitizers:
 *   - a refusal names the file and returns no table;
 *   - in an accepted table every key is found by its own Z85 text, has a
 *     name and a known role, its firm list is sorted, unique and in range,
 *     viewer and admin see every cluster, admin reports for every firm;
 *   - every registry key is still there as an agent of its own firms;
 *   - keys_destroy frees all (LeakSanitizer) and NULLs the pointer.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/keys.h"
#include "proto/keyfile.h"
#include "tests/fuzz/fuzz.h"

#define ROLES_ALL (KEY_ROLE_AGENT | KEY_ROLE_SUBSCRIBER | KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)

static const char fuzz_conf[] = "[daemon]\n"
                                "registry = fuzz.csv\n"
                                "[metric revenue]\n"
                                "kind = period\n"
                                "[cluster energy-env]\n"
                                "chains = water-pollution-control, green-building-materials\n"
                                "[cluster new-energy]\n"
                                "chains = solar-pv, energy-storage\n";

/* Keys made with clustermonctl keygen (public halves only). */
static const char fuzz_registry[] =
    "id,name,cluster,chain,tier,key\n"
    "wp-1,Water Plant One (fictional),energy-env,water-pollution-control,leading,"
    "yv/Ik@)LyB0M}2DS6{/nZ:x8V+5Lqc68gym2tB:{\n"
    "wp-2,Water Plant Two (fictional),energy-env,water-pollution-control,backbone,"
    "DON0AHO#7I2P(p:&G0R!9DV%R@*mT>eI<yjmepN%\n"
    "gb-1,Green Bricks (fictional),energy-env,green-building-materials,potential,"
    "DON0AHO#7I2P(p:&G0R!9DV%R@*mT>eI<yjmepN%\n"
    "pv-1,Solar One (fictional),new-energy,solar-pv,leading,"
    "8?xmyEOMpGYR5*kkn=gsMtw(yuyz*^kfVnz^S=Pk\n"
    "st-1,Storage One (fictional),new-energy,energy-storage,member,\n";

static config_t *cfg;
static registry_t *reg;
static int fd = -1;
static char path[64];

static void write_input(const void *data, size_t size)
{
    FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate failed");
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, (const uint8_t *)data + off, size - off, (off_t)off);
        FUZZ_ASSERT(n > 0, "pwrite failed");
        off += (size_t)n;
    }
}

static void setup(void)
{
    char err[CONFIG_ERRLEN];

    if (cfg)
        return;
    FUZZ_ASSERT(config_load("fuzz.conf", fuzz_conf, NULL, &cfg, err, sizeof err) == 0, "%s", err);
    fd = memfd_create("fuzz-access", 0);
    FUZZ_ASSERT(fd >= 0, "memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* the registry goes through the same memfd once, before any input */
    write_input(fuzz_registry, sizeof fuzz_registry - 1);
    FUZZ_ASSERT(registry_load(path, cfg, &reg, err, sizeof err) == 0, "%s", err);
}

/* Checks one entry of a table keys_load() accepted. */
static void check_key(const keys_t *keys, const access_key_t *k)
{
    char roles[64];

    FUZZ_ASSERT(k->z85[KEYS_Z85_LEN] == '\0' && keyfile_z85_valid(k->z85, strlen(k->z85)),
                "invalid key '%s'", k->z85);
    FUZZ_ASSERT(keys_find(keys, k->z85, KEYS_Z85_LEN) == k, "key %s not found by its own text",
                k->z85);
    FUZZ_ASSERT(k->name != NULL && k->name[0] != '\0', "key %s without a name", k->z85);
    FUZZ_ASSERT(k->roles != 0 && (k->roles & ~(unsigned)ROLES_ALL) == 0, "key %s: roles %#x",
                k->z85, k->roles);
    FUZZ_ASSERT(keys_roles_name(k->roles, roles, sizeof roles)[0] != '\0', "key %s: no role name",
                k->z85);
    FUZZ_ASSERT(k->report_cluster != NULL && k->see_cluster != NULL, "key %s: NULL cluster sets",
                k->z85);
    FUZZ_ASSERT(k->nreport_firms <= k->report_firms_cap, "key %s: %zu firms in %zu", k->z85,
                k->nreport_firms, k->report_firms_cap);
    for (size_t f = 0; f < k->nreport_firms; f++) {
        FUZZ_ASSERT(k->report_firms[f] < reg->nfirms, "key %s: firm %u", k->z85,
                    k->report_firms[f]);
        FUZZ_ASSERT(f == 0 || k->report_firms[f - 1] < k->report_firms[f],
                    "key %s: firms not sorted/unique", k->z85);
        FUZZ_ASSERT(keys_may_report(k, reg, (int)k->report_firms[f]),
                    "key %s: listed firm %u refused", k->z85, k->report_firms[f]);
    }
    if (k->roles & (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN))
        FUZZ_ASSERT(k->see_all, "key %s: viewer or admin without see_all", k->z85);
    if (k->roles & KEY_ROLE_ADMIN)
        FUZZ_ASSERT(k->report_all, "key %s: admin without report_all", k->z85);
    /* a cluster a reload removed (-1) only to a key that sees them all */
    FUZZ_ASSERT(keys_may_see(k, -1) == k->see_all, "key %s: cluster -1", k->z85);
    for (size_t c = 0; c < cfg->nclusters; c++)
        if (k->see_all)
            FUZZ_ASSERT(keys_may_see(k, (int)c), "key %s: see_all but not cluster %zu", k->z85, c);
    FUZZ_ASSERT(!keys_may_report(k, reg, -1) && !keys_may_report(k, reg, (int)reg->nfirms),
                "key %s reports for a firm out of range", k->z85);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CONFIG_ERRLEN];
    keys_t *keys = NULL;

    setup();
    write_input(data, size);
    if (keys_load(path, cfg, reg, &keys, err, sizeof err) != 0) {
        FUZZ_ASSERT(keys == NULL, "keys_load failed but set *ret");
        FUZZ_ASSERT(strncmp(err, path, strlen(path)) == 0, "reason does not name the file: '%s'",
                    err);
        return 0;
    }
    FUZZ_ASSERT(keys != NULL, "keys_load succeeded without a table");
    FUZZ_ASSERT(keys->nclusters == cfg->nclusters, "%zu clusters, the config has %zu",
                keys->nclusters, cfg->nclusters);
    for (size_t i = 0; i < keys->nkeys; i++)
        check_key(keys, &keys->keys[i]);
    for (size_t f = 0; f < reg->nfirms; f++) {
        const firm_t *firm = &reg->firms[f];
        if (!firm->key)
            continue;
        const access_key_t *k = keys_find(keys, firm->key, strlen(firm->key));
        FUZZ_ASSERT(k != NULL, "firm %s: its key is missing", firm->id);
        FUZZ_ASSERT((k->roles & KEY_ROLE_AGENT) && keys_may_report(k, reg, (int)f),
                    "firm %s: its key may not report for it", firm->id);
    }
    keys_destroy(&keys);
    FUZZ_ASSERT(keys == NULL, "keys_destroy did not NULL the pointer");
    return 0;
}
