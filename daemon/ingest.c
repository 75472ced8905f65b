/* ingest.c -- see ingest.h. */
#include "daemon/ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/envelope.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

#define NACK_LOGS_PER_SECOND 10

/* ---- per-agent dedup table ------------------------------------------------ */

static uint64_t hash_str(proto_str_t s)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.ptr[i];
        h *= 1099511628211ull;
    }
    return h;
}

ingest_agent_t *ingest_agent_get(ingest_t *in, proto_str_t name)
{
    if (in->nagents * 2 >= in->agents_mask + 1) {
        if (in->agents_mask + 1 >= INGEST_MAX_AGENTS * 2)
            return NULL;
        size_t nmask = in->agents_mask * 2 + 1;
        ingest_agent_t *na = xcalloc(nmask + 1, sizeof *na);
        for (size_t i = 0; i <= in->agents_mask; i++) {
            if (!in->agents[i].agent)
                continue;
            size_t j = hash_str(proto_str(in->agents[i].agent)) & nmask;
            while (na[j].agent)
                j = (j + 1) & nmask;
            na[j] = in->agents[i];
        }
        free(in->agents);
        in->agents = na;
        in->agents_mask = nmask;
    }
    for (size_t i = hash_str(name) & in->agents_mask;; i = (i + 1) & in->agents_mask) {
        ingest_agent_t *a = &in->agents[i];
        if (!a->agent) {
            a->agent = xstrndup(name.ptr, name.len);
            in->nagents++;
            return a;
        }
        if (strlen(a->agent) == name.len && memcmp(a->agent, name.ptr, name.len) == 0)
            return a;
    }
}

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
    if (envelope_reply(in->sock, env, in->out.data, in->out.size) != 0 && errno != EHOSTUNREACH)
        log_warn("ingest: reply to seq %llu not sent", (unsigned long long)ack->seq);
}

static void ack_ok(ingest_t *in, envelope_t *env, uint64_t seq, uint32_t accepted)
{
    proto_ack_t ack = {.seq = seq, .status = PROTO_STATUS_OK, .max_version = PROTO_VERSION,
                       .accepted = accepted};
    send_ack(in, env, &ack);
}

/* Holds an ok ack until the WAL is synced up to pos (fsync = always). */
static void ack_hold(ingest_t *in, envelope_t *env, uint64_t seq, uint32_t accepted, uint64_t pos)
{
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
    p->seq = seq;
    p->accepted = accepted;
    p->wal_pos = pos;
    in->npending++;
}

void ingest_release_acks(ingest_t *in, uint64_t synced)
{
    bool sent = false;
    while (in->npending > 0) {
        ingest_pending_t *p = &in->pending[in->pending_head];
        if (p->wal_pos > synced)
            break;
        if (in->sock) {
            envelope_t env = {.has_delim = p->has_delim};
            zmq_msg_init(&env.id);
            zmq_msg_move(&env.id, &p->id);
            ack_ok(in, &env, p->seq, p->accepted);
            zmq_msg_close(&env.id);
            sent = true;
        }
        zmq_msg_close(&p->id);
        in->pending_head = (in->pending_head + 1) % in->pending_cap;
        in->npending--;
    }
    /* Sending outside on_message may have consumed the read edge. */
    if (sent)
        zpoll_kick(&in->zp);
}

void ingest_log_tick(ingest_t *in, int64_t now)
{
    log_throttle_flush(&in->log, now, "ingest", "nacks");
}

static void nack(ingest_t *in, envelope_t *env, uint64_t seq, proto_status_t status,
                 const char *reason)
{
    in->srv->stats.nacks[status]++;
    if (log_throttle(&in->log, (int64_t)uv_now(&in->srv->loop), NACK_LOGS_PER_SECOND, "ingest",
                     "nacks"))
        log_warnx("ingest: nack seq %llu: %s: %s", (unsigned long long)seq,
                  proto_status_name(status), reason);

    proto_ack_t ack = {.seq = seq, .status = (uint8_t)status, .max_version = PROTO_VERSION,
                       .reason = proto_str(reason)};
    send_ack(in, env, &ack);
}

/* ---- resolving and applying a batch -------------------------------------- */

static void known_metrics(const config_t *cfg, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->nmetrics && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", cfg->metrics[i].name);
}

/* Resolves every sample of b into in->resolved, checking each firm against
 * key (NULL: no CURVE, or WAL replay). Returns PROTO_STATUS_OK or the status
 * to nack with, the reason in reason. */
