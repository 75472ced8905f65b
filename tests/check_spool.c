/*
 * check_spool.c -- the agent's on-disk spool (agents/spool.c) and the input
 * positions it records (input_reader_pos/input_reader_skip in agents/input.c).
 *
 * Each test works in its own mkdtemp() directory, removed at the end, and
 * reopens the spool the way a restarted agent would: a close followed by an
 * open stands for a crash whenever the files on disk are what a crash at
 * that point leaves (a temp file before its rename, a batch written but the
 * state file not rewritten).
 */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/input.h"
#include "agents/spool.h"
#include "proto/proto.h"
#include "tests/testlib.h"

#define AGENT "agent-test"
#define FIRST_SEQ 1700000000000ull
#define MB (1ull << 20)
/* The batches' epoch. The spool does not read it (its own is in the state
 * file); a fixed small one keeps every test batch the same size. */
#define EPOCH 7

static testlib_dir_t tdir;
static char dir[128]; /* tdir.path/AGENT */
static unsigned nwarn;
static char last_warn[SPOOL_ERRLEN];

static void on_warn(void *arg, const char *msg)
{
    (void)arg;
    nwarn++;
    snprintf(last_warn, sizeof(last_warn), "%s", msg);
}

static void setup(void)
{
    testlib_dir_make(&tdir, "spool");
    snprintf(dir, sizeof(dir), "%s/" AGENT, tdir.path);
    nwarn = 0;
    last_warn[0] = '\0';
}

static void teardown(void)
{
    testlib_dir_remove(&tdir);
}

static spool_t *open_ok(uint64_t max_bytes, uint64_t first_seq)
{
    char err[SPOOL_ERRLEN];
    spool_t *sp;
    int rc =
        spool_open(tdir.path, AGENT, max_bytes, first_seq, on_warn, NULL, &sp, err, sizeof(err));

    ck_assert_msg(rc == SPOOL_OK, "spool_open: %d %s", rc, err);
    return sp;
}

/* Encodes a one-sample batch with seq and a value; the caller destroys buf. */
static void make_batch(uint64_t seq, double value, msgpack_sbuffer *buf)
{
    proto_sample_t smp = {
        .firm = proto_str("ee-001"),
        .metric = proto_str("energy"),
        .value = value,
        .ts_ms = 1656633600000,
        .period = {.year = 2022, .kind = PROTO_PERIOD_MONTH, .index = 7},
    };
    proto_batch_t b = {.agent = proto_str(AGENT),
                       .epoch = EPOCH,
                       .seq = seq,
                       .nsamples = 1,
                       .samples = &smp,
                       .cap = 1};
    char err[PROTO_ERRLEN];

    msgpack_sbuffer_init(buf);
    ck_assert_int_eq(proto_batch_encode(&b, buf, err, sizeof(err)), PROTO_OK);
}

/* Appends the next batch with position offset; returns its seq. */
static uint64_t append_ok(spool_t *sp, double value, uint64_t offset)
{
    uint64_t seq = spool_next_seq(sp);
    spool_pos_t pos = {.offset = offset, .line = offset / 10 + 1, .crc = (uint32_t)offset * 7};
    msgpack_sbuffer buf;
    char err[SPOOL_ERRLEN];
    int rc;

    make_batch(seq, value, &buf);
    rc = spool_append(sp, seq, buf.data, buf.size, &pos, err, sizeof(err));
    msgpack_sbuffer_destroy(&buf);
    ck_assert_msg(rc == SPOOL_OK, "spool_append: %d %s", rc, err);
    return seq;
}

static void batch_path(uint64_t seq, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%020llu.batch", dir, (unsigned long long)seq);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    ck_assert_int_eq(fclose(fp), 0);
}

/* ---- spool ----------------------------------------------------------------- */

