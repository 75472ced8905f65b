/* remotewrite.c -- see remotewrite.h. */
#include "daemon/remotewrite.h"

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
#include "proto/fileio.h"
#include "proto/hash.h"

#define HOLD_NAME "remote_write"
#define TICK_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define IDLE_COMMIT_MS 5000
#define MAX_REVISION 59999 /* the N-th statement at start + N ms stays under a minute */

/* ---- revisions ------------------------------------------------------------ */

static size_t rev_slot(const remotewrite_t *rw, const char *key)
{
    size_t i = (size_t)hash_fnv1a(key, strlen(key)) & rw->mask;
    while (rw->revs[i].key && strcmp(rw->revs[i].key, key) != 0)
        i = (i + 1) & rw->mask;
    return i;
}

static void rev_grow(remotewrite_t *rw)
{
    size_t oldcap = rw->revs ? rw->mask + 1 : 0;
    if (rw->revs && (rw->nrevs + 1) * 4 < oldcap * 3)
        return;
    rw_rev_t *old = rw->revs;
    size_t cap = oldcap ? oldcap * 2 : 1024;
    rw->revs = xcalloc(cap, sizeof *rw->revs);
    rw->mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            rw->revs[rev_slot(rw, old[i].key)] = old[i];
    free(old);
}

/* How many times key was stated before; counts this statement. */
static uint32_t rev_next(remotewrite_t *rw, const char *key)
{
    rev_grow(rw);
    size_t i = rev_slot(rw, key);
    if (!rw->revs[i].key) {
        rw->revs[i].key = xstrdup(key);
        rw->nrevs++;
    }
    return rw->revs[i].count++;
}

/* Writes the revisions with the position they are current to, atomically. */
static int rev_save(remotewrite_t *rw, waltail_pos_t pos, char *err, size_t errlen)
{
    metrics_text_t t = {0};
    metrics_text_printf(&t, "remote_write 1 %" PRIu64 " %" PRIu64 "\n", pos.segment, pos.offset);
    for (size_t i = 0; rw->revs && i <= rw->mask; i++)
        if (rw->revs[i].key)
            metrics_text_printf(&t, "%" PRIu32 " %s\n", rw->revs[i].count, rw->revs[i].key);
    int rc = fileio_write_atomic(rw->rev_path, t.data ? t.data : "", t.len, 0600, err, errlen);
    metrics_text_free(&t);
    return rc;
}

/* Loads the revisions file, if there is one, into the table; *ret_pos is
 * the position it is current to (*ret_found false without a file). */
static int rev_load(remotewrite_t *rw, waltail_pos_t *ret_pos, bool *ret_found, char *err,
                    size_t errlen)
{
    *ret_found = false;
    FILE *f = fopen(rw->rev_path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", rw->rev_path, strerror(errno));
        return -1;
    }
    char line[512];
    int ln = 1;
    if (!fgets(line, sizeof line, f) || sscanf(line, "remote_write 1 %" SCNu64 " %" SCNu64,
                                               &ret_pos->segment, &ret_pos->offset) != 2) {
        snprintf(err, errlen, "%s:1: not \"remote_write 1 SEGMENT OFFSET\"", rw->rev_path);
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *nl = strchr(line, '\n');
        char *sp = strchr(line, ' ');
        uint32_t count;
        if (!nl || !sp || sscanf(line, "%" SCNu32, &count) != 1) {
            snprintf(err, errlen, "%s:%d: not \"COUNT KEY\"", rw->rev_path, ln);
            fclose(f);
            return -1;
        }
        *nl = '\0';
        rev_grow(rw);
        size_t i = rev_slot(rw, sp + 1);
        if (!rw->revs[i].key) {
            rw->revs[i].key = xstrdup(sp + 1);
            rw->nrevs++;
        }
        rw->revs[i].count = count;
    }
    fclose(f);
    *ret_found = true;
    return 0;
}

/* ---- WAL records into samples ------------------------------------------------ */

static bool pos_before(waltail_pos_t a, waltail_pos_t b)
{
    return a.segment < b.segment || (a.segment == b.segment && a.offset < b.offset);
}

/* Appends the applied samples of one WAL record (RECORD_BATCH whole,
 * RECORD_PARTIAL but for its refused samples) of the sent metrics to the
 * batch, each amount with its statement's revision. */
