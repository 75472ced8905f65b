/*
 * check_judge.c -- what the daemon refuses in a sample (daemon/judge.c).
 *
 * One table: a sample, the clock, the slack, and the verdict (status, kind,
 * a piece of the reason) the judge must give. The clock is fixed at
 * 2024-11-15 12:00 in Asia/Shanghai (the default config's zone), so the
 * current month is 2024-11; the default config gives revenue min 0 and
 * profit no bounds, and ts_floor 2000-01-01.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/judge.h"
#include "tests/testlib.h"

#define NOW INT64_C(1731643200000) /* 2024-11-15T12:00:00+08:00 */

typedef struct {
    const char *name;
    const char *firm, *metric;
    double value;
    int64_t ts_ms;
    const char *period; /* NULL: none */
    const char *slack;  /* future_slack_days, NULL: the default (0) */
    bool replay;
    proto_status_t status;
    judge_kind_t kind;   /* when refused */
    const char *why;     /* a piece of the reason */
    const char *not_why; /* a piece it must not have, or NULL */
} judge_case_t;

static const judge_case_t cases[] = {
    {"a month so far", "ee-001", "revenue", 100, 0, "2024-11", NULL, false, PROTO_STATUS_OK, 0,
     NULL, NULL},
    {"the current quarter", "ee-001", "revenue", 100, 0, "2024-Q4", NULL, false, PROTO_STATUS_OK, 0,
     NULL, NULL},
    {"the current year", "ee-001", "revenue", 100, 0, "2024", NULL, false, PROTO_STATUS_OK, 0, NULL,
     NULL},
    {"unknown firm", "he-099", "revenue", 1, 0, "2024-01", NULL, false, PROTO_STATUS_UNKNOWN_FIRM,
     JUDGE_UNKNOWN_FIRM, "sample 7: unknown firm 'he-099'", NULL},
    {"unknown metric", "ee-001", "wattage", 1, 0, "2024-01", NULL, false,
     PROTO_STATUS_UNKNOWN_METRIC, JUDGE_UNKNOWN_METRIC, "unknown metric 'wattage' (known: revenue",
     NULL},
    {"a period on a reading", "ee-001", "cod", 1, NOW, "2024-01", NULL, false, PROTO_STATUS_INVALID,
     JUDGE_PERIOD_ON_READING, "is a reading", NULL},
    {"next month", "ee-001", "revenue", 1, 0, "2024-12", NULL, false, PROTO_STATUS_INVALID,
     JUDGE_FUTURE_PERIOD, "period 2024-12 is after the current month 2024-11 in Asia/Shanghai",
     NULL},
    {"next year", "ee-001", "revenue", 1, 0, "2025", NULL, false, PROTO_STATUS_INVALID,
     JUDGE_FUTURE_PERIOD, "period 2025 is after", NULL},
    {"next month within 20 days of slack", "ee-001", "revenue", 1, 0, "2024-12", "20", false,
     PROTO_STATUS_OK, 0, NULL, NULL},
    {"two months ahead beyond 20 days of slack", "ee-001", "revenue", 1, 0, "2025-01", "20", false,
     PROTO_STATUS_INVALID, JUDGE_FUTURE_PERIOD, "after the current month 2024-12", NULL},
    {"a reading timestamped next month", "ee-001", "cod", 1, NOW + INT64_C(30) * 86400000, NULL,
     NULL, false, PROTO_STATUS_INVALID, JUDGE_FUTURE_PERIOD, "period 2024-12 is after", NULL},
    {"negative revenue", "ee-001", "revenue", -7, 0, "2024-01", NULL, false, PROTO_STATUS_INVALID,
     JUDGE_OUT_OF_RANGE, "value -7 of metric 'revenue' is below its min 0", NULL},
    {"negative profit", "ee-001", "profit", -7, 0, "2024-01", NULL, false, PROTO_STATUS_OK, 0, NULL,
     NULL},
    {"Unix seconds as ms", "ee-001", "cod", 3, INT64_C(1700000000), NULL, NULL, false,
     PROTO_STATUS_INVALID, JUDGE_BEFORE_FLOOR,
     "before the floor 2000-01-01 (daemon.ts_floor): it looks like Unix seconds sent as "
     "milliseconds (as seconds it is 2023-11-15)",
     NULL},
    {"a tiny timestamp: no hint", "ee-001", "cod", 3, 5, NULL, NULL, false, PROTO_STATUS_INVALID,
     JUDGE_BEFORE_FLOOR, "before the floor", "Unix seconds"},
    {"an amount without a period takes its month", "ee-001", "revenue", 1, NOW, NULL, NULL, false,
     PROTO_STATUS_OK, 0, NULL, NULL},
    {"an amount without a period, ts 0", "ee-001", "revenue", 1, 0, NULL, NULL, false,
     PROTO_STATUS_INVALID, JUDGE_BEFORE_FLOOR, "before the floor", NULL},
    {"a period with ts 0 is fine (ts is informational)", "ee-001", "energy", 1, 0, "2024-03", NULL,
     false, PROTO_STATUS_OK, 0, NULL, NULL},
    {"replay: the plausibility was judged when it came", "ee-001", "revenue", -7, 0, "2030-01",
     NULL, true, PROTO_STATUS_OK, 0, NULL, NULL},
    {"replay: an unknown firm is still unknown", "he-099", "revenue", 1, 0, "2024-01", NULL, true,
     PROTO_STATUS_UNKNOWN_FIRM, JUDGE_UNKNOWN_FIRM, "unknown firm", NULL},
};

