/* ingest.c -- see ingest.h. */
#include "daemon/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/envelope.h"
#include "daemon/log.h"
#include "daemon/members.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/hash.h"

#define NACK_LOGS_PER_SECOND 10

/* ---- replies ------------------------------------------------------------- */

static void send_ack(ingest_t *in, envelope_t *env, const proto_ack_t *ack)
{
    msgpack_sbuffer_clear(&in->out);
    if (proto_ack_encode(ack, &in->out) != PROTO_OK) {
        /* Only a reason that is not valid text can get here: say less. */
        proto_ack_t plain = *ack;
        plain.reason = proto_str(proto_status_name(ack->status));
        msgpack_sbuffer_clear(&in->out);
        if (proto_ack_encode(&plain, &in->out) != PROTO_OK) {
            log_error("ingest: cannot encode an ack");
            return;
        }
    }
    if (in->local_out) { /* a batch from inside the daemon: its caller takes the answer */
        msgpack_sbuffer_write(in->local_out, in->out.data, in->out.size);
        return;
    }
    if (envelope_reply(in->zs.sock, env, in->out.data, in->out.size) != 0 && errno != EHOSTUNREACH)
        log_warn("ingest: reply to seq %llu not sent", (unsigned long long)ack->seq);
}

/* What a batch is answered with, gathered as it is handled. */
typedef struct {
    proto_str_t agent; /* empty if it could not be read */
    uint64_t seq, expected;
    const char *peer; /* the connection's address, for the log */
} answer_ctx_t;

/* How far the WAL is durable as the policy counts it: fsynced with
 * fsync = always, else written (a group staged in a drain is not). */
static uint64_t durable_pos(const server_t *srv)
{
    return srv->cfg->fsync_policy == WAL_FSYNC_ALWAYS ? srv->wal.synced : srv->wal.written;
}

/* Sends now, or -- while the WAL holds records not yet durable (a group of
 * this drain's records not written yet; with fsync = always, not on disk)
 * -- holds the answer until they are: an answer about a settled seq must
 * never overtake the record that settled it. */
static void answer(ingest_t *in, envelope_t *env, const proto_ack_t *ack)
{
    server_t *srv = in->srv;
    if (srv->wal.pos <= durable_pos(srv)) {
        send_ack(in, env, ack);
        return;
    }
    if (in->local_out) {
        /* the caller holds the answer until the WAL is on disk up to here */
        in->local_wal_pos = srv->wal.pos;
        send_ack(in, env, ack);
        wal_sync(&srv->wal);
        return;
    }
    if (in->npending == in->pending_cap) {
        /* grow the ring, unwrapping it */
        size_t ncap = in->pending_cap ? in->pending_cap * 2 : 64;
        ingest_pending_t *np = xmalloc(ncap * sizeof *np);
        for (size_t i = 0; i < in->npending; i++)
            np[i] = in->pending[(in->pending_head + i) % in->pending_cap];
        free(in->pending);
        in->pending = np;
        in->pending_cap = ncap;
        in->pending_head = 0;
    }
    ingest_pending_t *p = &in->pending[(in->pending_head + in->npending) % in->pending_cap];
    zmq_msg_init(&p->id);
    zmq_msg_copy(&p->id, &env->id);
    p->has_delim = env->has_delim;
    p->ack = *ack;
    p->reason = ack->reason.len ? xstrndup(ack->reason.ptr, ack->reason.len) : NULL;
    p->ack.reason = proto_str(p->reason);
    /* a partial answer's reasons live in ingest's scratch, reused by the next batch */
    p->ack.refused = ack->nrefused ? judge_refusals_dup(ack->refused, ack->nrefused) : NULL;
    p->wal_pos = srv->wal.pos;
    in->npending++;
    if (!srv->wal.grouping)
        wal_sync(&srv->wal); /* a group's write starts it */
}

void ingest_release_acks(ingest_t *in)
{
    uint64_t durable = durable_pos(in->srv);
    bool sent = false;
    while (in->npending > 0) {
        ingest_pending_t *p = &in->pending[in->pending_head];
        if (p->wal_pos > durable)
            break;
        if (in->zs.sock) {
            envelope_t env = {.has_delim = p->has_delim};
            zmq_msg_init(&env.id);
            zmq_msg_move(&env.id, &p->id);
            send_ack(in, &env, &p->ack);
            zmq_msg_close(&env.id);
            sent = true;
        }
        zmq_msg_close(&p->id);
        free(p->reason);
        free(p->ack.refused);
        in->pending_head = (in->pending_head + 1) % in->pending_cap;
        in->npending--;
    }
    /* Sending outside on_message may have consumed the read edge. */
    if (sent)
        zsock_kick(&in->zs);
}

void ingest_log_tick(ingest_t *in, int64_t now)
{
    log_throttle_flush(&in->log, now, "ingest", "nacks");
}

static void ack_ok(ingest_t *in, envelope_t *env, const answer_ctx_t *ctx, uint32_t accepted)
{
    proto_ack_t ack = {.seq = ctx->seq,
                       .status = PROTO_STATUS_OK,
                       .max_version = PROTO_VERSION,
                       .accepted = accepted,
                       .expected = ctx->expected};
    answer(in, env, &ack);
}

