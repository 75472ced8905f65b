/*
 * metrics.c -- see metrics.h: the daemon's own measurements (peers, rate,
 * lag), the counter table status and /metrics share, and metrics_collect,
 * the one place that reads the server for /metrics. The text format is
 * exposition.c's.
 */
#include "daemon/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/exposition.h"
#include "daemon/log.h"
#include "daemon/query.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

/* ---- text ----------------------------------------------------------------- */

void metrics_text_printf(metrics_text_t *t, const char *fmt, ...)
{
    for (;;) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t need = t->len + (size_t)n + 1;
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < need)
            cap *= 2;
        t->data = xrealloc(t->data, cap);
        t->cap = cap;
    }
}

void metrics_text_free(metrics_text_t *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* ---- peers: zmq_socket_monitor ------------------------------------------- */

const char *metrics_sock_name(metrics_sock_t s)
{
    static const char *const names[METRICS_NSOCKS] = {"ingest", "alerts", "control"};
    return (unsigned)s < METRICS_NSOCKS ? names[s] : "?";
}

/* A monitor message: [u16 event, u32 value][endpoint]. */
static bool monitor_message(zpoll_t *zp)
{
    metrics_peers_t *p = zp->data;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&msg) >= 6) {
        memcpy(&event, zmq_msg_data(&msg), sizeof event);
        memcpy(&value, (const char *)zmq_msg_data(&msg) + 2, sizeof value);
    }
    bool more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    while (more) { /* the endpoint frame: not needed */
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0)
            more = false;
        else
            more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
    }
    metrics_t *m = p->m;
    const char *name = metrics_sock_name((metrics_sock_t)(p - m->peers));
    int64_t now = (int64_t)uv_now(&m->srv->loop);
    if (event == ZMQ_EVENT_ACCEPTED) {
        p->peers++;
        p->accepted++;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        if (p->peers > 0)
            p->peers--;
        p->disconnects++;
        /* libzmq 4.3 reports a frame over ZMQ_MAXMSGSIZE only by closing the
         * connection: the event carries no reason, so the log names both
         * causes. An agent normally keeps its connection. */
        if (p == &m->peers[METRICS_SOCK_INGEST] &&
            log_throttle(&m->disconnect_log, now, 5, "sockets", "ingest disconnects"))
            log_info("ingest socket: a connection closed (%lld open, %llu closed since start): "
                     "the agent left, or sent a frame over %d bytes, which ZeroMQ drops with "
                     "the connection",
                     (long long)p->peers, (unsigned long long)p->disconnects, PROTO_MAX_MSG_SIZE);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        /* value is an errno: the peer went away mid-handshake (a port probe,
         * a client that gave up or timed out). Not a refusal. */
        p->handshakes_abandoned++;
        if (log_throttle(&m->abandon_log, now, 5, "sockets", "abandoned handshakes"))
            log_info("%s socket: a peer closed its connection before the ZeroMQ handshake "
                     "completed (%s): a port probe or a client that gave up",
                     name, value ? strerror((int)value) : "closed");
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        /* ZAP refusals (HANDSHAKE_FAILED_AUTH) are zap.c's to count and log;
         * value is a ZMQ_PROTOCOL_ERROR_* code */
        const char *why;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            why = m->srv->curve ? "a client without CURVE (no --server-key)"
                                : "a client using CURVE, but this daemon has no curve_secret_key";
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            why = "a client with the wrong server key";
        else
            why = "not ZeroMQ, or a ZeroMQ peer that broke the protocol";
        p->handshakes_failed++;
        if (log_throttle(&m->handshake_log, now, 5, "sockets", "failed handshakes"))
            log_warnx("%s socket: a connection failed its handshake (protocol error 0x%x): %s",
                      name, value, why);
    }
    return true;
}

