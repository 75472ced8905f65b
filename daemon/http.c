/*
 * http.c -- see http.h. A deliberately small HTTP/1.1 server: a fixed route
 * table, small bodies, bounded everything.
 *
 * A connection's life: accepted (its idle timer starts) -> bytes are fed to
 * http-parser as they arrive, counting them against HTTP_MAX_REQUEST -> on a
 * complete request, reading stops, the caller is authenticated (a password
 * not remembered goes to the thread pool first), the answer is built and
 * written with one uv_write -> on write completion the connection either
 * waits for the next request (keep-alive; the timer restarts) or is shut
 * down and closed. An events request instead turns the connection into a
 * stream that only this side writes to (its timer then beats the
 * heartbeat). Any error, a timeout or the server closing closes it; its
 * memory is freed once both handles are closed and no password check on
 * the thread pool still refers to it, never earlier.
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
#include "daemon/webapi.h"
#include "daemon/webassets.h"
#include "daemon/webusers.h"
#include "daemon/xalloc.h"

#define URL_MAX 256
#define AUTH_MAX 512
#define API_PREFIX "/api/v1/"

/* What every answer carries: the pages load nothing from elsewhere (the
 * chart library sets inline styles, hence style-src 'unsafe-inline'). */
#define COMMON_HEADERS                                                                             \
    "Cache-Control: no-store\r\n"                                                                  \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'; "              \
    "img-src 'self' data:; frame-ancestors 'none'\r\n"

typedef enum { HDR_NONE, HDR_AUTH, HDR_CTYPE } header_t;

struct http_conn {
    http_t *h;
    http_conn_t *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_parser parser;
    int open_handles; /* tcp and timer until both are closed */
    bool verifying;   /* a password check on the thread pool refers to this */
    bool closing;
    bool complete; /* a whole request has been parsed */
    bool keep_alive;
    bool sse;             /* an events stream */
    size_t request_bytes; /* of the current request, for HTTP_MAX_REQUEST */
    char url[URL_MAX];
    size_t url_len;
    bool url_too_long;
    header_t hdr; /* the header whose value arrives now */
    bool hdr_field_done;
    char hname[32];
    size_t hname_len;
    char auth[AUTH_MAX]; /* Authorization */
    size_t auth_len;
    char ctype[64]; /* Content-Type */
    size_t ctype_len;
    char body_in[HTTP_MAX_BODY];
    size_t body_in_len;
    bool body_too_long;
    char *upload; /* owned: a POST to upload/'s body (a file), up to HTTP_MAX_UPLOAD, or NULL */
    size_t upload_len, upload_cap;
    unsigned roles;                     /* of the authenticated caller */
    char user[WEBUSERS_NAME_MAX + 1];   /* "" without logins */
    char firms[WEBUSERS_FIRMS_MAX + 1]; /* a firm login's firms, else "" */
    uint64_t held_wal_pos;              /* an answer held for the WAL (0: none) */
    webapi_reply_t held;                /* that answer (its body owned) */
    bool held_head;                     /* ... to a HEAD */
    char head[1024];                    /* the response's status line and headers */
    char *body_owned;                   /* the response body while it is written, or NULL */
};

/* One write to an events stream: its request and its bytes. */
typedef struct {
    uv_write_t req;
    size_t len;
    char data[];
} sse_write_t;

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

/* Frees c once nothing refers to it any more: both handles closed and no
 * password check pending. */
static void conn_maybe_free(http_conn_t *c)
{
    if (c->open_handles > 0 || c->verifying)
        return;
    http_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    if (c->sse)
        h->nsse--;
    free(c->body_owned);
    free(c->upload);
    free(c->held.body);
    sodium_memzero(c->auth, sizeof c->auth);
    free(c);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    http_conn_t *c = handle->data;
    c->open_handles--;
    conn_maybe_free(c);
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
    webusers_destroy(&h->users); /* a pending check holds copies, not the set */
}

