/*
 * check_handoff.c -- clustermon-sub --exec's bookkeeping (agents/handoff.c):
 * delivered only on success, retries with a capped doubling backoff and in
 * order per alert id, giving up, what a snapshot adds (new alerts, and
 * synthesized resolved events), grouped alerts, and the state file's
 * delivery record read back (and refused, naming the field). No processes:
 * the e2e half is tests/sub_exec_e2e.sh. Times are numbers passed in, never
 * the clock.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/handoff.h"
#include "tests/testlib.h"

static proto_alert_t alert(const char *cluster, const char *id, proto_alert_state_t state,
                           uint64_t seq)
{
    proto_alert_t a;
    memset(&a, 0, sizeof a);
    a.id = proto_str(id);
    a.rule = proto_str("cod-limit");
    a.cluster = proto_str(cluster);
    a.state = (uint8_t)state;
    a.seq = seq;
    return a;
}

/* The JSON an alert is given to the command as (enough of it for these tests). */
static json_t *body(const proto_alert_t *a)
{
    return json_pack("{s:I, s:s%, s:s%, s:s, s:s%, s:s, s:f, s:I, s:I, s:{s:i}}", "seq",
                     (json_int_t)a->seq, "id", a->id.ptr, a->id.len, "rule", a->rule.ptr,
                     a->rule.len, "severity", "warning", "cluster", a->cluster.ptr, a->cluster.len,
                     "state", proto_alert_state_name((proto_alert_state_t)a->state), "observed",
                     71.0, "ts_ms", (json_int_t)1000, "since_ms", (json_int_t)900, "details",
                     "value", 71);
}

static void live(handoff_t *d, const char *cluster, const char *id, proto_alert_state_t st,
                 uint64_t seq)
{
    proto_alert_t a = alert(cluster, id, st, seq);
    handoff_live(d, &a, body(&a));
}

static const handoff_record_t *record_of(const handoff_t *d, const char *id)
{
    for (size_t i = 0; i < d->ndone; i++)
        if (strcmp(d->done[i].id, id) == 0)
            return &d->done[i];
    return NULL;
}

/* Runs the next event and reports ok; returns its tag (0: none could run). */
static uint64_t run_ok(handoff_t *d, int64_t now)
{
    const handoff_event_t *e = handoff_next(d, now);
    if (!e)
        return 0;
    uint64_t tag = e->tag;
    ck_assert_int_eq(handoff_done(d, tag, true, now, NULL, NULL, 0, NULL), HANDOFF_OK);
    return tag;
}

START_TEST(test_delivered_only_on_success)
{
    handoff_t d;
    handoff_init(&d, 3, 100, 1000);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 1);
    const handoff_event_t *e = handoff_next(&d, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(handoff_next(&d, 0));  /* running: not handed out twice */
    ck_assert_ptr_null(record_of(&d, "r:a")); /* not delivered while it runs */
    ck_assert_int_eq(handoff_done(&d, e->tag, true, 0, NULL, NULL, 0, NULL), HANDOFF_OK);
    ck_assert_uint_eq(handoff_pending(&d), 0);
    const handoff_record_t *r = record_of(&d, "r:a");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->state, PROTO_ALERT_FIRING);
    ck_assert_uint_eq(r->seq, 1);
    ck_assert_uint_eq(d.delivered, 1);
    ck_assert_int_eq(handoff_done(&d, 999, true, 0, NULL, NULL, 0, NULL), HANDOFF_UNKNOWN);
    handoff_free(&d);
}
END_TEST

/* revised keeps the record firing; resolved drops it. */
START_TEST(test_record_follows_the_condition)
{
    handoff_t d;
    handoff_init(&d, 3, 100, 1000);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 1);
    live(&d, "east", "r:a", PROTO_ALERT_REVISED, 2);
    ck_assert(run_ok(&d, 0));
    ck_assert(run_ok(&d, 0));
    ck_assert_int_eq(record_of(&d, "r:a")->state, PROTO_ALERT_FIRING);
    ck_assert_uint_eq(record_of(&d, "r:a")->seq, 2);
    live(&d, "east", "r:a", PROTO_ALERT_RESOLVED, 3);
    ck_assert(run_ok(&d, 0));
    ck_assert_ptr_null(record_of(&d, "r:a"));
    handoff_free(&d);
}
END_TEST

