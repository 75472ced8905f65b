/* rulemath.c -- see rulemath.h. */
#include "daemon/rulemath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rulemath_growth_part(const double *cur, unsigned cur_mask, const double *prev,
                          unsigned prev_mask, double prev_annual, bool prev_complete, int months,
                          rule_prorate_t mode, growth_part_t *g)
{
    memset(g, 0, sizeof *g);
    if (months > 12)
        months = 12;
    double both_cur = 0, both_prev = 0, this_cur = 0;
    int nboth = 0, nthis = 0;
    for (int k = 0; k < months; k++) {
        if (!(cur_mask & (1u << k)))
            continue;
        this_cur += cur[k];
        nthis++;
        if (prev_mask & (1u << k)) {
            both_cur += cur[k];
            both_prev += prev[k];
            nboth++;
        }
    }
    g->ly_annual = prev_annual;
    if (mode != PRORATE_LINEAR && nboth > 0) {
        g->ytd = both_cur;
        g->base = both_prev;
        g->months = nboth;
        g->seasonal = true;
        g->used = true;
    } else if (mode != PRORATE_SEASONAL && nthis > 0 && prev_complete) {
        g->ytd = this_cur;
        g->base = prev_annual * nthis / 12.0;
        g->months = nthis;
        g->used = true;
    }
}

void rulemath_growth(double ytd, double base, double ly_annual, double target_pct, growth_t *g)
{
    double t = target_pct / 100.0;
    g->base = base;
    g->growth_pct = base > 0 ? (ytd / base - 1.0) * 100.0 : NAN;
    g->gap_pp = g->growth_pct - target_pct;
    g->expected_ytd = base * (1.0 + t);
    g->projection = base > 0 ? ytd * ly_annual / base : NAN;
    g->target_annual = ly_annual * (1.0 + t);
    g->projection_gap = g->projection - g->target_annual;
}

double rulemath_change_pct(double cur, double prev)
{
    if (prev == 0)
        return NAN;
    return (cur - prev) / fabs(prev) * 100.0;
}

/* Insertion sort: a rule's history is a few dozen values (qsort's call per
 * comparison cost more than the sort, once per outlier evaluation). */
static void sort_doubles(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static double median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double rulemath_robust_z(const double *hist, size_t n, double x, double min_spread_pct,
                         double *ret_median, double *ret_mad)
{
    double v[256], d[256];
    if (n > 256)
        n = 256;
    memcpy(v, hist, n * sizeof *v);
    sort_doubles(v, n);
    double med = median_sorted(v, n);
    double mean_abs = 0;
    for (size_t i = 0; i < n; i++) {
        d[i] = fabs(hist[i] - med);
        mean_abs += d[i];
    }
    mean_abs /= (double)n;
    sort_doubles(d, n);
    double mad = median_sorted(d, n);
    double floor = fabs(med) * min_spread_pct / 100.0;
    if (mad < floor)
        mad = floor;
    *ret_median = med;
    *ret_mad = mad;
    /* MAD = 0.6745 sigma and E|X - mu| = 0.7979 sigma for a normal X: scale the
     * mean absolute deviation to stand in for a MAD of 0 */
    double scale = mad > 0 ? mad : mean_abs * (0.6745 / 0.7979);
    if (scale > 0)
        return 0.6745 * (x - med) / scale;
    if (x == med)
        return 0;
    return x > med ? 1e9 : -1e9;
}