/* ---- answering ---------------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void timer_cb(uv_timer_t *t);
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

static void request_reset(http_conn_t *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->complete = false;
    c->request_bytes = 0;
    c->url_len = 0;
    c->url_too_long = false;
    c->hdr = HDR_NONE;
    c->hdr_field_done = false;
    c->hname_len = 0;
    sodium_memzero(c->auth, sizeof c->auth);
    c->auth_len = 0;
    c->ctype_len = 0;
    c->body_in_len = 0;
    c->body_too_long = false;
    free(c->upload);
    c->upload = NULL;
    c->upload_len = c->upload_cap = 0;
}

static void write_cb(uv_write_t *req, int status)
{
    http_conn_t *c = req->data;
    free(c->body_owned);
    c->body_owned = NULL;
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
    request_reset(c);
    uv_timer_again(&c->timer);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

/* Writes one response (status line, headers, body) and stops reading until
 * it is written. data is borrowed until the write completes: static, or
 * owned (then owned is data, freed after the write). extra is more header
 * lines, each ending in \r\n, or "". */
static void respond(http_conn_t *c, int code, const char *reason, const char *ctype,
                    const char *data, size_t len, char *owned, bool head_only, const char *extra)
{
    http_t *h = c->h;
    if (code < 300)
        h->responses_2xx++;
    else if (code < 500)
        h->responses_4xx++;
    else
        h->responses_5xx++;
    free(c->body_owned);
    c->body_owned = owned;
    uv_read_stop((uv_stream_t *)&c->tcp);
    int n = snprintf(c->head, sizeof c->head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n" COMMON_HEADERS "%s"
                     "Connection: %s\r\n"
                     "\r\n",
                     code, reason, ctype, len, extra, c->keep_alive ? "keep-alive" : "close");
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                        uv_buf_init((char *)(uintptr_t)data, (unsigned)len)};
    unsigned nbufs = head_only || len == 0 ? 1 : 2;
    c->wreq.data = c;
    uv_timer_again(&c->timer); /* a client that does not read its answer times out too */
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, write_cb) != 0) {
        free(c->body_owned);
        c->body_owned = NULL;
        conn_close(c);
    }
}

static void respond_text(http_conn_t *c, int code, const char *reason, const char *text,
                         const char *extra)
{
    size_t n = strlen(text);
    char *body = xmalloc(n + 2);
    memcpy(body, text, n);
    body[n] = '\n';
    body[n + 1] = '\0';
    c->keep_alive = c->keep_alive && code < 400;
    respond(c, code, reason, "text/plain; charset=utf-8", body, n + 1, body, false, extra);
}

static void respond_metrics_text(http_conn_t *c, const char *ctype, metrics_text_t *t, bool head)
{
    char *data = t->data;
    size_t len = t->len;
    memset(t, 0, sizeof *t);
    respond(c, 200, "OK", ctype, data ? data : "", len, data, head, "");
}

/* ---- events (Server-Sent Events) ------------------------------------------ */

static void sse_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write closes through the read side's error */
    free(req->data);
}

/* Queues text on an events stream, or closes a client that is not reading. */
static void sse_write(http_conn_t *c, const char *text, size_t len)
{
    if (c->closing)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > HTTP_SSE_MAX_QUEUE) {
        c->h->sse_dropped++;
        log_warnx("http: events client not reading (over %d bytes waiting): closed",
                  HTTP_SSE_MAX_QUEUE);
        conn_close(c);
        return;
    }
    sse_write_t *w = xmalloc(sizeof *w + len);
    memcpy(w->data, text, len);
    w->len = len;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, sse_written) != 0) {
        free(w);
        conn_close(c);
    }
}

void http_events_send(http_t *h, const char *name, const char *data, size_t len)
{
    if (h->nsse == 0)
        return;
    size_t n = strlen(name) + len + 32;
    char *text = xmalloc(n);
    int k = snprintf(text, n, "event: %s\ndata: %.*s\n\n", name, (int)len, data);
    for (http_conn_t *c = h->conns, *next; c; c = next) {
        next = c->next; /* sse_write may close c (not free it: that waits for the loop) */
        if (c->sse && !c->closing) {
            sse_write(c, text, (size_t)k);
            h->sse_events++;
        }
    }
    free(text);
}