static proto_status_t resolve(ingest_t *in, const proto_batch_t *b, const access_key_t *key,
                              char *reason, size_t rlen)
{
    server_t *srv = in->srv;
    const config_t *cfg = srv->cfg;
    for (uint32_t i = 0; i < b->nsamples; i++) {
        const proto_sample_t *s = &b->samples[i];
        ingest_resolved_t *r = &in->resolved[i];
        r->firm = registry_find(srv->reg, s->firm.ptr, s->firm.len);
        if (r->firm < 0) {
            snprintf(reason, rlen, "sample %u: unknown firm '%.*s'", i, PROTO_STR_ARG(s->firm));
            return PROTO_STATUS_UNKNOWN_FIRM;
        }
        if (key && !keys_may_report(key, srv->reg, r->firm)) {
            snprintf(reason, rlen, "sample %u: key '%s' (%.8s...) may not report for firm '%s'", i,
                     key->name, key->z85, srv->reg->firms[r->firm].id);
            return PROTO_STATUS_FORBIDDEN;
        }
        r->metric = config_metric_find(cfg, s->metric.ptr, s->metric.len);
        if (r->metric < 0) {
            char known[512];
            known_metrics(cfg, known, sizeof known);
            snprintf(reason, rlen, "sample %u: unknown metric '%.*s' (known: %s)", i,
                     PROTO_STR_ARG(s->metric), known);
            return PROTO_STATUS_UNKNOWN_METRIC;
        }
        const config_metric_t *m = &cfg->metrics[r->metric];
        r->ts_ms = s->ts_ms;
        r->value = s->value;
        r->period = s->period;
        if (m->kind == METRIC_READING && s->period.kind != PROTO_PERIOD_NONE) {
            snprintf(reason, rlen,
                     "sample %u: metric '%s' is a reading: it takes a timestamp, not a period", i,
                     m->name);
            return PROTO_STATUS_INVALID;
        }
        if (m->kind == METRIC_READING || s->period.kind == PROTO_PERIOD_NONE) {
            int year, month;
            if (calendar_month_of(&srv->cal, s->ts_ms, &year, &month) != 0 ||
                year < PROTO_MIN_YEAR || year > PROTO_MAX_YEAR) {
                snprintf(reason, rlen, "sample %u: timestamp %lld ms has no calendar month in %s", i,
                         (long long)s->ts_ms, cfg->timezone);
                return PROTO_STATUS_INVALID;
            }
            r->period = (proto_period_t){.year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH,
                                         .index = (uint8_t)month};
        }
        if (m->kind == METRIC_PERIOD)
            r->milli = agg_to_milli(s->value);
    }
    return PROTO_STATUS_OK;
}

/* Applies a resolved batch and records it as the agent's latest. (During
 * WAL replay at start-up the alertbook is quiet: nothing is published.) */
static void apply(ingest_t *in, const proto_batch_t *b, ingest_agent_t *agent)
{
    server_t *srv = in->srv;
    int64_t now = calendar_now_ms();
    for (uint32_t i = 0; i < b->nsamples; i++) {
        const ingest_resolved_t *r = &in->resolved[i];
        if (srv->cfg->metrics[r->metric].kind == METRIC_PERIOD) {
            agg_put_period(srv->agg, r->firm, r->metric, r->period, r->milli);
            rules_on_period(&srv->rules, r->firm, r->metric, r->period);
        } else {
            agg_put_reading(srv->agg, r->firm, r->metric, r->period.year, r->period.index,
                            r->value, r->ts_ms);
            rules_on_reading(&srv->rules, r->firm, r->metric, r->value, r->ts_ms, now);
        }
    }
    /* the rules a batch fed, once per batch; in replay the book is quiet */
    rules_evaluate_dirty(&srv->rules, now);
    alertbook_flush(&srv->book, now);
    if (agent) {
        agent->seq = b->seq;
        agent->accepted = b->nsamples;
    }
    srv->stats.samples_applied += b->nsamples;
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
        uint64_t h = 1469598103934665603ull;
        const unsigned char *id = zmq_msg_data(&env->id);
        for (size_t i = 0; i < zmq_msg_size(&env->id); i++)
            h = (h ^ id[i]) * 1099511628211ull;
        h |= 1;
        conn = &in->buckets[h % INGEST_BUCKETS];
        if (conn->peer != h) /* a new connection, or one that took over the slot */
            *conn = (ingest_bucket_t){.peer = h, .tokens = cfg->rate_per_connection,
                                      .last_ms = now};
        bucket_refill(conn, cfg->rate_per_connection, now);
        if (!bucket_has(conn, cfg->rate_per_connection, n)) {
            snprintf(reason, rlen, "rate limited: this connection is over %.0f samples/s; "
                     "resend later", cfg->rate_per_connection);
            return true;
        }
    }
    if (cfg->rate_global > 0) {
        bucket_refill(&in->global, cfg->rate_global, now);
        if (!bucket_has(&in->global, cfg->rate_global, n)) {
            snprintf(reason, rlen, "rate limited: the daemon takes at most %.0f samples/s in "
                     "all; resend later", cfg->rate_global);
            return true;
        }
        in->global.tokens -= n;
    }
    if (conn)
        conn->tokens -= n;
    return false;
}

