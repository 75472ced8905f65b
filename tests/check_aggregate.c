/*
 * check_aggregate.c -- the in-memory figures (daemon/aggregate.c).
 *
 * Period totals follow one rule: a period's total is the most direct report
 * there is (the year's own value, else its quarters, each the quarter's own
 * value, else the sum of its months), and a re-sent value replaces the old
 * one. Amounts are fixed point so sums are exact; readings keep the latest
 * value by timestamp and a count. Each test checks one of those promises.
 *
 * The "pack" case: the aggregate writes and reads its own part of a
 * snapshot (agg_pack/agg_unpack), by firm id and metric name, on the default
 * config and the demo registry.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/aggregate.h"
#include "tests/testlib.h"

#define FIRMS 3
#define METRICS 2
#define REV 0 /* a period metric */
#define COD 1 /* a reading metric */

static agg_t *agg;

static void setup(void)
{
    agg = agg_new(FIRMS, METRICS);
    ck_assert_ptr_nonnull(agg);
}

static void teardown(void)
{
    agg_destroy(&agg);
    ck_assert_ptr_null(agg);
}

static proto_period_t year(int y)
{
    return (proto_period_t){.year = (uint16_t)y, .kind = PROTO_PERIOD_YEAR, .index = 0};
}

static proto_period_t quarter(int y, int q)
{
    return (proto_period_t){.year = (uint16_t)y, .kind = PROTO_PERIOD_QUARTER, .index = (uint8_t)q};
}

static proto_period_t month(int y, int m)
{
    return (proto_period_t){.year = (uint16_t)y, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)m};
}

/* The firm's total for p, asserting that it reported something for p. */
static int64_t total(int firm, proto_period_t p)
{
    int64_t v = -1;

    ck_assert_msg(agg_firm_total(agg, firm, REV, p, &v), "no total for %u/%u/%u", p.year, p.kind,
                  p.index);
    return v;
}

static void assert_no_total(int firm, proto_period_t p)
{
    int64_t v = -1;

    ck_assert(!agg_firm_total(agg, firm, REV, p, &v));
    ck_assert_int_eq(v, 0);
}

/* ---- period totals -------------------------------------------------------- */

START_TEST(test_months_roll_up)
{
    agg_put_period(agg, 0, REV, month(2021, 1), 1000);
    agg_put_period(agg, 0, REV, month(2021, 2), 2000);
    agg_put_period(agg, 0, REV, month(2021, 5), 5000);
    agg_put_period(agg, 0, REV, month(2021, 12), 12000);

    ck_assert_int_eq(total(0, month(2021, 2)), 2000);
    ck_assert_int_eq(total(0, quarter(2021, 1)), 3000);
    ck_assert_int_eq(total(0, quarter(2021, 2)), 5000);
    ck_assert_int_eq(total(0, quarter(2021, 4)), 12000);
    ck_assert_int_eq(total(0, year(2021)), 20000);
}
END_TEST

START_TEST(test_nothing_reported)
{
    agg_put_period(agg, 0, REV, month(2021, 1), 1000);

    assert_no_total(0, month(2021, 2));   /* a month it skipped */
    assert_no_total(0, quarter(2021, 3)); /* a quarter with no months */
    assert_no_total(0, year(2020));       /* another year */
    assert_no_total(1, year(2021));       /* another firm */
    int64_t v = -1;
    ck_assert(!agg_firm_total(agg, 0, COD, year(2021), &v)); /* another metric */
    ck_assert_int_eq(v, 0);
}
END_TEST

START_TEST(test_zero_is_a_report)
{
    agg_put_period(agg, 0, REV, month(2021, 3), 0);

    ck_assert_int_eq(total(0, month(2021, 3)), 0);
    ck_assert_int_eq(total(0, quarter(2021, 1)), 0);
    ck_assert_int_eq(total(0, year(2021)), 0);
}
END_TEST