static void sse_heartbeat(http_conn_t *c)
{
    char text[96];
    int k = snprintf(text, sizeof text, "event: heartbeat\ndata: {\"ts_ms\":%lld}\n\n",
                     (long long)calendar_now_ms());
    sse_write(c, text, (size_t)k);
}

static void sse_start(http_conn_t *c)
{
    http_t *h = c->h;
    if (h->nsse >= HTTP_MAX_SSE) {
        respond_text(c, 503, "Service Unavailable", "too many events clients",
                     "Retry-After: 5\r\n");
        return;
    }
    h->responses_2xx++;
    c->sse = true;
    h->nsse++;
    /* a reconnecting EventSource waits retry ms; the page then fetches the
     * alerts afresh, so nothing between the two streams is lost to it */
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/event-stream; charset=utf-8\r\n" COMMON_HEADERS
                               "X-Accel-Buffering: no\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n"
                               "retry: 2000\n\n";
    sse_write(c, head, sizeof head - 1);
    sse_heartbeat(c);
    /* keep reading to see the client go; its timer now beats the heartbeat */
    uv_timer_start(&c->timer, timer_cb, h->sse_heartbeat_ms, h->sse_heartbeat_ms);
}

/* ---- routing ------------------------------------------------------------------ */

static bool path_is(const http_conn_t *c, size_t plen, const char *p)
{
    return plen == strlen(p) && memcmp(c->url, p, plen) == 0;
}

static const char *status_reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    default: return "Error";
    }
}

/* A request to the upload API, whose body is a file (webupload.h). */
static bool is_upload(const http_conn_t *c)
{
    size_t n = strlen(API_PREFIX "upload/");
    return c->url_len > n && memcmp(c->url, API_PREFIX "upload/", n) == 0;
}

void http_wal_synced(http_t *h, uint64_t synced)
{
    for (http_conn_t *c = h->conns; c; c = c->next) {
        if (!c->held_wal_pos || c->held_wal_pos > synced || c->closing)
            continue;
        webapi_reply_t rep = c->held;
        memset(&c->held, 0, sizeof c->held);
        c->held_wal_pos = 0;
        respond(c, rep.status, status_reason(rep.status), "application/json; charset=utf-8",
                rep.body, rep.len, rep.body, c->held_head, "");
    }
}

static void route_api(http_conn_t *c, size_t plen, bool head)
{
    http_t *h = c->h;
    size_t pre = strlen(API_PREFIX);
    /* a firm login uploads its figures and reads nothing else */
    if (!(c->roles & (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN)) && !is_upload(c) &&
        !path_is(c, plen, API_PREFIX "me")) {
        respond_text(c, 403, "Forbidden", "a firm's login may only upload its figures", "");
        return;
    }
    if (path_is(c, plen, API_PREFIX "events")) {
        if (c->parser.method != HTTP_GET) {
            respond_text(c, 405, "Method Not Allowed", "events: GET only", "Allow: GET\r\n");
            return;
        }
        sse_start(c);
        return;
    }
    bool upload = is_upload(c);
    if (c->body_too_long) {
        respond_text(c, 413, "Payload Too Large",
                     upload ? "file over 2 MiB: split it" : "request body over 4096 bytes", "");
        return;
    }
    webapi_request_t req = {
        .post = c->parser.method == HTTP_POST,
        .path = c->url + pre,
        .path_len = plen - pre,
        .query = plen < c->url_len ? c->url + plen + 1 : "",
        .query_len = plen < c->url_len ? c->url_len - plen - 1 : 0,
        .body = upload ? c->upload : c->body_in,
        .body_len = upload ? c->upload_len : c->body_in_len,
        .roles = c->roles,
        .user = *c->user ? c->user : NULL,
        .firms = c->firms,
    };
    /* A browser sends a cross-site form as text/plain or form data, never as
     * JSON without asking first (CORS): requiring JSON keeps other sites from
     * posting with a logged-in officer's credentials. */
    /* A file goes as application/octet-stream, which a browser does not
     * send across sites without asking first either. */
    const char *want = upload ? "application/octet-stream" : "application/json";
    if (req.post && !(c->ctype_len >= strlen(want) && strncmp(c->ctype, want, strlen(want)) == 0)) {
        respond_text(c, 415, "Unsupported Media Type",
                     upload ? "POST needs Content-Type: application/octet-stream (the file)"
                            : "POST needs Content-Type: application/json",
                     "");
        return;
    }
    webapi_reply_t rep = {0};
    webapi_handle(h->srv, &req, &rep);
    if (rep.wal_pos && rep.wal_pos > h->srv->wal.synced) {
        /* an upload applied, its WAL record not yet on disk (fsync = always):
         * the answer waits for it, as an agent's ack does */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->held = rep;
        c->held_head = head;
        c->held_wal_pos = rep.wal_pos;
        return;
    }
    if (rep.status >= 400)
        c->keep_alive = c->keep_alive && rep.status != 413;
    respond(c, rep.status, status_reason(rep.status), "application/json; charset=utf-8", rep.body,
            rep.len, rep.body, head, "");
}

