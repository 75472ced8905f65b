/* upstream.c -- see upstream.h. */
#include "proto/fileio.h"
#include "daemon/upstream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/exposition.h"
#include "daemon/log.h"
#include "daemon/record.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/clock.h"

#define TICK_MS 10
#define COMMIT_EVERY_MS 100
#define REOPEN_MIN_MS 500
#define REOPEN_MAX_MS 10000
#define HOLD_NAME "upstream"

/* ---- the queue of read batches --------------------------------------------- */

static upstream_batch_t *batch_find(upstream_t *u, uint64_t seq)
{
    if (u->qn == 0 || seq < u->q[0].seq || seq - u->q[0].seq >= u->qn)
        return NULL;
    return &u->q[seq - u->q[0].seq]; /* seqs in q are contiguous */
}

static bool metric_forwarded(const upstream_t *u, proto_str_t m)
{
    if (!u->metrics)
        return true;
    for (size_t i = 0; i < u->nmetrics; i++)
        if (proto_str_eq(m, u->metrics[i]))
            return true;
    return false;
}

/* See upstream.h. */
int upstream_convert(upstream_t *u, const void *record, size_t len, msgpack_sbuffer *sb,
                     uint32_t *ret_n)
{
    const unsigned char *p = record;
    if (len < 2 || (p[0] != RECORD_BATCH && p[0] != RECORD_PARTIAL) || len < 2u + p[1])
        return 0;
    size_t off = 2u + p[1];
    const unsigned char *codes = NULL;
    uint32_t ncodes = 0;
    if (p[0] == RECORD_PARTIAL) {
        if (len < off + 4)
            return -1;
        ncodes = bytes_get_le32(p + off);
        codes = p + off + 4;
        off += 4 + 4 * (size_t)ncodes;
        if (ncodes > PROTO_MAX_SAMPLES || len < off)
            return -1;
    }
    char err[PROTO_ERRLEN];
    proto_batch_t in = {.samples = u->in, .cap = PROTO_MAX_SAMPLES};
    if (proto_batch_decode(p + off, len - off, &in, err, sizeof err) != PROTO_OK) {
        log_warnx("upstream: a journaled batch does not decode (%s): not forwarded", err);
        return -1;
    }
    uint32_t n = 0, k = 0;
    for (uint32_t i = 0; i < in.nsamples; i++) {
        /* the refusal codes are index << 8 | status, in index order */
        while (k < ncodes && (bytes_get_le32(codes + 4 * (size_t)k) >> 8) < i)
            k++;
        if (k < ncodes && (bytes_get_le32(codes + 4 * (size_t)k) >> 8) == i)
            continue;
        if (metric_forwarded(u, in.samples[i].metric))
            u->out[n++] = in.samples[i];
    }
    if (n == 0)
        return 0;
    proto_batch_t b = {.agent = proto_str(u->agent_id),
                       .epoch = u->epoch,
                       .seq = u->next_seq,
                       .nsamples = n,
                       .samples = u->out,
                       .cap = PROTO_MAX_SAMPLES,
                       .partial = true};
    if (proto_batch_encode(&b, sb, err, sizeof err) != PROTO_OK) {
        log_warnx("upstream: cannot encode seq %" PRIu64 ": %s: not forwarded", u->next_seq, err);
        return -1;
    }
    *ret_n = n;
    return 1;
}

static void set_error(upstream_t *u, const char *err)
{
    int64_t now = clock_monotonic_ms();
    if (!u->stuck || now - u->last_error_ms >= 60000) {
        log_error("upstream: cannot read the WAL on: %s; forwarding to the province is stopped "
                  "here until this is repaired",
                  err);
        u->last_error_ms = now;
    }
    u->stuck = true;
    snprintf(u->last_error, sizeof u->last_error, "%s", err);
}

/* Reads WAL records until one forwards something (queued as seq next_seq)
 * or nothing more is there. Returns true if a batch was queued. */
