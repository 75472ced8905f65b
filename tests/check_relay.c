/*
 * check_relay.c -- clustermon-relay's pure logic: who its ZAP handler
 * admits (agents/relayacl.c: the daemon's access-file format, a key
 * admitted only if it may see every cluster the relay carries), and the
 * union of the cities' `alerts` snapshots its control endpoint answers
 * (agents/snapmerge.c: every entry kept in city order, a cluster claimed by
 * two cities or outside the relay's scope refused with a reason).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "agents/relayacl.h"
#include "agents/snapmerge.h"
#include "proto/proto.h"
#include "tests/testlib.h"

/* ---- relayacl ---------------------------------------------------------- */

#define KEY_ALL "t7GPT3UmrtUVF]Uj@4hpTTvO[[6VyPx7#-c+Vd4U"
#define KEY_EE "wY/swWb*!NmJDi>me]CbD%O0Is2gQKRi#(yIRl9&"
#define KEY_TWO "7^(.8)p1&LwF>F#m=g3?))Fou*FFS#p&A/i^}awz"
#define KEY_VIEW "RTSLH6.u[#LU-I=K+CLqdtS4XetK>Kf*WZ]P1l)O"
#define KEY_AGENT "N7A?8FB>$Ws5!:No5F>l(!nvr2*]42A/Hnq<Lj3Q"

static testlib_dir_t tdir;
static relayacl_t *acl;

static void acl_setup(void)
{
    char path[256], err[256];
    testlib_dir_make(&tdir, "relay");
    testlib_dir_file(&tdir, "access.csv", path, sizeof path);
    testlib_write_file(path,
                       "name,key,role,scope\n"
                       "all-desk," KEY_ALL ",subscriber,*\n"
                       "ee-desk," KEY_EE ",subscriber,energy-env\n"
                       "two-desk," KEY_TWO ",subscriber,energy-env; new-energy\n"
                       "wg," KEY_VIEW ",viewer,\n"
                       "gw," KEY_AGENT ",agent,*\n",
                       0600);
    ck_assert_msg(relayacl_load(path, &acl, err, sizeof err) == 0, "%s", err);
}

static void acl_teardown(void)
{
    relayacl_destroy(&acl);
    ck_assert_ptr_null(acl);
    testlib_dir_remove(&tdir);
}

static const struct {
    const char *key;
    const char *scope; /* ',' list; "" = every cluster */
    bool admitted;
    const char *why; /* a part of the reason when refused */
} admit_cases[] = {
    {KEY_ALL, "", true, NULL},
    {KEY_ALL, "energy-env,new-energy", true, NULL},
    {KEY_EE, "energy-env", true, NULL},
    {KEY_EE, "energy-env,new-energy", false, "may not see cluster 'new-energy'"},
    {KEY_EE, "", false, "sees only some clusters"},
    {KEY_TWO, "new-energy,energy-env", true, NULL},
    {KEY_TWO, "energy-env,chem", false, "may not see cluster 'chem'"},
    {KEY_VIEW, "", true, NULL},
    {KEY_VIEW, "chem", true, NULL},
    {KEY_AGENT, "", false, "agent key"},
    {"00000000000000000000000000000000000000000", "", false, "unknown key"},
};

START_TEST(test_admit)
{
    char buf[256], why[256] = "";
    const char *scope[8];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", admit_cases[_i].scope);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        scope[n++] = t;
    const char *key = admit_cases[_i].key;
    const relayacl_key_t *k = relayacl_find(acl, key, strlen(key));
    bool ok = relayacl_covers(k, scope, n, why, sizeof why);
    ck_assert_msg(ok == admit_cases[_i].admitted, "case %d: %s", _i, why);
    if (!ok)
        ck_assert_msg(strstr(why, admit_cases[_i].why), "case %d: '%s'", _i, why);
}
END_TEST

