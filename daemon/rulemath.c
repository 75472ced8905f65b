/* rulemath.c -- see rulemath.h. */
#include "daemon/rulemath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rulemath_growth(double ytd, double ly_ytd, double ly_annual, int months, double target_pct,
                     bool seasonal, growth_t *g)
{
    double t = target_pct / 100.0;
    if (months < 1)
        months = 1;
    if (months > 12)
        months = 12;
    g->base = seasonal ? ly_ytd : ly_annual * months / 12.0;
    g->growth_pct = g->base > 0 ? (ytd / g->base - 1.0) * 100.0 : NAN;
    g->gap_pp = g->growth_pct - target_pct;
    g->expected_ytd = g->base * (1.0 + t);
    if (seasonal)
        g->projection = ly_ytd > 0 ? ytd * ly_annual / ly_ytd : ytd * 12.0 / months;
    else
        g->projection = ytd * 12.0 / months;
    g->target_annual = ly_annual * (1.0 + t);
    g->projection_gap = g->projection - g->target_annual;
}

double rulemath_change_pct(double cur, double prev)
{
    if (prev == 0)
        return NAN;
    return (cur - prev) / fabs(prev) * 100.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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
    qsort(v, n, sizeof *v, cmp_double);
    double med = median_sorted(v, n);
    double mean_abs = 0;
    for (size_t i = 0; i < n; i++) {
        d[i] = fabs(hist[i] - med);
        mean_abs += d[i];
    }
    mean_abs /= (double)n;
    qsort(d, n, sizeof *d, cmp_double);
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
