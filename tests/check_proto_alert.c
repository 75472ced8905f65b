/*
 * check_proto_alert.c -- the alert's optional fields (details, count,
 * reminder, the ordinals n and rn), its lifecycle states and the heartbeat message. The required
 * fields and the hex vectors are in check_proto.c.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static proto_alert_t base_alert(void)
{
    proto_alert_t a;
    memset(&a, 0, sizeof a);
    a.id = proto_str("ne-revenue-growth:new-energy");
    a.rule = proto_str("ne-revenue-growth");
    a.severity = PROTO_SEV_CRITICAL;
    a.state = PROTO_ALERT_REVISED;
    a.cluster = proto_str("new-energy");
    a.metric = proto_str("revenue");
    a.observed = 8.8;
    a.expected = 15;
    a.summary = proto_str("new-energy revenue +8.8% vs +15%");
    a.since_ms = 1656633600000;
    a.ts_ms = 1656633601000;
    a.seq = 42;
    return a;
}

START_TEST(test_round_trip_optional_fields)
{
    proto_alert_t a = base_alert(), b;
    a.reminder = true;
    a.count = 7;
    a.n = 5000000000ULL; /* beyond 32 bits */
    a.rn = 3;
    a.ndetails = 2;
    a.details[0] = (proto_detail_t){.key = proto_str("growth_pct"), .num = 8.8};
    a.details[1] = (proto_detail_t){
        .key = proto_str("coverage"), .is_str = true, .str = proto_str("45 of 46 firms")};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[PROTO_ERRLEN];
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_OK);
    ck_assert_int_eq(proto_alert_decode(sb.data, sb.size, &b, err, sizeof err), PROTO_OK);
    ck_assert(b.reminder);
    ck_assert_uint_eq(b.count, 7);
    ck_assert_uint_eq(b.n, 5000000000ULL);
    ck_assert_uint_eq(b.rn, 3);
    ck_assert_uint_eq(b.state, PROTO_ALERT_REVISED);
    ck_assert_uint_eq(b.ndetails, 2);
    ck_assert(proto_str_eq(b.details[0].key, "growth_pct"));
    ck_assert(!b.details[0].is_str);
    ck_assert(b.details[0].num == 8.8);
    ck_assert(proto_str_eq(b.details[1].key, "coverage"));
    ck_assert(b.details[1].is_str);
    ck_assert(proto_str_eq(b.details[1].str, "45 of 46 firms"));
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_optional_fields_left_out)
{
    /* without them, the encoding is the 16-key one the hex vectors pin down */
    proto_alert_t a = base_alert();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[PROTO_ERRLEN];
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_OK);
    ck_assert_uint_eq((unsigned char)sb.data[0], 0xde); /* map16 */
    ck_assert_uint_eq((unsigned char)sb.data[2], 16);
    ck_assert(memmem(sb.data, sb.size, "details", 7) == NULL);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static const struct {
    const char *name;
    int state;
} states[] = {{"firing", PROTO_ALERT_FIRING},
              {"resolved", PROTO_ALERT_RESOLVED},
              {"revised", PROTO_ALERT_REVISED},
              {"flapping", PROTO_ALERT_FLAPPING}};

START_TEST(test_state_names)
{
    ck_assert_str_eq(proto_alert_state_name(states[_i].state), states[_i].name);
    ck_assert_int_eq(proto_alert_state_from_name(proto_str(states[_i].name)), states[_i].state);
}
END_TEST

