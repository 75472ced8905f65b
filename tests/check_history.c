/*
 * check_history.c -- the alert history journal and acknowledgements
 * (daemon/history.c), and the pure helpers of series.c (ranges, exact
 * amount text).
 *
 * The journal is a file: every test opens it in a fresh temp dir, writes,
 * closes, and opens it again, as a restart does; a torn tail (a crash
 * mid-append) is cut off, never guessed at.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/history.h"
#include "daemon/series.h"
#include "daemon/wal.h"
#include "tests/testlib.h"

#define T0 INT64_C(1656604800000)
#define DAY INT64_C(86400000)

static testlib_dir_t dir;
static history_t h;

static void setup(void)
{
    testlib_dir_make(&dir, "history");
}

static void teardown(void)
{
    history_close(&h);
    testlib_dir_remove(&dir);
}

static void reopen(int64_t retention, int64_t now)
{
    char err[256];
    history_close(&h);
    ck_assert_msg(history_open(&h, dir.path, WAL_FSYNC_ALWAYS, retention, now, err, sizeof err) ==
                      0,
                  "%s", err);
}

static proto_alert_t alert(const char *id, int state, int64_t since, bool reminder)
{
    proto_alert_t a = {0};
    a.id = proto_str(id);
    a.rule = proto_str("growth");
    a.cluster = proto_str("new-energy");
    a.firm = proto_str(NULL);
    a.summary = proto_str("short of target");
    a.state = (uint8_t)state;
    a.severity = PROTO_SEV_CRITICAL;
    a.since_ms = since;
    a.ts_ms = since + 1000;
    a.seq = 7;
    a.reminder = reminder;
    return a;
}

START_TEST(test_transitions_survive_reopen)
{
    reopen(0, T0);
    proto_alert_t a = alert("growth:ne", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    a = alert("growth:ne", PROTO_ALERT_FIRING, T0, true); /* a reminder: not journaled */
    history_alert_cb(&h, &a);
    a = alert("growth:ne", PROTO_ALERT_RESOLVED, T0, false);
    history_alert_cb(&h, &a);
    ck_assert_uint_eq(h.n, 2);
    reopen(0, T0);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_str_eq(h.entries[0].alert_id, "growth:ne");
    ck_assert_int_eq(h.entries[0].state, PROTO_ALERT_FIRING);
    ck_assert_int_eq(h.entries[1].state, PROTO_ALERT_RESOLVED);
    ck_assert_str_eq(h.entries[1].summary, "short of target");
    ck_assert_ptr_null(h.entries[1].firm);
    ck_assert_uint_eq(h.entries[1].seq, 7);
    /* ids go on after a restart, never reused */
    a = alert("growth:ne", PROTO_ALERT_FIRING, T0 + DAY, false);
    history_alert_cb(&h, &a);
    ck_assert_uint_eq(h.entries[2].id, 3);
}
END_TEST

START_TEST(test_ack_holds_reminders_until_change)
{
    reopen(0, T0);
    proto_alert_t a = alert("growth:ne", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    proto_alert_t rem = alert("growth:ne", PROTO_ALERT_FIRING, T0, true);
    ck_assert(!history_hold_cb(&h, &rem));
    ck_assert_uint_gt(history_ack(&h, &a, "wg-lead", "plant maintenance in May", T0 + 5), 0);
    ck_assert(history_hold_cb(&h, &rem));
    /* the transition itself is never held */
    ck_assert(!history_hold_cb(&h, &a));
    /* the acknowledgement survives a restart */
    reopen(0, T0);
    const history_ack_t *k = history_ack_find(&h, "growth:ne", 9);
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->who, "wg-lead");
    ck_assert_str_eq(k->note, "plant maintenance in May");
    ck_assert(history_hold_cb(&h, &rem));
    /* it changes (revised): the acknowledgement ends, reminders go out */
    proto_alert_t rev = alert("growth:ne", PROTO_ALERT_REVISED, T0, false);
    history_alert_cb(&h, &rev);
    ck_assert_ptr_null(history_ack_find(&h, "growth:ne", 9));
    ck_assert(!history_hold_cb(&h, &rem));
    reopen(0, T0);
    ck_assert_ptr_null(history_ack_find(&h, "growth:ne", 9));
}
END_TEST

