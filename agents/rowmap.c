/*
 * rowmap.c -- header -> columns -> samples (see rowmap.h for the shapes).
 *
 * The checks of a single field (ids, numbers, periods, timestamps) live
 * here, so a CSV line and a spreadsheet row are judged by the same rules and
 * their errors read the same; agents/input.c adds the file and line.
 */
#include "agents/rowmap.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agents/input.h"
#include "agents/utf8.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define SHOW_MAX 40

const rowmap_alias_t rowmap_aliases[] = {
    {"firm", ROWMAP_FIRM},           {"enterprise", ROWMAP_FIRM},
    {"company", ROWMAP_FIRM},        {"企业", ROWMAP_FIRM},
    {"企业代码", ROWMAP_FIRM},       {"统一社会信用代码", ROWMAP_FIRM},
    {"metric", ROWMAP_METRIC},       {"indicator", ROWMAP_METRIC},
    {"指标", ROWMAP_METRIC},         {"value", ROWMAP_VALUE},
    {"amount", ROWMAP_VALUE},        {"数值", ROWMAP_VALUE},
    {"金额", ROWMAP_VALUE},          {"period", ROWMAP_PERIOD},
    {"month", ROWMAP_PERIOD},        {"期间", ROWMAP_PERIOD},
    {"月份", ROWMAP_PERIOD},         {"年月", ROWMAP_PERIOD},
    {"timestamp", ROWMAP_TIMESTAMP}, {"time", ROWMAP_TIMESTAMP},
    {"时间", ROWMAP_TIMESTAMP},      {NULL, ROWMAP_NONE},
};

static const struct {
    const char *name;
    rowmap_role_t role;
} role_names[] = {
    {"firm", ROWMAP_FIRM},     {"metric", ROWMAP_METRIC},       {"value", ROWMAP_VALUE},
    {"period", ROWMAP_PERIOD}, {"timestamp", ROWMAP_TIMESTAMP}, {"-", ROWMAP_IGNORE},
};

/* What a headerless table's four columns are called in errors. */
static const char *const legacy_names[4] = {"enterprise", "metric", "value", "period"};

typedef struct {
    char *name;
    rowmap_role_t role;
} colmap_t;

struct rowmap {
    const rowmap_metric_t *metrics;
    size_t nmetrics;
    colmap_t *colmap; /* from --columns */
    size_t ncolmap;

    bool started, header;
    size_t ncols, nwide;
    int ifirm, imetric, ivalue, iperiod, its;
    rowmap_role_t role[ROWMAP_MAX_COLS];
    char *label[ROWMAP_MAX_COLS];  /* "value (column 3 '数值')", owned */
    char *metric[ROWMAP_MAX_COLS]; /* a wide column's metric id, owned */
};

static void *xcalloc0(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrndup0(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (p == NULL)
        abort();
    return p;
}

/* Writes a field for an error message: at most SHOW_MAX bytes, control
 * bytes as \xNN, "..." when cut. */
static const char *show(const char *s, size_t len, char *buf, size_t bufsize)
{
    size_t o = 0;

    for (size_t i = 0; i < len && i < SHOW_MAX && o + 5 < bufsize; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, bufsize - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (len > SHOW_MAX && o + 4 < bufsize) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- field checks ------------------------------------------------------ */

/* Checks an enterprise or metric id; returns NULL or the reason. */
static const char *id_problem(const char *s, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > PROTO_MAX_ID_LEN)
        return "is longer than " STR(PROTO_MAX_ID_LEN) " bytes";
    if (!utf8_valid(s, len))
        return "is not valid UTF-8 (nor GB18030: see --encoding)";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
    }
    return NULL;
}

static const char *value_check(double v)
{
    if (!isfinite(v))
        return "is out of range";
    if (fabs(v) > PROTO_MAX_ABS_VALUE)
        return "exceeds the limit of " STR(PROTO_MAX_ABS_VALUE) " in absolute value";
    return NULL;
}

/*
 * Parses a decimal number that must fill s; returns NULL or the reason.
 * Thousands separators as spreadsheets write them ("1,234,567.5": a comma
 * before every group of exactly three digits) are dropped.
 */
static const char *value_parse(const char *s, size_t len, double *ret)
{
    char buf[128], *end;
    size_t n = 0;

    if (len == 0)
        return "is empty";
    if (len >= sizeof buf)
        return "is not a number";
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ',') {
            /* a group separator: digits before, exactly three after */
            size_t k = i + 1;
            while (k < len && isdigit((unsigned char)s[k]))
                k++;
            if (n == 0 || !isdigit((unsigned char)buf[n - 1]) || k - i - 1 != 3 ||
                (k < len && s[k] != ',' && s[k] != '.'))
                return "is not a number";
            continue;
        }
        /* strtod also takes hex, "inf", "nan" and locale forms: screen those out. */
        if (!isdigit((unsigned char)s[i]) && strchr("+-.eE", s[i]) == NULL)
            return "is not a number";
        buf[n++] = s[i];
    }
    buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, &end);
    if (n == 0 || end != buf + n)
        return "is not a number";
    const char *why = value_check(v);
    if (why != NULL)
        return why;
    *ret = v;
    return NULL;
}

