/*
 * check_ingest.c -- the ingest path (daemon/ingest.c) of a real server: the
 * sequence discipline's answers, the nacks with their statuses and
 * counters, and the WAL records that make a restart answer the same.
 *
 * Each test opens a server_t with server_open() on the default config, its
 * sockets on inproc:// endpoints and its state in a temp dir of its own, and
 * talks to the ingest ROUTER from a DEALER in the same ZeroMQ context, as an
 * agent does. A request is answered by running the server's loop without
 * blocking until the reply arrives (at most REPLY_MS: a bound, not a timing
 * assertion). server_close() then runs the loop until uv_loop_close()
 * succeeds. The batches are the demo registry's firms on the default
 * metrics.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/keys.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/wal.h"
#include "proto/proto.h"
#include "tests/testlib.h"

#define REPLY_MS 5000
#define FIRM "ee-001"

static testlib_dir_t tdir;
static server_t srv;
static void *dealer;
static char state_dir[128];

/* The answer to the last request: the ack, its reason copied out. */
static proto_ack_t ack;
static char reason[PROTO_MAX_TEXT_LEN + 1];

/* ---- the server --------------------------------------------------------------------- */

/* Opens the server on the state dir with the [daemon] keys in extra (NULL-
 * terminated, may be NULL) on top of the test endpoints. */
static void open_server(const char *const *extra)
{
    char sd[160], err[CONFIG_ERRLEN];
    /* the figures are for 2030: future_slack_days lets them in */
    const char *kv[16] = {"ingest = inproc://ingest", "alerts = inproc://alerts",
                          "control = inproc://control", sd, "future_slack_days = 100000"};
    size_t n = 5;
    snprintf(sd, sizeof sd, "state_dir = %s", state_dir);
    for (const char *const *p = extra; p && *p; p++) {
        ck_assert_uint_lt(n, 15);
        kv[n++] = *p;
    }
    kv[n] = NULL;
    config_t *cfg = testlib_config_default(kv);
    registry_t *reg = NULL;
    ck_assert_msg(registry_load(cfg->registry, cfg, &reg, err, sizeof err) == 0, "%s", err);
    server_source_t src = {.text = NULL, .path = "test.conf"};
    ck_assert_msg(server_open(&srv, &src, &cfg, &reg, err, sizeof err) == 0, "%s", err);

    int linger = 0;
    dealer = zmq_socket(srv.zctx, ZMQ_DEALER);
    ck_assert_ptr_nonnull(dealer);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(dealer, "inproc://ingest"), 0);
}

static void close_server(void)
{
    if (dealer)
        zmq_close(dealer);
    dealer = NULL;
    server_close(&srv);
}

static void setup(void)
{
    log_set_level(LOG_LVL_ERROR); /* nacks are logged as warnings */
    testlib_dir_make(&tdir, "ingest");
    testlib_dir_file(&tdir, "state", state_dir, sizeof state_dir);
    open_server(NULL);
}

static void teardown(void)
{
    close_server();
    testlib_dir_remove(&tdir);
}

/* ---- requests ----------------------------------------------------------------------- */

/* Sends the frames (one or two) and waits for the answer, into ack/reason. */
static void exchange_frames(const void *f1, size_t n1, const void *f2, size_t n2)
{
    ck_assert_int_eq(zmq_send(dealer, f1, n1, f2 ? ZMQ_SNDMORE : 0), (int)n1);
    if (f2)
        ck_assert_int_eq(zmq_send(dealer, f2, n2, 0), (int)n2);
    zmq_pollitem_t item = {.socket = dealer, .events = ZMQ_POLLIN};
    for (int waited = 0; waited < REPLY_MS; waited += 5) {
        uv_run(&srv.loop, UV_RUN_NOWAIT);
        if (zmq_poll(&item, 1, 5) == 1)
            break;
    }
    ck_assert_msg(item.revents & ZMQ_POLLIN, "no answer within %d ms", REPLY_MS);
    zmq_msg_t m;
    zmq_msg_init(&m);
    ck_assert_int_ge(zmq_msg_recv(&m, dealer, 0), 0);
    ck_assert_msg(!zmq_msg_more(&m), "an answer of more than one frame");
    char err[PROTO_ERRLEN];
    ck_assert_msg(proto_ack_decode(zmq_msg_data(&m), zmq_msg_size(&m), &ack, err, sizeof err) ==
                      PROTO_OK,
                  "the answer does not decode: %s", err);
    snprintf(reason, sizeof reason, "%.*s", PROTO_STR_ARG(ack.reason));
    ack.reason = proto_str(reason);
    zmq_msg_close(&m);
}