START_TEST(test_rows_unite)
{
    /* a key on two rows has both rows' clusters */
    char path[256], err[256], why[128];
    relayacl_t *a = NULL;
    testlib_dir_file(&tdir, "two.csv", path, sizeof path);
    testlib_write_file(path,
                       "name,key,role,scope\n"
                       "d," KEY_EE ",subscriber,energy-env\n"
                       "d2," KEY_EE ",subscriber,new-energy\n",
                       0600);
    ck_assert_int_eq(relayacl_load(path, &a, err, sizeof err), 0);
    const char *scope[] = {"new-energy", "energy-env"};
    const relayacl_key_t *k = relayacl_find(a, KEY_EE, strlen(KEY_EE));
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->name, "d");
    ck_assert(relayacl_covers(k, scope, 2, why, sizeof why));
    relayacl_destroy(&a);
}
END_TEST

static const struct {
    const char *text;
    const char *err;
} bad_files[] = {
    {"name,key,role,scope\nx,notakey,subscriber,*\n", "key: not a 40-character Z85"},
    {"name,key,role,scope\nx," KEY_EE ",boss,*\n", "role: 'boss'"},
    {"name,key,role,scope\nx," KEY_EE ",subscriber,\n", "scope: required"},
    {"name,key,role\n,x," KEY_EE ",viewer\n", ""}, /* any error: a row wider than its header */
    {"name,key,rolle,scope\n", "rolle"},
};

START_TEST(test_bad_file)
{
    char path[256], err[256] = "";
    relayacl_t *a = NULL;
    testlib_dir_file(&tdir, "bad.csv", path, sizeof path);
    testlib_write_file(path, bad_files[_i].text, 0600);
    ck_assert_int_eq(relayacl_load(path, &a, err, sizeof err), -1);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err, bad_files[_i].err), "case %d: '%s'", _i, err);
    ck_assert_msg(strstr(err, "bad.csv"), "the error names the file: '%s'", err);
}
END_TEST

/* ---- snapmerge ---------------------------------------------------------- */

/* A city's `alerts` body: clusters with seqs, and nalerts bins "A<i>". */
static void pack_body(msgpack_sbuffer *sb, const char *const *clusters, const uint64_t *seqs,
                      size_t nc, size_t nalerts, size_t nacks)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "acks", 4);
    msgpack_pack_array(&pk, nacks);
    for (size_t i = 0; i < nacks; i++)
        msgpack_pack_str_with_body(&pk, "ack", 3);
    msgpack_pack_str_with_body(&pk, "seqs", 4);
    msgpack_pack_map(&pk, nc);
    for (size_t i = 0; i < nc; i++) {
        msgpack_pack_str_with_body(&pk, clusters[i], strlen(clusters[i]));
        msgpack_pack_uint64(&pk, seqs[i]);
    }
    msgpack_pack_str_with_body(&pk, "alerts", 6);
    msgpack_pack_array(&pk, nalerts);
    for (size_t i = 0; i < nalerts; i++) {
        char b[8];
        int n = snprintf(b, sizeof b, "A%zu", i);
        msgpack_pack_bin_with_body(&pk, b, (size_t)n);
    }
}

typedef struct {
    msgpack_sbuffer sb[2];
    msgpack_zone zone;
    msgpack_object bodies[2];
} two_t;

static void two_init(two_t *t, const char *ca, uint64_t sa, size_t na, const char *cb, uint64_t sb,
                     size_t nb)
{
    const char *a[] = {ca}, *b[] = {cb};
    msgpack_sbuffer_init(&t->sb[0]);
    msgpack_sbuffer_init(&t->sb[1]);
    msgpack_zone_init(&t->zone, 1024);
    pack_body(&t->sb[0], a, &sa, 1, na, 1);
    pack_body(&t->sb[1], b, &sb, 1, nb, 0);
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        ck_assert_int_eq(
            msgpack_unpack(t->sb[i].data, t->sb[i].size, &off, &t->zone, &t->bodies[i]),
            MSGPACK_UNPACK_SUCCESS);
    }
}

static void two_free(two_t *t)
{
    msgpack_sbuffer_destroy(&t->sb[0]);
    msgpack_sbuffer_destroy(&t->sb[1]);
    msgpack_zone_destroy(&t->zone);
}