START_TEST(test_round_trip)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    char err[SPOOL_ERRLEN], path[256];
    uint64_t seqs[3], first;
    struct stat st;

    ck_assert_uint_eq(spool_next_seq(sp), FIRST_SEQ);
    ck_assert_uint_eq(spool_count(sp), 0);
    ck_assert(!spool_first(sp, &first));
    for (int i = 0; i < 3; i++)
        seqs[i] = append_ok(sp, 10 + i, 100 * (i + 1));
    ck_assert_uint_eq(seqs[0], FIRST_SEQ);
    ck_assert_uint_eq(seqs[2], FIRST_SEQ + 2);
    ck_assert_uint_eq(spool_count(sp), 3);
    ck_assert(spool_first(sp, &first));
    ck_assert_uint_eq(first, FIRST_SEQ);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 300);

    /* What comes back is the exact message, and it is a batch with its seq. */
    for (int i = 0; i < 3; i++) {
        msgpack_sbuffer want;
        void *msg;
        size_t len;

        make_batch(seqs[i], 10 + i, &want);
        ck_assert_int_eq(spool_read(sp, seqs[i], &msg, &len, err, sizeof(err)), SPOOL_OK);
        ck_assert_uint_eq(len, want.size);
        ck_assert_mem_eq(msg, want.data, len);
        ck_assert_uint_eq(spool_bytes(sp), 3 * (SPOOL_HEADER_SIZE + want.size));
        free(msg);
        msgpack_sbuffer_destroy(&want);
    }

    /* Modes: the directories 0700, the files 0600. */
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(stat(tdir.path, &st), 0);
    batch_path(seqs[1], path, sizeof(path));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(spool_remove(sp, seqs[i], err, sizeof(err)), SPOOL_OK);
        batch_path(seqs[i], path, sizeof(path));
        ck_assert(!exists(path));
    }
    ck_assert_uint_eq(spool_count(sp), 0);
    ck_assert_uint_eq(spool_bytes(sp), 0);
    ck_assert_int_eq(spool_remove(sp, seqs[0], err, sizeof(err)), SPOOL_EINVAL);
    spool_close(&sp);
    ck_assert_ptr_null(sp);
    ck_assert_uint_eq(nwarn, 0);
}
END_TEST

START_TEST(test_resend_order_after_reopen)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    uint64_t a = append_ok(sp, 1, 10), b = append_ok(sp, 2, 20), c = append_ok(sp, 3, 30), seq;
    char err[SPOOL_ERRLEN];

    spool_close(&sp);
    sp = open_ok(MB, 1);
    ck_assert_uint_eq(spool_count(sp), 3);
    ck_assert(spool_first(sp, &seq) && seq == a);
    ck_assert_int_eq(spool_remove(sp, a, err, sizeof(err)), SPOOL_OK);
    ck_assert(spool_first(sp, &seq) && seq == b);
    ck_assert_int_eq(spool_remove(sp, b, err, sizeof(err)), SPOOL_OK);
    ck_assert(spool_first(sp, &seq) && seq == c);
    spool_close(&sp);
}
END_TEST

START_TEST(test_leftover_temp_files_removed)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    uint64_t a = append_ok(sp, 1, 10), seq;
    char tmp[300], state_tmp[256], path[256];

    spool_close(&sp);
    /* A crash between the temp write and the rename, for a batch and for the state. */
    batch_path(a + 1, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    write_file(tmp, "half a batch");
    snprintf(state_tmp, sizeof(state_tmp), "%s/state.tmp", dir);
    write_file(state_tmp, "clustermon-agent-spool 2\nagent ");

    sp = open_ok(MB, FIRST_SEQ);
    ck_assert(!exists(tmp));
    ck_assert(!exists(state_tmp));
    ck_assert_uint_eq(spool_count(sp), 1);
    ck_assert(spool_first(sp, &seq) && seq == a);
    /* The seq of the lost write is free: it was never spooled, never sent. */
    ck_assert_uint_eq(spool_next_seq(sp), a + 1);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 10);
    ck_assert_uint_eq(nwarn, 0);
    spool_close(&sp);
}
END_TEST

/* How a batch file gets damaged. */
static void truncate_to_half(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
}

static void flip_last_byte(const char *path)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    off_t end = lseek(fd, -1, SEEK_END);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, end), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, end), 1);
    close(fd);
}

static void empty_file(const char *path)
{
    ck_assert_int_eq(truncate(path, 0), 0);
}

static const struct {
    void (*damage)(const char *path);
    const char *why;
} damages[] = {
    {truncate_to_half, "truncated"},
    {flip_last_byte, "CRC-32 mismatch"},
    {empty_file, "truncated: 0 bytes"},
};

