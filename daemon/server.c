/* server.c -- see server.h. */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/members.h"
#include "daemon/privdrop.h"
#include "daemon/reload.h"
#include "daemon/webapi.h"

/*
 * Closes every handle and socket the server opened; the loop then runs out.
 * Nothing is counted here: uv_run(UV_RUN_DEFAULT) returns only once no
 * handle is active or closing, so the loop itself is the count of what is
 * still open (a total kept by hand drifts the day a handle is added and not
 * counted). server_close() then proves it with uv_loop_close() == 0, and
 * walks the loop (uv_walk) to name any handle left open. The ZeroMQ
 * sockets, which libuv cannot see, are closed by zsock (and metrics' zpoll)
 * in the close callback of their last handle -- the unpolled alerts PUB at
 * once -- so a clean uv_loop_close() also means zmq_ctx_term() waits for no
 * socket of ours.
 */
static void close_all(server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    notify_stopping(&srv->notify);
    uv_handle_t *handles[] = {(uv_handle_t *)&srv->sig_int, (uv_handle_t *)&srv->sig_term,
                              (uv_handle_t *)&srv->sig_hup, (uv_handle_t *)&srv->cron};
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++) {
        if (handles[i]->data) /* initialised */
            uv_close(handles[i], NULL);
    }
    /* a group the WAL could not write yet gets its last try while the
     * alerts socket is still there to publish what it held */
    ingest_group_end(&srv->ingest);
    ingest_close(&srv->ingest);
    control_close(&srv->control);
    zap_close(&srv->zap);
    alerts_stop(&srv->alerts);
    http_close(&srv->http);
    metrics_close(&srv->metrics);
    upstream_stop(&srv->upstream);
    remotewrite_stop(&srv->remote_write);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;
    if (signum == SIGHUP) {
        char err[CONFIG_ERRLEN];
        log_info("SIGHUP: reloading the config and the firm registry");
        reload_run(srv, err, sizeof err); /* logs and records the outcome */
        return;
    }
    log_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv, 0);
}

