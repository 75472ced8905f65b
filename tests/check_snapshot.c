/*
 * check_snapshot.c -- a snapshot (daemon/snapshot.c) of a small state,
 * loaded back into a fresh server: the aggregate's series, the agent
 * streams with their settled outcomes, the counters and when each firm was
 * first seen come back as they were; a damaged file is not used.
 *
 * Each test opens a server_t with server_open() on the default config
 * (inproc:// endpoints, the state in a temp dir of its own), puts a known
 * state into it directly (nothing goes through the WAL, so after a restart
 * only the snapshot can have brought it back), writes a snapshot the way
 * the cron does (rotate the WAL, snapshot_start) and runs the loop until
 * the thread pool has written it (bounded), closes it and opens another
 * server on the same state directory.
 *
 * The payload's sections: every key is counted in the map's header (a
 * snapshot written with one key more than its header says is unreadable),
 * what older daemons wrote still loads, and a required section missing
 * makes the file damaged.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/wal.h"
#include "proto/proto.h"
#include "tests/testlib.h"

#define WRITE_MS 10000
#define FIRST_SEEN_MS 1600000000000LL

static testlib_dir_t tdir;
static server_t srv;
static bool srv_open;
static char state_dir[128];

/* ---- the server --------------------------------------------------------------------- */

/* Opens a server on the state dir; returns server_open's result (err). */
static int open_server(char *err, size_t errlen)
{
    char sd[160], cerr[CONFIG_ERRLEN];
    const char *kv[] = {"ingest = inproc://ingest", "alerts = inproc://alerts",
                        "control = inproc://control", sd, NULL};
    snprintf(sd, sizeof sd, "state_dir = %s", state_dir);
    config_t *cfg = testlib_config_default(kv);
    registry_t *reg = NULL;
    ck_assert_msg(registry_load(cfg->registry, cfg, &reg, cerr, sizeof cerr) == 0, "%s", cerr);
    server_source_t src = {.path = "test.conf"};
    int rc = server_open(&srv, &src, &cfg, &reg, err, errlen);
    srv_open = true; /* a failed open is closed too */
    return rc;
}

static void open_ok(void)
{
    char err[1024];
    ck_assert_msg(open_server(err, sizeof err) == 0, "%s", err);
}

static void close_server(void)
{
    if (srv_open)
        server_close(&srv);
    srv_open = false;
}

static void setup(void)
{
    log_set_level(LOG_LVL_ERROR); /* a damaged snapshot is a warning */
    testlib_dir_make(&tdir, "snapshot");
    testlib_dir_file(&tdir, "state", state_dir, sizeof state_dir);
    open_ok();
}

static void teardown(void)
{
    close_server();
    testlib_dir_remove(&tdir);
}

/* ---- the state ---------------------------------------------------------------------- */

static int firm(const char *id)
{
    int f = registry_find(srv.reg, id, strlen(id));
    ck_assert_msg(f >= 0, "no firm %s", id);
    return f;
}

static int metric(const char *name)
{
    int m = config_metric_find(srv.cfg, name, strlen(name));
    ck_assert_msg(m >= 0, "no metric %s", name);
    return m;
}

static proto_period_t period(const char *s)
{
    proto_period_t p;
    ck_assert_int_eq(proto_period_parse(s, strlen(s), &p), PROTO_OK);
    return p;
}

/* The aggregate part: months, a quarter, a year, and readings. */
static void fill_agg(agg_t *agg)
{
    agg_put_period(agg, firm("ee-001"), metric("revenue"), period("2030-01"), 1500);
    agg_put_period(agg, firm("ee-001"), metric("revenue"), period("2030-02"), -250);
    agg_put_period(agg, firm("ee-001"), metric("profit"), period("2030-Q3"), 7);
    agg_put_period(agg, firm("ne-001"), metric("energy"), period("2029"), 123456789);
    agg_put_period(agg, firm("ne-001"), metric("energy"), period("2031-12"), 1);
    agg_put_reading(agg, firm("ee-002"), metric("cod"), 2030, 5, 42.5, 1900000000000LL);
    agg_put_reading(agg, firm("ee-002"), metric("cod"), 2030, 5, 17.25, 1900000060000LL);
}

