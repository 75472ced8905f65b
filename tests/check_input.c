/*
 * check_input.c -- the agent's CSV sample reader (agents/input.c).
 *
 * Table-driven: good lines with the sample they must give, bad lines with
 * the exact message they must give, then one test per reader behaviour
 * (header, blank lines, CRLF, quoting, batching, ownership, stickiness,
 * incremental reads from a pipe) and a table for input_timestamp_parse().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/input.h"
#include "proto/clock.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define NOW INT64_MIN /* expected ts_ms: the wall clock while reading */
#define MAXS 64

/* A reader over a string, named "test.csv". */
static input_reader_t *reader_over(const char *text, FILE **ret_fp)
{
    FILE *fp = fmemopen((void *)(uintptr_t)text, strlen(text), "r");

    ck_assert_ptr_nonnull(fp);
    *ret_fp = fp;
    return input_reader_new(fp, "test.csv");
}

/* The reader of the last read_all(): its samples borrow from it. */
static input_reader_t *last_reader;
static FILE *last_fp;

static void close_last(void)
{
    input_reader_destroy(&last_reader);
    ck_assert_ptr_null(last_reader);
    if (last_fp != NULL)
        fclose(last_fp);
    last_fp = NULL;
}

/*
 * Reads everything in one call of max MAXS; returns the rc, fills out. The
 * samples stay valid until the next read_all() or the end of the test.
 */
static int read_all(const char *text, proto_sample_t *out, size_t *ret_n, char *err, size_t errlen)
{
    close_last();
    last_reader = reader_over(text, &last_fp);
    return input_read_batch(last_reader, out, MAXS, ret_n, NULL, err, errlen);
}

/* ---- good lines --------------------------------------------------------- */

static const struct {
    const char *line;
    const char *firm, *metric;
    double value;
    int64_t ts_ms;
    proto_period_kind_t kind;
    unsigned year, index;
} good[] = {
    {"acme,revenue,12.5,2021", "acme", "revenue", 12.5, NOW, PROTO_PERIOD_YEAR, 2021, 0},
    {"acme,revenue,-3,2021-Q3", "acme", "revenue", -3, NOW, PROTO_PERIOD_QUARTER, 2021, 3},
    {"acme,revenue,+1e3,2021-07", "acme", "revenue", 1000, NOW, PROTO_PERIOD_MONTH, 2021, 7},
    {"acme,revenue,0.25,", "acme", "revenue", 0.25, NOW, PROTO_PERIOD_NONE, 0, 0},
    {"acme,revenue,1,2022-07-01T08:00:00+08:00", "acme", "revenue", 1, 1656633600000,
     PROTO_PERIOD_NONE, 0, 0},
    {"acme,revenue,1,2022-07-01T00:00:00Z", "acme", "revenue", 1, 1656633600000, PROTO_PERIOD_NONE,
     0, 0},
    {"acme,revenue,1,2022-07-01T00:00:00.250Z", "acme", "revenue", 1, 1656633600250,
     PROTO_PERIOD_NONE, 0, 0},
    {"acme,revenue,1,1656633600000", "acme", "revenue", 1, 1656633600000, PROTO_PERIOD_NONE, 0, 0},
    {"  acme , revenue , 7 , 2021 ", "acme", "revenue", 7, NOW, PROTO_PERIOD_YEAR, 2021, 0},
    {"\"acme, inc.\",\"rev \"\"net\"\"\",1,\"2021\"", "acme, inc.", "rev \"net\"", 1, NOW,
     PROTO_PERIOD_YEAR, 2021, 0},
    {"\"Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale\",\xe6\x94\xb6\xe5\x85\xa5,2,2021",
     "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale", "\xe6\x94\xb6\xe5\x85\xa5", 2, NOW,
     PROTO_PERIOD_YEAR, 2021, 0},
    {"\" padded \",m,1,2021", " padded ", "m", 1, NOW, PROTO_PERIOD_YEAR, 2021, 0},
    {"a,m,100000000000000,2021", "a", "m", 1e14, NOW, PROTO_PERIOD_YEAR, 2021, 0},
    {"a,m,1,2021-Q3\r", "a", "m", 1, NOW, PROTO_PERIOD_QUARTER, 2021, 3},
};