static void nack(ingest_t *in, envelope_t *env, const answer_ctx_t *ctx, proto_status_t status,
                 const char *reason)
{
    in->srv->stats.nacks[status]++;
    if (log_throttle(&in->log, (int64_t)uv_now(&in->srv->loop), NACK_LOGS_PER_SECOND, "ingest",
                     "nacks"))
        log_warnx("ingest: nack agent '%.*s' seq %llu from %s: %s: %s",
                  ctx->agent.len ? (int)ctx->agent.len : 1, ctx->agent.len ? ctx->agent.ptr : "?",
                  (unsigned long long)ctx->seq,
                  ctx->peer && *ctx->peer ? ctx->peer : "a local peer", proto_status_name(status),
                  reason);

    proto_ack_t ack = {.seq = ctx->seq,
                       .status = (uint8_t)status,
                       .max_version = PROTO_VERSION,
                       .reason = proto_str(reason),
                       .expected = ctx->expected};
    answer(in, env, &ack);
}

/* Answers a partial batch (settled: accepted applied, the nrefused in
 * in->refusals not) or a check (dry_run: nothing applied or settled). */
static void ack_judged(ingest_t *in, envelope_t *env, const answer_ctx_t *ctx, uint32_t accepted,
                       uint32_t nrefused, bool dry_run)
{
    char why[96] = "";
    if (nrefused)
        snprintf(why, sizeof why, "%u of %u samples refused (listed in \"refused\")", nrefused,
                 accepted + nrefused);
    proto_ack_t ack = {.seq = ctx->seq,
                       .reason = proto_str(why),
                       .status = nrefused ? PROTO_STATUS_PARTIAL : PROTO_STATUS_OK,
                       .max_version = PROTO_VERSION,
                       .accepted = accepted,
                       .expected = ctx->expected,
                       .dry_run = dry_run,
                       .nrefused = nrefused,
                       .refused = in->refusals};
    if (nrefused && !dry_run) {
        in->srv->stats.nacks[PROTO_STATUS_PARTIAL]++;
        if (log_throttle(&in->log, (int64_t)uv_now(&in->srv->loop), NACK_LOGS_PER_SECOND, "ingest",
                         "nacks"))
            log_warnx("ingest: partial agent '%.*s' seq %llu from %s: %s; the first: %s: %.*s",
                      (int)ctx->agent.len, ctx->agent.ptr, (unsigned long long)ctx->seq,
                      ctx->peer && *ctx->peer ? ctx->peer : "a local peer", why,
                      proto_status_name((proto_status_t)in->refusals[0].status),
                      PROTO_STR_ARG(in->refusals[0].reason));
    }
    if (dry_run)
        send_ack(in, env, &ack); /* nothing journaled: nothing to wait for */
    else
        answer(in, env, &ack);
}

/* ---- resolving and applying a batch -------------------------------------- */

/*
 * Judges every sample of b into in->resolved (judge.h), checking each firm
 * against key (NULL: no CURVE, or WAL replay). An atomic batch (all false)
 * stops at the first refusal and returns its status, the reason in reason.
 * A partial batch or a check (all true) is judged to the end: each refused
 * sample is marked, listed in in->refusals and in->refusal_codes, and
 * counted in *ret_nrefused; PROTO_STATUS_OK is returned. count: add the
 * refusals to the per-kind counters (not for checks and replay).
 */
static proto_status_t resolve(ingest_t *in, const proto_batch_t *b, const access_key_t *key,
                              bool replay, bool all, bool count, uint32_t *ret_nrefused,
                              char *reason, size_t rlen)
{
    server_t *srv = in->srv;
    judge_t j;
    uint32_t n = 0;
    judge_begin(&j, srv->cfg, srv->reg, &srv->cal, key, replay, calendar_now_ms());
    for (uint32_t i = 0; i < b->nsamples; i++) {
        char *why = all ? in->refusal_text + (size_t)n * JUDGE_REASONLEN : reason;
        judge_kind_t kind;
        proto_status_t st = judge_sample(&j, &b->samples[i], i, &in->resolved[i], &kind, why,
                                         all ? JUDGE_REASONLEN : rlen);
        if (st == PROTO_STATUS_OK)
            continue;
        if (count)
            in->judged.refused[kind]++;
        if (!all)
            return st;
        in->resolved[i].refused = true;
        in->refusals[n] =
            (proto_refusal_t){.index = i, .status = (uint8_t)st, .reason = proto_str(why)};
        in->refusal_codes[n] = judge_pack_refusal(i, (uint8_t)st);
        n++;
    }
    if (ret_nrefused)
        *ret_nrefused = n;
    return PROTO_STATUS_OK;
}

/* Applies a resolved batch. During WAL replay at start-up (replay true) the
 * rules fed by period figures are only marked: the rule state is a function
 * of the aggregate, so ingest_replay_done() evaluates each once at the end
 * (evaluating them per batch was most of a recovery's time). Threshold rules
 * still run per reading: their hysteresis depends on sample order. */
static void apply(ingest_t *in, const proto_batch_t *b, bool replay)
{
    server_t *srv = in->srv;
    int64_t now = calendar_now_ms();
    uint32_t applied = 0;
    for (uint32_t i = 0; i < b->nsamples; i++) {
        const ingest_resolved_t *r = &in->resolved[i];
        if (r->refused)
            continue; /* a partial batch's refused sample (judge.h) */
        applied++;
        /* a former member's batch (in replay only) has no rules left to feed */
        bool member = !registry_is_former(srv->reg, r->firm);
        if (srv->cfg->metrics[r->metric].kind == METRIC_PERIOD) {
            agg_put_period(srv->agg, r->firm, r->metric, r->period, r->milli);
            if (member)
                rules_on_period(&srv->rules, r->firm, r->metric, r->period);
        } else {
            agg_put_reading(srv->agg, r->firm, r->metric, r->period.year, r->period.index, r->value,
                            r->ts_ms);
            if (member)
                rules_on_reading(&srv->rules, r->firm, r->metric, r->value, r->ts_ms, now);
        }
    }
    /* the rules a batch fed, once per batch */
    if (!replay) {
        rules_evaluate_dirty(&srv->rules, now);
        alertbook_flush(&srv->book, now);
    }
    srv->stats.samples_applied += applied;
    srv->stats.batches_ok++;
}