START_TEST(test_rejects)
{
    char err[PROTO_ERRLEN], longid[200];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);

    proto_alert_t a = base_alert();
    a.ndetails = PROTO_MAX_DETAILS + 1;
    for (uint32_t i = 0; i < a.ndetails && i < PROTO_MAX_DETAILS; i++)
        a.details[i] = (proto_detail_t){.key = proto_str("k"), .num = 1};
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err, "details"));

    a = base_alert();
    a.ndetails = 1;
    a.details[0] = (proto_detail_t){.key = proto_str("z"), .num = NAN};
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_EVALUE);

    a = base_alert();
    memset(longid, 'x', sizeof longid - 1);
    longid[PROTO_MAX_ALERT_ID_LEN + 1] = '\0';
    a.id = proto_str(longid);
    ck_assert_int_lt(proto_alert_encode(&a, &sb, err, sizeof err), 0);
    longid[PROTO_MAX_ALERT_ID_LEN] = '\0';
    a.id = proto_str(longid);
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_OK);
    ck_assert_uint_eq(sb.size > 0, 1);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static void assert_str_is(proto_str_t s, const char *want)
{
    ck_assert_msg(proto_str_eq(s, want), "\"%.*s\" is not \"%s\"", PROTO_STR_ARG(s), want);
}

START_TEST(test_heartbeat)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[PROTO_ERRLEN];
    proto_heartbeat_t hb = {proto_str("energy-env"), 3024, 1656633600000}, d;
    ck_assert_int_eq(proto_heartbeat_encode(&hb, &sb, err, sizeof err), PROTO_OK);
    ck_assert_int_eq(proto_heartbeat_decode(sb.data, sb.size, &d, err, sizeof err), PROTO_OK);
    assert_str_is(d.cluster, "energy-env");
    ck_assert_uint_eq(d.seq, 3024);
    ck_assert_int_eq(d.ts_ms, 1656633600000);
    /* truncated at every length: clean failure */
    for (size_t n = 0; n < sb.size; n++)
        ck_assert_int_lt(proto_heartbeat_decode(sb.data, n, &d, err, sizeof err), 0);
    /* an alert is not a heartbeat */
    proto_alert_t a = base_alert();
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof err), PROTO_OK);
    ck_assert_int_eq(proto_heartbeat_decode(sb.data, sb.size, &d, err, sizeof err), PROTO_ETYPE);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Each cluster's heartbeat under its own topic: the cluster's prefix gets it. */
START_TEST(test_heartbeat_topic)
{
    char topic[96];
    ck_assert_int_eq(proto_heartbeat_topic(proto_str("energy-env"), topic, sizeof topic), 26);
    ck_assert_str_eq(topic, "alert.energy-env.heartbeat");
    ck_assert_int_eq(strncmp(topic, "alert.energy-env.", 17), 0);
    ck_assert_int_eq(proto_heartbeat_topic(proto_str(""), topic, sizeof topic), -1);
    ck_assert_int_eq(proto_heartbeat_topic(proto_str("energy-env"), topic, 26), -1);
    ck_assert_str_eq(topic, "");
}
END_TEST

/* The encoder refuses what the decoder would: an empty or overlong cluster. */
START_TEST(test_heartbeat_rejects)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[PROTO_ERRLEN], longid[PROTO_MAX_ID_LEN + 2];
    proto_heartbeat_t hb = {proto_str(""), 1, 1656633600000};
    ck_assert_int_eq(proto_heartbeat_encode(&hb, &sb, err, sizeof err), PROTO_EVALUE);
    ck_assert_msg(strstr(err, "cluster") != NULL, "%s", err);
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    hb.cluster = proto_str(longid);
    ck_assert_int_lt(proto_heartbeat_encode(&hb, &sb, err, sizeof err), 0);
    ck_assert_uint_eq(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proto_alert");
    TCase *tc = tcase_create("alert");
    tcase_add_test(tc, test_round_trip_optional_fields);
    tcase_add_test(tc, test_optional_fields_left_out);
    tcase_add_loop_test(tc, test_state_names, 0, sizeof states / sizeof states[0]);
    tcase_add_test(tc, test_rejects);
    tcase_add_test(tc, test_heartbeat);
    tcase_add_test(tc, test_heartbeat_topic);
    tcase_add_test(tc, test_heartbeat_rejects);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