START_TEST(test_corrupt_batch_moved_aside)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    uint64_t a = append_ok(sp, 1, 10), b = append_ok(sp, 2, 20), seq;
    char err[SPOOL_ERRLEN], path[256], moved[300];
    void *msg;
    size_t len;

    batch_path(a, path, sizeof(path));
    damages[_i].damage(path);
    ck_assert_int_eq(spool_read(sp, a, &msg, &len, err, sizeof(err)), SPOOL_ECORRUPT);
    ck_assert_msg(strstr(err, damages[_i].why) != NULL, "reason: %s", err);
    ck_assert_uint_eq(nwarn, 1);
    ck_assert_msg(strstr(last_warn, damages[_i].why) != NULL &&
                      strstr(last_warn, "not sent") != NULL,
                  "warning: %s", last_warn);
    snprintf(moved, sizeof(moved), "%s/corrupt/%020llu.batch", dir, (unsigned long long)a);
    ck_assert(!exists(path));
    ck_assert(exists(moved));
    /* The good batch after it is still there and next in line. */
    ck_assert_uint_eq(spool_count(sp), 1);
    ck_assert(spool_first(sp, &seq) && seq == b);
    ck_assert_int_eq(spool_read(sp, b, &msg, &len, err, sizeof(err)), SPOOL_OK);
    free(msg);
    spool_close(&sp);
}
END_TEST

START_TEST(test_corrupt_newest_on_open)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    uint64_t a = append_ok(sp, 1, 10), b = append_ok(sp, 2, 20);
    char path[256];

    spool_close(&sp);
    batch_path(b, path, sizeof(path));
    truncate_to_half(path);
    /* The newest file carries the input position: a bad one is set aside and the one before used. */
    sp = open_ok(MB, FIRST_SEQ);
    ck_assert_uint_eq(nwarn, 1);
    ck_assert_uint_eq(spool_count(sp), 1);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 10);
    /* ... but its seq is never reused. */
    ck_assert_uint_eq(spool_next_seq(sp), b + 1);
    ck_assert_uint_gt(spool_next_seq(sp), a);
    spool_close(&sp);
}
END_TEST

START_TEST(test_state_round_trip)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    spool_input_t in = {
        .dev = 2049, .ino = 1312, .pos = {.offset = 48213, .line = 1001, .crc = 0xfeedbeef}};
    char err[SPOOL_ERRLEN];
    const spool_input_t *got;

    snprintf(in.path, sizeof(in.path), "/var/lib/erp/odd name\\with\nnewline.csv");
    ck_assert_int_eq(spool_input_set(sp, &in, err, sizeof(err)), SPOOL_OK);
    spool_close(&sp);

    sp = open_ok(MB, 1);
    got = spool_input(sp);
    ck_assert_str_eq(got->path, in.path);
    ck_assert_uint_eq(got->dev, 2049);
    ck_assert_uint_eq(got->ino, 1312);
    ck_assert_uint_eq(got->pos.offset, 48213);
    ck_assert_uint_eq(got->pos.line, 1001);
    ck_assert_uint_eq(got->pos.crc, 0xfeedbeef);
    ck_assert_uint_eq(spool_next_seq(sp), FIRST_SEQ);
    spool_close(&sp);
}
END_TEST