static bool utf8_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Reads 1..max digits at *p; returns -1 if none. */
static long take_digits(const char **p, const char *end, int max)
{
    long v = 0;
    int n = 0;

    while (*p < end && n < max && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n == 0 ? -1 : v;
}

static bool take(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) >= n && memcmp(*p, lit, n) == 0) {
        *p += n;
        return true;
    }
    return false;
}

/* Writes y and a month or quarter the way proto_period_parse() reads them. */
static int period_norm(proto_period_t *ret, bool quarter, long y, long m)
{
    char norm[32];
    int n = quarter ? snprintf(norm, sizeof norm, "%04ld-Q%ld", y, m)
                    : snprintf(norm, sizeof norm, "%04ld-%02ld", y, m);
    return n > 0 && proto_period_parse(norm, (size_t)n, ret) == PROTO_OK ? 0 : -1;
}

int rowmap_period_parse(const char *s, size_t len, proto_period_t *ret)
{
    const char *p = s, *end = s + len;
    long y, m;

    if (proto_period_parse(s, len, ret) == PROTO_OK)
        return 0;
    if (len == 6 && all_digits(s, len)) { /* 202411 */
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        m = (s[4] - '0') * 10 + (s[5] - '0');
        goto month;
    }
    if (len < 4 || !all_digits(s, 4))
        return -1;
    y = take_digits(&p, end, 4);
    if (take(&p, end, "年")) {
        if (p == end)
            goto year;
        if (take(&p, end, "第")) {
            m = take_digits(&p, end, 1);
            if (m < 1 || !take(&p, end, "季度") || p != end)
                return -1;
            goto quarter;
        }
        m = take_digits(&p, end, 2);
        if (m < 0 || !take(&p, end, "月") || p != end)
            return -1;
        goto month;
    }
    if (p < end && (*p == 'Q' || *p == 'q')) {
        p++;
        m = take_digits(&p, end, 1);
        if (m < 1 || p != end)
            return -1;
        goto quarter;
    }
    if (p < end && (*p == '/' || *p == '-' || *p == '.')) {
        p++;
        m = take_digits(&p, end, 2);
        if (m < 0 || p != end)
            return -1;
        goto month;
    }
    return -1;
year:
    return proto_period_parse(s, 4, ret) == PROTO_OK ? 0 : -1;
quarter:
    return period_norm(ret, true, y, m);
month:
    return period_norm(ret, false, y, m);
}

/* Howard Hinnant's civil_from_days. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int rowmap_serial_civil(double serial, int *ret_y, int *ret_mo, int *ret_d, int *ret_h, int *ret_mi,
                        int *ret_s)
{
    /* 61 is 1900-03-01: before it, Excel counts a 29 February 1900 that was not. */
    if (!isfinite(serial) || serial < 61 || serial >= 109574) /* 2200-01-01 */
        return -1;
    double days = floor(serial);
    long secs = lround((serial - days) * 86400.0);
    if (secs >= 86400) {
        days += 1;
        secs -= 86400;
    }
    civil_from_days((int64_t)days - 25569, ret_y, ret_mo, ret_d); /* 25569: 1970-01-01 */
    *ret_h = (int)(secs / 3600);
    *ret_mi = (int)(secs / 60 % 60);
    *ret_s = (int)(secs % 60);
    return 0;
}

