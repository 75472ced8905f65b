/*
 * registry.h -- the firm registry: which enterprises exist, in which cluster,
 * chain and tier. Loaded from a CSV file (RFC 4180, UTF-8, parsed with
 * libcsv) whose header row names the columns:
 *
 *   id,name,cluster,chain,tier,designations,status,key,city
 *
 * id, name, cluster and tier are required; chain may be empty (a member firm
 * on no key chain); designations is a ';'-separated list; status is active
 * (the default) or inactive (silence rules skip it); key is the Z85 CURVE
 * public key the firm's agent connects with (firms sharing one key: a
 * gateway reporting for all of them); city is the id of the city the firm
 * is in (optional: a province daemon's registry names each firm's city, so a
 * city's key reports only for its own firms and reports add up per city,
 * README "Province deployment"). Columns may come in any order; unknown columns are an error (a typo must not silently drop
 * data). Firm ids become dense integer indexes here, so the hot path never
 * compares strings after one hash lookup.
 *
 * Firms leave: a firm that was a member and is no longer in the file stays
 * in the registry as a *former member* (firm_t.left_ms), so the figures it
 * reported while a member keep their firm and cluster (members.h keeps the
 * record of who left when). Members come first, indexes 0..nfirms-1, which
 * is all most of the daemon (rules, keys, ingest) ever looks at; former
 * members follow, nfirms..nall-1, and only the figures (aggregate, queries,
 * snapshots, WAL replay) reach them.
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
    int cluster; /* index into config clusters */
    int chain;   /* index into that cluster's chains, -1 = none */
    tier_t tier;
    char *designations;    /* ';'-separated, "" if none */
    bool inactive;         /* status = inactive: kept, but not expected to report */
    char *key;             /* the firm's CURVE public key (Z85), NULL if none */
    int line;              /* where it was defined; 0 for a former member */
    int64_t first_seen_ms; /* when the daemon first had this firm in its registry (kept in the
                            * snapshot, carried over on reload); 0 = unknown: the silence
                            * rules then give a never-reported firm no grace */
    int64_t left_ms;       /* former member: when it left (wall ms); 0 = a member */
    bool known;            /* the durable state records it (members.c) */
    int city;              /* index into registry_t.cities, -1 = none (or a former member) */
    const char *city_id;   /* that city's id (borrowed from cities), NULL = none */
} firm_t;

typedef struct {
    firm_t *firms; /* members [0, nfirms), then former members [nfirms, nall) */
    size_t nfirms; /* members: the firms the file lists */
    size_t nall;   /* members and former members */
    size_t cap;
    uint32_t *slots; /* open addressing: firm index + 1, 0 = empty */
    size_t mask;
    char **cities; /* the city column's distinct ids, in order of first appearance */
    size_t ncities, cities_cap;
} registry_t;

/*
 * Loads path, checking clusters and chains against cfg (borrowed only for the
 * call). Returns 0 and a new registry in *ret (caller owns:
 * registry_destroy), or -1 with "file:line: field: reason" in err.
 */
int registry_load(const char *path, const config_t *cfg, registry_t **ret, char *err,
                  size_t errlen);
void registry_destroy(registry_t **reg);

/* Returns the index of member firm id[0..len), or -1 (unknown, or a former
 * member). */
int registry_find(const registry_t *reg, const char *id, size_t len);

/* registry_find() >= 0 with reg passed as data (const registry_t *): the
 * check a firm login's ids get when http_users is loaded (webusers.h). */
bool registry_has_member(void *reg, const char *id, size_t len);

/* Returns the index of firm id[0..len), a member or a former member, or -1. */
int registry_find_any(const registry_t *reg, const char *id, size_t len);

/* Returns the index of city id[0..len) in reg->cities, or -1. */
int registry_city_find(const registry_t *reg, const char *id, size_t len);

/* True if index firm is a former member (nfirms <= firm < nall). */
static inline bool registry_is_former(const registry_t *reg, int firm)
{
    return firm >= 0 && (size_t)firm >= reg->nfirms;
}

/*
 * Appends a former member: a copy of f's id, name, cluster, chain, tier and
 * designations (f is borrowed for the call), which left at left_ms (0: not
 * known yet, members.c settles it). The id must not be in reg yet. Returns
 * its index (nall - 1 after the call). Pointers into reg->firms do not
 * survive the call.
 */
int registry_add_former(registry_t *reg, const firm_t *f, int64_t left_ms);

const char *registry_tier_name(tier_t t);

/* Returns the tier for a name, or -1. */
int registry_tier_parse(const char *s);

#endif
