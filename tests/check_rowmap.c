/*
 * check_rowmap.c -- the row mapper (agents/rowmap.c): periods as offices
 * write them, headers by name in any order with their aliases, --columns,
 * wide tables through the metric map, spreadsheet cells (numbers, dates),
 * and the errors that name the column.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "agents/rowmap.h"

/* ---- periods ------------------------------------------------------------- */

static const struct {
    const char *text;
    int ok;
    unsigned kind, year, index;
} periods[] = {
    {"2024-11", 0, PROTO_PERIOD_MONTH, 2024, 11},
    {"2024/11", 0, PROTO_PERIOD_MONTH, 2024, 11},
    {"2024/1", 0, PROTO_PERIOD_MONTH, 2024, 1},
    {"2024.03", 0, PROTO_PERIOD_MONTH, 2024, 3},
    {"202411", 0, PROTO_PERIOD_MONTH, 2024, 11},
    {"2024年11月", 0, PROTO_PERIOD_MONTH, 2024, 11},
    {"2024年1月", 0, PROTO_PERIOD_MONTH, 2024, 1},
    {"2024年", 0, PROTO_PERIOD_YEAR, 2024, 0},
    {"2024年第3季度", 0, PROTO_PERIOD_QUARTER, 2024, 3},
    {"2024Q3", 0, PROTO_PERIOD_QUARTER, 2024, 3},
    {"2024-Q3", 0, PROTO_PERIOD_QUARTER, 2024, 3},
    {"2024", 0, PROTO_PERIOD_YEAR, 2024, 0},
    {"202413", -1, 0, 0, 0},
    {"2024年13月", -1, 0, 0, 0},
    {"2024年11", -1, 0, 0, 0},
    {"2024/11/05", -1, 0, 0, 0},
    {"2024Q5", -1, 0, 0, 0},
    {"1656633600000", -1, 0, 0, 0},
    {"11月", -1, 0, 0, 0},
    {"", -1, 0, 0, 0},
};

START_TEST(test_period_parse)
{
    proto_period_t p = {0};
    int rc = rowmap_period_parse(periods[_i].text, strlen(periods[_i].text), &p);

    ck_assert_msg(rc == periods[_i].ok, "%s: rc %d", periods[_i].text, rc);
    if (rc == 0) {
        ck_assert_uint_eq(p.kind, periods[_i].kind);
        ck_assert_uint_eq(p.year, periods[_i].year);
        ck_assert_uint_eq(p.index, periods[_i].index);
    }
}
END_TEST

START_TEST(test_serial_dates)
{
    int y, mo, d, h, mi, s;

    ck_assert_int_eq(rowmap_serial_civil(45597, &y, &mo, &d, &h, &mi, &s), 0); /* 2024-11-01 */
    ck_assert_int_eq(y, 2024);
    ck_assert_int_eq(mo, 11);
    ck_assert_int_eq(d, 1);
    ck_assert_int_eq(rowmap_serial_civil(45597.75, &y, &mo, &d, &h, &mi, &s), 0);
    ck_assert_int_eq(h, 18);
    ck_assert_int_eq(mi, 0);
    ck_assert_int_eq(rowmap_serial_civil(61, &y, &mo, &d, &h, &mi, &s), 0);
    ck_assert_int_eq(mo, 3);
    ck_assert_int_eq(d, 1);
    ck_assert_int_eq(rowmap_serial_civil(60, &y, &mo, &d, &h, &mi, &s), -1);
}
END_TEST

/* ---- rows ---------------------------------------------------------------- */

#define MAXC 16

/* Splits a comma-separated row into text cells (no quoting needed here). */
static size_t cells_of(const char *row, rowmap_cell_t *c, char *buf)
{
    size_t n = 0;

    strcpy(buf, row);
    for (char *p = buf;; n++) {
        char *comma = strchr(p, ',');
        c[n] = (rowmap_cell_t){p, comma ? (size_t)(comma - p) : strlen(p), ROWMAP_TEXT, 0};
        if (comma == NULL)
            return n + 1;
        p = comma + 1;
    }
}

static const rowmap_metric_t wide_map[] = {{"营业收入", "revenue"}, {"利润总额", "profit"}};

/*
 * Feeds rows (header first) and returns the samples of the last row, or
 * the error of the first failing row in err.
 */