static void settle(const char *agent, uint64_t epoch, uint64_t seq, proto_status_t st,
                   uint32_t accepted)
{
    stream_t *s = streams_get(&srv.ingest.streams, "", proto_str(agent));
    ck_assert_ptr_nonnull(s);
    streams_settle(&srv.ingest.streams, s, epoch, seq, (uint8_t)st, accepted,
                   (int64_t)uv_now(&srv.loop), calendar_now_ms());
}

static void fill(void)
{
    fill_agg(srv.agg);
    settle("agent-1", 7, 1, PROTO_STATUS_OK, 3);
    settle("agent-1", 7, 2, PROTO_STATUS_UNKNOWN_FIRM, 0);
    for (uint64_t seq = 1; seq <= 5; seq++)
        settle("agent-2", 3, seq, PROTO_STATUS_OK, (uint32_t)seq);
    srv.stats.samples_applied = 42;
    srv.stats.batches_ok = 7;
    srv.stats.batches_duplicate = 2;
    srv.reg->firms[firm("ee-003")].first_seen_ms = FIRST_SEEN_MS;
}

/* Writes a snapshot as the cron does; returns the WAL segment it covers. */
static uint64_t write_snapshot(void)
{
    char err[256];
    srv.snapshot_wanted = false; /* the cron's own first-seen snapshot: not now */
    int64_t closed = wal_rotate(&srv.wal, err, sizeof err);
    ck_assert_msg(closed > 0, "wal_rotate: %s", err);
    ck_assert_int_eq(snapshot_start(&srv.snap, &srv, (uint64_t)closed), 0);
    for (int waited = 0; srv.snap.running && waited < WRITE_MS; waited++) {
        uv_run(&srv.loop, UV_RUN_NOWAIT);
        if (srv.snap.running)
            usleep(1000);
    }
    ck_assert_msg(!srv.snap.running, "the snapshot was not written within %d ms", WRITE_MS);
    ck_assert_uint_eq(srv.snap.written, 1);
    ck_assert_uint_eq(srv.snap.failed, 0);
    return (uint64_t)closed;
}

static void snap_file(uint64_t segment, char *buf, size_t size)
{
    snprintf(buf, size, "%s/snap-%016" PRIu64 ".snap", state_dir, segment);
}

/* ---- comparing ---------------------------------------------------------------------- */

static void assert_series_eq(const agg_t *want, const agg_t *got)
{
    ck_assert_uint_eq(want->nfirms, got->nfirms);
    ck_assert_uint_eq(want->nmetrics, got->nmetrics);
    int nonempty = 0;
    for (size_t f = 0; f < want->nfirms; f++) {
        for (size_t m = 0; m < want->nmetrics; m++) {
            const agg_series_t *a = agg_series(want, (int)f, (int)m);
            const agg_series_t *b = agg_series(got, (int)f, (int)m);
            const char *id = srv.reg->firms[f].id, *mn = srv.cfg->metrics[m].name;
            ck_assert_msg(a->nyears == b->nyears, "%s %s: %u years, want %u", id, mn, b->nyears,
                          a->nyears);
            ck_assert_msg(a->count == b->count && a->last == b->last && a->last_ts == b->last_ts,
                          "%s %s: readings differ", id, mn);
            nonempty += a->nyears > 0;
            for (uint32_t y = 0; y < a->nyears; y++) {
                const agg_year_t *ya = &a->years[y], *yb = &b->years[y];
                ck_assert_msg(ya->year == yb->year && ya->month_mask == yb->month_mask &&
                                  ya->quarter_mask == yb->quarter_mask &&
                                  ya->has_annual == yb->has_annual && ya->any == yb->any &&
                                  ya->annual == yb->annual &&
                                  memcmp(ya->month, yb->month, sizeof ya->month) == 0 &&
                                  memcmp(ya->quarter, yb->quarter, sizeof ya->quarter) == 0,
                              "%s %s: year %u differs", id, mn, ya->year);
            }
        }
    }
    ck_assert_int_eq(nonempty, 4); /* the test compared something */
}