static proto_status_t status_of(int err)
{
    switch (err) {
    case PROTO_EVERSION: return PROTO_STATUS_VERSION;
    case PROTO_ELIMIT: return PROTO_STATUS_TOO_LARGE;
    case PROTO_EVALUE: return PROTO_STATUS_INVALID;
    default: return PROTO_STATUS_MALFORMED;
    }
}

/* ---- rate limits --------------------------------------------------------- */

static void bucket_refill(ingest_bucket_t *bk, double rate, int64_t now)
{
    double cap = rate;
    bk->tokens += rate * (double)(now - bk->last_ms) / 1000.0;
    if (bk->tokens > cap)
        bk->tokens = cap;
    bk->last_ms = now;
}

/* A batch bigger than a second's worth passes a full bucket (and empties it
 * for longer), so no limit is too low for the biggest batch. */
static bool bucket_has(const ingest_bucket_t *bk, double rate, uint32_t n)
{
    return bk->tokens >= ((double)n < rate ? (double)n : rate);
}

/* True if the batch of n samples from env's connection is over a limit
 * (reason says which); else takes n from both buckets. */
static bool rate_limited(ingest_t *in, envelope_t *env, uint32_t n, char *reason, size_t rlen)
{
    const config_t *cfg = in->srv->cfg;
    int64_t now = (int64_t)uv_now(&in->srv->loop);
    ingest_bucket_t *conn = NULL;
    if (cfg->rate_per_connection > 0) {
        /* FNV-1a of the routing id; 0 marks a free bucket */
        uint64_t h = hash_fnv1a(zmq_msg_data(&env->id), zmq_msg_size(&env->id)) | 1;
        conn = &in->buckets[h % INGEST_BUCKETS];
        if (conn->peer != h) /* a new connection, or one that took over the slot */
            *conn =
                (ingest_bucket_t){.peer = h, .tokens = cfg->rate_per_connection, .last_ms = now};
        bucket_refill(conn, cfg->rate_per_connection, now);
        if (!bucket_has(conn, cfg->rate_per_connection, n)) {
            snprintf(reason, rlen,
                     "rate limited: this connection is over %.0f samples/s; "
                     "resend later",
                     cfg->rate_per_connection);
            return true;
        }
    }
    if (cfg->rate_global > 0) {
        bucket_refill(&in->global, cfg->rate_global, now);
        if (!bucket_has(&in->global, cfg->rate_global, n)) {
            snprintf(reason, rlen,
                     "rate limited: the daemon takes at most %.0f samples/s in "
                     "all; resend later",
                     cfg->rate_global);
            return true;
        }
        in->global.tokens -= n;
    }
    if (conn)
        conn->tokens -= n;
    return false;
}

/* ---- WAL records ---------------------------------------------------------- */

static unsigned char *rec_reserve(ingest_t *in, size_t n)
{
    if (n > in->rec_cap)
        xgrow(&in->rec, &in->rec_cap, n, 1);
    return in->rec;
}

/* Logs an applied batch: [tag][keylen][key][message]. Returns the WAL
 * position, 0 on failure. */
static uint64_t log_batch(ingest_t *in, const char *key, const void *msg, size_t len)
{
    size_t klen = strlen(key);
    unsigned char *r = rec_reserve(in, 2 + klen + len);
    r[0] = INGEST_REC_BATCH;
    r[1] = (unsigned char)klen;
    memcpy(r + 2, key, klen);
    memcpy(r + 2 + klen, msg, len);
    return wal_append(&in->srv->wal, r, 2 + klen + len);
}

/* Logs a partial batch: [tag][keylen][key][u32 n][n codes][message].
 * Returns the WAL position, 0 on failure. */
static uint64_t log_partial(ingest_t *in, const char *key, uint32_t n, const void *msg, size_t len)
{
    size_t klen = strlen(key), off = 0;
    unsigned char *r = rec_reserve(in, 6 + klen + 4 * (size_t)n + len);
    r[off++] = INGEST_REC_PARTIAL;
    r[off++] = (unsigned char)klen;
    memcpy(r + off, key, klen);
    off += klen;
    bytes_put_le32(r + off, n);
    off += 4;
    for (uint32_t k = 0; k < n; k++, off += 4)
        bytes_put_le32(r + off, in->refusal_codes[k]);
    memcpy(r + off, msg, len);
    return wal_append(&in->srv->wal, r, off + len);
}

/* Logs a seq refused for good, so a restart answers its resend the same. */
static uint64_t log_settle(ingest_t *in, const char *key, const proto_batch_t *b, proto_status_t st)
{
    size_t klen = strlen(key);
    unsigned char *r = rec_reserve(in, 4 + klen + b->agent.len + 16);
    size_t off = 0;
    r[off++] = INGEST_REC_SETTLE;
    r[off++] = (unsigned char)klen;
    memcpy(r + off, key, klen);
    off += klen;
    r[off++] = (unsigned char)st;
    r[off++] = (unsigned char)b->agent.len;
    memcpy(r + off, b->agent.ptr, b->agent.len);
    off += b->agent.len;
    bytes_put_le64(r + off, b->epoch);
    bytes_put_le64(r + off + 8, b->seq);
    return wal_append(&in->srv->wal, r, off + 16);
}

