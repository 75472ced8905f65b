/*
 * http.h -- the daemon's HTTP endpoint for Prometheus and health checks:
 * GET (or HEAD) /metrics answers the text exposition format built from the
 * server state at that moment (daemon/metrics.c), /healthz answers "ok".
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

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_REQUEST 8192
#define HTTP_TIMEOUT_MS 10000

struct server;
typedef struct http_conn http_conn_t;

typedef struct {
    struct server *srv;
    uv_tcp_t listener;
    bool listening; /* listener initialised (so it must be closed) */
    bool closing;
    char endpoint[64];  /* as configured, "" = off */
    http_conn_t *conns; /* open connections, a doubly linked list */
    unsigned nconns;
    uint64_t timeout_ms; /* HTTP_TIMEOUT_MS; tests shorten it */
    char rbuf[16384];    /* read buffer, shared: each read is parsed at once */
    /* figures for status and /metrics */
    uint64_t accepted, refused, timeouts, bad_requests;
    uint64_t responses_2xx, responses_4xx, responses_5xx;
} http_t;

/*
 * Parses "host:port" where host is a numeric IPv4 address, "[IPv6]" or
 * "localhost" (127.0.0.1); names are not resolved (that would block the
 * loop). Writes the address to *ret_addr if it is non-NULL. Returns 0, or -1
 * with the reason in why. Any context.
 */
int http_listen_parse(const char *s, struct sockaddr_storage *ret_addr, char *why, size_t whylen);

/*
 * Starts listening on listen ("" = off: nothing is opened, returns 0).
 * Returns 0, or -1 with the reason in err (the caller still calls
 * http_close). Called on the loop's thread before or while it runs.
 */
int http_start(http_t *h, struct server *srv, const char *listen, char *err, size_t errlen);

/* Starts closing the listener and every connection (a no-op the second
 * time). No callback: the handles are the loop's, so a caller knows they
 * are all closed when the loop runs out (the server's shutdown proves it
 * with uv_loop_close() == 0); until then h must stay in place. Safe on an h
 * that http_start failed on, or never ran on (all zero). */
void http_close(http_t *h);

#endif
