/*
 * http.h -- the daemon's HTTP endpoint: Prometheus (GET or HEAD /metrics,
 * the text exposition format built from the server state at that moment,
 * daemon/metrics.c), health checks (/healthz answers "ok"), the dashboard's
 * pages (embedded at build time, daemon/webassets.h), its JSON API under
 * /api/v1/ (daemon/webapi.c) and the alerts pushed to open pages as
 * Server-Sent Events (/api/v1/events).
 *
 * Access: without [daemon] http_users every client is a viewer (and config.c
 * lets the endpoint bind only loopback then); with it every request but
 * /healthz needs HTTP Basic credentials of a listed user (daemon/webusers.h),
 * meant to arrive through a TLS reverse proxy (README "Dashboard"). A
 * password is checked on libuv's thread pool, never on the loop, at most
 * HTTP_MAX_VERIFIES at once (more are answered 503 with Retry-After).
 *
 * An events connection stays open: every published alert transition is
 * written to it, and a heartbeat every HTTP_SSE_HEARTBEAT_MS. A client that
 * does not read (more than HTTP_SSE_MAX_QUEUE bytes waiting) is closed rather
 * than buffered for: the loop never waits for a browser.
 *
 * It runs on the libuv loop like everything else, so it must never block
 * the loop and never let a client hold resources: requests are parsed
 * incrementally with http-parser, a request may be at most HTTP_MAX_REQUEST
 * bytes, at most HTTP_MAX_CONNS connections are open at once (more are
 * accepted and closed at once), and a connection that has not sent a whole
 * request within HTTP_TIMEOUT_MS (or not read its response in that time) is
 * closed. Keep-alive is honoured; pipelined requests are not (the
 * connection is closed after the first answer). Every connection is freed
 * only in its close callback.
 *
 * Configured by [daemon] http = host:port; empty (the default) = off.
 */
#ifndef CLUSTERMON_HTTP_H
#define CLUSTERMON_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "daemon/webupload.h"

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_BODY 4096         /* a POST's JSON body, within HTTP_MAX_REQUEST */
#define HTTP_MAX_UPLOAD (2u << 20) /* a file's bytes posted to upload/ (webupload.h), beyond it */
#define HTTP_TIMEOUT_MS 10000
#define HTTP_MAX_SSE 32 /* events connections, within HTTP_MAX_CONNS */
#define HTTP_SSE_HEARTBEAT_MS 15000
#define HTTP_SSE_MAX_QUEUE (256 * 1024)
#define HTTP_MAX_VERIFIES 2

struct server;
struct webusers;
typedef struct http_conn http_conn_t;

typedef struct {
    struct server *srv;
    uv_tcp_t listener;
    bool listening; /* listener initialised (so it must be closed) */
    bool closing;
    char endpoint[64];  /* as configured, "" = off */
    http_conn_t *conns; /* open connections, a doubly linked list */
    unsigned nconns;
    uint64_t timeout_ms;       /* HTTP_TIMEOUT_MS; tests shorten it */
    uint64_t sse_heartbeat_ms; /* HTTP_SSE_HEARTBEAT_MS; tests shorten it */
    struct webusers *users;    /* owned; NULL: no logins, everyone a viewer */
    unsigned verifying;        /* password checks on the thread pool now */
    unsigned nsse;             /* events connections open */
    uint64_t sse_events;       /* events written to clients */
    uint64_t sse_dropped;      /* events clients closed for not reading */
    uint64_t auth_failures;    /* requests refused for missing or wrong credentials */
    char rbuf[16384];          /* read buffer, shared: each read is parsed at once */
    /* figures for status and /metrics */
    uint64_t accepted, refused, timeouts, bad_requests;
    uint64_t responses_2xx, responses_4xx, responses_5xx;
    webupload_t upload; /* the upload path's memory (webupload.h) */
} http_t;

/*
 * Parses "host:port" where host is a numeric IPv4 address, "[IPv6]" or
 * "localhost" (127.0.0.1); names are not resolved (that would block the
 * loop). Writes the address to *ret_addr if it is non-NULL. Returns 0, or -1
 * with the reason in why. Any context.
 */
int http_listen_parse(const char *s, struct sockaddr_storage *ret_addr, char *why, size_t whylen);

/*
 * Starts listening on listen ("" = off: nothing is opened, returns 0), with
 * the users of srv->cfg->http_users if that is set. Returns 0, or -1 with
 * the reason in err (the caller still calls http_close). Called on the
 * loop's thread before or while it runs.
 */
int http_start(http_t *h, struct server *srv, const char *listen, char *err, size_t errlen);

/* Starts closing the listener and every connection (a no-op the second
 * time). No callback: the handles are the loop's, so a caller knows they
 * are all closed when the loop runs out (the server's shutdown proves it
 * with uv_loop_close() == 0); until then h must stay in place. Safe on an h
 * that http_start failed on, or never ran on (all zero). */
void http_close(http_t *h);

/* The WAL is on disk up to synced: sends the answers held for it (an
 * upload's, with fsync = always). On the loop. */
void http_wal_synced(http_t *h, uint64_t synced);

/* Writes "event: NAME\ndata: DATA\n\n" to every events connection (data is
 * one line of JSON, len bytes, copied). On the loop. */
void http_events_send(http_t *h, const char *name, const char *data, size_t len);

#endif