static bool read_one(upstream_t *u)
{
    if (u->qn == UPSTREAM_QUEUE)
        return false;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (;;) {
        const void *payload;
        size_t len;
        char err[512];
        int rc = waltail_next(u->tail, &payload, &len, err, sizeof err);
        if (rc < 0)
            set_error(u, err);
        if (rc <= 0)
            break;
        u->stuck = false;
        uint32_t n = 0;
        msgpack_sbuffer_clear(&sb); /* a failed encode may have left bytes */
        rc = upstream_convert(u, payload, len, &sb, &n);
        if (rc <= 0) {
            /* nothing to forward: the position still moves past it */
            u->records_skipped += rc < 0;
            if (u->qn)
                u->q[u->qn - 1].end = waltail_tell(u->tail);
            else {
                u->idle_end = waltail_tell(u->tail);
                u->idle_dirty = true;
            }
            continue;
        }
        u->q[u->qn++] = (upstream_batch_t){.seq = u->next_seq++,
                                           .msg = sb.data, /* the sbuffer's malloc: ours */
                                           .len = sb.size,
                                           .nsamples = n,
                                           .end = waltail_tell(u->tail)};
        u->idle_dirty = false;
        return true;
    }
    msgpack_sbuffer_destroy(&sb);
    return false;
}

/* ---- the delivery engine's source ----------------------------------------- */

static bool src_next(void *arg, bool first, uint64_t after, uint64_t *ret_seq)
{
    upstream_t *u = arg;
    if (first) {
        for (size_t i = 0; i < u->qn; i++)
            if (!u->q[i].settled) {
                *ret_seq = u->q[i].seq;
                return true;
            }
        after = u->next_seq - 1;
    }
    if (batch_find(u, after + 1)) {
        *ret_seq = after + 1;
        return true;
    }
    if (after + 1 == u->next_seq && read_one(u)) {
        *ret_seq = after + 1;
        return true;
    }
    return false;
}

static int src_load(void *arg, uint64_t seq, void **ret_msg, size_t *ret_len)
{
    upstream_t *u = arg;
    upstream_batch_t *b = batch_find(u, seq);
    if (!b)
        return DELIVERY_LOST; /* cannot happen: the engine asks only for what next gave */
    *ret_msg = xmalloc(b->len);
    memcpy(*ret_msg, b->msg, b->len);
    *ret_len = b->len;
    return 0;
}

/* Names the firm of each refused sample: the province's refusals must be
 * seen, never silently dropped. */
static void log_refusals(upstream_t *u, const upstream_batch_t *b, const proto_ack_t *ack)
{
    char err[PROTO_ERRLEN];
    proto_batch_t dec = {.samples = u->in, .cap = PROTO_MAX_SAMPLES};
    bool ok = proto_batch_decode(b->msg, b->len, &dec, err, sizeof err) == PROTO_OK;
    for (uint32_t i = 0; i < ack->nrefused; i++) {
        const proto_refusal_t *r = &ack->refused[i];
        if (ok && r->index < dec.nsamples)
            log_warnx("upstream: the province refused seq %" PRIu64 " sample %" PRIu32
                      " (firm '%.*s', metric '%.*s'): %s: %.*s",
                      b->seq, r->index, PROTO_STR_ARG(dec.samples[r->index].firm),
                      PROTO_STR_ARG(dec.samples[r->index].metric),
                      proto_status_name((proto_status_t)r->status), PROTO_STR_ARG(r->reason));
        else
            log_warnx("upstream: the province refused seq %" PRIu64 " sample %" PRIu32 ": %s: %.*s",
                      b->seq, r->index, proto_status_name((proto_status_t)r->status),
                      PROTO_STR_ARG(r->reason));
    }
}

static int src_settled(void *arg, uint64_t seq, const proto_ack_t *ack, bool forgotten, bool lost)
{
    upstream_t *u = arg;
    upstream_batch_t *b = batch_find(u, seq);
    (void)lost;
    if (!b || b->settled)
        return 0;
    b->settled = true;
    u->last_ack_wall_ms = clock_wall_ms();
    u->batches_acked++;
    if (forgotten)
        return 0;
    if (ack->status == PROTO_STATUS_OK || ack->status == PROTO_STATUS_PARTIAL) {
        u->samples_acked += ack->accepted;
        u->samples_refused += ack->nrefused;
        if (ack->nrefused)
            log_refusals(u, b, ack);
        return 0;
    }
    /* refused for good as a whole: settled, counted, said; the stream goes on */
    u->batches_refused++;
    u->samples_refused += b->nsamples;
    log_error("upstream: the province refused seq %" PRIu64 " (%" PRIu32 " samples) for good: "
              "%s: %.*s",
              seq, b->nsamples, proto_status_name((proto_status_t)ack->status),
              PROTO_STR_ARG(ack->reason));
    return 0;
}

/* ---- the cursor -------------------------------------------------------------- */