START_TEST(test_restated_month_replaces)
{
    agg_put_period(agg, 0, REV, month(2021, 7), 7000);
    agg_put_period(agg, 0, REV, month(2021, 8), 8000);
    agg_put_period(agg, 0, REV, month(2021, 7), 7500);

    ck_assert_int_eq(total(0, month(2021, 7)), 7500);
    ck_assert_int_eq(total(0, quarter(2021, 3)), 15500);
    ck_assert_int_eq(total(0, year(2021)), 15500);
}
END_TEST

START_TEST(test_restated_year_replaces)
{
    agg_put_period(agg, 0, REV, year(2021), 100);
    agg_put_period(agg, 0, REV, year(2021), -40); /* a loss, restated */

    ck_assert_int_eq(total(0, year(2021)), -40);
}
END_TEST

START_TEST(test_annual_overrides_months)
{
    for (int m = 1; m <= 12; m++)
        agg_put_period(agg, 0, REV, month(2021, m), 1000);
    agg_put_period(agg, 0, REV, year(2021), 50000);

    ck_assert_int_eq(total(0, year(2021)), 50000);
    /* the months are still there for month and quarter questions */
    ck_assert_int_eq(total(0, month(2021, 4)), 1000);
    ck_assert_int_eq(total(0, quarter(2021, 2)), 3000);
}
END_TEST

START_TEST(test_annual_before_months)
{
    agg_put_period(agg, 0, REV, year(2021), 50000);
    agg_put_period(agg, 0, REV, month(2021, 1), 1000); /* arriving later does not win */

    ck_assert_int_eq(total(0, year(2021)), 50000);
}
END_TEST

START_TEST(test_quarter_overrides_its_months)
{
    agg_put_period(agg, 0, REV, month(2021, 4), 1000);
    agg_put_period(agg, 0, REV, month(2021, 5), 1000);
    agg_put_period(agg, 0, REV, quarter(2021, 2), 9000);
    agg_put_period(agg, 0, REV, month(2021, 6), 1000); /* after the quarter: still overridden */
    agg_put_period(agg, 0, REV, month(2021, 7), 700);  /* another quarter: counts */

    ck_assert_int_eq(total(0, quarter(2021, 2)), 9000);
    ck_assert_int_eq(total(0, quarter(2021, 3)), 700);
    ck_assert_int_eq(total(0, month(2021, 5)), 1000);
    ck_assert_int_eq(total(0, year(2021)), 9700);
}
END_TEST

/* Q1 reported as a quarter (and its months too), Q2 from two months, Q3
 * nothing, Q4 from one month. */
START_TEST(test_mixed)
{
    agg_put_period(agg, 0, REV, quarter(2021, 1), 30000);
    for (int m = 1; m <= 3; m++)
        agg_put_period(agg, 0, REV, month(2021, m), 1);
    agg_put_period(agg, 0, REV, month(2021, 4), 4000);
    agg_put_period(agg, 0, REV, month(2021, 5), 5000);
    agg_put_period(agg, 0, REV, month(2021, 12), 12000);

    ck_assert_int_eq(total(0, quarter(2021, 1)), 30000);
    ck_assert_int_eq(total(0, quarter(2021, 2)), 9000);
    assert_no_total(0, quarter(2021, 3));
    ck_assert_int_eq(total(0, quarter(2021, 4)), 12000);
    ck_assert_int_eq(total(0, year(2021)), 51000);
    /* and an annual report overrides all of it */
    agg_put_period(agg, 0, REV, year(2021), 1);
    ck_assert_int_eq(total(0, year(2021)), 1);
    ck_assert_int_eq(total(0, quarter(2021, 2)), 9000);
}
END_TEST

START_TEST(test_years_apart)
{
    agg_put_period(agg, 0, REV, year(2022), 22);
    agg_put_period(agg, 0, REV, year(2020), 20);
    agg_put_period(agg, 0, REV, month(2021, 1), 21);
    agg_put_period(agg, 0, REV, month(2021, 2), 21);

    const agg_series_t *s = agg_series(agg, 0, REV);
    ck_assert_uint_eq(s->nyears, 3); /* one record per year, not per report */
    ck_assert_uint_eq(s->years[0].year, 2020);
    ck_assert_uint_eq(s->years[1].year, 2021);
    ck_assert_uint_eq(s->years[2].year, 2022);
    ck_assert_int_eq(total(0, year(2020)), 20);
    ck_assert_int_eq(total(0, year(2021)), 42);
    ck_assert_int_eq(total(0, year(2022)), 22);
}
END_TEST

