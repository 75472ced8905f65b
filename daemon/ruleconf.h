/*
 * ruleconf.h -- the [rule ID] sections of the config. While the file is read
 * each key is kept raw with its line; once the whole file is known (metrics,
 * clusters, chains) every rule is resolved and validated against its type.
 * Errors come back as (line, field, reason) for config.c to format as
 * "file:line: rule.ID.field: reason".
 */
#ifndef CLUSTERMON_RULECONF_H
#define CLUSTERMON_RULECONF_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

typedef enum {
    RK_TYPE,
    RK_SEVERITY,
    RK_METRIC,
    RK_CLUSTER,
    RK_CHAIN,
    RK_TIER,
    RK_REPEAT,
    RK_ABOVE,
    RK_BELOW,
    RK_CLEAR,
    RK_FOR_SAMPLES,
    RK_FOR,
    RK_YEAR,
    RK_TARGET,
    RK_TOLERANCE,
    RK_QUORUM,
    RK_PRORATE,
    RK_COMPARE,
    RK_DROP,
    RK_RISE,
    RK_WINDOW,
    RK_K,
    RK_MIN_HISTORY,
    RK_SEASONAL,
    RK_MIN_SPREAD,
    RK_SCHEDULE,
    RK_DUE_DAY,
    RK_QUIET,
    RK_CLOCK,
    RK_GRACE,
    RK_CITY,
    RK_COUNT
} rule_key_t;

typedef struct {
    char *val[RK_COUNT]; /* NULL = not set */
    int line[RK_COUNT];
} rule_raw_t;

/* Records key = value (line) for a rule. Returns 0, or -1 with why (an
 * unknown key, or one set twice). */
int ruleconf_set(rule_raw_t *raw, const char *key, const char *value, int line, char *why,
                 size_t whylen);

/* Resolves and validates one rule. Returns 0, or -1 with the line, the
 * field ("rule.<id>.<key>") and the reason. r->line is the section's line. */
int ruleconf_resolve(const config_t *cfg, config_rule_t *r, const rule_raw_t *raw, int *ret_line,
                     char *field, size_t fieldlen, char *why, size_t whylen);

void ruleconf_raw_free(rule_raw_t *raw);

/* Parses "90s", "15m", "2h", "1d", "500ms" or a bare number of seconds into
 * ms. Returns 0 or -1. */
int ruleconf_parse_duration(const char *s, int64_t *ret_ms);

const char *ruleconf_type_name(rule_type_t t);

#endif