/* The outcome stream agent remembers for seq, or fails. */
static const stream_outcome_t *outcome(const char *agent, uint64_t epoch, uint64_t seq)
{
    stream_t *s = streams_get(&srv.ingest.streams, "", proto_str(agent));
    const stream_outcome_t *o = NULL;
    ck_assert_ptr_nonnull(s);
    stream_verdict_t v =
        streams_check(&srv.ingest.streams, s, epoch, seq, (int64_t)uv_now(&srv.loop), &o);
    ck_assert_msg(v == STREAM_DUPLICATE, "%s seq %" PRIu64 ": verdict %d, want a duplicate", agent,
                  seq, (int)v);
    return o;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_round_trip)
{
    fill();
    uint64_t seg = write_snapshot();
    close_server();
    open_ok();

    ck_assert_uint_eq(srv.recovery.snapshot_segment, seg);
    ck_assert_uint_eq(srv.recovery.snapshots_damaged, 0);
    ck_assert_uint_eq(srv.recovery.wal.records, 0); /* all of it from the snapshot */

    agg_t *want = agg_new(srv.reg->nfirms, srv.cfg->nmetrics);
    fill_agg(want);
    assert_series_eq(want, srv.agg);
    agg_destroy(&want);

    stream_t *s1 = streams_get(&srv.ingest.streams, "", proto_str("agent-1"));
    ck_assert_uint_eq(s1->epoch, 7);
    ck_assert_uint_eq(s1->next, 3);
    ck_assert_uint_eq(outcome("agent-1", 7, 1)->status, PROTO_STATUS_OK);
    ck_assert_uint_eq(outcome("agent-1", 7, 1)->accepted, 3);
    ck_assert_uint_eq(outcome("agent-1", 7, 2)->status, PROTO_STATUS_UNKNOWN_FIRM);
    stream_t *s2 = streams_get(&srv.ingest.streams, "", proto_str("agent-2"));
    ck_assert_uint_eq(s2->epoch, 3);
    ck_assert_uint_eq(s2->next, 6);
    ck_assert_uint_eq(outcome("agent-2", 3, 4)->accepted, 4);

    ck_assert_uint_eq(srv.stats.samples_applied, 42);
    ck_assert_uint_eq(srv.stats.batches_ok, 7);
    ck_assert_uint_eq(srv.stats.batches_duplicate, 2);
    ck_assert_int_eq(srv.reg->firms[firm("ee-003")].first_seen_ms, FIRST_SEEN_MS);
}
END_TEST

/* Without a snapshot the same state is gone: what test_round_trip saw came
 * from the file. */
START_TEST(test_no_snapshot_no_state)
{
    fill();
    close_server();
    open_ok();
    ck_assert_uint_eq(srv.recovery.snapshot_segment, 0);
    ck_assert_uint_eq(srv.stats.samples_applied, 0);
    ck_assert_ptr_null(streams_get(&srv.ingest.streams, "", proto_str("agent-1"))->ring);
    ck_assert_uint_eq(agg_series(srv.agg, firm("ee-001"), metric("revenue"))->nyears, 0);
}
END_TEST

/* Damage: (offset from the end, or from the start if >= 0; bytes written). */
static const struct {
    const char *what;
    long offset;
    const char *bytes;
    size_t n;
} damages[] = {
    {"a payload byte flipped (CRC)", -3, "\xff", 1},
    {"another magic", 0, "XMSNAP", 6},
    {"another format version", 8, "\x63", 1},
    {"cut short", -1, NULL, 0},
};

static void damage(const char *path, int i)
{
    size_t len;
    char *data = testlib_read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_gt(len, 64);
    if (damages[i].bytes) {
        size_t at =
            damages[i].offset >= 0 ? (size_t)damages[i].offset : len - (size_t)-damages[i].offset;
        for (size_t k = 0; k < damages[i].n; k++) {
            char b = damages[i].bytes[k];
            data[at + k] = data[at + k] != b ? b : (char)~b; /* changed, whatever it was */
        }
    } else {
        len = len / 2;
    }
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
    free(data);
}