/* A new spool picks its stream's epoch; every reopen keeps it. */
START_TEST(test_epoch_kept)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ), *other;
    char err[SPOOL_ERRLEN], path[256], text[1024];
    uint64_t epoch = spool_epoch(sp);
    FILE *fp;
    size_t n;

    ck_assert_uint_ge(epoch, 1);
    ck_assert_uint_lt(epoch, 1ull << 53); /* exact in any client's double */
    append_ok(sp, 1, 10);
    spool_close(&sp);

    /* in the state file, as the format says */
    snprintf(path, sizeof(path), "%s/state", dir);
    ck_assert_ptr_nonnull(fp = fopen(path, "r"));
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    ck_assert_msg(strncmp(text, "clustermon-agent-spool 2\n", 25) == 0, "state: %s", text);
    {
        char want[64];

        snprintf(want, sizeof(want), "\nepoch %llu\n", (unsigned long long)epoch);
        ck_assert_msg(strstr(text, want) != NULL, "state lacks '%s': %s", want + 1, text);
    }

    /* with batches spooled, and after they are gone */
    sp = open_ok(MB, 1);
    ck_assert_uint_eq(spool_epoch(sp), epoch);
    ck_assert_int_eq(spool_remove(sp, FIRST_SEQ, err, sizeof(err)), SPOOL_OK);
    spool_close(&sp);
    sp = open_ok(MB, 1);
    ck_assert_uint_eq(spool_epoch(sp), epoch);

    /* another spool is another stream */
    ck_assert_int_eq(
        spool_open(tdir.path, "agent-other", MB, 1, NULL, NULL, &other, err, sizeof(err)),
        SPOOL_OK);
    ck_assert_uint_ne(spool_epoch(other), epoch);
    spool_close(&other);
    spool_close(&sp);
}
END_TEST

/* A spool of protocol 1 (format 1, no epoch) is refused as a whole, with a
 * message that says what to do, and nothing in it is touched. */
START_TEST(test_v1_spool_refused)
{
    static const char v1_state[] = "clustermon-agent-spool 1\n"
                                   "agent " AGENT "\n"
                                   "next_seq 42\n"
                                   "input_path /var/lib/erp/export.csv\n"
                                   "input_dev 2049\n"
                                   "input_ino 1312\n"
                                   "input_offset 48213\n"
                                   "input_line 1001\n"
                                   "input_crc 2864434397\n";
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    char err[SPOOL_ERRLEN], path[256], batch[256], text[1024];
    uint64_t a = append_ok(sp, 1, 10);
    FILE *fp;
    size_t n;

    spool_close(&sp);
    snprintf(path, sizeof(path), "%s/state", dir);
    write_file(path, v1_state);
    batch_path(a, batch, sizeof(batch));

    err[0] = '\0';
    ck_assert_int_eq(
        spool_open(tdir.path, AGENT, MB, FIRST_SEQ, on_warn, NULL, &sp, err, sizeof(err)),
        SPOOL_EVERSION);
    ck_assert_ptr_null(sp);
    ck_assert_msg(strstr(err, "older clustermon-agent") != NULL, "reason: %s", err);
    ck_assert_msg(strstr(err, dir) != NULL, "reason does not name %s: %s", dir, err);
    ck_assert_msg(strstr(err, "move the directory aside") != NULL, "reason: %s", err);
    ck_assert_uint_eq(nwarn, 0);

    /* no data loss: the state and the batch are as they were */
    ck_assert(exists(batch));
    ck_assert_ptr_nonnull(fp = fopen(path, "r"));
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    ck_assert_str_eq(text, v1_state);
    /* and it stays refused (the refusal did not leave a lock behind) */
    ck_assert_int_eq(
        spool_open(tdir.path, AGENT, MB, FIRST_SEQ, on_warn, NULL, &sp, err, sizeof(err)),
        SPOOL_EVERSION);
}
END_TEST

/* spool_next_after walks the spooled seqs in order, over holes left by
 * acks out of order (a window of batches in flight). */
