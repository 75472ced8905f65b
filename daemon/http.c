/*
 * http.c -- see http.h. A deliberately small HTTP/1.1 server: two GET
 * routes, no request bodies of interest, bounded everything.
 *
 * A connection's life: accepted (its idle timer starts) -> bytes are fed to
 * http-parser as they arrive, counting them against HTTP_MAX_REQUEST -> on a
 * complete request, reading stops, the answer is built and written with one
 * uv_write -> on write completion the connection either waits for the next
 * request (keep-alive; the timer restarts) or is shut down and closed. Any
 * error, a timeout or the server closing closes it; its memory is freed in
 * the close callback of the last of its two handles, never earlier.
 */
#include "daemon/http.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/calendar.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"

#define URL_MAX 256

struct http_conn {
    http_t *h;
    http_conn_t *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_parser parser;
    int open_handles; /* tcp and timer until both are closed */
    bool closing;
    bool complete; /* a whole request has been parsed */
    bool keep_alive;
    size_t request_bytes; /* of the current request, for HTTP_MAX_REQUEST */
    char url[URL_MAX];
    size_t url_len;
    bool url_too_long;
    char head[512];      /* the response's status line and headers */
    metrics_text_t body; /* the response body while it is written (owned) */
};

int http_listen_parse(const char *s, struct sockaddr_storage *ret_addr, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) {
        snprintf(why, whylen, "expected host:port, e.g. 127.0.0.1:9730");
        return -1;
    }
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof host) {
        snprintf(why, whylen, "host too long");
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
        snprintf(why, whylen, "port must be a number in 1..65535");
        return -1;
    }
    memset(&ss, 0, sizeof ss);
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)&ss) != 0) {
            snprintf(why, whylen, "'%s' is not an IPv6 address", host + 1);
            return -1;
        }
    } else {
        const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        struct in_addr probe;
        if (inet_pton(AF_INET, ip, &probe) != 1 ||
            uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)&ss) != 0) {
            snprintf(why, whylen, "'%s' is not a numeric IPv4 address, [IPv6 address] or localhost",
                     host);
            return -1;
        }
    }
    if (ret_addr)
        *ret_addr = ss;
    return 0;
}

/* ---- closing ---------------------------------------------------------------- */

static void conn_handle_closed(uv_handle_t *handle)
{
    http_conn_t *c = handle->data;
    if (--c->open_handles > 0)
        return;
    http_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    metrics_text_free(&c->body);
    free(c);
}

static void conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void listener_closed(uv_handle_t *handle)
{
    http_t *h = handle->data;
    h->listening = false;
}

void http_close(http_t *h)
{
    if (h->closing)
        return;
    h->closing = true;
    if (h->listening)
        uv_close((uv_handle_t *)&h->listener, listener_closed);
    for (http_conn_t *c = h->conns; c; c = c->next)
        conn_close(c);
}

/* ---- answering ---------------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
    http_conn_t *c = req->data;
    metrics_text_free(&c->body);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!c->keep_alive || c->h->closing) {
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_cb) != 0)
            conn_close(c);
        return;
    }
    /* keep-alive: the next request gets a fresh parser and a fresh deadline */
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->complete = false;
    c->request_bytes = 0;
    c->url_len = 0;
    c->url_too_long = false;
    uv_timer_again(&c->timer);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

/* Writes one response (status line, headers, body) and stops reading until
 * it is written. Takes ownership of *body (which may be empty). */
static void respond(http_conn_t *c, int code, const char *reason, const char *ctype,
                    metrics_text_t *body, bool head_only)
{
    http_t *h = c->h;
    if (code < 300)
        h->responses_2xx++;
    else if (code < 500)
        h->responses_4xx++;
    else
        h->responses_5xx++;
    c->body = *body;
    memset(body, 0, sizeof *body);
    uv_read_stop((uv_stream_t *)&c->tcp);
    int n = snprintf(c->head, sizeof c->head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "Connection: %s\r\n"
                     "\r\n",
                     code, reason, ctype, c->body.len, c->keep_alive ? "keep-alive" : "close");
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                        uv_buf_init(c->body.data, (unsigned)c->body.len)};
    unsigned nbufs = head_only || c->body.len == 0 ? 1 : 2;
    c->wreq.data = c;
    uv_timer_again(&c->timer); /* a client that does not read its answer times out too */
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, write_cb) != 0) {
        metrics_text_free(&c->body);
        conn_close(c);
    }
}

