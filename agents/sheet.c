/*
 * sheet.c -- worksheets as rows of cells (see sheet.h).
 *
 * .xlsx is a zip of XML parts: xl/workbook.xml lists the sheets, its
 * _rels/ part names each sheet's part, xl/sharedStrings.xml holds the text
 * most cells point to, xl/styles.xml says which cells are dates (a cell
 * style's number format), and the sheet part holds the cells. Each part is
 * read whole and handed to expat; the handlers below keep only what the
 * rows need. .xls goes through FreeXL, which does the same for BIFF.
 */
#include "agents/sheet.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>
#include <freexl.h>
#include <zip.h>

#define MAX_PART (64u << 20) /* bytes of one XML part; a bigger one is refused */
#define MAX_ROWS 1000000

typedef struct {
    unsigned long row;
    size_t n;
    rowmap_cell_t *cells;
} row_t;

struct sheet {
    char *name;
    row_t *rows;
    size_t nrows, cap, next;
};

static void *xrealloc0(void *p, size_t size)
{
    p = realloc(p, size);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrdup0(const char *s, size_t n)
{
    char *p = xrealloc0(NULL, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

bool sheet_is_spreadsheet(const char *path)
{
    size_t n = path != NULL ? strlen(path) : 0;
    return (n > 5 && strcasecmp(path + n - 5, ".xlsx") == 0) ||
           (n > 4 && strcasecmp(path + n - 4, ".xls") == 0);
}

const char *sheet_name(const sheet_t *s)
{
    return s->name;
}

bool sheet_next_row(sheet_t *s, const rowmap_cell_t **ret_cells, size_t *ret_n,
                    unsigned long *ret_row)
{
    if (s->next >= s->nrows)
        return false;
    row_t *r = &s->rows[s->next++];
    *ret_cells = r->cells;
    *ret_n = r->n;
    *ret_row = r->row;
    return true;
}

void sheet_destroy(sheet_t **sp)
{
    sheet_t *s = *sp;

    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nrows; i++) {
        for (size_t j = 0; j < s->rows[i].n; j++)
            free((char *)(uintptr_t)s->rows[i].cells[j].s);
        free(s->rows[i].cells);
    }
    free(s->rows);
    free(s->name);
    free(s);
    *sp = NULL;
}

/* Sets cell col (0-based) of the last row, growing it with empty cells. */
static void put_cell(sheet_t *s, size_t col, const char *text, size_t len, rowmap_kind_t kind,
                     double num)
{
    row_t *r = &s->rows[s->nrows - 1];

    if (col >= ROWMAP_MAX_COLS)
        return; /* beyond what a header can name: a spreadsheet's far margin */
    if (col >= r->n) {
        r->cells = xrealloc0(r->cells, (col + 1) * sizeof *r->cells);
        for (size_t i = r->n; i <= col; i++)
            r->cells[i] = (rowmap_cell_t){xstrdup0("", 0), 0, ROWMAP_TEXT, 0};
        r->n = col + 1;
    }
    free((char *)(uintptr_t)r->cells[col].s);
    r->cells[col] = (rowmap_cell_t){xstrdup0(text, len), len, kind, num};
}

static void new_row(sheet_t *s, unsigned long rownum)
{
    if (s->nrows == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->rows = xrealloc0(s->rows, s->cap * sizeof *s->rows);
    }
    s->rows[s->nrows++] = (row_t){rownum, 0, NULL};
}

/* Drops the last row if it has no content. */
static void end_row(sheet_t *s)
{
    row_t *r = &s->rows[s->nrows - 1];
    for (size_t i = 0; i < r->n; i++)
        if (r->cells[i].len > 0)
            return;
    free(r->cells);
    s->nrows--;
}

/* A number written out as a cell's text: integers without ".0". */
static size_t number_text(double v, char *buf, size_t size)
{
    return (size_t)snprintf(buf, size, "%.15g", v);
}

/* ---- xlsx ------------------------------------------------------------------ */

/* A zip member read whole, NUL-terminated; NULL if absent. */
static char *zip_part(zip_t *z, const char *name, size_t *ret_len, char *err, size_t errlen,
                      const char *path)
{
    zip_stat_t st;
    zip_file_t *f;

    *ret_len = 0;
    if (zip_stat(z, name, 0, &st) != 0)
        return NULL;
    if (!(st.valid & ZIP_STAT_SIZE) || st.size > MAX_PART) {
        snprintf(err, errlen, "%s: %s is larger than %u MiB", path, name, MAX_PART >> 20);
        return NULL;
    }
    if ((f = zip_fopen(z, name, 0)) == NULL) {
        snprintf(err, errlen, "%s: %s: %s", path, name, zip_strerror(z));
        return NULL;
    }
    char *buf = xrealloc0(NULL, (size_t)st.size + 1);
    zip_int64_t got = zip_fread(f, buf, st.size);
    zip_fclose(f);
    if (got < 0 || (zip_uint64_t)got != st.size) {
        snprintf(err, errlen, "%s: %s: cannot be read (a damaged file?)", path, name);
        free(buf);
        return NULL;
    }
    buf[st.size] = '\0';
    *ret_len = (size_t)st.size;
    return buf;
}

/* The local part of a (possibly prefixed) XML name: "x:row" -> "row". */
static const char *local(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static const char *attr(const char **atts, const char *name)
{
    for (size_t i = 0; atts[i] != NULL; i += 2)
        if (strcmp(local(atts[i]), name) == 0)
            return atts[i + 1];
    return NULL;
}

/* One growable text buffer for character data. */
typedef struct {
    char *s;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc0(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

typedef struct {
    /* the workbook: sheets in order, and the rels */
    char **names, **rids, **targets, **ids;
    size_t nsheets, nrels;
    /* shared strings */
    char **sst;
    size_t nsst;
    int in_si, in_t, in_rph;
    text_t cur;
    /* styles: which cellXfs index is a date */
    int in_cellxfs;
    bool *xf_date;
    size_t nxf;
    int *fmt_ids; /* custom number formats that are dates */
    size_t nfmt;
    /* the sheet */
    sheet_t *sh;
    size_t col;
    char ctype[16];
    long cstyle;
    int in_v, in_is;
    text_t v;
} xlsx_t;

static void add_str(char ***v, size_t *n, const char *s)
{
    *v = xrealloc0(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = xstrdup0(s, strlen(s));
}

static void wb_start(void *ud, const char *name, const char **atts)
{
    xlsx_t *x = ud;
    const char *ln = local(name);

    if (strcmp(ln, "sheet") == 0) {
        const char *n = attr(atts, "name"), *id = NULL;
        for (size_t i = 0; atts[i] != NULL; i += 2)
            if (strcmp(local(atts[i]), "id") == 0 && strchr(atts[i], ':') != NULL)
                id = atts[i + 1];
        if (n != NULL && id != NULL) {
            size_t k = x->nsheets;
            add_str(&x->names, &x->nsheets, n);
            add_str(&x->rids, &k, id);
        }
    } else if (strcmp(ln, "Relationship") == 0) {
        const char *id = attr(atts, "Id"), *t = attr(atts, "Target");
        if (id != NULL && t != NULL) {
            size_t k = x->nrels;
            add_str(&x->ids, &x->nrels, id);
            add_str(&x->targets, &k, t);
        }
    }
}

static void sst_start(void *ud, const char *name, const char **atts)
{
    xlsx_t *x = ud;
    const char *ln = local(name);
    (void)atts;

    if (strcmp(ln, "si") == 0) {
        x->in_si = 1;
        x->cur.len = 0;
        text_add(&x->cur, "", 0);
    } else if (strcmp(ln, "rPh") == 0) {
        x->in_rph = 1; /* phonetic hints (furigana): not part of the text */
    } else if (strcmp(ln, "t") == 0 && x->in_si && !x->in_rph) {
        x->in_t = 1;
    }
}

static void sst_end(void *ud, const char *name)
{
    xlsx_t *x = ud;
    const char *ln = local(name);

    if (strcmp(ln, "si") == 0) {
        x->sst = xrealloc0(x->sst, (x->nsst + 1) * sizeof *x->sst);
        x->sst[x->nsst++] = xstrdup0(x->cur.s, x->cur.len);
        x->in_si = 0;
    } else if (strcmp(ln, "rPh") == 0) {
        x->in_rph = 0;
    } else if (strcmp(ln, "t") == 0) {
        x->in_t = 0;
    }
}

static void sst_text(void *ud, const char *s, int len)
{
    xlsx_t *x = ud;
    if (x->in_t)
        text_add(&x->cur, s, (size_t)len);
}

/* Whether a number format code shows a date or a time. */
static bool format_is_date(const char *code)
{
    bool quoted = false, bracket = false;

    for (const char *p = code; *p != '\0'; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (quoted)
            continue;
        else if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '[')
            bracket = true;
        else if (*p == ']')
            bracket = false;
        else if (!bracket && strchr("yYdDhHsS", *p) != NULL)
            return true;
        else if (!bracket && (*p == 'm' || *p == 'M'))
            return true;
    }
    return false;
}

static bool builtin_date(long id)
{
    return (id >= 14 && id <= 22) || (id >= 27 && id <= 36) || (id >= 45 && id <= 47) ||
           (id >= 50 && id <= 58);
}

static void style_start(void *ud, const char *name, const char **atts)
{
    xlsx_t *x = ud;
    const char *ln = local(name);

    if (strcmp(ln, "numFmt") == 0) {
        const char *id = attr(atts, "numFmtId"), *code = attr(atts, "formatCode");
        if (id != NULL && code != NULL && format_is_date(code)) {
            x->fmt_ids = xrealloc0(x->fmt_ids, (x->nfmt + 1) * sizeof *x->fmt_ids);
            x->fmt_ids[x->nfmt++] = atoi(id);
        }
    } else if (strcmp(ln, "cellXfs") == 0) {
        x->in_cellxfs = 1;
    } else if (strcmp(ln, "xf") == 0 && x->in_cellxfs) {
        const char *id = attr(atts, "numFmtId");
        long f = id != NULL ? strtol(id, NULL, 10) : 0;
        bool date = builtin_date(f);
        for (size_t i = 0; i < x->nfmt && !date; i++)
            date = x->fmt_ids[i] == f;
        x->xf_date = xrealloc0(x->xf_date, (x->nxf + 1) * sizeof *x->xf_date);
        x->xf_date[x->nxf++] = date;
    }
}

static void style_end(void *ud, const char *name)
{
    xlsx_t *x = ud;
    if (strcmp(local(name), "cellXfs") == 0)
        x->in_cellxfs = 0;
}

/* "BC12" -> column 54 (0-based); -1 if no letters. */
static long ref_col(const char *ref)
{
    long c = 0;
    int n = 0;

    for (; ref != NULL && isupper((unsigned char)*ref) && n < 4; ref++, n++)
        c = c * 26 + (*ref - 'A' + 1);
    return n == 0 ? -1 : c - 1;
}

static void ws_start(void *ud, const char *name, const char **atts)
{
    xlsx_t *x = ud;
    const char *ln = local(name);

    if (strcmp(ln, "row") == 0) {
        const char *r = attr(atts, "r");
        unsigned long num = r != NULL ? strtoul(r, NULL, 10)
                                      : (x->sh->nrows ? x->sh->rows[x->sh->nrows - 1].row + 1 : 1);
        if (x->sh->nrows < MAX_ROWS)
            new_row(x->sh, num);
        x->col = 0;
    } else if (strcmp(ln, "c") == 0 && x->sh->nrows > 0) {
        const char *t = attr(atts, "t"), *s = attr(atts, "s");
        long c = ref_col(attr(atts, "r"));
        if (c >= 0)
            x->col = (size_t)c;
        snprintf(x->ctype, sizeof x->ctype, "%s", t != NULL ? t : "n");
        x->cstyle = s != NULL ? strtol(s, NULL, 10) : 0;
        x->v.len = 0;
        text_add(&x->v, "", 0);
    } else if (strcmp(ln, "v") == 0) {
        x->in_v = 1;
    } else if (strcmp(ln, "is") == 0) {
        x->in_is = 1;
    } else if (strcmp(ln, "t") == 0 && x->in_is) {
        x->in_v = 1;
    } else if (strcmp(ln, "rPh") == 0) {
        x->in_rph = 1;
    }
}

static void ws_end(void *ud, const char *name)
{
    xlsx_t *x = ud;
    const char *ln = local(name);
    char num[64];

    if (strcmp(ln, "v") == 0 || strcmp(ln, "t") == 0) {
        x->in_v = 0;
    } else if (strcmp(ln, "is") == 0) {
        x->in_is = 0;
    } else if (strcmp(ln, "rPh") == 0) {
        x->in_rph = 0;
    } else if (strcmp(ln, "row") == 0 && x->sh->nrows > 0) {
        end_row(x->sh);
    } else if (strcmp(ln, "c") == 0 && x->sh->nrows > 0) {
        const char *t = x->ctype, *v = x->v.s != NULL ? x->v.s : "";
        if (strcmp(t, "s") == 0) {
            unsigned long i = strtoul(v, NULL, 10);
            const char *s = i < x->nsst ? x->sst[i] : "";
            put_cell(x->sh, x->col, s, strlen(s), ROWMAP_TEXT, 0);
        } else if (strcmp(t, "n") == 0 && x->v.len > 0) {
            char *end;
            double d = strtod(v, &end);
            bool date = x->cstyle >= 0 && (size_t)x->cstyle < x->nxf && x->xf_date[x->cstyle];
            if (*end != '\0')
                put_cell(x->sh, x->col, v, x->v.len, ROWMAP_TEXT, 0);
            else
                put_cell(x->sh, x->col, num, number_text(d, num, sizeof num),
                         date ? ROWMAP_DATE : ROWMAP_NUMBER, d);
        } else if (strcmp(t, "e") == 0) {
            put_cell(x->sh, x->col, v, x->v.len, ROWMAP_TEXT,
                     0); /* "#DIV/0!": refused as a value */
        } else {
            put_cell(x->sh, x->col, v, x->v.len, ROWMAP_TEXT, 0); /* str, inlineStr, b */
        }
        x->col++;
    }
}

static void ws_text(void *ud, const char *s, int len)
{
    xlsx_t *x = ud;
    if (x->in_v && !x->in_rph)
        text_add(&x->v, s, (size_t)len);
}

static int parse_xml(const char *buf, size_t len, xlsx_t *x, XML_StartElementHandler st,
                     XML_EndElementHandler en, XML_CharacterDataHandler tx, const char *path,
                     const char *part, char *err, size_t errlen)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    int rc = 0;

    if (p == NULL)
        abort();
    XML_SetUserData(p, x);
    XML_SetElementHandler(p, st, en);
    if (tx != NULL)
        XML_SetCharacterDataHandler(p, tx);
    if (XML_Parse(p, buf, (int)len, 1) == XML_STATUS_ERROR) {
        snprintf(err, errlen, "%s: %s: XML error at line %lu: %s", path, part,
                 (unsigned long)XML_GetCurrentLineNumber(p), XML_ErrorString(XML_GetErrorCode(p)));
        rc = -1;
    }
    XML_ParserFree(p);
    return rc;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static sheet_t *xlsx_open(const char *path, const char *want, char *err, size_t errlen)
{
    xlsx_t x = {0};
    sheet_t *sh = NULL;
    char *buf = NULL, part[1024];
    size_t len, pick = 0;
    int zerr;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);

    err[0] = '\0';
    if (z == NULL) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        snprintf(err, errlen, "%s: not a readable .xlsx file (%s)", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return NULL;
    }
    if ((buf = zip_part(z, "xl/workbook.xml", &len, err, errlen, path)) == NULL ||
        parse_xml(buf, len, &x, wb_start, NULL, NULL, path, "workbook", err, errlen) != 0)
        goto out;
    free(buf);
    if ((buf = zip_part(z, "xl/_rels/workbook.xml.rels", &len, err, errlen, path)) == NULL ||
        parse_xml(buf, len, &x, wb_start, NULL, NULL, path, "workbook rels", err, errlen) != 0)
        goto out;
    free(buf);
    if (x.nsheets == 0) {
        snprintf(err, errlen, "%s: the workbook has no worksheet", path);
        buf = NULL;
        goto out;
    }
    if (want != NULL) {
        for (pick = 0; pick < x.nsheets && strcmp(x.names[pick], want) != 0; pick++)
            ;
        if (pick == x.nsheets) {
            int n = snprintf(err, errlen, "%s: no worksheet '%s' (there are:", path, want);
            for (size_t i = 0; i < x.nsheets && n > 0 && (size_t)n < errlen; i++)
                n += snprintf(err + n, errlen - (size_t)n, " '%s'", x.names[i]);
            if (n > 0 && (size_t)n < errlen)
                snprintf(err + n, errlen - (size_t)n, ")");
            buf = NULL;
            goto out;
        }
    }
    const char *target = NULL;
    for (size_t i = 0; i < x.nrels; i++)
        if (strcmp(x.ids[i], x.rids[pick]) == 0)
            target = x.targets[i];
    if (target == NULL) {
        snprintf(err, errlen, "%s: worksheet '%s' has no part", path, x.names[pick]);
        buf = NULL;
        goto out;
    }
    if (target[0] == '/')
        snprintf(part, sizeof part, "%s", target + 1);
    else
        snprintf(part, sizeof part, "xl/%s", target);

    if ((buf = zip_part(z, "xl/sharedStrings.xml", &len, err, errlen, path)) != NULL) {
        if (parse_xml(buf, len, &x, sst_start, sst_end, sst_text, path, "shared strings", err,
                      errlen) != 0)
            goto out;
        free(buf);
    } else if (err[0] != '\0') {
        goto out;
    }
    if ((buf = zip_part(z, "xl/styles.xml", &len, err, errlen, path)) != NULL) {
        if (parse_xml(buf, len, &x, style_start, style_end, NULL, path, "styles", err, errlen) != 0)
            goto out;
        free(buf);
    } else if (err[0] != '\0') {
        goto out;
    }
    if ((buf = zip_part(z, part, &len, err, errlen, path)) == NULL) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: worksheet part %s is missing", path, part);
        goto out;
    }
    sh = xrealloc0(NULL, sizeof *sh);
    *sh = (sheet_t){.name = xstrdup0(x.names[pick], strlen(x.names[pick]))};
    x.sh = sh;
    if (parse_xml(buf, len, &x, ws_start, ws_end, ws_text, path, part, err, errlen) != 0)
        sheet_destroy(&sh);
out:
    free(buf);
    free_strs(x.names, x.nsheets);
    free_strs(x.rids, x.nsheets);
    free_strs(x.ids, x.nrels);
    free_strs(x.targets, x.nrels);
    free_strs(x.sst, x.nsst);
    free(x.cur.s);
    free(x.v.s);
    free(x.xf_date);
    free(x.fmt_ids);
    zip_discard(z);
    return sh;
}

/* ---- xls ------------------------------------------------------------------- */

/* FreeXL's "YYYY-MM-DD[ hh:mm:ss]" (or a time alone) as an Excel serial date. */
static bool text_serial(const char *s, bool time_only, double *ret)
{
    int y = 1899, mo = 12, d = 30, h = 0, mi = 0, sec = 0;

    if (time_only) {
        if (sscanf(s, "%d:%d:%d", &h, &mi, &sec) < 2)
            return false;
    } else if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec) < 3) {
        return false;
    }
    /* days from 1899-12-30 by the civil-days formula used in rowmap.c */
    long yy = y - (mo <= 2), era = (yy >= 0 ? yy : yy - 399) / 400;
    long yoe = yy - era * 400, doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468; /* since 1970 */
    *ret = (double)(days + 25569) + (h * 3600 + mi * 60 + sec) / 86400.0;
    return true;
}

static sheet_t *xls_open(const char *path, const char *want, char *err, size_t errlen)
{
    const void *h = NULL;
    unsigned int nsheets = 0, rows = 0, pick = 0;
    unsigned short cols = 0;
    const char *nm = NULL;
    int rc;

    if ((rc = freexl_open(path, &h)) != FREEXL_OK) {
        snprintf(err, errlen, "%s: not a readable .xls file (FreeXL error %d)", path, rc);
        if (h != NULL)
            freexl_close(h);
        return NULL;
    }
    if (freexl_get_info(h, FREEXL_BIFF_SHEET_COUNT, &nsheets) != FREEXL_OK || nsheets == 0) {
        snprintf(err, errlen, "%s: the workbook has no worksheet", path);
        freexl_close(h);
        return NULL;
    }
    if (want != NULL) {
        for (pick = 0; pick < nsheets; pick++)
            if (freexl_get_worksheet_name(h, (unsigned short)pick, &nm) == FREEXL_OK && nm &&
                strcmp(nm, want) == 0)
                break;
        if (pick == nsheets) {
            snprintf(err, errlen, "%s: no worksheet '%s'", path, want);
            freexl_close(h);
            return NULL;
        }
    }
    if (freexl_select_active_worksheet(h, (unsigned short)pick) != FREEXL_OK ||
        freexl_get_worksheet_name(h, (unsigned short)pick, &nm) != FREEXL_OK ||
        freexl_worksheet_dimensions(h, &rows, &cols) != FREEXL_OK) {
        snprintf(err, errlen, "%s: worksheet %u cannot be read", path, pick + 1);
        freexl_close(h);
        return NULL;
    }
    sheet_t *sh = xrealloc0(NULL, sizeof *sh);
    *sh = (sheet_t){.name = xstrdup0(nm ? nm : "", nm ? strlen(nm) : 0)};
    for (unsigned int r = 0; r < rows && r < MAX_ROWS; r++) {
        new_row(sh, r + 1);
        for (unsigned short c = 0; c < cols; c++) {
            FreeXL_CellValue v;
            char num[64];
            double d;

            if (freexl_get_cell_value(h, r, c, &v) != FREEXL_OK)
                continue;
            switch (v.type) {
            case FREEXL_CELL_INT:
                d = v.value.int_value;
                put_cell(sh, c, num, number_text(d, num, sizeof num), ROWMAP_NUMBER, d);
                break;
            case FREEXL_CELL_DOUBLE:
                d = v.value.double_value;
                put_cell(sh, c, num, number_text(d, num, sizeof num), ROWMAP_NUMBER, d);
                break;
            case FREEXL_CELL_TEXT:
            case FREEXL_CELL_SST_TEXT:
                put_cell(sh, c, v.value.text_value, strlen(v.value.text_value), ROWMAP_TEXT, 0);
                break;
            case FREEXL_CELL_DATE:
            case FREEXL_CELL_DATETIME:
            case FREEXL_CELL_TIME:
                if (text_serial(v.value.text_value, v.type == FREEXL_CELL_TIME, &d))
                    put_cell(sh, c, v.value.text_value, strlen(v.value.text_value), ROWMAP_DATE, d);
                else
                    put_cell(sh, c, v.value.text_value, strlen(v.value.text_value), ROWMAP_TEXT, 0);
                break;
            default: break;
            }
        }
        end_row(sh);
    }
    freexl_close(h);
    return sh;
}

sheet_t *sheet_open(const char *path, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(path);

    if (n > 5 && strcasecmp(path + n - 5, ".xlsx") == 0)
        return xlsx_open(path, name, err, errlen);
    return xls_open(path, name, err, errlen);
}
