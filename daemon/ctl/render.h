/*
 * render.h -- clustermonctl's tables for people and exports for machines:
 * a table of typed cells printed either as aligned text (numbers
 * right-aligned; English, or Chinese-first with --lang zh / a zh_* locale:
 * Chinese column names, amounts in 亿元 or 万元, times in Asia/Shanghai) or
 * as CSV (RFC 4180; amounts as exact decimal strings with the stored three
 * decimals, times as ISO 8601 with their offset).
 *
 * Amounts arrive from the daemon as integer milli-units and are never put
 * through a double on the way to CSV or JSON: render_milli_text is the one
 * place that turns them into text.
 */
#ifndef CLUSTERMON_CTL_RENDER_H
#define CLUSTERMON_CTL_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RENDER_EN = 0, RENDER_ZH } render_lang_t;
typedef enum { RENDER_TABLE = 0, RENDER_CSV } render_format_t;

typedef enum {
    COL_TEXT = 0, /* left-aligned */
    COL_COUNT,    /* an integer */
    COL_MILLI,    /* an amount in milli-units (yuan, or the metric's unit) */
    COL_PCT,      /* a change in percent, signed */
    COL_SHARE,    /* a share in percent (coverage), unsigned */
    COL_PP,       /* percentage points */
    COL_TIME,     /* Unix ms */
} render_kind_t;

typedef struct {
    const char *en, *zh; /* column names; zh NULL: en */
    render_kind_t kind;
} render_col_t;

typedef struct {
    bool nil; /* no value: "-" in a table, empty in CSV */
    int64_t i;
    double d;
    char *s; /* COL_TEXT, owned */
} render_cell_t;

typedef struct {
    const render_col_t *cols; /* static */
    size_t ncols;
    render_cell_t *cells; /* rows * ncols */
    size_t nrows, cap;
    bool yuan; /* COL_MILLI columns are yuan (亿元 / 万元 in Chinese) */
} render_table_t;

/* --lang (NULL: not given) or else LC_ALL / LC_MESSAGES / LANG starting "zh". */
render_lang_t render_lang_pick(const char *opt);

void render_table_init(render_table_t *t, const render_col_t *cols, size_t ncols, bool yuan);
void render_table_free(render_table_t *t);
/* Starts a row; the setters fill its cells in column order. */
void render_row(render_table_t *t);
void render_text(render_table_t *t, size_t col, const char *s);
void render_int(render_table_t *t, size_t col, int64_t v);
void render_double(render_table_t *t, size_t col, double v); /* COL_PCT, COL_PP */
void render_nil(render_table_t *t, size_t col);

/* Prints t. tz: the zone of COL_TIME cells in English (Chinese: Asia/Shanghai). */
void render_print(const render_table_t *t, render_format_t fmt, render_lang_t lang, const char *tz,
                  FILE *out);

/* "-1234.500": milli-units as exact decimal text, three decimals. */
void render_milli_text(int64_t v, char *buf, size_t size);

/* A time for people: "2024-05-01 14:00" in tz (Chinese: Asia/Shanghai). */
void render_time_text(int64_t ms, render_lang_t lang, const char *tz, char *buf, size_t size);

#endif