/* Commits the position after the settled head of the queue, with the seq the
 * next record gets, and drops those batches. */
static void commit(upstream_t *u, bool now)
{
    int64_t t = clock_monotonic_ms();
    if (!now && t - u->last_commit_ms < COMMIT_EVERY_MS)
        return;
    size_t k = 0;
    while (k < u->qn && u->q[k].settled)
        k++;
    waltail_pos_t pos;
    uint64_t seq;
    if (k == 0 && !(u->qn == 0 && u->idle_dirty))
        return;
    if (k == u->qn && u->idle_dirty) {
        pos = u->idle_end;
        seq = u->next_seq;
    } else {
        pos = u->q[k - 1].end;
        seq = u->q[k - 1].seq + 1;
    }
    char note[96], err[512];
    snprintf(note, sizeof note, "epoch=%" PRIu64 " seq=%" PRIu64, u->epoch, seq);
    if (waltail_commit_note(u->tail, pos, note, err, sizeof err) != 0) {
        log_error("upstream: cannot save the position: %s (kept in memory; tried again)", err);
        return;
    }
    u->last_commit_ms = t;
    for (size_t i = 0; i < k; i++)
        free(u->q[i].msg);
    memmove(u->q, u->q + k, (u->qn - k) * sizeof u->q[0]);
    u->qn -= k;
    if (u->qn == 0)
        u->idle_dirty = false;
    server_wal_hold(u->srv, HOLD_NAME, waltail_segment(u->tail));
}

/* ---- the timer ----------------------------------------------------------------- */

/* Only what the WAL has made durable is forwarded: a record a power cut
 * could take back must not be at the province already (the agent would
 * send it again, and the city would forward it under a new seq). */
static void set_limit(upstream_t *u)
{
    const wal_t *w = &u->srv->wal;
    if (u->srv->cfg->fsync_policy == WAL_FSYNC_NEVER || w->fd < 0)
        return; /* nothing is ever fsynced: the page cache is all there is */
    uint64_t unsynced = w->pos - w->synced;
    waltail_pos_t lim;
    if (unsynced + WAL_SEG_HEADER <= w->seg_bytes)
        lim = (waltail_pos_t){w->segment, w->seg_bytes - unsynced};
    else
        lim = (waltail_pos_t){w->segment - 1, 0}; /* the retired segment's fsync runs */
    waltail_limit(u->tail, lim);
}

static int engine_open(upstream_t *u)
{
    delivery_opts_t o = {.endpoints = u->endpoints,
                         .nendpoints = u->nendpoints,
                         .key = u->curve ? &u->key : NULL,
                         .agent_id = u->agent_id,
                         .epoch = u->epoch,
                         .timeout_ms = u->timeout_ms,
                         .retries = 0,
                         .window = u->window,
                         .verbose = false,
                         .prog = "clustermond: upstream"};
    delivery_source_t src = {.next = src_next, .load = src_load, .settled = src_settled, .arg = u};
    /* what was in flight goes again, from the oldest unsettled batch */
    return delivery_open(u->srv->zctx, &o, &src, &u->dl);
}

static void tick_cb(uv_timer_t *h)
{
    upstream_t *u = h->data;
    int64_t now = clock_monotonic_ms();
    set_limit(u);
    if (!u->dl && now >= u->reopen_ms) {
        int rc = engine_open(u);
        if (rc != 0) {
            u->reopen_ms = now + u->backoff_ms;
            u->backoff_ms = u->backoff_ms * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : u->backoff_ms * 2;
            return;
        }
    }
    if (u->dl) {
        int rc = delivery_step(u->dl, 0);
        if (rc != 0) {
            /* The engine gave up (an internal error at the province, a
             * conflict on the agent id, a reset province): start it again
             * later from the oldest unsettled batch, with the same seqs. */
            log_warnx("upstream: delivery to %s stopped (status %d); starting again in %" PRId64
                      " ms",
                      delivery_endpoint(u->dl), rc, u->backoff_ms);
            delivery_close(&u->dl);
            u->engine_restarts++;
            u->reopen_ms = now + u->backoff_ms;
            u->backoff_ms = u->backoff_ms * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : u->backoff_ms * 2;
        } else if (u->batches_acked) {
            u->backoff_ms = REOPEN_MIN_MS;
        }
    } else if (u->qn < UPSTREAM_QUEUE) {
        read_one(u); /* read ahead meanwhile: the lag figures count it */
    }
    commit(u, false);
}

/* ---- start and stop ------------------------------------------------------------ */

