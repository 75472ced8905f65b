/*
 * silences.h -- operator silences: "don't publish rule R for cluster C (and
 * firm F) for the next 2 h, because ...". Silenced alerts are still tracked;
 * only their publication is suppressed. Silences expire by themselves and
 * are kept in the snapshot.
 */
#ifndef CLUSTERMON_SILENCES_H
#define CLUSTERMON_SILENCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t id;
    char *rule;       /* rule id */
    char *cluster;    /* cluster id */
    char *firm;       /* NULL = every firm (and the cluster-level alerts) */
    int64_t created_ms, until_ms;
    char *reason;
} silence_t;

typedef struct {
    silence_t *items;
    size_t n, cap;
    uint64_t next_id;
} silences_t;

void silences_init(silences_t *s);
void silences_free(silences_t *s);

/* Adds one (strings copied); returns its id. */
uint64_t silences_add(silences_t *s, const char *rule, const char *cluster, const char *firm,
                      int64_t created_ms, int64_t until_ms, const char *reason);
/* Removes by id; returns 0 or -1 if there is none. */
int silences_remove(silences_t *s, uint64_t id);
/* Drops expired silences; returns how many. */
size_t silences_expire(silences_t *s, int64_t now_ms);
/* True if a live silence covers (rule, cluster, firm); firm may be NULL. */
bool silences_match(const silences_t *s, const char *rule, const char *cluster, const char *firm,
                    int64_t now_ms);

#endif
