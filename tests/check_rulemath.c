/*
 * check_rulemath.c -- the arithmetic of the rules (daemon/rulemath.c).
 *
 * Pure functions, so every case is a row of a table with numbers worked out
 * by hand: year-to-date growth pro-rated linearly or by last year's monthly
 * profile, the month-on-month change, and the robust z (median and MAD, the
 * min_spread floor and the fallbacks for a spread of 0). A row fails on its
 * own and names itself.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rulemath.h"

#define TOL 1e-9

/* Asserts a == want to TOL, or both NaN. */
static void assert_num(const char *what, const char *field, double got, double want)
{
    if (isnan(want))
        ck_assert_msg(isnan(got), "%s: %s is %g, want NaN", what, field, got);
    else
        ck_assert_msg(fabs(got - want) <= TOL * (1 + fabs(want)), "%s: %s is %.12g, want %.12g",
                      what, field, got, want);
}

/* ---- growth -------------------------------------------------------------------- */

static const struct {
    const char *name;
    double ytd, base, ly_annual, target;
    /* growth %, gap pp, expected ytd, projection, target annual, projection gap */
    double growth, gap, expected, projection, target_annual, projection_gap;
} growth[] = {
    /* the worked example: half a year in, last year back-loaded (100 of 240 in H1) */
    {"seasonal base", 108, 100, 240, 15, 8, -7, 115, 259.2, 276, -16.8},
    /* the same figures against a linear base: H1 "should" be 120, so -10 % */
    {"linear base", 108, 120, 240, 15, -10, -25, 138, 216, 276, -60},
    {"on target", 115, 100, 240, 15, 15, 0, 115, 276, 276, 0},
    /* a negative target (a shrinking cluster) */
    {"negative target", 90, 100, 200, -5, -10, -5, 95, 180, 190, -10},
    {"a full year", 264, 240, 240, 15, 10, -5, 276, 264, 276, -12},
    /* no base: growth and the projection are undefined, not 0 or infinite */
    {"no base", 100, 0, 240, 15, NAN, NAN, 0, NAN, 276, NAN},
    {"negative base", 100, -50, 240, 15, NAN, NAN, -57.5, NAN, 276, NAN},
};

START_TEST(test_growth)
{
    growth_t g;

    memset(&g, 0xa5, sizeof g); /* every field must be written */
    rulemath_growth(growth[_i].ytd, growth[_i].base, growth[_i].ly_annual, growth[_i].target, &g);
    assert_num(growth[_i].name, "base", g.base, growth[_i].base);
    assert_num(growth[_i].name, "growth_pct", g.growth_pct, growth[_i].growth);
    assert_num(growth[_i].name, "gap_pp", g.gap_pp, growth[_i].gap);
    assert_num(growth[_i].name, "expected_ytd", g.expected_ytd, growth[_i].expected);
    assert_num(growth[_i].name, "projection", g.projection, growth[_i].projection);
    assert_num(growth[_i].name, "target_annual", g.target_annual, growth[_i].target_annual);
    assert_num(growth[_i].name, "projection_gap", g.projection_gap, growth[_i].projection_gap);
}
END_TEST

/* One firm's part, like for like. Months are 10 a month last year (120 a
 * year) and 11 this year unless a row says otherwise; masks say which
 * months each year has. */
#define ALL 0xfffu
static const struct {
    const char *name;
    unsigned cur_mask, prev_mask;
    double prev_annual;
    bool complete;
    int months;
    rule_prorate_t mode;
    bool used, seasonal;
    double ytd, base;
    int n;
} part[] = {
    {"auto, both years monthly: seasonal", ALL, ALL, 120, true, 6, PRORATE_AUTO, true, true, 66, 60,
     6},
    {"auto, a month missing this year: not in the base either", 0x3bu, ALL, 120, true, 6,
     PRORATE_AUTO, true, true, 55, 50, 5},
    {"auto, a month missing last year: not in ytd either", ALL, 0x3eu, 120, true, 6, PRORATE_AUTO,
     true, true, 55, 50, 5},
    {"auto, last year only as a total: linear", ALL, 0, 120, true, 6, PRORATE_AUTO, true, false, 66,
     60, 6},
    {"auto, last year's total incomplete: not compared", ALL, 0, 60, false, 6, PRORATE_AUTO, false,
     false, 0, 0, 0},
    {"auto, nothing this year", 0, ALL, 120, true, 6, PRORATE_AUTO, false, false, 0, 0, 0},
    /* the early firm: November in, but the scope's months stop at October */
    {"months caps this year's months", ALL, ALL, 120, true, 10, PRORATE_AUTO, true, true, 110, 100,
     10},
    {"seasonal, last year only as a total: not compared", ALL, 0, 120, true, 6, PRORATE_SEASONAL,
     false, false, 0, 0, 0},
    {"linear, both years monthly: last year's total", ALL, ALL, 120, true, 6, PRORATE_LINEAR, true,
     false, 66, 60, 6},
    /* linear counts the firm's own months: a firm 2 months behind is not
     * a collapse (the user's -2.3 %: base = annual * 11 / 12 for everyone) */
    {"linear, the firm's own months", 0x3ffu, ALL, 120, true, 11, PRORATE_LINEAR, true, false, 110,
     100, 10},
    {"linear, incomplete last year: not compared", ALL, ALL, 120, false, 6, PRORATE_LINEAR, false,
     false, 0, 0, 0},
    {"months above 12 are clamped", ALL, ALL, 120, true, 14, PRORATE_AUTO, true, true, 132, 120,
     12},
};