/* ---- one batch ------------------------------------------------------------- */

/* Refuses seq for good: it is settled (the next is seq + 1) and logged, so
 * the stream goes on. If the WAL cannot take the record the batch is only
 * "busy": nothing is settled that a restart would not know. */
static void refuse(ingest_t *in, envelope_t *env, answer_ctx_t *ctx, const char *key, stream_t *s,
                   const proto_batch_t *b, proto_status_t st, const char *reason)
{
    server_t *srv = in->srv;
    if (log_settle(in, key, b, st) == 0) {
        nack(in, env, ctx, PROTO_STATUS_BUSY, "cannot write the WAL (disk full?); try again later");
        return;
    }
    streams_settle(&in->streams, s, b->epoch, b->seq, (uint8_t)st, 0, (int64_t)uv_now(&srv->loop),
                   calendar_now_ms());
    ctx->expected = s->next;
    nack(in, env, ctx, st, reason);
}

static void format_wall(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%lld ms", (long long)ms);
}

/* Answers the resend of a partial batch as the first copy was answered:
 * the same accepted count and refused samples. The reasons are judged again
 * from the resent bytes (the statuses are what was remembered). */
static void resend_partial(ingest_t *in, envelope_t *env, answer_ctx_t *ctx, const proto_batch_t *b,
                           const stream_outcome_t *o)
{
    judge_t j;
    judge_begin(&j, in->srv->cfg, in->srv->reg, &in->srv->cal, NULL, false, calendar_now_ms());
    for (uint32_t k = 0; k < o->nrefused; k++) {
        uint32_t idx = o->refused[k] >> 8;
        uint8_t st = (uint8_t)(o->refused[k] & 0xff);
        char *why = in->refusal_text + (size_t)k * JUDGE_REASONLEN;
        judge_kind_t kind;
        ingest_resolved_t scratch;
        if (idx >= b->nsamples || judge_sample(&j, &b->samples[idx], idx, &scratch, &kind, why,
                                               JUDGE_REASONLEN) == PROTO_STATUS_OK)
            snprintf(why, JUDGE_REASONLEN, "sample %u: refused when seq %llu was first sent (%s)",
                     idx, (unsigned long long)b->seq, proto_status_name(st));
        in->refusals[k] = (proto_refusal_t){.index = idx, .status = st, .reason = proto_str(why)};
    }
    ack_judged(in, env, ctx, o->accepted, o->nrefused, false);
}

/* Judges a check (a dry-run batch): answers per sample, applies nothing,
 * journals nothing, settles no seq (expected 0). rc is the decoder's. */
static void check_batch(ingest_t *in, envelope_t *env, answer_ctx_t *ctx, const access_key_t *key,
                        const proto_batch_t *b, int rc, const char *reason)
{
    char why[PROTO_MAX_TEXT_LEN];
    proto_status_t st = PROTO_STATUS_OK;
    ctx->expected = 0;
    if (rc != PROTO_OK) {
        st = status_of(rc);
        snprintf(why, sizeof why, "%s", reason);
    } else if (rate_limited(in, env, b->nsamples, why, sizeof why)) {
        st = PROTO_STATUS_RATE_LIMITED;
    }
    if (st != PROTO_STATUS_OK) {
        proto_ack_t ack = {.seq = ctx->seq,
                           .status = (uint8_t)st,
                           .max_version = PROTO_VERSION,
                           .reason = proto_str(why),
                           .dry_run = true};
        in->srv->stats.nacks[st]++;
        send_ack(in, env, &ack);
        return;
    }
    uint32_t n = 0;
    resolve(in, b, key, false, true, false, &n, NULL, 0);
    ack_judged(in, env, ctx, b->nsamples - n, n, true);
}

/* Answers a batch its stream cannot take now (anything but STREAM_TAKE). */
static void answer_verdict(ingest_t *in, envelope_t *env, answer_ctx_t *ctx, const stream_t *s,
                           const proto_batch_t *b, stream_verdict_t v, const stream_outcome_t *o)
{
    server_t *srv = in->srv;
    char reason[PROTO_MAX_TEXT_LEN], since[32];
    int64_t now = (int64_t)uv_now(&srv->loop);
    bool known_epoch = s->epoch == b->epoch;
    /* a conflicting batch is not the owner stream's: nothing to expect */
    ctx->expected = v == STREAM_CONFLICT || v == STREAM_SUPERSEDED ? 0 : known_epoch ? s->next : 1;
    switch (v) {
    case STREAM_DUPLICATE:
        srv->stats.batches_duplicate++;
        if (o->status == PROTO_STATUS_PARTIAL) {
            resend_partial(in, env, ctx, b, o);
            return;
        }
        if (o->status == PROTO_STATUS_OK) {
            ack_ok(in, env, ctx, o->accepted);
        } else {
            snprintf(reason, sizeof reason, "seq %llu was refused before (%s); it stays refused",
                     (unsigned long long)b->seq, proto_status_name(o->status));
            nack(in, env, ctx, o->status, reason);
        }
        return;
    case STREAM_GAP:
        snprintf(reason, sizeof reason,
                 "seq %llu of agent '%.*s' epoch %llu arrived before seq %llu: "
                 "resend from seq %llu",
                 (unsigned long long)b->seq, PROTO_STR_ARG(b->agent), (unsigned long long)b->epoch,
                 (unsigned long long)ctx->expected, (unsigned long long)ctx->expected);
        nack(in, env, ctx, PROTO_STATUS_OUT_OF_ORDER, reason);
        return;
    case STREAM_FORGOTTEN:
        snprintf(reason, sizeof reason,
                 "seq %llu was settled more than %d batches ago (next is "
                 "%llu); the daemon no longer remembers its answer",
                 (unsigned long long)b->seq, PROTO_MAX_WINDOW, (unsigned long long)s->next);
        nack(in, env, ctx, PROTO_STATUS_OUT_OF_ORDER, reason);
        return;
    case STREAM_CONFLICT:
    case STREAM_SUPERSEDED:
        format_wall(s->since_wall_ms, since, sizeof since);
        if (v == STREAM_CONFLICT)
            snprintf(reason, sizeof reason,
                     "agent id '%.*s' is in use by another agent (stream "
                     "%llu) since %s, last batch %.0f s ago; each agent needs its own id (the same "
                     "agent restarted without its spool may take the id over once the other has "
                     "been idle for %.0f s)",
                     PROTO_STR_ARG(b->agent), (unsigned long long)s->epoch, since,
                     (double)(now - s->last_ms) / 1000.0, (double)in->streams.lease_ms / 1000.0);
        else
            snprintf(reason, sizeof reason,
                     "agent id '%.*s' was taken over by another agent "
                     "(stream %llu) at %s; this stream (%llu) is closed; each agent needs its own "
                     "id",
                     PROTO_STR_ARG(b->agent), (unsigned long long)s->epoch, since,
                     (unsigned long long)b->epoch);
        nack(in, env, ctx, PROTO_STATUS_AGENT_CONFLICT, reason);
        return;
    case STREAM_TAKE: break;
    }
}