START_TEST(test_next_after)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    char err[SPOOL_ERRLEN];
    uint64_t s[6], got;

    ck_assert(!spool_next_after(sp, 0, &got));
    for (int i = 0; i < 6; i++)
        s[i] = append_ok(sp, i, 10 * (i + 1));
    ck_assert(spool_next_after(sp, 0, &got) && got == s[0]);
    ck_assert(spool_next_after(sp, s[0] - 1, &got) && got == s[0]);
    ck_assert(spool_next_after(sp, s[0], &got) && got == s[1]);
    ck_assert(spool_next_after(sp, s[4], &got) && got == s[5]);
    ck_assert(!spool_next_after(sp, s[5], &got));
    ck_assert(!spool_next_after(sp, UINT64_MAX, &got));

    /* holes in the middle and at the front */
    ck_assert_int_eq(spool_remove(sp, s[2], err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, s[3], err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, s[0], err, sizeof(err)), SPOOL_OK);
    ck_assert(spool_next_after(sp, 0, &got) && got == s[1]);
    ck_assert(spool_next_after(sp, s[0], &got) && got == s[1]);
    ck_assert(spool_next_after(sp, s[1], &got) && got == s[4]);
    ck_assert(spool_next_after(sp, s[2], &got) && got == s[4]); /* a seq no longer spooled */
    ck_assert(spool_next_after(sp, s[4], &got) && got == s[5]);
    ck_assert(!spool_next_after(sp, s[5], &got));

    /* the same after a restart, which rebuilds the index from the files */
    spool_close(&sp);
    sp = open_ok(MB, 1);
    ck_assert(spool_next_after(sp, 0, &got) && got == s[1]);
    ck_assert(spool_next_after(sp, s[1], &got) && got == s[4]);
    ck_assert(!spool_next_after(sp, s[5], &got));

    /* a batch appended after the holes is found after the last one */
    ck_assert_uint_eq(append_ok(sp, 9, 70), s[5] + 1);
    ck_assert(spool_next_after(sp, s[5], &got) && got == s[5] + 1);

    /* and an emptied spool has nothing after anything */
    ck_assert_int_eq(spool_remove(sp, s[1], err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, s[4], err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, s[5], err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, s[5] + 1, err, sizeof(err)), SPOOL_OK);
    ck_assert(!spool_next_after(sp, 0, &got));
    spool_close(&sp);
}
END_TEST

