/*
 * check_wal.c -- the WAL's file mechanics (daemon/wal.c): a failed append
 * leaves no half record, the disk-full reserve, damaged segment headers read
 * past while a consistent header of another version is refused, and the
 * segment-gap rule that decides whether a snapshot + WAL is the whole state.
 *
 * Each test works in its own mkdtemp() directory, removed at the end. No
 * loop runs: wal_open needs one only to queue fsyncs, which these tests never
 * start. A write that fails for want of space is made with RLIMIT_FSIZE
 * (EFBIG, counted as no space), which cuts a write short at an exact byte.
 */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/wal.h"
#include "tests/testlib.h"

static testlib_dir_t tdir;
static uv_loop_t loop;

static void setup(void)
{
    testlib_dir_make(&tdir, "wal");
    uv_loop_init(&loop);
    log_init(LOG_LVL_ERROR, "check_wal");
}

static void teardown(void)
{
    uv_loop_close(&loop);
    testlib_dir_remove(&tdir);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static int count_cb(const void *payload, size_t len, void *data)
{
    (void)payload;
    (void)len;
    (*(int *)data)++;
    return 0;
}

/* Writes segment 1 with n records of 100 bytes; returns its path in buf. */
static void make_segment(int n, char *buf, size_t size)
{
    wal_t w;
    char err[256], payload[100];
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    for (int i = 0; i < n; i++) {
        memset(payload, 'a' + i % 26, sizeof payload);
        ck_assert(wal_append(&w, payload, sizeof payload) > 0);
    }
    wal_close(&w);
    wal_segment_path(tdir.path, 1, buf, size);
}

static void poke(const char *path, off_t off, unsigned char byte)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, &byte, 1, off), 1);
    close(fd);
}

static int replay_count(wal_replay_stats_t *st, char *err, size_t errlen, int *ret_rc)
{
    int n = 0;
    uint64_t last;
    *ret_rc = wal_replay(tdir.path, 0, count_cb, &n, st, &last, err, errlen);
    return n;
}

START_TEST(failed_append_is_cut_back)
{
    wal_t w;
    char err[256], path[128], payload[1000];
    memset(payload, 'x', sizeof payload);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    ck_assert(wal_append(&w, payload, 100) > 0);
    wal_segment_path(tdir.path, 1, path, sizeof path);
    off_t good = file_size(path);
    /* room for 300 more bytes: the 1012-byte record is cut short there */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)good + 300;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t pos = wal_append(&w, payload, sizeof payload);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_uint_eq(pos, 0);
    ck_assert_int_eq(file_size(path), good); /* no half record left */
    ck_assert_uint_eq(w.append_failed, 1);
    ck_assert(w.full);
    /* while full, appends are refused without writing, and counted */
    ck_assert_uint_eq(wal_append(&w, payload, 10), 0);
    ck_assert_uint_eq(w.append_failed, 2);
    ck_assert_int_eq(file_size(path), good);
    w.full = false;
    ck_assert(wal_append(&w, payload, 10) > 0);
    wal_close(&w);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(st.damaged, 0);
}
END_TEST

/* Replayed payloads, concatenated as [u32 len][payload], and counted. */
typedef struct {
    unsigned char buf[8192];
    size_t used;
    int n;
} collect_t;

static int collect_cb(const void *payload, size_t len, void *data)
{
    collect_t *c = data;
    ck_assert_uint_le(c->used + 4 + len, sizeof c->buf);
    memcpy(c->buf + c->used, &(uint32_t){(uint32_t)len}, 4);
    memcpy(c->buf + c->used + 4, payload, len);
    c->used += 4 + len;
    c->n++;
    return 0;
}

/* Records of sizes 1..n, record i filled with byte 'A' + i. */
static void grouped_payloads(struct iovec *iov, unsigned char (*data)[64], int n)
{
    for (int i = 0; i < n; i++) {
        memset(data[i], 'A' + i, sizeof data[i]);
        iov[i] = (struct iovec){data[i], (size_t)i + 1};
    }
}