static const char *const cities[] = {"jining", "zibo"};

START_TEST(test_merge_union)
{
    two_t t;
    two_init(&t, "energy-env", 170, 2, "new-energy", 9, 3);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    char err[256];
    ck_assert_msg(snapmerge_pack(t.bodies, cities, 2, NULL, 0, &pk, err, sizeof err) == 0, "%s",
                  err);
    /* what a subscriber decodes: an ok reply, the union */
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    bool ok = false;
    proto_str_t reason;
    msgpack_object body;
    ck_assert_int_eq(
        proto_ctl_reply_decode(out.data, out.size, &zone, &ok, &reason, &body, err, sizeof err), 0);
    ck_assert(ok);
    const msgpack_object *seqs = proto_obj_get(&body, "seqs");
    uint64_t v;
    ck_assert(proto_obj_u64(proto_obj_get(seqs, "energy-env"), &v) && v == 170);
    ck_assert(proto_obj_u64(proto_obj_get(seqs, "new-energy"), &v) && v == 9);
    const msgpack_object *alerts = proto_obj_get(&body, "alerts");
    ck_assert_uint_eq(alerts->via.array.size, 5);
    /* city order: jining's two, then zibo's three */
    ck_assert_int_eq(memcmp(alerts->via.array.ptr[2].via.bin.ptr, "A0", 2), 0);
    ck_assert_int_eq(memcmp(alerts->via.array.ptr[1].via.bin.ptr, "A1", 2), 0);
    ck_assert_uint_eq(proto_obj_get(&body, "acks")->via.array.size, 1);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&out);
    two_free(&t);
}
END_TEST

static const struct {
    const char *a, *b;
    const char *scope; /* NULL: any */
    const char *err;
} refuse_cases[] = {
    {"energy-env", "energy-env", NULL,
     "cluster 'energy-env' is sent by city jining and by city zibo"},
    {"energy-env", "chem", "energy-env", "city zibo sends cluster 'chem', outside"},
};

START_TEST(test_merge_refuses)
{
    two_t t;
    two_init(&t, refuse_cases[_i].a, 1, 0, refuse_cases[_i].b, 2, 0);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    char err[256] = "";
    const char *scope[] = {refuse_cases[_i].scope};
    ck_assert_int_eq(snapmerge_pack(t.bodies, cities, 2, scope, refuse_cases[_i].scope ? 1 : 0, &pk,
                                    err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, refuse_cases[_i].err), "case %d: '%s'", _i, err);
    ck_assert_uint_eq(out.size, 0); /* nothing packed: the caller packs the refusal */
    msgpack_sbuffer_destroy(&out);
    two_free(&t);
}
END_TEST

START_TEST(test_merge_malformed)
{
    /* a body without seqs (not an alerts snapshot) */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, "pong", 4);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 256);
    msgpack_object body;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack(sb.data, sb.size, &off, &zone, &body), MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer opk;
    msgpack_packer_init(&opk, &out, msgpack_sbuffer_write);
    char err[256];
    ck_assert_int_eq(snapmerge_pack(&body, cities, 1, NULL, 0, &opk, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "city jining: its alerts snapshot has no seqs map"), "%s", err);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static Suite *relay_suite(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("acl");
    tcase_add_checked_fixture(tc, acl_setup, acl_teardown);
    tcase_add_loop_test(tc, test_admit, 0, (int)(sizeof admit_cases / sizeof admit_cases[0]));
    tcase_add_test(tc, test_rows_unite);
    tcase_add_loop_test(tc, test_bad_file, 0, (int)(sizeof bad_files / sizeof bad_files[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("snapmerge");
    tcase_add_test(tc, test_merge_union);
    tcase_add_loop_test(tc, test_merge_refuses, 0,
                        (int)(sizeof refuse_cases / sizeof refuse_cases[0]));
    tcase_add_test(tc, test_merge_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(relay_suite());
}
