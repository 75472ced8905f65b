/*
 * check_alertjson.c -- alerts as JSON (agents/alertjson.c).
 *
 * Golden strings for whole objects (key order, nulls, number and time
 * formats), a table for alertjson_time_format(), the repair of bad UTF-8,
 * and a round trip through the wire encoder and decoder, whose strings are
 * not NUL-terminated.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents/alertjson.h"

static proto_alert_t sample_alert(void)
{
    proto_alert_t a = {
        .id = proto_str("floor/eu/acme/revenue"),
        .rule = proto_str("revenue-floor"),
        .severity = PROTO_SEV_WARNING,
        .state = PROTO_ALERT_FIRING,
        .cluster = proto_str("eu"),
        .chain = proto_str("retail"),
        .firm = proto_str("acme"),
        .metric = proto_str("revenue"),
        .observed = 0.1,
        .expected = 1000,
        .summary = proto_str("revenue 0.1 is below \"1000\""),
        .since_ms = 1656637200000,
        .ts_ms = 1656637201234,
        .seq = 7,
    };
    return a;
}

/* Dumps the object for a as the programs do; caller frees. */
static char *dump(const proto_alert_t *a)
{
    json_t *j = alertjson_from_alert(a);
    char *s;

    ck_assert_ptr_nonnull(j);
    s = json_dumps(j, ALERTJSON_DUMP_FLAGS);
    json_decref(j);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(test_full_alert)
{
    proto_alert_t a = sample_alert();
    char *s = dump(&a);

    ck_assert_str_eq(
        s, "{\"seq\":7,\"id\":\"floor/eu/acme/revenue\",\"rule\":\"revenue-floor\","
           "\"severity\":\"warning\",\"state\":\"firing\",\"cluster\":\"eu\",\"chain\":\"retail\","
           "\"firm\":\"acme\",\"metric\":\"revenue\",\"observed\":0.1,\"expected\":1000.0,"
           "\"summary\":\"revenue 0.1 is below \\\"1000\\\"\","
           "\"since\":\"2022-07-01T01:00:00.000Z\",\"ts\":\"2022-07-01T01:00:01.234Z\","
           "\"since_ms\":1656637200000,\"ts_ms\":1656637201234}");
    free(s);
}
END_TEST

START_TEST(test_absent_optionals_are_null)
{
    proto_alert_t a = sample_alert();
    json_t *j;

    a.chain = proto_str(NULL);
    a.firm = proto_str(NULL);
    a.state = PROTO_ALERT_RESOLVED;
    a.severity = PROTO_SEV_CRITICAL;
    j = alertjson_from_alert(&a);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_null(json_object_get(j, "chain")));
    ck_assert(json_is_null(json_object_get(j, "firm")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "resolved");
    ck_assert_str_eq(json_string_value(json_object_get(j, "severity")), "critical");
    ck_assert_uint_eq(json_object_size(j), 16);
    json_decref(j);
}
END_TEST

START_TEST(test_bad_values_never_break_json)
{
    proto_alert_t a = sample_alert();
    static const char bad_utf8[] = "caf\xc3\xa9 \xff\xfe ok \xe2\x82";
    json_t *j, *back;
    char *s;

    a.summary = (proto_str_t){bad_utf8, sizeof(bad_utf8) - 1};
    a.observed = NAN;
    a.expected = -INFINITY;
    a.severity = 200; /* out of range: decoded alerts never have it, but no crash */
    j = alertjson_from_alert(&a);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "summary")),
                     "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd ok \xef\xbf\xbd\xef\xbf\xbd");
    ck_assert(json_is_null(json_object_get(j, "observed")));
    ck_assert(json_is_null(json_object_get(j, "expected")));
    ck_assert(json_is_null(json_object_get(j, "severity")));
    s = json_dumps(j, ALERTJSON_DUMP_FLAGS);
    ck_assert_ptr_nonnull(s);
    back = json_loads(s, 0, NULL); /* what we print parses back */
    ck_assert_ptr_nonnull(back);
    json_decref(back);
    free(s);
    json_decref(j);
}
END_TEST

START_TEST(test_strings_are_copied)
{
    char firm[] = "acme";
    proto_alert_t a = sample_alert();
    json_t *j;

    a.firm = (proto_str_t){firm, 4};
    j = alertjson_from_alert(&a);
    memset(firm, 'x', 4);
    ck_assert_str_eq(json_string_value(json_object_get(j, "firm")), "acme");
    json_decref(j);
}
END_TEST

START_TEST(test_wire_round_trip)
{
    proto_alert_t a = sample_alert(), d;
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN], *s1, *s2;

    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_alert_encode(&a, &sb, err, sizeof(err)), PROTO_OK);
    ck_assert_int_eq(proto_alert_decode(sb.data, sb.size, &d, err, sizeof(err)), PROTO_OK);
    s1 = dump(&a);
    s2 = dump(&d);
    ck_assert_str_eq(s1, s2);
    free(s1);
    free(s2);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static const struct {
    int64_t ms;
    const char *text;
} times[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {1656637200000, "2022-07-01T01:00:00.000Z"},
    {1656633600999, "2022-07-01T00:00:00.999Z"},
    {1709164800000, "2024-02-29T00:00:00.000Z"},
    {PROTO_MAX_TS_MS - 1, "2199-12-31T23:59:59.999Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
};

START_TEST(test_time_format)
{
    char buf[ALERTJSON_TIME_STRLEN];
    int n = alertjson_time_format(times[_i].ms, buf, sizeof(buf));

    ck_assert_int_eq(n, (int)strlen(times[_i].text));
    ck_assert_str_eq(buf, times[_i].text);
}
END_TEST

START_TEST(test_time_format_small_buffer)
{
    char buf[24]; /* one short of "YYYY-MM-DDThh:mm:ss.mmmZ" + NUL */

    ck_assert_int_eq(alertjson_time_format(0, buf, sizeof(buf)), -1);
}
END_TEST

static Suite *alertjson_suite(void)
{
    Suite *s = suite_create("alertjson");
    TCase *tc = tcase_create("object");

    tcase_add_test(tc, test_full_alert);
    tcase_add_test(tc, test_absent_optionals_are_null);
    tcase_add_test(tc, test_bad_values_never_break_json);
    tcase_add_test(tc, test_strings_are_copied);
    tcase_add_test(tc, test_wire_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_loop_test(tc, test_time_format, 0, sizeof(times) / sizeof(times[0]));
    tcase_add_test(tc, test_time_format_small_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alertjson_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
