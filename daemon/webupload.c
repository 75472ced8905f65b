/* webupload.c -- see webupload.h. */
#include "daemon/webupload.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/ctljson.h"
#include "agents/input.h"
#include "agents/utf8.h"
#include "daemon/ingest.h"
#include "daemon/keys.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"
#include "proto/hash.h"

#define NAME_MAX_LEN 128 /* an uploaded file's name */

/* ---- replies ---------------------------------------------------------------- */

/* ---- the request ------------------------------------------------------------- */

/* The value of key in the query string, percent-decoded into out; false if
 * absent or malformed. */
static bool query_get(const webapi_request_t *wr, const char *key, char *out, size_t size)
{
    const char *s = wr->query, *end = wr->query + wr->query_len;
    size_t klen = strlen(key);
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - s) > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') {
            size_t k = 0;
            for (const char *p = s + klen + 1; p < pe; p++) {
                char ch = *p;
                if (ch == '%' && pe - p > 2) {
                    char hex[3] = {p[1], p[2], 0}, *e;
                    long v = strtol(hex, &e, 16);
                    if (*e || v <= 0)
                        return false;
                    ch = (char)v;
                    p += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (k + 1 >= size)
                    return false;
                out[k++] = ch;
            }
            out[k] = '\0';
            return true;
        }
        s = pe + 1;
    }
    return false;
}

/* The file's extension the reader goes by, or NULL if it reads none such. */
static const char *name_ext(const char *name)
{
    static const char *const exts[] = {".csv", ".txt", ".xlsx", ".xls"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0)
            return exts[i];
    }
    return NULL;
}

/* An uploaded file's name: what a browser sends (no directory), printable
 * UTF-8 (it is said back in JSON). */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || !utf8_valid(name, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < ' ' || name[i] == '/' || name[i] == '\\' || name[i] == 0x7f)
            return false;
    return true;
}

/* ---- reading the file ---------------------------------------------------------- */

/* A file read by the agent's reader. The samples' strings are the reader's:
 * valid until parsed_free. */
typedef struct {
    input_reader_t *r;
    proto_sample_t *samples; /* PROTO_MAX_SAMPLES + 1 */
    unsigned long *lines;    /* the line (a sheet's row) of each sample */
    size_t n;
    char err[INPUT_ERRLEN]; /* "name:line: field: reason" of the line the reader refused, or "" */
    unsigned long err_line; /* that line, 0 if the error names none */
} parsed_t;

static void parsed_free(parsed_t *p)
{
    input_reader_destroy(&p->r);
    free(p->samples);
    free(p->lines);
}

/* Replaces every "from" in s (size bytes) with "to": the reader names the
 * temporary copy in a few messages (a spreadsheet that does not open). */
static void replace_all(char *s, size_t size, const char *from, const char *to)
{
    char out[INPUT_ERRLEN];
    size_t k = 0, fl = strlen(from), tl = strlen(to);
    for (const char *p = s; *p && k + 1 < sizeof out;) {
        if (strncmp(p, from, fl) == 0) {
            size_t c = tl < sizeof out - 1 - k ? tl : sizeof out - 1 - k;
            memcpy(out + k, to, c);
            k += c;
            p += fl;
        } else {
            out[k++] = *p++;
        }
    }
    out[k] = '\0';
    snprintf(s, size, "%s", out);
}

/*
 * Reads the upload's bytes as the agent reads a file called name. Returns 0
 * (the rows in p; a line the reader refused in p->err, the rows before it
 * kept), or -1 with the HTTP status and reason in why (the file could not
 * be read at all).
 */
