/*
 * check_clone.c -- a subscriber's copy of the firing alerts
 * (agents/clone.c): per-cluster sequence numbers, gaps, heartbeats, the
 * entry's state, and the state file. No sockets: the snapshot's network half
 * is exercised by tests/rules_e2e.sh and tests/security_e2e.sh.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/clone.h"
#include "tests/testlib.h"

static proto_alert_t alert(const char *cluster, const char *id, proto_alert_state_t state,
                           uint64_t seq)
{
    proto_alert_t a;
    memset(&a, 0, sizeof a);
    a.id = proto_str(id);
    a.cluster = proto_str(cluster);
    a.state = (uint8_t)state;
    a.seq = seq;
    return a;
}

#define C(s) proto_str(s)

/* Each cluster's numbers are checked on their own: a cluster seen at 5 and
 * another at 1 are both in order. */
START_TEST(test_per_cluster_verdicts)
{
    clone_t c;
    clone_init(&c);
    c.synced = true; /* as after a snapshot listing no cluster */
    ck_assert_int_eq(clone_check(&c, C("east"), 1), CLONE_APPLY);
    proto_alert_t a = alert("east", "r:a", PROTO_ALERT_FIRING, 1);
    clone_apply(&c, &a);
    a = alert("east", "r:b", PROTO_ALERT_FIRING, 2);
    clone_apply(&c, &a);
    ck_assert_int_eq(clone_check(&c, C("west"), 1), CLONE_APPLY);
    ck_assert_int_eq(clone_check(&c, C("west"), 2), CLONE_GAP); /* west's 1 was lost */
    ck_assert_int_eq(clone_check(&c, C("east"), 3), CLONE_APPLY);
    ck_assert_int_eq(clone_check(&c, C("east"), 2), CLONE_OLD);
    ck_assert_int_eq(clone_check(&c, C("east"), 5), CLONE_GAP);
    ck_assert_uint_eq(clone_seq(&c, C("east")), 2);
    ck_assert_uint_eq(clone_seq(&c, C("west")), 0);
    clone_free(&c);
}
END_TEST

/* Before any snapshot (it failed), a cluster's first update is taken as is. */
START_TEST(test_unsynced_takes_the_stream)
{
    clone_t c;
    clone_init(&c);
    ck_assert_int_eq(clone_check(&c, C("east"), 57), CLONE_APPLY);
    proto_alert_t a = alert("east", "r:a", PROTO_ALERT_FIRING, 57);
    clone_apply(&c, &a);
    ck_assert_int_eq(clone_check(&c, C("east"), 58), CLONE_APPLY);
    ck_assert_int_eq(clone_check(&c, C("east"), 60), CLONE_GAP);
    clone_free(&c);
}
END_TEST

/* A heartbeat shows lost updates of its own cluster only. */
START_TEST(test_heartbeats)
{
    clone_t c;
    clone_init(&c);
    c.synced = true;
    clone_advance(&c, C("east"), 4);
    ck_assert(!clone_heartbeat(&c, C("east"), 4));
    ck_assert(clone_heartbeat(&c, C("east"), 5));
    ck_assert(!clone_heartbeat(&c, C("west"), 0)); /* nothing there yet: remembered */
    ck_assert_uint_eq(c.nseqs, 2);
    ck_assert(clone_heartbeat(&c, C("west"), 1));
    ck_assert(clone_heartbeat(&c, C("north"), 3)); /* published since the snapshot */
    clone_free(&c);
}
END_TEST

/* An entry's state is the condition: revised stays firing; its seq the last message's. */
START_TEST(test_revised_is_firing)
{
    clone_t c;
    clone_init(&c);
    proto_alert_t a = alert("east", "r:a", PROTO_ALERT_FIRING, 1);
    clone_apply(&c, &a);
    a = alert("east", "r:a", PROTO_ALERT_REVISED, 2);
    clone_apply(&c, &a);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.items[0].state, PROTO_ALERT_FIRING);
    ck_assert_uint_eq(c.items[0].seq, 2);
    a = alert("east", "r:a", PROTO_ALERT_FLAPPING, 3);
    clone_apply(&c, &a);
    ck_assert_int_eq(c.items[0].state, PROTO_ALERT_FLAPPING);
    a = alert("east", "r:a", PROTO_ALERT_RESOLVED, 4);
    clone_apply(&c, &a);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_uint_eq(clone_seq(&c, C("east")), 4);
    clone_free(&c);
}
END_TEST

START_TEST(test_state_file)
{
    testlib_dir_t dir;
    char path[96];
    testlib_dir_make(&dir, "clone");
    testlib_dir_file(&dir, "state", path, sizeof path);
    clone_t c;
    clone_init(&c);
    proto_alert_t a = alert("east", "r:a", PROTO_ALERT_REVISED, 3);
    clone_apply(&c, &a);
    clone_advance(&c, C("west"), 9);
    ck_assert_int_eq(clone_write_state(&c, path), 0);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "seqs"), "east")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "seqs"), "west")), 9);
    ck_assert_ptr_null(json_object_get(j, "seq"));
    json_t *e = json_array_get(json_object_get(j, "firing"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "state")), "firing");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "seq")), 3);
    json_decref(j);
    clone_free(&c);
    testlib_dir_remove(&dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clone");
    TCase *tc = tcase_create("clone");
    tcase_add_test(tc, test_per_cluster_verdicts);
    tcase_add_test(tc, test_unsynced_takes_the_stream);
    tcase_add_test(tc, test_heartbeats);
    tcase_add_test(tc, test_revised_is_firing);
    tcase_add_test(tc, test_state_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