/* State files that must be refused, with the code and a word of the reason. */
static const struct {
    const char *text;
    int rc;
    const char *why;
} bad_states[] = {
    {"clustermon-agent-spool 3\nagent " AGENT "\n", SPOOL_EVERSION,
     "format version 3; this agent reads version 2"},
    {"clustermon-agent-spool 1\nagent " AGENT "\n", SPOOL_EVERSION,
     "written by an older clustermon-agent"},
    {"something else\n", SPOOL_EINVAL, "not a clustermon-agent spool state file"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nepoch 3\nnext_seq 5\n", SPOOL_EINVAL,
     "missing key 'input_path'"},
    {"clustermon-agent-spool 2\nagent " AGENT
     "\nnext_seq 5\ninput_path \ninput_dev 0\ninput_ino 0\n"
     "input_offset 0\ninput_line 1\ninput_crc 0\n",
     SPOOL_EINVAL, "missing key 'epoch'"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nepoch 0\n", SPOOL_EINVAL,
     "state:3: epoch: must be >= 1"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nepoch -1\n", SPOOL_EINVAL,
     "epoch: '-1' is not a number"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nepoch 1\nepoch 2\n", SPOOL_EINVAL,
     "duplicate key 'epoch'"},
    {"clustermon-agent-spool 2\nagent other\n", SPOOL_EINVAL, "belongs to agent 'other'"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nnext_seq x5\n", SPOOL_EINVAL, "is not a number"},
    {"clustermon-agent-spool 2\nagent " AGENT "\nagent " AGENT "\n", SPOOL_EINVAL, "duplicate key"},
    {"clustermon-agent-spool 2\nagent " AGENT "\ncolour blue\n", SPOOL_EINVAL,
     "unknown key 'colour'"},
};

START_TEST(test_state_refused)
{
    char path[256], err[SPOOL_ERRLEN];
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    int rc;

    spool_close(&sp);
    snprintf(path, sizeof(path), "%s/state", dir);
    write_file(path, bad_states[_i].text);
    rc = spool_open(tdir.path, AGENT, MB, FIRST_SEQ, on_warn, NULL, &sp, err, sizeof(err));
    ck_assert_int_eq(rc, bad_states[_i].rc);
    ck_assert_ptr_null(sp);
    ck_assert_msg(strstr(err, bad_states[_i].why) != NULL, "reason: %s", err);
}
END_TEST

START_TEST(test_batches_without_state_refused)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    char path[256], err[SPOOL_ERRLEN];

    append_ok(sp, 1, 10);
    spool_close(&sp);
    snprintf(path, sizeof(path), "%s/state", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(
        spool_open(tdir.path, AGENT, MB, FIRST_SEQ, on_warn, NULL, &sp, err, sizeof(err)),
        SPOOL_EINVAL);
    ck_assert_msg(strstr(err, "no state file") != NULL, "reason: %s", err);
}
END_TEST

START_TEST(test_bound_enforced)
{
    msgpack_sbuffer buf;
    uint64_t size, a, seq;
    spool_t *sp;
    char err[SPOOL_ERRLEN], path[256];
    spool_pos_t pos = {.offset = 99, .line = 9};

    make_batch(FIRST_SEQ, 1, &buf);
    size =
        SPOOL_HEADER_SIZE + buf.size; /* batches with seqs near FIRST_SEQ encode to the same size */
    msgpack_sbuffer_destroy(&buf);

    sp = open_ok(2 * size, FIRST_SEQ);
    a = append_ok(sp, 1, 10);
    append_ok(sp, 2, 20);
    ck_assert_uint_eq(spool_bytes(sp), 2 * size);

    /* At its limit, the spool refuses the next batch and changes nothing. */
    seq = spool_next_seq(sp);
    make_batch(seq, 3, &buf);
    ck_assert_int_eq(spool_append(sp, seq, buf.data, buf.size, &pos, err, sizeof(err)),
                     SPOOL_EFULL);
    ck_assert_msg(strstr(err, "spool full") != NULL, "reason: %s", err);
    ck_assert_uint_eq(spool_count(sp), 2);
    ck_assert_uint_eq(spool_next_seq(sp), seq);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 20);
    batch_path(seq, path, sizeof(path));
    ck_assert(!exists(path));

    /* An ack makes room. */
    ck_assert_int_eq(spool_remove(sp, a, err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_append(sp, seq, buf.data, buf.size, &pos, err, sizeof(err)), SPOOL_OK);
    msgpack_sbuffer_destroy(&buf);
    spool_close(&sp);

    /* An empty spool takes a batch over the limit: a small limit cannot stall the agent. */
    ck_assert_int_eq(testlib_rm_rf(tdir.path), 0);
    ck_assert_int_eq(mkdir(tdir.path, 0700), 0);
    sp = open_ok(1, FIRST_SEQ);
    append_ok(sp, 1, 10);
    seq = spool_next_seq(sp);
    make_batch(seq, 2, &buf);
    ck_assert_int_eq(spool_append(sp, seq, buf.data, buf.size, &pos, err, sizeof(err)),
                     SPOOL_EFULL);
    msgpack_sbuffer_destroy(&buf);
    spool_close(&sp);
}
END_TEST

START_TEST(test_seq_monotonic_across_reopen)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    char err[SPOOL_ERRLEN];
    msgpack_sbuffer buf;
    spool_pos_t pos = {.offset = 1, .line = 1};
    uint64_t a, b;

    a = append_ok(sp, 1, 10);
    b = append_ok(sp, 2, 20);
    /* Out of order is refused. */
    make_batch(a, 9, &buf);
    ck_assert_int_eq(spool_append(sp, a, buf.data, buf.size, &pos, err, sizeof(err)), SPOOL_EINVAL);
    msgpack_sbuffer_destroy(&buf);
    spool_close(&sp);

    /* Batches on disk, state not rewritten (a crash): the seq continues after them... */
    sp = open_ok(MB, FIRST_SEQ + 1000000);
    ck_assert_uint_eq(spool_next_seq(sp), b + 1);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 20);
    ck_assert_int_eq(spool_remove(sp, a, err, sizeof(err)), SPOOL_OK);
    ck_assert_int_eq(spool_remove(sp, b, err, sizeof(err)), SPOOL_OK);
    spool_close(&sp);

    /* ... and after all of them are acked and gone, the state file holds it. */
    sp = open_ok(MB, 1);
    ck_assert_uint_eq(spool_count(sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), b + 1);
    ck_assert_uint_eq(spool_input(sp)->pos.offset, 20);
    ck_assert_uint_eq(append_ok(sp, 3, 30), b + 1);
    spool_close(&sp);
}
END_TEST

