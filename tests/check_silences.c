/*
 * check_silences.c -- operator silences (daemon/silences.c).
 *
 * A silence names a rule and a cluster, and optionally one firm; it covers
 * exactly that, until its end time, and then lapses by itself. The match is
 * a table: one set of silences, many (rule, cluster, firm, time) questions.
 * Ids only ever increase, so a removed silence's id is never reused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/silences.h"

#define T0 INT64_C(1656604800000)
#define HOUR INT64_C(3600000)

static silences_t s;

static void setup(void)
{
    silences_init(&s);
    ck_assert_uint_eq(s.n, 0);
}

static void teardown(void)
{
    silences_free(&s);
    ck_assert_ptr_null(s.items);
    ck_assert_uint_eq(s.n, 0);
}

/* ---- match ----------------------------------------------------------------------- */

/* The silences every match case runs against. */
static void add_fixture(void)
{
    /* 1: one firm, 2 h */
    ck_assert_uint_eq(silences_add(&s, "cod-limit", "energy-env", "wp-1", T0, T0 + 2 * HOUR,
                                   "sensor swap"), 1);
    /* 2: a whole cluster, 1 h */
    ck_assert_uint_eq(silences_add(&s, "revenue-drop", "energy-env", NULL, T0, T0 + HOUR,
                                   "Spring Festival"), 2);
    /* 3: "" as the firm means the whole cluster too */
    ck_assert_uint_eq(silences_add(&s, "growth", "new-energy", "", T0, T0 + HOUR, NULL), 3);
}

static const struct {
    const char *name;
    const char *rule, *cluster, *firm;
    int64_t at;
    bool want;
} match[] = {
    {"the silenced firm", "cod-limit", "energy-env", "wp-1", T0, true},
    {"the silenced firm, just before the end", "cod-limit", "energy-env", "wp-1", T0 + 2 * HOUR - 1, true},
    {"the silenced firm, at the end", "cod-limit", "energy-env", "wp-1", T0 + 2 * HOUR, false},
    {"another firm", "cod-limit", "energy-env", "wp-2", T0, false},
    {"a firm id with the silenced one as prefix", "cod-limit", "energy-env", "wp-10", T0, false},
    {"the cluster-level alert of a firm silence", "cod-limit", "energy-env", NULL, T0, false},
    {"another rule, same firm", "cod-critical", "energy-env", "wp-1", T0, false},
    {"same rule and firm id, another cluster", "cod-limit", "new-energy", "wp-1", T0, false},
    {"a whole-cluster silence covers any firm", "revenue-drop", "energy-env", "gb-1", T0, true},
    {"and the cluster-level alert", "revenue-drop", "energy-env", NULL, T0 + HOUR - 1, true},
    {"a whole-cluster silence ends too", "revenue-drop", "energy-env", "gb-1", T0 + HOUR, false},
    {"not in another cluster", "revenue-drop", "new-energy", "pv-1", T0, false},
    {"an empty firm is a whole-cluster silence", "growth", "new-energy", "pv-1", T0, true},
    {"rules are matched exactly", "revenue", "energy-env", "gb-1", T0, false},
    {"rule names are case-sensitive", "COD-LIMIT", "energy-env", "wp-1", T0, false},
};

START_TEST(test_match)
{
    add_fixture();
    ck_assert_msg(silences_match(&s, match[_i].rule, match[_i].cluster, match[_i].firm,
                                 match[_i].at) == match[_i].want,
                  "%s: expected %s", match[_i].name, match[_i].want ? "silenced" : "not silenced");
}
END_TEST

START_TEST(test_empty_matches_nothing)
{
    ck_assert(!silences_match(&s, "cod-limit", "energy-env", "wp-1", T0));
    ck_assert(!silences_match(&s, "cod-limit", "energy-env", NULL, T0));
    ck_assert_uint_eq(silences_expire(&s, T0), 0);
    ck_assert_int_eq(silences_remove(&s, 1), -1);
}
END_TEST

/* ---- bookkeeping --------------------------------------------------------------------- */