START_TEST(test_good_line)
{
    proto_sample_t s[MAXS];
    char text[256], err[INPUT_ERRLEN];
    size_t n;
    int64_t before = clock_wall_ms(), after;

    snprintf(text, sizeof(text), "%s\n", good[_i].line);
    ck_assert_msg(read_all(text, s, &n, err, sizeof(err)) == INPUT_OK, "%s: %s", good[_i].line,
                  err);
    after = clock_wall_ms();
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(s[0].firm.len, strlen(good[_i].firm));
    ck_assert(memcmp(s[0].firm.ptr, good[_i].firm, s[0].firm.len) == 0);
    ck_assert_uint_eq(s[0].metric.len, strlen(good[_i].metric));
    ck_assert(memcmp(s[0].metric.ptr, good[_i].metric, s[0].metric.len) == 0);
    ck_assert_double_eq(s[0].value, good[_i].value);
    if (good[_i].ts_ms == NOW) {
        ck_assert_int_ge(s[0].ts_ms, before);
        ck_assert_int_le(s[0].ts_ms, after);
    } else {
        ck_assert_int_eq(s[0].ts_ms, good[_i].ts_ms);
    }
    ck_assert_uint_eq(s[0].period.kind, good[_i].kind);
    ck_assert_uint_eq(s[0].period.year, good[_i].year);
    ck_assert_uint_eq(s[0].period.index, good[_i].index);
}
END_TEST

/* ---- bad lines: each is line 2, after a good line 1 --------------------- */

static const struct {
    const char *line;
    const char *message;
} bad[] = {
    {"acme,revenue,abc,2021", "test.csv:2: value: 'abc' is not a number"},
    {"acme,revenue,,2021", "test.csv:2: value: '' is empty"},
    {"acme,revenue,1.5x,2021", "test.csv:2: value: '1.5x' is not a number"},
    {"acme,revenue,0x10,2021", "test.csv:2: value: '0x10' is not a number"},
    {"acme,revenue,nan,2021", "test.csv:2: value: 'nan' is not a number"},
    {"acme,revenue,inf,2021", "test.csv:2: value: 'inf' is not a number"},
    {"acme,revenue,1e400,2021", "test.csv:2: value: '1e400' is out of range"},
    {"acme,revenue,9e99,2021", "test.csv:2: value: '9e99' exceeds the limit of " STR(
                                   PROTO_MAX_ABS_VALUE) " in absolute value"},
    {"acme,revenue,1,2021-13",
     "test.csv:2: period: '2021-13' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp"},
    {"acme,revenue,1,2021-Q5",
     "test.csv:2: period: '2021-Q5' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp"},
    {"acme,revenue,1,1969",
     "test.csv:2: period: '1969' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp"},
    {"acme,revenue,1,2200",
     "test.csv:2: period: '2200' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp"},
    {"acme,revenue,1,soon",
     "test.csv:2: period: 'soon' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp"},
    {"acme,revenue,1,2022-07-01",
     "test.csv:2: timestamp: '2022-07-01' is a date without a time and UTC offset"},
    {"acme,revenue,1,2022-07-01T08:00:00",
     "test.csv:2: timestamp: '2022-07-01T08:00:00' has no UTC offset (add Z or +hh:mm)"},
    {"acme,revenue,1,2022-07-01T24:00:00Z",
     "test.csv:2: timestamp: '2022-07-01T24:00:00Z' has a time of day out of range"},
    {"acme,revenue,1,2023-02-29T00:00:00Z",
     "test.csv:2: timestamp: '2023-02-29T00:00:00Z' has a day out of range"},
    {"acme,revenue,1,2200-01-01T00:00:00Z",
     "test.csv:2: timestamp: '2200-01-01T00:00:00Z' is out of range (1970..2199)"},
    {",revenue,1,2021", "test.csv:2: enterprise: '' is empty"},
    {"acme,,1,2021", "test.csv:2: metric: '' is empty"},
    {"acme,\"re\x01v\",1,2021", "test.csv:2: metric: 're\\x01v' contains a control character"},
    {"ac\xffme,revenue,1,2021", "test.csv:2: enterprise: 'ac\xffme' is not valid UTF-8"},
    {"a234567890123456789012345678901234567890123456789012345678901234x,m,1,2021",
     "test.csv:2: enterprise: 'a234567890123456789012345678901234567890...' is longer than 64 "
     "bytes"},
    {"acme,revenue,1", "test.csv:2: expected 4 fields (enterprise,metric,value,period), got 3"},
    {"acme,revenue,1,2021,extra",
     "test.csv:2: expected 4 fields (enterprise,metric,value,period), got 5"},
    {"acme,re\"v,1,2021",
     "test.csv:2: malformed CSV: a quote inside an unquoted field or text after a closing quote"},
    {"\"acme\"x,revenue,1,2021",
     "test.csv:2: malformed CSV: a quote inside an unquoted field or text after a closing quote"},
    {"\"acme,revenue,1,2021",
     "test.csv:2: malformed CSV: quoted field not closed at the end of input"},
};