/* A damaged snapshot is not used: with the WAL whole from segment 1 the
 * daemon starts from the WAL alone (here: nothing), and the file is moved
 * aside as *.damaged. */
START_TEST(test_damaged_not_used)
{
    char path[256], aside[300];
    fill();
    uint64_t seg = write_snapshot();
    close_server();
    snap_file(seg, path, sizeof path);
    damage(path, _i);
    open_ok();
    ck_assert_msg(srv.recovery.snapshots_damaged == 1, "%s: not found damaged", damages[_i].what);
    ck_assert_uint_eq(srv.recovery.snapshot_segment, 0);
    ck_assert_uint_eq(srv.stats.samples_applied, 0);
    ck_assert_uint_eq(agg_series(srv.agg, firm("ee-001"), metric("revenue"))->nyears, 0);
    snprintf(aside, sizeof aside, "%s.damaged", path);
    ck_assert_msg(access(aside, F_OK) == 0, "%s: %s not moved aside", damages[_i].what, path);
}
END_TEST

/* ... and when the WAL is not whole either, the daemon refuses to start,
 * naming the damaged file, and changes nothing. */
START_TEST(test_damaged_and_wal_gone)
{
    char path[256], wal1[256], err[1024];
    fill();
    uint64_t seg = write_snapshot();
    close_server();
    snap_file(seg, path, sizeof path);
    damage(path, 0);
    snprintf(wal1, sizeof wal1, "%s/wal-%016d.log", state_dir, 1);
    ck_assert_int_eq(unlink(wal1), 0);
    ck_assert_int_eq(open_server(err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) != NULL, "err \"%s\" does not name %s", err, path);
    ck_assert_msg(strstr(err, "damaged") != NULL, "err \"%s\"", err);
    ck_assert_int_eq(access(path, F_OK), 0); /* left where it was */
}
END_TEST

/* ---- the payload's sections -------------------------------------------------------- */

#define SNAP_HEADER 24

/* The keys a snapshot of this daemon has, in order (snapshot.c). */
static const char *const section_keys[] = {"created_ms", "segment",   "alert_seqs", "stats",
                                           "streams",    "firms",     "series",     "alerts",
                                           "silences",   "firms_seen"};
#define NKEYS (sizeof section_keys / sizeof section_keys[0])

static bool key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

/* The payload of the snapshot at path, unpacked into zone; *ret_data (the
 * file, caller frees) keeps it alive. */
static msgpack_object read_payload(const char *path, msgpack_zone *zone, char **ret_data)
{
    size_t len, off = 0;
    char *data = testlib_read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_gt(len, SNAP_HEADER);
    msgpack_object root;
    ck_assert_int_eq(msgpack_unpack(data + SNAP_HEADER, len - SNAP_HEADER, &off, zone, &root),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_msg(off == len - SNAP_HEADER, "the map ends at %zu of %zu payload bytes", off,
                  len - SNAP_HEADER);
    ck_assert_int_eq(root.type, MSGPACK_OBJECT_MAP);
    *ret_data = data;
    return root;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a snapshot file at path with payload (header, CRC: as snapshot.c). */
static void write_payload(const char *path, const char *payload, size_t len)
{
    unsigned char hdr[SNAP_HEADER] = "CMSNAP";
    put_le(hdr + 8, SNAPSHOT_FORMAT_VERSION, 4);
    put_le(hdr + 12, (uint32_t)crc32(0L, (const Bytef *)payload, (uInt)len), 4);
    put_le(hdr + 16, len, 8);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(hdr, 1, sizeof hdr, fp), sizeof hdr);
    ck_assert_uint_eq(fwrite(payload, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

/* How to turn this daemon's snapshot into an older or a damaged one. */
typedef struct {
    const char *drop[6]; /* keys left out */
    uint64_t global_seq; /* > 0: alert_seqs becomes an older daemon's alert_seq */
    bool bare_silences;  /* silences: the bare array, as older daemons wrote */
} rewrite_t;

static bool dropped(const rewrite_t *rw, const msgpack_object *k)
{
    for (int i = 0; i < 6 && rw->drop[i]; i++)
        if (key_is(k, rw->drop[i]))
            return true;
    return false;
}

/* Rewrites the snapshot at path as rw says. */
static void rewrite(const char *path, const rewrite_t *rw)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    char *data;
    msgpack_object root = read_payload(path, &zone, &data);
    uint32_t n = 0;
    for (uint32_t i = 0; i < root.via.map.size; i++)
        n += !dropped(rw, &root.via.map.ptr[i].key);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < root.via.map.size; i++) {
        const msgpack_object_kv *kv = &root.via.map.ptr[i];
        if (dropped(rw, &kv->key))
            continue;
        if (rw->global_seq && key_is(&kv->key, "alert_seqs")) {
            msgpack_pack_str_with_body(&pk, "alert_seq", 9);
            msgpack_pack_uint64(&pk, rw->global_seq);
        } else if (rw->bare_silences && key_is(&kv->key, "silences")) {
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, *proto_obj_get(&kv->val, "items"));
        } else {
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, kv->val);
        }
    }
    write_payload(path, out.data, out.size);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&zone);
    free(data);
}