int metrics_start(metrics_t *m, struct server *srv, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->srv = srv;
    void *targets[METRICS_NSOCKS] = {srv->ingest.zs.sock, srv->alerts.zs.sock,
                                     srv->control.zs.sock};
    for (int i = 0; i < METRICS_NSOCKS; i++) {
        metrics_peers_t *p = &m->peers[i];
        p->m = m;
        if (!targets[i])
            continue;
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://clustermond-monitor-%s", metrics_sock_name(i));
        int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
        if (zmq_socket_monitor(targets[i], ep, events) != 0) {
            /* peer counts are a convenience: the daemon serves without them */
            log_warnx("%s socket: cannot count peers: %s", metrics_sock_name(i),
                      zmq_strerror(errno));
            continue;
        }
        p->sock = zmq_socket(srv->zctx, ZMQ_PAIR);
        int linger = 0;
        if (!p->sock || zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
            zmq_connect(p->sock, ep) != 0) {
            snprintf(err, errlen, "monitor %s: %s", metrics_sock_name(i), zmq_strerror(errno));
            return -1;
        }
        int rc = zpoll_start(&srv->loop, &p->zp, p->sock, monitor_message, p);
        p->watching = true; /* even on failure: zpoll_close closes what it opened */
        if (rc < 0) {
            snprintf(err, errlen, "monitor %s: %s", metrics_sock_name(i), uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void poll_closed(zpoll_t *zp)
{
    metrics_peers_t *p = zp->data;
    if (p->sock)
        zmq_close(p->sock);
    p->sock = NULL;
    p->m->closing_polls--;
}

void metrics_close(metrics_t *m)
{
    for (int i = 0; i < METRICS_NSOCKS; i++) {
        metrics_peers_t *p = &m->peers[i];
        p->m = m;
        if (p->watching) {
            p->watching = false;
            m->closing_polls++;
            p->zp.data = p;
            zpoll_close(&p->zp, poll_closed);
        } else if (p->sock) {
            zmq_close(p->sock);
            p->sock = NULL;
        }
    }
}

uint64_t metrics_handshakes_failed(const metrics_t *m)
{
    uint64_t n = 0;
    for (int i = 0; i < METRICS_NSOCKS; i++)
        n += m->peers[i].handshakes_failed;
    return n;
}

/* ---- the counters status and /metrics share -------------------------------- */

#define GET(name, expr)                                                                            \
    static uint64_t get_##name(const server_t *srv)                                                \
    {                                                                                              \
        (void)srv;                                                                                 \
        return (uint64_t)(expr);                                                                   \
    }
GET(reload_last_ok, srv->reload.last_ok)
GET(reload_last_success_ms, srv->reload.last_success_ms)
GET(reloads_ok, srv->reloads)
GET(reloads_failed, srv->reload.failed)
GET(control_requests, srv->control.requests)
GET(control_max_request, CONTROL_MAX_REQUEST)
GET(control_oversize, srv->control.oversize)
GET(control_bad_args, srv->control.bad_args)
GET(control_bad_version, srv->control.bad_version)
GET(curve, srv->curve)
GET(keys, srv->keys ? srv->keys->nkeys : 0)
GET(zap_admitted, srv->zap.admitted)
GET(zap_refused, srv->zap.refused)
GET(handshakes_failed, metrics_handshakes_failed(&srv->metrics))
GET(control_denied, srv->control.denied)
GET(subs_admitted, srv->alerts.subs_admitted)
GET(subs_refused, srv->alerts.subs_refused)
GET(wal_segment, srv->wal.segment)
GET(wal_appends, srv->wal.appends)
GET(wal_bytes_written, srv->wal.bytes_written)
GET(wal_unsynced, srv->wal.pos - srv->wal.synced)
GET(wal_fsyncs, srv->wal.fsyncs)
GET(wal_fsync_avg_us, srv->wal.fsyncs ? srv->wal.fsync_ns_total / srv->wal.fsyncs / 1000 : 0)
GET(wal_fsync_max_us, srv->wal.fsync_ns_max / 1000)
GET(wal_append_failed, srv->wal.append_failed)
GET(wal_groups, srv->wal.groups)
GET(wal_group_failed, srv->wal.group_failed)
GET(alerts_held, srv->alerts.held)
GET(wal_full, srv->wal.full)
GET(wal_reserve, srv->wal.reserve_bytes)
GET(snap_written, srv->snap.written)
GET(snap_failed, srv->snap.failed)
GET(snap_last_segment, srv->snap.last_segment)
GET(snap_last_bytes, srv->snap.last_bytes)
GET(rec_snapshot_segment, srv->recovery.snapshot_segment)
GET(rec_snapshots_damaged, srv->recovery.snapshots_damaged)
GET(rec_headers_damaged, srv->recovery.wal.headers_damaged)
GET(rec_missing, srv->recovery.wal.missing)
GET(rec_records, srv->recovery.wal.records)
GET(rec_damaged, srv->recovery.wal.damaged)
GET(rec_bytes_skipped, srv->recovery.wal.bytes_skipped)
GET(rec_truncated, srv->recovery.wal.truncated)
GET(rec_ready_ms, srv->recovery.ready_ms)
GET(samples_applied, srv->stats.samples_applied)
GET(batches_ok, srv->stats.batches_ok)
GET(batches_duplicate, srv->stats.batches_duplicate)
GET(bad_envelopes, srv->stats.bad_envelopes)
GET(alerts_firing, srv->book.firing)
GET(nacks_malformed, srv->stats.nacks[PROTO_STATUS_MALFORMED])
GET(nacks_version, srv->stats.nacks[PROTO_STATUS_VERSION])
GET(nacks_too_large, srv->stats.nacks[PROTO_STATUS_TOO_LARGE])
#undef GET

#define U METRICS_U64
#define I METRICS_I64
#define B METRICS_BOOL
static const metrics_counter_t counters[] = {
    {"reload", "last_ok", "clustermon_config_last_reload_successful", "gauge",
     "Whether the last configuration reload worked (1) or was rejected (0).", NULL, NULL, B, 0,
     get_reload_last_ok},
    {"reload", "last_success_ms", "clustermon_config_last_reload_success_timestamp_seconds",
     "gauge",
     "When the configuration was last loaded successfully (start-up or reload), Unix time.", NULL,
     NULL, I, 1000, get_reload_last_success_ms},
    {"reload", "ok", "clustermon_config_reloads_total", "counter",
     "Configuration reloads, by result.", "result", "ok", U, 0, get_reloads_ok},
    {"reload", "failed", "clustermon_config_reloads_total", NULL, NULL, "result", "failed", U, 0,
     get_reloads_failed},
    {"control", "requests", "clustermon_control_requests_total", "counter",
     "Requests on the control socket.", NULL, NULL, U, 0, get_control_requests},
    {"control", "max_request_bytes", NULL, NULL, NULL, NULL, NULL, U, 0, get_control_max_request},
    {"control", "refused_too_large", "clustermon_control_refusals_total", "counter",
     "Control requests refused before their command ran: over the request size limit "
     "(too_large), an unknown, mistyped or missing argument (args), a protocol version "
     "the daemon does not speak (version).",
     "reason", "too_large", U, 0, get_control_oversize},
    {"control", "refused_args", "clustermon_control_refusals_total", NULL, NULL, "reason", "args",
     U, 0, get_control_bad_args},
    {"control", "refused_version", "clustermon_control_refusals_total", NULL, NULL, "reason",
     "version", U, 0, get_control_bad_version},
    {"security", "curve", NULL, NULL, NULL, NULL, NULL, B, 0, get_curve},
    {"security", "keys", NULL, NULL, NULL, NULL, NULL, U, 0, get_keys},
    {"security", "connections_admitted", NULL, NULL, NULL, NULL, NULL, U, 0, get_zap_admitted},
    {"security", "connections_refused", "clustermon_security_refusals_total", "counter",
     "Refused: connections by key (zap), failed handshakes, e.g. no CURVE (handshake), "
     "control commands (control), alert subscriptions (subscription). Batches refused "
     "by key are nacked as forbidden.",
     "what", "zap", U, 0, get_zap_refused},
    {"security", "handshakes_failed", "clustermon_security_refusals_total", NULL, NULL, "what",
     "handshake", U, 0, get_handshakes_failed},
    {"security", "commands_denied", "clustermon_security_refusals_total", NULL, NULL, "what",
     "control", U, 0, get_control_denied},
    {"security", "subscriptions_admitted", NULL, NULL, NULL, NULL, NULL, U, 0, get_subs_admitted},
    {"security", "subscriptions_refused", "clustermon_security_refusals_total", NULL, NULL, "what",
     "subscription", U, 0, get_subs_refused},
    {"wal", "segment", "clustermon_wal_segment", "gauge", "Number of the open WAL segment.", NULL,
     NULL, U, 0, get_wal_segment},
    {"wal", "appends", "clustermon_wal_appends_total", "counter",
     "Records appended to the write-ahead log.", NULL, NULL, U, 0, get_wal_appends},
    {"wal", "bytes_written", "clustermon_wal_written_bytes_total", "counter",
     "Bytes written to the write-ahead log.", NULL, NULL, U, 0, get_wal_bytes_written},
    {"wal", "unsynced_bytes", "clustermon_wal_unsynced_bytes", "gauge",
     "Bytes written to the WAL but not yet fsynced.", NULL, NULL, U, 0, get_wal_unsynced},
    {"wal", "fsyncs", NULL, NULL, NULL, NULL, NULL, U, 0, get_wal_fsyncs},
    {"wal", "fsync_avg_us", NULL, NULL, NULL, NULL, NULL, U, 0, get_wal_fsync_avg_us},
    {"wal", "fsync_max_us", NULL, NULL, NULL, NULL, NULL, U, 0, get_wal_fsync_max_us},
    {"wal", "append_failed", "clustermon_wal_append_failures_total", "counter",
     "Batches the write-ahead log could not take (write errors, disk full): nacked busy.", NULL,
     NULL, U, 0, get_wal_append_failed},
    {"wal", "group_writes", "clustermon_wal_group_writes_total", "counter",
     "Writes of the records one drain of the ingest socket staged (one write each).", NULL, NULL, U,
     0, get_wal_groups},
    {"wal", "group_write_failures", "clustermon_wal_group_write_failures_total", "counter",
     "Group writes that failed and were retried (answers and alerts held meanwhile).", NULL, NULL,
     U, 0, get_wal_group_failed},
    {"wal", "alerts_held", NULL, NULL, NULL, NULL, NULL, U, 0, get_alerts_held},
    {"wal", "disk_full", "clustermon_wal_disk_full", "gauge",
     "1 while the disk is full: ingest paused until a snapshot trimmed the WAL.", NULL, NULL, B, 0,
     get_wal_full},
    {"wal", "reserve_bytes", NULL, NULL, NULL, NULL, NULL, U, 0, get_wal_reserve},
    {"snapshots", "written", "clustermon_snapshots_total", "counter", "State snapshots, by result.",
     "result", "written", U, 0, get_snap_written},
    {"snapshots", "failed", "clustermon_snapshots_total", NULL, NULL, "result", "failed", U, 0,
     get_snap_failed},
    {"snapshots", "last_segment", NULL, NULL, NULL, NULL, NULL, U, 0, get_snap_last_segment},
    {"snapshots", "last_bytes", "clustermon_snapshot_last_bytes", "gauge",
     "Size of the newest snapshot written.", NULL, NULL, U, 0, get_snap_last_bytes},
    {"recovery", "snapshot_segment", NULL, NULL, NULL, NULL, NULL, U, 0, get_rec_snapshot_segment},
    {"recovery", "snapshots_damaged", NULL, NULL, NULL, NULL, NULL, U, 0,
     get_rec_snapshots_damaged},
    {"recovery", "wal_headers_damaged", NULL, NULL, NULL, NULL, NULL, U, 0,
     get_rec_headers_damaged},
    {"recovery", "wal_segments_missing", NULL, NULL, NULL, NULL, NULL, U, 0, get_rec_missing},
    {"recovery", "wal_records", NULL, NULL, NULL, NULL, NULL, U, 0, get_rec_records},
    {"recovery", "wal_damaged", "clustermon_recovery_wal_damaged_regions", "gauge",
     "Damaged WAL regions found at start-up (skipped or cut off).", NULL, NULL, U, 0,
     get_rec_damaged},
    {"recovery", "wal_bytes_skipped", NULL, NULL, NULL, NULL, NULL, U, 0, get_rec_bytes_skipped},
    {"recovery", "wal_truncated", NULL, NULL, NULL, NULL, NULL, U, 0, get_rec_truncated},
    {"recovery", "ready_ms", "clustermon_ready_seconds", "gauge",
     "Time from process start to ready (state recovered, sockets bound).", NULL, NULL, I, 1000,
     get_rec_ready_ms},
    {"", "samples_applied", "clustermon_samples_applied_total", "counter",
     "Samples applied to the aggregate, ever.", NULL, NULL, U, 0, get_samples_applied},
    {"", "batches_ok", "clustermon_batches_acked_total", "counter",
     "Batches acknowledged: applied (ok) or already applied (duplicate).", "result", "ok", U, 0,
     get_batches_ok},
    {"", "batches_duplicate", "clustermon_batches_acked_total", NULL, NULL, "result", "duplicate",
     U, 0, get_batches_duplicate},
    {"", "bad_envelopes", "clustermon_decode_errors_total", "counter",
     "Ingest messages that could not be decoded, by kind.", "kind", "envelope", U, 0,
     get_bad_envelopes},
    {NULL, NULL, "clustermon_decode_errors_total", NULL, NULL, "kind", "malformed", U, 0,
     get_nacks_malformed},
    {NULL, NULL, "clustermon_decode_errors_total", NULL, NULL, "kind", "version", U, 0,
     get_nacks_version},
    {NULL, NULL, "clustermon_decode_errors_total", NULL, NULL, "kind", "too_large", U, 0,
     get_nacks_too_large},
    {"", "alerts_firing", "clustermon_alerts", "gauge", "Alerts in each state now.", "state",
     "firing", U, 0, get_alerts_firing},
};
#undef U
#undef I
#undef B
#define NCOUNTERS (sizeof counters / sizeof counters[0])

const metrics_counter_t *metrics_counter(size_t i)
{
    return i < NCOUNTERS ? &counters[i] : NULL;
}

size_t metrics_counters_in(const char *section)
{
    size_t n = 0;
    for (size_t i = 0; i < NCOUNTERS; i++)
        n += counters[i].section && strcmp(counters[i].section, section) == 0;
    return n;
}

/* ---- rates and lag ----------------------------------------------------------- */

void metrics_tick(metrics_t *m, int64_t now_ms, uint64_t interval_ms)
{
    if (!m->srv)
        return; /* not started */
    if (m->last_tick_ms) {
        int64_t lag = now_ms - m->last_tick_ms - (int64_t)interval_ms;
        if (lag > m->lag_ms)
            m->lag_ms = lag;
    }
    m->last_tick_ms = now_ms;
    if (now_ms - m->lag_window_start >= METRICS_LAG_WINDOW_MS) {
        m->lag_prev_ms = m->lag_ms;
        m->lag_ms = 0;
        m->lag_window_start = now_ms;
    }
    unsigned newest = (m->rate_head + METRICS_RATE_SLOTS - 1) % METRICS_RATE_SLOTS;
    if (m->rate_n == 0 || now_ms - m->rate_ms[newest] >= 1000) {
        m->rate_ms[m->rate_head] = now_ms;
        m->rate_samples[m->rate_head] = m->srv->stats.samples_applied;
        m->rate_head = (m->rate_head + 1) % METRICS_RATE_SLOTS;
        if (m->rate_n < METRICS_RATE_SLOTS)
            m->rate_n++;
    }
}

double metrics_samples_per_s(const metrics_t *m)
{
    if (m->rate_n < 2)
        return 0;
    unsigned newest = (m->rate_head + METRICS_RATE_SLOTS - 1) % METRICS_RATE_SLOTS;
    unsigned oldest = (m->rate_head + METRICS_RATE_SLOTS - m->rate_n) % METRICS_RATE_SLOTS;
    int64_t dt = m->rate_ms[newest] - m->rate_ms[oldest];
    if (dt <= 0)
        return 0;
    return (double)(m->rate_samples[newest] - m->rate_samples[oldest]) * 1000.0 / (double)dt;
}

int64_t metrics_loop_lag_ms(const metrics_t *m)
{
    return m->lag_prev_ms > m->lag_ms ? m->lag_prev_ms : m->lag_ms;
}

uint32_t metrics_firms_reporting(const struct server *srv, int year)
{
    uint32_t n = 0;
    for (size_t f = 0; f < srv->reg->nfirms; f++)
        n += agg_firm_reported(srv->agg, (int)f, year);
    return n;
}

/* ---- collecting ------------------------------------------------------------------ */

_Static_assert(NCOUNTERS == METRICS_NCOUNTERS, "METRICS_NCOUNTERS is the counter table's length");

static void collect_self(const server_t *srv, metrics_collected_t *c)
{
    c->version = CLUSTERMON_VERSION;
    c->started_ms = srv->started_ms;
    for (size_t i = 0; i < NCOUNTERS; i++)
        c->counters[i] = counters[i].get(srv);
    c->restart_needed = srv->reload.npending;
    memcpy(c->nacks, srv->stats.nacks, sizeof c->nacks);
    memcpy(c->samples_refused, srv->ingest.judged.refused, sizeof c->samples_refused);
    c->wal_fsyncs = srv->wal.fsyncs;
    c->wal_fsync_ns_total = srv->wal.fsync_ns_total;
    c->wal_fsync_ns_max = srv->wal.fsync_ns_max;
    c->loop_lag_ms = metrics_loop_lag_ms(&srv->metrics);
    for (int i = 0; i < METRICS_NSOCKS; i++) {
        const metrics_peers_t *p = &srv->metrics.peers[i];
        c->socket_peers[i] = (uint64_t)p->peers;
        c->socket_disconnects[i] = p->disconnects;
        c->socket_abandoned[i] = p->handshakes_abandoned;
    }
    c->agents_known = srv->ingest.streams.count;
    c->http_2xx = srv->http.responses_2xx;
    c->http_4xx = srv->http.responses_4xx;
    c->http_5xx = srv->http.responses_5xx;
    c->http_connections = srv->http.nconns;
    memcpy(c->alert_events, srv->book.by_state, sizeof c->alert_events);
    c->alert_events_suppressed = srv->book.suppressed;
    memcpy(c->alerts_published, srv->alerts.by_severity, sizeof c->alerts_published);
    c->http_events_clients = srv->http.nsse;
    c->http_events_dropped = srv->http.sse_dropped;
    c->http_auth_failures = srv->http.auth_failures;
}

/*
 * The cluster figures. A group is a cluster or one of its chains; the
 * periods are the year, the year before and the year's months so far. One
 * walk over the firms, former members included (members.h: their figures
 * stay in the sums), fills every total.
 */
static void collect_clusters(const server_t *srv, int year, int month, metrics_collected_t *c)
{
    const config_t *cfg = srv->cfg;
    size_t ngroups = 0;
    size_t *first = xcalloc(cfg->nclusters + 1, sizeof *first); /* group index of each cluster */
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        first[ci] = ngroups;
        ngroups += 1 + cfg->clusters[ci].nchains;
    }
    size_t nperiods = 2 + (size_t)month;
    proto_period_t *periods = xcalloc(nperiods, sizeof *periods);
    periods[0] = (proto_period_t){.year = (uint16_t)year, .kind = PROTO_PERIOD_YEAR};
    periods[1] = (proto_period_t){.year = (uint16_t)(year - 1), .kind = PROTO_PERIOD_YEAR};
    for (int mo = 1; mo <= month; mo++)
        periods[1 + mo] = (proto_period_t){
            .year = (uint16_t)year, .kind = PROTO_PERIOD_MONTH, .index = (uint8_t)mo};
    /* the period metrics, and each config metric's place among them (-1: none) */
    const char **names = xcalloc(cfg->nmetrics + 1, sizeof *names);
    int *slot = xcalloc(cfg->nmetrics + 1, sizeof *slot);
    size_t nm = 0;
    for (size_t m = 0; m < cfg->nmetrics; m++) {
        slot[m] = cfg->metrics[m].kind == METRIC_PERIOD ? (int)nm : -1;
        if (slot[m] >= 0)
            names[nm++] = cfg->metrics[m].name;
    }

    /* firms, reporting and above-scale: query.h's tallies of the two years */
    metrics_group_t *groups = xcalloc(ngroups + 1, sizeof *groups);
    query_cluster_tally_t *tally[2] = {query_tally_clusters(srv, year),
                                       query_tally_clusters(srv, year - 1)};
    for (size_t ci = 0; ci < cfg->nclusters; ci++) {
        const config_cluster_t *cl = &cfg->clusters[ci];
        for (int k = -1; k < (int)cl->nchains; k++) {
            metrics_group_t *g = &groups[first[ci] + (size_t)(k + 1)];
            g->cluster = cl->id;
            g->chain = k < 0 ? "" : cl->chains[k];
            for (int yk = 0; yk < 2; yk++) {
                const query_cluster_tally_t *ct = &tally[yk][ci];
                const query_tally_t *t = k < 0 ? &ct->cluster : &ct->chains[k];
                if (yk == 0)
                    g->firms = t->firms - t->former; /* members now */
                g->reporting[yk] = t->reporting;
                g->above_scale[yk] = t->above_scale;
            }
        }
    }
    free(tally[0]);
    free(tally[1]);

    __int128 *totals = xcalloc(ngroups * nm * nperiods + 1, sizeof *totals);
    for (size_t f = 0; f < srv->reg->nall; f++) {
        const firm_t *firm = &srv->reg->firms[f];
        if (firm->cluster < 0 || (size_t)firm->cluster >= cfg->nclusters)
            continue;
        size_t g[2] = {first[firm->cluster], first[firm->cluster] + 1 + (size_t)firm->chain};
        int ng = firm->chain >= 0 ? 2 : 1;
        for (size_t m = 0; m < cfg->nmetrics; m++) {
            if (slot[m] < 0)
                continue;
            for (size_t p = 0; p < nperiods; p++) {
                int64_t v;
                if (!agg_firm_total(srv->agg, (int)f, (int)m, periods[p], &v))
                    continue;
                for (int i = 0; i < ng; i++)
                    totals[(g[i] * nm + (size_t)slot[m]) * nperiods + p] += v;
            }
        }
    }
    free(slot);
    free(first);
    c->year = year;
    c->periods = periods;
    c->nperiods = nperiods;
    c->metrics = names;
    c->nmetrics = nm;
    c->groups = groups;
    c->ngroups = ngroups;
    c->totals = totals;
}

void metrics_collect(const struct server *srv, int64_t now_ms, metrics_collected_t *ret)
{
    memset(ret, 0, sizeof *ret);
    calendar_t cal = srv->cal; /* a copy: the month cache is written */
    int year, month;
    if (calendar_month_of(&cal, now_ms, &year, &month) != 0 || year <= PROTO_MIN_YEAR) {
        year = PROTO_MIN_YEAR + 1;
        month = 1;
    }
    collect_self(srv, ret);
    collect_clusters(srv, year, month, ret);
}

/* The arrays are const to renderers; metrics_collect allocated them. */
void metrics_collected_free(metrics_collected_t *c)
{
    free((void *)(uintptr_t)c->periods);
    free((void *)(uintptr_t)c->metrics);
    free((void *)(uintptr_t)c->groups);
    free((void *)(uintptr_t)c->totals);
    memset(c, 0, sizeof *c);
}

void metrics_render(const struct server *srv, int64_t now_ms, metrics_text_t *out)
{
    metrics_collected_t c;
    metrics_collect(srv, now_ms, &c);
    exposition_render(&c, out);
    metrics_collected_free(&c);
    upstream_metrics(srv, out);
    remotewrite_metrics(srv, out);
}
