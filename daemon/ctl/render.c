/* render.c -- see render.h. */
#include "daemon/ctl/render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

render_lang_t render_lang_pick(const char *opt)
{
    if (opt)
        return strncmp(opt, "zh", 2) == 0 ? RENDER_ZH : RENDER_EN;
    const char *vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strncmp(v, "zh", 2) == 0 ? RENDER_ZH : RENDER_EN;
    }
    return RENDER_EN;
}

void render_table_init(render_table_t *t, const render_col_t *cols, size_t ncols, bool yuan)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->ncols = ncols;
    t->yuan = yuan;
}

void render_table_free(render_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].s);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

void render_row(render_table_t *t)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = realloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
        if (!t->cells)
            abort();
    }
    memset(&t->cells[t->nrows * t->ncols], 0, t->ncols * sizeof *t->cells);
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c].nil = true;
    t->nrows++;
}

static render_cell_t *cell(render_table_t *t, size_t col)
{
    render_cell_t *c = &t->cells[(t->nrows - 1) * t->ncols + col];
    free(c->s);
    c->s = NULL;
    c->nil = false;
    return c;
}

void render_text(render_table_t *t, size_t col, const char *s)
{
    if (!s) {
        render_nil(t, col);
        return;
    }
    cell(t, col)->s = strdup(s);
}

void render_int(render_table_t *t, size_t col, int64_t v)
{
    cell(t, col)->i = v;
}

void render_double(render_table_t *t, size_t col, double v)
{
    if (!isfinite(v)) {
        render_nil(t, col);
        return;
    }
    cell(t, col)->d = v;
}

void render_nil(render_table_t *t, size_t col)
{
    cell(t, col)->nil = true;
}

/* ---- formatting ----------------------------------------------------------------- */

void render_milli_text(int64_t v, char *buf, size_t size)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    snprintf(buf, size, "%s%llu.%03llu", v < 0 ? "-" : "", (unsigned long long)(u / 1000),
             (unsigned long long)(u % 1000));
}

/* Digits grouped by thousands: "20,580,000,000" (a fraction only if any). */
static void grouped(int64_t milli, char *buf, size_t size)
{
    uint64_t u = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    char digits[32], out[64];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)(u / 1000));
    size_t o = 0;
    if (milli < 0)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    unsigned frac = (unsigned)(u % 1000);
    if (!frac) {
        snprintf(buf, size, "%s", out);
        return;
    }
    char f[8];
    snprintf(f, sizeof f, "%03u", frac);
    for (int k = 2; k > 0 && f[k] == '0'; k--)
        f[k] = '\0';
    snprintf(buf, size, "%s.%s", out, f);
}

/* An amount scaled to 亿元 (1e8) or 万元 (1e4), two decimals, rounded half
 * away from zero in integer arithmetic. */
static void scaled(int64_t milli, int64_t unit_yuan, char *buf, size_t size)
{
    /* hundredths of the unit: milli * 100 / (unit * 1000) */
    __int128 den = (__int128)unit_yuan * 10;
    __int128 v = milli, q = (v < 0 ? -v : v);
    q = (q + den / 2) / den;
    int64_t h = (int64_t)q;
    snprintf(buf, size, "%s%lld.%02lld", v < 0 && h ? "-" : "", (long long)(h / 100),
             (long long)(h % 100));
}

void render_time_text(int64_t ms, render_lang_t lang, const char *tz, char *buf, size_t size)
{
    const char *zone = lang == RENDER_ZH ? "Asia/Shanghai" : tz;
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    setenv("TZ", zone && *zone ? zone : "UTC", 1);
    tzset();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, size, zone && *zone ? "%Y-%m-%d %H:%M" : "%Y-%m-%d %H:%M UTC", &tm);
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