START_TEST(test_firms_and_metrics_apart)
{
    agg_put_period(agg, 0, REV, year(2021), 1);
    agg_put_period(agg, 2, REV, year(2021), 3);
    agg_put_period(agg, 2, COD, year(2021), 99);

    ck_assert_int_eq(total(0, year(2021)), 1);
    assert_no_total(1, year(2021));
    ck_assert_int_eq(total(2, year(2021)), 3);
}
END_TEST

START_TEST(test_firm_reported)
{
    agg_put_period(agg, 0, REV, month(2021, 11), 5);
    agg_put_reading(agg, 1, COD, 2022, 3, 12.5, 1000);

    ck_assert(agg_firm_reported(agg, 0, 2021));
    ck_assert(!agg_firm_reported(agg, 0, 2022));
    ck_assert(agg_firm_reported(agg, 1, 2022)); /* a reading counts, any metric */
    ck_assert(!agg_firm_reported(agg, 1, 2021));
    ck_assert(!agg_firm_reported(agg, 2, 2021));
}
END_TEST

/* ---- exactness ------------------------------------------------------------- */

/* Twelve months whose fractions cancel: the total is exact, to the milli. */
START_TEST(test_exact_year)
{
    static const double months[12] = {
        1715000000.1,   1714999999.9,   1715000000.3,   1714999999.7,
        1715000000.7,   1714999999.3,   1715000000.001, 1714999999.999,
        1715000000.123, 1714999999.877, 1715000000.456, 1714999999.544,
    };

    for (int m = 1; m <= 12; m++)
        agg_put_period(agg, 0, REV, month(2021, m), agg_to_milli(months[m - 1]));
    ck_assert_int_eq(total(0, year(2021)), INT64_C(20580000000000));
    ck_assert_int_eq(total(0, quarter(2021, 1)), INT64_C(5145000000300));
    ck_assert_int_eq(total(0, month(2021, 7)), INT64_C(1715000000001));
}
END_TEST

/* The largest amounts the wire allows still add up without overflow. */
START_TEST(test_exact_large)
{
    for (int m = 1; m <= 12; m++)
        agg_put_period(agg, 0, REV, month(2021, m), agg_to_milli(1e14));
    ck_assert_int_eq(total(0, year(2021)), INT64_C(1200000000000000000));
}
END_TEST

static const struct {
    double v;
    int64_t milli;
} milli[] = {
    {0.0005, 1},
    {-0.0005, -1},
    {0.0004, 0},
    {-0.0004, 0},
    {0.0015, 2},
    {1234.567, 1234567},
    {-1234.567, -1234567},
    {0.1, 100},
    {20580000000.0, INT64_C(20580000000000)},
    {1e14, INT64_C(100000000000000000)},
    {-1e14, INT64_C(-100000000000000000)},
    {0.0, 0},
};

START_TEST(test_to_milli)
{
    ck_assert_msg(agg_to_milli(milli[_i].v) == milli[_i].milli,
                  "agg_to_milli(%.17g) = %lld, not %lld", milli[_i].v,
                  (long long)agg_to_milli(milli[_i].v), (long long)milli[_i].milli);
}
END_TEST

/* ---- readings --------------------------------------------------------------- */

START_TEST(test_reading_latest_by_timestamp)
{
    agg_put_reading(agg, 0, COD, 2022, 7, 10.0, 1000);
    agg_put_reading(agg, 0, COD, 2022, 7, 30.0, 3000);
    agg_put_reading(agg, 0, COD, 2022, 7, 20.0, 2000); /* late: counted, not latest */

    const agg_series_t *s = agg_series(agg, 0, COD);
    ck_assert_double_eq(s->last, 30.0);
    ck_assert_int_eq(s->last_ts, 3000);
    ck_assert_uint_eq(s->count, 3);
}
END_TEST