/* Backoff: delay, 2x, 4x ..., capped; after `retries` retries, given up. */
START_TEST(test_backoff_then_give_up)
{
    static const int64_t want[] = {100, 200, 400, 500, 500};
    handoff_t d;
    handoff_init(&d, 5, 100, 500);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 4);
    int64_t now = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const handoff_event_t *e = handoff_next(&d, now);
        ck_assert_ptr_nonnull(e);
        int64_t delay = -1;
        unsigned failures = 0;
        char id[32];
        ck_assert_int_eq(handoff_done(&d, e->tag, false, now, &delay, id, sizeof id, &failures),
                         HANDOFF_RETRY);
        ck_assert_int_eq(delay, want[i]);
        ck_assert_uint_eq(failures, i + 1);
        ck_assert_str_eq(id, "r:a");
        ck_assert_ptr_null(handoff_next(&d, now + delay - 1)); /* not before its time */
        ck_assert_int_eq(handoff_wait_ms(&d, now), delay);
        now += delay;
    }
    const handoff_event_t *e = handoff_next(&d, now);
    ck_assert_ptr_nonnull(e);
    unsigned failures = 0;
    ck_assert_int_eq(handoff_done(&d, e->tag, false, now, NULL, NULL, 0, &failures),
                     HANDOFF_GAVE_UP);
    ck_assert_uint_eq(failures, 6);
    ck_assert_uint_eq(d.failures, 6);
    ck_assert_uint_eq(d.given_up, 1);
    ck_assert_uint_eq(d.delivered, 0);
    ck_assert_uint_eq(handoff_pending(&d), 0);
    /* given up is final: recorded, so no snapshot or restart tries it again */
    ck_assert_ptr_nonnull(record_of(&d, "r:a"));
    ck_assert_int_eq(handoff_wait_ms(&d, now), -1);
    handoff_free(&d);
}
END_TEST

/* A later event of an id waits for an earlier one's retries; other ids go on. */
START_TEST(test_order_per_id)
{
    handoff_t d;
    handoff_init(&d, 2, 100, 1000);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 1);
    live(&d, "east", "r:a", PROTO_ALERT_RESOLVED, 2);
    live(&d, "east", "r:b", PROTO_ALERT_FIRING, 3);
    const handoff_event_t *e = handoff_next(&d, 0);
    ck_assert_uint_eq(e->r.seq, 1);
    ck_assert_int_eq(handoff_done(&d, e->tag, false, 0, NULL, NULL, 0, NULL), HANDOFF_RETRY);
    e = handoff_next(&d, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->r.id, "r:b"); /* r:a's resolved waits behind its firing */
    ck_assert(handoff_done(&d, e->tag, true, 0, NULL, NULL, 0, NULL) == HANDOFF_OK);
    ck_assert_ptr_null(handoff_next(&d, 50));
    ck_assert_int_eq(handoff_wait_ms(&d, 50),
                     50); /* the firing's retry, not the blocked resolved */
    e = handoff_next(&d, 100);
    ck_assert_uint_eq(e->r.seq, 1);
    ck_assert(handoff_done(&d, e->tag, true, 100, NULL, NULL, 0, NULL) == HANDOFF_OK);
    e = handoff_next(&d, 100);
    ck_assert_uint_eq(e->r.seq, 2);
    ck_assert_int_eq(e->r.state, PROTO_ALERT_RESOLVED);
    handoff_free(&d);
}
END_TEST

/* Which snapshot alerts are queued, as a table. */
START_TEST(test_snapshot_alerts)
{
    static const struct {
        const char *id;
        uint64_t seq, floor;
        bool queued;
    } rows[] = {
        {"r:old", 5, 9, false},        /* processed live before the snapshot */
        {"r:new", 12, 9, true},        /* published while not watched */
        {"r:delivered", 12, 9, false}, /* delivered at 12 already */
        {"r:revised", 14, 9, true},    /* delivered at 12, revised at 14 */
        {"r:pending", 13, 9, false},   /* pending at 13 */
        {"r:first", 1, 0, true},       /* a first start: no floor */
    };
    handoff_t d;
    handoff_init(&d, 3, 100, 1000);
    live(&d, "east", "r:delivered", PROTO_ALERT_FIRING, 12);
    live(&d, "east", "r:revised", PROTO_ALERT_FIRING, 12);
    ck_assert(run_ok(&d, 0));
    ck_assert(run_ok(&d, 0));
    live(&d, "east", "r:pending", PROTO_ALERT_FIRING, 13);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        proto_alert_t a = alert("east", rows[i].id, PROTO_ALERT_FIRING, rows[i].seq);
        size_t before = handoff_pending(&d);
        ck_assert_msg(handoff_snapshot_alert(&d, &a, rows[i].floor, body(&a)) == rows[i].queued,
                      "row %zu (%s)", i, rows[i].id);
        ck_assert_uint_eq(handoff_pending(&d), before + rows[i].queued);
        if (rows[i].queued)
            ck_assert(json_is_true(json_object_get(d.queue[d.nqueue - 1].r.alert, "snapshot")));
    }
    ck_assert_uint_eq(d.from_snapshot, 3);
    handoff_free(&d);
}
END_TEST