static int parse_upload(server_t *srv, const char *name, const webapi_request_t *wr, parsed_t *p,
                        int *ret_status, char *why, size_t whylen)
{
    memset(p, 0, sizeof *p);
    const char *ext = name_ext(name);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/upload-XXXXXX%s", srv->cfg->state_dir, ext);
    int fd = mkstemps(tmp, (int)strlen(ext));
    if (fd < 0) {
        *ret_status = 500;
        snprintf(why, whylen, "cannot keep the upload for reading: %s", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < wr->body_len) {
        ssize_t w = write(fd, wr->body + off, wr->body_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *ret_status = 500;
            snprintf(why, whylen, "cannot keep the upload for reading: %s", strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    char err[INPUT_ERRLEN];
    p->r = input_reader_open_named(tmp, name, err, sizeof err);
    if (!p->r) {
        unlink(tmp);
        *ret_status = 500;
        snprintf(why, whylen, "%s", err);
        return -1;
    }
    /* one read takes the whole file (a regular file never blocks), so the
     * samples' strings stay valid until the reader goes */
    p->samples = xcalloc(PROTO_MAX_SAMPLES + 1, sizeof *p->samples);
    p->lines = xcalloc(PROTO_MAX_SAMPLES + 1, sizeof *p->lines);
    int rc = input_read_batch(p->r, p->samples, PROTO_MAX_SAMPLES + 1, &p->n, p->lines, p->err,
                              sizeof p->err);
    unlink(tmp);
    if (rc != INPUT_OK) {
        replace_all(p->err, sizeof p->err, tmp, name);
        size_t nl = strlen(name);
        if (strncmp(p->err, name, nl) == 0 && p->err[nl] == ':')
            p->err_line = strtoul(p->err + nl + 1, NULL, 10);
        if (p->n == 0 && p->err_line == 0) { /* nothing readable: not a table at all */
            *ret_status = 400;
            snprintf(why, whylen, "%s", p->err);
            parsed_free(p);
            return -1;
        }
    }
    if (p->n > PROTO_MAX_SAMPLES) {
        *ret_status = 413;
        snprintf(why, whylen, "%s: more than %d rows: split it into smaller files", name,
                 PROTO_MAX_SAMPLES);
        parsed_free(p);
        return -1;
    }
    if (p->n == 0 && !*p->err) {
        *ret_status = 400;
        snprintf(why, whylen, "%s: no rows", name);
        parsed_free(p);
        return -1;
    }
    return 0;
}

/* ---- through ingest ---------------------------------------------------------------- */

/* Who uploads: the stream's agent id and the key standing in for a CURVE
 * key (NULL: an admin, any firm). */
typedef struct {
    const char *user;
    access_key_t key;
    uint32_t *firms; /* owned: the registry indexes of a firm login's firms, sorted */
    bool any;
} uploader_t;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Fills u from the request; false after replying 403. report_cluster and
 * firms are allocated (free them). */
static bool uploader_of(server_t *srv, const webapi_request_t *wr, uploader_t *u,
                        webapi_reply_t *rep)
{
    memset(u, 0, sizeof *u);
    u->user = wr->user;
    if (!wr->user || (!(wr->roles & KEY_ROLE_ADMIN) && !(wr->firms && *wr->firms))) {
        webapi_reply_error(rep, 403,
                           "uploads need a firm's login (http_users role firm:ID) or an admin's");
        return false;
    }
    if (wr->roles & KEY_ROLE_ADMIN) {
        u->any = true;
        return true;
    }
    /* a firm login: like its firm's CURVE key, it reports for its firms only */
    u->key.name = (char *)(uintptr_t)wr->user;
    u->key.roles = KEY_ROLE_AGENT;
    u->key.report_cluster = xcalloc(srv->cfg->nclusters ? srv->cfg->nclusters : 1, 1);
    size_t cap = 1;
    for (const char *p = wr->firms; *p; p++)
        cap += *p == ';';
    u->firms = xcalloc(cap, sizeof *u->firms);
    u->key.report_firms = u->firms;
    snprintf(u->key.z85, sizeof u->key.z85, "web-user"); /* said as "(web-user...)" */
    for (const char *p = wr->firms; *p && u->key.nreport_firms < cap;) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        int f = registry_find(srv->reg, p, n);
        if (f >= 0)
            u->firms[u->key.nreport_firms++] = (uint32_t)f;
        if (!semi)
            break;
        p = semi + 1;
    }
    qsort(u->firms, u->key.nreport_firms, sizeof u->firms[0], cmp_u32);
    return true;
}

/* The next seq of u's stream (1 before its first upload). */
static uint64_t next_seq(server_t *srv, const char *user)
{
    stream_t *s = streams_get(&srv->ingest.streams, WEBUPLOAD_KEY, proto_str(user));
    return s && s->epoch == WEBUPLOAD_EPOCH && s->next ? s->next : 1;
}

/* Sends p's rows through ingest as batch seq of u's stream (a check if
 * dry_run); the answer decoded into *ack, its reasons borrowing from *buf
 * (the caller destroys it). Returns 0, or -1 with the reason in why. */
static int submit(server_t *srv, const uploader_t *u, const parsed_t *p, uint64_t seq, bool dry_run,
                  msgpack_sbuffer *buf, proto_ack_t *ack, uint64_t *ret_wal_pos, char *why,
                  size_t whylen)
{
    proto_batch_t b = {.agent = proto_str(u->user),
                       .epoch = WEBUPLOAD_EPOCH,
                       .seq = seq,
                       .nsamples = (uint32_t)p->n,
                       .samples = p->samples,
                       .cap = (uint32_t)p->n,
                       .partial = true,
                       .dry_run = dry_run};
    msgpack_sbuffer msg;
    msgpack_sbuffer_init(&msg);
    char err[PROTO_ERRLEN];
    if (proto_batch_encode(&b, &msg, err, sizeof err) < 0) {
        snprintf(why, whylen, "cannot encode the rows: %s", err);
        msgpack_sbuffer_destroy(&msg);
        return -1;
    }
    ingest_local(&srv->ingest, WEBUPLOAD_KEY, u->any ? NULL : &u->key, msg.data, msg.size, buf,
                 ret_wal_pos);
    msgpack_sbuffer_destroy(&msg);
    if (proto_ack_decode(buf->data, buf->size, ack, err, sizeof err) != PROTO_OK) {
        snprintf(why, whylen, "ingest's answer: %s", err);
        return -1;
    }
    return 0;
}

/* "sample 12: unknown firm 'x'" -> "unknown firm 'x'" (the index is said as a line). */
static proto_str_t strip_sample(proto_str_t r)
{
    size_t i = 7;
    if (r.len < 10 || memcmp(r.ptr, "sample ", 7) != 0)
        return r;
    while (i < r.len && r.ptr[i] >= '0' && r.ptr[i] <= '9')
        i++;
    if (i == 7 || i + 2 > r.len || r.ptr[i] != ':' || r.ptr[i + 1] != ' ')
        return r;
    return (proto_str_t){r.ptr + i + 2, (uint32_t)(r.len - i - 2)};
}

/* The problems of a file as clustermon-agent --check says them, by line:
 * the reader's refusal (if any) and every sample the daemon refused. */
static json_t *problems_json(const char *name, const parsed_t *p, const proto_ack_t *ack)
{
    json_t *arr = json_array();
    for (uint32_t k = 0; ack && k < ack->nrefused; k++) {
        const proto_refusal_t *r = &ack->refused[k];
        if (r->index >= p->n)
            continue;
        proto_str_t why = strip_sample(r->reason);
        char text[PROTO_MAX_TEXT_LEN + NAME_MAX_LEN + 32];
        snprintf(text, sizeof text, "%s:%lu: %.*s", name, p->lines[r->index], (int)why.len,
                 why.ptr);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s%}", "line",
                                             (json_int_t)p->lines[r->index], "status",
                                             proto_status_name((proto_status_t)r->status), "reason",
                                             text, "firm", p->samples[r->index].firm.ptr,
                                             (size_t)p->samples[r->index].firm.len));
    }
    if (*p->err)
        json_array_append_new(arr,
                              json_pack("{s:I, s:s, s:s, s:n}", "line", (json_int_t)p->err_line,
                                        "status", "unreadable", "reason", p->err, "firm"));
    return arr;
}

