/*
 * rules.h -- the rule engine: turns figures into alert evaluations, which
 * the alertbook turns into published transitions.
 *
 * Rules are evaluated when their inputs change, deterministically (sorted by
 * rule, then firm): a reading runs the threshold rules at once (their
 * hysteresis depends on sample order); a period figure marks the growth,
 * change, outlier, silence and above-scale rules it feeds as dirty, and
 * rules_evaluate_dirty() runs them at the end of the batch, so a restated or
 * late report re-evaluates exactly what it affects. Time-based rules
 * (silence) also run from rules_tick(). See README "Rules" for each type's
 * arithmetic.
 */
#ifndef CLUSTERMON_RULES_H
#define CLUSTERMON_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/aggregate.h"
#include "daemon/alertbook.h"
#include "daemon/calendar.h"
#include "daemon/config.h"
#include "daemon/registry.h"
#include "daemon/rulemath.h"

/* A firm's part in a growth rule's gap (rules_growth_figure). */
typedef struct {
    int firm;
    double delta;
} rules_drag_t;

/* A growth rule's figure kept between evaluations (rules.c, "growth"). */
struct rules_growth_firm;
typedef struct {
    bool valid;                      /* false: built whole at the next evaluation */
    int year, months;                /* the figure's year and months in */
    uint32_t reported[13];           /* [m]: firms of `firms` that reported month m */
    uint32_t *firms;                 /* the scope's active firms, registry order */
    uint32_t nfirms;                 /* = members */
    int32_t *slot;                   /* [registry firm]: index in firms, -1 */
    uint16_t *mask;                  /* [index]: months of `year` reported */
    struct rules_growth_firm *parts; /* [index]: its part */
    uint8_t *touched;                /* [index]: figures arrived since the last evaluation */
    uint32_t *touched_list, ntouched;
} rules_growth_state_t;

typedef struct {
    const config_t *cfg; /* borrowed from the server, like the rest */
    const registry_t *reg;
    const agg_t *agg;
    calendar_t *cal;
    alertbook_t *book;
    uint8_t *dirty; /* [rule * (nfirms + 1) + firm + 1]; firm -1 = the rule's scope */
    uint32_t *dirty_list;
    size_t ndirty, dirty_cap;
    uint64_t evaluations;
    int year_now;        /* the local year at the last tick: year = current rolls over */
    int64_t *never_next; /* [rule]: when the next never-reported firm's grace ends */
    rules_drag_t *drag;  /* a growth evaluation's per-firm list, owned, reused */
    size_t drag_cap;
    rules_growth_state_t *growth; /* [rule], owned; used by growth rules only */
} rules_t;

void rules_init(rules_t *rs, const config_t *cfg, const registry_t *reg, const agg_t *agg,
                calendar_t *cal, alertbook_t *book);
void rules_free(rules_t *rs);

/* True if the firm is in the rule's scope (cluster, chain, tier). */
bool rules_in_scope(const config_rule_t *r, const firm_t *f);

/*
 * A growth rule's figure, computed the way the rule computes it: the year
 * (0 = the rule's own, i.e. its year or the current one at now_ms), months
 * 1..the latest month that reached the rule's quorum and is at most through
 * (12 = no cap), like for like firm by firm (rulemath_growth_part). If drag
 * is non-NULL it receives up to nfirms (firm, ytd - base) pairs, unsorted,
 * and *ret_ndrag their count. Pure: reads the aggregate, changes nothing;
 * callable from the loop (the rule engine, the control queries).
 */
typedef struct {
    int year, months;   /* months 0: no month reached the quorum */
    uint32_t members;   /* active firms in scope */
    uint32_t reporting; /* of them, those that reported month `months` */
    uint32_t compared, seasonal_firms, linear_firms;
    double ytd, base, ly_annual;
    growth_t g;
} rules_growth_t;

void rules_growth_figure(const config_t *cfg, const registry_t *reg, const agg_t *agg, int rule,
                         int year, int through, int64_t now_ms, rules_growth_t *ret,
                         rules_drag_t *drag, size_t *ret_ndrag);

/* The rule's year: its own, or for year = current the local year at now_ms. */
int rules_growth_year(const config_rule_t *r, int64_t now_ms);

/* A reading was applied: threshold rules run now. */
void rules_on_reading(rules_t *rs, int firm, int metric, double value, int64_t ts_ms,
                      int64_t now_ms);
/* A period figure was applied: the rules it feeds become dirty. */
void rules_on_period(rules_t *rs, int firm, int metric, proto_period_t p);

/* Evaluates what is dirty (the caller then flushes the alertbook). */
void rules_evaluate_dirty(rules_t *rs, int64_t now_ms);
/* Evaluates every rule except thresholds (after recovery: reconciles). */
void rules_evaluate_all(rules_t *rs, int64_t now_ms);
/* Time-based rules: silence. */
void rules_tick(rules_t *rs, int64_t now_ms);

#endif
