/*
 * check_waltail.c -- the WAL follower (daemon/waltail.c) against segments
 * the daemon's own writer (daemon/wal.c) makes: it hands out what was
 * appended, waits at a torn tail and reads the record once it is whole,
 * crosses a rotation, resumes from its cursor file after a close, calls a
 * corrupt record an error naming the segment and offset, and stops at its
 * limit. Also the WAL holders that keep trimming off a forwarder's segments.
 *
 * Each test works in its own mkdtemp() directory. The loop runs only to
 * finish the fsync a rotation starts.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/log.h"
#include "daemon/wal.h"
#include "daemon/waltail.h"
#include "tests/testlib.h"

static testlib_dir_t tdir;
static uv_loop_t loop;
static wal_t wal;
static char cursor[256];

static void setup(void)
{
    testlib_dir_make(&tdir, "waltail");
    uv_loop_init(&loop);
    log_init(LOG_LVL_ERROR, "check_waltail");
    char err[256];
    ck_assert_msg(wal_open(&wal, &loop, tdir.path, 1, NULL, NULL, err, sizeof err) == 0, "%s", err);
    testlib_dir_file(&tdir, "cursor", cursor, sizeof cursor);
}

static void teardown(void)
{
    if (wal.dir)
        wal_close(&wal);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    testlib_dir_remove(&tdir);
}

/* Appends the record "rec-<i>" (zero-padded to 40 bytes). */
static void append(int i)
{
    char rec[40] = {0};
    snprintf(rec, sizeof rec, "rec-%d", i);
    ck_assert_uint_gt(wal_append(&wal, rec, sizeof rec), 0);
}

static waltail_t *tail_open(void)
{
    waltail_t *t;
    char err[256];
    ck_assert_msg(waltail_open(&t, tdir.path, cursor, err, sizeof err) == 0, "%s", err);
    return t;
}

/* Asserts that the next record is "rec-<i>". */
static void expect(waltail_t *t, int i)
{
    const void *p;
    size_t len;
    char err[256] = "", want[40];
    int rc = waltail_next(t, &p, &len, err, sizeof err);
    ck_assert_msg(rc == 1, "record %d: rc %d (%s)", i, rc, err);
    ck_assert_uint_eq(len, 40);
    snprintf(want, sizeof want, "rec-%d", i);
    ck_assert_str_eq((const char *)p, want);
}

static void expect_nothing(waltail_t *t)
{
    const void *p;
    size_t len;
    char err[256] = "";
    int rc = waltail_next(t, &p, &len, err, sizeof err);
    ck_assert_msg(rc == 0, "rc %d (%s)", rc, err);
}

START_TEST(reads_what_was_appended)
{
    waltail_t *t = tail_open();
    expect_nothing(t);
    for (int i = 0; i < 3; i++)
        append(i);
    for (int i = 0; i < 3; i++)
        expect(t, i);
    expect_nothing(t);
    append(3);
    expect(t, 3);
    expect_nothing(t);
    waltail_close(t);
}
END_TEST

START_TEST(torn_tail_waits_then_resumes)
{
    append(0);
    /* half a record, as a write(2) under way or a crash mid-write leaves it */
    char rec[40] = "rec-1";
    unsigned char frame[WAL_REC_HEADER + sizeof rec];
    char path[4096];
    wal_segment_path(tdir.path, 1, path, sizeof path);
    off_t at = lseek(wal.fd, 0, SEEK_END);
    ck_assert_uint_gt(wal_append(&wal, rec, sizeof rec), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, frame, sizeof frame, at), (ssize_t)sizeof frame);
    ck_assert_int_eq(ftruncate(fd, at + 20), 0);

    waltail_t *t = tail_open();
    expect(t, 0);
    expect_nothing(t);
    expect_nothing(t);
    ck_assert_int_eq(pwrite(fd, frame + 20, sizeof frame - 20, at + 20),
                     (ssize_t)(sizeof frame - 20));
    close(fd);
    expect(t, 1);
    expect_nothing(t);
    waltail_close(t);
}
END_TEST