static void exchange(const void *msg, size_t len)
{
    exchange_frames(msg, len, NULL, 0);
}

/* A batch of agent/epoch/seq with n samples of firm/metric: value i + 1 in
 * period (or at ts_ms 1700000000000 if period is NULL). */
static void send_batch(const char *agent, uint64_t epoch, uint64_t seq, const char *firm,
                       const char *metric, const char *period, uint32_t n)
{
    proto_sample_t s[8];
    ck_assert_uint_le(n, 8);
    for (uint32_t i = 0; i < n; i++) {
        s[i] = (proto_sample_t){
            proto_str(firm), proto_str(metric), (double)(i + 1), 1700000000000LL, {0, 0, 0}};
        if (period)
            ck_assert_int_eq(proto_period_parse(period, strlen(period), &s[i].period), PROTO_OK);
    }
    proto_batch_t b = {.agent = proto_str(agent),
                       .epoch = epoch,
                       .seq = seq,
                       .nsamples = n,
                       .samples = s,
                       .cap = n};
    msgpack_sbuffer sb;
    char err[PROTO_ERRLEN];
    msgpack_sbuffer_init(&sb);
    ck_assert_msg(proto_batch_encode(&b, &sb, err, sizeof err) == PROTO_OK, "%s", err);
    exchange(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* The common case: revenue of FIRM for 2030-01, one sample per seq. */
static void send_seq(const char *agent, uint64_t epoch, uint64_t seq)
{
    send_batch(agent, epoch, seq, FIRM, "revenue", "2030-01", 1);
}

#define expect_ack(st, acc, exp)                                                                   \
    do {                                                                                           \
        ck_assert_msg(ack.status == (st), "status %s (%s), want %s",                               \
                      proto_status_name((proto_status_t)ack.status), reason,                       \
                      proto_status_name(st));                                                      \
        ck_assert_uint_eq(ack.accepted, (acc));                                                    \
        ck_assert_uint_eq(ack.expected, (exp));                                                    \
    } while (0)

#define expect_reason(text)                                                                        \
    ck_assert_msg(strstr(reason, (text)) != NULL, "reason \"%s\" lacks \"%s\"", reason, (text))

static int64_t revenue_total(const char *firm, const char *period)
{
    proto_period_t p;
    int64_t milli = -1;
    int f = registry_find(srv.reg, firm, strlen(firm));
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(proto_period_parse(period, strlen(period), &p), PROTO_OK);
    if (!agg_firm_total(srv.agg, f, srv.cfg->revenue_idx, p, &milli))
        return -1;
    return milli;
}

/* ---- the sequence discipline -------------------------------------------------------- */

START_TEST(test_ok_applies_once)
{
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-01", 3);
    expect_ack(PROTO_STATUS_OK, 3, 2);
    ck_assert_uint_eq(ack.seq, 1);
    ck_assert_str_eq(reason, "");
    ck_assert_uint_eq(srv.stats.batches_ok, 1);
    ck_assert_uint_eq(srv.stats.samples_applied, 3);
    /* three samples of one firm, metric and month: the last one stands */
    ck_assert_int_eq(revenue_total(FIRM, "2030-01"), 3000);
}
END_TEST

START_TEST(test_duplicate_answers_the_original)
{
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-01", 2);
    expect_ack(PROTO_STATUS_OK, 2, 2);
    /* a resend, even with other content, is answered as the first copy was */
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-02", 1);
    expect_ack(PROTO_STATUS_OK, 2, 2);
    ck_assert_uint_eq(srv.stats.batches_ok, 1);
    ck_assert_uint_eq(srv.stats.batches_duplicate, 1);
    ck_assert_uint_eq(srv.stats.samples_applied, 2);
    ck_assert_int_eq(revenue_total(FIRM, "2030-02"), -1); /* not applied */
}
END_TEST

/* ingest_local (the dashboard's upload): n samples of revenue for 2030-01,
 * the first for firm, the others for FIRM, as batch seq of agent "w1" on the
 * "web" stream key; the answer decoded into ack (refusals into refused). */
static proto_refusal_t local_refused[8];
static void send_local(const access_key_t *key, uint64_t seq, bool dry_run, const char *firm,
                       uint32_t n)
{
    proto_sample_t s[8];
    for (uint32_t i = 0; i < n; i++) {
        s[i] = (proto_sample_t){
            proto_str(i ? FIRM : firm), proto_str("revenue"), (double)(i + 1), 0, {0, 0, 0}};
        ck_assert_int_eq(proto_period_parse("2030-01", 7, &s[i].period), PROTO_OK);
    }
    proto_batch_t b = {.agent = proto_str("w1"),
                       .epoch = 1,
                       .seq = seq,
                       .nsamples = n,
                       .samples = s,
                       .cap = n,
                       .partial = true,
                       .dry_run = dry_run};
    msgpack_sbuffer sb, out;
    char err[PROTO_ERRLEN];
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&out);
    ck_assert_msg(proto_batch_encode(&b, &sb, err, sizeof err) == PROTO_OK, "%s", err);
    uint64_t wal_pos = 1;
    ingest_local(&srv.ingest, "web", key, sb.data, sb.size, &out, &wal_pos);
    ck_assert_uint_eq(wal_pos, 0); /* fsync = interval: nothing to wait for */
    ack = (proto_ack_t){.refused = local_refused, .refused_cap = 8};
    ck_assert_msg(proto_ack_decode(out.data, out.size, &ack, err, sizeof err) == PROTO_OK, "%s",
                  err);
    snprintf(reason, sizeof reason, "%.*s", PROTO_STR_ARG(ack.reason));
    ack.reason = proto_str(reason);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&out);
}