/* Per metric, the rows the daemon would take and their sum as an exact
 * decimal string (values in milli-units, as the daemon stores them). */
static json_t *sums_json(const parsed_t *p, const proto_ack_t *ack)
{
    bool *refused = xcalloc(p->n ? p->n : 1, sizeof *refused);
    for (uint32_t k = 0; ack && k < ack->nrefused; k++)
        if (ack->refused[k].index < p->n)
            refused[ack->refused[k].index] = true;
    json_t *o = json_object();
    for (size_t i = 0; i < p->n; i++) {
        if (refused[i])
            continue;
        char metric[PROTO_MAX_ID_LEN + 1];
        snprintf(metric, sizeof metric, "%.*s", (int)p->samples[i].metric.len,
                 p->samples[i].metric.ptr);
        json_t *m = json_object_get(o, metric);
        if (!m) {
            m = json_pack("{s:I, s:I}", "rows", (json_int_t)0, "milli", (json_int_t)0);
            json_object_set_new(o, metric, m);
        }
        json_int_t milli = (json_int_t)llround(p->samples[i].value * 1000.0);
        json_object_set_new(m, "rows",
                            json_integer(json_integer_value(json_object_get(m, "rows")) + 1));
        json_object_set_new(m, "milli",
                            json_integer(json_integer_value(json_object_get(m, "milli")) + milli));
    }
    const char *key;
    json_t *m;
    json_object_foreach(o, key, m)
    {
        char buf[CTLJSON_MILLI_STRLEN];
        json_object_set_new(
            m, "sum",
            json_string(ctljson_milli_format(
                (int64_t)json_integer_value(json_object_get(m, "milli")), buf, sizeof buf)));
        json_object_del(m, "milli");
    }
    free(refused);
    return o;
}