static void convert(remotewrite_t *rw, const unsigned char *p, size_t len)
{
    if (len < 2 || (p[0] != RECORD_BATCH && p[0] != RECORD_PARTIAL) || len < 2u + p[1])
        return;
    size_t off = 2u + p[1];
    const unsigned char *codes = NULL;
    uint32_t ncodes = 0;
    if (p[0] == RECORD_PARTIAL) {
        if (len < off + 4)
            return;
        ncodes = bytes_get_le32(p + off);
        codes = p + off + 4;
        off += 4 + 4 * (size_t)ncodes;
        if (ncodes > PROTO_MAX_SAMPLES || len < off)
            return;
    }
    char err[PROTO_ERRLEN];
    proto_batch_t in = {.samples = rw->in, .cap = PROTO_MAX_SAMPLES};
    if (proto_batch_decode(p + off, len - off, &in, err, sizeof err) != PROTO_OK) {
        log_warnx("remote_write: a journaled batch does not decode (%s): not sent", err);
        return;
    }
    const server_t *srv = rw->srv;
    const config_t *cfg = srv->cfg;
    uint32_t k = 0;
    for (uint32_t i = 0; i < in.nsamples; i++) {
        while (k < ncodes && (bytes_get_le32(codes + 4 * (size_t)k) >> 8) < i)
            k++;
        if (k < ncodes && (bytes_get_le32(codes + 4 * (size_t)k) >> 8) == i)
            continue; /* refused by the daemon: not in its figures */
        const proto_sample_t *s = &in.samples[i];
        if (!config_remote_write_sends(cfg, s->metric.ptr, s->metric.len))
            continue;
        int firm = registry_find_any(srv->reg, s->firm.ptr, s->firm.len);
        if (firm < 0)
            continue; /* a firm no longer in the registry: no labels to give it */
        const firm_t *f = &srv->reg->firms[firm];
        char metric[PROTO_MAX_ID_LEN + 1], period[PROTO_PERIOD_STRLEN];
        snprintf(metric, sizeof metric, "%.*s", PROTO_STR_ARG(s->metric));
        int64_t ts = s->ts_ms;
        double value = s->value;
        const char *kind = rwencode_period_kind(s->period);
        if (kind) {
            char key[2 * PROTO_MAX_ID_LEN + PROTO_PERIOD_STRLEN + 4];
            proto_period_format(s->period, period, sizeof period);
            snprintf(key, sizeof key, "%s\x1f%s\x1f%s", f->id, metric, period);
            uint32_t n = rev_next(rw, key);
            ts = rwencode_period_start_ms(s->period) + (n > MAX_REVISION ? MAX_REVISION : n);
            /* the daemon keeps amounts in milli-units: send what it keeps */
            value = (double)agg_to_milli(s->value) / 1000.0;
        }
        if (rw->n == rw->cap) {
            rw->cap = rw->cap ? rw->cap * 2 : 1024;
            rw->batch = xrealloc(rw->batch, rw->cap * sizeof *rw->batch);
        }
        rw_sample_t *o = &rw->batch[rw->n++];
        memset(o, 0, sizeof *o);
        rwencode_metric_name(metric, o->name, sizeof o->name);
        snprintf(o->firm, sizeof o->firm, "%s", f->id);
        snprintf(o->cluster, sizeof o->cluster, "%s", cfg->clusters[f->cluster].id);
        if (f->chain >= 0)
            snprintf(o->chain, sizeof o->chain, "%s", cfg->clusters[f->cluster].chains[f->chain]);
        if (f->city_id) /* a province's registry says each firm's city */
            snprintf(o->city, sizeof o->city, "%s", f->city_id);
        snprintf(o->metric, sizeof o->metric, "%s", metric);
        o->period = kind;
        o->value = value;
        o->ts_ms = ts;
    }
}

static void set_stuck(remotewrite_t *rw, const char *err)
{
    if (!rw->stuck)
        log_error("remote_write: cannot read the WAL on: %s; sending is stopped here until this "
                  "is repaired",
                  err);
    rw->stuck = true;
}

/* Reads WAL records into the batch until it holds batch_max samples or
 * nothing more is there. */
