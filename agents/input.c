/*
 * input.c -- the agent's CSV sample reader (see input.h for the format).
 *
 * libcsv is a push parser: we hand it bytes and it calls field_cb() per
 * field and record_cb() per record. We feed it one *segment* at a time: the
 * bytes up to and including the next CR or LF (or a full segment buffer).
 * Since a record can only end at a CR, an LF or the end of input, one segment
 * completes at most one record, so a batch never overflows the caller's
 * array, and we know the line number exactly whenever a callback runs. The
 * segment is read with getc(), which returns as soon as a pipe has delivered
 * a line: that is what makes stdin incremental.
 *
 * Memory is bounded: libcsv's field buffer grows through capped_realloc(),
 * which refuses to pass INPUT_MAX_FIELD, and the reader keeps only the
 * current record's four fields plus one id slot per sample of a batch.
 */
#include "agents/input.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include <csv.h>

#include "agents/crc32.h"
#include "agents/utf8.h"
#include "proto/clock.h"

#define NFIELDS 4
#define SEGMENT_SIZE 4096
#define SHOW_MAX 40 /* bytes of a bad field quoted in an error */

#define STR_(x) #x
#define STR(x) STR_(x)

/* Where one sample's strings live until the next batch. */
typedef struct {
    char firm[PROTO_MAX_ID_LEN];
    char metric[PROTO_MAX_ID_LEN];
} id_slot_t;

struct input_reader {
    FILE *fp;
    bool owns_fp;
    char *name;
    struct csv_parser csv;

    unsigned long line;     /* physical line being read, 1-based */
    unsigned long rec_line; /* line the current record started on, 0 between records */
    bool started;           /* the BOM check has run */
    bool seen_record;       /* a non-blank record went by (header check done) */
    bool eof;

    /* The record being assembled by field_cb(). */
    unsigned nfields;
    size_t flen[NFIELDS];
    char field[NFIELDS][INPUT_MAX_FIELD + 1];

    /* The batch being filled by record_cb(). */
    proto_sample_t *out;
    unsigned long *out_lines; /* the line each sample's record starts on, or NULL */
    size_t nout, max;
    id_slot_t *slots;
    size_t nslots;

    /*
     * Bytes consumed and their CRC-32, and the position after the last
     * record that became a sample: where a restarted agent resumes.
     */
    uint64_t offset;
    uint32_t crc;
    input_pos_t pos;

    int err; /* sticky: INPUT_OK until the first error */
    char errbuf[INPUT_ERRLEN];

    char segment[SEGMENT_SIZE];
};

static const char *const field_names[NFIELDS] = {"enterprise", "metric", "value", "period"};

static void *xmalloc0(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL)
        abort();
    return p;
}

/*
 * libcsv grows its field buffer with this. Refusing beyond the cap makes
 * csv_parse() stop with CSV_ENOMEM, which we report as "field too long";
 * libcsv halves its request first, so the buffer ends exactly at the cap.
 */
static void *capped_realloc(void *p, size_t size)
{
    if (size > INPUT_MAX_FIELD + 1)
        return NULL;
    return realloc(p, size);
}