/* A grouped append replays as the same records, in order, as n appends. */
START_TEST(grouped_append_replays_in_order)
{
    wal_t w;
    char err[256];
    unsigned char data[20][64];
    struct iovec iov[20];
    grouped_payloads(iov, data, 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    uint64_t p0 = wal_append(&w, "one", 3);
    ck_assert_uint_eq(wal_append_many(&w, iov, 0), p0); /* nothing: nothing written */
    uint64_t p1 = wal_append_many(&w, iov, 20);
    ck_assert_uint_eq(p1, p0 + 20 * 12 + 210);
    ck_assert_uint_eq(w.appends, 21);
    ck_assert(wal_append_many(&w, iov, 1) > p1);
    wal_close(&w);
    collect_t c = {.used = 0};
    wal_replay_stats_t st;
    uint64_t last;
    ck_assert_int_eq(wal_replay(tdir.path, 0, collect_cb, &c, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 22);
    ck_assert_uint_eq(st.damaged, 0);
    size_t off = 4 + 3;
    ck_assert_mem_eq(c.buf + 4, "one", 3);
    for (int i = 0; i < 21; i++) {
        uint32_t len;
        memcpy(&len, c.buf + off, 4);
        ck_assert_uint_eq(len, i < 20 ? (uint32_t)i + 1 : 1);
        ck_assert_mem_eq(c.buf + off + 4, data[i < 20 ? i : 0], len);
        off += 4 + len;
    }
}
END_TEST

/* A grouped append that fails part way leaves none of its records. */
START_TEST(grouped_append_all_or_nothing)
{
    wal_t w;
    char err[256], path[128];
    unsigned char data[20][64];
    struct iovec iov[20];
    grouped_payloads(iov, data, 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    ck_assert(wal_append(&w, "one", 3) > 0);
    wal_segment_path(tdir.path, 1, path, sizeof path);
    off_t good = file_size(path);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)good + 100; /* room for the first few records only */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t pos = wal_append_many(&w, iov, 20);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_uint_eq(pos, 0);
    ck_assert_int_eq(file_size(path), good);
    ck_assert_uint_eq(w.append_failed, 20);
    ck_assert(w.full);
    ck_assert_uint_eq(wal_append_many(&w, iov, 3), 0); /* full: refused, counted */
    ck_assert_uint_eq(w.append_failed, 23);
    wal_close(&w);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(st.damaged, 0);
}
END_TEST

/* Group writes: staged records are not in the file until the flush, which
 * writes them with one write; positions are those the appends returned, and
 * replay finds every record in order. */
START_TEST(group_staged_then_written)
{
    wal_t w;
    char err[256], path[128];
    unsigned char data[20][64];
    struct iovec iov[20];
    grouped_payloads(iov, data, 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    wal_segment_path(tdir.path, 1, path, sizeof path);
    uint64_t p0 = wal_append(&w, "one", 3);
    off_t good = file_size(path);
    ck_assert_uint_eq(w.written, p0);
    wal_group_begin(&w);
    uint64_t p1 = wal_append_many(&w, iov, 20);
    uint64_t p2 = wal_append(&w, "two", 3);
    ck_assert_uint_eq(p1, p0 + 20 * 12 + 210);
    ck_assert_uint_eq(p2, p1 + 15);
    ck_assert_uint_eq(w.pos, p2);
    ck_assert_uint_eq(w.written, p0); /* staged, not written */
    ck_assert(wal_group_pending(&w));
    ck_assert_int_eq(file_size(path), good);
    ck_assert_uint_eq(w.appends, 22);
    ck_assert_int_eq(wal_group_flush(&w), 0);
    ck_assert(!w.grouping);
    ck_assert(!wal_group_pending(&w));
    ck_assert_uint_eq(w.written, p2);
    ck_assert_uint_eq(w.groups, 1);
    ck_assert_int_eq(file_size(path), good + (off_t)(p2 - p0));
    ck_assert_int_eq(wal_group_flush(&w), 0); /* nothing staged: nothing to do */
    ck_assert_uint_eq(w.groups, 1);
    wal_close(&w);
    collect_t c = {.used = 0};
    wal_replay_stats_t st;
    uint64_t last;
    ck_assert_int_eq(wal_replay(tdir.path, 0, collect_cb, &c, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 22);
    ck_assert_uint_eq(st.damaged, 0);
    ck_assert_mem_eq(c.buf + 4, "one", 3);
    ck_assert_mem_eq(c.buf + c.used - 3, "two", 3);
}
END_TEST

/* A group whose write fails is cut back and stays staged (its records were
 * applied: they cannot be dropped); nothing overtakes it: a direct append
 * or a rotation writes it first, and refuses while it cannot. */
START_TEST(group_failed_kept_and_retried)
{
    wal_t w;
    char err[256], path[128];
    unsigned char data[20][64];
    struct iovec iov[20];
    grouped_payloads(iov, data, 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    wal_segment_path(tdir.path, 1, path, sizeof path);
    ck_assert(wal_append(&w, "one", 3) > 0);
    off_t good = file_size(path);
    uint64_t written = w.written;
    wal_group_begin(&w);
    uint64_t end = wal_append_many(&w, iov, 20);
    ck_assert(end > 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)good + 100; /* room for part of the group only */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(wal_group_flush(&w), -1);
    ck_assert_int_eq(file_size(path), good); /* cut back */
    ck_assert(wal_group_pending(&w));
    ck_assert_uint_eq(w.written, written);
    ck_assert_uint_eq(w.group_failed, 1);
    ck_assert(w.full); /* EFBIG: the disk-full recovery's business */
    w.full = false;
    ck_assert_uint_eq(wal_append(&w, "two", 3), 0); /* may not overtake the group */
    ck_assert_int_eq(wal_rotate(&w, err, sizeof err), -1);
    ck_assert_int_eq(file_size(path), good);
    w.full = false;
    setrlimit(RLIMIT_FSIZE, &old);
    uint64_t p2 = wal_append(&w, "two", 3); /* writes the group first, then itself */
    ck_assert_uint_eq(p2, end + 15);
    ck_assert_uint_eq(w.written, p2);
    ck_assert(!wal_group_pending(&w));
    wal_group_begin(&w);
    ck_assert(wal_append(&w, "three", 5) > 0);
    ck_assert_int_eq(wal_rotate(&w, err, sizeof err), 1); /* writes the group, then rotates */
    ck_assert(!wal_group_pending(&w));
    uv_run(&loop, UV_RUN_DEFAULT); /* the retired segment's fsync */
    wal_close(&w);
    collect_t c = {.used = 0};
    wal_replay_stats_t st;
    uint64_t last;
    ck_assert_int_eq(wal_replay(tdir.path, 0, collect_cb, &c, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 23);
    ck_assert_uint_eq(st.damaged, 0);
    ck_assert_mem_eq(c.buf + c.used - 5, "three", 5);
}
END_TEST

/* A crash in the middle of a grouped write (a torn tail): replay keeps the
 * group's records that are whole and cuts the rest off, so appends go on
 * after intact data. */
START_TEST(grouped_append_torn_tail)
{
    wal_t w;
    char err[256], path[128];
    unsigned char data[20][64];
    struct iovec iov[20];
    grouped_payloads(iov, data, 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    ck_assert(wal_append_many(&w, iov, 20) > 0);
    wal_close(&w);
    wal_segment_path(tdir.path, 1, path, sizeof path);
    /* the first 5 records (12 + 1 .. 12 + 5 bytes) and half the 6th */
    off_t keep = 16 + 5 * 12 + 15 + 6;
    ck_assert_int_eq(truncate(path, keep), 0);
    collect_t c = {.used = 0};
    wal_replay_stats_t st;
    uint64_t last;
    ck_assert_int_eq(wal_replay(tdir.path, 0, collect_cb, &c, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(c.n, 5);
    ck_assert_uint_eq(st.truncated, 6);
    ck_assert_int_eq(file_size(path), keep - 6);
}
END_TEST

/* Checks payload i of a big_records() segment: its length and its bytes. */
static int big_cb(const void *payload, size_t len, void *data)
{
    static const size_t lens[] = {3u << 20, 10, (3u << 19) + 7, 1000};
    int *n = data;
    const unsigned char *p = payload;
    ck_assert_uint_eq(len, lens[*n % 4]);
    for (size_t k = 0; k < len; k += 4093)
        ck_assert_uint_eq(p[k], (unsigned char)(*n + k));
    (*n)++;
    return 0;
}

/* Records larger than the replay's read chunk, and records that straddle
 * chunks, replay whole and in order. */
START_TEST(replay_streams_big_records)
{
    wal_t w;
    char err[256];
    static const size_t lens[] = {3u << 20, 10, (3u << 19) + 7, 1000};
    unsigned char *buf = malloc(3u << 20);
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    for (int i = 0; i < 12; i++) {
        for (size_t k = 0; k < lens[i % 4]; k++)
            buf[k] = (unsigned char)(i + k);
        ck_assert(wal_append(&w, buf, lens[i % 4]) > 0);
    }
    wal_close(&w);
    free(buf);
    int n = 0;
    wal_replay_stats_t st;
    uint64_t last;
    ck_assert_int_eq(wal_replay(tdir.path, 0, big_cb, &n, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(n, 12);
    ck_assert_uint_eq(st.damaged, 0);
}
END_TEST

/* Damage found past the first read chunk: the records before it are
 * replayed once, the damaged one skipped, the ones after it found again. */
START_TEST(replay_damage_after_first_chunk)
{
    char path[128], err[256];
    make_segment(30000, path, sizeof path); /* 112 bytes each: 3.4 MB */
    poke(path, 16 + 25000 * 112 + 50, 0xff);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 29999);
    ck_assert_uint_eq(st.damaged, 1);
    ck_assert_uint_eq(st.bytes_skipped, 112);
}
END_TEST

START_TEST(reserve_made_resized_released)
{
    wal_t w;
    char err[256], path[128];
    ck_assert_int_eq(wal_open(&w, &loop, tdir.path, 1, NULL, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/reserve", tdir.path);
    ck_assert_int_eq(wal_reserve_set(&w, 1 << 20, err, sizeof err), 0);
    ck_assert_int_eq(file_size(path), 1 << 20);
    ck_assert_uint_eq(w.reserve_bytes, 1 << 20);
    ck_assert_int_eq(wal_reserve_set(&w, 2 << 20, err, sizeof err), 0); /* grows */
    ck_assert_int_eq(file_size(path), 2 << 20);
    ck_assert_int_eq(wal_reserve_set(&w, 1 << 20, err, sizeof err), 0); /* within 2x: kept */
    ck_assert_int_eq(file_size(path), 2 << 20);
    ck_assert_int_eq(wal_reserve_set(&w, 256 << 10, err, sizeof err), 0); /* shrinks */
    ck_assert_int_eq(file_size(path), 256 << 10);
    wal_reserve_release(&w);
    ck_assert_int_eq(file_size(path), -1);
    ck_assert_uint_eq(w.reserve_bytes, 0);
    wal_close(&w);
}
END_TEST

/* A flipped byte anywhere in the header: every record is still read. */
static const struct {
    off_t off;
    unsigned char byte;
} header_flips[] = {{0, 'X'}, {4, 'Z'}, {9, 0x5a}, {8, 7}, {13, 0x5a}, {15, 0xff}};

START_TEST(damaged_header_read_past)
{
    char path[128], err[256];
    make_segment(5, path, sizeof path);
    poke(path, header_flips[_i].off, header_flips[_i].byte);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_msg(rc == 0, "flip at %d refused: %s", (int)header_flips[_i].off, err);
    ck_assert_int_eq(n, 5);
    ck_assert_uint_eq(st.headers_damaged, 1);
    ck_assert_uint_eq(st.damaged, 0);
}
END_TEST

/* A consistent header of another version is that version: refused. */
START_TEST(other_version_refused)
{
    char path[128], err[256];
    make_segment(2, path, sizeof path);
    unsigned char hdr[16] = "CMWAL\0\0\0";
    hdr[8] = 2;
    uint32_t crc = (uint32_t)crc32(0L, hdr, 12);
    for (int i = 0; i < 4; i++)
        hdr[12 + i] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 16; i++)
        poke(path, i, hdr[i]);
    wal_replay_stats_t st;
    int rc;
    replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err, "WAL format version 2; this clustermond reads version 1"));
}
END_TEST

/* A header from before the check (field 0) still reads as before. */
START_TEST(legacy_header_accepted)
{
    char path[128], err[256];
    make_segment(3, path, sizeof path);
    for (int i = 12; i < 16; i++)
        poke(path, i, 0);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 3);
    ck_assert_uint_eq(st.headers_damaged, 0);
}
END_TEST

/* A damaged header and a damaged first record: exactly that record lost. */
START_TEST(damaged_header_and_record)
{
    char path[128], err[256];
    make_segment(4, path, sizeof path);
    poke(path, 2, 'Q');
    poke(path, 16 + 12 + 50, 0); /* inside the first payload */
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 3);
    ck_assert_uint_eq(st.headers_damaged, 1);
    ck_assert_uint_eq(st.damaged, 1);
    ck_assert_uint_eq(st.bytes_skipped, 112);
}
END_TEST

static const struct {
    uint64_t segs[6];
    size_t n;
    uint64_t after, gap;
} gaps[] = {
    {{0}, 0, 0, 0},          /* no WAL: nothing missing */
    {{1, 2, 3}, 3, 0, 0},    /* whole from 1 */
    {{4, 5, 6}, 3, 0, 1},    /* trimmed: 1 is gone */
    {{4, 5, 6}, 3, 3, 0},    /* snapshot 3 + 4..6 */
    {{4, 5, 6}, 3, 2, 3},    /* snapshot 2 needs 3 */
    {{4, 6, 7}, 3, 3, 5},    /* a hole in the middle */
    {{1, 2, 3}, 3, 9, 0},    /* the snapshot covers them all */
    {{2, 3, 4, 5}, 4, 3, 0}, /* older segments below are ignored */
};

START_TEST(first_gap)
{
    ck_assert_uint_eq(wal_first_gap(gaps[_i].segs, gaps[_i].n, gaps[_i].after), gaps[_i].gap);
}
END_TEST

/* Segments on disk with a hole: replay reports the missing number. */
START_TEST(missing_segment_reported)
{
    wal_t w;
    char err[256], path[128];
    for (uint64_t s = 1; s <= 3; s++) {
        ck_assert_int_eq(wal_open(&w, &loop, tdir.path, s, NULL, NULL, err, sizeof err), 0);
        ck_assert(wal_append(&w, "abc", 3) > 0);
        wal_close(&w);
    }
    wal_segment_path(tdir.path, 2, path, sizeof path);
    unlink(path);
    wal_replay_stats_t st;
    int rc, n = replay_count(&st, err, sizeof err, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(st.missing, 1);
    ck_assert_uint_eq(st.first, 1);
    ck_assert_uint_eq(st.last, 3);
}
END_TEST

/* A torn last segment is removed and its number is free again. */
START_TEST(torn_last_segment_frees_its_number)
{
    char path[128], err[256];
    make_segment(1, path, sizeof path);
    char torn[128];
    wal_segment_path(tdir.path, 2, torn, sizeof torn);
    FILE *fp = fopen(torn, "w");
    fputs("CMW", fp);
    fclose(fp);
    wal_replay_stats_t st;
    uint64_t last;
    int n = 0;
    ck_assert_int_eq(wal_replay(tdir.path, 0, count_cb, &n, &st, &last, err, sizeof err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(last, 1);
    ck_assert_int_eq(file_size(torn), -1);
}
END_TEST

static Suite *wal_suite(void)
{
    Suite *s = suite_create("wal");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, failed_append_is_cut_back);
    tcase_add_test(tc, reserve_made_resized_released);
    tcase_add_test(tc, grouped_append_replays_in_order);
    tcase_add_test(tc, grouped_append_all_or_nothing);
    tcase_add_test(tc, grouped_append_torn_tail);
    tcase_add_test(tc, group_staged_then_written);
    tcase_add_test(tc, group_failed_kept_and_retried);
    tcase_add_test(tc, replay_streams_big_records);
    tcase_add_test(tc, replay_damage_after_first_chunk);
    tcase_add_loop_test(tc, damaged_header_read_past, 0,
                        (int)(sizeof header_flips / sizeof header_flips[0]));
    tcase_add_test(tc, other_version_refused);
    tcase_add_test(tc, legacy_header_accepted);
    tcase_add_test(tc, damaged_header_and_record);
    tcase_add_loop_test(tc, first_gap, 0, (int)(sizeof gaps / sizeof gaps[0]));
    tcase_add_test(tc, missing_segment_reported);
    tcase_add_test(tc, torn_last_segment_frees_its_number);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