/* A date cell as Unix ms, read in the agent's local time zone. */
static int serial_ms(double serial, int64_t *ret)
{
    struct tm tm = {0};

    if (rowmap_serial_civil(serial, &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                            &tm.tm_sec) != 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || t < 0 || (int64_t)t * 1000 >= PROTO_MAX_TS_MS)
        return -1;
    *ret = (int64_t)t * 1000;
    return 0;
}

/* ---- construction ------------------------------------------------------ */

static rowmap_role_t role_by_name(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
        if (strlen(role_names[i].name) == len && strncasecmp(role_names[i].name, s, len) == 0)
            return role_names[i].role;
    return ROWMAP_NONE;
}

/* Trims spaces and tabs at both ends. */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

rowmap_t *rowmap_new(const rowmap_opts_t *opts, char *err, size_t errlen)
{
    rowmap_t *m = xcalloc0(1, sizeof *m);
    const char *p = opts != NULL ? opts->columns : NULL;

    m->ifirm = m->imetric = m->ivalue = m->iperiod = m->its = -1;
    if (opts != NULL) {
        m->metrics = opts->metrics;
        m->nmetrics = opts->nmetrics;
    }
    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, ","), nlen, rlen;
        const char *eq = memchr(p, '=', len), *name = p, *role;

        if (eq == NULL) {
            failf(err, errlen, "--columns: '%.*s' is not NAME=ROLE", (int)len, p);
            rowmap_destroy(&m);
            return NULL;
        }
        nlen = (size_t)(eq - p);
        role = eq + 1;
        rlen = len - nlen - 1;
        trim(&name, &nlen);
        trim(&role, &rlen);
        rowmap_role_t r = role_by_name(role, rlen);
        if (nlen == 0 || r == ROWMAP_NONE) {
            failf(err, errlen,
                  "--columns: '%.*s': ROLE is one of firm, metric, value, period, timestamp or -",
                  (int)len, p);
            rowmap_destroy(&m);
            return NULL;
        }
        m->colmap = realloc(m->colmap, (m->ncolmap + 1) * sizeof *m->colmap);
        if (m->colmap == NULL)
            abort();
        m->colmap[m->ncolmap++] = (colmap_t){xstrndup0(name, nlen), r};
        p += len;
        if (*p == ',')
            p++;
    }
    return m;
}

void rowmap_destroy(rowmap_t **mp)
{
    rowmap_t *m = *mp;

    if (m == NULL)
        return;
    for (size_t i = 0; i < m->ncolmap; i++)
        free(m->colmap[i].name);
    free(m->colmap);
    for (size_t i = 0; i < ROWMAP_MAX_COLS; i++) {
        free(m->label[i]);
        free(m->metric[i]);
    }
    free(m);
    *mp = NULL;
}

bool rowmap_started(const rowmap_t *m)
{
    return m->started;
}

size_t rowmap_row_max(const rowmap_t *m)
{
    return m->nwide > 0 ? m->nwide : 1;
}

/* ---- the header -------------------------------------------------------- */

static rowmap_role_t header_role(const rowmap_t *m, const char *s, size_t len)
{
    trim(&s, &len);
    for (size_t i = 0; i < m->ncolmap; i++)
        if (strlen(m->colmap[i].name) == len && strncasecmp(m->colmap[i].name, s, len) == 0)
            return m->colmap[i].role;
    for (const rowmap_alias_t *a = rowmap_aliases; a->name != NULL; a++)
        if (strlen(a->name) == len && strncasecmp(a->name, s, len) == 0)
            return a->role;
    return ROWMAP_NONE;
}