static char **split_list(const char *s, size_t *ret_n)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    for (const char *q = s; *q;) {
        q += strspn(q, " \t,");
        size_t len = strcspn(q, ", \t");
        if (len) {
            xgrow(&v, &cap, n + 1, sizeof *v);
            v[n++] = xstrndup(q, len);
        }
        q += len;
    }
    *ret_n = n;
    return v;
}

int upstream_start(upstream_t *u, struct server *srv, char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    memset(u, 0, sizeof *u);
    u->srv = srv;
    if (!cfg->up_endpoints)
        return 0;
    if (cfg->up_server_key) {
        if (clientkey_init(&u->key, cfg->up_server_key, cfg->up_key, err, errlen) != 0)
            return -1;
        u->curve = true;
    }
    if (fileio_mkdir_p(cfg->up_state_dir, 0700, "upstream.state_dir", err, errlen) != 0)
        return -1;
    size_t n = strlen(cfg->up_state_dir) + sizeof "/cursor";
    u->cursor_path = xmalloc(n);
    snprintf(u->cursor_path, n, "%s/cursor", cfg->up_state_dir);
    if (waltail_open(&u->tail, cfg->state_dir, u->cursor_path, err, errlen) != 0)
        return -1;
    const char *note = waltail_note(u->tail);
    if (*note) {
        if (sscanf(note, "epoch=%" SCNu64 " seq=%" SCNu64, &u->epoch, &u->next_seq) != 2 ||
            u->epoch == 0 || u->next_seq == 0) {
            snprintf(err, errlen, "%s: the note '%s' is not \"epoch=E seq=S\"", u->cursor_path,
                     note);
            return -1;
        }
    } else {
        /* A new stream: its epoch is saved before anything is sent, so a
         * restart can never start a second stream over the same records. */
        u->epoch = (uint64_t)clock_wall_ms();
        u->next_seq = 1;
        char text[96];
        snprintf(text, sizeof text, "epoch=%" PRIu64 " seq=1", u->epoch);
        if (waltail_commit_note(u->tail, waltail_committed(u->tail), text, err, errlen) != 0)
            return -1;
    }
    u->endpoints = split_list(cfg->up_endpoints, &u->nendpoints);
    if (cfg->up_metrics && strcmp(cfg->up_metrics, "all") != 0)
        u->metrics = split_list(cfg->up_metrics, &u->nmetrics);
    u->agent_id = xstrdup(cfg->up_agent_id);
    u->timeout_ms = (long)cfg->up_timeout_ms;
    u->window = (long)cfg->up_window;
    u->city = xstrdup(cfg->up_city);
    u->in = xcalloc(PROTO_MAX_SAMPLES, sizeof *u->in);
    u->out = xcalloc(PROTO_MAX_SAMPLES, sizeof *u->out);
    u->backoff_ms = REOPEN_MIN_MS;
    server_wal_hold(srv, HOLD_NAME, waltail_segment(u->tail));
    uv_timer_init(&srv->loop, &u->timer);
    u->timer.data = u;
    uv_timer_start(&u->timer, tick_cb, TICK_MS, TICK_MS);
    u->on = true;
    waltail_pos_t c = waltail_committed(u->tail);
    log_info("upstream: city %s forwards to %s as agent %s, stream %" PRIu64 " from seq %" PRIu64
             " (WAL segment %" PRIu64 " offset %" PRIu64 ")%s",
             u->city, cfg->up_endpoints, u->agent_id, u->epoch, u->next_seq, c.segment, c.offset,
             u->curve ? ", CURVE" : "");
    return 0;
}

void upstream_stop(upstream_t *u)
{
    if (!u->on)
        return;
    if (u->dl) {
        delivery_step(u->dl, 0); /* answers already here count */
        delivery_close(&u->dl);
    }
    commit(u, true);
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, NULL);
}

void upstream_free(upstream_t *u)
{
    if (!u->srv)
        return;
    delivery_close(&u->dl);
    waltail_close(u->tail);
    for (size_t i = 0; i < u->qn; i++)
        free(u->q[i].msg);
    for (size_t i = 0; i < u->nendpoints; i++)
        free(u->endpoints[i]);
    free(u->endpoints);
    for (size_t i = 0; i < u->nmetrics; i++)
        free(u->metrics[i]);
    free(u->metrics);
    free(u->agent_id);
    free(u->city);
    free(u->cursor_path);
    free(u->in);
    free(u->out);
    if (u->curve)
        clientkey_clear(&u->key);
    memset(u, 0, sizeof *u);
}

