/*
 * registry.h -- the firm registry: which enterprises exist, in which cluster,
 * chain and tier. Loaded from a CSV file (RFC 4180, UTF-8, parsed with
 * libcsv) whose header row names the columns:
 *
 *   id,name,cluster,chain,tier,designations,status,key
 *
 * id, name, cluster and tier are required; chain may be empty (a member firm
 * on no key chain); designations is a ';'-separated list; status is active
 * (the default) or inactive (silence rules skip it); key is the Z85 CURVE
 * public key the firm's agent connects with (firms sharing one key: a
 * gateway reporting for all of them). Columns may come in any order; unknown columns are an error (a typo must not silently drop
 * data). Firm ids become dense integer indexes here, so the hot path never
 * compares strings after one hash lookup.
 */
#ifndef CLUSTERMON_REGISTRY_H
#define CLUSTERMON_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

typedef enum { TIER_LEADING = 0, TIER_BACKBONE, TIER_POTENTIAL, TIER_MEMBER, TIER_COUNT } tier_t;

typedef struct {
    char *id;
    char *name;
    int cluster;          /* index into config clusters */
    int chain;            /* index into that cluster's chains, -1 = none */
    tier_t tier;
    char *designations;   /* ';'-separated, "" if none */
    bool inactive;        /* status = inactive: kept, but not expected to report */
    char *key;            /* the firm's CURVE public key (Z85), NULL if none */
    int line;             /* where it was defined */
    int64_t first_seen_ms; /* when the daemon first had this firm in its registry (kept in the
                            * snapshot, carried over on reload); 0 = unknown: the silence
                            * rules then give a never-reported firm no grace */
} firm_t;

typedef struct {
    firm_t *firms;
    size_t nfirms;
    uint32_t *slots;      /* open addressing: firm index + 1, 0 = empty */
    size_t mask;
} registry_t;

/*
 * Loads path, checking clusters and chains against cfg (borrowed only for the
 * call). Returns 0 and a new registry in *ret (caller owns:
 * registry_destroy), or -1 with "file:line: field: reason" in err.
 */
int registry_load(const char *path, const config_t *cfg, registry_t **ret, char *err,
                  size_t errlen);
void registry_destroy(registry_t **reg);

/* Returns the firm index for id[0..len), or -1. */
int registry_find(const registry_t *reg, const char *id, size_t len);

const char *registry_tier_name(tier_t t);

/* Returns the tier for a name, or -1. */
int registry_tier_parse(const char *s);

#endif
