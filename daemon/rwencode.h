/*
 * rwencode.h -- the bytes of a Prometheus remote-write 1.0 request, for
 * the remote-write forwarder (remotewrite.h): samples with their labels as
 * a protobuf WriteRequest (daemon/remotewrite.proto, protoc-c), compressed
 * with snappy's block format, behind an HTTP/1.1 POST head with the
 * headers the specification asks for. Also the URL parser, the series'
 * names and timestamps: everything that is pure, so tests/check_rwencode.c
 * can table it.
 */
#ifndef CLUSTERMON_RWENCODE_H
#define CLUSTERMON_RWENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define RW_MAX_NAME 96 /* a metric name: "clustermon_" + a sanitized id */

/* One sample of one series. Label values point into the sample itself. */
typedef struct {
    char name[RW_MAX_NAME]; /* __name__ */
    char firm[PROTO_MAX_ID_LEN + 1];
    char cluster[PROTO_MAX_ID_LEN + 1];
    char chain[PROTO_MAX_ID_LEN + 1]; /* "" = none: the label is left out */
    char city[PROTO_MAX_ID_LEN + 1];  /* the registry's city column; "" = none */
    char metric[PROTO_MAX_ID_LEN + 1];
    const char *period; /* "month", "quarter", "year", or NULL for a reading */
    double value;
    int64_t ts_ms;
} rw_sample_t;

/* "clustermon_" + metric with every byte outside [A-Za-z0-9_] as '_'. */
void rwencode_metric_name(const char *metric, char *buf, size_t size);

/* The first instant of period p, 00:00 UTC of its first day, in Unix ms. */
int64_t rwencode_period_start_ms(proto_period_t p);

/* "month", "quarter" or "year" (NULL for PROTO_PERIOD_NONE). */
const char *rwencode_period_kind(proto_period_t p);

/*
 * Encodes s[0..n) as one WriteRequest (one TimeSeries per sample, labels
 * sorted by name as Prometheus requires) and compresses it with snappy.
 * Returns 0 with *ret (malloc'd: caller frees) and *ret_len, or -1 with err.
 */
int rwencode_request(const rw_sample_t *s, size_t n, void **ret, size_t *ret_len, char *err,
                     size_t errlen);

/* Decodes a request made by rwencode_request back into its series count and
 * the sum of its values (for tests). Returns 0 or -1. */
int rwencode_inspect(const void *buf, size_t len, size_t *ret_series, double *ret_sum);

typedef struct {
    char host[256];
    char port[8];
    char path[512];
} rw_url_t;

/* Parses "http://HOST[:PORT]/PATH" (no TLS: put a TLS proxy in front).
 * Returns 0, or -1 with err. */
int rwencode_url(const char *url, rw_url_t *u, char *err, size_t errlen);

/* Writes the POST head for a body of body_len bytes; auth is the
 * "user:password" for basic auth or NULL. Returns its length, or -1 if buf
 * is too small. */
int rwencode_head(char *buf, size_t size, const rw_url_t *u, const char *auth, size_t body_len);

#endif
