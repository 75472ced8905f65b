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
#include "tests/testlib.h"

static uint64_t ref_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Each function against the clock it names. (A step of CLOCK_REALTIME
 * between the readings would break the wall row, not the code: it is the
 * only clock that can jump.) */
static const struct {
    const char *name;
    clockid_t id;
    int64_t (*ms)(void);
    uint64_t (*ns)(void);
    int64_t min_ms; /* no earlier reading is plausible */
} clocks[] = {
    {"monotonic", CLOCK_MONOTONIC, clock_monotonic_ms, clock_monotonic_ns, 0},
    {"wall", CLOCK_REALTIME, clock_wall_ms, clock_wall_ns, 1500000000000}, /* ms, not s */
};

START_TEST(test_between_readings)
{
    uint64_t before = ref_ns(clocks[_i].id);
    int64_t ms = clocks[_i].ms();
    uint64_t ns = clocks[_i].ns();
    uint64_t after = ref_ns(clocks[_i].id);
    ck_assert_msg(ms >= (int64_t)(before / 1000000) && ms <= (int64_t)(after / 1000000),
                  "%s: %lld ms not within the readings around it", clocks[_i].name, (long long)ms);
    ck_assert_msg(ns >= before && ns <= after, "%s: ns not within the readings around it",
                  clocks[_i].name);
    ck_assert_int_ge(ms, clocks[_i].min_ms);
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
    tcase_add_loop_test(tc, test_between_readings, 0, (int)(sizeof clocks / sizeof clocks[0]));
    tcase_add_test(tc, test_monotonic_never_goes_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(clock_suite());
}
