/*
 * fuzz_config.c -- clustermond's config parser (inih + our option table and
 * rule validation) on hostile text.
 *
 * The input is the text of a config file, labelled "fuzz" in messages; it
 * is given to config_load() as a NUL-terminated copy (an embedded NUL ends
 * the text early, as it would end a C string from a file). What is asserted
 * beyond the sanitizers: a refused config comes with a reason that names the
 * file ("fuzz:..."), an accepted one has what the daemon relies on (at least
 * one metric and cluster, resolved indexes in range), and destroy frees all.
 */
#include <string.h>

#include "daemon/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char err[CONFIG_ERRLEN];
    config_t *cfg = NULL;

    FUZZ_ASSERT(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    if (config_load("fuzz", text, NULL, &cfg, err, sizeof err) != 0) {
        FUZZ_ASSERT(cfg == NULL, "config_load failed but set *ret");
        FUZZ_ASSERT(strncmp(err, "fuzz", 4) == 0, "reason does not name the file: '%s'", err);
        free(text);
        return 0;
    }
    FUZZ_ASSERT(cfg != NULL, "config_load succeeded without a config");
    FUZZ_ASSERT(cfg->nmetrics >= 1 && cfg->nmetrics <= CONFIG_MAX_METRICS, "%zu metrics",
                cfg->nmetrics);
    FUZZ_ASSERT(cfg->revenue_idx >= 0 && (size_t)cfg->revenue_idx < cfg->nmetrics, "revenue_idx %d",
                cfg->revenue_idx);
    FUZZ_ASSERT(cfg->profit_idx >= -1 && cfg->profit_idx < (int)cfg->nmetrics, "profit_idx %d",
                cfg->profit_idx);
    for (size_t i = 0; i < cfg->nmetrics; i++)
        FUZZ_ASSERT(config_metric_find(cfg, cfg->metrics[i].name, strlen(cfg->metrics[i].name)) ==
                        (int)i,
                    "metric %zu not found by its name", i);
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const config_cluster_t *cl = &cfg->clusters[i];
        FUZZ_ASSERT(config_cluster_find(cfg, cl->id, strlen(cl->id)) == (int)i,
                    "cluster %zu not found", i);
        FUZZ_ASSERT(cl->nchains >= 1, "cluster %s has no chains", cl->id);
        for (size_t j = 0; j < cl->nchains; j++)
            FUZZ_ASSERT(config_chain_find(cl, cl->chains[j], strlen(cl->chains[j])) == (int)j,
                        "chain %zu of %s not found", j, cl->id);
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        const config_rule_t *r = &cfg->rules[i];
        FUZZ_ASSERT(r->type < RULE_TYPE_COUNT && r->cluster >= 0 &&
                        (size_t)r->cluster < cfg->nclusters,
                    "rule %s: type %d cluster %d", r->id, (int)r->type, r->cluster);
        FUZZ_ASSERT(r->metric >= -1 && r->metric < (int)cfg->nmetrics, "rule %s: metric %d", r->id,
                    r->metric);
        FUZZ_ASSERT(r->chain >= -1 && r->chain < (int)cfg->clusters[r->cluster].nchains,
                    "rule %s: chain %d", r->id, r->chain);
    }
    config_destroy(&cfg);
    FUZZ_ASSERT(cfg == NULL, "config_destroy did not NULL the pointer");
    free(text);
    return 0;
}