static bool keep_all_but_b(const json_t *alert, void *data)
{
    (void)data;
    return strcmp(json_string_value(json_object_get(alert, "id")), "r:b") != 0;
}

/* Delivered firing, gone from the snapshot: one synthesized resolved event. */
START_TEST(test_synthesized_resolved)
{
    handoff_t d;
    handoff_init(&d, 3, 100, 1000);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 3);   /* resolves unseen */
    live(&d, "east", "r:b", PROTO_ALERT_FIRING, 4);   /* resolves, filtered out now */
    live(&d, "east", "r:c", PROTO_ALERT_FIRING, 5);   /* still fires */
    live(&d, "west", "r:w", PROTO_ALERT_FIRING, 6);   /* a cluster the snapshot does not list */
    live(&d, "east", "r:d", PROTO_ALERT_RESOLVED, 7); /* resolved already */
    while (run_ok(&d, 0))
        ;
    live(&d, "east", "r:p", PROTO_ALERT_FIRING, 8); /* pending, then resolves */
    clone_t fresh;
    clone_init(&fresh);
    clone_advance(&fresh, proto_str("east"), 20);
    proto_alert_t c = alert("east", "r:c", PROTO_ALERT_FIRING, 5);
    clone_apply(&fresh, &c);
    ck_assert_uint_eq(handoff_snapshot_end(&d, &fresh, NULL, NULL, keep_all_but_b, NULL), 2);
    ck_assert_uint_eq(d.synthesized, 2);
    ck_assert_uint_eq(handoff_pending(&d), 3);
    const handoff_event_t *e = &d.queue[1];
    ck_assert_str_eq(e->r.id, "r:a");
    ck_assert_int_eq(e->r.state, PROTO_ALERT_RESOLVED);
    ck_assert_uint_eq(e->r.seq, 20);
    const json_t *j = e->r.alert;
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "resolved");
    ck_assert(json_is_null(json_object_get(j, "seq")));
    ck_assert(json_is_null(json_object_get(j, "ts_ms")));
    ck_assert(json_is_null(json_object_get(j, "observed")));
    ck_assert(json_is_true(json_object_get(j, "synthesized")));
    ck_assert(json_is_true(json_object_get(j, "snapshot")));
    ck_assert_ptr_null(json_object_get(j, "details"));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "since_ms")), 900); /* known: kept */
    ck_assert_str_eq(d.queue[2].r.id, "r:p"); /* after its pending firing */
    /* a second snapshot finds the resolved pending: nothing more */
    ck_assert_uint_eq(handoff_snapshot_end(&d, &fresh, NULL, NULL, keep_all_but_b, NULL), 0);
    while (run_ok(&d, 0))
        ;
    ck_assert_ptr_null(record_of(&d, "r:a"));
    ck_assert_ptr_null(record_of(&d, "r:p"));
    ck_assert_ptr_nonnull(record_of(&d, "r:w"));
    clone_free(&fresh);
    handoff_free(&d);
}
END_TEST

/* A grouped alert stands for its members: they are recorded, never run. */
START_TEST(test_grouped_members)
{
    handoff_t d;
    handoff_init(&d, 3, 100, 1000);
    proto_alert_t m1 = alert("east", "cod-limit:f1", PROTO_ALERT_FIRING, 9);
    proto_alert_t m2 = alert("east", "cod-limit:f2", PROTO_ALERT_FIRING, 9);
    handoff_covered(&d, &m1, body(&m1));
    handoff_covered(&d, &m2, body(&m2));
    ck_assert_uint_eq(handoff_pending(&d), 0);
    ck_assert_ptr_nonnull(record_of(&d, "cod-limit:f1"));
    /* the group resolves: its members leave the snapshot, and no resolved
     * event is made up for them */
    clone_t fresh;
    clone_init(&fresh);
    clone_advance(&fresh, proto_str("east"), 10);
    ck_assert_uint_eq(handoff_snapshot_end(&d, &fresh, "east", "cod-limit", NULL, NULL), 0);
    ck_assert_uint_eq(d.ndone, 0);
    clone_free(&fresh);
    handoff_free(&d);
}
END_TEST

