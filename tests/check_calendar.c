/*
 * check_calendar.c -- timestamps to local calendar months (daemon/calendar.c).
 *
 * Periods are local to the configured zone: in Asia/Shanghai (UTC+8, no DST
 * since 1991) July starts at 2022-06-30T16:00:00Z. The one-month cache must
 * never change an answer, whatever order the questions come in, and a
 * timestamp the wire would never carry (negative, extreme) must not crash.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/calendar.h"

static const struct {
    const char *zone;
    const char *what;
    int64_t ts_ms;
    int year, month;
} table[] = {
    {"Asia/Shanghai", "2022-06-30T16:00:00Z, local midnight of July 1", 1656604800000, 2022, 7},
    {"Asia/Shanghai", "2022-06-30T15:59:59.999Z, the last ms of June", 1656604799999, 2022, 6},
    {"Asia/Shanghai", "2022-07-01T00:00:00Z", 1656633600000, 2022, 7},
    {"Asia/Shanghai", "2021-12-31T16:00:00Z, New Year", 1640966400000, 2022, 1},
    {"Asia/Shanghai", "2021-12-31T15:59:59.999Z", 1640966399999, 2021, 12},
    {"Asia/Shanghai", "1970-01-01T00:00:00Z", 0, 1970, 1},
    {"Asia/Shanghai", "2199-12-31T15:59:59.999Z", 7258089599999, 2199, 12},
    {"UTC", "2022-06-30T16:00:00Z", 1656604800000, 2022, 6},
    {"UTC", "2022-07-01T00:00:00Z", 1656633600000, 2022, 7},
    {"UTC", "2022-06-30T23:59:59.999Z", 1656633599999, 2022, 6},
    {"UTC", "2024-02-29T12:00:00Z, a leap day", 1709208000000, 2024, 2},
    {"America/New_York", "2022-11-01T04:00:00Z, midnight EDT", 1667275200000, 2022, 11},
    {"America/New_York", "2022-11-01T03:59:59.999Z", 1667275199999, 2022, 10},
    {"America/New_York", "2022-12-01T05:00:00Z, midnight EST", 1669870800000, 2022, 12},
    {"America/New_York", "2022-12-01T04:59:59.999Z", 1669870799999, 2022, 11},
    /* negative: before the epoch, floor not truncation */
    {"UTC", "-1 ms", -1, 1969, 12},
    {"UTC", "-1000 ms", -1000, 1969, 12},
    {"UTC", "1969-12-01T00:00:00Z", -2678400000, 1969, 12},
    {"UTC", "1969-11-30T23:59:59.999Z", -2678400001, 1969, 11},
    {"Asia/Shanghai", "-1 ms, 07:59:59.999 local", -1, 1970, 1},
};

START_TEST(test_month_of)
{
    calendar_t cal;
    int y = 0, m = 0;

    ck_assert_int_eq(calendar_init(&cal, table[_i].zone), 0);
    ck_assert_int_eq(calendar_month_of(&cal, table[_i].ts_ms, &y, &m), 0);
    ck_assert_msg(y == table[_i].year && m == table[_i].month, "%s %s: %d-%02d, not %d-%02d",
                  table[_i].zone, table[_i].what, y, m, table[_i].year, table[_i].month);
}
END_TEST

/* The same answers with a warm cache: every row after the one before it. */
START_TEST(test_month_of_cached)
{
    calendar_t cal;
    int y, m;

    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].zone, "Asia/Shanghai") != 0)
            continue;
        /* warm the cache with the neighbouring month first */
        ck_assert_int_eq(calendar_month_of(&cal, table[i].ts_ms + (i % 2 ? 1 : -1), &y, &m), 0);
        ck_assert_int_eq(calendar_month_of(&cal, table[i].ts_ms, &y, &m), 0);
        ck_assert_int_eq(y, table[i].year);
        ck_assert_int_eq(m, table[i].month);
    }
}
END_TEST

/* Asia/Shanghai has been UTC+8 all year since 1991: an independent oracle. */
static void shanghai_month(int64_t ts_ms, int *ret_year, int *ret_month)
{
    time_t t = (time_t)(ts_ms / 1000 + 8 * 3600);
    struct tm tm;

    ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
    *ret_year = tm.tm_year + 1900;
    *ret_month = tm.tm_mon + 1;
}

/* A cache that lied at any month edge would show up here: timestamps on and
 * next to every month boundary of 2020-2023, asked in a shuffled order. */