START_TEST(test_local_batches)
{
    /* a key that may report for FIRM only, as a firm's web login */
    uint32_t firms[1] = {(uint32_t)registry_find(srv.reg, FIRM, strlen(FIRM))};
    uint8_t clusters[8] = {0};
    access_key_t key = {.name = (char *)"w1",
                        .roles = KEY_ROLE_AGENT,
                        .report_cluster = clusters,
                        .report_firms = firms,
                        .nreport_firms = 1};
    /* a check: another firm's sample refused by index, nothing applied or settled */
    send_local(&key, 1, true, "ee-002", 3);
    ck_assert(ack.dry_run);
    ck_assert_uint_eq(ack.status, PROTO_STATUS_PARTIAL);
    ck_assert_uint_eq(ack.nrefused, 1);
    ck_assert_uint_eq(local_refused[0].index, 0);
    ck_assert_uint_eq(local_refused[0].status, PROTO_STATUS_FORBIDDEN);
    ck_assert_int_eq(revenue_total(FIRM, "2030-01"), -1);
    /* the batch: the good samples applied, its seq settled */
    send_local(&key, 1, false, "ee-002", 3);
    ck_assert(!ack.dry_run);
    ck_assert_uint_eq(ack.status, PROTO_STATUS_PARTIAL);
    ck_assert_uint_eq(ack.accepted, 2);
    ck_assert_uint_eq(ack.expected, 2);
    ck_assert_int_eq(revenue_total(FIRM, "2030-01"), 3000);
    /* a resend is the duplicate of the first, applied once */
    send_local(&key, 1, false, "ee-002", 3);
    ck_assert_uint_eq(ack.accepted, 2);
    ck_assert_uint_eq(srv.stats.batches_duplicate, 1);
    /* the web stream is its own: agent "w1" on the socket starts at seq 1 */
    send_seq("w1", 1, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
}
END_TEST

START_TEST(test_out_of_order)
{
    send_seq("a1", 1, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
    send_seq("a1", 1, 3);
    expect_ack(PROTO_STATUS_OUT_OF_ORDER, 0, 2);
    ck_assert_uint_eq(ack.seq, 3);
    expect_reason("seq 3 of agent 'a1' epoch 1 arrived before seq 2: resend from seq 2");
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_OUT_OF_ORDER], 1);
    /* not settled: after 2, 3 is taken */
    send_seq("a1", 1, 2);
    expect_ack(PROTO_STATUS_OK, 1, 3);
    send_seq("a1", 1, 3);
    expect_ack(PROTO_STATUS_OK, 1, 4);
    ck_assert_uint_eq(srv.stats.batches_ok, 3);
}
END_TEST