static void respond_text(http_conn_t *c, int code, const char *reason, const char *text)
{
    metrics_text_t body = {0};
    metrics_text_printf(&body, "%s\n", text);
    c->keep_alive = c->keep_alive && code < 400;
    respond(c, code, reason, "text/plain; charset=utf-8", &body, false);
}

static void route(http_conn_t *c)
{
    http_t *h = c->h;
    bool head = c->parser.method == HTTP_HEAD;
    if (c->url_too_long) {
        respond_text(c, 414, "URI Too Long", "URI too long");
        return;
    }
    if (c->parser.method != HTTP_GET && !head) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD are served");
        return;
    }
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    metrics_text_t body = {0};
    if (plen == 8 && memcmp(c->url, "/metrics", 8) == 0) {
        metrics_render(h->srv, calendar_now_ms(), &body);
        respond(c, 200, "OK", METRICS_CONTENT_TYPE, &body, head);
    } else if (plen == 8 && memcmp(c->url, "/healthz", 8) == 0) {
        metrics_text_printf(&body, "ok\n");
        respond(c, 200, "OK", "text/plain; charset=utf-8", &body, head);
    } else if (plen == 1 && c->url[0] == '/') {
        metrics_text_printf(&body, "clustermond %s: see /metrics and /healthz\n",
                            CLUSTERMON_VERSION);
        respond(c, 200, "OK", "text/plain; charset=utf-8", &body, head);
    } else {
        respond_text(c, 404, "Not Found", "not found: try /metrics or /healthz");
    }
}

/* ---- parsing ------------------------------------------------------------------ */

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (c->url_len + len >= URL_MAX) {
        c->url_too_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    c->complete = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* one request at a time: anything after it is not parsed */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn_t *c = handle->data;
    *buf = uv_buf_init(c->h->rbuf, sizeof c->h->rbuf);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *c = stream->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) { /* EOF, reset or error: nothing more to say to this client */
        conn_close(c);
        return;
    }
    http_t *h = c->h;
    size_t len = (size_t)nread;
    c->request_bytes += len;
    size_t used = http_parser_execute(&c->parser, &parser_settings, buf->base, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->complete && !c->parser.upgrade) {
        /* bytes past the request are a pipelined request we do not serve */
        if (used < len)
            c->keep_alive = false;
        route(c);
        return;
    }
    c->keep_alive = false;
    if (c->request_bytes > HTTP_MAX_REQUEST) {
        h->bad_requests++;
        respond_text(c, 431, "Request Header Fields Too Large", "request too large");
    } else if (e != HPE_OK || c->parser.upgrade) {
        h->bad_requests++;
        respond_text(c, 400, "Bad Request",
                     c->parser.upgrade ? "upgrades are not supported" : http_errno_name(e));
    }
}

static void timer_cb(uv_timer_t *t)
{
    http_conn_t *c = t->data;
    c->h->timeouts++;
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    http_t *h = server->data;
    if (status < 0 || h->closing) {
        if (status < 0)
            log_warnx("http: accept: %s", uv_strerror(status));
        return;
    }
    http_conn_t *c = xcalloc(1, sizeof *c);
    c->h = h;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->nconns > HTTP_MAX_CONNS) { /* accepted only to be closed: the backlog stays empty */
        h->refused++;
        conn_close(c);
        return;
    }
    h->accepted++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, timer_cb, h->timeout_ms, h->timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

int http_start(http_t *h, struct server *srv, const char *listen, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->srv = srv;
    h->timeout_ms = HTTP_TIMEOUT_MS;
    if (!listen || !*listen)
        return 0;
    snprintf(h->endpoint, sizeof h->endpoint, "%s", listen);
    struct sockaddr_storage addr;
    char why[128];
    if (http_listen_parse(listen, &addr, why, sizeof why) != 0) {
        snprintf(err, errlen, "http: '%s': %s", listen, why);
        return -1;
    }
    uv_tcp_init(&srv->loop, &h->listener);
    h->listener.data = h;
    h->listening = true;
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 64, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "http: cannot listen on %s: %s", listen, uv_strerror(rc));
        return -1;
    }
    log_info("http: serving /metrics and /healthz on %s", listen);
    return 0;
}