/* ---- the three requests -------------------------------------------------------------- */

static uint64_t upload_digest(const char *name, const webapi_request_t *wr)
{
    uint64_t h = hash_fnv1a_update(HASH_FNV1A_OFFSET, name, strlen(name) + 1);
    return hash_fnv1a_update(h, wr->body, wr->body_len);
}

static webupload_recent_t *recent_find(webupload_t *w, const char *user, uint64_t seq)
{
    for (unsigned i = 0; i < WEBUPLOAD_RECENT; i++)
        if (w->recent[i].seq == seq && strcmp(w->recent[i].user, user) == 0)
            return &w->recent[i];
    return NULL;
}

static void upload_state(server_t *srv, const uploader_t *u, const webapi_request_t *wr,
                         webapi_reply_t *rep)
{
    json_t *firms = json_array();
    for (size_t i = 0; i < u->key.nreport_firms; i++) {
        const firm_t *f = &srv->reg->firms[u->firms[i]];
        json_array_append_new(firms, json_pack("{s:s, s:s}", "id", f->id, "name", f->name));
    }
    /* the page's form offers these: a firm reports period metrics, an
     * agent sends the readings */
    json_t *metrics = json_array();
    for (size_t i = 0; i < srv->cfg->nmetrics; i++)
        if (srv->cfg->metrics[i].kind == METRIC_PERIOD)
            json_array_append_new(metrics, json_string(srv->cfg->metrics[i].name));
    webapi_reply_json(rep, 200,
                      json_pack("{s:s, s:o, s:o, s:b, s:I, s:I}", "user", wr->user, "firms", firms,
                                "metrics", metrics, "any_firm", u->any, "next_seq",
                                (json_int_t)next_seq(srv, u->user), "max_bytes",
                                (json_int_t)HTTP_MAX_UPLOAD));
}