static const char *wide_metric(const rowmap_t *m, const char *s, size_t len)
{
    for (size_t i = 0; i < m->nmetrics; i++)
        if (strlen(m->metrics[i].column) == len && memcmp(m->metrics[i].column, s, len) == 0)
            return m->metrics[i].metric;
    return NULL;
}

static int set_label(rowmap_t *m, size_t i, const char *role, const char *s, size_t len)
{
    char shown[SHOW_MAX * 4 + 8], buf[256];

    snprintf(buf, sizeof buf, "%s (column %zu '%s')", role, i + 1,
             show(s, len, shown, sizeof shown));
    m->label[i] = xstrndup0(buf, strlen(buf));
    return 0;
}

static const char *role_word(rowmap_role_t r)
{
    switch (r) {
    case ROWMAP_FIRM: return "firm";
    case ROWMAP_METRIC: return "metric";
    case ROWMAP_VALUE: return "value";
    case ROWMAP_PERIOD: return "period";
    case ROWMAP_TIMESTAMP: return "timestamp";
    default: return "column";
    }
}

/* Reads a header row; returns 0, 1 if the row is not a header, or -1. */
static int header(rowmap_t *m, const rowmap_cell_t *c, size_t n, char *err, size_t errlen)
{
    char shown[SHOW_MAX * 4 + 8];
    size_t known = 0;
    int *slot;

    for (size_t i = 0; i < n; i++)
        if (c[i].kind == ROWMAP_TEXT && header_role(m, c[i].s, c[i].len) != ROWMAP_NONE)
            known++;
    if (known == 0)
        return 1;
    if (n > ROWMAP_MAX_COLS)
        return failf(err, errlen, "header: more than %d columns", ROWMAP_MAX_COLS);
    m->header = true;
    m->ncols = n;
    for (size_t i = 0; i < n; i++) {
        rowmap_role_t r = header_role(m, c[i].s, c[i].len);
        m->role[i] = r;
        switch (r) {
        case ROWMAP_FIRM: slot = &m->ifirm; break;
        case ROWMAP_METRIC: slot = &m->imetric; break;
        case ROWMAP_VALUE: slot = &m->ivalue; break;
        case ROWMAP_PERIOD: slot = &m->iperiod; break;
        case ROWMAP_TIMESTAMP: slot = &m->its; break;
        default: slot = NULL; break;
        }
        if (slot != NULL) {
            if (*slot >= 0)
                return failf(err, errlen, "header: columns %d and %zu are both the %s", *slot + 1,
                             i + 1, role_word(r));
            *slot = (int)i;
        }
        set_label(m, i, role_word(r), c[i].s, c[i].len);
    }
    if (m->ifirm < 0)
        return failf(err, errlen,
                     "header: no firm column (firm, enterprise, 企业, 企业代码, "
                     "统一社会信用代码, or map one with --columns NAME=firm)");
    bool wide = m->imetric < 0 && m->ivalue < 0;
    if (!wide && (m->imetric < 0 || m->ivalue < 0))
        return failf(err, errlen,
                     "header: a %s column but no %s column (metric: metric, 指标; value: value, "
                     "数值, 金额; or --columns)",
                     m->imetric < 0 ? "value" : "metric", m->imetric < 0 ? "metric" : "value");
    if (wide && m->iperiod < 0 && m->its < 0)
        return failf(err, errlen,
                     "header: neither metric and value columns nor a period column (期间, 月份, "
                     "年月, period) for a wide table");
    for (size_t i = 0; i < n; i++) {
        const char *s = c[i].s;
        size_t len = c[i].len;
        if (m->role[i] != ROWMAP_NONE)
            continue;
        trim(&s, &len);
        if (len == 0) {
            m->role[i] = ROWMAP_IGNORE; /* an unnamed column: a spreadsheet's margin */
            continue;
        }
        if (!wide)
            return failf(err, errlen,
                         "header: column %zu '%s' is not a known name (firm, metric, value, "
                         "period, timestamp or an alias); name its role with --columns "
                         "'NAME=ROLE' or ignore it with --columns 'NAME=-'",
                         i + 1, show(s, len, shown, sizeof shown));
        const char *metric = wide_metric(m, s, len);
        size_t mlen = metric != NULL ? strlen(metric) : len;
        const char *why = id_problem(metric != NULL ? metric : s, mlen);
        if (why != NULL)
            return failf(err, errlen, "header: column %zu '%s' as a metric name %s", i + 1,
                         show(s, len, shown, sizeof shown), why);
        m->role[i] = ROWMAP_WIDE;
        m->metric[i] = xstrndup0(metric != NULL ? metric : s, mlen);
        free(m->label[i]);
        set_label(m, i, "value", s, len);
        m->nwide++;
    }
    return 0;
}

