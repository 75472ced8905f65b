/*
 * check_silences.c -- operator silences (daemon/silences.c).
 *
 * A silence names a rule and a cluster, and optionally one firm; it covers
 * exactly that, until its end time, and then lapses by itself. The match is
 * a table: one set of silences, many (rule, cluster, firm, time) questions.
 * Ids only ever increase, so a removed silence's id is never reused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/silences.h"

#define T0 INT64_C(1656604800000)
#define HOUR INT64_C(3600000)

static silences_t s;

static void setup(void)
{
    silences_init(&s);
    ck_assert_uint_eq(s.n, 0);
}

static void teardown(void)
{
    silences_free(&s);
    ck_assert_ptr_null(s.items);
    ck_assert_uint_eq(s.n, 0);
}

/* ---- match ----------------------------------------------------------------------- */

/* The silences every match case runs against. */
static void add_fixture(void)
{
    /* 1: one firm, 2 h */
    ck_assert_uint_eq(
        silences_add(&s, "cod-limit", "energy-env", "wp-1", T0, T0 + 2 * HOUR, "sensor swap"), 1);
    /* 2: a whole cluster, 1 h */
    ck_assert_uint_eq(
        silences_add(&s, "revenue-drop", "energy-env", NULL, T0, T0 + HOUR, "Spring Festival"), 2);
    /* 3: "" as the firm means the whole cluster too */
    ck_assert_uint_eq(silences_add(&s, "growth", "new-energy", "", T0, T0 + HOUR, NULL), 3);
}

static const struct {
    const char *name;
    const char *rule, *cluster, *firm;
    int64_t at;
    bool want;
} match[] = {
    {"the silenced firm", "cod-limit", "energy-env", "wp-1", T0, true},
    {"the silenced firm, just before the end", "cod-limit", "energy-env", "wp-1", T0 + 2 * HOUR - 1,
     true},
    {"the silenced firm, at the end", "cod-limit", "energy-env", "wp-1", T0 + 2 * HOUR, false},
    {"another firm", "cod-limit", "energy-env", "wp-2", T0, false},
    {"a firm id with the silenced one as prefix", "cod-limit", "energy-env", "wp-10", T0, false},
    {"the cluster-level alert of a firm silence", "cod-limit", "energy-env", NULL, T0, false},
    {"another rule, same firm", "cod-critical", "energy-env", "wp-1", T0, false},
    {"same rule and firm id, another cluster", "cod-limit", "new-energy", "wp-1", T0, false},
    {"a whole-cluster silence covers any firm", "revenue-drop", "energy-env", "gb-1", T0, true},
    {"and the cluster-level alert", "revenue-drop", "energy-env", NULL, T0 + HOUR - 1, true},
    {"a whole-cluster silence ends too", "revenue-drop", "energy-env", "gb-1", T0 + HOUR, false},
    {"not in another cluster", "revenue-drop", "new-energy", "pv-1", T0, false},
    {"an empty firm is a whole-cluster silence", "growth", "new-energy", "pv-1", T0, true},
    {"rules are matched exactly", "revenue", "energy-env", "gb-1", T0, false},
    {"rule names are case-sensitive", "COD-LIMIT", "energy-env", "wp-1", T0, false},
};

START_TEST(test_match)
{
    add_fixture();
    ck_assert_msg(silences_match(&s, match[_i].rule, match[_i].cluster, match[_i].firm,
                                 match[_i].at) == match[_i].want,
                  "%s: expected %s", match[_i].name, match[_i].want ? "silenced" : "not silenced");
}
END_TEST

START_TEST(test_empty_matches_nothing)
{
    ck_assert(!silences_match(&s, "cod-limit", "energy-env", "wp-1", T0));
    ck_assert(!silences_match(&s, "cod-limit", "energy-env", NULL, T0));
    ck_assert_uint_eq(silences_expire(&s, T0), 0);
    ck_assert_int_eq(silences_remove(&s, 1), -1);
}
END_TEST

/* ---- bookkeeping --------------------------------------------------------------------- */