START_TEST(test_add_copies)
{
    char rule[] = "cod-limit", cluster[] = "energy-env", firm[] = "wp-1", reason[] = "swap";

    uint64_t id = silences_add(&s, rule, cluster, firm, T0, T0 + HOUR, reason);
    memset(rule, 'x', sizeof rule - 1);
    memset(firm, 'x', sizeof firm - 1);
    memset(reason, 'x', sizeof reason - 1);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.items[0].id, id);
    ck_assert_str_eq(s.items[0].rule, "cod-limit");
    ck_assert_str_eq(s.items[0].cluster, "energy-env");
    ck_assert_str_eq(s.items[0].firm, "wp-1");
    ck_assert_str_eq(s.items[0].reason, "swap");
    ck_assert_int_eq(s.items[0].created_ms, T0);
    ck_assert_int_eq(s.items[0].until_ms, T0 + HOUR);
    ck_assert(silences_match(&s, "cod-limit", "energy-env", "wp-1", T0));

    silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, NULL);
    ck_assert_ptr_null(s.items[1].firm);
    ck_assert_str_eq(s.items[1].reason, ""); /* never NULL */
}
END_TEST

/* Expiry drops exactly the lapsed ones (until <= now), keeping the others in order. */
START_TEST(test_expire)
{
    silences_add(&s, "a", "c", NULL, T0, T0 + 3 * HOUR, "");
    silences_add(&s, "b", "c", NULL, T0, T0 + HOUR, "");
    silences_add(&s, "c", "c", NULL, T0, T0 + 2 * HOUR, "");
    silences_add(&s, "d", "c", NULL, T0, T0 + HOUR, "");

    ck_assert_uint_eq(silences_expire(&s, T0 + HOUR - 1), 0);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_uint_eq(silences_expire(&s, T0 + HOUR), 2); /* b and d, adjacent after b goes */
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(s.items[0].rule, "a");
    ck_assert_str_eq(s.items[1].rule, "c");
    ck_assert_uint_eq(silences_expire(&s, T0 + 10 * HOUR), 2);
    ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* A lapsed silence no longer matches even before expire() has run. */
START_TEST(test_lapsed_without_expire)
{
    silences_add(&s, "a", "c", "f", T0, T0 + HOUR, "");
    ck_assert(!silences_match(&s, "a", "c", "f", T0 + HOUR));
    ck_assert_uint_eq(s.n, 1);
}
END_TEST

START_TEST(test_remove)
{
    uint64_t a = silences_add(&s, "a", "c", NULL, T0, T0 + HOUR, "");
    uint64_t b = silences_add(&s, "b", "c", NULL, T0, T0 + HOUR, "");
    uint64_t c = silences_add(&s, "c", "c", NULL, T0, T0 + HOUR, "");

    ck_assert_int_eq(silences_remove(&s, b), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert(!silences_match(&s, "b", "c", NULL, T0));
    ck_assert(silences_match(&s, "a", "c", NULL, T0));
    ck_assert(silences_match(&s, "c", "c", NULL, T0));
    ck_assert_int_eq(silences_remove(&s, b), -1); /* gone */
    ck_assert_int_eq(silences_remove(&s, 999), -1);
    ck_assert_int_eq(silences_remove(&s, c), 0);
    ck_assert_int_eq(silences_remove(&s, a), 0);
    ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* Ids increase and are never reused, not even after a removal or an expiry. */
START_TEST(test_ids_increase)
{
    uint64_t last = 0;

    for (int i = 0; i < 40; i++) {
        uint64_t id = silences_add(&s, "r", "c", NULL, T0, T0 + (i % 3) * HOUR, "");
        ck_assert_uint_gt(id, last);
        last = id;
        if (i % 4 == 0)
            ck_assert_int_eq(silences_remove(&s, id), 0);
        if (i % 7 == 0)
            silences_expire(&s, T0 + HOUR);
    }
    ck_assert_uint_eq(last, 40);
    ck_assert_uint_eq(s.next_id, 41);
}
END_TEST

static Suite *silences_suite(void)
{
    Suite *s_ = suite_create("silences");
    TCase *tc = tcase_create("match");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_match, 0, (int)(sizeof match / sizeof match[0]));
    tcase_add_test(tc, test_empty_matches_nothing);
    suite_add_tcase(s_, tc);

    tc = tcase_create("bookkeeping");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_add_copies);
    tcase_add_test(tc, test_expire);
    tcase_add_test(tc, test_lapsed_without_expire);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_ids_increase);
    suite_add_tcase(s_, tc);
    return s_;
}

int main(void)
{
    SRunner *sr = srunner_create(silences_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