static void handle_batch(ingest_t *in, envelope_t *env)
{
    server_t *srv = in->srv;
    char reason[PROTO_MAX_TEXT_LEN];
    const void *data = envelope_data(env);
    size_t len = envelope_size(env);
    bool hold = srv->cfg->fsync_policy == WAL_FSYNC_ALWAYS;
    proto_batch_t b = {.samples = in->samples, .cap = PROTO_MAX_SAMPLES};
    int rc = proto_batch_decode(data, len, &b, reason, sizeof reason);
    if (rc != PROTO_OK) {
        nack(in, env, b.seq, status_of(rc), reason);
        return;
    }
    const access_key_t *key = NULL;
    if (srv->curve) {
        /* looked up per batch: a key revoked by a reload is refused from now on */
        const char *uid = zmq_msg_gets(&env->body, "User-Id");
        key = uid ? keys_find(srv->keys, uid, strlen(uid)) : NULL;
        if (!key || !(key->roles & (KEY_ROLE_AGENT | KEY_ROLE_ADMIN))) {
            snprintf(reason, sizeof reason, "key %.40s is no longer allowed to report (revoked by "
                     "a reload)", uid ? uid : "?");
            nack(in, env, b.seq, PROTO_STATUS_FORBIDDEN, reason);
            return;
        }
    }
    if (rate_limited(in, env, b.nsamples, reason, sizeof reason)) {
        nack(in, env, b.seq, PROTO_STATUS_RATE_LIMITED, reason);
        return;
    }
    /* The dedup slot is the agent id's: an id must be the key's own, so no
     * firm can make another's batches look like duplicates (keys.h). */
    if (key && !keys_may_use_agent_id(key, srv->reg, b.agent.ptr, b.agent.len)) {
        snprintf(reason, sizeof reason, "agent id '%.*s' is not key '%s''s: use '%s' or the id "
                 "of a firm it reports for, optionally followed by '.' and a suffix",
                 PROTO_STR_ARG(b.agent), key->name, key->name);
        nack(in, env, b.seq, PROTO_STATUS_FORBIDDEN, reason);
        return;
    }
    ingest_agent_t *agent = ingest_agent_get(in, b.agent);
    if (agent && b.seq <= agent->seq) {
        /* Applied already: its ack was lost, or this is a late copy. */
        srv->stats.batches_duplicate++;
        uint32_t accepted = b.seq == agent->seq ? agent->accepted : 0;
        if (hold && srv->wal.pos > srv->wal.synced) {
            ack_hold(in, env, b.seq, accepted, srv->wal.pos);
            wal_sync(&srv->wal);
        } else {
            ack_ok(in, env, b.seq, accepted);
        }
        return;
    }
    proto_status_t st = resolve(in, &b, key, reason, sizeof reason);
    if (st != PROTO_STATUS_OK) {
        nack(in, env, b.seq, st, reason);
        return;
    }
    /* Write-ahead: the record is in the log before anything is applied or acked. */
    uint64_t pos = wal_append(&srv->wal, data, len);
    if (pos == 0) {
        nack(in, env, b.seq, PROTO_STATUS_BUSY, "cannot write the WAL (disk full?); try again later");
        return;
    }
    apply(in, &b, agent);
    if (hold) {
        ack_hold(in, env, b.seq, b.nsamples, pos);
        wal_sync(&srv->wal);
    } else {
        ack_ok(in, env, b.seq, b.nsamples);
    }
}