/* The record and the pending events survive a save and a load. */
START_TEST(test_save_load)
{
    handoff_t d, back;
    handoff_init(&d, 3, 100, 1000);
    live(&d, "east", "r:a", PROTO_ALERT_FIRING, 3);
    ck_assert(run_ok(&d, 0));
    live(&d, "east", "r:b", PROTO_ALERT_FLAPPING, 4);
    live(&d, "east", "r:a", PROTO_ALERT_RESOLVED, 5);
    const handoff_event_t *e = handoff_next(&d, 0);
    ck_assert_int_eq(handoff_done(&d, e->tag, false, 0, NULL, NULL, 0, NULL), HANDOFF_RETRY);
    json_t *root = json_pack("{s:{s:i}}", "seqs", "east", 5);
    handoff_save(&d, root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    root = json_loads(text, 0, NULL);
    free(text);
    handoff_init(&back, 3, 100, 1000);
    char err[256] = "";
    ck_assert_msg(handoff_load(&back, root, err, sizeof err) == 0, "%s", err);
    json_decref(root);
    ck_assert_uint_eq(handoff_floor(&back, "east"), 5);
    ck_assert_uint_eq(handoff_floor(&back, "west"), 0);
    ck_assert_int_eq(record_of(&back, "r:a")->state, PROTO_ALERT_FIRING);
    ck_assert_uint_eq(handoff_pending(&back), 2);
    ck_assert_str_eq(back.queue[0].r.id, "r:b");
    ck_assert_uint_eq(back.queue[0].failures, 1);
    ck_assert_int_eq(back.queue[0].r.state, PROTO_ALERT_FLAPPING);
    ck_assert_int_eq(back.queue[1].r.state, PROTO_ALERT_RESOLVED);
    /* restarted: the pending events run first, at once, in order */
    e = handoff_next(&back, 0);
    ck_assert_str_eq(e->r.id, "r:b");
    ck_assert_int_eq(json_integer_value(json_object_get(e->r.alert, "seq")), 4);
    handoff_free(&back);
    handoff_free(&d);
}
END_TEST

/* A damaged delivery record is refused, naming the field; nothing changes. */
START_TEST(test_load_errors)
{
    static const struct {
        const char *doc, *want;
    } rows[] = {
        {"[]", "not a JSON object"},
        {"{\"seqs\": 1}", "seqs: not an object"},
        {"{\"seqs\": {\"east\": -1}}", "seqs.east: not a cluster and a non-negative integer"},
        {"{\"delivered\": []}", "delivered: not an object"},
        {"{\"delivered\": {\"east\": 1}}", "delivered.east: not an object"},
        {"{\"delivered\": {\"east\": {\"r:a\": {\"state\": \"hot\", \"seq\": 1}}}}",
         "delivered.east.r:a.state: not an alert state"},
        {"{\"delivered\": {\"east\": {\"r:a\": {\"state\": \"firing\", \"seq\": \"1\"}}}}",
         "delivered.east.r:a.seq: not a non-negative integer"},
        {"{\"delivered\": {\"east\": {\"r:a\": {\"state\": \"firing\", \"seq\": 1, \"alert\": "
         "3}}}}",
         "delivered.east.r:a.alert: not an object"},
        {"{\"pending\": {}}", "pending: not an array"},
        {"{\"pending\": [{\"cluster\": \"east\", \"state\": \"firing\", \"seq\": 1}]}",
         "pending[0].id: not an alert id"},
        {"{\"pending\": [{\"id\": \"r:a\", \"state\": \"firing\", \"seq\": 1, \"alert\": {}}]}",
         "pending[0].cluster: not a cluster id"},
        {"{\"pending\": [{\"id\": \"r:a\", \"cluster\": \"east\", \"state\": \"firing\", \"seq\": "
         "1}]}",
         "pending[0].alert: missing"},
        {"{\"pending\": [{\"id\": \"r:a\", \"cluster\": \"east\", \"state\": \"firing\", \"seq\": "
         "1, "
         "\"alert\": {}, \"failures\": -2}]}",
         "pending[0].failures: not a non-negative integer"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        handoff_t d;
        handoff_init(&d, 3, 100, 1000);
        live(&d, "east", "r:kept", PROTO_ALERT_FIRING, 1);
        json_error_t je;
        json_t *root = json_loads(rows[i].doc, JSON_DECODE_ANY, &je);
        ck_assert_msg(root != NULL, "row %zu: %s", i, je.text);
        char err[256] = "";
        ck_assert_int_eq(handoff_load(&d, root, err, sizeof err), -1);
        ck_assert_msg(strstr(err, rows[i].want) != NULL, "row %zu: got '%s', want '%s'", i, err,
                      rows[i].want);
        ck_assert_uint_eq(handoff_pending(&d), 1); /* unchanged */
        json_decref(root);
        handoff_free(&d);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("delivery");
    tcase_add_test(tc, test_delivered_only_on_success);
    tcase_add_test(tc, test_record_follows_the_condition);
    tcase_add_test(tc, test_backoff_then_give_up);
    tcase_add_test(tc, test_order_per_id);
    tcase_add_test(tc, test_snapshot_alerts);
    tcase_add_test(tc, test_synthesized_resolved);
    tcase_add_test(tc, test_grouped_members);
    tcase_add_test(tc, test_save_load);
    tcase_add_test(tc, test_load_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