static int map_rows(const char *columns, const char *const *rows, size_t nrows, proto_sample_t *out,
                    size_t *ret_n, char *err)
{
    rowmap_opts_t o = {columns, wide_map, 2};
    rowmap_t *m = rowmap_new(&o, err, ROWMAP_ERRLEN);
    static char bufs[8][512];
    rowmap_cell_t c[MAXC];
    int rc = -1;

    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; i < nrows; i++) {
        size_t n = cells_of(rows[i], c, bufs[i]);
        if ((rc = rowmap_row(m, c, n, 42, out, ret_n, err, ROWMAP_ERRLEN)) != 0)
            break;
    }
    /* a wide table's metric names live in the mapper: copy them before it goes */
    static char names[MAXC][PROTO_MAX_ID_LEN];
    for (size_t i = 0; rc == 0 && i < *ret_n; i++) {
        memcpy(names[i], out[i].metric.ptr, out[i].metric.len);
        out[i].metric.ptr = names[i];
    }
    rowmap_destroy(&m);
    return rc;
}

static bool str_is(proto_str_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

START_TEST(test_chinese_header_any_order)
{
    const char *rows[] = {"期间,数值,企业,指标", "2024年11月,1200.5,ee-001,revenue"};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    ck_assert_int_eq(map_rows(NULL, rows, 2, s, &n, err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(str_is(s[0].firm, "ee-001"));
    ck_assert(str_is(s[0].metric, "revenue"));
    ck_assert_double_eq(s[0].value, 1200.5);
    ck_assert_uint_eq(s[0].period.kind, PROTO_PERIOD_MONTH);
    ck_assert_uint_eq(s[0].period.index, 11);
    ck_assert_int_eq(s[0].ts_ms, 42);
}
END_TEST

START_TEST(test_english_header_other_order)
{
    const char *rows[] = {"enterprise,period,metric,value", "ee-001,2024-11,revenue,\"7\""};
    const char *rows2[] = {"Firm,Metric,Amount,Month", "ee-002,profit,\"1,234.5\",2024/11"};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    rows[1] = "ee-001,2024-11,revenue,7";
    ck_assert_int_eq(map_rows(NULL, rows, 2, s, &n, err), 0);
    ck_assert_double_eq(s[0].value, 7);
    rows2[1] = "ee-002,profit,1234.5,2024/11";
    ck_assert_int_eq(map_rows(NULL, rows2, 2, s, &n, err), 0);
    ck_assert(str_is(s[0].firm, "ee-002"));
    ck_assert_double_eq(s[0].value, 1234.5);
}
END_TEST

START_TEST(test_columns_option)
{
    const char *rows[] = {"code,item,figure,when,note", "ee-001,revenue,5,2024-11,ok"};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    ck_assert_int_eq(
        map_rows("code=firm, item=metric,figure=value,when=period,note=-", rows, 2, s, &n, err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_double_eq(s[0].value, 5);
    /* without the map: the unknown column is named */
    ck_assert_int_eq(
        map_rows("code=firm,item=metric,figure=value,when=period", rows, 2, s, &n, err), -1);
    ck_assert_str_eq(err, "header: column 5 'note' is not a known name (firm, metric, value, "
                          "period, timestamp or an alias); name its role with --columns "
                          "'NAME=ROLE' or ignore it with --columns 'NAME=-'");
    rowmap_opts_t o = {"code=boss", NULL, 0};
    ck_assert_ptr_null(rowmap_new(&o, err, sizeof(err)));
    ck_assert_str_eq(err, "--columns: 'code=boss': ROLE is one of firm, metric, value, period, "
                          "timestamp or -");
}
END_TEST

START_TEST(test_wide_table)
{
    const char *rows[] = {"企业,月份,营业收入,利润总额,energy", "ee-001,2024-11,100,-5,",
                          "ee-002,202411,200,7,3.5"};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    ck_assert_int_eq(map_rows(NULL, rows, 2, s, &n, err), 0);
    ck_assert_uint_eq(n, 2); /* the empty energy cell gives no sample */
    ck_assert(str_is(s[0].metric, "revenue"));
    ck_assert_double_eq(s[0].value, 100);
    ck_assert(str_is(s[1].metric, "profit"));
    ck_assert_double_eq(s[1].value, -5);
    ck_assert_int_eq(map_rows(NULL, rows, 3, s, &n, err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(str_is(s[2].metric, "energy")); /* unmapped: its own name */
    ck_assert(str_is(s[2].firm, "ee-002"));
}
END_TEST

static const struct {
    const char *header, *row, *message;
} bad_rows[] = {
    {"企业,指标,数值,期间", "ee-001,revenue,abc,2024-11",
     "value (column 3 '数值'): 'abc' is not a number"},
    {"企业,指标,数值,期间", "ee-001,revenue,1,2024年13月",
     "period (column 4 '期间'): '2024年13月' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a "
     "timestamp"},
    {"企业,指标,数值,期间", ",revenue,1,2024-11", "firm (column 1 '企业'): '' is empty"},
    {"企业,指标,数值,期间", "ee-001,revenue,1,2024-11,extra",
     "expected 4 fields as in the header, got 5"},
    {"企业,月份,营业收入", "ee-001,2024-11,12x",
     "value (column 3 '营业收入'): '12x' is not a number"},
    {"名称,指标,数值,期间", "x,revenue,1,2024-11",
     "header: no firm column (firm, enterprise, 企业, 企业代码, 统一社会信用代码, or map one with "
     "--columns NAME=firm)"},
    {"企业,数值,期间", "x,1,2024-11",
     "header: a value column but no metric column (metric: metric, 指标; value: value, 数值, 金额; "
     "or --columns)"},
    {"a,b,c", "x,1,2024-11",
     "header: none of the 3 column names is known (firm, metric, value, period, timestamp, 企业, "
     "指标, 数值, 期间 ...: see --columns), and without a header a row has 4 fields "
     "(enterprise,metric,value,period)"},
    {"企业,企业代码,数值,指标", "x,y,1,m", "header: columns 1 and 2 are both the firm"},
};

START_TEST(test_bad_rows)
{
    const char *rows[] = {bad_rows[_i].header, bad_rows[_i].row};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    ck_assert_int_eq(map_rows(NULL, rows, 2, s, &n, err), -1);
    ck_assert_str_eq(err, bad_rows[_i].message);
}
END_TEST

START_TEST(test_spreadsheet_cells)
{
    rowmap_t *m = rowmap_new(NULL, NULL, 0);
    rowmap_cell_t head[] = {{"企业", 6, ROWMAP_TEXT, 0},
                            {"指标", 6, ROWMAP_TEXT, 0},
                            {"数值", 6, ROWMAP_TEXT, 0},
                            {"月份", 6, ROWMAP_TEXT, 0}};
    /* the number as stored, not as shown; a date cell is its month */
    rowmap_cell_t row[] = {{"1001", 4, ROWMAP_NUMBER, 1001},
                           {"revenue", 7, ROWMAP_TEXT, 0},
                           {"1234.5", 6, ROWMAP_NUMBER, 1234.5},
                           {"45597", 5, ROWMAP_DATE, 45597}};
    proto_sample_t s[MAXC];
    char err[ROWMAP_ERRLEN];
    size_t n;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(rowmap_row(m, head, 4, 0, s, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(rowmap_row(m, row, 4, 0, s, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(str_is(s[0].firm, "1001"));
    ck_assert_double_eq(s[0].value, 1234.5);
    ck_assert_uint_eq(s[0].period.kind, PROTO_PERIOD_MONTH);
    ck_assert_uint_eq(s[0].period.year, 2024);
    ck_assert_uint_eq(s[0].period.index, 11);
    rowmap_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

static Suite *rowmap_suite(void)
{
    Suite *s = suite_create("rowmap");
    TCase *tc = tcase_create("periods");

    tcase_add_loop_test(tc, test_period_parse, 0, sizeof(periods) / sizeof(periods[0]));
    tcase_add_test(tc, test_serial_dates);
    suite_add_tcase(s, tc);
    tc = tcase_create("rows");
    tcase_add_test(tc, test_chinese_header_any_order);
    tcase_add_test(tc, test_english_header_other_order);
    tcase_add_test(tc, test_columns_option);
    tcase_add_test(tc, test_wide_table);
    tcase_add_loop_test(tc, test_bad_rows, 0, sizeof(bad_rows) / sizeof(bad_rows[0]));
    tcase_add_test(tc, test_spreadsheet_cells);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rowmap_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