START_TEST(test_ack_ends_with_a_new_episode)
{
    reopen(0, T0);
    proto_alert_t a = alert("drop:ee-007", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    history_ack(&h, &a, "local", "called the firm", T0 + 5);
    /* resolved and fired again while silenced: nothing published, but the
     * reminder names a new since: the old acknowledgement does not cover it */
    proto_alert_t rem = alert("drop:ee-007", PROTO_ALERT_FIRING, T0 + DAY, true);
    ck_assert(!history_hold_cb(&h, &rem));
    ck_assert_ptr_null(history_ack_find(&h, "drop:ee-007", 11));
}
END_TEST

START_TEST(test_torn_tail_cut_off)
{
    reopen(0, T0);
    proto_alert_t a = alert("growth:ne", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    history_alert_cb(&h, &a);
    history_close(&h);
    char path[128];
    testlib_dir_file(&dir, "history", path, sizeof path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    off_t whole = st.st_size;
    /* half a record more, as a crash mid-write leaves it */
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\x40\x00\x00\x00\x01\x02", 6), 6);
    close(fd);
    reopen(0, T0);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, whole);
    /* appends go on from the whole record */
    history_alert_cb(&h, &a);
    reopen(0, T0);
    ck_assert_uint_eq(h.n, 3);
}
END_TEST

START_TEST(test_damaged_record_cut_off)
{
    reopen(0, T0);
    proto_alert_t a = alert("growth:ne", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    history_alert_cb(&h, &a);
    history_close(&h);
    char path[128];
    size_t len;
    testlib_dir_file(&dir, "history", path, sizeof path);
    char *text = testlib_read_file(path, &len);
    text[len - 3] ^= 0x55; /* the second record's payload: its CRC no longer matches */
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    free(text);
    reopen(0, T0);
    ck_assert_uint_eq(h.n, 1);
}
END_TEST

START_TEST(test_retention_drops_old_but_keeps_acks)
{
    reopen(0, T0);
    proto_alert_t old = alert("old:x", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &old);
    proto_alert_t kept = alert("kept:y", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &kept);
    history_ack(&h, &kept, "local", "long follow-up", T0 + 1);
    proto_alert_t fresh = alert("new:z", PROTO_ALERT_FIRING, T0 + 20 * DAY, false);
    fresh.ts_ms = T0 + 20 * DAY;
    history_alert_cb(&h, &fresh);
    /* ten days' retention, twenty-one days on */
    reopen(10 * DAY, T0 + 21 * DAY);
    ck_assert_uint_eq(h.n, 2); /* the ack in force and the new alert */
    ck_assert_int_eq(h.entries[0].kind, HISTORY_ACK);
    ck_assert_str_eq(h.entries[1].alert_id, "new:z");
    ck_assert_ptr_nonnull(history_ack_find(&h, "kept:y", 6));
    /* the file was rewritten: another restart finds the same */
    reopen(10 * DAY, T0 + 21 * DAY);
    ck_assert_uint_eq(h.n, 2);
}
END_TEST

START_TEST(test_query_filters)
{
    reopen(0, T0);
    proto_alert_t a = alert("growth:ne", PROTO_ALERT_FIRING, T0, false);
    history_alert_cb(&h, &a);
    history_silence(&h, true, 4, "cod-limit", "energy-env", "ee-024", T0 + DAY, "sensor swap",
                    "ops", T0 + 2000);
    history_silence(&h, false, 4, "cod-limit", "energy-env", "ee-024", 0, NULL, "ops", T0 + 3000);
    const history_entry_t **es;
    size_t total;
    history_filter_t f = {.cluster = "energy-env"};
    size_t n = history_query(&h, &f, &es, &total);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(es[0]->kind, HISTORY_SILENCE_ADD);
    ck_assert_str_eq(es[0]->who, "ops");
    ck_assert_uint_eq(es[0]->ref, 4);
    free(es);
    f = (history_filter_t){.since_ms = T0 + 2500};
    n = history_query(&h, &f, &es, &total);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(es[0]->kind, HISTORY_SILENCE_RM);
    free(es);
    f = (history_filter_t){.limit = 1};
    n = history_query(&h, &f, &es, &total);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(total, 3);
    ck_assert_int_eq(es[0]->kind, HISTORY_SILENCE_RM); /* the newest */
    free(es);
    f = (history_filter_t){.rule = "growth", .firm = "ne-001"};
    n = history_query(&h, &f, &es, &total);
    ck_assert_uint_eq(n, 0);
    free(es);
}
END_TEST

/* ---- series helpers ---------------------------------------------------------------- */

static const struct {
    const char *in;
    int ok, from, to; /* months: year * 12 + month - 1 */
} ranges[] = {
    {"2024-01..2024-06", 1, 2024 * 12, 2024 * 12 + 5},
    {"2024", 1, 2024 * 12, 2024 * 12 + 11},
    {"2024-Q2", 1, 2024 * 12 + 3, 2024 * 12 + 5},
    {"2023-Q4..2024-02", 1, 2023 * 12 + 9, 2024 * 12 + 1},
    {"2024-06..2024-01", 0, 0, 0},
    {"2024-01..", 0, 0, 0},
    {"2024-13", 0, 0, 0},
};

START_TEST(test_range_parse)
{
    int from = -1, to = -1;
    const char *in = ranges[_i].in;
    int rc = series_range_parse(in, strlen(in), &from, &to);
    ck_assert_msg((rc == 0) == ranges[_i].ok, "%s", in);
    if (ranges[_i].ok) {
        ck_assert_int_eq(from, ranges[_i].from);
        ck_assert_int_eq(to, ranges[_i].to);
    }
}
END_TEST

START_TEST(test_milli_text)
{
    char buf[64];
    series_milli_str((__int128)6840000000000LL, buf, sizeof buf);
    ck_assert_str_eq(buf, "6840000000.000");
    series_milli_str(-1500, buf, sizeof buf);
    ck_assert_str_eq(buf, "-1.500");
    series_milli_str(7, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.007");
    /* past int64: a sum of many firm-years is still exact */
    series_milli_str((__int128)INT64_MAX * 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "36893488147419103.228");
    series_range_format(2024 * 12, 2024 * 12 + 5, buf, sizeof buf);
    ck_assert_str_eq(buf, "2024-01..2024-06");
}
END_TEST

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("journal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_transitions_survive_reopen);
    tcase_add_test(tc, test_ack_holds_reminders_until_change);
    tcase_add_test(tc, test_ack_ends_with_a_new_episode);
    tcase_add_test(tc, test_torn_tail_cut_off);
    tcase_add_test(tc, test_damaged_record_cut_off);
    tcase_add_test(tc, test_retention_drops_old_but_keeps_acks);
    tcase_add_test(tc, test_query_filters);
    suite_add_tcase(s, tc);
    tc = tcase_create("series");
    tcase_add_loop_test(tc, test_range_parse, 0, sizeof ranges / sizeof ranges[0]);
    tcase_add_test(tc, test_milli_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(history_suite());
}
