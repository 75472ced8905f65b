/*
 * csvtable.c -- see csvtable.h.
 *
 * libcsv does not count lines; we feed it one physical line at a time and
 * note the line where each record starts, so errors can name it even when a
 * quoted field spans lines.
 */
#include "daemon/csvtable.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/xalloc.h"

typedef struct {
    const csvtable_spec_t *spec;
    csvtable_record_cb cb;
    void *user;
    const char *path;
    int line;        /* physical line being fed */
    int record_line; /* line where the current record started */
    bool in_record;
    bool header_done;
    int col_of[CSVTABLE_MAX_COLS]; /* position of each known column, -1 if absent */
    int ncols;                     /* columns in the header */
    int field;                     /* field index within the current record */
    char *fields[CSVTABLE_MAX_COLS];
    char *err;
    size_t errlen;
    bool failed;
} reader_t;

static void rerr(reader_t *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error only: later ones are usually its consequences. */
static void rerr(reader_t *r, const char *field, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    int n = snprintf(r->err, r->errlen, "%s:%d: %s: ", r->path, r->record_line, field);
    if (n < 0 || (size_t)n >= r->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void header_field(reader_t *r, const char *v)
{
    const csvtable_spec_t *s = r->spec;
    for (int c = 0; c < s->ncols; c++) {
        if (strcmp(v, s->names[c]) != 0)
            continue;
        if (r->col_of[c] >= 0)
            rerr(r, "header", "column '%s' appears twice", v);
        r->col_of[c] = r->field;
        return;
    }
    char known[256];
    size_t off = 0;
    known[0] = '\0';
    for (int c = 0; c < s->ncols && off < sizeof known; c++)
        off +=
            (size_t)snprintf(known + off, sizeof known - off, "%s%s", c ? ", " : "", s->names[c]);
    rerr(r, "header", "unknown column '%.64s' (expected %s)", v, known);
}

static void field_cb(void *data, size_t len, void *user)
{
    reader_t *r = user;
    if (r->failed)
        return;
    const char *v = data ? data : "";
    if (!r->in_record) {
        r->in_record = true;
        /* A quoted first field may span lines, and it ends on this one: the
         * record began as many lines up as the field holds newlines. */
        r->record_line = r->line;
        for (const char *nl = v; (nl = memchr(nl, '\n', len - (size_t)(nl - v))) != NULL; nl++)
            r->record_line--;
        r->field = 0;
    }
    if (len > CSVTABLE_MAX_FIELD) {
        rerr(r, "record", "field %d is %zu bytes long (limit %d)", r->field + 1, len,
             CSVTABLE_MAX_FIELD);
        return;
    }
    if (memchr(v, '\0', len)) {
        rerr(r, "record", "field %d holds a NUL byte", r->field + 1);
        return;
    }
    if (!r->header_done) {
        header_field(r, v);
    } else {
        for (int c = 0; c < r->spec->ncols; c++) {
            if (r->col_of[c] == r->field) {
                free(r->fields[c]);
                r->fields[c] = xstrndup(v, len);
            }
        }
    }
    r->field++;
}

static void record_cb(int c, void *user)
{
    reader_t *r = user;
    const csvtable_spec_t *s = r->spec;
    (void)c;
    if (r->failed || !r->in_record) /* an error already, or a blank line */
        return;
    r->in_record = false;
    if (!r->header_done) {
        r->header_done = true;
        r->ncols = r->field;
        for (int k = 0; k < s->ncols; k++)
            if (s->required[k] && r->col_of[k] < 0)
                rerr(r, "header", "required column '%s' is missing", s->names[k]);
        return;
    }
    if (r->field != r->ncols) {
        rerr(r, "record", "%d fields, the header has %d", r->field, r->ncols);
        return;
    }
    char *fields[CSVTABLE_MAX_COLS];
    for (int k = 0; k < s->ncols; k++)
        fields[k] = r->fields[k] ? r->fields[k] : "";
    char why[512];
    why[0] = '\0';
    if (r->cb(r->user, fields, r->record_line, why, sizeof why) != 0) {
        r->failed = true;
        snprintf(r->err, r->errlen, "%s:%d: %s", r->path, r->record_line, why);
    }
    for (int k = 0; k < s->ncols; k++) {
        free(r->fields[k]);
        r->fields[k] = NULL;
    }
}

int csvtable_read(const char *path, const csvtable_spec_t *spec, csvtable_record_cb cb, void *user,
                  char *err, size_t errlen)
{
    reader_t r = {.spec = spec, .cb = cb, .user = user, .path = path, .err = err, .errlen = errlen};
    for (int c = 0; c < CSVTABLE_MAX_COLS; c++)
        r.col_of[c] = -1;
    err[0] = '\0';

    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open %s: %s", path, spec->what, strerror(errno));
        return -1;
    }
    struct csv_parser csv;
    if (csv_init(&csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        snprintf(err, errlen, "%s: cannot initialise the CSV parser", path);
        fclose(fp);
        return -1;
    }
    char *linebuf = NULL;
    size_t linecap = 0;
    ssize_t n;
    while (!r.failed && (n = getline(&linebuf, &linecap, fp)) > 0) {
        r.line++;
        if (r.line == 1 && n >= 3 && memcmp(linebuf, "\xef\xbb\xbf", 3) == 0) {
            memmove(linebuf, linebuf + 3, (size_t)n - 3); /* a BOM from a spreadsheet */
            n -= 3;
        }
        if (csv_parse(&csv, linebuf, (size_t)n, field_cb, record_cb, &r) != (size_t)n) {
            r.record_line = r.line;
            rerr(&r, "csv", "%s", csv_strerror(csv_error(&csv)));
        }
    }
    if (!r.failed && ferror(fp)) {
        r.record_line = r.line;
        rerr(&r, "file", "read error: %s", strerror(errno));
    }
    if (!r.failed && csv_fini(&csv, field_cb, record_cb, &r) != 0) {
        r.record_line = r.line;
        rerr(&r, "csv", "%s (an unterminated quoted field?)", csv_strerror(csv_error(&csv)));
    }
    csv_free(&csv);
    free(linebuf);
    fclose(fp);
    for (int k = 0; k < CSVTABLE_MAX_COLS; k++)
        free(r.fields[k]);
    if (!r.failed && !r.header_done) {
        r.record_line = 1;
        rerr(&r, "header", "the file is empty (expected a header row)");
    }
    return r.failed ? -1 : 0;
}