START_TEST(test_bad_line)
{
    proto_sample_t s[MAXS];
    char text[512], err[INPUT_ERRLEN];
    size_t n;

    snprintf(text, sizeof(text), "ok,fine,1,2021\n%s\n", bad[_i].line);
    ck_assert_int_eq(read_all(text, s, &n, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_str_eq(err, bad[_i].message);
    ck_assert_uint_eq(n, 1); /* the good line before it is still handed out */
}
END_TEST

/* ---- reader behaviour ------------------------------------------------------ */

START_TEST(test_header_skipped)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;

    ck_assert_int_eq(
        read_all("enterprise,metric,value,period\na,m,1,2021\n", s, &n, err, sizeof(err)),
        INPUT_OK);
    ck_assert_uint_eq(n, 1);
    /* any case, quoted, after blank lines and a byte order mark */
    ck_assert_int_eq(read_all("\xEF\xBB\xBF\n\n\"Enterprise\",Metric,Value,Timestamp\na,m,1,2021\n",
                              s, &n, err, sizeof(err)),
                     INPUT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(s[0].firm.len, 1);
}
END_TEST

START_TEST(test_header_only_first)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;

    ck_assert_int_eq(
        read_all("a,m,1,2021\nenterprise,metric,value,period\n", s, &n, err, sizeof(err)),
        INPUT_ESYNTAX);
    ck_assert_str_eq(err, "test.csv:2: value: 'value' is not a number");
}
END_TEST

START_TEST(test_blank_lines_and_crlf_keep_line_numbers)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;

    ck_assert_int_eq(
        read_all("\r\n\r\na,m,1,2021\r\n   \r\n\r\na,m,x,2021\r\n", s, &n, err, sizeof(err)),
        INPUT_ESYNTAX);
    ck_assert_str_eq(err, "test.csv:6: value: 'x' is not a number");
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_multiline_field_reports_start_line)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;

    /* A quoted field may hold a newline; an id may not. */
    ck_assert_int_eq(read_all("a,m,1,2021\n\"two\nlines\",m,1,2021\n", s, &n, err, sizeof(err)),
                     INPUT_ESYNTAX);
    ck_assert_str_eq(err, "test.csv:2: enterprise: 'two\\x0alines' contains a control character");
    /* CRLF inside the quotes, after a blank line */
    ck_assert_int_eq(read_all("a,m,1,2021\r\n\r\n\"x\r\ny\",m,1,2021\r\n", s, &n, err, sizeof(err)),
                     INPUT_ESYNTAX);
    ck_assert_str_eq(err, "test.csv:3: enterprise: 'x\\x0d\\x0ay' contains a control character");
}
END_TEST

