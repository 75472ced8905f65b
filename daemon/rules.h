/*
 * rules.h -- the rules that turn figures into alerts. This version knows the
 * threshold rule: a reading above a limit fires, a reading back at or below
 * the clear level resolves. State lives in its own table, one cell per
 * (rule, firm), so evaluation is a pure step: (rule, state, value) -> state.
 */
#ifndef CLUSTERMON_RULES_H
#define CLUSTERMON_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/alerts.h"
#include "daemon/config.h"
#include "daemon/registry.h"

typedef struct {
    bool firing;
    int64_t since_ms;
} rule_state_t;

typedef struct {
    const config_t *cfg;     /* borrowed from the server */
    const registry_t *reg;   /* borrowed from the server */
    rule_state_t *state;     /* [rule * nfirms + firm] */
    uint64_t firing;         /* alerts firing now */
} rules_t;

/* What a threshold step decided. */
typedef enum { RULE_STEP_NONE = 0, RULE_STEP_FIRE, RULE_STEP_RESOLVE } rule_step_t;

/* The pure transition of a threshold rule. */
rule_step_t rules_threshold_step(const config_rule_t *r, bool firing, double value);

void rules_init(rules_t *rs, const config_t *cfg, const registry_t *reg);
void rules_free(rules_t *rs);

/* Evaluates every rule that watches (firm, metric) against a reading and
 * publishes the transitions through al (NULL: update the state only, as
 * when the WAL is replayed at start-up). */
void rules_on_reading(rules_t *rs, alerts_t *al, int firm, int metric, double value,
                      int64_t ts_ms);

#endif