/* Every key written is counted in the map's header, and each is there once. */
START_TEST(test_sections_counted)
{
    char path[256], *data;
    fill();
    snap_file(write_snapshot(), path, sizeof path);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 65536);
    msgpack_object root = read_payload(path, &zone, &data);
    ck_assert_uint_eq(root.via.map.size, NKEYS);
    for (size_t k = 0; k < NKEYS; k++) {
        int found = 0;
        for (uint32_t i = 0; i < root.via.map.size; i++)
            found += key_is(&root.via.map.ptr[i].key, section_keys[k]);
        ck_assert_msg(found == 1, "key %s found %d times", section_keys[k], found);
    }
    msgpack_zone_destroy(&zone);
    free(data);
}
END_TEST

/* A snapshot of an older daemon: one global alert_seq, the bare array of
 * silences, no streams, firms, firms_seen or created_ms. It loads. */
START_TEST(test_older_snapshot_loads)
{
    char path[256];
    fill();
    uint64_t seg = write_snapshot();
    close_server();
    snap_file(seg, path, sizeof path);
    rewrite_t rw = {.drop = {"streams", "firms", "firms_seen", "created_ms", NULL},
                    .global_seq = 1234567,
                    .bare_silences = true};
    rewrite(path, &rw);
    open_ok();
    ck_assert_uint_eq(srv.recovery.snapshots_damaged, 0);
    ck_assert_uint_eq(srv.recovery.snapshot_segment, seg);
    ck_assert_uint_eq(srv.stats.samples_applied, 42);
    ck_assert_uint_eq(agg_series(srv.agg, firm("ee-001"), metric("revenue"))->nyears, 1);
    ck_assert_uint_ge(alerts_seq(&srv.alerts, "energy-env"), 1234567);
    ck_assert_int_eq(srv.reg->firms[firm("ee-003")].first_seen_ms, srv.started_ms);
}
END_TEST

/* A required section missing: the snapshot is damaged (and, the WAL being
 * whole, the daemon starts from the WAL alone). */
static const char *const required_keys[] = {"segment", "alert_seqs", "stats",
                                            "series",  "alerts",     "silences"};

START_TEST(test_required_section_missing)
{
    char path[256];
    fill();
    uint64_t seg = write_snapshot();
    close_server();
    snap_file(seg, path, sizeof path);
    rewrite_t rw = {.drop = {required_keys[_i], NULL}};
    rewrite(path, &rw);
    open_ok();
    ck_assert_msg(srv.recovery.snapshots_damaged == 1, "without %s: not found damaged",
                  required_keys[_i]);
    ck_assert_uint_eq(srv.stats.samples_applied, 0);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_no_snapshot_no_state);
    tcase_add_loop_test(tc, test_damaged_not_used, 0, (int)(sizeof damages / sizeof damages[0]));
    tcase_add_test(tc, test_damaged_and_wal_gone);
    tcase_add_test(tc, test_sections_counted);
    tcase_add_test(tc, test_older_snapshot_loads);
    tcase_add_loop_test(tc, test_required_section_missing, 0,
                        (int)(sizeof required_keys / sizeof required_keys[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(snapshot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
