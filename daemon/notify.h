/*
 * notify.h -- telling systemd how the daemon is doing (sd_notify): READY=1
 * once state is recovered and the sockets are bound, STATUS= with live
 * figures, RELOADING=1 / READY=1 around a reload, STOPPING=1 on shutdown,
 * and the watchdog keep-alive.
 *
 * The watchdog is fed from the server's cron timer, so it proves what it
 * should: that the event loop still turns. A loop stuck in a callback stops
 * the pings and systemd restarts the service after WatchdogSec=.
 *
 * Outside systemd (NOTIFY_SOCKET unset) every call is a cheap no-op. All
 * functions run on the loop's thread; sd_notify is one datagram to a local
 * socket.
 */
#ifndef CLUSTERMON_NOTIFY_H
#define CLUSTERMON_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTIFY_STATUS_MS 5000 /* how often STATUS= is refreshed (if it changed) */

struct server;

typedef struct {
    bool enabled;           /* NOTIFY_SOCKET was set */
    uint64_t watchdog_usec; /* 0 = no watchdog asked for */
    int64_t last_watchdog_ms, last_status_ms;
    char status[256]; /* the last STATUS= sent */
    uint64_t sent, failed;
} notify_t;

/* Sends READY=1 and a first STATUS=; reads the watchdog interval. Call once
 * the daemon serves (end of server_open). */
void notify_ready(notify_t *n, struct server *srv);

/* From the cron timer: WATCHDOG=1 every half interval, STATUS= every
 * NOTIFY_STATUS_MS if it changed. now_ms is loop time. */
void notify_tick(notify_t *n, struct server *srv, int64_t now_ms);

/* Around a configuration reload: RELOADING=1 before, notify_reloaded() after:
 * READY=1 whatever happened (systemd waits for it), with STATUS= saying
 * "reloaded: ..." or "reload failed: <reason>" from srv->reload. */
void notify_reloading(notify_t *n);
void notify_reloaded(notify_t *n, struct server *srv);

/* STOPPING=1: the orderly shutdown has begun. */
void notify_stopping(notify_t *n);

/* Writes the STATUS= text for srv into buf (also for tests and status). */
void notify_status_text(struct server *srv, char *buf, size_t size);

#endif