/* A new stream starts at seq 1. */
START_TEST(test_new_stream_starts_at_one)
{
    send_seq("a1", 1, 5);
    expect_ack(PROTO_STATUS_OUT_OF_ORDER, 0, 1);
    expect_reason("resend from seq 1");
    ck_assert_uint_eq(srv.stats.batches_ok, 0);
}
END_TEST

/* A seq refused for good is settled: the stream goes on, and a resend gets
 * the same refusal. */
static const struct {
    const char *firm, *metric, *period;
    proto_status_t status;
    const char *reason;
} refusals[] = {
    {"no-such-firm", "revenue", "2030-01", PROTO_STATUS_UNKNOWN_FIRM,
     "sample 0: unknown firm 'no-such-firm'"},
    {FIRM, "wattage", "2030-01", PROTO_STATUS_UNKNOWN_METRIC,
     "sample 0: unknown metric 'wattage' (known: revenue, profit, energy, cod)"},
    {FIRM, "cod", "2030-01", PROTO_STATUS_INVALID,
     "sample 0: metric 'cod' is a reading: it takes a timestamp, not a period"},
};

START_TEST(test_refused_seq_is_settled)
{
    send_seq("a1", 1, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
    send_batch("a1", 1, 2, refusals[_i].firm, refusals[_i].metric, refusals[_i].period, 1);
    expect_ack(refusals[_i].status, 0, 3);
    ck_assert_str_eq(reason, refusals[_i].reason);
    ck_assert_uint_eq(srv.stats.nacks[refusals[_i].status], 1);
    /* the resend, now with good content, stays refused */
    send_seq("a1", 1, 2);
    expect_ack(refusals[_i].status, 0, 3);
    char want[128];
    snprintf(want, sizeof want, "seq 2 was refused before (%s); it stays refused",
             proto_status_name(refusals[_i].status));
    ck_assert_str_eq(reason, want);
    ck_assert_uint_eq(srv.stats.batches_duplicate, 1);
    send_seq("a1", 1, 3);
    expect_ack(PROTO_STATUS_OK, 1, 4);
    ck_assert_uint_eq(srv.stats.batches_ok, 2);
    ck_assert_uint_eq(srv.stats.samples_applied, 2);
}
END_TEST

START_TEST(test_agent_conflict)
{
    send_seq("a1", 1, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
    /* another stream on the same id while the owner is live (lease 60 s) */
    send_seq("a1", 2, 1);
    expect_ack(PROTO_STATUS_AGENT_CONFLICT, 0, 0);
    expect_reason("agent id 'a1' is in use by another agent (stream 1)");
    expect_reason("each agent needs its own id");
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_AGENT_CONFLICT], 1);
    /* the owner goes on; another id is another stream */
    send_seq("a1", 1, 2);
    expect_ack(PROTO_STATUS_OK, 1, 3);
    send_seq("a2", 2, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
}
END_TEST

/* ---- what cannot name a stream --------------------------------------------------------- */

START_TEST(test_malformed)
{
    static const unsigned char junk[] = {0xc1, 0x00, 0x01};
    exchange(junk, sizeof junk);
    expect_ack(PROTO_STATUS_MALFORMED, 0, 0);
    ck_assert_uint_eq(ack.seq, 0);
    expect_reason("invalid MessagePack byte 0xc1");
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_MALFORMED], 1);
    ck_assert_uint_eq(srv.stats.batches_ok, 0);
}
END_TEST

