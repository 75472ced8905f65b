/*
 * check_webusers.c -- the dashboard's logins (daemon/webusers.c) and the
 * exact amounts of its JSON (agents/ctljson.c): http_users lines accepted
 * and refused with file:line: field, an entry from webusers_entry verified
 * and remembered, and milli-units as decimal strings (negatives, INT64_MIN,
 * the _milli keys of a reply body).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "agents/ctljson.h"
#include "daemon/keys.h"
#include "daemon/webusers.h"
#include "tests/testlib.h"

static testlib_dir_t dir;
static char entry_admin[512];

static void setup(void)
{
    testlib_dir_make(&dir, "check_webusers");
}

static void teardown(void)
{
    testlib_dir_remove(&dir);
}

/* One Argon2id hash for the whole suite: they are slow on purpose. */
static const char *admin_line(void)
{
    if (!*entry_admin) {
        char err[256];
        ck_assert_msg(webusers_entry("zhang", "admin", "s3cret", entry_admin, sizeof entry_admin,
                                     err, sizeof err) == 0,
                      "%s", err);
    }
    return entry_admin;
}

START_TEST(test_load_and_verify)
{
    char path[4096], err[512], text[1200];
    snprintf(text, sizeof text, "\xEF\xBB\xBF# logins\n\n%s", admin_line());
    testlib_write_file(testlib_dir_file(&dir, "users", path, sizeof path), text, 0600);
    webusers_t *u = NULL;
    ck_assert_msg(webusers_load(path, NULL, NULL, &u, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(u->n, 1);
    webuser_t *w = webusers_find(u, "zhang", 5);
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->roles, KEY_ROLE_VIEWER | KEY_ROLE_ADMIN);
    ck_assert_ptr_null(webusers_find(u, "zhan", 4));
    ck_assert(webusers_verify(w->hash, "s3cret", 6));
    ck_assert(!webusers_verify(w->hash, "s3cre", 5));
    /* remembered only for the password that passed, and only until it expires */
    ck_assert(!webusers_remembered(u, w, "s3cret", 6, 1000));
    webusers_remember(u, w, "s3cret", 6, 1000);
    ck_assert(webusers_remembered(u, w, "s3cret", 6, 1000 + WEBUSERS_CACHE_MS - 1));
    ck_assert(!webusers_remembered(u, w, "other!", 6, 2000));
    ck_assert(!webusers_remembered(u, w, "s3cret", 6, 1000 + WEBUSERS_CACHE_MS));
    webusers_destroy(&u);
    ck_assert_ptr_null(u);
}
END_TEST

START_TEST(test_refused_lines)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"zhang\n", "users:1: expected name:role:hash"},
        {"bad name:viewer:$argon2id$x\n", "users:1: name:"},
        {"li:boss:$argon2id$x\n", "users:1: role: expected viewer, admin or firm:ID, got 'boss'"},
        {"li:firm::$argon2id$x\n", "users:1: role: firm: expected 1..255 bytes"},
        {"li:firm:ee 1:$argon2id$x\n", "users:1: role: firm: 'ee 1' is not a firm id"},
        {"li:firm:ee-001;;ee-002:$argon2id$x\n", "users:1: role: firm: '' is not a firm id"},
        {"li:viewer:plaintext\n", "users:1: hash:"},
        {"# none\n", "no users"},
        {"li:viewer:$argon2id$x\nli:admin:$argon2id$y\n", "users:2: name: 'li' is listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4096], err[512];
        testlib_write_file(testlib_dir_file(&dir, "users", path, sizeof path), cases[i].text, 0600);
        webusers_t *u = NULL;
        ck_assert_int_eq(webusers_load(path, NULL, NULL, &u, err, sizeof err), -1);
        ck_assert_ptr_null(u);
        ck_assert_msg(strstr(err, cases[i].why) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].why);
    }
    char err[256], line[512];
    ck_assert_int_eq(webusers_entry("li", "root", "pw", line, sizeof line, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "role"));
    ck_assert_int_eq(webusers_entry("li", "viewer", "", line, sizeof line, err, sizeof err), -1);
}
END_TEST