/* The request, its caller known (c->roles). */
static void route_authed(http_conn_t *c)
{
    http_t *h = c->h;
    bool head = c->parser.method == HTTP_HEAD;
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    if (plen >= strlen(API_PREFIX) && memcmp(c->url, API_PREFIX, strlen(API_PREFIX)) == 0) {
        route_api(c, plen, head);
        return;
    }
    if (c->parser.method != HTTP_GET && !head) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD are served here",
                     "Allow: GET, HEAD\r\n");
        return;
    }
    if (path_is(c, plen, "/metrics") && !(c->roles & (KEY_ROLE_VIEWER | KEY_ROLE_ADMIN))) {
        respond_text(c, 403, "Forbidden", "a firm's login may only upload its figures", "");
        return;
    }
    if (path_is(c, plen, "/metrics")) {
        metrics_text_t body = {0};
        metrics_render(h->srv, calendar_now_ms(), &body);
        respond_metrics_text(c, METRICS_CONTENT_TYPE, &body, head);
        return;
    }
    const char *want = path_is(c, plen, "/") ? "/index.html" : NULL;
    for (const webasset_t *a = webassets; a->url; a++) {
        if (want ? strcmp(a->url, want) == 0 : path_is(c, plen, a->url)) {
            respond(c, 200, "OK", a->content_type, (const char *)a->data, a->len, NULL, head, "");
            return;
        }
    }
    respond_text(c, 404, "Not Found", "not found: try /, /metrics or /healthz", "");
}

static void respond_unauthorized(http_conn_t *c, const char *why)
{
    c->h->auth_failures++;
    respond_text(c, 401, "Unauthorized", why,
                 "WWW-Authenticate: Basic realm=\"clustermon\", charset=\"UTF-8\"\r\n");
}

/* A password check on the thread pool: copies, so that neither the
 * connection nor the user set has to outlive it. */
typedef struct {
    uv_work_t work;
    http_conn_t *c;
    char name[WEBUSERS_NAME_MAX + 1];
    char hash[crypto_pwhash_STRBYTES];
    char pw[AUTH_MAX];
    size_t pw_len;
    bool ok;
} verify_t;

static void verify_work(uv_work_t *w)
{
    verify_t *v = w->data;
    v->ok = webusers_verify(v->hash, v->pw, v->pw_len);
}

static void verify_done(uv_work_t *w, int status)
{
    verify_t *v = w->data;
    http_conn_t *c = v->c;
    http_t *h = c->h;
    h->verifying--;
    c->verifying = false;
    if (c->closing) {
        conn_maybe_free(c);
    } else {
        webuser_t *u = h->users ? webusers_find(h->users, v->name, strlen(v->name)) : NULL;
        if (status == 0 && v->ok && u && strcmp(u->hash, v->hash) == 0) {
            webusers_remember(h->users, u, v->pw, v->pw_len, (int64_t)uv_now(&h->srv->loop));
            c->roles = u->roles;
            snprintf(c->user, sizeof c->user, "%s", u->name);
            snprintf(c->firms, sizeof c->firms, "%s", u->firms);
            route_authed(c);
        } else {
            log_warnx("http: wrong password for user '%s'", v->name);
            respond_unauthorized(c, "wrong user name or password");
        }
    }
    sodium_memzero(v, sizeof *v);
    free(v);
}