static void fill(remotewrite_t *rw)
{
    while (rw->n < rw->batch_max) {
        const void *payload;
        size_t len;
        char err[512];
        int rc = waltail_next(rw->tail, &payload, &len, err, sizeof err);
        if (rc < 0)
            set_stuck(rw, err);
        if (rc <= 0)
            break;
        convert(rw, payload, len);
        rw->batch_end = waltail_tell(rw->tail);
    }
}

/* The batch is in: revisions, then the cursor, made durable. */
static void commit(remotewrite_t *rw)
{
    char err[512];
    if (rev_save(rw, rw->batch_end, err, sizeof err) != 0 ||
        waltail_commit_to(rw->tail, rw->batch_end, err, sizeof err) != 0) {
        log_error("remote_write: %s (retried at the next batch)", err);
        return;
    }
    server_wal_hold(rw->srv, HOLD_NAME, waltail_segment(rw->tail));
}

/* ---- the HTTP request ----------------------------------------------------------- */

static void send_next(remotewrite_t *rw);

static void close_cb(uv_handle_t *h)
{
    remotewrite_t *rw = h->data;
    rw->state = RW_IDLE;
    if (rw->stopping)
        return;
    /* the answer (or the failure) of the request that just ended */
    size_t lo = rw->stack[rw->nstack - 1].lo, hi = rw->stack[rw->nstack - 1].hi;
    int status = rw->error[0] ? 0 : rw->parser.status_code;
    int64_t now = (int64_t)uv_now(&rw->srv->loop);
    if (status >= 200 && status < 300) {
        rw->samples_sent += hi - lo;
        rw->nstack--;
        rw->backoff_ms = BACKOFF_MIN_MS;
        if (rw->nstack == 0) {
            commit(rw);
            rw->n = 0;
        }
    } else if (status >= 400 && status < 500 && status != 429) {
        rw->nstack--;
        if (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2; /* halves until the refused sample is alone */
            rw->stack[rw->nstack].lo = mid;
            rw->stack[rw->nstack++].hi = hi;
            rw->stack[rw->nstack].lo = lo;
            rw->stack[rw->nstack++].hi = mid;
        } else {
            const rw_sample_t *s = &rw->batch[lo];
            rw->samples_refused++;
            log_warnx("remote_write: %s refused %s{firm=\"%s\",cluster=\"%s\",metric=\"%s\"%s%s%s} "
                      "%.17g @%" PRId64 " (HTTP %d: %.*s): not sent",
                      rw->url.host, s->name, s->firm, s->cluster, s->metric,
                      s->period ? ",period=\"" : "", s->period ? s->period : "",
                      s->period ? "\"" : "", s->value, s->ts_ms, status, (int)rw->bodylen,
                      rw->body);
            if (rw->nstack == 0) {
                commit(rw);
                rw->n = 0;
            }
        }
    } else {
        rw->retries++;
        if (rw->backoff_ms <= BACKOFF_MIN_MS || rw->backoff_ms >= BACKOFF_MAX_MS)
            log_warnx("remote_write: %s: %s; retrying in %" PRId64 " ms", rw->url.host,
                      status ? "the receiver answered HTTP 5xx/429" : rw->error, rw->backoff_ms);
        rw->retry_at_ms = now + rw->backoff_ms;
        rw->backoff_ms = rw->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rw->backoff_ms * 2;
    }
    free(rw->req);
    rw->req = NULL;
    if (now >= rw->retry_at_ms)
        send_next(rw);
}

/* Ends the request: closes the connection (close_cb decides what next). */
static void finish(remotewrite_t *rw, const char *error)
{
    if (rw->state == RW_CLOSING)
        return;
    if (error && !rw->error[0])
        snprintf(rw->error, sizeof rw->error, "%s", error);
    rw->state = RW_CLOSING;
    uv_close((uv_handle_t *)&rw->tcp, close_cb);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    remotewrite_t *rw = p->data;
    size_t room = sizeof rw->body - rw->bodylen;
    size_t n = len < room ? len : room;
    memcpy(rw->body + rw->bodylen, at, n);
    rw->bodylen += n;
    /* a body is a reason: one line in the log */
    for (size_t i = 0; i < rw->bodylen; i++)
        if (rw->body[i] == '\n' || rw->body[i] == '\r')
            rw->body[i] = ' ';
    return 0;
}

static int on_complete(http_parser *p)
{
    remotewrite_t *rw = p->data;
    rw->complete = true;
    return 0;
}

