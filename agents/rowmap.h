/*
 * rowmap.h -- turns the rows of a table (agents/input.c reads them from CSV,
 * .xlsx or .xls) into samples: the header decides which column is what.
 *
 * A table comes in one of three shapes:
 *   - no header: exactly enterprise,metric,value,period-or-timestamp, as
 *     the agent always took (a first row whose third cell is a number);
 *   - long, with a header naming its columns in any order: a firm, a metric
 *     and a value column, optionally a period and/or a timestamp column;
 *   - wide, with a header naming a firm column and a period (or timestamp)
 *     column: every other column is a metric, its header cell the metric's
 *     name or, through the metric map, a name mapped to one ("营业收入" ->
 *     revenue). One row gives one sample per non-empty metric cell.
 * Header names are matched case-insensitively against the alias table
 * (rowmap_aliases, documented in README "Files a statistician can send"),
 * then against the --columns map ("NAME=ROLE,...", ROLE one of firm, metric,
 * value, period, timestamp, or "-" to ignore the column).
 *
 * A cell comes with a kind: text (all of a CSV's cells), a number or a date
 * (spreadsheet cells, their numeric value and an Excel serial date), so a
 * number is taken as stored and a date as a date, never as its display text.
 *
 * Errors are "field: reason" (no file or line: the caller adds them); with a
 * header the field names the column too: "value (column 3 '数值'): ...".
 */
#ifndef CLUSTERMON_AGENTS_ROWMAP_H
#define CLUSTERMON_AGENTS_ROWMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

typedef enum { ROWMAP_TEXT, ROWMAP_NUMBER, ROWMAP_DATE } rowmap_kind_t;

typedef struct {
    const char *s; /* the cell's text (UTF-8, not NUL-terminated); for a
                      number or a date, its value written out */
    size_t len;
    rowmap_kind_t kind;
    double num; /* ROWMAP_NUMBER: the value; ROWMAP_DATE: an Excel serial
                   date (days since 1899-12-30, local time) */
} rowmap_cell_t;

typedef enum {
    ROWMAP_NONE = 0,
    ROWMAP_FIRM,
    ROWMAP_METRIC,
    ROWMAP_VALUE,
    ROWMAP_PERIOD, /* a period, or else a timestamp */
    ROWMAP_TIMESTAMP,
    ROWMAP_IGNORE,
    ROWMAP_WIDE, /* a wide table's metric column */
} rowmap_role_t;

/* One alias: a header name and the role it gives its column. */
typedef struct {
    const char *name;
    rowmap_role_t role;
} rowmap_alias_t;

extern const rowmap_alias_t rowmap_aliases[]; /* ends with {NULL, 0} */

#define ROWMAP_MAX_COLS 256
#define ROWMAP_ERRLEN 512

/* A metric-name map entry for wide tables: a header cell -> a metric id. */
typedef struct {
    const char *column;
    const char *metric;
} rowmap_metric_t;

typedef struct {
    const char *columns;            /* "NAME=ROLE,..." or NULL */
    const rowmap_metric_t *metrics; /* the wide-table map, nmetrics entries */
    size_t nmetrics;
} rowmap_opts_t;

typedef struct rowmap rowmap_t;

/*
 * Returns a mapper, or NULL with the reason in err if opts->columns is
 * malformed. opts and what it points to are borrowed for the mapper's life.
 */
rowmap_t *rowmap_new(const rowmap_opts_t *opts, char *err, size_t errlen);
void rowmap_destroy(rowmap_t **m);

/* Whether the first row was seen (the shape is decided). */
bool rowmap_started(const rowmap_t *m);

/* The most samples one row can give (1, or a wide table's metric columns). */
size_t rowmap_row_max(const rowmap_t *m);

/*
 * Maps one non-blank row. The first row decides the shape: a header gives
 * no sample. Fills out[0..*ret_n) (out has room for rowmap_row_max() after
 * the header, ROWMAP_MAX_COLS for the first row); the firm and metric
 * strings point into cells or into the mapper, valid as long as the cells
 * and the mapper are. now_ms is the time of samples without one.
 * Returns 0, or -1 with "field: reason" in err (the row gives no sample).
 */
int rowmap_row(rowmap_t *m, const rowmap_cell_t *cells, size_t ncells, int64_t now_ms,
               proto_sample_t *out, size_t *ret_n, char *err, size_t errlen);

/*
 * Parses a period as offices write it: "2024", "2024-Q3", "2024-11",
 * "2024/11", "2024.11", "202411", "2024年11月", "2024年", "2024年第3季度",
 * "2024Q3" (months and quarters with or without a leading zero). Pure.
 * Returns 0, or -1 if s is none of these.
 */
int rowmap_period_parse(const char *s, size_t len, proto_period_t *ret);

/*
 * An Excel serial date (days since 1899-12-30, the 1900 system) as a
 * broken-down time; returns -1 if out of range (before 1900-03-01 or after
 * 2199). Pure.
 */
int rowmap_serial_civil(double serial, int *ret_y, int *ret_mo, int *ret_d, int *ret_h, int *ret_mi,
                        int *ret_s);

#endif