START_TEST(test_growth_part)
{
    double cur[12], prev[12];
    growth_part_t g;
    for (int k = 0; k < 12; k++) {
        cur[k] = 11;
        prev[k] = 10;
    }
    memset(&g, 0xa5, sizeof g);
    rulemath_growth_part(cur, part[_i].cur_mask, prev, part[_i].prev_mask, part[_i].prev_annual,
                         part[_i].complete, part[_i].months, part[_i].mode, &g);
    ck_assert_msg(g.used == part[_i].used, "%s: used %d", part[_i].name, g.used);
    ck_assert_msg(g.seasonal == part[_i].seasonal, "%s: seasonal %d", part[_i].name, g.seasonal);
    assert_num(part[_i].name, "ytd", g.ytd, part[_i].ytd);
    assert_num(part[_i].name, "base", g.base, part[_i].base);
    ck_assert_msg(g.months == part[_i].n, "%s: months %d", part[_i].name, g.months);
    assert_num(part[_i].name, "ly_annual", g.ly_annual, part[_i].prev_annual);
}
END_TEST

/* The point of seasonal proration: a year whose months repeat last year's
 * shape exactly grows by the same % in every month, however uneven the months. */
START_TEST(test_growth_seasonal_is_shape_free)
{
    static const double ly[12] = {40, 5, 10, 12, 15, 18, 20, 22, 25, 28, 30, 15};
    double cur[12], ly_annual = 0;

    for (int m = 0; m < 12; m++) {
        ly_annual += ly[m];
        cur[m] = ly[m] * 1.12;
    }
    for (int m = 1; m <= 12; m++) {
        growth_t g;
        growth_part_t p;
        rulemath_growth_part(cur, ALL, ly, ALL, ly_annual, true, m, PRORATE_AUTO, &p);
        rulemath_growth(p.ytd, p.base, p.ly_annual, 15, &g);
        ck_assert_msg(fabs(g.growth_pct - 12) < 1e-9, "month %d: %g", m, g.growth_pct);
        ck_assert_msg(fabs(g.projection - ly_annual * 1.12) < 1e-9, "month %d: %g", m,
                      g.projection);
        /* linear proration reads January's big month as growth */
        rulemath_growth_part(cur, ALL, ly, ALL, ly_annual, true, m, PRORATE_LINEAR, &p);
        rulemath_growth(p.ytd, p.base, p.ly_annual, 15, &g);
        if (m == 1)
            ck_assert_double_gt(g.growth_pct, 100);
    }
}
END_TEST

/* ---- change ---------------------------------------------------------------------- */

static const struct {
    double cur, prev, want;
} change[] = {
    {110, 100, 10},
    {50, 100, -50},
    {0, 100, -100},
    {100, 100, 0},
    {300, 100, 200},
    {100, 0, NAN}, /* no base */
    {0, 0, NAN},
    {-5, 0, NAN},
    /* a negative previous value (a loss): the change is against its size */
    {-50, -100, 50},   /* the loss halved: +50 % */
    {-150, -100, -50}, /* the loss grew by half: -50 % */
    {100, -100, 200},  /* from a loss to a profit */
    {-100, 100, -200},
};

START_TEST(test_change_pct)
{
    char what[64];

    snprintf(what, sizeof what, "change %g vs %g", change[_i].cur, change[_i].prev);
    assert_num(what, "pct", rulemath_change_pct(change[_i].cur, change[_i].prev), change[_i].want);
}
END_TEST

/* ---- robust z --------------------------------------------------------------------- */

#define MAD_OVER_MEAN (0.6745 / 0.7979)

