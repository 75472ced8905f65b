/*
 * fuzz_registry.c -- the firm registry loader (libcsv + our column, id,
 * UTF-8, cluster and chain checks) on a hostile CSV file.
 *
 * registry_load() reads a path, so the input is written to a memfd (a
 * per-process file that needs no temp directory and never touches the disk)
 * and loaded through /proc/self/fd/N. The config is a small fixed one with
 * two clusters of two chains each, parsed once. Asserted beyond the
 * sanitizers: a refusal names the file, an accepted registry finds every
 * firm by its own id and holds only valid cluster, chain and tier indexes.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/registry.h"
#include "tests/fuzz/fuzz.h"

static const char fuzz_conf[] = "[daemon]\n"
                                "registry = fuzz.csv\n"
                                "[metric revenue]\n"
                                "kind = period\n"
                                "[cluster energy-env]\n"
                                "chains = water-pollution-control, green-building-materials\n"
                                "[cluster new-energy]\n"
                                "chains = solar-pv, energy-storage\n";

static config_t *cfg;
static int fd = -1;
static char path[64];

static void setup(void)
{
    char err[CONFIG_ERRLEN];

    if (cfg)
        return;
    FUZZ_ASSERT(config_load("fuzz.conf", fuzz_conf, NULL, &cfg, err, sizeof err) == 0, "%s", err);
    fd = memfd_create("fuzz-registry", 0);
    FUZZ_ASSERT(fd >= 0, "memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CONFIG_ERRLEN];
    registry_t *reg = NULL;

    setup();
    FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate failed");
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        FUZZ_ASSERT(n > 0, "pwrite failed");
        off += (size_t)n;
    }
    if (registry_load(path, cfg, &reg, err, sizeof err) != 0) {
        FUZZ_ASSERT(reg == NULL, "registry_load failed but set *ret");
        FUZZ_ASSERT(strncmp(err, path, strlen(path)) == 0, "reason does not name the file: '%s'",
                    err);
        return 0;
    }
    FUZZ_ASSERT(reg != NULL, "registry_load succeeded without a registry");
    for (size_t i = 0; i < reg->nfirms; i++) {
        const firm_t *f = &reg->firms[i];
        FUZZ_ASSERT(registry_find(reg, f->id, strlen(f->id)) == (int)i,
                    "firm %zu '%s' not found by its id", i, f->id);
        FUZZ_ASSERT(f->cluster >= 0 && (size_t)f->cluster < cfg->nclusters, "firm %s: cluster %d",
                    f->id, f->cluster);
        FUZZ_ASSERT(f->chain >= -1 && f->chain < (int)cfg->clusters[f->cluster].nchains,
                    "firm %s: chain %d", f->id, f->chain);
        FUZZ_ASSERT((unsigned)f->tier < TIER_COUNT, "firm %s: tier %d", f->id, (int)f->tier);
        FUZZ_ASSERT(f->name && f->designations, "firm %s: NULL name or designations", f->id);
    }
    registry_destroy(&reg);
    FUZZ_ASSERT(reg == NULL, "registry_destroy did not NULL the pointer");
    return 0;
}