static const http_parser_settings settings = {
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    remotewrite_t *rw = h->data;
    (void)suggested;
    buf->base = rw->rbuf; /* read_cb consumes it before the next read */
    buf->len = sizeof rw->rbuf;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    remotewrite_t *rw = s->data;
    if (nread == UV_EOF || nread < 0) {
        http_parser_execute(&rw->parser, &settings, NULL, 0);
        if (!rw->complete && !rw->error[0])
            snprintf(rw->error, sizeof rw->error, "the connection closed before a whole answer%s%s",
                     nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
        finish(rw, NULL);
        return;
    }
    size_t done = http_parser_execute(&rw->parser, &settings, buf->base, (size_t)nread);
    if (done != (size_t)nread) {
        snprintf(rw->error, sizeof rw->error, "a malformed HTTP answer (%s)",
                 http_errno_description(HTTP_PARSER_ERRNO(&rw->parser)));
        finish(rw, NULL);
        return;
    }
    if (rw->complete)
        finish(rw, NULL);
}

static void write_cb(uv_write_t *w, int status)
{
    remotewrite_t *rw = w->data;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "write: %s", uv_strerror(status));
        finish(rw, why);
        return;
    }
    uv_read_start((uv_stream_t *)&rw->tcp, alloc_cb, read_cb);
}

static void connect_cb(uv_connect_t *c, int status)
{
    remotewrite_t *rw = c->data;
    if (rw->state == RW_CLOSING)
        return;
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof why, "connect to %.64s:%s: %s", rw->url.host, rw->url.port,
                 uv_strerror(status));
        finish(rw, why);
        return;
    }
    rw->state = RW_SENDING;
    uv_buf_t b = uv_buf_init(rw->req, (unsigned)rw->reqlen);
    rw->wreq.data = rw;
    int rc = uv_write(&rw->wreq, (uv_stream_t *)&rw->tcp, &b, 1, write_cb);
    if (rc < 0)
        finish(rw, uv_strerror(rc));
}

static void resolved_cb(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    remotewrite_t *rw = g->data;
    if (rw->stopping) {
        uv_freeaddrinfo(res);
        rw->state = RW_IDLE;
        return;
    }
    uv_tcp_init(&rw->srv->loop, &rw->tcp);
    rw->tcp.data = rw;
    if (status < 0 || !res) {
        char why[160];
        snprintf(why, sizeof why, "resolve %.64s: %s", rw->url.host, uv_strerror(status));
        uv_freeaddrinfo(res);
        rw->state = RW_CONNECTING;
        finish(rw, why);
        return;
    }
    rw->state = RW_CONNECTING;
    rw->conn.data = rw;
    int rc = uv_tcp_connect(&rw->conn, &rw->tcp, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "connect to %.64s:%s: %s", rw->url.host, rw->url.port,
                 uv_strerror(rc));
        finish(rw, why);
    }
}

/* Starts the request for the range on top of the stack, if there is one. */
static void send_next(remotewrite_t *rw)
{
    if (rw->state != RW_IDLE || rw->stopping || !rw->nstack)
        return;
    size_t lo = rw->stack[rw->nstack - 1].lo, hi = rw->stack[rw->nstack - 1].hi;
    void *body;
    size_t blen;
    char err[256], head[2048];
    if (rwencode_request(rw->batch + lo, hi - lo, &body, &blen, err, sizeof err) != 0) {
        log_error("remote_write: %s", err);
        return;
    }
    int hl = rwencode_head(head, sizeof head, &rw->url, rw->auth, blen);
    if (hl < 0) {
        free(body);
        log_error("remote_write: the request head does not fit in %zu bytes", sizeof head);
        return;
    }
    rw->req = xmalloc((size_t)hl + blen);
    memcpy(rw->req, head, (size_t)hl);
    memcpy(rw->req + hl, body, blen);
    rw->reqlen = (size_t)hl + blen;
    free(body);
    rw->requests++;
    rw->error[0] = '\0';
    rw->bodylen = 0;
    rw->complete = false;
    http_parser_init(&rw->parser, HTTP_RESPONSE);
    rw->parser.data = rw;
    rw->deadline_ms = (int64_t)uv_now(&rw->srv->loop) + (int64_t)rw->srv->cfg->rw_timeout_ms;
    rw->state = RW_RESOLVING;
    rw->gai.data = rw;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc =
        uv_getaddrinfo(&rw->srv->loop, &rw->gai, resolved_cb, rw->url.host, rw->url.port, &hints);
    if (rc < 0) {
        /* nothing to close yet: count it as a failed attempt at once */
        rw->state = RW_IDLE;
        rw->retries++;
        rw->retry_at_ms = (int64_t)uv_now(&rw->srv->loop) + rw->backoff_ms;
        free(rw->req);
        rw->req = NULL;
    }
}