/* mkdir -p, the last component 0700: the state is nobody else's business. */
static int make_state_dir(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    struct stat st;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        /* parents 0755 despite the umask, so the user we drop to can reach it */
        if (mkdir(buf, 0755) == 0)
            chmod(buf, 0755);
        else if (errno != EEXIST) {
            snprintf(err, errlen, "state_dir %s: cannot create %s: %s", path, buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    snprintf(err, errlen, "state_dir %s: %s", path,
             errno == EEXIST ? "exists and is not a directory" : strerror(errno));
    return -1;
}

/* One daemon per state directory: two would interleave one WAL. */
static int lock_state_dir(server_t *srv, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", srv->cfg->state_dir);
    srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (srv->lock_fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(srv->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "state_dir %s is in use by another clustermond (%s is locked)",
                 srv->cfg->state_dir, path);
        return -1;
    }
    return 0;
}

/* Each WAL record goes back to the module that wrote it (record.h). */
static int replay_cb(const void *payload, size_t len, void *data)
{
    server_t *srv = data;
    const unsigned char *p = payload;
    char err[256];
    int rc;
    switch (len ? p[0] : 0) {
    case RECORD_ALERT:
        rc = alertbook_replay(&srv->book, payload, len, err, sizeof err);
        if (rc > 0)
            log_debug("WAL replay: an alert of a rule or firm no longer configured: skipped");
        break;
    case RECORD_SILENCE: rc = silences_replay(&srv->silences, payload, len, err, sizeof err); break;
    default: ingest_replay(&srv->ingest, payload, len); return 0;
    }
    if (rc < 0)
        log_warnx("WAL replay: %s: skipped", err);
    return 0;
}

/* The alertbook's and the silences' journal: their records go into the WAL
 * with the batches, so a change is durable when it happens (record.h). */
static uint64_t journal_cb(void *data, const void *payload, size_t len)
{
    server_t *srv = data;
    if (srv->wal.fd < 0)
        return 0;
    uint64_t pos = wal_append(&srv->wal, payload, len);
    if (pos && srv->cfg->fsync_policy == WAL_FSYNC_ALWAYS)
        wal_sync(&srv->wal);
    return pos;
}

/* The alertbook's journal for the alerts one flush changed: one write. */
static uint64_t journal_many_cb(void *data, const struct iovec *payloads, size_t n)
{
    server_t *srv = data;
    if (srv->wal.fd < 0)
        return 0;
    uint64_t pos = wal_append_many(&srv->wal, payloads, n);
    if (pos && srv->cfg->fsync_policy == WAL_FSYNC_ALWAYS)
        wal_sync(&srv->wal);
    return pos;
}

/* An alert stems from WAL records not written yet (a drain's group): it
 * goes out after them, so a kill in between cannot publish what a restart
 * would not know it published. */
static bool alerts_wait_for_wal(void *data)
{
    const wal_t *w = data;
    return w->pos > w->written;
}

static void wal_synced(wal_t *w, uint64_t synced)
{
    server_t *srv = w->data;
    (void)synced;
    ingest_release_acks(&srv->ingest);
    http_wal_synced(&srv->http, synced);
}

void server_wal_hold(server_t *srv, const char *name, uint64_t segment)
{
    if (wal_holds_set(&srv->wal_holds, name, segment) != 0)
        log_error("wal: no room for holder %s: WAL_HOLDS_MAX is %d", name, WAL_HOLDS_MAX);
}

/* The disk-full reserve: room for a segment and a snapshot (and the one
 * being replaced) with a margin, so the recovery can always write them. */
static uint64_t reserve_wanted(uint64_t snapshot_bytes)
{
    uint64_t b = WAL_RESERVE_MIN + 2 * snapshot_bytes;
    return (b + 65535) & ~(uint64_t)65535;
}

/* Newest usable snapshot, then the WAL after it; then a fresh segment to
 * append to, and the disk-full reserve. */
static int recover(server_t *srv, char *err, size_t errlen)
{
    const char *dir = srv->cfg->state_dir;
    uint64_t *segs, last;
    size_t nsegs;
    if (wal_segments(dir, &segs, &nsegs) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    /* the firms that left first, so their series and batches resolve */
    members_load(srv);
    snapshot_loaded_t snap;
    int rc = snapshot_load(srv, segs, nsegs, &snap, err, errlen);
    free(segs);
    if (rc != 0)
        return -1;
    uint64_t covered = snap.segment;
    srv->recovery.snapshot_segment = covered;
    srv->recovery.snapshots_damaged = snap.ndamaged;
    if (wal_replay(dir, covered, replay_cb, srv, &srv->recovery.wal, &last, err, errlen) != 0)
        return -1;
    ingest_replay_done(&srv->ingest);
    ingest_recovered(&srv->ingest);
    uint64_t next = (last > covered ? last : covered) + 1;
    if (wal_open(&srv->wal, &srv->loop, dir, next, wal_synced, srv, err, errlen) != 0)
        return -1;
    /* who joined and left while the daemon was down is saved before any
     * batch is taken (members.h) */
    int changed = members_save(srv, calendar_now_ms());
    if (changed > 0)
        log_info("membership: %d firms joined or left the registry since the state was saved "
                 "(%zu members, %zu former members)",
                 changed, srv->reg->nfirms, srv->reg->nall - srv->reg->nfirms);
    const wal_replay_stats_t *ws = &srv->recovery.wal;
    /* One line says exactly what the state was rebuilt from. */
    char from[64] = "no snapshot", walr[80] = " + no WAL";
    if (covered)
        snprintf(from, sizeof from, "snapshot %016" PRIu64, covered);
    if (ws->first)
        snprintf(walr, sizeof walr, " + WAL segments %" PRIu64 "..%" PRIu64, ws->first, ws->last);
    if (snap.ndamaged || ws->missing || ws->headers_damaged)
        log_warnx("%s%sstarted from %s%s (%" PRIu64 " WAL segments missing, %" PRIu64
                  " with a damaged header)",
                  snap.damaged, *snap.damaged ? "; " : "", from, walr, ws->missing,
                  ws->headers_damaged);
    else if (covered || ws->first)
        log_info("started from %s%s", from, walr);
    char why[256];
    if (!srv->wal.full &&
        wal_reserve_set(&srv->wal, reserve_wanted(snap.bytes), why, sizeof why) != 0) {
        /* Without it a full disk could not be climbed out of: take no data
         * until the recovery in cron could make it. */
        log_error("disk-full reserve: %s; ingest paused until it can be made", why);
        srv->wal.full = true;
    }
    if (covered || ws->records || ws->damaged)
        log_info("recovered: snapshot %s, %" PRIu64 " WAL records replayed, %" PRIu64
                 " damaged regions (%" PRIu64 " bytes skipped, %" PRIu64
                 " cut off the tail), %" PRIu64 " samples in total",
                 covered ? "found" : "none", ws->records, ws->damaged, ws->bytes_skipped,
                 ws->truncated, srv->stats.samples_applied);
    if (srv->ingest.replay_skipped)
        log_warnx("recovered: %" PRIu64 " WAL batches no longer resolve and were skipped",
                  srv->ingest.replay_skipped);
    return 0;
}

/* Closes the open WAL segment and snapshots everything up to it. Returns 0,
 * or -1 (logged and counted in snap.failed). */
static int snapshot_now(server_t *srv)
{
    char err[256];
    int64_t closed = wal_rotate(&srv->wal, err, sizeof err);
    if (closed < 0) {
        srv->snap.failed++;
        log_error("snapshot: cannot rotate the WAL: %s", err);
        return -1;
    }
    srv->wal_pos_at_snapshot = srv->wal.pos;
    return snapshot_start(&srv->snap, srv, (uint64_t)closed);
}

int server_snapshot_request(server_t *srv, uint64_t *ret_segment, char *err, size_t errlen)
{
    if (srv->snap.running) {
        snprintf(err, errlen, "a snapshot is being written: ask again in a moment");
        return -1;
    }
    if (srv->wal.full) {
        snprintf(err, errlen, "the WAL is full (disk full): no snapshot until it has climbed out");
        return -1;
    }
    uint64_t segment = srv->wal.segment; /* the one snapshot_now closes */
    if (snapshot_now(srv) != 0) {
        snprintf(err, errlen, "the snapshot could not be started (see the daemon's log)");
        return -1;
    }
    *ret_segment = segment;
    return 0;
}

/*
 * Disk full (wal.h): appends are refused meanwhile. Releases the reserve,
 * takes two snapshots (after the second, write_done trims every segment the
 * first covers: the previous snapshot + WAL fallback holds throughout), then
 * re-creates the reserve and resumes. A failed step is retried with
 * exponential backoff (capped at 10 s), reset when it succeeds.
 */
static void diskfull_tick(server_t *srv, int64_t now)
{
    server_diskfull_t *d = &srv->diskfull;
    wal_t *w = &srv->wal;
    if (!d->active) {
        *d = (server_diskfull_t){.active = true,
                                 .since_ms = now,
                                 .written_base = srv->snap.written,
                                 .failed_seen = srv->snap.failed};
        uint64_t had = w->reserve_bytes;
        wal_reserve_release(w);
        log_warnx("disk full in %s: released the reserve (%" PRIu64 " bytes) to snapshot and "
                  "trim the WAL; ingest resumes when the reserve can be made again",
                  srv->cfg->state_dir, had);
    }
    if (srv->snap.running || wal_busy(w) || now < d->retry_ms)
        return;
    if (srv->snap.failed != d->failed_seen) {
        d->failed_seen = srv->snap.failed;
        d->backoff_ms = d->backoff_ms ? (d->backoff_ms >= 5000 ? 10000 : d->backoff_ms * 2) : 200;
        d->retry_ms = now + d->backoff_ms;
        return;
    }
    if (srv->snap.written - d->written_base < 2) {
        snapshot_now(srv);
        return;
    }
    char err[256];
    if (wal_reserve_set(w, reserve_wanted(srv->snap.last_bytes), err, sizeof err) != 0) {
        d->backoff_ms = d->backoff_ms ? (d->backoff_ms >= 5000 ? 10000 : d->backoff_ms * 2) : 200;
        d->retry_ms = now + d->backoff_ms;
        log_warnx("disk still full: %s; ingest stays paused, next try in %lld ms", err,
                  (long long)d->backoff_ms);
        return;
    }
    w->full = false;
    d->active = false;
    log_info("disk full: recovered in %lld ms (WAL trimmed, reserve of %" PRIu64
             " bytes made again); ingest resumed",
             (long long)(now - d->since_ms), w->reserve_bytes);
}

/* A crowd of peers (each stalled one holds libzmq buffers and up to a
 * 4 MiB frame) leaves its memory on malloc's free lists when it goes; hand
 * it back to the system once they are gone, at most every 5 s. */
static void trim_after_peers_left(server_t *srv, int64_t now)
{
    int64_t peers = 0;
    for (int i = 0; i < METRICS_NSOCKS; i++)
        peers += srv->metrics.peers[i].peers;
    if (peers > srv->peers_high)
        srv->peers_high = peers;
    if (srv->peers_high - peers < SERVER_TRIM_PEERS || now - srv->last_trim_ms < 5000)
        return;
    srv->last_trim_ms = now;
    srv->peers_high = peers;
    malloc_trim(0);
}

/* Periodic work, Redis serverCron style: each sub-task checks its own clock. */
static void cron_cb(uv_timer_t *t)
{
    server_t *srv = t->data;
    const config_t *cfg = srv->cfg;
    int64_t now = (int64_t)uv_now(&srv->loop);
    wal_t *w = &srv->wal;
    metrics_tick(&srv->metrics, now, uv_timer_get_repeat(t));
    notify_tick(&srv->notify, srv, now);
    ingest_group_end(&srv->ingest); /* a group write that failed: again */
    if (cfg->fsync_policy == WAL_FSYNC_INTERVAL && w->written > w->synced &&
        now - srv->last_fsync_ms >= (int64_t)cfg->fsync_interval_ms) {
        srv->last_fsync_ms = now;
        wal_sync(w);
    }
    ingest_log_tick(&srv->ingest, now);
    history_tick(&srv->history, now, calendar_now_ms());
    trim_after_peers_left(srv, now);
    if (now - srv->last_rules_tick_ms >= 1000) {
        int64_t wall = calendar_now_ms();
        srv->last_rules_tick_ms = now;
        rules_tick(&srv->rules, wall);
        alertbook_tick(&srv->book, wall);
        alertbook_flush(&srv->book, wall);
        alerts_heartbeat(&srv->alerts, srv->cfg, wall);
    }
    if (w->full) {
        diskfull_tick(srv, now);
        return;
    }
    /* A grown state needs a bigger reserve: checked after each snapshot. */
    if (srv->diskfull.reserve_checked != srv->snap.written) {
        srv->diskfull.reserve_checked = srv->snap.written;
        char err[256];
        if (reserve_wanted(srv->snap.last_bytes) > w->reserve_bytes &&
            wal_reserve_set(w, reserve_wanted(srv->snap.last_bytes), err, sizeof err) != 0)
            log_warnx("disk-full reserve: cannot grow it: %s", err);
    }
    bool due = now - srv->snap.last_ms >= (int64_t)(cfg->snapshot_interval_s * 1000) ||
               (double)w->seg_bytes >= cfg->snapshot_wal_mb * 1048576.0;
    if (srv->snapshot_wanted && w->pos == 0 && !srv->snap.running && !wal_busy(w)) {
        /* nothing appended since start-up: the open segment is empty, so the
         * snapshot covers the ones before it and the WAL is left as it is */
        srv->snapshot_wanted = false;
        snapshot_start(&srv->snap, srv, w->segment - 1);
        return;
    }
    if (((due && w->pos > srv->wal_pos_at_snapshot) || srv->snapshot_wanted) &&
        !srv->snap.running && !wal_busy(w)) {
        srv->snapshot_wanted = false;
        if (snapshot_now(srv) != 0)
            srv->snap.last_ms = now; /* do not retry on every tick */
    }
}

int server_open(server_t *srv, const server_source_t *src, config_t **pcfg, registry_t **preg,
                char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->source = *src;
    srv->ingest.srv = srv; /* so a close after a failed open finds its owner */
    srv->control.srv = srv;
    srv->zap.srv = srv;
    srv->lock_fd = -1;
    srv->wal.fd = -1;
    srv->alerts.seq_fd = -1;
    srv->history.fd = -1;
    int rc = uv_loop_init(&srv->loop);
    if (rc < 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        return -1;
    }
    srv->loop.data = srv;
    srv->cfg = *pcfg;
    srv->reg = *preg;
    *pcfg = NULL;
    *preg = NULL;
    srv->started_ms = calendar_now_ms();
    reload_status_init(&srv->reload, srv->started_ms);
    const config_t *cfg = srv->cfg;

    if (calendar_init(&srv->cal, cfg->timezone) != 0) {
        snprintf(err, errlen, "timezone %s: %s", cfg->timezone, strerror(errno));
        return -1;
    }
    if (make_state_dir(cfg->state_dir, err, errlen) != 0 || lock_state_dir(srv, err, errlen) != 0)
        return -1;
    srv->agg = agg_new(srv->reg->nall, cfg->nmetrics);
    if (alerts_init(&srv->alerts, cfg->state_dir, err, errlen) != 0)
        return -1;
    if (history_open(&srv->history, cfg->state_dir, cfg->fsync_policy, cfg->history_retention_ms,
                     srv->started_ms, err, errlen) != 0)
        return -1;
    srv->alerts.published_cb = history_alert_cb;
    srv->alerts.hold_cb = history_hold_cb;
    srv->alerts.hook_data = &srv->history;
    srv->alerts.on_publish = webapi_alert_published; /* live alerts on open pages */
    srv->alerts.on_publish_data = srv;
    srv->alerts.must_hold = alerts_wait_for_wal;
    srv->alerts.must_hold_data = &srv->wal;
    silences_init(&srv->silences);
    alertbook_init(&srv->book, cfg, srv->reg, &srv->alerts, &srv->silences);
    rules_init(&srv->rules, cfg, srv->reg, srv->agg, &srv->cal, &srv->book);
    ingest_init(&srv->ingest, srv);
    /* Replayed transitions were published before the restart: quiet. */
    srv->book.quiet = true;
    if (recover(srv, err, errlen) != 0)
        return -1;
    srv->book.quiet = false;
    /* a firm the snapshot did not know is first seen now (the silence rules' grace) */
    for (size_t f = 0; f < srv->reg->nfirms; f++)
        if (!srv->reg->firms[f].first_seen_ms) {
            srv->reg->firms[f].first_seen_ms = srv->started_ms;
            srv->snapshot_wanted = true; /* only a snapshot keeps it */
        }
    /* from here on every alert and silence change is journaled */
    srv->book.journal = srv->silences.journal = journal_cb;
    srv->book.journal_many = journal_many_cb;
    srv->book.journal_data = srv->silences.journal_data = srv;
    alertbook_recovered(&srv->book); /* published by the reconcile below */
    srv->wal_pos_at_snapshot = 0;
    srv->snap.last_ms = (int64_t)uv_now(&srv->loop);
    uv_timer_init(&srv->loop, &srv->cron);
    srv->cron.data = srv;
    uv_timer_start(&srv->cron, cron_cb, 50, 50);

    srv->zctx = zmq_ctx_new();
    if (!srv->zctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        return -1;
    }
    /* Every socket made in this context may bind IPv6 (tcp://[::1]:P needs
     * it); IPv4 endpoints bind as before, and a wildcard tcp bind falls
     * back to IPv4 where the host has no IPv6. */
    zmq_ctx_set(srv->zctx, ZMQ_IPV6, 1);
    if (*cfg->curve_secret_key) {
        srv->curve = true;
        if (!zmq_has("curve")) {
            snprintf(err, errlen, "daemon.curve_secret_key is set but this libzmq has no CURVE");
            return -1;
        }
        char why[CONFIG_ERRLEN];
        if (keyfile_load(cfg->curve_secret_key, true, &srv->curve_key, why, sizeof why) != 0) {
            snprintf(err, errlen, "daemon.curve_secret_key: %s", why);
            return -1;
        }
        if (keys_load(cfg->access, cfg, srv->reg, &srv->keys, err, errlen) != 0)
            return -1;
    }
    if (srv->curve && zap_start(&srv->zap, srv, err, errlen) != 0)
        return -1;
    if ((srv->curve ? alerts_open_gated(&srv->alerts, srv, err, errlen)
                    : alerts_open(&srv->alerts, srv->zctx, cfg->alerts, (int)cfg->alerts_hwm,
                                  cfg->peer_timeout, err, errlen)) != 0 ||
        ingest_start(&srv->ingest, cfg->ingest, err, errlen) != 0 ||
        control_start(&srv->control, srv, cfg->control, err, errlen) != 0 ||
        metrics_start(&srv->metrics, srv, err, errlen) != 0 ||
        http_start(&srv->http, srv, cfg->http, err, errlen) != 0)
        return -1;
    /* the forwarder reads its key files and makes its state dir as we start */
    if (upstream_start(&srv->upstream, srv, err, errlen) != 0 ||
        remotewrite_start(&srv->remote_write, srv, err, errlen) != 0)
        return -1;
    if (privdrop_apply(cfg, err, errlen) != 0)
        return -1;

    struct {
        uv_signal_t *h;
        int signum;
    } sigs[] = {{&srv->sig_int, SIGINT}, {&srv->sig_term, SIGTERM}, {&srv->sig_hup, SIGHUP}};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        uv_signal_init(&srv->loop, sigs[i].h);
        sigs[i].h->data = srv;
        rc = uv_signal_start(sigs[i].h, signal_cb, sigs[i].signum);
        if (rc < 0) {
            snprintf(err, errlen, "uv_signal_start(%d): %s", sigs[i].signum, uv_strerror(rc));
            return -1;
        }
    }
    /* Reconcile: what changed while the daemon was down (silences that are
     * now due, ...) is published now; what is still true is not repeated. */
    int64_t now = calendar_now_ms();
    rules_evaluate_all(&srv->rules, now);
    alertbook_flush(&srv->book, now);
    srv->recovery.ready_ms = calendar_now_ms() - srv->started_ms;
    log_info("clustermond %s: %zu firms in %zu clusters, %zu metrics, %zu rules; ingest %s, "
             "alerts %s, control %s, time zone %s; ready in %lld ms",
             CLUSTERMON_VERSION, srv->reg->nfirms, cfg->nclusters, cfg->nmetrics, cfg->nrules,
             cfg->ingest, cfg->alerts, cfg->control, cfg->timezone,
             (long long)srv->recovery.ready_ms);
    notify_ready(&srv->notify, srv);
    return 0;
}

/* A stop leaves a snapshot of what changed since the last one (the WAL
 * grew, or this run replayed a WAL tail and took none), so the next start
 * reads it rather than the WAL. Runs once the loop has run out: no fsync and
 * no other snapshot is under way. */
static void snapshot_on_stop(server_t *srv)
{
    if (srv->wal.fd < 0 || srv->wal.full)
        return;
    if (srv->wal.pos <= srv->wal_pos_at_snapshot &&
        !(srv->snap.written == 0 && srv->recovery.wal.records > 0))
        return;
    char err[256];
    int64_t closed = wal_rotate(&srv->wal, err, sizeof err);
    if (closed < 0) {
        log_error("snapshot at stop: cannot rotate the WAL: %s", err);
        return;
    }
    srv->wal_pos_at_snapshot = srv->wal.pos;
    if (snapshot_write_now(&srv->snap, srv, (uint64_t)closed) == 0)
        log_info("snapshot at stop: %016" PRIu64 " written (%" PRIu64 " bytes)", (uint64_t)closed,
                 srv->snap.last_bytes);
}

int server_run(server_t *srv)
{
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    snapshot_on_stop(srv);
    return srv->exit_status;
}

void server_stop(server_t *srv, int status)
{
    srv->exit_status = status;
    close_all(srv);
}

/* For uv_walk after an unclean loop close: a leak names itself. */
static void name_open_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    log_error("shutdown: a %s handle is still open%s", uv_handle_type_name(uv_handle_get_type(h)),
              uv_is_closing(h) ? " (closing)" : "");
}

void server_close(server_t *srv)
{
    if (srv->loop.data) {
        close_all(srv);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        int rc = uv_loop_close(&srv->loop);
        if (rc != 0) {
            log_error("uv_loop_close: %s (a handle was left open)", uv_strerror(rc));
            uv_walk(&srv->loop, name_open_handle, NULL);
        }
    }
    upstream_free(&srv->upstream);
    remotewrite_free(&srv->remote_write);
    if (srv->wal.dir)
        wal_close(&srv->wal);
    snapshot_free(&srv->snap);
    ingest_free(&srv->ingest);
    if (srv->lock_fd >= 0)
        close(srv->lock_fd);
    srv->lock_fd = -1;
    alerts_close(&srv->alerts);
    if (srv->zctx)
        zmq_ctx_term(srv->zctx);
    srv->zctx = NULL;
    keys_destroy(&srv->keys);
    memset(&srv->curve_key, 0, sizeof srv->curve_key); /* the secret, not left in memory */
    rules_free(&srv->rules);
    alertbook_free(&srv->book);
    silences_free(&srv->silences);
    history_close(&srv->history);
    agg_destroy(&srv->agg);
    registry_destroy(&srv->reg);
    config_destroy(&srv->cfg);
}
