/*
 * notify.c -- see notify.h. The protocol is libsystemd's sd_notify(3); the
 * library also reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID for us.
 */
#include "daemon/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "proto/clock.h"

static void send_state(notify_t *n, const char *state)
{
    if (!n->enabled)
        return;
    int rc = sd_notify(0, state);
    if (rc > 0) {
        n->sent++;
    } else if (rc < 0) {
        /* logged once: a broken notify socket would otherwise flood the log */
        if (n->failed++ == 0)
            log_warnx("sd_notify: %s", strerror(-rc));
    }
}

void notify_status_text(struct server *srv, char *buf, size_t size)
{
    int year, month;
    if (calendar_month_of(&srv->cal, calendar_now_ms(), &year, &month) != 0)
        year = 0;
    /* a failed reload stays visible in systemctl status until a good one */
    snprintf(buf, size, "%s%u of %zu firms reporting in %d, %llu alerts firing, %.1f samples/s",
             srv->reload.last_ok ? "" : "last reload failed, running the previous config; ",
             year ? metrics_firms_reporting(srv, year) : 0, srv->reg->nfirms, year,
             (unsigned long long)srv->book.firing, metrics_samples_per_s(&srv->metrics));
}

static void send_status(notify_t *n, struct server *srv, bool ready)
{
    char text[sizeof n->status];
    notify_status_text(srv, text, sizeof text);
    if (!ready && strcmp(text, n->status) == 0)
        return;
    snprintf(n->status, sizeof n->status, "%s", text);
    char msg[sizeof n->status + 32];
    snprintf(msg, sizeof msg, "%sSTATUS=%s", ready ? "READY=1\n" : "", text);
    send_state(n, msg);
}

void notify_ready(notify_t *n, struct server *srv)
{
    memset(n, 0, sizeof *n);
    const char *sock = getenv("NOTIFY_SOCKET");
    n->enabled = sock && *sock;
    if (!n->enabled)
        return;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        n->watchdog_usec = usec;
    int64_t now = (int64_t)uv_now(&srv->loop);
    n->last_status_ms = n->last_watchdog_ms = now;
    send_status(n, srv, true);
    if (n->watchdog_usec)
        log_info("systemd watchdog: %llu ms, fed every %llu ms from the event loop",
                 (unsigned long long)(n->watchdog_usec / 1000),
                 (unsigned long long)(n->watchdog_usec / 2000));
}

void notify_tick(notify_t *n, struct server *srv, int64_t now_ms)
{
    if (!n->enabled)
        return;
    if (n->watchdog_usec && (uint64_t)(now_ms - n->last_watchdog_ms) * 2000 >= n->watchdog_usec) {
        n->last_watchdog_ms = now_ms;
        send_state(n, "WATCHDOG=1");
    }
    if (now_ms - n->last_status_ms >= NOTIFY_STATUS_MS) {
        n->last_status_ms = now_ms;
        send_status(n, srv, false);
    }
}

void notify_reloading(notify_t *n)
{
    /* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reply */
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)(clock_monotonic_ns() / 1000));
    send_state(n, msg);
}

void notify_reloaded(notify_t *n, struct server *srv)
{
    const reload_status_t *rs = &srv->reload;
    char text[sizeof n->status];
    if (!rs->last_ok) {
        snprintf(text, sizeof text, "reload failed: %.220s", rs->last_error);
    } else {
        char live[sizeof n->status];
        notify_status_text(srv, live, sizeof live);
        snprintf(text, sizeof text, "reloaded: %zu firms, %zu rules%s; %.140s", srv->reg->nfirms,
                 srv->cfg->nrules, rs->npending ? " (some settings need a restart)" : "", live);
    }
    /* kept as the last STATUS=, so the next tick replaces it with live figures */
    snprintf(n->status, sizeof n->status, "%s", text);
    char msg[sizeof n->status + 32];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", text);
    send_state(n, msg);
}

void notify_stopping(notify_t *n)
{
    send_state(n, "STOPPING=1\nSTATUS=stopping");
}
