/*
 * check_rwencode.c -- the pure half of the Prometheus remote-write
 * (daemon/rwencode.c): series names, a period's start as a sample
 * timestamp, the receiver's URL, the POST head (basic auth included), and
 * a WriteRequest that snappy and protobuf-c decode back to what was put in.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/rwencode.h"
#include "tests/testlib.h"

static const struct {
    const char *metric, *name;
} names[] = {
    {"revenue", "clustermon_revenue"},
    {"cod", "clustermon_cod"},
    {"energy-use.kwh", "clustermon_energy_use_kwh"},
    {"Profit_2", "clustermon_Profit_2"},
};

START_TEST(test_metric_name)
{
    char buf[RW_MAX_NAME];
    rwencode_metric_name(names[_i].metric, buf, sizeof buf);
    ck_assert_str_eq(buf, names[_i].name);
}
END_TEST

static const struct {
    const char *period;
    int64_t ms;
    const char *kind;
} starts[] = {
    {"2021", 1609459200000, "year"}, /* 2021-01-01T00:00:00Z */
    {"2021-01", 1609459200000, "month"},   {"2021-03", 1614556800000, "month"}, /* 2021 no leap */
    {"2024-03", 1709251200000, "month"},   /* after a leap February */
    {"2021-Q3", 1625097600000, "quarter"}, /* 2021-07-01 */
    {"2000-12", 975628800000, "month"},    {"2199-12", 7255440000000, "month"},
};

START_TEST(test_period_start)
{
    proto_period_t p;
    ck_assert_int_eq(proto_period_parse(starts[_i].period, strlen(starts[_i].period), &p),
                     PROTO_OK);
    ck_assert_int_eq(rwencode_period_start_ms(p), starts[_i].ms);
    ck_assert_str_eq(rwencode_period_kind(p), starts[_i].kind);
}
END_TEST

static const struct {
    const char *url, *host, *port, *path, *err;
} urls[] = {
    {"http://127.0.0.1:9090/api/v1/write", "127.0.0.1", "9090", "/api/v1/write", NULL},
    {"http://prom.example/api/v1/write", "prom.example", "80", "/api/v1/write", NULL},
    {"http://[::1]:9090/api/v1/write", "::1", "9090", "/api/v1/write", NULL},
    {"http://vm:8428", "vm", "8428", "/", NULL},
    {"https://prom.example/api/v1/write", NULL, NULL, NULL, "only http://"},
    {"http://:9090/x", NULL, NULL, NULL, "no host"},
    {"http://h:90x/x", NULL, NULL, NULL, "port is not a number"},
    {"http://[::1/x", NULL, NULL, NULL, "needs its ']'"},
};

START_TEST(test_url)
{
    rw_url_t u;
    char err[256] = "";
    int rc = rwencode_url(urls[_i].url, &u, err, sizeof err);
    if (!urls[_i].err) {
        ck_assert_msg(rc == 0, "%s: %s", urls[_i].url, err);
        ck_assert_str_eq(u.host, urls[_i].host);
        ck_assert_str_eq(u.port, urls[_i].port);
        ck_assert_str_eq(u.path, urls[_i].path);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err, urls[_i].err), "%s: '%s'", urls[_i].url, err);
    }
}
END_TEST

START_TEST(test_head)
{
    rw_url_t u;
    char err[128], head[1024];
    ck_assert_int_eq(rwencode_url("http://127.0.0.1:9090/api/v1/write", &u, err, sizeof err), 0);
    int n = rwencode_head(head, sizeof head, &u, "Aladdin:open sesame", 1234);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(head, "POST /api/v1/write HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nHost: 127.0.0.1:9090\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Encoding: snappy\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Type: application/x-protobuf\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Length: 1234\r\n"));
    /* RFC 7617's example */
    ck_assert_ptr_nonnull(
        strstr(head, "\r\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    ck_assert_str_eq(head + n - 4, "\r\n\r\n");
    n = rwencode_head(head, sizeof head, &u, NULL, 1);
    ck_assert_ptr_null(strstr(head, "Authorization"));
    ck_assert_int_eq(rwencode_head(head, 40, &u, NULL, 1), -1);
}
END_TEST

START_TEST(test_request_roundtrip)
{
    enum { N = 1000 };
    rw_sample_t *s = calloc(N, sizeof *s);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        rwencode_metric_name("revenue", s[i].name, sizeof s[i].name);
        snprintf(s[i].firm, sizeof s[i].firm, "ee-%03d", i);
        snprintf(s[i].cluster, sizeof s[i].cluster, "energy-env");
        if (i % 2)
            snprintf(s[i].chain, sizeof s[i].chain, "water-pollution-control");
        snprintf(s[i].metric, sizeof s[i].metric, "revenue");
        s[i].period = "month";
        s[i].value = 1000.5 * i;
        s[i].ts_ms = 1609459200000 + i;
        sum += s[i].value;
    }
    void *buf;
    size_t len, nseries;
    double got;
    char err[128];
    ck_assert_int_eq(rwencode_request(s, N, &buf, &len, err, sizeof err), 0);
    ck_assert_int_eq(rwencode_inspect(buf, len, &nseries, &got), 0);
    ck_assert_uint_eq(nseries, N);
    ck_assert(got == sum);
    ck_assert_int_eq(rwencode_inspect(buf, len / 2, &nseries, &got), -1); /* truncated */
    free(buf);
    ck_assert_int_eq(rwencode_request(s, 0, &buf, &len, err, sizeof err), 0); /* empty is valid */
    ck_assert_int_eq(rwencode_inspect(buf, len, &nseries, &got), 0);
    ck_assert_uint_eq(nseries, 0);
    free(buf);
    free(s);
}
END_TEST

static Suite *rwencode_suite(void)
{
    Suite *s = suite_create("rwencode");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, test_metric_name, 0, (int)(sizeof names / sizeof names[0]));
    tcase_add_loop_test(tc, test_period_start, 0, (int)(sizeof starts / sizeof starts[0]));
    tcase_add_loop_test(tc, test_url, 0, (int)(sizeof urls / sizeof urls[0]));
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_request_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return testlib_run(rwencode_suite());
}