START_TEST(test_cache_random_order)
{
    enum { N = 48 * 3 + 200 };
    int64_t ts[N];
    size_t n = 0;
    calendar_t cal;
    uint64_t rnd = 0x9e3779b97f4a7c15u;

    for (int y = 2020; y < 2024; y++) {
        for (int mo = 0; mo < 12; mo++) {
            /* local midnight of the 1st, in UTC: the previous day 16:00 */
            struct tm tm = {.tm_year = y - 1900, .tm_mon = mo, .tm_mday = 1};
            int64_t edge = ((int64_t)timegm(&tm) - 8 * 3600) * 1000;
            ts[n++] = edge - 1;
            ts[n++] = edge;
            ts[n++] = edge + 1;
        }
    }
    while (n < N) {
        rnd = rnd * 6364136223846793005u + 1442695040888963407u;
        ts[n++] = 1577808000000 + (int64_t)((rnd >> 11) % (4 * 366 * 86400000ull));
    }
    for (size_t i = N - 1; i > 0; i--) {
        rnd = rnd * 6364136223846793005u + 1442695040888963407u;
        size_t j = (size_t)((rnd >> 33) % (i + 1));
        int64_t t = ts[i];
        ts[i] = ts[j];
        ts[j] = t;
    }
    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N; i++) {
            int y, m, want_y, want_m;
            ck_assert_int_eq(calendar_month_of(&cal, ts[i], &y, &m), 0);
            shanghai_month(ts[i], &want_y, &want_m);
            ck_assert_msg(y == want_y && m == want_m, "ts %lld: %d-%02d, not %d-%02d",
                          (long long)ts[i], y, m, want_y, want_m);
            /* the cached range is the local month it answered with */
            ck_assert_int_le(cal.lo_ms, ts[i]);
            ck_assert_int_gt(cal.hi_ms, ts[i]);
        }
    }
}
END_TEST

/* The cached month's bounds are its local midnights. */
START_TEST(test_cache_bounds)
{
    calendar_t cal;
    int y, m;

    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    ck_assert_int_eq(calendar_month_of(&cal, 1656700000000, &y, &m), 0);     /* July 2022 */
    ck_assert_int_eq(cal.lo_ms, 1656604800000);                              /* 2022-06-30T16:00Z */
    ck_assert_int_eq(cal.hi_ms, 1659283200000);                              /* 2022-07-31T16:00Z */
    ck_assert_int_eq(calendar_month_of(&cal, 1640966400000 + 5, &y, &m), 0); /* Jan 2022 */
    ck_assert_int_eq(cal.lo_ms, 1640966400000);
    ck_assert_int_eq(cal.hi_ms, 1643644800000); /* 2022-01-31T16:00Z */
}
END_TEST

/* calendar_init forgets what the previous zone cached. */
START_TEST(test_init_resets_cache)
{
    calendar_t cal;
    int y, m;

    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    ck_assert_int_eq(calendar_month_of(&cal, 1656604800000, &y, &m), 0);
    ck_assert_int_eq(m, 7);
    ck_assert_int_eq(calendar_init(&cal, "UTC"), 0);
    ck_assert_int_eq(calendar_month_of(&cal, 1656604800000, &y, &m), 0);
    ck_assert_int_eq(m, 6);
}
END_TEST

/* Timestamps the decoder would refuse still get an answer or -1, never a
 * crash or undefined behaviour (SANITIZE=1 checks the arithmetic). */
static const int64_t extreme[] = {
    -1,        -999,          -1000,
    -1001,     -86400000,     INT64_C(-62135596800000), /* 0001-01-01 */
    INT64_MIN, INT64_MIN + 1, INT64_MIN / 2,
    INT64_MAX, INT64_MAX - 1, INT64_MAX / 2,
};

START_TEST(test_extreme_timestamps)
{
    calendar_t cal;
    int y = 0, m = 0;

    ck_assert_int_eq(calendar_init(&cal, "Asia/Shanghai"), 0);
    int rc = calendar_month_of(&cal, extreme[_i], &y, &m);
    ck_assert(rc == 0 || rc == -1);
    if (rc == 0) {
        ck_assert_int_ge(m, 1);
        ck_assert_int_le(m, 12);
        /* asked again, with the cache warm, the same answer */
        int y2, m2;
        ck_assert_int_eq(calendar_month_of(&cal, extreme[_i], &y2, &m2), 0);
        ck_assert_int_eq(y2, y);
        ck_assert_int_eq(m2, m);
    }
    /* and the calendar still works afterwards */
    ck_assert_int_eq(calendar_month_of(&cal, 1656604800000, &y, &m), 0);
    ck_assert_int_eq(y, 2022);
    ck_assert_int_eq(m, 7);
}
END_TEST

START_TEST(test_now)
{
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t now = calendar_now_ms();
    int64_t after = (int64_t)time(NULL) * 1000 + 1000;

    ck_assert_int_ge(now, before);
    ck_assert_int_le(now, after);
}
END_TEST

static Suite *calendar_suite(void)
{
    Suite *s = suite_create("calendar");
    TCase *tc = tcase_create("months");

    tcase_add_loop_test(tc, test_month_of, 0, (int)(sizeof table / sizeof table[0]));
    tcase_add_test(tc, test_month_of_cached);
    tcase_add_test(tc, test_cache_random_order);
    tcase_add_test(tc, test_cache_bounds);
    tcase_add_test(tc, test_init_resets_cache);
    tcase_add_loop_test(tc, test_extreme_timestamps, 0, (int)(sizeof extreme / sizeof extreme[0]));
    tcase_add_test(tc, test_now);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(calendar_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
