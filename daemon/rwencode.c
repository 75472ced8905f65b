/* rwencode.c -- see rwencode.h. */
#include "daemon/rwencode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "daemon/remotewrite.pb-c.h"
#include "daemon/xalloc.h"

void rwencode_metric_name(const char *metric, char *buf, size_t size)
{
    int n = snprintf(buf, size, "clustermon_%s", metric);
    for (int i = (int)sizeof "clustermon_" - 1; i < n && (size_t)i < size; i++) {
        char c = buf[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            buf[i] = '_';
    }
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil, as an arithmetic identity). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int64_t rwencode_period_start_ms(proto_period_t p)
{
    unsigned month = 1;
    if (p.kind == PROTO_PERIOD_MONTH)
        month = p.index;
    else if (p.kind == PROTO_PERIOD_QUARTER)
        month = 3u * (p.index - 1u) + 1u;
    return days_from_civil(p.year, month, 1) * 86400000;
}

const char *rwencode_period_kind(proto_period_t p)
{
    switch (p.kind) {
    case PROTO_PERIOD_MONTH: return "month";
    case PROTO_PERIOD_QUARTER: return "quarter";
    case PROTO_PERIOD_YEAR: return "year";
    default: return NULL;
    }
}

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -1)

int rwencode_request(const rw_sample_t *s, size_t n, void **ret, size_t *ret_len, char *err,
                     size_t errlen)
{
    enum { MAXL = 7 };
    Prometheus__TimeSeries *ts = xcalloc(n ? n : 1, sizeof *ts);
    Prometheus__TimeSeries **tsp = xcalloc(n ? n : 1, sizeof *tsp);
    Prometheus__Label *lab = xcalloc((n ? n : 1) * MAXL, sizeof *lab);
    Prometheus__Label **labp = xcalloc((n ? n : 1) * MAXL, sizeof *labp);
    Prometheus__Sample *smp = xcalloc(n ? n : 1, sizeof *smp);
    Prometheus__Sample **smpp = xcalloc(n ? n : 1, sizeof *smpp);
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&ts[i]);
        prometheus__sample__init(&smp[i]);
        smp[i].value = s[i].value;
        smp[i].timestamp = s[i].ts_ms;
        smpp[i] = &smp[i];
        /* sorted by name: __name__ < chain < city < cluster < firm < metric < period */
        const char *kv[MAXL][2] = {
            {"__name__", s[i].name},   {"chain", s[i].chain}, {"city", s[i].city},
            {"cluster", s[i].cluster}, {"firm", s[i].firm},   {"metric", s[i].metric},
            {"period", s[i].period},
        };
        size_t nl = 0;
        for (size_t k = 0; k < MAXL; k++) {
            if (!kv[k][1] || !kv[k][1][0])
                continue; /* an empty label is no label to Prometheus */
            Prometheus__Label *l = &lab[i * MAXL + nl];
            prometheus__label__init(l);
            l->name = (char *)(uintptr_t)kv[k][0];
            l->value = (char *)(uintptr_t)kv[k][1];
            labp[i * MAXL + nl] = l;
            nl++;
        }
        ts[i].n_labels = nl;
        ts[i].labels = &labp[i * MAXL];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        tsp[i] = &ts[i];
    }
    Prometheus__WriteRequest wr;
    prometheus__write_request__init(&wr);
    wr.n_timeseries = n;
    wr.timeseries = tsp;
    size_t plen = prometheus__write_request__get_packed_size(&wr);
    uint8_t *plain = xmalloc(plen ? plen : 1);
    prometheus__write_request__pack(&wr, plain);
    size_t clen = snappy_max_compressed_length(plen);
    char *comp = xmalloc(clen);
    snappy_status st = snappy_compress((const char *)plain, plen, comp, &clen);
    free(plain);
    free(ts);
    free(tsp);
    free(lab);
    free(labp);
    free(smp);
    free(smpp);
    if (st != SNAPPY_OK) {
        free(comp);
        FAIL("snappy_compress: status %d", (int)st);
    }
    *ret = comp;
    *ret_len = clen;
    return 0;
}

int rwencode_inspect(const void *buf, size_t len, size_t *ret_series, double *ret_sum)
{
    size_t plen;
    if (snappy_uncompressed_length(buf, len, &plen) != SNAPPY_OK)
        return -1;
    char *plain = xmalloc(plen ? plen : 1);
    if (snappy_uncompress(buf, len, plain, &plen) != SNAPPY_OK) {
        free(plain);
        return -1;
    }
    Prometheus__WriteRequest *wr =
        prometheus__write_request__unpack(NULL, plen, (const uint8_t *)plain);
    free(plain);
    if (!wr)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++)
        for (size_t k = 0; k < wr->timeseries[i]->n_samples; k++)
            sum += wr->timeseries[i]->samples[k]->value;
    *ret_series = wr->n_timeseries;
    *ret_sum = sum;
    prometheus__write_request__free_unpacked(wr, NULL);
    return 0;
}

int rwencode_url(const char *url, rw_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (strncmp(url, "http://", 7) != 0)
        FAIL("'%.200s': only http://HOST[:PORT]/PATH (for TLS, a local proxy)", url);
    const char *h = url + 7;
    size_t hl = strcspn(h, "/");
    const char *path = h + hl;
    const char *colon = memchr(h, ':', hl);
    if (h[0] == '[') { /* an IPv6 literal: [::1]:9090 */
        const char *close = memchr(h, ']', hl);
        if (!close)
            FAIL("'%.200s': an IPv6 host needs its ']'", url);
        if ((size_t)(close - h - 1) >= sizeof u->host)
            FAIL("'%.200s': host too long", url);
        memcpy(u->host, h + 1, (size_t)(close - h - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        size_t n = colon ? (size_t)(colon - h) : hl;
        if (n == 0 || n >= sizeof u->host)
            FAIL("'%.200s': no host, or one too long", url);
        memcpy(u->host, h, n);
    }
    if (colon) {
        size_t pl = (size_t)(h + hl - colon - 1);
        if (pl == 0 || pl >= sizeof u->port || strspn(colon + 1, "0123456789") < pl)
            FAIL("'%.200s': the port is not a number", url);
        memcpy(u->port, colon + 1, pl);
    } else {
        snprintf(u->port, sizeof u->port, "80");
    }
    snprintf(u->path, sizeof u->path, "%s", *path ? path : "/");
    if (strlen(path) >= sizeof u->path)
        FAIL("'%.200s': path too long", url);
    return 0;
}

static size_t base64(const char *in, char *out, size_t size)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 4 < size; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

int rwencode_head(char *buf, size_t size, const rw_url_t *u, const char *auth, size_t body_len)
{
    char b64[700] = "";
    if (auth)
        base64(auth, b64, sizeof b64);
    bool v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(buf, size,
                     "POST %s HTTP/1.1\r\n"
                     "Host: %s%s%s:%s\r\n"
                     "User-Agent: clustermond/" CLUSTERMON_VERSION "\r\n"
                     "Content-Type: application/x-protobuf\r\n"
                     "Content-Encoding: snappy\r\n"
                     "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s%s"
                     "Connection: close\r\n\r\n",
                     u->path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, body_len,
                     auth ? "Authorization: Basic " : "", b64, auth ? "\r\n" : "");
    return n < 0 || (size_t)n >= size ? -1 : n;
}