START_TEST(test_reject_moves_aside)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ);
    uint64_t a = append_ok(sp, 1, 10);
    char err[SPOOL_ERRLEN], path[SPOOL_PATH_MAX + 64], want[300];

    ck_assert_int_eq(spool_reject(sp, a, path, sizeof(path), err, sizeof(err)), SPOOL_OK);
    snprintf(want, sizeof(want), "%s/rejected/%020llu.batch", dir, (unsigned long long)a);
    ck_assert_str_eq(path, want);
    ck_assert(exists(want));
    ck_assert_uint_eq(spool_count(sp), 0);
    spool_close(&sp);
    sp = open_ok(MB, 1);
    ck_assert_uint_eq(spool_count(sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), a + 1);
    spool_close(&sp);
}
END_TEST

START_TEST(test_locked)
{
    spool_t *sp = open_ok(MB, FIRST_SEQ), *sp2;
    char err[SPOOL_ERRLEN];

    ck_assert_int_eq(
        spool_open(tdir.path, AGENT, MB, FIRST_SEQ, NULL, NULL, &sp2, err, sizeof(err)),
        SPOOL_ELOCKED);
    ck_assert_msg(strstr(err, "in use by another clustermon-agent") != NULL, "reason: %s", err);
    /* Another agent id is another spool under the same tdir.path. */
    ck_assert_int_eq(
        spool_open(tdir.path, "agent-other", MB, FIRST_SEQ, NULL, NULL, &sp2, err, sizeof(err)),
        SPOOL_OK);
    spool_close(&sp2);
    spool_close(&sp);
    sp = open_ok(MB, FIRST_SEQ);
    spool_close(&sp);
}
END_TEST

static const struct {
    const char *id;
    bool ok;
} ids[] = {
    {"agent-vm", true}, {"host.example.com", true},
    {"a_b-9", true},    {"", false},
    {".hidden", false}, {"..", false},
    {"a/b", false},     {"a b", false},
};

START_TEST(test_agent_id_names_a_directory)
{
    ck_assert_msg(spool_agent_id_ok(ids[_i].id) == ids[_i].ok, "'%s'", ids[_i].id);
}
END_TEST

/* ---- input positions ---------------------------------------------------------- */

#define CSV_TEXT                                                                                   \
    "\xEF\xBB\xBF"                                                                                 \
    "enterprise,metric,value,period\r\n"                                                           \
    "ee-001,energy,1,2100\r\n"                                                                     \
    "ee-002,energy,2,2101\r\n"                                                                     \
    "\r\n"                                                                                         \
    "ee-003,energy,3,2102\r\n"                                                                     \
    "ee-004,energy,4,2103\r\n"                                                                     \
    "ee-005,energy,5,2104"

/* Reads path in batches of 2, stopping after `stop` batches; returns the values seen. */
static size_t read_values(input_reader_t *r, unsigned stop, double *out, input_pos_t *ret_pos)
{
    proto_sample_t s[2];
    char err[INPUT_ERRLEN];
    size_t total = 0, n;

    for (unsigned k = 0; k < stop; k++) {
        ck_assert_int_eq(input_read_batch(r, s, 2, &n, NULL, err, sizeof(err)), INPUT_OK);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            out[total++] = s[i].value;
    }
    input_reader_pos(r, ret_pos);
    return total;
}

START_TEST(test_input_resume)
{
    char path[256], err[INPUT_ERRLEN];
    double got[16];
    input_pos_t pos, end;
    input_reader_t *r;
    size_t n;

    snprintf(path, sizeof(path), "%s/in.csv", tdir.path);
    write_file(path, CSV_TEXT);

    /* A first run reads one batch (two samples) and "crashes". */
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    n = read_values(r, 1, got, &pos);
    ck_assert_uint_eq(n, 2);
    /* Just after the CR of line 3: the LF still to come ends the line. */
    ck_assert_uint_eq(pos.offset, strlen("\xEF\xBB\xBF"
                                         "enterprise,metric,value,period\r\n"
                                         "ee-001,energy,1,2100\r\n"
                                         "ee-002,energy,2,2101\r"));
    ck_assert_uint_eq(pos.line, 3);
    input_reader_destroy(&r);

    /* The next run skips exactly that and reads the rest, line numbers intact. */
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_int_eq(input_reader_skip(r, &pos, err, sizeof(err)), INPUT_OK);
    n = read_values(r, 100, got, &end);
    ck_assert_uint_eq(n, 3);
    ck_assert(got[0] == 3 && got[1] == 4 && got[2] == 5);
    ck_assert_uint_eq(end.offset, strlen(CSV_TEXT));
    input_reader_destroy(&r);

    /*
     * Appended lines follow on the next resume, nothing before is read
     * again, and line numbers continue: the bad line is named as line 9.
     */
    {
        FILE *fp = fopen(path, "a");
        fputs("\r\nee-006,energy,6,2105\r\nee-007,energy,x,2106\r\n", fp);
        fclose(fp);
    }
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_int_eq(input_reader_skip(r, &end, err, sizeof(err)), INPUT_OK);
    {
        proto_sample_t s[4];

        ck_assert_int_eq(input_read_batch(r, s, 4, &n, NULL, err, sizeof(err)), INPUT_ESYNTAX);
        ck_assert_uint_eq(n, 1);
        ck_assert(s[0].value == 6);
        ck_assert_msg(strstr(err, "in.csv:9: value: 'x'") != NULL, "%s", err);
    }
    input_reader_destroy(&r);
}
END_TEST