/* ---- rows -------------------------------------------------------------- */

static int cell_value(const rowmap_cell_t *c, const char *label, double *ret, char *err,
                      size_t errlen)
{
    char shown[SHOW_MAX * 4 + 8];
    const char *why;

    if (c->kind != ROWMAP_TEXT) {
        if ((why = value_check(c->num)) != NULL)
            return failf(err, errlen, "%s: %.17g %s", label, c->num, why);
        *ret = c->num;
        return 0;
    }
    const char *s = c->s;
    size_t len = c->len;
    trim(&s, &len);
    if ((why = value_parse(s, len, ret)) != NULL)
        return failf(err, errlen, "%s: '%s' %s", label, show(s, len, shown, sizeof shown), why);
    return 0;
}

/* A period column: a date cell is its month; text a period, else a timestamp. */
static int cell_when(const rowmap_cell_t *c, const char *label, bool period_ok, bool ts_ok,
                     proto_sample_t *smp, char *err, size_t errlen)
{
    char shown[SHOW_MAX * 4 + 8], why[128];
    const char *s = c->s;
    size_t len = c->len;

    if (c->kind == ROWMAP_DATE) {
        int y, mo, d, h, mi, sec;
        if (period_ok && rowmap_serial_civil(c->num, &y, &mo, &d, &h, &mi, &sec) == 0) {
            char norm[16];
            int n = snprintf(norm, sizeof norm, "%04d-%02d", y, mo);
            if (proto_period_parse(norm, (size_t)n, &smp->period) == PROTO_OK)
                return 0;
        }
        if (!period_ok && serial_ms(c->num, &smp->ts_ms) == 0)
            return 0;
        return failf(err, errlen, "%s: date %g is out of range (1970..2199)", label, c->num);
    }
    trim(&s, &len);
    if (period_ok && rowmap_period_parse(s, len, &smp->period) == 0)
        return 0;
    smp->period = (proto_period_t){0};
    if (!ts_ok)
        return failf(
            err, errlen,
            "%s: '%s' is not a period (YYYY, YYYY-Qn, YYYY-MM, 2024年11月, 2024/11, 202411)", label,
            show(s, len, shown, sizeof shown));
    /* Four digits are a year, never 1.969 s after the epoch. */
    if (!(period_ok && len == 4 && all_digits(s, len)) &&
        input_timestamp_parse(s, len, &smp->ts_ms, why, sizeof why) == INPUT_OK)
        return 0;
    if (period_ok && memchr(s, ':', len) == NULL && (len <= 7 || !utf8_ascii(s, len)))
        return failf(err, errlen,
                     "%s: '%s' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp", label,
                     show(s, len, shown, sizeof shown));
    if (!period_ok)
        return failf(err, errlen, "%s: '%s' %s", label, show(s, len, shown, sizeof shown), why);
    /* a headerless table's fourth column: say what it resembles */
    return failf(err, errlen, "%s: '%s' %s", strcmp(label, "period") == 0 ? "timestamp" : label,
                 show(s, len, shown, sizeof shown), why);
}

/* The firm (or metric) of a row, checked. */
static int cell_id(const rowmap_cell_t *c, const char *label, proto_str_t *ret, char *err,
                   size_t errlen)
{
    char shown[SHOW_MAX * 4 + 8];
    const char *why;

    if ((why = id_problem(c->s, c->len)) != NULL)
        return failf(err, errlen, "%s: '%s' %s", label, show(c->s, c->len, shown, sizeof shown),
                     why);
    *ret = (proto_str_t){c->s, (uint32_t)c->len};
    return 0;
}

