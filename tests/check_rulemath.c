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
    double ytd, ly_ytd, ly_annual;
    int months;
    double target;
    bool seasonal;
    /* base, growth %, gap pp, expected ytd, projection, target annual, projection gap */
    double base, growth, gap, expected, projection, target_annual, projection_gap;
} growth[] = {
    /* the worked example: half a year in, last year back-loaded (100 of 240 in H1) */
    {"seasonal", 108, 100, 240, 6, 15, true, 100, 8, -7, 115, 259.2, 276, -16.8},
    /* the same figures pro-rated linearly: H1 "should" be 120, so -10 % */
    {"linear", 108, 100, 240, 6, 15, false, 120, -10, -25, 138, 216, 276, -60},
    /* on target exactly */
    {"seasonal on target", 115, 100, 240, 6, 15, true, 100, 15, 0, 115, 276, 276, 0},
    {"linear on target", 138, 100, 240, 6, 15, false, 120, 15, 0, 138, 276, 276, 0},
    /* a negative target (a shrinking cluster) */
    {"negative target", 90, 100, 200, 3, -5, true, 100, -10, -5, 95, 180, 190, -10},
    /* a full year: both prorations agree */
    {"twelve months seasonal", 264, 240, 240, 12, 15, true, 240, 10, -5, 276, 264, 276, -12},
    {"twelve months linear", 264, 240, 240, 12, 15, false, 240, 10, -5, 276, 264, 276, -12},
    /* months outside 1..12 are clamped */
    {"months 0 clamps to 1", 11, 10, 240, 0, 0, false, 20, -45, -45, 20, 132, 240, -108},
    {"months -3 clamps to 1", 11, 10, 240, -3, 0, false, 20, -45, -45, 20, 132, 240, -108},
    {"months 13 clamps to 12", 264, 240, 240, 13, 15, false, 240, 10, -5, 276, 264, 276, -12},
    /* no base: growth is undefined, not 0 or infinite */
    {"linear, no last year", 100, 0, 0, 6, 15, false, 0, NAN, NAN, 0, 200, 0, 200},
    {"seasonal, no same months", 100, 0, 240, 6, 15, true, 0, NAN, NAN, 0, 200, 276, -76},
    {"negative base", 100, -50, 240, 6, 15, true, -50, NAN, NAN, -57.5, 200, 276, -76},
};

START_TEST(test_growth)
{
    growth_t g;

    memset(&g, 0xa5, sizeof g); /* every field must be written */
    rulemath_growth(growth[_i].ytd, growth[_i].ly_ytd, growth[_i].ly_annual, growth[_i].months,
                    growth[_i].target, growth[_i].seasonal, &g);
    assert_num(growth[_i].name, "base", g.base, growth[_i].base);
    assert_num(growth[_i].name, "growth_pct", g.growth_pct, growth[_i].growth);
    assert_num(growth[_i].name, "gap_pp", g.gap_pp, growth[_i].gap);
    assert_num(growth[_i].name, "expected_ytd", g.expected_ytd, growth[_i].expected);
    assert_num(growth[_i].name, "projection", g.projection, growth[_i].projection);
    assert_num(growth[_i].name, "target_annual", g.target_annual, growth[_i].target_annual);
    assert_num(growth[_i].name, "projection_gap", g.projection_gap, growth[_i].projection_gap);
}
END_TEST

/* The point of seasonal proration: a year whose months repeat last year's
 * shape exactly grows by the same % in every month, however uneven the months. */
START_TEST(test_growth_seasonal_is_shape_free)
{
    static const double ly[12] = {40, 5, 10, 12, 15, 18, 20, 22, 25, 28, 30, 15};
    double ly_annual = 0;

    for (int m = 0; m < 12; m++)
        ly_annual += ly[m];
    double ytd = 0, ly_ytd = 0;
    for (int m = 1; m <= 12; m++) {
        growth_t g;
        ytd += ly[m - 1] * 1.12;
        ly_ytd += ly[m - 1];
        rulemath_growth(ytd, ly_ytd, ly_annual, m, 15, true, &g);
        ck_assert_msg(fabs(g.growth_pct - 12) < 1e-9, "month %d: %g", m, g.growth_pct);
        ck_assert_msg(fabs(g.projection - ly_annual * 1.12) < 1e-9, "month %d: %g", m,
                      g.projection);
        /* linear proration reads January's big month as growth, February's as a collapse */
        rulemath_growth(ytd, ly_ytd, ly_annual, m, 15, false, &g);
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
    {100, 0, NAN},  /* no base */
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
    {"one point", {7}, 1, 7, 0, 0, 7, 0},
    /* the floor: MAD 0 here, but at least 5 % of the median (5) is used */
    {"min_spread floor", {100, 100, 100, 101, 99}, 5, 110, 5, 0.6745 * 10 / 5, 100, 5},
    {"floor below the MAD is ignored", {1, 2, 3, 4, 100}, 5, 5, 10, 0.6745 * 2, 3, 1},
    {"floor on a negative median", {-100, -100, -100}, 3, -90, 5, 0.6745 * 10 / 5, -100, 5},
    /* MAD 0 and no floor: the mean absolute deviation (0.4) stands in, scaled */
    {"MAD 0, mean abs dev", {100, 100, 100, 101, 99}, 5, 110, 0,
     0.6745 * 10 / (0.4 * MAD_OVER_MEAN), 100, 0},
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
    double z = rulemath_robust_z(hist, robust[_i].n, robust[_i].x, robust[_i].min_spread, &med, &mad);
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