START_TEST(crosses_rotation)
{
    char err[256];
    waltail_t *t = tail_open();
    append(0);
    append(1);
    expect(t, 0);
    expect(t, 1);
    expect_nothing(t);
    ck_assert_int_eq(wal_rotate(&wal, err, sizeof err), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    expect_nothing(t);
    append(2);
    ck_assert_int_eq(wal_rotate(&wal, err, sizeof err), 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    append(3);
    expect(t, 2);
    expect(t, 3);
    expect_nothing(t);
    ck_assert_uint_eq(waltail_tell(t).segment, 3);
    waltail_close(t);
}
END_TEST

START_TEST(cursor_survives_reopen)
{
    char err[256];
    for (int i = 0; i < 5; i++)
        append(i);
    waltail_t *t = tail_open();
    expect(t, 0);
    expect(t, 1);
    waltail_mark(t);
    expect(t, 2);
    ck_assert_msg(waltail_commit(t, err, sizeof err) == 0, "%s", err); /* the mark: after 1 */
    ck_assert_uint_eq(waltail_segment(t), 1);
    waltail_close(t);

    t = tail_open();
    expect(t, 2);
    expect(t, 3);
    ck_assert_msg(waltail_commit(t, err, sizeof err) == 0, "%s", err); /* after 3 */
    expect(t, 4);
    waltail_close(t); /* not committed: 4 is read again */

    t = tail_open();
    expect(t, 4);
    expect_nothing(t);
    waltail_close(t);

    /* a note rides along with the position, atomically */
    t = tail_open();
    expect(t, 4);
    ck_assert_msg(waltail_commit_note(t, waltail_tell(t), "epoch=7 seq=12", err, sizeof err) == 0,
                  "%s", err);
    waltail_close(t);
    t = tail_open();
    ck_assert_str_eq(waltail_note(t), "epoch=7 seq=12");
    expect_nothing(t);
    waltail_close(t);

    testlib_write_file(cursor, "waltail 1 x\n", 0600);
    ck_assert_int_eq(waltail_open(&t, tdir.path, cursor, err, sizeof err), -1);
    ck_assert_msg(strstr(err, cursor) != NULL, "%s", err);
}
END_TEST

START_TEST(corrupt_record_named)
{
    for (int i = 0; i < 3; i++)
        append(i);
    char path[4096];
    wal_segment_path(tdir.path, 1, path, sizeof path);
    /* one byte of record 1's payload flipped */
    off_t at = WAL_SEG_HEADER + (WAL_REC_HEADER + 40) + WAL_REC_HEADER + 2;
    int fd = open(path, O_RDWR);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);

    waltail_t *t = tail_open();
    expect(t, 0);
    const void *p;
    size_t len;
    char err[256] = "";
    ck_assert_int_eq(waltail_next(t, &p, &len, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "segment 1 offset 68") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "checksum") != NULL, "%s", err);
    waltail_close(t);
}
END_TEST

START_TEST(torn_record_in_left_segment_is_an_error)
{
    char err[256] = "";
    append(0);
    append(1);
    char path[4096];
    wal_segment_path(tdir.path, 1, path, sizeof path);
    ck_assert_int_eq(wal_rotate(&wal, err, sizeof err), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(truncate(path, WAL_SEG_HEADER + (WAL_REC_HEADER + 40) + 30), 0);
    waltail_t *t = tail_open();
    expect(t, 0);
    const void *p;
    size_t len;
    ck_assert_int_eq(waltail_next(t, &p, &len, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "segment 1 offset 68: torn record") != NULL, "%s", err);
    waltail_close(t);
}
END_TEST

START_TEST(limit_holds_back)
{
    append(0);
    append(1);
    waltail_t *t = tail_open();
    waltail_limit(t, (waltail_pos_t){1, WAL_SEG_HEADER + WAL_REC_HEADER + 40});
    expect(t, 0);
    expect_nothing(t);
    waltail_limit(t, (waltail_pos_t){1, WAL_SEG_HEADER + 2 * (WAL_REC_HEADER + 40)});
    expect(t, 1);
    waltail_close(t);
}
END_TEST

START_TEST(holders_keep_segments)
{
    wal_holds_t h = {0};
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 7), 7);
    ck_assert_int_eq(wal_holds_set(&h, "upstream", 5), 0);
    ck_assert_int_eq(wal_holds_set(&h, "remote_write", 3), 0);
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 7), 2);
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 2), 2);
    ck_assert_int_eq(wal_holds_set(&h, "remote_write", 9), 0);
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 7), 4);
    ck_assert_int_eq(wal_holds_set(&h, "upstream", 0), 0);
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 7), 7);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_int_eq(wal_holds_set(&h, "x", 1), 0);
    ck_assert_uint_eq(wal_holds_trim_upto(&h, 7), 0);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        reads_what_was_appended, torn_tail_waits_then_resumes,
        crosses_rotation,        cursor_survives_reopen,
        corrupt_record_named,    torn_record_in_left_segment_is_an_error,
        limit_holds_back,        holders_keep_segments,
    };
    return testlib_run(
        testlib_suite("waltail", setup, teardown, tests, sizeof tests / sizeof tests[0]));
}