START_TEST(test_version)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "v", 1);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "type", 4);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "batch", 5);
    exchange(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    expect_ack(PROTO_STATUS_VERSION, 0, 0);
    expect_reason("unsupported version 9");
    ck_assert_uint_eq(ack.max_version, PROTO_VERSION);
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_VERSION], 1);
}
END_TEST

START_TEST(test_bad_envelope)
{
    /* a DEALER sends [batch]; two frames are not a batch */
    exchange_frames("x", 1, "y", 1);
    expect_ack(PROTO_STATUS_MALFORMED, 0, 0);
    expect_reason("expected [batch] from a DEALER or [\"\"][batch] from a REQ");
    ck_assert_uint_eq(srv.stats.bad_envelopes, 1);
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_MALFORMED], 1);
}
END_TEST

START_TEST(test_too_large)
{
    size_t n = PROTO_MAX_MSG_SIZE + 1;
    char *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    exchange(big, n);
    free(big);
    expect_ack(PROTO_STATUS_TOO_LARGE, 0, 0);
    expect_reason("a frame of 4194305 bytes exceeds the limit of 4194304 bytes");
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_TOO_LARGE], 1);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------ */

/* Over the per-connection rate: nacked, not settled (resend the same seq). */
START_TEST(test_rate_limited)
{
    static const char *const extra[] = {"rate_per_connection = 5", NULL};
    close_server();
    testlib_rm_rf(state_dir);
    open_server(extra);
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-01", 4);
    expect_ack(PROTO_STATUS_OK, 4, 2);
    /* 1 token left (plus what a few ms refill: far from 4) */
    send_batch("a1", 1, 2, FIRM, "revenue", "2030-02", 4);
    expect_ack(PROTO_STATUS_RATE_LIMITED, 0, 2);
    expect_reason("rate limited: this connection is over 5 samples/s; resend later");
    ck_assert_uint_eq(srv.stats.nacks[PROTO_STATUS_RATE_LIMITED], 1);
    ck_assert_uint_eq(srv.stats.batches_ok, 1);
    ck_assert_int_eq(revenue_total(FIRM, "2030-02"), -1);
}
END_TEST

/* ---- the WAL ---------------------------------------------------------------------------- */

typedef struct {
    int batches, settles, other;
    uint8_t settle_status;
} wal_count_t;

static int count_cb(const void *payload, size_t len, void *data)
{
    wal_count_t *c = data;
    const unsigned char *p = payload;
    if (len >= 2 && p[0] == INGEST_REC_BATCH) {
        c->batches++;
    } else if (len >= 3 && p[0] == INGEST_REC_SETTLE && len > 2u + p[1]) {
        c->settles++;
        c->settle_status = p[2 + p[1]];
    } else {
        c->other++;
    }
    return 0;
}

/* Every settled seq is in the WAL: an applied batch as a batch record, a
 * refusal as a settle record; answers that settle nothing write nothing. */