static bool blank(const rowmap_cell_t *c)
{
    for (size_t i = 0; i < c->len; i++)
        if (c->s[i] != ' ' && c->s[i] != '\t')
            return false;
    return true;
}

static int legacy_row(const rowmap_cell_t *c, size_t n, int64_t now_ms, proto_sample_t *out,
                      char *err, size_t errlen)
{
    proto_sample_t smp = {.ts_ms = now_ms};

    if (n != 4)
        return failf(err, errlen, "expected 4 fields (enterprise,metric,value,period), got %zu", n);
    if (cell_id(&c[0], legacy_names[0], &smp.firm, err, errlen) != 0 ||
        cell_id(&c[1], legacy_names[1], &smp.metric, err, errlen) != 0 ||
        cell_value(&c[2], legacy_names[2], &smp.value, err, errlen) != 0)
        return -1;
    if (c[3].len > 0 && cell_when(&c[3], legacy_names[3], true, true, &smp, err, errlen) != 0)
        return -1;
    *out = smp;
    return 0;
}

int rowmap_row(rowmap_t *m, const rowmap_cell_t *cells, size_t n, int64_t now_ms,
               proto_sample_t *out, size_t *ret_n, char *err, size_t errlen)
{
    static const rowmap_cell_t empty = {"", 0, ROWMAP_TEXT, 0};
    proto_sample_t smp = {.ts_ms = now_ms};
    size_t nout = 0;

    *ret_n = 0;
    if (!m->started) {
        int rc = header(m, cells, n, err, errlen);
        if (rc < 0)
            return -1;
        m->started = true;
        if (rc == 0)
            return 0;
        if (n != 4)
            return failf(err, errlen,
                         "header: none of the %zu column names is known (firm, metric, value, "
                         "period, timestamp, 企业, 指标, 数值, 期间 ...: see --columns), and "
                         "without a header a row has 4 fields (enterprise,metric,value,period)",
                         n);
    }
    if (!m->header) {
        if (legacy_row(cells, n, now_ms, out, err, errlen) != 0)
            return -1;
        *ret_n = 1;
        return 0;
    }
    for (size_t i = m->ncols; i < n; i++)
        if (!blank(&cells[i]))
            return failf(err, errlen, "expected %zu fields as in the header, got %zu", m->ncols, n);
#define CELL(i) ((size_t)(i) < n ? &cells[i] : &empty)
    if (cell_id(CELL(m->ifirm), m->label[m->ifirm], &smp.firm, err, errlen) != 0)
        return -1;
    if (m->iperiod >= 0 && !blank(CELL(m->iperiod)) &&
        cell_when(CELL(m->iperiod), m->label[m->iperiod], true, m->its < 0, &smp, err, errlen) != 0)
        return -1;
    if (m->its >= 0 && !blank(CELL(m->its)) &&
        cell_when(CELL(m->its), m->label[m->its], false, true, &smp, err, errlen) != 0)
        return -1;
    if (m->nwide == 0) {
        if (cell_id(CELL(m->imetric), m->label[m->imetric], &smp.metric, err, errlen) != 0 ||
            cell_value(CELL(m->ivalue), m->label[m->ivalue], &smp.value, err, errlen) != 0)
            return -1;
        out[0] = smp;
        *ret_n = 1;
        return 0;
    }
    for (size_t i = 0; i < m->ncols; i++) {
        if (m->role[i] != ROWMAP_WIDE || blank(CELL(i)))
            continue; /* an empty cell: no figure for that metric */
        smp.metric = (proto_str_t){m->metric[i], (uint32_t)strlen(m->metric[i])};
        if (cell_value(CELL(i), m->label[i], &smp.value, err, errlen) != 0)
            return -1;
        out[nout++] = smp;
    }
#undef CELL
    *ret_n = nout;
    return 0;
}
