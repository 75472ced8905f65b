/*
 * check_members.c -- membership over time (daemon/members.c): here, when
 * each member firm was first seen, as the snapshot keeps it
 * (members_seen_pack/members_seen_unpack): by firm id, so it survives a
 * registry change; firms no longer members are skipped; malformed input
 * changes nothing.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/members.h"
#include "tests/testlib.h"

static config_t *cfg;
static registry_t *reg;
static msgpack_sbuffer buf;
static msgpack_zone zone;

static void setup(void)
{
    char err[CONFIG_ERRLEN];
    const char *kv[] = {NULL};
    cfg = testlib_config_default(kv);
    ck_assert_msg(registry_load(cfg->registry, cfg, &reg, err, sizeof err) == 0, "%s", err);
    msgpack_sbuffer_init(&buf);
    msgpack_zone_init(&zone, 4096);
}

static void teardown(void)
{
    registry_destroy(&reg);
    config_destroy(&cfg);
    msgpack_sbuffer_destroy(&buf);
    msgpack_zone_destroy(&zone);
}

static int firm(const char *id)
{
    int f = registry_find(reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static msgpack_object unpacked(void)
{
    msgpack_object o;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack(buf.data, buf.size, &off, &zone, &o), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, buf.size);
    return o;
}

START_TEST(test_seen_round_trip)
{
    char err[256];
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    for (size_t f = 0; f < reg->nfirms; f++)
        reg->firms[f].first_seen_ms = 1600000000000LL + (int64_t)f;
    members_seen_pack(reg, &pk);
    for (size_t f = 0; f < reg->nfirms; f++)
        reg->firms[f].first_seen_ms = 0;
    msgpack_object o = unpacked();
    ck_assert_uint_eq(o.via.array.size, reg->nfirms);
    ck_assert_msg(members_seen_unpack(reg, &o, false, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(reg->firms[0].first_seen_ms, 0); /* checking changes nothing */
    ck_assert_msg(members_seen_unpack(reg, &o, true, err, sizeof err) == 0, "%s", err);
    for (size_t f = 0; f < reg->nfirms; f++)
        ck_assert_int_eq(reg->firms[f].first_seen_ms, 1600000000000LL + (int64_t)f);
}
END_TEST

/* A firm the registry no longer has is skipped; the others load. */
START_TEST(test_seen_unknown_skipped)
{
    char err[256];
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "gone-001", 8);
    msgpack_pack_int64(&pk, 5);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "ee-003", 6);
    msgpack_pack_int64(&pk, 7);
    msgpack_object o = unpacked();
    ck_assert_msg(members_seen_unpack(reg, &o, true, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(reg->firms[firm("ee-003")].first_seen_ms, 7);
}
END_TEST

/* Malformed: refused with the entry named, nothing applied. */
START_TEST(test_seen_malformed)
{
    char err[256] = "";
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "ee-003", 6);
    msgpack_pack_int64(&pk, 7);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, "ee-001", 6);
    msgpack_pack_double(&pk, 1.5);
    msgpack_object o = unpacked();
    ck_assert_int_eq(members_seen_unpack(reg, &o, true, err, sizeof err), -1);
    ck_assert_str_eq(err, "firms_seen: entry 2: malformed");
    ck_assert_int_eq(reg->firms[firm("ee-003")].first_seen_ms, 0);
    ck_assert_int_eq(members_seen_unpack(reg, NULL, false, err, sizeof err), -1);
    ck_assert_str_eq(err, "firms_seen: not an array");
}
END_TEST

static Suite *members_suite(void)
{
    Suite *s = suite_create("members");
    TCase *tc = tcase_create("seen");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_seen_round_trip);
    tcase_add_test(tc, test_seen_unknown_skipped);
    tcase_add_test(tc, test_seen_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(members_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