START_TEST(test_judge_table)
{
    const judge_case_t *c = &cases[_i];
    const char *kv[] = {NULL, NULL};
    char slack[64], err[CONFIG_ERRLEN], reason[JUDGE_REASONLEN];
    if (c->slack) {
        snprintf(slack, sizeof slack, "future_slack_days = %s", c->slack);
        kv[0] = slack;
    }
    config_t *cfg = testlib_config_default(kv);
    registry_t *reg = NULL;
    calendar_t cal;
    judge_t j;
    judge_resolved_t r;
    judge_kind_t kind = JUDGE_KIND_COUNT;
    proto_sample_t s = {.firm = proto_str(c->firm),
                        .metric = proto_str(c->metric),
                        .value = c->value,
                        .ts_ms = c->ts_ms};
    ck_assert_msg(registry_load(cfg->registry, cfg, &reg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(calendar_init(&cal, cfg->timezone), 0);
    if (c->period)
        ck_assert_int_eq(proto_period_parse(c->period, strlen(c->period), &s.period), PROTO_OK);
    judge_begin(&j, cfg, reg, &cal, NULL, c->replay, NOW);
    reason[0] = '\0';
    proto_status_t st = judge_sample(&j, &s, 7, &r, &kind, reason, sizeof reason);
    ck_assert_msg(st == c->status, "%s: status %s (%s), want %s", c->name, proto_status_name(st),
                  reason, proto_status_name(c->status));
    if (c->status != PROTO_STATUS_OK) {
        ck_assert_msg(kind == c->kind, "%s: kind %s, want %s", c->name, judge_kind_name(kind),
                      judge_kind_name(c->kind));
        ck_assert_msg(strncmp(reason, "sample 7: ", 10) == 0, "%s: reason '%s'", c->name, reason);
        ck_assert_msg(strstr(reason, c->why) != NULL, "%s: reason '%s' lacks '%s'", c->name, reason,
                      c->why);
        ck_assert_msg(!c->not_why || strstr(reason, c->not_why) == NULL, "%s: reason '%s' has '%s'",
                      c->name, reason, c->not_why);
    } else {
        ck_assert(!r.refused);
        ck_assert_int_ge(r.firm, 0);
        ck_assert_int_ge(r.metric, 0);
    }
    registry_destroy(&reg);
    config_destroy(&cfg);
}
END_TEST

START_TEST(test_kind_names)
{
    for (int k = 0; k < JUDGE_KIND_COUNT; k++)
        ck_assert_str_ne(judge_kind_name((judge_kind_t)k), "?");
    ck_assert_str_eq(judge_kind_name(JUDGE_FUTURE_PERIOD), "future_period");
    ck_assert_str_eq(judge_kind_name(JUDGE_KIND_COUNT), "?");
}
END_TEST

START_TEST(test_refusals_dup)
{
    proto_refusal_t r[2] = {{3, PROTO_STATUS_INVALID, proto_str("sample 3: x")},
                            {9, PROTO_STATUS_UNKNOWN_FIRM, proto_str("")}};
    proto_refusal_t *c = judge_refusals_dup(r, 2);
    ck_assert_uint_eq(c[0].index, 3);
    ck_assert_uint_eq(c[1].status, PROTO_STATUS_UNKNOWN_FIRM);
    ck_assert(c[0].reason.ptr != r[0].reason.ptr);
    ck_assert(proto_str_eq(c[0].reason, "sample 3: x"));
    ck_assert_uint_eq(c[1].reason.len, 0);
    free(c);
    ck_assert_uint_eq(judge_pack_refusal(10000 - 1, PROTO_STATUS_FORBIDDEN) >> 8, 9999);
}
END_TEST

static Suite *judge_suite(void)
{
    Suite *s = suite_create("judge");
    TCase *tc = tcase_create("judge");
    tcase_add_loop_test(tc, test_judge_table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_refusals_dup);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(judge_suite());
}