START_TEST(test_reading_same_timestamp)
{
    agg_put_reading(agg, 0, COD, 2022, 7, 10.0, 1000);
    agg_put_reading(agg, 0, COD, 2022, 7, 11.0, 1000); /* the later arrival wins a tie */

    ck_assert_double_eq(agg_series(agg, 0, COD)->last, 11.0);
    ck_assert_uint_eq(agg_series(agg, 0, COD)->count, 2);
}
END_TEST

/* The first reading is taken whatever its timestamp (0 is a valid one). */
START_TEST(test_reading_first)
{
    const agg_series_t *s = agg_series(agg, 1, COD);

    ck_assert_uint_eq(s->count, 0);
    ck_assert_uint_eq(s->nyears, 0);
    agg_put_reading(agg, 1, COD, 1970, 1, -2.5, 0);
    ck_assert_double_eq(s->last, -2.5);
    ck_assert_int_eq(s->last_ts, 0);
    ck_assert_uint_eq(s->count, 1);
    ck_assert_uint_eq(agg_series(agg, 0, COD)->count, 0); /* other firms untouched */
}
END_TEST

START_TEST(test_reading_storage_per_year)
{
    for (int i = 0; i < 10000; i++)
        agg_put_reading(agg, 0, COD, 2022, 1 + i % 12, (double)i, i);

    const agg_series_t *s = agg_series(agg, 0, COD);
    ck_assert_uint_eq(s->nyears, 1);
    ck_assert_uint_eq(s->years[0].month_mask, 0xfff);
    ck_assert_uint_eq(s->count, 10000);
    ck_assert_double_eq(s->last, 9999.0);
}
END_TEST

START_TEST(test_empty_aggregate)
{
    agg_t *none = agg_new(0, 0);

    ck_assert_ptr_nonnull(none);
    agg_destroy(&none);
    ck_assert_ptr_null(none);
    agg_destroy(&none); /* NULL is fine */
}
END_TEST

/* Growing for a former member (registry.h) keeps every series where it was
 * and gives the new firms empty ones. */
/* ---- running sums against a naive re-sum ----------------------------------- */

/* The rule the totals follow, summed from scratch over the stored months,
 * quarters and annual value: what agg_firm_total did before it kept
 * running sums. */
static bool naive_total(const agg_t *a, int firm, proto_period_t p, int64_t *ret)
{
    const agg_series_t *s = agg_series(a, firm, REV);
    *ret = 0;
    for (uint32_t i = 0; i < s->nyears; i++) {
        const agg_year_t *y = &s->years[i];
        if (y->year != p.year)
            continue;
        bool any = false;
        for (int q = 1; q <= 4; q++) {
            if (p.kind == PROTO_PERIOD_QUARTER && q != p.index)
                continue;
            if (y->quarter_mask & (1u << (q - 1))) {
                *ret += y->quarter[q - 1];
                any = true;
                continue;
            }
            for (int m = (q - 1) * 3; m < q * 3; m++) {
                if (p.kind == PROTO_PERIOD_MONTH && m != p.index - 1)
                    continue;
                if (y->month_mask & (1u << m)) {
                    *ret += y->month[m];
                    any = true;
                }
            }
        }
        if (p.kind == PROTO_PERIOD_MONTH) {
            *ret = (y->month_mask & (1u << (p.index - 1))) ? y->month[p.index - 1] : 0;
            return (y->month_mask & (1u << (p.index - 1))) != 0;
        }
        if (p.kind == PROTO_PERIOD_YEAR && y->has_annual) {
            *ret = y->annual;
            return true;
        }
        if (!any)
            *ret = 0;
        return any;
    }
    return false;
}

/* Every total of every firm, 2019..2023, equals the naive re-sum. */
static void assert_totals_naive(const agg_t *a, const char *when)
{
    for (size_t f = 0; f < a->nfirms; f++)
        for (int y = 2019; y <= 2023; y++)
            for (int k = 0; k <= 16; k++) {
                proto_period_t p = k == 0 ? year(y) : k < 5 ? quarter(y, k) : month(y, k - 4);
                int64_t got = -1, want = -1;
                bool g = agg_firm_total(a, (int)f, REV, p, &got);
                bool w = naive_total(a, (int)f, p, &want);
                ck_assert_msg(g == w && got == want,
                              "%s: firm %zu %d kind %d index %d: %d/%lld, naive %d/%lld", when, f,
                              y, p.kind, p.index, g, (long long)got, w, (long long)want);
            }
}