void ingest_replay(ingest_t *in, const void *payload, size_t len)
{
    char reason[PROTO_MAX_TEXT_LEN];
    proto_batch_t b = {.samples = in->samples, .cap = PROTO_MAX_SAMPLES};
    int rc = proto_batch_decode(payload, len, &b, reason, sizeof reason);
    proto_status_t st =
        rc == PROTO_OK ? resolve(in, &b, NULL, reason, sizeof reason) : status_of(rc);
    if (st != PROTO_STATUS_OK) {
        if (in->replay_skipped++ < 20)
            log_warnx("WAL replay: batch %llu of agent '%.*s' skipped: %s: %s",
                      (unsigned long long)b.seq, PROTO_STR_ARG(b.agent), proto_status_name(st),
                      reason);
        return;
    }
    ingest_agent_t *agent = ingest_agent_get(in, b.agent);
    if (agent && b.seq <= agent->seq)
        return; /* the snapshot has it already */
    apply(in, &b, agent);
}

static bool on_message(zpoll_t *zp)
{
    ingest_t *in = zp->data;
    envelope_t env;
    int rc = envelope_recv(in->sock, &env);
    if (rc <= 0)
        return false;
    if (!env.well_formed) {
        char reason[128];
        in->srv->stats.bad_envelopes++;
        snprintf(reason, sizeof reason,
                 "%d frames: expected [batch] from a DEALER or [\"\"][batch] from a REQ",
                 env.nframes - 1);
        nack(in, &env, 0, PROTO_STATUS_MALFORMED, reason);
    } else {
        handle_batch(in, &env);
    }
    envelope_close(&env);
    return true;
}

void ingest_init(ingest_t *in, struct server *srv)
{
    memset(in, 0, sizeof *in);
    in->srv = srv;
    in->samples = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->samples);
    in->resolved = xcalloc(PROTO_MAX_SAMPLES, sizeof *in->resolved);
    in->buckets = xcalloc(INGEST_BUCKETS, sizeof *in->buckets);
    in->global.last_ms = (int64_t)uv_now(&srv->loop);
    in->global.tokens = srv->cfg->rate_global;
    in->agents_mask = 63;
    in->agents = xcalloc(in->agents_mask + 1, sizeof *in->agents);
    msgpack_sbuffer_init(&in->out);
}

int ingest_start(ingest_t *in, const char *endpoint, char *err, size_t errlen)
{
    server_t *srv = in->srv;
    in->sock = zmq_socket(srv->zctx, ZMQ_ROUTER);
    if (!in->sock) {
        snprintf(err, errlen, "ingest: zmq_socket(ROUTER): %s", zmq_strerror(errno));
        return -1;
    }
    int linger = 0, hwm = 10000;
    int64_t maxmsg = PROTO_MAX_MSG_SIZE;
    zmq_setsockopt(in->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(in->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(in->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(in->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (server_peer_timeout(in->sock, srv->cfg->peer_timeout, err, errlen) != 0 ||
        server_secure_socket(srv, in->sock, ZAP_DOMAIN_INGEST, err, errlen) != 0)
        return -1;
    if (zmq_bind(in->sock, endpoint) != 0) {
        snprintf(err, errlen, "ingest: cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    int rc = zpoll_start(&srv->loop, &in->zp, in->sock, on_message, in);
    if (rc < 0) {
        snprintf(err, errlen, "ingest: cannot watch the socket: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void zp_closed(zpoll_t *zp)
{
    ingest_t *in = zp->data;
    if (in->sock)
        zmq_close(in->sock);
    in->sock = NULL;
    if (in->on_closed)
        in->on_closed(in->srv);
}

void ingest_close(ingest_t *in, void (*on_closed)(struct server *))
{
    in->on_closed = on_closed;
    in->zp.data = in;
    zpoll_close(&in->zp, zp_closed);
}

void ingest_free(ingest_t *in)
{
    for (size_t i = 0; in->agents && i <= in->agents_mask; i++)
        free(in->agents[i].agent);
    while (in->npending > 0) {
        zmq_msg_close(&in->pending[in->pending_head].id);
        in->pending_head = (in->pending_head + 1) % in->pending_cap;
        in->npending--;
    }
    free(in->pending);
    free(in->buckets);
    free(in->agents);
    free(in->samples);
    free(in->resolved);
    msgpack_sbuffer_destroy(&in->out);
    in->pending = NULL;
    in->agents = NULL;
    in->samples = NULL;
    in->resolved = NULL;
}
