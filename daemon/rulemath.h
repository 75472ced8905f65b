/*
 * rulemath.h -- the arithmetic of the rules, as pure functions: no state, no
 * I/O, so each is table-tested on its own (tests/check_rulemath.c).
 */
#ifndef CLUSTERMON_RULEMATH_H
#define CLUSTERMON_RULEMATH_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"

/*
 * One firm's part of a year-to-date growth figure over months 1..months.
 * cur[k] / prev[k] hold month k+1 of this year / last year where bit k of
 * cur_mask / prev_mask is set; prev_annual is last year's total, counted
 * only if prev_complete (an annual report, 4 quarters or 12 months).
 * Like for like, by mode:
 *   seasonal: the months in both years; base = those months last year;
 *   linear:   the n months in this year; base = prev_annual * n / 12;
 *   auto:     seasonal if any month is in both years, else linear.
 * ret->used is false when the firm cannot be compared (no base).
 */
typedef struct {
    double ytd;       /* this year's months compared */
    double base;      /* what they are compared with */
    double ly_annual; /* last year's total (for the run-rate projection) */
    int months;       /* how many of this year's months were compared */
    bool seasonal;    /* how this firm was pro-rated */
    bool used;
} growth_part_t;

void rulemath_growth_part(const double *cur, unsigned cur_mask, const double *prev,
                          unsigned prev_mask, double prev_annual, bool prev_complete, int months,
                          rule_prorate_t mode, growth_part_t *ret);

/* A scope's growth from the sums of its firms' parts. */
typedef struct {
    double base;           /* what this year is compared with */
    double growth_pct;     /* ytd / base - 1, in %; NAN when base <= 0 */
    double gap_pp;         /* growth - target, in percentage points */
    double expected_ytd;   /* the pro-rated target: base * (1 + target) */
    double projection;     /* run-rate year-end figure: ytd * ly_annual / base */
    double target_annual;  /* ly_annual * (1 + target) */
    double projection_gap; /* projection - target_annual */
} growth_t;

void rulemath_growth(double ytd, double base, double ly_annual, double target_pct, growth_t *ret);

/* (cur - prev) / |prev| in %, NAN when prev is 0. */
double rulemath_change_pct(double cur, double prev);

/*
 * Robust z of x against hist[0..n): 0.6745 * (x - median) / MAD. A few
 * history points can give a MAD near 0 by chance, making ordinary noise look
 * extreme, so the MAD used is at least min_spread_pct % of |median|. When it
 * is still 0, the mean absolute deviation (scaled to match) stands in; when
 * that is 0 too, z is 0 if x equals the median, else +-1e9. n in 1..256.
 */
double rulemath_robust_z(const double *hist, size_t n, double x, double min_spread_pct,
                         double *ret_median, double *ret_mad);

#endif