/* Restatements (also to lower and negative values, so deltas go negative),
 * months on both sides of a year boundary, quarters and years in between,
 * and a firm appended after its peers reported (a former member: agg_grow):
 * after every put the running sums agree with a re-sum. */
START_TEST(test_running_sums_match_resum)
{
    uint64_t x = 88172645463325252ull; /* xorshift: the same sequence every run */
    for (int i = 0; i < 4000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (i == 1500)
            agg_grow(agg, FIRMS + 1); /* a former member's series, appended */
        int firm = (int)(x % agg->nfirms);
        int y = 2020 + (int)(x >> 8) % 3;
        int kind = (int)(x >> 16) % 10;
        int64_t v = (int64_t)((x >> 24) % 2000001) - 1000000; /* negative too */
        if (kind == 0)
            agg_put_period(agg, firm, REV, year(y), v);
        else if (kind == 1)
            agg_put_period(agg, firm, REV, quarter(y, 1 + (int)(x >> 40) % 4), v);
        else
            agg_put_period(agg, firm, REV, month(y, 1 + (int)(x >> 40) % 12), v);
        if (i % 97 == 0)
            assert_totals_naive(agg, "during");
    }
    assert_totals_naive(agg, "after");
}
END_TEST

/* A restated month moves its quarter and year by the difference, down too. */
START_TEST(test_restatement_delta)
{
    agg_put_period(agg, 0, REV, month(2021, 12), 5000);
    agg_put_period(agg, 0, REV, month(2022, 1), 3000); /* the next year: apart */
    agg_put_period(agg, 0, REV, month(2021, 11), 1000);
    ck_assert_int_eq(total(0, quarter(2021, 4)), 6000);
    agg_put_period(agg, 0, REV, month(2021, 12), -2000); /* restated to a loss */
    ck_assert_int_eq(total(0, quarter(2021, 4)), -1000);
    ck_assert_int_eq(total(0, year(2021)), -1000);
    ck_assert_int_eq(total(0, year(2022)), 3000);
    agg_put_period(agg, 0, REV, month(2021, 12), -2000); /* the same again: no change */
    ck_assert_int_eq(total(0, year(2021)), -1000);
}
END_TEST

/* Years arrive in any order; the lookup (a binary search) finds each one
 * that arrived, none that did not, and the records stay sorted. */
START_TEST(test_series_year_lookup)
{
    uint64_t x = 2463534242ull;
    bool sent[200] = {false};
    for (int i = 0; i < 150; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)(x % 200);
        sent[k] = true;
        agg_put_period(agg, 1, REV, month(1900 + 2 * k, 1 + k % 12), k);
    }
    const agg_series_t *s = agg_series(agg, 1, REV);
    for (uint32_t i = 1; i < s->nyears; i++)
        ck_assert_int_lt(s->years[i - 1].year, s->years[i].year);
    for (int k = 0; k < 200; k++) {
        const agg_year_t *y = agg_series_year(s, 1900 + 2 * k);
        ck_assert_msg(sent[k] == (y != NULL), "year %d", 1900 + 2 * k);
        if (y) {
            ck_assert_int_eq(y->year, 1900 + 2 * k);
            ck_assert_int_eq(y->month[k % 12], k);
        }
        ck_assert_ptr_null(agg_series_year(s, 1901 + 2 * k)); /* between two */
    }
    ck_assert_ptr_null(agg_series_year(s, 1899));
    ck_assert_ptr_null(agg_series_year(agg_series(agg, 0, REV), 1900)); /* empty */
}
END_TEST