/* webusers_member_fn: the firms whose ids start with "ee-" are members. */
static bool ee_member(void *data, const char *id, size_t len)
{
    (void)data;
    return len > 3 && memcmp(id, "ee-", 3) == 0;
}

START_TEST(test_firm_login)
{
    char path[4096], err[512], text[1400];
    const char *hash = strchr(strchr(admin_line(), ':') + 1, ':') + 1;
    snprintf(text, sizeof text, "wang:firm:ee-001;ee-002:%s", hash);
    testlib_write_file(testlib_dir_file(&dir, "users", path, sizeof path), text, 0600);
    webusers_t *u = NULL;
    ck_assert_msg(webusers_load(path, ee_member, NULL, &u, err, sizeof err) == 0, "%s", err);
    webuser_t *w = webusers_find(u, "wang", 4);
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->roles, KEY_ROLE_AGENT); /* reports; reads no figures */
    ck_assert_str_eq(w->firms, "ee-001;ee-002");
    ck_assert(webusers_may_report(w, "ee-001", 6));
    ck_assert(webusers_may_report(w, "ee-002", 6));
    ck_assert(!webusers_may_report(w, "ee-00", 5));
    ck_assert(!webusers_may_report(w, "ne-001", 6));
    ck_assert(webusers_verify(w->hash, "s3cret", 6));
    webusers_destroy(&u);
    /* a firm the registry does not have is named with its line */
    snprintf(text, sizeof text, "# firms\nwang:firm:ee-001;ne-001:%s", hash);
    testlib_write_file(path, text, 0600);
    ck_assert_int_eq(webusers_load(path, ee_member, NULL, &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "users:2: role: firm: 'ne-001' is not a member in the registry"),
                  "%s", err);
    /* clustermonctl passwd makes firm entries */
    char line[512];
    ck_assert_msg(webusers_entry("zhao", "firm:ee-007", "pw", line, sizeof line, err, sizeof err) ==
                      0,
                  "%s", err);
    ck_assert(strncmp(line, "zhao:firm:ee-007:$argon2id$", 27) == 0);
}
END_TEST

START_TEST(test_milli_strings)
{
    static const struct {
        int64_t milli;
        const char *s;
    } cases[] = {
        {0, "0.000"},
        {1, "0.001"},
        {-1, "-0.001"},
        {20580000000000, "20580000000.000"},
        {1222598656560, "1222598656.560"},
        {-1234567, "-1234.567"},
        {INT64_MAX, "9223372036854775.807"},
        {INT64_MIN, "-9223372036854775.808"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[CTLJSON_MILLI_STRLEN];
        ck_assert_str_eq(ctljson_milli_format(cases[i].milli, buf, sizeof buf), cases[i].s);
    }
}
END_TEST

START_TEST(test_reply_body)
{
    /* {"revenue_milli": 1222598656560, "profit_milli": -5, "firms": 3, "x_milli": nil} */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "revenue_milli", 13);
    msgpack_pack_int64(&pk, 1222598656560);
    msgpack_pack_str_with_body(&pk, "profit_milli", 12);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_str_with_body(&pk, "firms", 5);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_str_with_body(&pk, "x_milli", 7);
    msgpack_pack_nil(&pk);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    json_t *j = ctljson_from_msgpack(&up.data);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(
        s, "{\"firms\":3,\"profit\":\"-0.005\",\"revenue\":\"1222598656.560\",\"x\":null}");
    free(s);
    json_decref(j);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static Suite *webusers_suite(void)
{
    Suite *s = suite_create("webusers");
    TCase *tc = tcase_create("webusers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_load_and_verify);
    tcase_add_test(tc, test_refused_lines);
    tcase_add_test(tc, test_firm_login);
    tcase_add_test(tc, test_milli_strings);
    tcase_add_test(tc, test_reply_body);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(webusers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