START_TEST(test_input_changed)
{
    char path[256], err[INPUT_ERRLEN];
    double got[16];
    input_pos_t pos;
    input_reader_t *r;

    snprintf(path, sizeof(path), "%s/in.csv", tdir.path);
    write_file(path, CSV_TEXT);
    r = input_reader_open(path, err, sizeof(err));
    read_values(r, 1, got, &pos);
    input_reader_destroy(&r);

    /* Rewritten in place, same length: the prefix CRC tells. */
    {
        char text[] = CSV_TEXT;
        *strstr(text, "energy,1,") = 'E';
        write_file(path, text);
    }
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_int_eq(input_reader_skip(r, &pos, err, sizeof(err)), INPUT_ECHANGED);
    ck_assert_msg(strstr(err, "are not the ones already read") != NULL, "%s", err);
    input_reader_destroy(&r);

    /* Shorter than what was read. */
    write_file(path, "ee-001,energy,1,2100\n");
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_int_eq(input_reader_skip(r, &pos, err, sizeof(err)), INPUT_ECHANGED);
    ck_assert_msg(strstr(err, "shorter") != NULL, "%s", err);
    input_reader_destroy(&r);
}
END_TEST

START_TEST(test_input_pos_stops_before_a_bad_line)
{
    char path[256], err[INPUT_ERRLEN];
    proto_sample_t s[8];
    input_pos_t pos;
    input_reader_t *r;
    size_t n;

    snprintf(path, sizeof(path), "%s/in.csv", tdir.path);
    write_file(path, "ee-001,energy,1,2100\nee-002,energy,x,2100\n");
    r = input_reader_open(path, err, sizeof(err));
    ck_assert_int_eq(input_read_batch(r, s, 8, &n, NULL, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_uint_eq(n, 1);
    input_reader_pos(r, &pos);
    ck_assert_uint_eq(pos.offset, strlen("ee-001,energy,1,2100\n"));
    ck_assert_uint_eq(pos.line, 2);
    input_reader_destroy(&r);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_resend_order_after_reopen);
    tcase_add_test(tc, test_leftover_temp_files_removed);
    tcase_add_loop_test(tc, test_corrupt_batch_moved_aside, 0,
                        sizeof(damages) / sizeof(damages[0]));
    tcase_add_test(tc, test_corrupt_newest_on_open);
    tcase_add_test(tc, test_state_round_trip);
    tcase_add_test(tc, test_epoch_kept);
    tcase_add_test(tc, test_v1_spool_refused);
    tcase_add_test(tc, test_next_after);
    tcase_add_loop_test(tc, test_state_refused, 0, sizeof(bad_states) / sizeof(bad_states[0]));
    tcase_add_test(tc, test_batches_without_state_refused);
    tcase_add_test(tc, test_bound_enforced);
    tcase_add_test(tc, test_seq_monotonic_across_reopen);
    tcase_add_test(tc, test_reject_moves_aside);
    tcase_add_test(tc, test_locked);
    tcase_add_loop_test(tc, test_agent_id_names_a_directory, 0, sizeof(ids) / sizeof(ids[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("input position");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_input_resume);
    tcase_add_test(tc, test_input_changed);
    tcase_add_test(tc, test_input_pos_stops_before_a_bad_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