START_TEST(test_no_final_newline_and_empty_input)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;

    ck_assert_int_eq(read_all("a,m,1,2021\nb,m,2,2021", s, &n, err, sizeof(err)), INPUT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert(memcmp(s[1].firm.ptr, "b", 1) == 0);
    ck_assert_int_eq(read_all("", s, &n, err, sizeof(err)), INPUT_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(read_all("enterprise,metric,value,period\n\n", s, &n, err, sizeof(err)),
                     INPUT_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_field_too_long)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;
    char *text = malloc(INPUT_MAX_FIELD + 64);

    ck_assert_ptr_nonnull(text);
    strcpy(text, "a,m,1,2021\na,m,");
    memset(text + strlen(text), '1', INPUT_MAX_FIELD + 1);
    strcpy(text + 15 + INPUT_MAX_FIELD + 1, ",2021\n");
    ck_assert_int_eq(read_all(text, s, &n, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_str_eq(err, "test.csv:2: a field is longer than 1024 bytes");
    free(text);
}
END_TEST

START_TEST(test_batches_and_ownership)
{
    static const char text[] =
        "enterprise,metric,value,period\n"
        "f1,m1,1,2021\nf2,m2,2,2021\nf3,m3,3,2021\nf4,m4,4,2021\nf5,m5,5,2021\n";
    proto_sample_t s[2];
    char err[INPUT_ERRLEN], name[3];
    size_t n, total = 0;
    FILE *fp;
    input_reader_t *r = reader_over(text, &fp);
    size_t expect[] = {2, 2, 1, 0, 0};

    for (unsigned call = 0; call < 5; call++) {
        ck_assert_int_eq(input_read_batch(r, s, 2, &n, NULL, err, sizeof(err)), INPUT_OK);
        ck_assert_uint_eq(n, expect[call]);
        /* every string of this batch is intact and its own */
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "f%zu", total + i + 1);
            ck_assert_uint_eq(s[i].firm.len, 2);
            ck_assert(memcmp(s[i].firm.ptr, name, 2) == 0);
            ck_assert_double_eq(s[i].value, (double)(total + i + 1));
        }
        total += n;
    }
    ck_assert_uint_eq(total, 5);
    input_reader_destroy(&r);
    fclose(fp);
}
END_TEST

START_TEST(test_error_is_sticky)
{
    proto_sample_t s[MAXS];
    char err[INPUT_ERRLEN];
    size_t n;
    FILE *fp;
    input_reader_t *r = reader_over("a,m,1,2021\nb,m,2,2021\na,m,bad,2021\nc,m,3,2021\n", &fp);

    ck_assert_int_eq(input_read_batch(r, s, MAXS, &n, NULL, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(err, "test.csv:3: value: 'bad' is not a number");
    err[0] = '\0';
    ck_assert_int_eq(input_read_batch(r, s, MAXS, &n, NULL, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(err, "test.csv:3: value: 'bad' is not a number");
    input_reader_destroy(&r);
    fclose(fp);
}
END_TEST

/* A pipe delivers one line and stays open: the reader must not wait for more. */
START_TEST(test_pipe_is_incremental)
{
    proto_sample_t s[4];
    char err[INPUT_ERRLEN];
    size_t n;
    int fds[2];
    FILE *fp;
    input_reader_t *r;

    ck_assert_int_eq(pipe(fds), 0);
    fp = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(fp);
    r = input_reader_new(fp, NULL);
    ck_assert_int_eq(write(fds[1], "a,m,1,2021\n", 11), 11);
    ck_assert_int_eq(input_read_batch(r, s, 1, &n, NULL, err, sizeof(err)), INPUT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(write(fds[1], "b,m,x,2021\n", 11), 11);
    ck_assert_int_eq(input_read_batch(r, s, 1, &n, NULL, err, sizeof(err)), INPUT_ESYNTAX);
    ck_assert_str_eq(err, "stdin:2: value: 'x' is not a number");
    close(fds[1]);
    input_reader_destroy(&r);
    fclose(fp);
}
END_TEST

START_TEST(test_open_missing_file)
{
    char err[INPUT_ERRLEN];
    input_reader_t *r = input_reader_open("/nonexistent/data.csv", err, sizeof(err));

    ck_assert_ptr_null(r);
    ck_assert_str_eq(err, "/nonexistent/data.csv: No such file or directory");
    input_reader_destroy(&r); /* NULL is fine */
}
END_TEST

/* ---- input_timestamp_parse ---------------------------------------------- */

static const struct {
    const char *text;
    int64_t ms; /* -1: must fail */
} stamps[] = {
    {"2022-07-01T08:00:00+08:00", 1656633600000},
    {"2022-07-01T08:00:00+0800", 1656633600000},
    {"2022-07-01T08:00:00+08", 1656633600000},
    {"2022-06-30T19:00:00-05:00", 1656633600000},
    {"2022-07-01T05:30:00+05:30", 1656633600000},
    {"2022-07-01T00:00:00Z", 1656633600000},
    {"2022-07-01t00:00:00z", 1656633600000},
    {"2022-07-01 00:00:00Z", 1656633600000},
    {"2022-07-01T00:00Z", 1656633600000},
    {"2022-07-01T00:00:00.5Z", 1656633600500},
    {"2022-07-01T00:00:00.123456789Z", 1656633600123},
    {"2022-07-01T00:00:00,25Z", 1656633600250},
    {"2024-02-29T00:00:00Z", 1709164800000},
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T08:00:00+08:00", 0},
    {"2199-12-31T23:59:59.999Z", PROTO_MAX_TS_MS - 1},
    {"0", 0},
    {"1656633600000", 1656633600000},
    {"1969-12-31T23:59:59Z", -1},
    {"2200-01-01T00:00:00Z", -1},
    {"7258118400000", -1},
    {"2022-07-01T00:00:00", -1},
    {"2022-07-01T00:00:00.Z", -1},
    {"2022-07-01T00:00:60Z", -1},
    {"2022-13-01T00:00:00Z", -1},
    {"2022-00-01T00:00:00Z", -1},
    {"2022-04-31T00:00:00Z", -1},
    {"2023-02-29T00:00:00Z", -1},
    {"2022-07-01T00:00:00+24:00", -1},
    {"2022-07-01T00:00:00+08:0", -1},
    {"2022-07-01T00:00:00Zjunk", -1},
    {"2022-7-1T00:00:00Z", -1},
    {"-1", -1},
    {"", -1},
};

START_TEST(test_timestamp_parse)
{
    char err[128] = "";
    int64_t ms = 42;
    int rc = input_timestamp_parse(stamps[_i].text, strlen(stamps[_i].text), &ms, err, sizeof(err));

    if (stamps[_i].ms < 0) {
        ck_assert_msg(rc == INPUT_ESYNTAX, "'%s' parsed as %lld", stamps[_i].text, (long long)ms);
        ck_assert(err[0] != '\0');
        ck_assert_int_eq(ms, 42);
    } else {
        ck_assert_msg(rc == INPUT_OK, "'%s': %s", stamps[_i].text, err);
        ck_assert_int_eq(ms, stamps[_i].ms);
    }
}
END_TEST

static Suite *input_suite(void)
{
    Suite *s = suite_create("input");
    TCase *tc = tcase_create("lines");

    tcase_add_checked_fixture(tc, NULL, close_last);
    tcase_add_loop_test(tc, test_good_line, 0, sizeof(good) / sizeof(good[0]));
    tcase_add_loop_test(tc, test_bad_line, 0, sizeof(bad) / sizeof(bad[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, NULL, close_last);
    tcase_add_test(tc, test_header_skipped);
    tcase_add_test(tc, test_header_only_first);
    tcase_add_test(tc, test_blank_lines_and_crlf_keep_line_numbers);
    tcase_add_test(tc, test_multiline_field_reports_start_line);
    tcase_add_test(tc, test_no_final_newline_and_empty_input);
    tcase_add_test(tc, test_field_too_long);
    tcase_add_test(tc, test_batches_and_ownership);
    tcase_add_test(tc, test_error_is_sticky);
    tcase_add_test(tc, test_pipe_is_incremental);
    tcase_add_test(tc, test_open_missing_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("timestamp");
    tcase_add_loop_test(tc, test_timestamp_parse, 0, sizeof(stamps) / sizeof(stamps[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(input_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
