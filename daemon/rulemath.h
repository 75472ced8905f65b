/*
 * rulemath.h -- the arithmetic of the rules, as pure functions: no state, no
 * I/O, so each is table-tested on its own (tests/check_rulemath.c).
 */
#ifndef CLUSTERMON_RULEMATH_H
#define CLUSTERMON_RULEMATH_H

#include <stdbool.h>
#include <stddef.h>

/* Year-to-date growth against a target. Inputs are sums over the same
 * firm-months: ytd this year, ly_ytd the same months last year, ly_annual
 * those firms' whole last year; months = how many months (1..12) are in. */
typedef struct {
    double base;            /* what this year is compared with */
    double growth_pct;      /* ytd / base - 1, in %; NAN when base <= 0 */
    double gap_pp;          /* growth - target, in percentage points */
    double expected_ytd;    /* the pro-rated target: base * (1 + target) */
    double projection;      /* run-rate year-end figure */
    double target_annual;   /* ly_annual * (1 + target) */
    double projection_gap;  /* projection - target_annual */
} growth_t;

/*
 * linear:   base = ly_annual * months / 12, projection = ytd * 12 / months
 * seasonal: base = ly_ytd (last year's monthly profile),
 *           projection = ytd * ly_annual / ly_ytd
 */
void rulemath_growth(double ytd, double ly_ytd, double ly_annual, int months, double target_pct,
                     bool seasonal, growth_t *ret);

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