static void tick_cb(uv_timer_t *t)
{
    remotewrite_t *rw = t->data;
    int64_t now = (int64_t)uv_now(&rw->srv->loop);
    if (rw->state != RW_IDLE) {
        if ((rw->state == RW_CONNECTING || rw->state == RW_SENDING) && now >= rw->deadline_ms) {
            char why[96];
            snprintf(why, sizeof why, "no answer within %.0f ms", rw->srv->cfg->rw_timeout_ms);
            finish(rw, why);
        }
        return;
    }
    if (now < rw->retry_at_ms)
        return;
    if (rw->nstack == 0) {
        if (rw->n == 0)
            fill(rw);
        if (rw->n == 0) {
            /* nothing to send: records with no samples (alerts, settles) move the
             * cursor too, at most every few seconds (the revisions are rewritten) */
            if (pos_before(waltail_committed(rw->tail), rw->batch_end) &&
                now - rw->idle_commit_ms >= IDLE_COMMIT_MS) {
                commit(rw);
                rw->idle_commit_ms = now;
            }
            rw->behind_since_ms = 0;
            return;
        }
        if (!rw->behind_since_ms)
            rw->behind_since_ms = clock_wall_ms();
        rw->stack[0].lo = 0;
        rw->stack[0].hi = rw->n;
        rw->nstack = 1;
    }
    send_next(rw);
}