/* ISO 8601 with the offset of tz (Chinese: Asia/Shanghai), for CSV. */
static void iso_time(int64_t ms, render_lang_t lang, const char *tz, char *buf, size_t size)
{
    const char *zone = lang == RENDER_ZH ? "Asia/Shanghai" : tz;
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    setenv("TZ", zone && *zone ? zone : "UTC", 1);
    tzset();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char off[8];
    localtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(off, sizeof off, "%z", &tm);
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%.3s:%.2s", off, off + 3);
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

/* Display width of UTF-8 text: East Asian wide characters count two. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp;
        int n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if ((*p & 0xe0) == 0xc0) {
            cp = *p & 0x1f;
            n = 2;
        } else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f;
            n = 3;
        } else {
            cp = *p & 0x07;
            n = 4;
        }
        for (int k = 1; k < n && p[k]; k++)
            cp = cp << 6 | (p[k] & 0x3f);
        for (int k = 0; k < n && *p; k++)
            p++;
        bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
        w += wide ? 2 : 1;
    }
    return w;
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* The unit a Chinese table shows a yuan column in: 亿元 if any value
 * reaches 1 亿, else 万元. */
static int64_t zh_unit(const render_table_t *t, size_t c)
{
    for (size_t r = 0; r < t->nrows; r++) {
        const render_cell_t *x = &t->cells[r * t->ncols + c];
        if (!x->nil && (x->i >= 100000000000LL || x->i <= -100000000000LL))
            return 100000000;
    }
    return 10000;
}

static void cell_text(const render_table_t *t, size_t r, size_t c, render_format_t fmt,
                      render_lang_t lang, const char *tz, int64_t unit, char *buf, size_t size)
{
    const render_cell_t *x = &t->cells[r * t->ncols + c];
    if (x->nil) {
        snprintf(buf, size, "%s", fmt == RENDER_CSV ? "" : "-");
        return;
    }
    switch (t->cols[c].kind) {
    case COL_TEXT: snprintf(buf, size, "%s", x->s ? x->s : ""); break;
    case COL_COUNT: snprintf(buf, size, "%lld", (long long)x->i); break;
    case COL_MILLI:
        if (fmt == RENDER_CSV)
            render_milli_text(x->i, buf, size);
        else if (lang == RENDER_ZH && t->yuan)
            scaled(x->i, unit, buf, size);
        else
            grouped(x->i, buf, size);
        break;
    case COL_SHARE:
        if (fmt == RENDER_CSV)
            snprintf(buf, size, "%.4f", x->d);
        else
            snprintf(buf, size, "%.1f %%", x->d);
        break;
    case COL_PCT:
    case COL_PP:
        if (fmt == RENDER_CSV)
            snprintf(buf, size, "%.4f", x->d);
        else
            snprintf(buf, size, "%+.2f%s", x->d, t->cols[c].kind == COL_PCT ? " %" : " pp");
        break;
    case COL_TIME:
        if (fmt == RENDER_CSV)
            iso_time(x->i, lang, tz, buf, size);
        else
            render_time_text(x->i, lang, tz, buf, size);
        break;
    }
}

static void header_text(const render_table_t *t, size_t c, render_lang_t lang, int64_t unit,
                        char *buf, size_t size)
{
    const render_col_t *col = &t->cols[c];
    const char *name = lang == RENDER_ZH && col->zh ? col->zh : col->en;
    if (lang == RENDER_ZH && col->kind == COL_MILLI && t->yuan)
        snprintf(buf, size, "%s（%s）", name, unit == 100000000 ? "亿元" : "万元");
    else
        snprintf(buf, size, "%s", name);
}

void render_print(const render_table_t *t, render_format_t fmt, render_lang_t lang, const char *tz,
                  FILE *out)
{
    int64_t units[64];
    size_t widths[64];
    char buf[1024];
    size_t nc = t->ncols < 64 ? t->ncols : 64;
    for (size_t c = 0; c < nc; c++) {
        units[c] = t->cols[c].kind == COL_MILLI ? zh_unit(t, c) : 0;
        header_text(t, c, lang, units[c], buf, sizeof buf);
        widths[c] = width(buf);
    }
    if (fmt == RENDER_CSV) {
        for (size_t c = 0; c < nc; c++) {
            header_text(t, c, lang, units[c], buf, sizeof buf);
            if (c)
                fputc(',', out);
            /* CSV headers name the exact unit: no scaling happens there */
            csv_field(out, lang == RENDER_ZH && t->cols[c].zh ? t->cols[c].zh : t->cols[c].en);
        }
        fputs("\r\n", out);
        for (size_t r = 0; r < t->nrows; r++) {
            for (size_t c = 0; c < nc; c++) {
                cell_text(t, r, c, fmt, lang, tz, units[c], buf, sizeof buf);
                if (c)
                    fputc(',', out);
                csv_field(out, buf);
            }
            fputs("\r\n", out);
        }
        return;
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < nc; c++) {
            cell_text(t, r, c, fmt, lang, tz, units[c], buf, sizeof buf);
            size_t w = width(buf);
            if (w > widths[c])
                widths[c] = w;
        }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < nc; c++) {
            if (r == 0)
                header_text(t, c, lang, units[c], buf, sizeof buf);
            else
                cell_text(t, r - 1, c, fmt, lang, tz, units[c], buf, sizeof buf);
            size_t pad = widths[c] - width(buf);
            bool right = t->cols[c].kind != COL_TEXT;
            bool last = c + 1 == nc;
            if (c)
                fputs("  ", out);
            if (right)
                fprintf(out, "%*s", (int)pad, "");
            fputs(buf, out);
            if (!right && !last)
                fprintf(out, "%*s", (int)pad, "");
        }
        fputc('\n', out);
    }
}