/* Who a batch from inside the daemon is from (ingest_local); NULL: the socket's. */
typedef struct {
    const char *keyid;
    const access_key_t *key;
} local_src_t;

static void handle_batch(ingest_t *in, envelope_t *env, const local_src_t *local)
{
    server_t *srv = in->srv;
    char reason[PROTO_MAX_TEXT_LEN];
    const void *data = envelope_data(env);
    size_t len = envelope_size(env);
    proto_batch_t b = {.samples = in->samples, .cap = PROTO_MAX_SAMPLES};
    if (len > PROTO_MAX_MSG_SIZE) {
        /* ZeroMQ lets frames up to INGEST_MAX_FRAME through so that this one
         * is answered and counted rather than dropped with the connection. */
        answer_ctx_t big = {.peer = zmq_msg_gets(&env->body, "Peer-Address")};
        snprintf(reason, sizeof reason,
                 "a frame of %zu bytes exceeds the limit of %u bytes "
                 "(PROTO_MAX_MSG_SIZE): send smaller batches",
                 len, PROTO_MAX_MSG_SIZE);
        nack(in, env, &big, PROTO_STATUS_TOO_LARGE, reason);
        return;
    }
    int rc = proto_batch_decode(data, len, &b, reason, sizeof reason);
    answer_ctx_t ctx = {
        .agent = b.agent, .seq = b.seq, .peer = zmq_msg_gets(&env->body, "Peer-Address")};
    const access_key_t *key = NULL;
    const char *keyid = "";
    if (local) {
        key = local->key;
        keyid = local->keyid;
    } else if (srv->curve) {
        /* looked up per batch: a key revoked by a reload is refused from now on */
        const char *uid = zmq_msg_gets(&env->body, "User-Id");
        key = uid ? keys_find(srv->keys, uid, strlen(uid)) : NULL;
        if (!key || !(key->roles & (KEY_ROLE_AGENT | KEY_ROLE_ADMIN))) {
            snprintf(reason, sizeof reason,
                     "key %.40s is no longer allowed to report (revoked by "
                     "a reload)",
                     uid ? uid : "?");
            nack(in, env, &ctx, PROTO_STATUS_FORBIDDEN, reason);
            return;
        }
        keyid = key->z85;
    }
    /* A batch too broken to name its stream cannot settle anything: the
     * nack has expected 0, and the sender must stop (PROTOCOL.md 5). */
    if (rc != PROTO_OK && (b.seq == 0 || b.epoch == 0 || b.agent.len == 0)) {
        nack(in, env, &ctx, status_of(rc), reason);
        return;
    }
    /* The stream is the key's: an id must be the key's own too, so no firm
     * can make another's batches look settled (keys.h). */
    if (!local && key && !keys_may_use_agent_id(key, srv->reg, b.agent.ptr, b.agent.len)) {
        snprintf(reason, sizeof reason,
                 "agent id '%.*s' is not key '%s''s: use '%s' or the id "
                 "of a firm it reports for, optionally followed by '.' and a suffix",
                 PROTO_STR_ARG(b.agent), key->name, key->name);
        nack(in, env, &ctx, PROTO_STATUS_FORBIDDEN, reason);
        return;
    }
    /* A check never touches the stream: no seq is settled or claimed. */
    if (b.dry_run) {
        check_batch(in, env, &ctx, key, &b, rc, reason);
        return;
    }
    stream_t *s = streams_get(&in->streams, keyid, b.agent);
    if (!s) {
        snprintf(reason, sizeof reason, "the daemon already follows %d agent streams", STREAMS_MAX);
        nack(in, env, &ctx, PROTO_STATUS_INTERNAL, reason);
        return;
    }
    int64_t now = (int64_t)uv_now(&srv->loop);
    const stream_outcome_t *outcome;
    in->streams.lease_ms = (int64_t)(srv->cfg->agent_lease_s * 1000); /* reloadable */
    stream_verdict_t v = streams_check(&in->streams, s, b.epoch, b.seq, now, &outcome);
    if (s->epoch == b.epoch)
        streams_touch(s, now);
    if (v != STREAM_TAKE) {
        answer_verdict(in, env, &ctx, s, &b, v, outcome);
        return;
    }
    ctx.expected = b.seq; /* until it settles */
    if (rc != PROTO_OK) {
        refuse(in, env, &ctx, keyid, s, &b, status_of(rc), reason);
        return;
    }
    if (rate_limited(in, env, b.nsamples, reason, sizeof reason)) {
        nack(in, env, &ctx, PROTO_STATUS_RATE_LIMITED, reason);
        return;
    }
    uint32_t nrefused = 0;
    proto_status_t st =
        resolve(in, &b, key, false, b.partial, true, &nrefused, reason, sizeof reason);
    if (st != PROTO_STATUS_OK) {
        refuse(in, env, &ctx, keyid, s, &b, st, reason);
        return;
    }
    if (nrefused > 0) {
        /* A partial batch: its good samples are applied, its seq settled
         * with the list of the others (PROTOCOL.md 2, partial answers). */
        if (log_partial(in, keyid, nrefused, data, len) == 0) {
            nack(in, env, &ctx, PROTO_STATUS_BUSY,
                 "cannot write the WAL (disk full?); try again later");
            return;
        }
        apply(in, &b, false);
        streams_settle_refused(&in->streams, s, b.epoch, b.seq, PROTO_STATUS_PARTIAL,
                               b.nsamples - nrefused, in->refusal_codes, nrefused, now,
                               calendar_now_ms());
        ctx.expected = s->next;
        ack_judged(in, env, &ctx, b.nsamples - nrefused, nrefused, false);
        return;
    }
    /* Write-ahead: the record is in the log before anything is applied or acked. */
    if (log_batch(in, keyid, data, len) == 0) {
        nack(in, env, &ctx, PROTO_STATUS_BUSY,
             "cannot write the WAL (disk full?); try again later");
        return;
    }
    if (s->epoch && s->epoch != b.epoch)
        log_info("ingest: agent id '%.*s': stream %llu takes over from stream %llu (idle %.0f s)",
                 PROTO_STR_ARG(b.agent), (unsigned long long)b.epoch, (unsigned long long)s->epoch,
                 (double)(now - s->last_ms) / 1000.0);
    apply(in, &b, false);
    streams_settle(&in->streams, s, b.epoch, b.seq, PROTO_STATUS_OK, b.nsamples, now,
                   calendar_now_ms());
    ctx.expected = s->next;
    ack_ok(in, env, &ctx, b.nsamples);
}

