/*
 * check_control.c -- control command arguments (daemon/control.c).
 *
 * Every command declares its arguments (name, type, required); dispatch
 * refuses a request whose arguments do not fit before the handler runs, so
 * a typo or a wrong type is an error naming the argument, never ignored. A
 * table of requests against the real command table, then the command table
 * itself: every command has a list, and names are unique.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"

typedef struct {
    const char *name;
    unsigned kind; /* PROTO_ARG_* */
    int64_t ival;
    const char *sval;
} targ_t;

static const struct {
    const char *cmd;
    targ_t args[4];
    const char *want; /* NULL: accepted; else a substring of the reason */
} cases[] = {
    {"report", {{0}}, NULL},
    {"report", {{"year", PROTO_ARG_INT, 2023, NULL}}, NULL},
    {"report", {{"year", PROTO_ARG_NIL, 0, NULL}}, NULL}, /* nil = absent */
    {"report",
     {{"firm", PROTO_ARG_STR, 0, "acme"}, {"year", PROTO_ARG_INT, 2023, NULL}},
     "firm: unknown argument for 'report' (allowed: year)"},
    {"report", {{"year", PROTO_ARG_STR, 0, "2023"}}, "year: expected an integer, got a string"},
    {"totals",
     {{"metric", PROTO_ARG_STR, 0, "revenue"}, {"period", PROTO_ARG_STR, 0, "2023"}},
     NULL},
    {"totals",
     {{"metric", PROTO_ARG_STR, 0, "revenue"}},
     "period: required by 'totals' (a string)"},
    {"totals",
     {{"metric", PROTO_ARG_STR, 0, "revenue"}, {"period", PROTO_ARG_NIL, 0, NULL}},
     "period: required"},
    {"totals",
     {{"metric", PROTO_ARG_STR, 0, "revenue"}, {"period", PROTO_ARG_INT, 2023, NULL}},
     "period: expected a string, got an integer"},
    {"totals",
     {{"metric", PROTO_ARG_STR, 0, "r"},
      {"period", PROTO_ARG_STR, 0, "2023"},
      {"year", PROTO_ARG_INT, 1, NULL}},
     "year: unknown argument for 'totals' (allowed: metric, period)"},
    {"ping", {{"x", PROTO_ARG_INT, 1, NULL}}, "x: unknown argument for 'ping' (it takes none)"},
    {"status", {{"verbose", PROTO_ARG_NIL, 0, NULL}}, "verbose: unknown argument"},
    {"describe", {{0}}, NULL},
    {"cluster", {{0}}, "id: required by 'cluster'"},
    {"cluster", {{"id", PROTO_ARG_STR, 0, "east"}, {"through", PROTO_ARG_STR, 0, "2023-06"}}, NULL},
    {"firms",
     {{"cluster", PROTO_ARG_STR, 0, "east"},
      {"silent", PROTO_ARG_INT, 1, NULL},
      {"days", PROTO_ARG_INT, 30, NULL},
      {"as_of", PROTO_ARG_STR, 0, "2023-01-01"}},
     NULL},
    {"firms", {{"silent", PROTO_ARG_STR, 0, "yes"}}, "silent: expected an integer, got a string"},
    {"clusters", {{"days", PROTO_ARG_STR, 0, "3"}}, "days: expected an integer"},
    {"silence_add",
     {{"rule", PROTO_ARG_STR, 0, "r"},
      {"cluster", PROTO_ARG_STR, 0, "c"},
      {"for", PROTO_ARG_STR, 0, "2h"},
      {"reason", PROTO_ARG_STR, 0, "why"}},
     NULL},
    {"silence_add",
     {{"rule", PROTO_ARG_STR, 0, "r"},
      {"cluster", PROTO_ARG_STR, 0, "c"},
      {"for", PROTO_ARG_INT, 7200, NULL},
      {"reason", PROTO_ARG_STR, 0, "why"}},
     "for: expected a string, got an integer"},
    {"silence_add", {{"rule", PROTO_ARG_STR, 0, "r"}}, "cluster: required by 'silence_add'"},
    {"silence_rm", {{"id", PROTO_ARG_STR, 0, "1"}}, "id: expected an integer, got a string"},
    {"silence_rm", {{"id", PROTO_ARG_INT, 1, NULL}}, NULL},
    {"alerts", {{"since", PROTO_ARG_INT, 1, NULL}}, "since: unknown argument for 'alerts'"},
};

static const control_arg_t *spec_of(const char *cmd)
{
    const char *name;
    const control_arg_t *args;
    for (size_t i = 0; (name = control_command(i, NULL, &args)) != NULL; i++)
        if (strcmp(name, cmd) == 0)
            return args;
    ck_abort_msg("no command %s", cmd);
    return NULL;
}

START_TEST(test_args)
{
    proto_ctl_request_t req = {.cmd = proto_str(cases[_i].cmd)};
    for (int k = 0; k < 4 && cases[_i].args[k].name; k++) {
        const targ_t *t = &cases[_i].args[k];
        req.args[req.nargs++] = (proto_ctl_arg_t){.key = proto_str(t->name),
                                                  .kind = (uint8_t)t->kind,
                                                  .ival = t->ival,
                                                  .sval = proto_str(t->sval ? t->sval : "")};
    }
    char err[512] = "";
    int rc = control_args_check(cases[_i].cmd, spec_of(cases[_i].cmd), &req, err, sizeof err);
    if (!cases[_i].want) {
        ck_assert_msg(rc == 0, "%s: refused: %s", cases[_i].cmd, err);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err, cases[_i].want), "%s: reason '%s' lacks '%s'", cases[_i].cmd, err,
                      cases[_i].want);
    }
}
END_TEST

/* A long argument name is cut in the reason, which still ends with the allowed list. */
START_TEST(test_reason_bounded)
{
    char name[PROTO_MAX_ID_LEN + 1];
    memset(name, 'a', PROTO_MAX_ID_LEN);
    name[PROTO_MAX_ID_LEN] = '\0';
    proto_ctl_request_t req = {.cmd = proto_str("firms"), .nargs = 1};
    req.args[0] = (proto_ctl_arg_t){.key = proto_str(name), .kind = PROTO_ARG_INT};
    char err[80];
    ck_assert_int_eq(control_args_check("firms", spec_of("firms"), &req, err, sizeof err), -1);
    ck_assert_uint_lt(strlen(err), sizeof err);
    ck_assert_msg(strncmp(err, name, 16) == 0, "reason: %s", err);
}
END_TEST

START_TEST(test_table)
{
    const char *name;
    const control_arg_t *args;
    unsigned need;
    size_t n = 0;
    for (size_t i = 0; (name = control_command(i, &need, &args)) != NULL; i++, n++) {
        ck_assert_ptr_nonnull(args);
        ck_assert_uint_ne(need, 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(name, control_command(j, NULL, NULL));
        for (const control_arg_t *a = args; a->name; a++)
            ck_assert(a->kind == PROTO_ARG_INT || a->kind == PROTO_ARG_STR);
    }
    ck_assert_uint_eq(n, control_commands());
    /* agents may ping and describe, nothing else */
    for (size_t i = 0; (name = control_command(i, &need, NULL)) != NULL; i++)
        ck_assert_msg(!(need & KEY_ROLE_AGENT) || !strcmp(name, "ping") ||
                          !strcmp(name, "describe"),
                      "%s is open to agent keys", name);
}
END_TEST

static Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("args");
    tcase_add_loop_test(tc, test_args, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_reason_bounded);
    tcase_add_test(tc, test_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(control_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