static void upload_run(server_t *srv, webupload_t *w, const uploader_t *u,
                       const webapi_request_t *wr, bool apply, webapi_reply_t *rep)
{
    char name[NAME_MAX_LEN + 1], v[32], why[INPUT_ERRLEN + 64];
    if (!query_get(wr, "name", name, sizeof name) || !name_ok(name) || !name_ext(name)) {
        webapi_reply_error(rep, 400, "name: the file's name, ending in .csv, .txt, .xlsx or .xls");
        return;
    }
    uint64_t next = next_seq(srv, u->user), seq = next;
    if (apply) {
        char *e;
        unsigned long long s = query_get(wr, "seq", v, sizeof v) ? strtoull(v, &e, 10) : 0;
        if (s == 0 || *e) {
            webapi_reply_error(rep, 400, "seq: the seq the check handed out (a positive integer)");
            return;
        }
        seq = s;
    }
    uint64_t digest = upload_digest(name, wr);
    bool resend = false;
    if (apply && seq != next) {
        webupload_recent_t *r = seq < next ? recent_find(w, u->user, seq) : NULL;
        if (!r || r->digest != digest) {
            webapi_reply_error(rep, 409,
                               "upload %llu is not this file's: %s; check the file again (the next "
                               "upload is %llu)",
                               (unsigned long long)seq,
                               seq > next ? "it was never handed out"
                               : r ? "another file was applied as it since this one was checked"
                                   : "it was settled before the daemon last started",
                               (unsigned long long)next);
            return;
        }
        resend = true; /* a double click or a retried POST: ingest answers it as a duplicate */
    }
    parsed_t p;
    int status;
    if (parse_upload(srv, name, wr, &p, &status, why, sizeof why) != 0) {
        webapi_reply_error(rep, status, "%s", why);
        return;
    }
    if (apply && *p.err) {
        json_t *probs = problems_json(name, &p, NULL);
        webapi_reply_json(
            rep, 400,
            json_pack("{s:s, s:o}", "error",
                      "the file has a line the reader cannot take: fix it and check again",
                      "problems", probs));
        parsed_free(&p);
        return;
    }
    proto_ack_t ack = {.refused = xcalloc(PROTO_MAX_SAMPLES, sizeof *ack.refused),
                       .refused_cap = PROTO_MAX_SAMPLES};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    uint64_t wal_pos = 0;
    if (p.n == 0) { /* only an unreadable line: nothing to judge */
        ack.status = PROTO_STATUS_OK;
    } else if (submit(srv, u, &p, seq, !apply, &buf, &ack, &wal_pos, why, sizeof why) != 0) {
        webapi_reply_error(rep, 500, "%s", why);
        goto done;
    }
    if (ack.status != PROTO_STATUS_OK && ack.status != PROTO_STATUS_PARTIAL) {
        int code = ack.status == PROTO_STATUS_BUSY || ack.status == PROTO_STATUS_RATE_LIMITED ? 503
                   : ack.status == PROTO_STATUS_OUT_OF_ORDER                                  ? 409
                                                                                              : 400;
        webapi_reply_error(rep, code, "%s: %.*s", proto_status_name((proto_status_t)ack.status),
                           (int)ack.reason.len, ack.reason.ptr);
        goto done;
    }
    if (apply && !resend) {
        webupload_recent_t *r = &w->recent[w->next++ % WEBUPLOAD_RECENT];
        snprintf(r->user, sizeof r->user, "%s", u->user);
        r->seq = seq;
        r->digest = digest;
    }
    uint32_t problems = ack.nrefused + (*p.err ? 1 : 0);
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:b, s:b, s:b}", "file", name, "rows",
                  (json_int_t)p.n + (*p.err ? 1 : 0), "accepted",
                  (json_int_t)(apply ? ack.accepted : 0), "problem_count", (json_int_t)problems,
                  "problems", problems_json(name, &p, &ack), "sums", sums_json(&p, &ack), "seq",
                  (json_int_t)seq, "applied", apply, "already_applied", resend, "dry_run", !apply);
    json_object_set_new(j, "next_seq", json_integer((json_int_t)next_seq(srv, u->user)));
    webapi_reply_json(rep, 200, j);
    rep->wal_pos = wal_pos;
done:
    msgpack_sbuffer_destroy(&buf);
    free(ack.refused);
    parsed_free(&p);
}

void webupload_handle(server_t *srv, webupload_t *w, const webapi_request_t *wr, const char *rest,
                      size_t rest_len, webapi_reply_t *rep)
{
    uploader_t u;
    if (!uploader_of(srv, wr, &u, rep))
        return;
#define IS(p) (rest_len == strlen(p) && memcmp(rest, p, rest_len) == 0)
    if (IS("state") && !wr->post)
        upload_state(srv, &u, wr, rep);
    else if (IS("check") && wr->post)
        upload_run(srv, w, &u, wr, false, rep);
    else if (IS("apply") && wr->post)
        upload_run(srv, w, &u, wr, true, rep);
    else if (IS("state") || IS("check") || IS("apply"))
        webapi_reply_error(rep, 405, "upload/%.*s: use %s", (int)rest_len, rest,
                           IS("state") ? "GET" : "POST");
    else
        webapi_reply_error(rep, 404, "no such upload API: state, check, apply");
#undef IS
    free(u.key.report_cluster);
    free(u.firms);
}