/* ---- replay ---------------------------------------------------------------- */

/* A batch of protocol 1 (written by an older daemon) becomes a protocol-2
 * batch of stream 1: the map gains "epoch": 1 and its "v" becomes 2. Only the
 * encoding every older agent used is converted: {"v":1, ...} with 5 keys. */
static const unsigned char *legacy_batch(ingest_t *in, const unsigned char *p, size_t *len)
{
    static const unsigned char head[] = {0x85, 0xa1, 'v', 0x01};
    static const unsigned char epoch[] = {0xa5, 'e', 'p', 'o', 'c', 'h', 0x01};
    if (*len < sizeof head || memcmp(p, head, sizeof head) != 0)
        return NULL;
    unsigned char *r = rec_reserve(in, *len + sizeof epoch);
    memcpy(r, p, *len);
    r[0] = 0x86;
    r[3] = 0x02;
    memcpy(r + *len, epoch, sizeof epoch);
    *len += sizeof epoch;
    return r;
}

static void replay_skip(ingest_t *in, const char *what)
{
    if (in->replay_skipped++ < 20)
        log_warnx("WAL replay: %s", what);
}

/* Replays a batch record; codes (n of them, index << 8 | status) are the
 * samples a partial batch refused, NULL for a batch applied whole. */
static void replay_batch(ingest_t *in, const char *key, const void *msg, size_t len,
                         const unsigned char *codes, uint32_t ncodes)
{
    server_t *srv = in->srv;
    char reason[PROTO_MAX_TEXT_LEN], what[PROTO_MAX_TEXT_LEN + 128];
    proto_batch_t b = {.samples = in->samples, .cap = PROTO_MAX_SAMPLES};
    int rc = proto_batch_decode(msg, len, &b, reason, sizeof reason);
    if (rc != PROTO_OK) {
        snprintf(what, sizeof what, "a batch record does not decode: %s", reason);
        replay_skip(in, what);
        return;
    }
    stream_t *s = streams_get(&in->streams, key, b.agent);
    if (s && s->epoch == b.epoch && b.seq < s->next)
        return; /* the snapshot has it already */
    if (codes) {
        /* a partial batch: the samples it refused stay refused; the others
         * are resolved one by one (a firm removed since skips its samples) */
        uint32_t *list = in->refusal_codes, applied = 0;
        judge_t j;
        judge_begin(&j, srv->cfg, srv->reg, &srv->cal, NULL, true, calendar_now_ms());
        for (uint32_t i = 0; i < b.nsamples; i++)
            in->resolved[i].refused = false;
        for (uint32_t k = 0; k < ncodes; k++) {
            list[k] = bytes_get_le32(codes + 4 * k);
            if ((list[k] >> 8) < b.nsamples)
                in->resolved[list[k] >> 8].refused = true;
        }
        for (uint32_t i = 0; i < b.nsamples; i++) {
            judge_kind_t kind;
            if (in->resolved[i].refused)
                continue;
            if (judge_sample(&j, &b.samples[i], i, &in->resolved[i], &kind, reason,
                             sizeof reason) != PROTO_STATUS_OK) {
                in->resolved[i].refused = true;
                snprintf(what, sizeof what, "batch %llu of agent '%.*s': %s: skipped",
                         (unsigned long long)b.seq, PROTO_STR_ARG(b.agent), reason);
                replay_skip(in, what);
                continue;
            }
            applied++;
        }
        if (applied)
            apply(in, &b, true);
        if (s)
            streams_settle_refused(&in->streams, s, b.epoch, b.seq, PROTO_STATUS_PARTIAL,
                                   b.nsamples - ncodes, list, ncodes, (int64_t)uv_now(&srv->loop),
                                   calendar_now_ms());
        return;
    }
    proto_status_t st = resolve(in, &b, NULL, true, false, false, NULL, reason, sizeof reason);
    if (st != PROTO_STATUS_OK) {
        snprintf(what, sizeof what, "batch %llu of agent '%.*s' skipped: %s: %s",
                 (unsigned long long)b.seq, PROTO_STR_ARG(b.agent), proto_status_name(st), reason);
        replay_skip(in, what);
    } else {
        apply(in, &b, true);
    }
    /* it was acked ok: a resend must get ok again */
    if (s)
        streams_settle(&in->streams, s, b.epoch, b.seq, PROTO_STATUS_OK, b.nsamples,
                       (int64_t)uv_now(&srv->loop), calendar_now_ms());
}