/* HTTP Basic: "Basic base64(user:password)". */
static void authenticate(http_conn_t *c)
{
    http_t *h = c->h;
    if (c->auth_len < 6 || strncasecmp(c->auth, "Basic ", 6) != 0) {
        respond_unauthorized(c, "log in, please");
        return;
    }
    const char *b64 = c->auth + 6;
    while (*b64 == ' ')
        b64++;
    char cred[AUTH_MAX];
    size_t clen;
    if (sodium_base642bin((unsigned char *)cred, sizeof cred - 1, b64, strlen(b64), NULL, &clen,
                          NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        respond_unauthorized(c, "malformed credentials");
        return;
    }
    cred[clen] = '\0';
    char *colon = memchr(cred, ':', clen);
    webuser_t *u = colon ? webusers_find(h->users, cred, (size_t)(colon - cred)) : NULL;
    if (!u) {
        sodium_memzero(cred, sizeof cred);
        log_warnx("http: login as an unknown user");
        respond_unauthorized(c, "wrong user name or password");
        return;
    }
    const char *pw = colon + 1;
    size_t pw_len = clen - (size_t)(pw - cred);
    if (webusers_remembered(h->users, u, pw, pw_len, (int64_t)uv_now(&h->srv->loop))) {
        sodium_memzero(cred, sizeof cred);
        c->roles = u->roles;
        snprintf(c->user, sizeof c->user, "%s", u->name);
        snprintf(c->firms, sizeof c->firms, "%s", u->firms);
        route_authed(c);
        return;
    }
    if (h->verifying >= HTTP_MAX_VERIFIES) {
        sodium_memzero(cred, sizeof cred);
        c->keep_alive = false;
        respond_text(c, 503, "Service Unavailable", "busy checking passwords: retry",
                     "Retry-After: 1\r\n");
        return;
    }
    verify_t *v = xcalloc(1, sizeof *v);
    v->c = c;
    v->work.data = v;
    snprintf(v->name, sizeof v->name, "%s", u->name);
    snprintf(v->hash, sizeof v->hash, "%s", u->hash);
    memcpy(v->pw, pw, pw_len);
    v->pw_len = pw_len;
    sodium_memzero(cred, sizeof cred);
    if (uv_queue_work(&h->srv->loop, &v->work, verify_work, verify_done) != 0) {
        sodium_memzero(v, sizeof *v);
        free(v);
        respond_text(c, 503, "Service Unavailable", "cannot check the password now",
                     "Retry-After: 1\r\n");
        return;
    }
    h->verifying++;
    c->verifying = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void route(http_conn_t *c)
{
    http_t *h = c->h;
    bool head = c->parser.method == HTTP_HEAD;
    if (c->url_too_long) {
        respond_text(c, 414, "URI Too Long", "URI too long", "");
        return;
    }
    if (c->parser.method != HTTP_GET && !head && c->parser.method != HTTP_POST) {
        respond_text(c, 405, "Method Not Allowed", "only GET, HEAD and POST (the API) are served",
                     "Allow: GET, HEAD, POST\r\n");
        return;
    }
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    if (path_is(c, plen, "/healthz")) { /* for load balancers and systemd: never a login */
        if (c->parser.method == HTTP_POST) {
            respond_text(c, 405, "Method Not Allowed", "only GET and HEAD are served here",
                         "Allow: GET, HEAD\r\n");
            return;
        }
        respond(c, 200, "OK", "text/plain; charset=utf-8", "ok\n", 3, NULL, head, "");
        return;
    }
    if (!h->users) { /* no logins: everyone reads, nobody changes (config.c: loopback only) */
        c->roles = KEY_ROLE_VIEWER;
        c->user[0] = '\0';
        c->firms[0] = '\0';
        route_authed(c);
        return;
    }
    authenticate(c);
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
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (c->hdr_field_done) { /* a new header begins */
        c->hname_len = 0;
        c->hdr_field_done = false;
    }
    c->hdr = HDR_NONE;
    if (c->hname_len + len < sizeof c->hname) {
        memcpy(c->hname + c->hname_len, at, len);
        c->hname_len += len;
    } else {
        c->hname_len = sizeof c->hname; /* too long to be one we read */
    }
    return 0;
}

static void append(char *buf, size_t size, size_t *n, const char *at, size_t len)
{
    if (*n + len >= size) {
        *n = size; /* marked too long: never matches */
        return;
    }
    memcpy(buf + *n, at, len);
    *n += len;
    buf[*n] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (!c->hdr_field_done) {
        c->hdr_field_done = true;
        if (c->hname_len == 13 && strncasecmp(c->hname, "Authorization", 13) == 0)
            c->hdr = HDR_AUTH;
        else if (c->hname_len == 12 && strncasecmp(c->hname, "Content-Type", 12) == 0)
            c->hdr = HDR_CTYPE;
        else
            c->hdr = HDR_NONE;
    }
    if (c->hdr == HDR_AUTH)
        append(c->auth, sizeof c->auth, &c->auth_len, at, len);
    else if (c->hdr == HDR_CTYPE)
        append(c->ctype, sizeof c->ctype, &c->ctype_len, at, len);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (is_upload(c)) { /* a file: grown as it arrives, up to HTTP_MAX_UPLOAD */
        if (c->upload_len + len > HTTP_MAX_UPLOAD) {
            c->body_too_long = true;
            return 0;
        }
        if (c->upload_len + len > c->upload_cap) {
            size_t cap = c->upload_cap ? c->upload_cap : 65536;
            while (cap < c->upload_len + len)
                cap *= 2;
            c->upload = xrealloc(c->upload, cap);
            c->upload_cap = cap;
        }
        memcpy(c->upload + c->upload_len, at, len);
        c->upload_len += len;
        return 0;
    }
    if (c->body_in_len + len > sizeof c->body_in - 1) {
        c->body_too_long = true;
        return 0;
    }
    memcpy(c->body_in + c->body_in_len, at, len);
    c->body_in_len += len;
    c->body_in[c->body_in_len] = '\0';
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
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
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
    if (c->sse) /* an events client has nothing to say: ignored, never buffered */
        return;
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
    if (c->request_bytes > HTTP_MAX_REQUEST + (is_upload(c) ? HTTP_MAX_UPLOAD : 0)) {
        h->bad_requests++;
        respond_text(c, 431, "Request Header Fields Too Large", "request too large", "");
    } else if (e != HPE_OK || c->parser.upgrade) {
        h->bad_requests++;
        respond_text(c, 400, "Bad Request",
                     c->parser.upgrade ? "upgrades are not supported" : http_errno_name(e), "");
    }
}

static void timer_cb(uv_timer_t *t)
{
    http_conn_t *c = t->data;
    if (c->sse) {
        sse_heartbeat(c);
        return;
    }
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
    request_reset(c);
    uv_timer_start(&c->timer, timer_cb, h->timeout_ms, h->timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

int http_start(http_t *h, struct server *srv, const char *listen, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->srv = srv;
    h->timeout_ms = HTTP_TIMEOUT_MS;
    h->sse_heartbeat_ms = HTTP_SSE_HEARTBEAT_MS;
    if (!listen || !*listen)
        return 0;
    snprintf(h->endpoint, sizeof h->endpoint, "%s", listen);
    struct sockaddr_storage addr;
    char why[512];
    if (http_listen_parse(listen, &addr, why, sizeof why) != 0) {
        snprintf(err, errlen, "http: '%s': %s", listen, why);
        return -1;
    }
    const char *users = srv->cfg ? srv->cfg->http_users : NULL;
    if (users && *users &&
        webusers_load(users, srv->reg ? registry_has_member : NULL, srv->reg, &h->users, why,
                      sizeof why) != 0) {
        snprintf(err, errlen, "http_users: %s", why);
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
    log_info("http: serving the dashboard, /api/v1/, /metrics and /healthz on %s (%s)", listen,
             h->users ? "logins from http_users" : "no logins: read-only");
    return 0;
}