/* ---- start, stop, figures ------------------------------------------------------ */

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* user:password, the password the file's first line. */
static int load_auth(remotewrite_t *rw, const config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->rw_user)
        return 0;
    FILE *f = fopen(cfg->rw_password_file, "r");
    char pw[256] = "";
    if (!f || !fgets(pw, sizeof pw, f)) {
        snprintf(err, errlen, "remote_write.password_file %s: %s", cfg->rw_password_file,
                 f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    size_t n = strlen(cfg->rw_user) + strlen(pw) + 2;
    rw->auth = xmalloc(n);
    snprintf(rw->auth, n, "%s:%s", cfg->rw_user, pw);
    explicit_bzero(pw, sizeof pw);
    return 0;
}

/* After a kill between the revisions file and the cursor: the records up to
 * the revisions' position are in the TSDB and counted already. */
static int catch_up(remotewrite_t *rw, waltail_pos_t to, char *err, size_t errlen)
{
    while (pos_before(waltail_tell(rw->tail), to)) {
        const void *payload;
        size_t len;
        int rc = waltail_next(rw->tail, &payload, &len, err, errlen);
        if (rc <= 0) {
            if (rc == 0)
                snprintf(err, errlen,
                         "%s: the WAL ends before the position the revisions file is current to",
                         rw->rev_path);
            return -1;
        }
        rw->skipped_at_start++;
    }
    return waltail_commit_to(rw->tail, to, err, errlen);
}

int remotewrite_start(remotewrite_t *rw, struct server *srv, char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    memset(rw, 0, sizeof *rw);
    rw->srv = srv;
    if (!cfg->rw_url)
        return 0;
    if (rwencode_url(cfg->rw_url, &rw->url, err, errlen) != 0 ||
        load_auth(rw, cfg, err, errlen) != 0 ||
        fileio_mkdir_p(cfg->rw_state_dir, 0700, "remote_write.state_dir", err, errlen) != 0)
        return -1;
    rw->cursor_path = path_in(cfg->rw_state_dir, "cursor");
    rw->rev_path = path_in(cfg->rw_state_dir, "revisions");
    if (waltail_open(&rw->tail, cfg->state_dir, rw->cursor_path, err, errlen) != 0)
        return -1;
    waltail_pos_t at;
    bool found;
    if (rev_load(rw, &at, &found, err, errlen) != 0)
        return -1;
    waltail_pos_t c = waltail_committed(rw->tail);
    if (found && pos_before(c, at) && catch_up(rw, at, err, errlen) != 0)
        return -1;
    if (found && pos_before(at, c))
        log_warnx("remote_write: %s is behind the cursor %s: restatements sent from here may "
                  "reuse a timestamp (and be refused)",
                  rw->rev_path, rw->cursor_path);
    rw->batch_end = waltail_committed(rw->tail);
    rw->in = xcalloc(PROTO_MAX_SAMPLES, sizeof *rw->in);
    rw->batch_max = (size_t)cfg->rw_batch;
    rw->backoff_ms = BACKOFF_MIN_MS;
    /* behind until the first tick has read the WAL to its end: a restart does
     * not know the receiver has everything (lag 0 before that would tell a
     * watcher "caught up" while the catch-up has not begun) */
    rw->behind_since_ms = clock_wall_ms();
    server_wal_hold(srv, HOLD_NAME, waltail_segment(rw->tail));
    uv_timer_init(&srv->loop, &rw->timer);
    rw->timer.data = rw;
    uv_timer_start(&rw->timer, tick_cb, TICK_MS, TICK_MS);
    rw->on = true;
    c = waltail_committed(rw->tail);
    log_info("remote_write: to %s, from WAL segment %" PRIu64 " offset %" PRIu64
             " (%zu periods stated before)",
             cfg->rw_url, c.segment, c.offset, rw->nrevs);
    return 0;
}

void remotewrite_stop(remotewrite_t *rw)
{
    if (!rw->on)
        return;
    rw->stopping = true;
    uv_timer_stop(&rw->timer);
    uv_close((uv_handle_t *)&rw->timer, NULL);
    if (rw->state == RW_RESOLVING)
        uv_cancel((uv_req_t *)&rw->gai);
    else if (rw->state == RW_CONNECTING || rw->state == RW_SENDING) {
        rw->state = RW_CLOSING;
        uv_close((uv_handle_t *)&rw->tcp, close_cb);
    }
    rw->on = false;
}

void remotewrite_free(remotewrite_t *rw)
{
    if (!rw->srv)
        return;
    waltail_close(rw->tail);
    for (size_t i = 0; rw->revs && i <= rw->mask; i++)
        free(rw->revs[i].key);
    free(rw->revs);
    free(rw->batch);
    free(rw->in);
    free(rw->req);
    free(rw->cursor_path);
    free(rw->rev_path);
    if (rw->auth)
        explicit_bzero(rw->auth, strlen(rw->auth));
    free(rw->auth);
    memset(rw, 0, sizeof *rw);
}

static void family(metrics_text_t *o, const char *name, const char *type, const char *help)
{
    metrics_text_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void remotewrite_metrics(const server_t *srv, metrics_text_t *o)
{
    const remotewrite_t *rw = &srv->remote_write;
    if (!rw->srv || !rw->tail)
        return;
    int64_t now = clock_wall_ms();
    struct {
        const char *name, *type, *help;
        double v;
    } const rows[] = {
        {"clustermon_remote_write_samples_sent_total", "counter",
         "samples the receiver took (2xx) since start", (double)rw->samples_sent},
        {"clustermon_remote_write_samples_refused_total", "counter",
         "samples the receiver refused alone with a 4xx since start (logged with their series)",
         (double)rw->samples_refused},
        {"clustermon_remote_write_retries_total", "counter",
         "requests sent again after a 5xx, a 429, a connection error or a timeout",
         (double)rw->retries},
        {"clustermon_remote_write_requests_total", "counter", "requests started since start",
         (double)rw->requests},
        {"clustermon_remote_write_lag_seconds", "gauge",
         "how long the receiver has been behind the WAL (0: it has everything)",
         rw->behind_since_ms ? (double)(now - rw->behind_since_ms) / 1000.0 : 0.0},
        {"clustermon_remote_write_pending_samples", "gauge",
         "samples read from the WAL and not yet taken by the receiver", (double)rw->n},
        {"clustermon_remote_write_stuck", "gauge",
         "1 while the WAL cannot be read on (see the log)", (double)rw->stuck},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        family(o, rows[i].name, rows[i].type, rows[i].help);
        metrics_text_printf(o, "%s %.15g\n", rows[i].name, rows[i].v);
    }
}
