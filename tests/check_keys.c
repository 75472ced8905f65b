/*
 * check_keys.c -- the key table (daemon/keys.c): firm keys from the
 * registry's key column, gateway/subscriber/viewer/admin keys from the
 * access file, and what each may report for and see. Broken access files
 * must fail with "file:line: field: reason".
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/keys.h"
#include "tests/testlib.h"

#define DEFAULT_CONF "daemon/clustermond.conf"

static config_t *cfg;
static registry_t *reg;
static testlib_dir_t tdir;
static char reg_path[128], acc_path[128];
/* four real keys, made once */
static char k1[41], k2[41], k3[41], k4[41];

static void write_file(const char *path, const char *text)
{
    testlib_write_file(path, text, 0600);
}

static void setup(void)
{
    char err[CONFIG_ERRLEN], sec[41], text[2048];
    testlib_dir_make(&tdir, "keys");
    testlib_dir_file(&tdir, "firms.csv", reg_path, sizeof reg_path);
    testlib_dir_file(&tdir, "access.csv", acc_path, sizeof acc_path);
    ck_assert_int_eq(zmq_curve_keypair(k1, sec), 0);
    ck_assert_int_eq(zmq_curve_keypair(k2, sec), 0);
    ck_assert_int_eq(zmq_curve_keypair(k3, sec), 0);
    ck_assert_int_eq(zmq_curve_keypair(k4, sec), 0);
    ck_assert_msg(config_load(DEFAULT_CONF, NULL, NULL, &cfg, err, sizeof err) == 0, "%s", err);
    /* ee-001 has its own key; ee-002 and ee-003 share k2 (a gateway); ne-001 has none */
    snprintf(text, sizeof text,
             "id,name,cluster,chain,tier,key\n"
             "ee-001,A,energy-env,,member,%s\n"
             "ee-002,B,energy-env,,member,%s\n"
             "ee-003,C,energy-env,,member,%s\n"
             "ne-001,D,new-energy,,member,\n",
             k1, k2, k2);
    write_file(reg_path, text);
    ck_assert_msg(registry_load(reg_path, cfg, &reg, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    registry_destroy(&reg);
    config_destroy(&cfg);
    testlib_dir_remove(&tdir);
}

static int firm(const char *id)
{
    return registry_find(reg, id, strlen(id));
}

START_TEST(test_registry_keys)
{
    keys_t *keys = NULL;
    char err[CONFIG_ERRLEN];
    ck_assert_msg(keys_load("", cfg, reg, &keys, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(keys->nkeys, 2);
    const access_key_t *a = keys_find(keys, k1, 40);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "ee-001");
    ck_assert_uint_eq(a->roles, KEY_ROLE_AGENT);
    ck_assert(keys_may_report(a, reg, firm("ee-001")));
    ck_assert(!keys_may_report(a, reg, firm("ee-002")));
    ck_assert(!keys_may_report(a, reg, firm("ne-001")));
    ck_assert(!keys_may_report(a, reg, -1));
    ck_assert(!keys_may_see(a, 0));
    const access_key_t *g = keys_find(keys, k2, 40);
    ck_assert_ptr_nonnull(g);
    ck_assert(keys_may_report(g, reg, firm("ee-002")));
    ck_assert(keys_may_report(g, reg, firm("ee-003")));
    ck_assert(!keys_may_report(g, reg, firm("ee-001")));
    ck_assert_ptr_null(keys_find(keys, k3, 40));
    ck_assert_ptr_null(keys_find(keys, k1, 39));
    /* agent ids: the key's name or a firm's it reports for, with any ".suffix" */
    static const struct {
        const char *id;
        bool ee1, gw;
    } ids[] = {
        {"ee-001", true, false},   {"ee-001.meter2", true, false}, {"ee-002", false, true},
        {"ee-003.x", false, true}, {"ee-0011", false, false},      {"ee-00", false, false},
        {"ne-001", false, false},  {"nobody", false, false},       {".ee-001", false, false},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ck_assert_msg(keys_may_use_agent_id(a, reg, ids[i].id, strlen(ids[i].id)) == ids[i].ee1,
                      "ee-001's key, agent id %s", ids[i].id);
        ck_assert_msg(keys_may_use_agent_id(g, reg, ids[i].id, strlen(ids[i].id)) == ids[i].gw,
                      "the gateway's key, agent id %s", ids[i].id);
    }
    keys_destroy(&keys);
    ck_assert_ptr_null(keys);
}
END_TEST

START_TEST(test_access_file)
{
    keys_t *keys = NULL;
    char err[CONFIG_ERRLEN], text[2048], buf[64];
    snprintf(text, sizeof text,
             "name,key,role,scope\n"
             "ne-gateway,%s,agent,new-energy\n"
             "ne-gateway,%s,subscriber,new-energy\n"
             "wg-viewer,%s,viewer,\n"
             "ops,%s,admin,*\n"
             "ee-one,%s,agent, ee-003 ; ne-001 \n",
             k3, k3, k4, k1 /* also ee-001's firm key: admin wins */, k2);
    write_file(acc_path, text);
    ck_assert_msg(keys_load(acc_path, cfg, reg, &keys, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(keys->nkeys, 4);
    const access_key_t *gw = keys_find(keys, k3, 40);
    ck_assert_str_eq(gw->name, "ne-gateway");
    ck_assert_uint_eq(gw->roles, KEY_ROLE_AGENT | KEY_ROLE_SUBSCRIBER);
    ck_assert_str_eq(keys_roles_name(gw->roles, buf, sizeof buf), "agent+subscriber");
    ck_assert(keys_may_report(gw, reg, firm("ne-001")));
    ck_assert(!keys_may_report(gw, reg, firm("ee-001")));
    int ne = config_cluster_find(cfg, "new-energy", 10),
        ee = config_cluster_find(cfg, "energy-env", 10);
    ck_assert(keys_may_see(gw, ne));
    ck_assert(keys_may_use_agent_id(gw, reg, "ne-gateway.live", 15));
    ck_assert(keys_may_use_agent_id(gw, reg, "ne-001", 6)); /* a firm of its cluster */
    ck_assert(!keys_may_use_agent_id(gw, reg, "ee-001", 6));
    ck_assert(!keys_may_see(gw, ee));
    const access_key_t *v = keys_find(keys, k4, 40);
    ck_assert_uint_eq(v->roles, KEY_ROLE_VIEWER);
    ck_assert(keys_may_see(v, ee) && keys_may_see(v, ne));
    ck_assert(!keys_may_report(v, reg, firm("ee-001")));
    const access_key_t *adm = keys_find(keys, k1, 40);
    ck_assert_str_eq(adm->name, "ops"); /* the access file's name wins */
    ck_assert_uint_eq(adm->roles, KEY_ROLE_ADMIN | KEY_ROLE_AGENT);
    ck_assert(keys_may_report(adm, reg, firm("ne-001")));
    ck_assert(keys_may_use_agent_id(adm, reg, "import-baseline-host1", 21));
    /* k2: the registry's ee-002 and ee-003 plus the access file's ee-003 and ne-001 */
    const access_key_t *two = keys_find(keys, k2, 40);
    ck_assert_uint_eq(two->nreport_firms, 3);
    ck_assert(keys_may_report(two, reg, firm("ne-001")));
    ck_assert(keys_may_report(two, reg, firm("ee-002")));
    ck_assert(!keys_may_report(two, reg, firm("ee-001")));
    keys_destroy(&keys);
}
END_TEST

/* Each row: an access file body after the header; the error it must give. */
static const struct {
    const char *name;
    const char *rows; /* @: a valid key */
    const char *want;
} bad[] = {
    {"bad role", "x,@,root,*\n", ":2: role: 'root' is not agent, subscriber, viewer or admin"},
    {"bad key", "x,not-a-key,viewer,\n", ":2: key: 'not-a-key' is not a 40-character Z85"},
    {"agent without scope", "x,@,agent,\n", ":2: scope: required for role agent"},
    {"unknown scope", "x,@,agent,nowhere\n",
     ":2: scope: 'nowhere' is neither a cluster, a firm nor city:ID"},
    {"subscriber for a firm", "x,@,subscriber,ee-001\n", ":2: scope: 'ee-001' is not a cluster"},
    {"viewer with scope", "x,@,viewer,energy-env\n", ":2: scope: a viewer key sees every cluster"},
    {"bad name", "a b,@,viewer,\n", ":2: name: 'a b'"},
    {"unknown column", "", ":1: header: unknown column 'extra'"},
    {"missing column", "", ":1: header: required column 'role' is missing"},
};

START_TEST(test_bad_access)
{
    char text[1024], err[CONFIG_ERRLEN], want[512];
    keys_t *keys = NULL;
    const char *header = _i == 7   ? "name,key,role,scope,extra\n"
                         : _i == 8 ? "name,key,scope\n"
                                   : "name,key,role,scope\n";
    size_t n = (size_t)snprintf(text, sizeof text, "%s", header);
    for (const char *r = bad[_i].rows; *r && n + 41 < sizeof text; r++) {
        if (*r == '@')
            n += (size_t)snprintf(text + n, sizeof text - n, "%s", k3);
        else
            text[n++] = *r;
    }
    text[n] = '\0';
    write_file(acc_path, text);
    int rc = keys_load(acc_path, cfg, reg, &keys, err, sizeof err);
    ck_assert_msg(rc == -1, "%s: loaded", bad[_i].name);
    ck_assert_ptr_null(keys);
    snprintf(want, sizeof want, "%s%s", acc_path, bad[_i].want);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                  "%s:\n got      \"%s\"\n expected \"%s...\"", bad[_i].name, err, want);
}
END_TEST

START_TEST(test_same_key_two_names)
{
    char text[1024], err[CONFIG_ERRLEN];
    keys_t *keys = NULL;
    snprintf(text, sizeof text, "name,key,role,scope\na,%s,viewer,\nb,%s,admin,\n", k3, k3);
    write_file(acc_path, text);
    ck_assert_int_eq(keys_load(acc_path, cfg, reg, &keys, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":3: key: the same key is already named 'a'"), "%s", err);
    snprintf(text, sizeof text, "name,key,role,scope\na,%s,viewer,\na,%s,admin,\n", k3, k4);
    write_file(acc_path, text);
    ck_assert_int_eq(keys_load(acc_path, cfg, reg, &keys, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":3: name: 'a' is already the name of another key"), "%s", err);
    ck_assert_int_eq(keys_load("/nonexistent/access.csv", cfg, reg, &keys, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot open access file"), "%s", err);
}
END_TEST

START_TEST(test_registry_bad_key)
{
    char err[CONFIG_ERRLEN];
    registry_t *r = NULL;
    write_file(reg_path, "id,name,cluster,tier,key\nee-009,X,energy-env,member,abc\n");
    ck_assert_int_eq(registry_load(reg_path, cfg, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":2: key: firm 'ee-009': 'abc' is not a 40-character Z85"), "%s",
                  err);
}
END_TEST

/* Loads an access file of the given text (@ = k3, # = k4). */
static keys_t *load_access(const char *rows)
{
    char text[1024], err[CONFIG_ERRLEN];
    size_t n = (size_t)snprintf(text, sizeof text, "name,key,role,scope\n");
    for (const char *r = rows; *r && n + 41 < sizeof text; r++) {
        if (*r == '@' || *r == '#')
            n += (size_t)snprintf(text + n, sizeof text - n, "%s", *r == '@' ? k3 : k4);
        else
            text[n++] = *r;
    }
    text[n] = '\0';
    write_file(acc_path, text);
    keys_t *keys = NULL;
    ck_assert_msg(keys_load(acc_path, cfg, reg, &keys, err, sizeof err) == 0, "%s", err);
    return keys;
}

START_TEST(test_alerts_narrowed)
{
    keys_t *old = load_access("s,@,subscriber,new-energy\nv,#,viewer,\n");
    keys_t *same = load_access("v,#,viewer,\ns,@,subscriber,new-energy\n");
    keys_t *wider = load_access("s,@,subscriber,*\nv,#,viewer,\n");
    keys_t *moved = load_access("s,@,subscriber,energy-env\nv,#,viewer,\n");
    keys_t *gone = load_access("v,#,viewer,\n");
    keys_t *demoted = load_access("s,@,subscriber,new-energy\nv,#,subscriber,new-energy\n");
    keys_t *agent = load_access("s,@,agent,new-energy\nv,#,viewer,\n");
    ck_assert(!keys_alerts_narrowed(old, cfg, same, cfg));
    ck_assert(!keys_alerts_narrowed(old, cfg, wider, cfg));
    ck_assert(keys_alerts_narrowed(old, cfg, moved, cfg));
    ck_assert(keys_alerts_narrowed(old, cfg, gone, cfg));
    ck_assert(keys_alerts_narrowed(old, cfg, demoted, cfg));
    ck_assert(keys_alerts_narrowed(old, cfg, agent, cfg));
    ck_assert(!keys_alerts_narrowed(gone, cfg, old, cfg)); /* a new key narrows nothing */
    keys_t *all[] = {old, same, wider, moved, gone, demoted, agent};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        keys_destroy(&all[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_registry_keys);
    tcase_add_test(tc, test_access_file);
    tcase_add_loop_test(tc, test_bad_access, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_same_key_two_names);
    tcase_add_test(tc, test_registry_bad_key);
    tcase_add_test(tc, test_alerts_narrowed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