static const struct {
    const char *name;
    double hist[8];
    size_t n;
    double x, min_spread;
    double z, median, mad;
} robust[] = {
    /* odd n: median 3, |deviations| 2 1 0 1 97 -> MAD 1; the 100 does not move either */
    {"odd n, at the median", {1, 2, 3, 4, 100}, 5, 3, 0, 0, 3, 1},
    {"odd n, above", {1, 2, 3, 4, 100}, 5, 5, 0, 0.6745 * 2, 3, 1},
    {"odd n, below", {100, 4, 3, 2, 1}, 5, 0, 0, 0.6745 * -3, 3, 1}, /* order does not matter */
    /* even n: median 2.5, |deviations| 1.5 .5 .5 1.5 -> MAD 1 */
    {"even n", {4, 1, 3, 2}, 4, 4.5, 0, 0.6745 * 2, 2.5, 1},
    {"even n, two", {10, 20}, 2, 25, 0, 0.6745 * 10 / 5, 15, 5},
    /* shuffled, with repeats: median (3 + 5) / 2, |deviations| 3 1 5 1 3 4 1 1 -> MAD 2 */
    {"shuffled repeats", {7, 3, 9, 3, 1, 8, 3, 5}, 8, 8, 0, 0.6745 * 4 / 2, 4, 2},
    {"one point", {7}, 1, 7, 0, 0, 7, 0},
    /* the floor: MAD 0 here, but at least 5 % of the median (5) is used */
    {"min_spread floor", {100, 100, 100, 101, 99}, 5, 110, 5, 0.6745 * 10 / 5, 100, 5},
    {"floor below the MAD is ignored", {1, 2, 3, 4, 100}, 5, 5, 10, 0.6745 * 2, 3, 1},
    {"floor on a negative median", {-100, -100, -100}, 3, -90, 5, 0.6745 * 10 / 5, -100, 5},
    /* MAD 0 and no floor: the mean absolute deviation (0.4) stands in, scaled */
    {"MAD 0, mean abs dev",
     {100, 100, 100, 101, 99},
     5,
     110,
     0,
     0.6745 * 10 / (0.4 * MAD_OVER_MEAN),
     100,
     0},
    /* all equal: no spread at all */
    {"all equal, at the value", {5, 5, 5, 5}, 4, 5, 0, 0, 5, 0},
    {"all equal, above", {5, 5, 5, 5}, 4, 6, 0, 1e9, 5, 0},
    {"all equal, below", {5, 5, 5, 5}, 4, 4, 0, -1e9, 5, 0},
    {"all equal, floored", {5, 5, 5, 5}, 4, 6, 5, 0.6745 * 1 / 0.25, 5, 0.25},
    {"all zero, floor of 0", {0, 0, 0}, 3, 1, 5, 1e9, 0, 0},
    /* a steady series: one bad month stands out, a normal one does not */
    {"steady, normal month", {100, 102, 98, 101, 99, 100}, 6, 103, 5, 0.6745 * 3 / 5, 100, 5},
    {"steady, bad month", {100, 102, 98, 101, 99, 100}, 6, 50, 5, 0.6745 * -50 / 5, 100, 5},
};

START_TEST(test_robust_z)
{
    double hist[8], med = -1, mad = -1;

    memcpy(hist, robust[_i].hist, sizeof hist);
    double z =
        rulemath_robust_z(hist, robust[_i].n, robust[_i].x, robust[_i].min_spread, &med, &mad);
    assert_num(robust[_i].name, "z", z, robust[_i].z);
    assert_num(robust[_i].name, "median", med, robust[_i].median);
    assert_num(robust[_i].name, "mad", mad, robust[_i].mad);
    /* the history is the caller's: not sorted in place */
    ck_assert_msg(memcmp(hist, robust[_i].hist, sizeof hist) == 0, "%s: history changed",
                  robust[_i].name);
}
END_TEST

/* What the outlier rule relies on, stated as the rule states it (k = 5, 2). */
START_TEST(test_robust_z_bad_month)
{
    static const double steady[] = {1.10, 1.12, 1.08, 1.11, 1.09, 1.10};
    double med, mad;

    ck_assert_double_gt(fabs(rulemath_robust_z(steady, 6, 0.55, 5, &med, &mad)), 5);
    ck_assert_double_gt(fabs(rulemath_robust_z(steady, 6, 2.2, 5, &med, &mad)), 5);
    ck_assert_double_lt(fabs(rulemath_robust_z(steady, 6, 1.13, 5, &med, &mad)), 2);
    ck_assert_double_lt(fabs(rulemath_robust_z(steady, 6, 1.06, 5, &med, &mad)), 2);
    ck_assert_double_eq_tol(med, 1.10, TOL);
}
END_TEST

/* More than 256 points: only the first 256 are read (no overrun). */
START_TEST(test_robust_z_caps_n)
{
    double *hist = malloc(300 * sizeof *hist), med, mad;

    ck_assert_ptr_nonnull(hist);
    for (int i = 0; i < 300; i++)
        hist[i] = i < 256 ? 10 : 1e6;
    double z = rulemath_robust_z(hist, 300, 10, 0, &med, &mad);
    ck_assert_double_eq(med, 10);
    ck_assert_double_eq(mad, 0);
    ck_assert_double_eq(z, 0);
    free(hist);
}
END_TEST

static Suite *rulemath_suite(void)
{
    Suite *s = suite_create("rulemath");
    TCase *tc = tcase_create("growth");

    tcase_add_loop_test(tc, test_growth, 0, (int)(sizeof growth / sizeof growth[0]));
    tcase_add_loop_test(tc, test_growth_part, 0, (int)(sizeof part / sizeof part[0]));
    tcase_add_test(tc, test_growth_seasonal_is_shape_free);
    suite_add_tcase(s, tc);

    tc = tcase_create("change");
    tcase_add_loop_test(tc, test_change_pct, 0, (int)(sizeof change / sizeof change[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("robust_z");
    tcase_add_loop_test(tc, test_robust_z, 0, (int)(sizeof robust / sizeof robust[0]));
    tcase_add_test(tc, test_robust_z_bad_month);
    tcase_add_test(tc, test_robust_z_caps_n);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rulemath_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