void ingest_replay(ingest_t *in, const void *payload, size_t len)
{
    const unsigned char *p = payload;
    char key[256];
    if (len >= 2 && p[0] == INGEST_REC_PARTIAL && len >= 6u + p[1]) {
        memcpy(key, p + 2, p[1]);
        key[p[1]] = '\0';
        uint32_t n = bytes_get_le32(p + 2 + p[1]);
        size_t head = 6u + p[1] + 4 * (size_t)n;
        if (n <= PROTO_MAX_SAMPLES && len >= head) {
            replay_batch(in, key, p + head, len - head, p + 6 + p[1], n);
            return;
        }
    }
    if (len >= 2 && (p[0] == INGEST_REC_BATCH || p[0] == INGEST_REC_SETTLE) && len >= 2u + p[1]) {
        memcpy(key, p + 2, p[1]);
        key[p[1]] = '\0';
        const unsigned char *body = p + 2 + p[1];
        size_t blen = len - 2 - p[1];
        if (p[0] == INGEST_REC_BATCH) {
            replay_batch(in, key, body, blen, NULL, 0);
            return;
        }
        if (blen >= 2 && blen == 2u + body[1] + 16 && body[1] > 0) {
            proto_str_t agent = {(const char *)body + 2, body[1]};
            uint64_t epoch = bytes_get_le64(body + 2 + body[1]),
                     seq = bytes_get_le64(body + 10 + body[1]);
            stream_t *s = streams_get(&in->streams, key, agent);
            if (s && !(s->epoch == epoch && seq < s->next))
                streams_settle(&in->streams, s, epoch, seq, body[0], 0,
                               (int64_t)uv_now(&in->srv->loop), calendar_now_ms());
            return;
        }
    }
    size_t llen = len;
    const unsigned char *legacy = legacy_batch(in, p, &llen);
    if (legacy) {
        replay_batch(in, "", legacy, llen, NULL, 0);
        return;
    }
    replay_skip(in, "a record of an unknown kind");
}

void ingest_replay_done(ingest_t *in)
{
    int64_t now = calendar_now_ms();
    rules_evaluate_dirty(&in->srv->rules, now);
    alertbook_flush(&in->srv->book, now); /* quiet: states change, nothing is published */
}

void ingest_group_end(ingest_t *in)
{
    server_t *srv = in->srv;
    wal_t *w = &srv->wal;
    if ((w->grouping || wal_group_pending(w)) && wal_group_flush(w) != 0) {
        /* answers and alerts stay held; the cron tries again */
        if (log_throttle(&in->log, (int64_t)uv_now(&srv->loop), 1, "ingest", "group writes"))
            log_error("ingest: cannot write %" PRIu64 " WAL records (%zu answers and their "
                      "alerts held, new batches nacked busy; the WAL's error is logged); "
                      "retried",
                      w->stage_n, in->npending);
        return;
    }
    if (srv->cfg->fsync_policy == WAL_FSYNC_ALWAYS)
        wal_sync(w);
    /* also what a group written by another hand left held (a rotation
     * writes a pending group first) */
    alerts_release(&srv->alerts);
    ingest_release_acks(in);
}

static void on_drained(zpoll_t *zp)
{
    zsock_t *zs = zp->data;
    ingest_group_end(zs->data);
}

void ingest_recovered(ingest_t *in)
{
    streams_all_live(&in->streams, (int64_t)uv_now(&in->srv->loop));
}

#define INGEST_GROUP_MAX (256u << 10) /* bytes a group write stages (about: a batch more) */

static bool on_message(zsock_t *zs)
{
    ingest_t *in = zs->data;
    wal_t *w = &in->srv->wal;
    envelope_t env;
    int rc = envelope_recv(in->zs.sock, &env);
    if (rc <= 0)
        return false;
    /* The WAL records of one drain are written at once (ingest_group_end);
     * not while an earlier group waits for its write: then each append
     * tries that write first and, failing, the batch is nacked busy. */
    if (!w->grouping && !wal_group_pending(w) && in->srv->cfg->group_writes[0] == 'y')
        wal_group_begin(w);
    if (!env.well_formed) {
        char reason[128];
        in->srv->stats.bad_envelopes++;
        snprintf(reason, sizeof reason,
                 "%d frames: expected [batch] from a DEALER or [\"\"][batch] from a REQ",
                 env.nframes - 1);
        answer_ctx_t ctx = {.peer = NULL};
        nack(in, &env, &ctx, PROTO_STATUS_MALFORMED, reason);
    } else {
        handle_batch(in, &env, NULL);
    }
    envelope_close(&env);
    /* written (and its answers sent) once it holds INGEST_GROUP_MAX: a drain
     * of big batches would stage up to ZPOLL_BUDGET x 4 MiB, and answers
     * held long stall the agents' windows (with 8 MiB the simulator's four
     * streams ran 16 % more CPU per sample than with no grouping at all) */
    if (w->grouping && w->stage_len >= INGEST_GROUP_MAX)
        ingest_group_end(in);
    return true;
}

