/*
 * check_clock.c -- proto/clock.h: each function reads the clock it names,
 * in the unit it names. No timing assertions: only orderings that hold
 * however slow the machine is (a later reading is never smaller on the
 * monotonic clock; a reading lies between two clock_gettime() calls around
 * it, in the right unit).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "proto/clock.h"

static uint64_t ref_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

START_TEST(test_monotonic_between_readings)
{
    uint64_t before = ref_ns(CLOCK_MONOTONIC);
    int64_t ms = clock_monotonic_ms();
    uint64_t ns = clock_monotonic_ns();
    uint64_t after = ref_ns(CLOCK_MONOTONIC);
    ck_assert_int_ge(ms, (int64_t)(before / 1000000));
    ck_assert_int_le(ms, (int64_t)(after / 1000000));
    ck_assert_uint_ge(ns, before);
    ck_assert_uint_le(ns, after);
}
END_TEST

START_TEST(test_wall_between_readings)
{
    uint64_t before = ref_ns(CLOCK_REALTIME);
    int64_t ms = clock_wall_ms();
    uint64_t ns = clock_wall_ns();
    uint64_t after = ref_ns(CLOCK_REALTIME);
    /* a clock step between the readings would break this, not the code:
     * CLOCK_REALTIME is the only clock that can jump */
    ck_assert_int_ge(ms, (int64_t)(before / 1000000));
    ck_assert_int_le(ms, (int64_t)(after / 1000000));
    ck_assert_uint_ge(ns, before);
    ck_assert_uint_le(ns, after);
    ck_assert_int_gt(ms, 1500000000000); /* milliseconds since 1970, not seconds */
}
END_TEST

START_TEST(test_monotonic_never_goes_back)
{
    int64_t last_ms = clock_monotonic_ms();
    uint64_t last_ns = clock_monotonic_ns();
    for (int i = 0; i < 10000; i++) {
        int64_t ms = clock_monotonic_ms();
        uint64_t ns = clock_monotonic_ns();
        ck_assert_int_ge(ms, last_ms);
        ck_assert_uint_ge(ns, last_ns);
        last_ms = ms;
        last_ns = ns;
    }
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, test_monotonic_between_readings);
    tcase_add_test(tc, test_wall_between_readings);
    tcase_add_test(tc, test_monotonic_never_goes_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