START_TEST(test_wal_records)
{
    send_seq("a1", 1, 1);
    expect_ack(PROTO_STATUS_OK, 1, 2);
    send_seq("a1", 1, 1); /* duplicate */
    send_seq("a1", 1, 9); /* out of order */
    send_seq("a1", 2, 1); /* agent conflict */
    send_batch("a1", 1, 2, "no-such-firm", "revenue", "2030-01", 1);
    expect_ack(PROTO_STATUS_UNKNOWN_FIRM, 0, 3);
    close_server();

    wal_count_t c = {0};
    wal_replay_stats_t st;
    uint64_t last;
    char err[256];
    ck_assert_msg(wal_replay(state_dir, 0, count_cb, &c, &st, &last, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(c.batches, 1);
    ck_assert_int_eq(c.settles, 1);
    ck_assert_int_eq(c.settle_status, PROTO_STATUS_UNKNOWN_FIRM);
    ck_assert_int_eq(c.other, 0);
    open_server(NULL); /* for the teardown */
}
END_TEST

/* After a restart (no snapshot: the WAL alone) resends get the answers the
 * first copies got, and the stream goes on where it was. */
START_TEST(test_restart_answers_the_same)
{
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-01", 2);
    expect_ack(PROTO_STATUS_OK, 2, 2);
    send_batch("a1", 1, 2, FIRM, "wattage", "2030-01", 1);
    expect_ack(PROTO_STATUS_UNKNOWN_METRIC, 0, 3);
    close_server();
    open_server(NULL);
    ck_assert_uint_eq(srv.recovery.wal.records, 2);
    ck_assert_uint_eq(srv.stats.samples_applied, 2);
    ck_assert_int_eq(revenue_total(FIRM, "2030-01"), 2000);
    send_batch("a1", 1, 1, FIRM, "revenue", "2030-01", 2);
    expect_ack(PROTO_STATUS_OK, 2, 3);
    send_seq("a1", 1, 2);
    expect_ack(PROTO_STATUS_UNKNOWN_METRIC, 0, 3);
    expect_reason("seq 2 was refused before (unknown_metric)");
    send_seq("a1", 1, 3);
    expect_ack(PROTO_STATUS_OK, 1, 4);
    /* the owner is live for a lease after a restart: no takeover yet */
    send_seq("a1", 2, 1);
    expect_ack(PROTO_STATUS_AGENT_CONFLICT, 0, 0);
}
END_TEST

/* ---- the counters in the snapshot (ingest_stats_pack/unpack) ---------------------- */

static server_t stats_from, stats_to; /* only their stats are used */

START_TEST(test_stats_round_trip)
{
    char err[256];
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    stats_from.stats.samples_applied = 42;
    stats_from.stats.batches_ok = 7;
    stats_from.stats.batches_duplicate = 2;
    ingest_stats_pack(&stats_from, &pk);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object o;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack(buf.data, buf.size, &off, &zone, &o), MSGPACK_UNPACK_SUCCESS);
    ck_assert_msg(ingest_stats_unpack(&stats_to, &o, false, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(stats_to.stats.samples_applied, 0); /* checking changes nothing */
    ck_assert_msg(ingest_stats_unpack(&stats_to, &o, true, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(stats_to.stats.samples_applied, 42);
    ck_assert_uint_eq(stats_to.stats.batches_ok, 7);
    ck_assert_uint_eq(stats_to.stats.batches_duplicate, 2);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

/* A counter missing or negative: refused, naming it, nothing applied. */
START_TEST(test_stats_refused)
{
    char err[256] = "";
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "samples_applied", 15);
    msgpack_pack_uint64(&pk, 5);
    msgpack_pack_str_with_body(&pk, "batches_ok", 10);
    msgpack_pack_uint64(&pk, 5);
    msgpack_pack_str_with_body(&pk, "batches_duplicate", 17);
    msgpack_pack_int64(&pk, -1);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object o;
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack(buf.data, buf.size, &off, &zone, &o), MSGPACK_UNPACK_SUCCESS);
    memset(&stats_to.stats, 0, sizeof stats_to.stats);
    ck_assert_int_eq(ingest_stats_unpack(&stats_to, &o, true, err, sizeof err), -1);
    ck_assert_str_eq(err, "stats: batches_duplicate missing or not an unsigned integer");
    ck_assert_uint_eq(stats_to.stats.samples_applied, 0);
    ck_assert_int_eq(ingest_stats_unpack(&stats_to, NULL, false, err, sizeof err), -1);
    ck_assert_str_eq(err, "stats: missing or not a map");
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

static Suite *ingest_suite(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("ingest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ok_applies_once);
    tcase_add_test(tc, test_duplicate_answers_the_original);
    tcase_add_test(tc, test_out_of_order);
    tcase_add_test(tc, test_new_stream_starts_at_one);
    tcase_add_loop_test(tc, test_refused_seq_is_settled, 0,
                        (int)(sizeof refusals / sizeof refusals[0]));
    tcase_add_test(tc, test_agent_conflict);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_bad_envelope);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_rate_limited);
    tcase_add_test(tc, test_wal_records);
    tcase_add_test(tc, test_restart_answers_the_same);
    tcase_add_test(tc, test_local_batches);
    suite_add_tcase(s, tc);

    tc = tcase_create("stats");
    tcase_add_test(tc, test_stats_round_trip);
    tcase_add_test(tc, test_stats_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ingest_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