START_TEST(test_add_copies)
{
    char rule[] = "cod-limit", cluster[] = "energy-env", firm[] = "wp-1", reason[] = "swap";

    uint64_t id = silences_add(&s, rule, cluster, firm, T0, T0 + HOUR, reason);
    memset(rule, 'x', sizeof rule - 1);
    memset(firm, 'x', sizeof firm - 1);
    memset(reason, 'x', sizeof reason - 1);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.items[0].id, id);
    ck_assert_str_eq(s.items[0].rule, "cod-limit");
    ck_assert_str_eq(s.items[0].cluster, "energy-env");
    ck_assert_str_eq(s.items[0].firm, "wp-1");
    ck_assert_str_eq(s.items[0].reason, "swap");
    ck_assert_int_eq(s.items[0].created_ms, T0);
    ck_assert_int_eq(s.items[0].until_ms, T0 + HOUR);
    ck_assert(silences_match(&s, "cod-limit", "energy-env", "wp-1", T0));

    silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, NULL);
    ck_assert_ptr_null(s.items[1].firm);
    ck_assert_str_eq(s.items[1].reason, ""); /* never NULL */
}
END_TEST

/* Expiry drops exactly the lapsed ones (until <= now), keeping the others in order. */
START_TEST(test_expire)
{
    silences_add(&s, "a", "c", NULL, T0, T0 + 3 * HOUR, "");
    silences_add(&s, "b", "c", NULL, T0, T0 + HOUR, "");
    silences_add(&s, "c", "c", NULL, T0, T0 + 2 * HOUR, "");
    silences_add(&s, "d", "c", NULL, T0, T0 + HOUR, "");

    ck_assert_uint_eq(silences_expire(&s, T0 + HOUR - 1), 0);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_uint_eq(silences_expire(&s, T0 + HOUR), 2); /* b and d, adjacent after b goes */
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(s.items[0].rule, "a");
    ck_assert_str_eq(s.items[1].rule, "c");
    ck_assert_uint_eq(silences_expire(&s, T0 + 10 * HOUR), 2);
    ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* A lapsed silence no longer matches even before expire() has run. */
START_TEST(test_lapsed_without_expire)
{
    silences_add(&s, "a", "c", "f", T0, T0 + HOUR, "");
    ck_assert(!silences_match(&s, "a", "c", "f", T0 + HOUR));
    ck_assert_uint_eq(s.n, 1);
}
END_TEST

START_TEST(test_remove)
{
    uint64_t a = silences_add(&s, "a", "c", NULL, T0, T0 + HOUR, "");
    uint64_t b = silences_add(&s, "b", "c", NULL, T0, T0 + HOUR, "");
    uint64_t c = silences_add(&s, "c", "c", NULL, T0, T0 + HOUR, "");

    ck_assert_int_eq(silences_remove(&s, b), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert(!silences_match(&s, "b", "c", NULL, T0));
    ck_assert(silences_match(&s, "a", "c", NULL, T0));
    ck_assert(silences_match(&s, "c", "c", NULL, T0));
    ck_assert_int_eq(silences_remove(&s, b), -1); /* gone */
    ck_assert_int_eq(silences_remove(&s, 999), -1);
    ck_assert_int_eq(silences_remove(&s, c), 0);
    ck_assert_int_eq(silences_remove(&s, a), 0);
    ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* Ids increase and are never reused, not even after a removal or an expiry. */
START_TEST(test_ids_increase)
{
    uint64_t last = 0;

    for (int i = 0; i < 40; i++) {
        uint64_t id = silences_add(&s, "r", "c", NULL, T0, T0 + (i % 3) * HOUR, "");
        ck_assert_uint_gt(id, last);
        last = id;
        if (i % 4 == 0)
            ck_assert_int_eq(silences_remove(&s, id), 0);
        if (i % 7 == 0)
            silences_expire(&s, T0 + HOUR);
    }
    ck_assert_uint_eq(last, 40);
    ck_assert_uint_eq(s.next_id, 41);
}
END_TEST

/* ---- durable state ------------------------------------------------------------------ */

typedef struct {
    unsigned char buf[8192];
    size_t used;
    unsigned n;
    bool fail;
} journal_t;

static uint64_t journal_cb(void *data, const void *payload, size_t len)
{
    journal_t *j = data;
    if (j->fail)
        return 0;
    ck_assert_uint_le(j->used + 4 + len, sizeof j->buf);
    uint32_t l = (uint32_t)len;
    memcpy(j->buf + j->used, &l, 4);
    memcpy(j->buf + j->used + 4, payload, len);
    j->used += 4 + len;
    j->n++;
    return j->used;
}

static void pack_set(const silences_t *set, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    silences_pack(set, &pk);
}

/* Unpacks buf into set: check, then apply; returns the check's result. */
static int unpack_set(silences_t *set, const char *buf, size_t len, char *err, size_t errlen)
{
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_init(&zone, 1024);
    ck_assert_int_eq(msgpack_unpack(buf, len, &off, &zone, &o), MSGPACK_UNPACK_SUCCESS);
    int rc = silences_unpack(set, &o, false, err, errlen);
    if (rc == 0)
        ck_assert_int_eq(silences_unpack(set, &o, true, err, errlen), 0);
    msgpack_zone_destroy(&zone);
    return rc;
}

static void assert_same(const silences_t *x, const silences_t *y)
{
    ck_assert_uint_eq(x->n, y->n);
    ck_assert_uint_eq(x->next_id, y->next_id);
    for (size_t i = 0; i < x->n; i++) {
        const silence_t *a = &x->items[i], *b = &y->items[i];
        ck_assert_uint_eq(a->id, b->id);
        ck_assert_str_eq(a->rule, b->rule);
        ck_assert_str_eq(a->cluster, b->cluster);
        ck_assert((a->firm == NULL) == (b->firm == NULL));
        if (a->firm)
            ck_assert_str_eq(a->firm, b->firm);
        ck_assert_int_eq(a->created_ms, b->created_ms);
        ck_assert_int_eq(a->until_ms, b->until_ms);
        ck_assert_str_eq(a->reason, b->reason);
    }
}

/* Every field survives, and so does the next id (a removed silence's id
 * is not given again after a restart). */
START_TEST(test_pack_round_trip)
{
    silences_t copy;
    msgpack_sbuffer sb;
    char err[128];

    add_fixture();
    ck_assert_int_eq(silences_remove(&s, 3), 0);
    pack_set(&s, &sb);
    silences_init(&copy);
    ck_assert_int_eq(unpack_set(&copy, sb.data, sb.size, err, sizeof err), 0);
    assert_same(&s, &copy);
    ck_assert_uint_eq(silences_add(&copy, "r", "c", NULL, T0, T0 + HOUR, "x"), 4);
    msgpack_sbuffer_destroy(&sb);
    silences_free(&copy);
}
END_TEST

/* An older daemon's snapshot holds the bare array: read, next id after the highest. */
START_TEST(test_unpack_legacy_array)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char err[128];

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_str_with_body(&pk, "cod-limit", 9);
    msgpack_pack_str_with_body(&pk, "energy-env", 10);
    msgpack_pack_nil(&pk);
    msgpack_pack_int64(&pk, T0);
    msgpack_pack_int64(&pk, T0 + HOUR);
    msgpack_pack_str_with_body(&pk, "why", 3);
    ck_assert_int_eq(unpack_set(&s, sb.data, sb.size, err, sizeof err), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.items[0].id, 7);
    ck_assert_ptr_null(s.items[0].firm);
    ck_assert_uint_eq(s.next_id, 8);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* Malformed input is refused whole, with the entry and field named. */
START_TEST(test_unpack_malformed)
{
    static const struct {
        const char *name;
        int field, kind; /* field -1: the next_id; -2: the items are not an array */
        const char *want;
    } bad[] = {
        {"next_id missing", -1, 0, "next_id"},
        {"items not an array", -2, 0, "items array"},
        {"id 0", 0, 1, "entry 2: id"},
        {"rule a number", 1, 2, "entry 2: rule"},
        {"rule empty", 1, 3, "entry 2: rule"},
        {"cluster nil", 2, 4, "entry 2: cluster"},
        {"firm a number", 3, 2, "entry 2: firm"},
        {"created a string", 4, 3, "entry 2: created_ms"},
        {"until a float", 5, 5, "entry 2: until_ms"},
        {"reason nil", 6, 4, "entry 2: reason"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char err[128] = "";
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, bad[c].field == -1 ? 1 : 2);
        if (bad[c].field != -1) {
            msgpack_pack_str_with_body(&pk, "next_id", 7);
            msgpack_pack_uint64(&pk, 9);
        }
        msgpack_pack_str_with_body(&pk, "items", 5);
        if (bad[c].field == -2) {
            msgpack_pack_nil(&pk);
        } else {
            msgpack_pack_array(&pk, 2);
            for (int e = 0; e < 2; e++) {
                msgpack_pack_array(&pk, 7);
                for (int k = 0; k < 7; k++) {
                    int kind = e == 1 && k == bad[c].field ? bad[c].kind : 0;
                    switch (kind) {
                    case 1: msgpack_pack_uint64(&pk, 0); break;
                    case 2: msgpack_pack_int64(&pk, 5); break;
                    case 3: msgpack_pack_str_with_body(&pk, "", 0); break;
                    case 4: msgpack_pack_nil(&pk); break;
                    case 5: msgpack_pack_double(&pk, 1.5); break;
                    default:
                        if (k == 0)
                            msgpack_pack_uint64(&pk, (uint64_t)e + 1);
                        else if (k >= 4 && k <= 5)
                            msgpack_pack_int64(&pk, T0);
                        else
                            msgpack_pack_str_with_body(&pk, "x", 1);
                    }
                }
            }
        }
        ck_assert_msg(unpack_set(&s, sb.data, sb.size, err, sizeof err) == -1, "%s", bad[c].name);
        ck_assert_msg(strstr(err, bad[c].want) != NULL, "%s: %s", bad[c].name, err);
        ck_assert_msg(s.n == 0, "%s: applied", bad[c].name);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

static void replay_all(silences_t *set, const journal_t *j)
{
    char err[128];
    for (size_t off = 0; off < j->used;) {
        uint32_t len;
        memcpy(&len, j->buf + off, 4);
        ck_assert_msg(silences_replay(set, j->buf + off + 4, len, err, sizeof err) == 0, "%s", err);
        off += 4 + len;
    }
}

/* Add, remove and expire are each journaled; the records replay to the same set. */
START_TEST(test_journal_replays_to_same_set)
{
    static journal_t j;
    silences_t copy;

    memset(&j, 0, sizeof j);
    s.journal = journal_cb;
    s.journal_data = &j;
    add_fixture();
    ck_assert_uint_eq(j.n, 3);
    ck_assert_uint_eq(j.buf[4], RECORD_SILENCE);
    ck_assert_int_eq(silences_remove(&s, 1), 0);
    ck_assert_int_eq(silences_remove(&s, 42), -1); /* none: nothing journaled */
    ck_assert_uint_eq(j.n, 4);
    ck_assert_uint_eq(silences_expire(&s, T0 + HOUR), 2); /* 2 and 3 lapse */
    ck_assert_uint_eq(j.n, 6);
    ck_assert_uint_eq(silences_add(&s, "r", "c", "f", T0, T0 + 3 * HOUR, "later"), 4);
    silences_init(&copy);
    replay_all(&copy, &j);
    assert_same(&s, &copy);
    replay_all(&copy, &j); /* idempotent */
    assert_same(&s, &copy);
    silences_free(&copy);
}
END_TEST

/* Not durable, not done: the caller is told and nothing changes. */
START_TEST(test_journal_failure_refuses)
{
    static journal_t j;

    memset(&j, 0, sizeof j);
    s.journal = journal_cb;
    s.journal_data = &j;
    ck_assert_uint_eq(silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, "x"), 1);
    j.fail = true;
    ck_assert_uint_eq(silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, "y"), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_int_eq(silences_remove(&s, 1), -2);
    ck_assert_uint_eq(s.n, 1);
    j.fail = false;
    ck_assert_uint_eq(silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, "z"), 2); /* no id lost */
}
END_TEST

START_TEST(test_replay_malformed)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } bad[] = {
        {"empty", "", 0},
        {"tag only", "\x04", 1},
        {"another tag", "\x03\x91\x01", 3},
        {"not an array", "\x04\x01", 2},
        {"removal of id 0", "\x04\x91\x00", 3},
        {"an add of 3 fields", "\x04\x93\x01\xa1x\xa1y", 7},
        {"trailing bytes", "\x04\x91\x01\x01", 4},
    };
    char err[128];
    ck_assert_uint_eq(silences_add(&s, "r", "c", NULL, T0, T0 + HOUR, "x"), 1);
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        ck_assert_msg(silences_replay(&s, bad[c].bytes, bad[c].len, err, sizeof err) == -1, "%s",
                      bad[c].name);
        ck_assert_msg(strncmp(err, "silence record: ", 16) == 0, "%s: %s", bad[c].name, err);
        ck_assert_uint_eq(s.n, 1);
    }
}
END_TEST

static Suite *silences_suite(void)
{
    Suite *s_ = suite_create("silences");
    TCase *tc = tcase_create("match");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_match, 0, (int)(sizeof match / sizeof match[0]));
    tcase_add_test(tc, test_empty_matches_nothing);
    suite_add_tcase(s_, tc);

    tc = tcase_create("bookkeeping");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_add_copies);
    tcase_add_test(tc, test_expire);
    tcase_add_test(tc, test_lapsed_without_expire);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_ids_increase);
    tcase_add_test(tc, test_pack_round_trip);
    tcase_add_test(tc, test_unpack_legacy_array);
    tcase_add_test(tc, test_unpack_malformed);
    tcase_add_test(tc, test_journal_replays_to_same_set);
    tcase_add_test(tc, test_journal_failure_refuses);
    tcase_add_test(tc, test_replay_malformed);
    suite_add_tcase(s_, tc);
    return s_;
}

int main(void)
{
    SRunner *sr = srunner_create(silences_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
