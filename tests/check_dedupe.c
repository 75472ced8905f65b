/*
 * check_dedupe.c -- an HA pair's subscriber prints each alert event once
 * (agents/dedupe.c): the second copy of (id, state, n, rn) is dropped
 * whichever daemon sends it first, an older event after a newer one is
 * dropped, reminders count apart, grouped alerts are matched by their last
 * keys, alerts without n are never dropped, and the record survives the
 * state file.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "agents/dedupe.h"

static proto_alert_t ev(const char *id, int state, uint64_t n, uint32_t rn, uint64_t seq)
{
    proto_alert_t a;
    memset(&a, 0, sizeof a);
    a.id = proto_str(id);
    a.state = (uint8_t)state;
    a.n = n;
    a.rn = rn;
    a.seq = seq; /* each daemon's own: never part of the key */
    return a;
}

static bool take(dedupe_t *d, proto_alert_t a)
{
    bool unnumbered;
    return dedupe_take(d, &a, &unnumbered);
}

START_TEST(test_second_copy_dropped)
{
    dedupe_t d;
    dedupe_init(&d);
    /* side A's copy, then B's (another seq): once */
    ck_assert(take(&d, ev("cod-limit:ee-024", PROTO_ALERT_FIRING, 1, 0, 7)));
    ck_assert(!take(&d, ev("cod-limit:ee-024", PROTO_ALERT_FIRING, 1, 0, 3)));
    /* B is ahead for the next one: its copy first, A's dropped */
    ck_assert(take(&d, ev("cod-limit:ee-024", PROTO_ALERT_RESOLVED, 2, 0, 4)));
    ck_assert(!take(&d, ev("cod-limit:ee-024", PROTO_ALERT_RESOLVED, 2, 0, 8)));
    /* another alert is another key */
    ck_assert(take(&d, ev("cod-limit:ee-025", PROTO_ALERT_FIRING, 1, 0, 9)));
    /* a lagging side's older event after a newer one: dropped */
    ck_assert(take(&d, ev("cod-limit:ee-025", PROTO_ALERT_RESOLVED, 2, 0, 10)));
    ck_assert(!take(&d, ev("cod-limit:ee-025", PROTO_ALERT_FIRING, 1, 0, 5)));
    ck_assert_uint_eq(d.dropped, 3);
    dedupe_free(&d);
}
END_TEST

START_TEST(test_reminders_apart)
{
    dedupe_t d;
    dedupe_init(&d);
    ck_assert(take(&d, ev("x:f", PROTO_ALERT_FIRING, 1, 0, 1)));
    ck_assert(take(&d, ev("x:f", PROTO_ALERT_FIRING, 1, 1, 2)));
    ck_assert(!take(&d, ev("x:f", PROTO_ALERT_FIRING, 1, 1, 9)));
    ck_assert(take(&d, ev("x:f", PROTO_ALERT_FIRING, 1, 2, 3)));
    ck_assert(take(&d, ev("x:f", PROTO_ALERT_RESOLVED, 2, 0, 4)));
    ck_assert(!take(&d, ev("x:f", PROTO_ALERT_FIRING, 1, 2, 10)));
    dedupe_free(&d);
}
END_TEST

START_TEST(test_groups_by_last_keys)
{
    dedupe_t d;
    dedupe_init(&d);
    proto_alert_t g1 = ev("r:c:group", PROTO_ALERT_FIRING, 12, 0, 1);
    proto_alert_t g2 =
        ev("r:c:group", PROTO_ALERT_RESOLVED, 8, 0, 2); /* fewer members: a lower sum */
    g1.count = 6;
    g2.count = 4;
    ck_assert(take(&d, g1));
    ck_assert(take(&d, g2)); /* not taken for an old one */
    ck_assert(!take(&d, g1));
    ck_assert(!take(&d, g2));
    dedupe_free(&d);
}
END_TEST

START_TEST(test_unnumbered_never_dropped)
{
    dedupe_t d;
    bool unnumbered = false;
    dedupe_init(&d);
    proto_alert_t a = ev("x:f", PROTO_ALERT_FIRING, 0, 0, 1);
    ck_assert(dedupe_take(&d, &a, &unnumbered));
    ck_assert(unnumbered);
    ck_assert(dedupe_take(&d, &a, &unnumbered));
    ck_assert_uint_eq(d.n, 0);
    dedupe_free(&d);
}
END_TEST

START_TEST(test_state_file_round_trip)
{
    dedupe_t d, e;
    char err[256];
    dedupe_init(&d);
    dedupe_init(&e);
    ck_assert(take(&d, ev("b:f", PROTO_ALERT_FIRING, 3, 2, 1)));
    ck_assert(take(&d, ev("a:f", PROTO_ALERT_FIRING, 5000000000ULL, 0, 1)));
    json_t *j = dedupe_json(&d);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(dedupe_load(&e, j, err, sizeof err), 0);
    json_decref(j);
    ck_assert_uint_eq(e.n, 2);
    /* a restarted subscriber drops what it printed before the restart */
    ck_assert(!take(&e, ev("b:f", PROTO_ALERT_FIRING, 3, 2, 7)));
    ck_assert(!take(&e, ev("a:f", PROTO_ALERT_FIRING, 5000000000ULL, 0, 7)));
    ck_assert(take(&e, ev("b:f", PROTO_ALERT_RESOLVED, 4, 0, 8)));

    json_t *bad = json_pack("{s:[i]}", "a:f", 1);
    ck_assert_int_eq(dedupe_load(&e, bad, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'a:f': not [n, rn]"));
    ck_assert_uint_eq(e.n, 2); /* unchanged */
    json_decref(bad);
    dedupe_free(&d);
    dedupe_free(&e);
}
END_TEST

static Suite *dedupe_suite(void)
{
    Suite *s = suite_create("dedupe");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_second_copy_dropped);
    tcase_add_test(tc, test_reminders_apart);
    tcase_add_test(tc, test_groups_by_last_keys);
    tcase_add_test(tc, test_unnumbered_never_dropped);
    tcase_add_test(tc, test_state_file_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dedupe_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