/* ---- figures ------------------------------------------------------------------- */

/* WAL bytes from the committed position to the end of what is written. */
static uint64_t bytes_behind(const upstream_t *u)
{
    const wal_t *w = &u->srv->wal;
    waltail_pos_t c = waltail_committed(u->tail);
    if (c.segment >= w->segment)
        return w->seg_bytes > c.offset ? w->seg_bytes - c.offset : 0;
    uint64_t total = w->seg_bytes - WAL_SEG_HEADER;
    for (uint64_t s = c.segment; s < w->segment; s++) {
        char path[4096];
        struct stat sb;
        wal_segment_path(w->dir, s, path, sizeof path);
        if (stat(path, &sb) != 0)
            continue;
        uint64_t from = s == c.segment ? c.offset : WAL_SEG_HEADER;
        if ((uint64_t)sb.st_size > from)
            total += (uint64_t)sb.st_size - from;
    }
    return total;
}

static void family(metrics_text_t *o, const char *name, const char *type, const char *help)
{
    metrics_text_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void upstream_metrics(const server_t *srv, metrics_text_t *o)
{
    int64_t now_ms = (int64_t)uv_now(&srv->loop);
    const upstream_t *u = &srv->upstream;
    if (u->on) {
        uint64_t unacked = 0;
        for (size_t i = 0; i < u->qn; i++)
            unacked += !u->q[i].settled;
        struct {
            const char *name, *type, *help;
            double v;
        } const rows[] = {
            {"clustermon_upstream_bytes_behind", "gauge",
             "WAL bytes after the forwarder's committed position (0: the province has it all)",
             (double)bytes_behind(u)},
            {"clustermon_upstream_batches_unacked", "gauge",
             "batches read from the WAL and not yet settled by the province", (double)unacked},
            {"clustermon_upstream_next_seq", "gauge", "the seq the next forwarded batch gets",
             (double)u->next_seq},
            {"clustermon_upstream_last_ack_timestamp_seconds", "gauge",
             "when the province last settled a batch (0: not since start)",
             (double)u->last_ack_wall_ms / 1000.0},
            {"clustermon_upstream_batches_acked_total", "counter",
             "batches the province settled since start", (double)u->batches_acked},
            {"clustermon_upstream_samples_acked_total", "counter",
             "samples the province applied since start", (double)u->samples_acked},
            {"clustermon_upstream_samples_refused_total", "counter",
             "samples the province refused since start (logged with their firm)",
             (double)u->samples_refused},
            {"clustermon_upstream_stuck", "gauge",
             "1 while the WAL cannot be read on (see the log)", (double)u->stuck},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            family(o, rows[i].name, rows[i].type, rows[i].help);
            metrics_text_printf(o, "%s{city=\"", rows[i].name);
            exposition_label_escape(o, u->city);
            metrics_text_printf(o, "\"} %.15g\n", rows[i].v);
        }
    }
    /* the province: each city's stream, found by its agent id */
    const registry_t *reg = srv->reg;
    const streams_t *st = &srv->ingest.streams;
    if (!reg->ncities || !st->slots)
        return;
    family(o, "clustermon_city_last_seq", "gauge",
           "the last seq settled of the stream whose agent id is the city's (its forwarder)");
    for (size_t i = 0; i <= st->mask; i++) {
        const stream_t *s = &st->slots[i];
        if (!s->key || !s->epoch || registry_city_find(reg, s->agent, strlen(s->agent)) < 0)
            continue;
        metrics_text_printf(o, "clustermon_city_last_seq{city=\"");
        exposition_label_escape(o, s->agent);
        metrics_text_printf(o, "\"} %" PRIu64 "\n", s->next - 1);
    }
    family(o, "clustermon_city_last_batch_age_seconds", "gauge",
           "seconds since the city's forwarder last sent a batch");
    for (size_t i = 0; i <= st->mask; i++) {
        const stream_t *s = &st->slots[i];
        if (!s->key || !s->epoch || registry_city_find(reg, s->agent, strlen(s->agent)) < 0)
            continue;
        metrics_text_printf(o, "clustermon_city_last_batch_age_seconds{city=\"");
        exposition_label_escape(o, s->agent);
        metrics_text_printf(o, "\"} %.3f\n", (double)(now_ms - s->last_ms) / 1000.0);
    }
}