START_TEST(test_grow_keeps_series)
{
    int64_t v;
    agg_put_period(agg, FIRMS - 1, REV, month(2021, 3), 3000);
    agg_put_reading(agg, 0, COD, 2021, 3, 1.5, 100);
    agg_grow(agg, FIRMS + 2);
    ck_assert_uint_eq(agg->nfirms, FIRMS + 2);
    ck_assert(agg_firm_total(agg, FIRMS - 1, REV, year(2021), &v));
    ck_assert_int_eq(v, 3000);
    ck_assert_uint_eq(agg_series(agg, 0, COD)->count, 1);
    ck_assert(!agg_firm_reported(agg, FIRMS + 1, 2021));
    agg_put_period(agg, FIRMS + 1, REV, month(2021, 4), 4000);
    ck_assert(agg_firm_total(agg, FIRMS + 1, REV, year(2021), &v));
    ck_assert_int_eq(v, 4000);
    agg_grow(agg, 1); /* never shrinks */
    ck_assert_uint_eq(agg->nfirms, FIRMS + 2);
}
END_TEST

/* ---- pack / unpack ------------------------------------------------------------------- */

static config_t *pcfg;
static registry_t *preg;
static msgpack_sbuffer pbuf;
static msgpack_zone pzone;

static void pack_setup(void)
{
    char err[CONFIG_ERRLEN];
    const char *kv[] = {NULL};
    pcfg = testlib_config_default(kv);
    ck_assert_msg(registry_load(pcfg->registry, pcfg, &preg, err, sizeof err) == 0, "%s", err);
    agg = agg_new(preg->nall, pcfg->nmetrics);
    msgpack_sbuffer_init(&pbuf);
    msgpack_zone_init(&pzone, 4096);
}

static void pack_teardown(void)
{
    agg_destroy(&agg);
    registry_destroy(&preg);
    config_destroy(&pcfg);
    msgpack_sbuffer_destroy(&pbuf);
    msgpack_zone_destroy(&pzone);
}

