/*
 * check_hacursor.c -- the per-side cursors of an HA pair (agents/hacursor.c):
 * a round trip, sides matched by endpoint whatever their order, a new
 * endpoint starting at 0, and a damaged file refused rather than guessed at.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/hacursor.h"
#include "tests/testlib.h"

static testlib_dir_t tdir;

static void setup(void)
{
    testlib_dir_make(&tdir, "hacursor");
}

static void teardown(void)
{
    testlib_dir_remove(&tdir);
}

START_TEST(test_no_file_starts_at_zero)
{
    const char *eps[2] = {"ipc://a", "ipc://b"};
    uint64_t acked[2] = {9, 9};
    bool known[2] = {true, true};
    char err[256];

    ck_assert_int_eq(hacursor_load(tdir.path, eps, acked, known, err, sizeof err), 0);
    ck_assert_uint_eq(acked[0], 0);
    ck_assert_uint_eq(acked[1], 0);
    ck_assert(!known[0] && !known[1]);
}
END_TEST

START_TEST(test_round_trip_by_endpoint)
{
    const char *eps[2] = {"tcp://a:7601", "tcp://b:7601"};
    const uint64_t saved[2] = {1795922226766ULL, 17};
    uint64_t acked[2];
    bool known[2];
    char err[256];

    ck_assert_int_eq(hacursor_save(tdir.path, eps, saved, err, sizeof err), 0);
    ck_assert_int_eq(hacursor_load(tdir.path, eps, acked, known, err, sizeof err), 0);
    ck_assert_uint_eq(acked[0], 1795922226766ULL);
    ck_assert_uint_eq(acked[1], 17);
    ck_assert(known[0] && known[1]);

    /* the pair given the other way round: each endpoint keeps its number */
    const char *swapped[2] = {"tcp://b:7601", "tcp://a:7601"};
    ck_assert_int_eq(hacursor_load(tdir.path, swapped, acked, known, err, sizeof err), 0);
    ck_assert_uint_eq(acked[0], 17);
    ck_assert_uint_eq(acked[1], 1795922226766ULL);

    /* a new side starts at 0: it is sent every batch still spooled */
    const char *renamed[2] = {"tcp://a:7601", "tcp://c:7601"};
    ck_assert_int_eq(hacursor_load(tdir.path, renamed, acked, known, err, sizeof err), 0);
    ck_assert(known[0] && !known[1]);
    ck_assert_uint_eq(acked[1], 0);
}
END_TEST

static const struct {
    const char *text, *want;
} damaged[] = {
    {"", "empty"},
    {"something else 1\n", ":1: not a clustermon-agent-ha"},
    {"clustermon-agent-ha 2\n", ":1: not a clustermon-agent-ha"},
    {"clustermon-agent-ha 1\nside A x ipc://a\n", ":2: expected"},
    {"clustermon-agent-ha 1\nside A 12\n", ":2: expected"},
    {"clustermon-agent-ha 1\nside A 12 ipc://a", ":2: line too long or not ended"},
};

START_TEST(test_damaged_refused)
{
    const char *eps[2] = {"ipc://a", "ipc://b"};
    uint64_t acked[2];
    bool known[2];
    char err[256], path[512];

    testlib_dir_file(&tdir, "ha", path, sizeof path);
    testlib_write_file(path, damaged[_i].text, 0600);
    ck_assert_int_eq(hacursor_load(tdir.path, eps, acked, known, err, sizeof err), -1);
    ck_assert_msg(strstr(err, damaged[_i].want) != NULL, "%s: want '%s'", err, damaged[_i].want);
}
END_TEST

static Suite *hacursor_suite(void)
{
    Suite *s = suite_create("hacursor");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_file_starts_at_zero);
    tcase_add_test(tc, test_round_trip_by_endpoint);
    tcase_add_loop_test(tc, test_damaged_refused, 0, (int)(sizeof damaged / sizeof damaged[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hacursor_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