void ingest_local(ingest_t *in, const char *keyid, const access_key_t *key, const void *msg,
                  size_t len, msgpack_sbuffer *out, uint64_t *ret_wal_pos)
{
    /* an envelope around the caller's bytes (not copied: borrowed for the
     * call) with an empty routing id, so every local batch shares one rate
     * bucket */
    envelope_t env = {.well_formed = true, .nframes = 2};
    zmq_msg_init(&env.id);
    zmq_msg_init_data(&env.body, (void *)(uintptr_t)msg, len, NULL, NULL);
    local_src_t src = {.keyid = keyid, .key = key};
    in->local_out = out;
    in->local_wal_pos = 0;
    handle_batch(in, &env, &src);
    in->local_out = NULL;
    *ret_wal_pos = in->local_wal_pos;
    zmq_msg_close(&env.body);
    zmq_msg_close(&env.id);
}

void ingest_init(ingest_t *in, struct server *srv)
{
    memset(in, 0, sizeof *in);
    in->srv = srv;
    in->samples = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->samples);
    in->resolved = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->resolved);
    in->refusals = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->refusals);
    in->refusal_codes = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->refusal_codes);
    in->refusal_text = xcalloc(PROTO_MAX_SAMPLES, JUDGE_REASONLEN);
    in->buckets = xcalloc(INGEST_BUCKETS, sizeof *in->buckets);
    in->global.last_ms = (int64_t)uv_now(&srv->loop);
    in->global.tokens = srv->cfg->rate_global;
    streams_init(&in->streams, (int64_t)(srv->cfg->agent_lease_s * 1000));
    msgpack_sbuffer_init(&in->out);
}

int ingest_start(ingest_t *in, const char *endpoint, char *err, size_t errlen)
{
    server_t *srv = in->srv;
    zsock_options_t o = {
        .name = "ingest",
        .type = ZMQ_ROUTER,
        .endpoint = endpoint,
        .sndhwm = 10000,
        .rcvhwm = 10000,
        .maxmsgsize = INGEST_MAX_FRAME,
        .peer_timeout = srv->cfg->peer_timeout,
        .curve_secret = srv->curve ? srv->curve_key.secret_z85 : NULL,
        .zap_domain = ZAP_DOMAIN_INGEST,
    };
    if (zsock_open(&in->zs, &srv->loop, srv->zctx, &o, on_message, in, err, errlen) != 0)
        return -1;
    in->zs.zp.on_drained = on_drained;
    return 0;
}

void ingest_close(ingest_t *in)
{
    zsock_close(&in->zs, NULL, NULL);
}

void ingest_free(ingest_t *in)
{
    streams_free(&in->streams);
    free(in->rec);
    in->rec = NULL;
    while (in->npending > 0) {
        zmq_msg_close(&in->pending[in->pending_head].id);
        free(in->pending[in->pending_head].reason);
        free(in->pending[in->pending_head].ack.refused);
        in->pending_head = (in->pending_head + 1) % in->pending_cap;
        in->npending--;
    }
    free(in->pending);
    free(in->buckets);
    free(in->samples);
    free(in->resolved);
    free(in->refusals);
    free(in->refusal_codes);
    free(in->refusal_text);
    msgpack_sbuffer_destroy(&in->out);
    in->pending = NULL;
    in->samples = NULL;
    in->resolved = NULL;
}

/* ---- durable counters ------------------------------------------------------------ */

/* The counters the snapshot keeps, by name (the order is the file's). */
static const struct {
    const char *name;
    size_t offset;
} stat_fields[] = {
    {"samples_applied", offsetof(server_stats_t, samples_applied)},
    {"batches_ok", offsetof(server_stats_t, batches_ok)},
    {"batches_duplicate", offsetof(server_stats_t, batches_duplicate)},
};
#define NSTATS (sizeof stat_fields / sizeof stat_fields[0])

void ingest_stats_pack(const server_t *srv, msgpack_packer *pk)
{
    msgpack_pack_map(pk, NSTATS);
    for (size_t k = 0; k < NSTATS; k++) {
        size_t n = strlen(stat_fields[k].name);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, stat_fields[k].name, n);
        msgpack_pack_uint64(pk,
                            *(const uint64_t *)((const char *)&srv->stats + stat_fields[k].offset));
    }
}

int ingest_stats_unpack(server_t *srv, const msgpack_object *o, bool apply, char *err,
                        size_t errlen)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "stats: missing or not a map");
        return -1;
    }
    for (size_t k = 0; k < NSTATS; k++) {
        const msgpack_object *v = proto_obj_get(o, stat_fields[k].name);
        if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(err, errlen, "stats: %s missing or not an unsigned integer",
                     stat_fields[k].name);
            return -1;
        }
    }
    for (size_t k = 0; apply && k < NSTATS; k++)
        *(uint64_t *)((char *)&srv->stats + stat_fields[k].offset) =
            proto_obj_get(o, stat_fields[k].name)->via.u64;
    return 0;
}