static int pfirm(const char *id)
{
    int f = registry_find(preg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static int pmetric(const char *name)
{
    int m = config_metric_find(pcfg, name, strlen(name));
    ck_assert_msg(m >= 0, "no metric %s", name);
    return m;
}

/* Months, a quarter, a year, negative amounts and readings. */
static void pack_fill(agg_t *a)
{
    agg_put_period(a, pfirm("ee-001"), pmetric("revenue"), month(2030, 1), 1500);
    agg_put_period(a, pfirm("ee-001"), pmetric("revenue"), month(2030, 2), -250);
    agg_put_period(a, pfirm("ee-001"), pmetric("profit"), quarter(2030, 3), 7);
    agg_put_period(a, pfirm("ne-001"), pmetric("energy"), year(2029), 123456789);
    agg_put_period(a, pfirm("ne-001"), pmetric("energy"), month(2031, 12), 1);
    agg_put_reading(a, pfirm("ee-002"), pmetric("cod"), 2030, 5, 42.5, 1900000000000LL);
    agg_put_reading(a, pfirm("ee-002"), pmetric("cod"), 2030, 5, 17.25, 1900000060000LL);
}

/* Unpacks what pbuf holds: one MessagePack value. */
static msgpack_object packed(void)
{
    msgpack_object o;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack(pbuf.data, pbuf.size, &off, &pzone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, pbuf.size);
    return o;
}

static bool series_eq(const agg_series_t *a, const agg_series_t *b)
{
    if (a->nyears != b->nyears || a->count != b->count || a->last != b->last ||
        a->last_ts != b->last_ts)
        return false;
    for (uint32_t y = 0; y < a->nyears; y++) {
        const agg_year_t *ya = &a->years[y], *yb = &b->years[y];
        if (ya->year != yb->year || ya->month_mask != yb->month_mask ||
            ya->quarter_mask != yb->quarter_mask || ya->has_annual != yb->has_annual ||
            ya->any != yb->any || ya->annual != yb->annual ||
            memcmp(ya->month, yb->month, sizeof ya->month) != 0 ||
            memcmp(ya->quarter, yb->quarter, sizeof ya->quarter) != 0)
            return false;
    }
    return true;
}

/* Every series comes back as it was; checking alone changes nothing. */
START_TEST(test_pack_round_trip)
{
    char err[256];
    msgpack_packer pk;
    pack_fill(agg);
    msgpack_packer_init(&pk, &pbuf, msgpack_sbuffer_write);
    agg_pack(agg, preg, pcfg, &pk);
    msgpack_object o = packed();
    ck_assert_uint_eq(o.via.array.size, 4); /* the series that hold anything */

    agg_t *got = agg_new(preg->nall, pcfg->nmetrics);
    agg_dropped_t dropped = {0};
    ck_assert_msg(agg_unpack(got, preg, pcfg, &o, false, &dropped, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_uint_eq(agg_series(got, pfirm("ee-001"), pmetric("revenue"))->nyears, 0);
    ck_assert_msg(agg_unpack(got, preg, pcfg, &o, true, &dropped, err, sizeof err) == 0, "%s", err);
    int nonempty = 0;
    for (size_t f = 0; f < agg->nfirms; f++)
        for (size_t m = 0; m < agg->nmetrics; m++) {
            const agg_series_t *a = agg_series(agg, (int)f, (int)m);
            ck_assert_msg(series_eq(a, agg_series(got, (int)f, (int)m)), "%s %s differs",
                          preg->firms[f].id, pcfg->metrics[m].name);
            nonempty += a->nyears > 0;
        }
    ck_assert_int_eq(nonempty, 4);
    ck_assert_uint_eq(dropped.unknown_firms + dropped.unknown_metrics, 0);
    agg_destroy(&got);
}
END_TEST

/* One series entry, with the firm, metric and year given. */
static void pack_entry(msgpack_packer *pk, const char *firm, const char *metric, int yr)
{
    msgpack_pack_array(pk, 6);
    msgpack_pack_str_with_body(pk, firm, strlen(firm));
    msgpack_pack_str_with_body(pk, metric, strlen(metric));
    msgpack_pack_double(pk, 0);
    msgpack_pack_int64(pk, 0);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 8);
    msgpack_pack_int64(pk, yr);
    msgpack_pack_uint16(pk, 1); /* January */
    for (int k = 0; k < 3; k++)
        msgpack_pack_uint8(pk, k == 2); /* quarter_mask, has_annual, any */
    msgpack_pack_int64(pk, 0);
    msgpack_pack_array(pk, 12);
    for (int k = 0; k < 12; k++)
        msgpack_pack_int64(pk, k == 0 ? 9000 : 0);
    msgpack_pack_array(pk, 4);
    for (int k = 0; k < 4; k++)
        msgpack_pack_int64(pk, 0);
}

/* A firm or metric the registry or config no longer has: its series is
 * dropped and counted, the others load. */
START_TEST(test_unpack_drops_unknown)
{
    char err[256];
    msgpack_packer pk;
    msgpack_packer_init(&pk, &pbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    pack_entry(&pk, "gone-001", "revenue", 2030);
    pack_entry(&pk, "ee-001", "gone_metric", 2030);
    pack_entry(&pk, "ee-001", "revenue", 2030);
    msgpack_object o = packed();
    agg_dropped_t dropped = {0};
    ck_assert_msg(agg_unpack(agg, preg, pcfg, &o, true, &dropped, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(dropped.unknown_firms, 1);
    ck_assert_uint_eq(dropped.unknown_metrics, 1);
    int64_t v;
    ck_assert(agg_firm_total(agg, pfirm("ee-001"), pmetric("revenue"), month(2030, 1), &v));
    ck_assert_int_eq(v, 9000);
}
END_TEST

/* Malformed input is refused with the reason, and changes nothing even
 * when asked to apply (a good entry before the bad one included). */
static const struct {
    const char *why;
    int year; /* of the second entry */
    bool not_array;
} bad_series[] = {
    {"series: year out of range", 99999, false},
    {"series: year out of range", 0, false},
    {"series: missing or not an array", 2030, true},
};

START_TEST(test_unpack_refuses)
{
    char err[256] = "";
    msgpack_packer pk;
    msgpack_packer_init(&pk, &pbuf, msgpack_sbuffer_write);
    if (bad_series[_i].not_array) {
        msgpack_pack_map(&pk, 0);
    } else {
        msgpack_pack_array(&pk, 2);
        pack_entry(&pk, "ee-001", "revenue", 2030);
        pack_entry(&pk, "ee-002", "revenue", bad_series[_i].year);
    }
    msgpack_object o = packed();
    ck_assert_int_eq(agg_unpack(agg, preg, pcfg, &o, true, NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, bad_series[_i].why);
    ck_assert_uint_eq(agg_series(agg, pfirm("ee-001"), pmetric("revenue"))->nyears, 0);
}
END_TEST

/* An entry of the wrong shape at each level. */
START_TEST(test_unpack_refuses_shapes)
{
    static const char *const want[] = {"series: malformed entry", "series: malformed year",
                                       "series: malformed month"};
    for (int k = 0; k < 3; k++) {
        char err[256] = "";
        msgpack_packer pk;
        msgpack_sbuffer_clear(&pbuf);
        msgpack_packer_init(&pk, &pbuf, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 6);
        msgpack_pack_str_with_body(&pk, "ee-001", 6);
        msgpack_pack_str_with_body(&pk, "revenue", 7);
        if (k == 0)
            msgpack_pack_int64(&pk, 1); /* last: not a float */
        else
            msgpack_pack_double(&pk, 1);
        msgpack_pack_int64(&pk, 0);
        msgpack_pack_uint64(&pk, 0);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 8);
        for (int f = 0; f < 6; f++)
            msgpack_pack_int64(&pk, f == 0 ? 2030 : 0);
        msgpack_pack_array(&pk, k == 1 ? 11 : 12); /* k 1: 11 months */
        for (int m = 0; m < (k == 1 ? 11 : 12); m++) {
            if (k == 2 && m == 5)
                msgpack_pack_double(&pk, 1.5); /* k 2: a month not an integer */
            else
                msgpack_pack_int64(&pk, 0);
        }
        msgpack_pack_array(&pk, 4);
        for (int q = 0; q < 4; q++)
            msgpack_pack_int64(&pk, 0);
        msgpack_object o = packed();
        ck_assert_int_eq(agg_unpack(agg, preg, pcfg, &o, false, NULL, err, sizeof err), -1);
        ck_assert_str_eq(err, want[k]);
    }
}
END_TEST

static Suite *aggregate_suite(void)
{
    Suite *s = suite_create("aggregate");
    TCase *tc = tcase_create("periods");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_months_roll_up);
    tcase_add_test(tc, test_nothing_reported);
    tcase_add_test(tc, test_zero_is_a_report);
    tcase_add_test(tc, test_restated_month_replaces);
    tcase_add_test(tc, test_restated_year_replaces);
    tcase_add_test(tc, test_annual_overrides_months);
    tcase_add_test(tc, test_annual_before_months);
    tcase_add_test(tc, test_quarter_overrides_its_months);
    tcase_add_test(tc, test_mixed);
    tcase_add_test(tc, test_years_apart);
    tcase_add_test(tc, test_firms_and_metrics_apart);
    tcase_add_test(tc, test_firm_reported);
    tcase_add_test(tc, test_grow_keeps_series);
    tcase_add_test(tc, test_series_year_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("running sums");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_running_sums_match_resum);
    tcase_add_test(tc, test_restatement_delta);
    suite_add_tcase(s, tc);

    tc = tcase_create("exact");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exact_year);
    tcase_add_test(tc, test_exact_large);
    tcase_add_loop_test(tc, test_to_milli, 0, (int)(sizeof milli / sizeof milli[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("readings");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reading_latest_by_timestamp);
    tcase_add_test(tc, test_reading_same_timestamp);
    tcase_add_test(tc, test_reading_first);
    tcase_add_test(tc, test_reading_storage_per_year);
    tcase_add_test(tc, test_empty_aggregate);
    suite_add_tcase(s, tc);

    tc = tcase_create("pack");
    tcase_add_checked_fixture(tc, pack_setup, pack_teardown);
    tcase_add_test(tc, test_pack_round_trip);
    tcase_add_test(tc, test_unpack_drops_unknown);
    tcase_add_loop_test(tc, test_unpack_refuses, 0,
                        (int)(sizeof bad_series / sizeof bad_series[0]));
    tcase_add_test(tc, test_unpack_refuses_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(aggregate_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