/* Records the first error of the reader as "name:line: ...". */
static void fail(input_reader_t *r, int code, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(input_reader_t *r, int code, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (r->err != INPUT_OK)
        return;
    r->err = code;
    if (line > 0)
        n = snprintf(r->errbuf, sizeof(r->errbuf), "%s:%lu: ", r->name, line);
    else
        n = snprintf(r->errbuf, sizeof(r->errbuf), "%s: ", r->name);
    if (n < 0 || (size_t)n >= sizeof(r->errbuf))
        return;
    va_start(ap, fmt);
    vsnprintf(r->errbuf + n, sizeof(r->errbuf) - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Writes a field for an error message: at most SHOW_MAX bytes, control
 * bytes as \xNN, "..." when cut.
 */
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

/* ---- field checks ------------------------------------------------------ */

/* Checks an enterprise or metric id; returns NULL or the reason. */
static const char *id_problem(const char *s, size_t len)
{
    if (len == 0)
        return "is empty";
    if (len > PROTO_MAX_ID_LEN)
        return "is longer than " STR(PROTO_MAX_ID_LEN) " bytes";
    if (!utf8_valid(s, len))
        return "is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
    }
    return NULL;
}

/* Parses a decimal number that must fill s; returns NULL or the reason. */
static const char *value_parse(const char *s, size_t len, double *ret)
{
    char *end;
    double v;

    if (len == 0)
        return "is empty";
    /* strtod also takes hex, "inf", "nan" and locale forms: screen those out. */
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && strchr("+-.eE", s[i]) == NULL)
            return "is not a number";
    errno = 0;
    v = strtod(s, &end);
    if (end != s + len)
        return "is not a number";
    if (!isfinite(v))
        return "is out of range";
    if (fabs(v) > PROTO_MAX_ABS_VALUE)
        return "exceeds the limit of " STR(PROTO_MAX_ABS_VALUE) " in absolute value";
    *ret = v;
    return NULL;
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

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), valid for any year here.
 */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* A cursor over the timestamp text. */
typedef struct {
    const char *p, *end;
} scan_t;

/* Reads exactly n digits; returns false if they are not there. */
static bool scan_digits(scan_t *sc, unsigned n, unsigned *ret)
{
    unsigned v = 0;

    if ((size_t)(sc->end - sc->p) < n)
        return false;
    for (unsigned i = 0; i < n; i++) {
        if (!isdigit((unsigned char)sc->p[i]))
            return false;
        v = v * 10 + (unsigned)(sc->p[i] - '0');
    }
    sc->p += n;
    *ret = v;
    return true;
}

static bool scan_char(scan_t *sc, const char *set)
{
    if (sc->p < sc->end && strchr(set, *sc->p) != NULL && *sc->p != '\0') {
        sc->p++;
        return true;
    }
    return false;
}

static int time_error(char *err, size_t errlen, const char *reason)
{
    snprintf(err, errlen, "%s", reason);
    return INPUT_ESYNTAX;
}

int input_timestamp_parse(const char *s, size_t len, int64_t *ret_ms, char *err, size_t errlen)
{
    static const char shape[] = "is not a timestamp (YYYY-MM-DDThh:mm:ss followed by Z or +hh:mm)";
    scan_t sc = {s, s + len};
    unsigned y, mo, d, h, mi, sec = 0, ms = 0, oh = 0, om = 0;
    int sign = 0;
    int64_t t;

    if (all_digits(s, len)) {
        if (len > 15)
            return time_error(err, errlen, "is out of range (1970..2199)");
        t = 0;
        for (size_t i = 0; i < len; i++)
            t = t * 10 + (s[i] - '0');
        if (t >= PROTO_MAX_TS_MS)
            return time_error(err, errlen, "is out of range (1970..2199)");
        *ret_ms = t;
        return INPUT_OK;
    }

    if (!scan_digits(&sc, 4, &y) || !scan_char(&sc, "-") || !scan_digits(&sc, 2, &mo) ||
        !scan_char(&sc, "-") || !scan_digits(&sc, 2, &d))
        return time_error(err, errlen, shape);
    if (sc.p == sc.end)
        return time_error(err, errlen, "is a date without a time and UTC offset");
    if (!scan_char(&sc, "Tt ") || !scan_digits(&sc, 2, &h) || !scan_char(&sc, ":") ||
        !scan_digits(&sc, 2, &mi))
        return time_error(err, errlen, shape);
    if (scan_char(&sc, ":")) {
        if (!scan_digits(&sc, 2, &sec))
            return time_error(err, errlen, shape);
        if (scan_char(&sc, ".,")) {
            unsigned digits = 0;
            while (sc.p < sc.end && isdigit((unsigned char)*sc.p)) {
                if (digits < 3)
                    ms = ms * 10 + (unsigned)(*sc.p - '0');
                digits++;
                sc.p++;
            }
            if (digits == 0)
                return time_error(err, errlen, shape);
            for (; digits < 3; digits++)
                ms *= 10;
        }
    }
    if (scan_char(&sc, "Zz")) {
        /* UTC */
    } else if (sc.p < sc.end && (*sc.p == '+' || *sc.p == '-')) {
        sign = *sc.p == '-' ? -1 : 1;
        sc.p++;
        if (!scan_digits(&sc, 2, &oh))
            return time_error(err, errlen, shape);
        if (sc.p < sc.end) {
            scan_char(&sc, ":");
            if (!scan_digits(&sc, 2, &om))
                return time_error(err, errlen, shape);
        }
        /* no zone is further from UTC than -12:00 or +14:00: +23:00 is a typo */
        if (om > 59 || oh * 60 + om > (sign < 0 ? 12 * 60 : 14 * 60))
            return time_error(err, errlen,
                              "has a UTC offset out of range (time zones run from -12:00 to "
                              "+14:00)");
    } else if (sc.p == sc.end) {
        return time_error(err, errlen, "has no UTC offset (add Z or +hh:mm)");
    }
    if (sc.p != sc.end)
        return time_error(err, errlen, shape);

    if (mo < 1 || mo > 12)
        return time_error(err, errlen, "has a month out of range");
    if (d < 1 || d > days_in_month(y, mo))
        return time_error(err, errlen, "has a day out of range");
    if (h > 23 || mi > 59 || sec > 59)
        return time_error(err, errlen, "has a time of day out of range");

    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (int64_t)(oh * 3600 + om * 60);
    t = t * 1000 + ms;
    if (t < 0 || t >= PROTO_MAX_TS_MS)
        return time_error(err, errlen, "is out of range (1970..2199)");
    *ret_ms = t;
    return INPUT_OK;
}

/*
 * Reads column 4 into the sample. A text that fails both ways is reported
 * as a period or a timestamp according to what it resembles.
 */
static void when_parse(input_reader_t *r, unsigned long line, const char *s, size_t len,
                       proto_sample_t *smp)
{
    char shown[SHOW_MAX * 4 + 8], why[128];

    smp->period = (proto_period_t){0};
    smp->ts_ms = clock_wall_ms();
    if (len == 0)
        return;
    if (proto_period_parse(s, len, &smp->period) == PROTO_OK)
        return;
    smp->period = (proto_period_t){0};
    /* Four digits are a year, never 1.969 s after the epoch. */
    if (!(len == 4 && all_digits(s, len)) &&
        input_timestamp_parse(s, len, &smp->ts_ms, why, sizeof(why)) == INPUT_OK)
        return;
    if (len <= 7 && memchr(s, ':', len) == NULL)
        fail(r, INPUT_ESYNTAX, line,
             "period: '%s' is not a period (YYYY, YYYY-Qn, YYYY-MM) or a timestamp",
             show(s, len, shown, sizeof(shown)));
    else
        fail(r, INPUT_ESYNTAX, line, "timestamp: '%s' %s", show(s, len, shown, sizeof(shown)), why);
}

/* ---- libcsv callbacks -------------------------------------------------- */

static void field_cb(void *s, size_t len, void *data)
{
    input_reader_t *r = data;

    if (r->nfields < NFIELDS) {
        size_t keep = len < INPUT_MAX_FIELD ? len : INPUT_MAX_FIELD;
        if (keep > 0)
            memcpy(r->field[r->nfields], s, keep);
        r->field[r->nfields][keep] = '\0';
        r->flen[r->nfields] = len;
    }
    r->nfields++;
}

/* Turns the assembled record into the next sample of the batch. */
static void record(input_reader_t *r, unsigned long line)
{
    char shown[SHOW_MAX * 4 + 8];
    const char *why;
    proto_sample_t smp;
    id_slot_t *slot;

    if (r->nfields == 0 || (r->nfields == 1 && r->flen[0] == 0))
        return; /* a line of spaces */
    if (!r->seen_record) {
        r->seen_record = true;
        if (strcasecmp(r->field[0], "enterprise") == 0)
            return;
    }
    if (r->nfields != NFIELDS) {
        fail(r, INPUT_ESYNTAX, line, "expected 4 fields (enterprise,metric,value,period), got %u",
             r->nfields);
        return;
    }
    for (unsigned i = 0; i < 2; i++) {
        if ((why = id_problem(r->field[i], r->flen[i])) != NULL) {
            fail(r, INPUT_ESYNTAX, line, "%s: '%s' %s", field_names[i],
                 show(r->field[i], r->flen[i], shown, sizeof(shown)), why);
            return;
        }
    }
    if ((why = value_parse(r->field[2], r->flen[2], &smp.value)) != NULL) {
        fail(r, INPUT_ESYNTAX, line, "value: '%s' %s",
             show(r->field[2], r->flen[2], shown, sizeof(shown)), why);
        return;
    }
    when_parse(r, line, r->field[3], r->flen[3], &smp);
    if (r->err != INPUT_OK)
        return;

    if (r->nout >= r->max)
        abort(); /* one record per segment: cannot happen */
    slot = &r->slots[r->nout];
    memcpy(slot->firm, r->field[0], r->flen[0]);
    memcpy(slot->metric, r->field[1], r->flen[1]);
    smp.firm = (proto_str_t){slot->firm, (uint32_t)r->flen[0]};
    smp.metric = (proto_str_t){slot->metric, (uint32_t)r->flen[1]};
    if (r->out_lines)
        r->out_lines[r->nout] = line;
    r->out[r->nout++] = smp;
}

static void record_cb(int term, void *data)
{
    input_reader_t *r = data;
    unsigned long line = r->rec_line ? r->rec_line : r->line;

    (void)term;
    if (r->err == INPUT_OK)
        record(r, line);
    r->nfields = 0;
    r->rec_line = 0;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads the next segment; returns its length, 0 at the end of input, -1 on error. */
static ssize_t read_segment(input_reader_t *r)
{
    size_t n = 0;
    int c;

    while (n < SEGMENT_SIZE) {
        c = getc_unlocked(r->fp);
        if (c == EOF)
            break;
        r->segment[n++] = (char)c;
        if (c == '\n' || c == '\r')
            break;
    }
    if (n == 0 && ferror(r->fp))
        return -1;
    r->offset += n;
    r->crc = crc32_update(r->crc, r->segment, n);
    return (ssize_t)n;
}

/* Whether a segment can start a record: libcsv skips lines of only blanks. */
static bool has_content(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\r' && s[i] != '\n' && s[i] != ' ' && s[i] != '\t')
            return true;
    return false;
}

static void feed(input_reader_t *r, const char *s, size_t len)
{
    size_t used;

    if (r->rec_line == 0 && has_content(s, len))
        r->rec_line = r->line;
    used = csv_parse(&r->csv, s, len, field_cb, record_cb, r);
    if (used != len) {
        if (csv_error(&r->csv) == CSV_EPARSE)
            fail(r, INPUT_ESYNTAX, r->line,
                 "malformed CSV: a quote inside an unquoted field or "
                 "text after a closing quote");
        else
            fail(r, INPUT_ESYNTAX, r->line, "a field is longer than %d bytes", INPUT_MAX_FIELD);
    }
    if (len > 0 && s[len - 1] == '\n')
        r->line++;
}

static void finish(input_reader_t *r)
{
    r->eof = true;
    if (r->err != INPUT_OK)
        return;
    if (csv_fini(&r->csv, field_cb, record_cb, r) != 0)
        fail(r, INPUT_ESYNTAX, r->rec_line ? r->rec_line : r->line,
             "malformed CSV: quoted field not closed at the end of input");
}

int input_read_batch(input_reader_t *r, proto_sample_t *samples, size_t max, size_t *ret_n,
                     unsigned long *ret_lines, char *err, size_t errlen)
{
    *ret_n = 0;
    if (r->err != INPUT_OK) {
        snprintf(err, errlen, "%s", r->errbuf);
        return r->err;
    }
    if (max > r->nslots) {
        free(r->slots);
        r->slots = xmalloc0(max * sizeof(*r->slots));
        r->nslots = max;
    }
    r->out = samples;
    r->out_lines = ret_lines;
    r->nout = 0;
    r->max = max;

    while (r->nout < max && r->err == INPUT_OK && !r->eof) {
        size_t before = r->nout;
        ssize_t n = read_segment(r);

        if (n < 0) {
            fail(r, INPUT_EIO, r->line, "read error: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            finish(r);
        } else if (!r->started) {
            r->started = true;
            if (n >= 3 && memcmp(r->segment, "\xEF\xBB\xBF", 3) == 0)
                feed(r, r->segment + 3, (size_t)n - 3);
            else
                feed(r, r->segment, (size_t)n);
        } else {
            feed(r, r->segment, (size_t)n);
        }
        /*
         * A record ends with its segment (or at the end of input), so a new
         * sample means we stand on a record boundary.
         */
        if (r->nout > before && r->err == INPUT_OK)
            r->pos = (input_pos_t){.offset = r->offset, .line = r->line, .crc = r->crc};
    }
    *ret_n = r->nout;
    r->out = NULL;
    r->out_lines = NULL;
    if (r->err != INPUT_OK) {
        snprintf(err, errlen, "%s", r->errbuf);
        return r->err;
    }
    return INPUT_OK;
}

/* ---- lifecycle --------------------------------------------------------- */

input_reader_t *input_reader_new(FILE *fp, const char *name)
{
    input_reader_t *r = xmalloc0(sizeof(*r));

    r->fp = fp;
    r->name = strdup(name != NULL ? name : "stdin");
    if (r->name == NULL || csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI) != 0)
        abort();
    csv_set_realloc_func(&r->csv, capped_realloc);
    r->line = 1;
    r->pos.line = 1;
    return r;
}

bool input_reader_is_stream(const input_reader_t *r)
{
    struct stat st;
    return fstat(fileno(r->fp), &st) != 0 || !S_ISREG(st.st_mode);
}

input_reader_t *input_reader_open(const char *path, char *err, size_t errlen)
{
    input_reader_t *r;
    FILE *fp;

    if (path == NULL || strcmp(path, "-") == 0)
        return input_reader_new(stdin, "stdin");
    fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    r = input_reader_new(fp, path);
    r->owns_fp = true;
    return r;
}

void input_reader_pos(const input_reader_t *r, input_pos_t *ret)
{
    *ret = r->pos;
}

int input_reader_skip(input_reader_t *r, const input_pos_t *pos, char *err, size_t errlen)
{
    uint64_t left = pos->offset;

    if (r->offset != 0 || r->started) {
        snprintf(err, errlen, "%s: skip after reading started", r->name);
        return INPUT_EIO;
    }
    while (left > 0) {
        size_t want = left < SEGMENT_SIZE ? (size_t)left : SEGMENT_SIZE;
        size_t got = fread(r->segment, 1, want, r->fp);

        r->offset += got;
        r->crc = crc32_update(r->crc, r->segment, got);
        left -= got;
        if (got < want) {
            if (ferror(r->fp)) {
                snprintf(err, errlen, "%s: read error: %s", r->name, strerror(errno));
                return INPUT_EIO;
            }
            snprintf(err, errlen,
                     "%s: shorter (%" PRIu64 " bytes) than the %" PRIu64 " bytes already read",
                     r->name, r->offset, pos->offset);
            return INPUT_ECHANGED;
        }
    }
    if (r->crc != pos->crc) {
        snprintf(err, errlen, "%s: its first %" PRIu64 " bytes are not the ones already read",
                 r->name, pos->offset);
        return INPUT_ECHANGED;
    }
    if (pos->offset > 0) {
        /* The BOM and the header row, if any, are behind us. */
        r->started = true;
        r->seen_record = true;
    }
    r->line = pos->line > 0 ? (unsigned long)pos->line : 1;
    r->pos = *pos;
    return INPUT_OK;
}

void input_reader_destroy(input_reader_t **rp)
{
    input_reader_t *r = *rp;

    if (r == NULL)
        return;
    csv_free(&r->csv);
    if (r->owns_fp)
        fclose(r->fp);
    free(r->slots);
    free(r->name);
    free(r);
    *rp = NULL;
}
