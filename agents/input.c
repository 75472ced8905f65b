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
#include <iconv.h>
#include <unistd.h>

#include "agents/crc32.h"
#include "agents/rowmap.h"
#include "agents/sheet.h"
#include "agents/utf8.h"
#include "proto/clock.h"

#define SEGMENT_SIZE 4096

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
    char *path; /* for a spreadsheet, opened at the first read */
    struct csv_parser csv;
    rowmap_t *map;
    input_opts_t opts;

    unsigned long line;     /* physical line being read, 1-based */
    unsigned long rec_line; /* line the current record started on, 0 between records */
    bool started;           /* the BOM check has run */
    bool eof;
    bool discard; /* input_reader_skip(): records map (a header) but give no samples */

    /* Encoding: decided by --encoding, a BOM, or the first non-ASCII bytes. */
    input_encoding_t enc;
    iconv_t cd;    /* GB18030 -> UTF-8, or (iconv_t)-1 */
    char carry[8]; /* a character cut at the end of a segment */
    size_t ncarry;
    char conv[SEGMENT_SIZE * 4 + 64]; /* a segment in UTF-8 */

    /* The record being assembled by field_cb(): cells in rowbuf. */
    unsigned nfields;
    size_t cell_off[ROWMAP_MAX_COLS], cell_len[ROWMAP_MAX_COLS];
    char *rowbuf;
    size_t rowlen, rowcap;

    /* Samples of the last row that did not fit the batch yet (a wide row). */
    proto_sample_t pending[ROWMAP_MAX_COLS];
    id_slot_t pending_ids[ROWMAP_MAX_COLS];
    size_t npending, pending_next;
    unsigned long pending_line;

    /* A spreadsheet's rows (NULL for CSV). */
    sheet_t *sheet;
    uint64_t file_size;

    /* The batch being filled. */
    proto_sample_t *out;
    unsigned long *out_lines; /* the line each sample's record starts on, or NULL */
    size_t nout, max;
    id_slot_t *slots;
    unsigned long *lines; /* the source line (sheet row) of each sample */
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
        n = snprintf(r->errbuf, sizeof r->errbuf, "%s:%lu: ", r->name, line);
    else
        n = snprintf(r->errbuf, sizeof r->errbuf, "%s: ", r->name);
    if (n < 0 || (size_t)n >= sizeof r->errbuf)
        return;
    va_start(ap, fmt);
    vsnprintf(r->errbuf + n, sizeof r->errbuf - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- timestamps ------------------------------------------------------ */

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

/* ---- libcsv callbacks -------------------------------------------------- */

static void field_cb(void *s, size_t len, void *data)
{
    input_reader_t *r = data;

    if (r->nfields < ROWMAP_MAX_COLS) {
        size_t keep = len < INPUT_MAX_FIELD ? len : INPUT_MAX_FIELD;
        if (r->rowlen + keep + 1 > r->rowcap) {
            r->rowcap = (r->rowlen + keep + 1) * 2;
            r->rowbuf = realloc(r->rowbuf, r->rowcap);
            if (r->rowbuf == NULL)
                abort();
        }
        if (keep > 0)
            memcpy(r->rowbuf + r->rowlen, s, keep);
        r->cell_off[r->nfields] = r->rowlen;
        r->cell_len[r->nfields] = keep;
        r->rowlen += keep;
        r->rowbuf[r->rowlen++] = '\0';
    }
    r->nfields++;
}

/*
 * Maps one row (CSV record or sheet row) into the pending samples, copying
 * their ids into the reader, since the cells do not outlive the row.
 */
static void map_row(input_reader_t *r, unsigned long line, const rowmap_cell_t *cells, size_t n)
{
    char why[ROWMAP_ERRLEN];
    size_t k;

    if (rowmap_row(r->map, cells, n, clock_wall_ms(), r->pending, &k, why, sizeof why) != 0) {
        if (!r->discard)
            fail(r, INPUT_ESYNTAX, line, "%s", why);
        return;
    }
    if (r->discard)
        return;
    for (size_t i = 0; i < k; i++) {
        id_slot_t *id = &r->pending_ids[i];
        proto_sample_t *smp = &r->pending[i];
        memcpy(id->firm, smp->firm.ptr, smp->firm.len);
        memcpy(id->metric, smp->metric.ptr, smp->metric.len);
        smp->firm.ptr = id->firm;
        smp->metric.ptr = id->metric;
    }
    r->npending = k;
    r->pending_next = 0;
    r->pending_line = line;
}

/* Turns the assembled record into pending samples. */
static void record(input_reader_t *r, unsigned long line)
{
    rowmap_cell_t cells[ROWMAP_MAX_COLS];

    if (r->nfields == 0 || (r->nfields == 1 && r->cell_len[0] == 0))
        return; /* a line of spaces */
    if (r->nfields > ROWMAP_MAX_COLS) {
        fail(r, INPUT_ESYNTAX, line, "more than %d fields", ROWMAP_MAX_COLS);
        return;
    }
    for (unsigned i = 0; i < r->nfields; i++)
        cells[i] = (rowmap_cell_t){r->rowbuf + r->cell_off[i], r->cell_len[i], ROWMAP_TEXT, 0};
    map_row(r, line, cells, r->nfields);
}

static void record_cb(int term, void *data)
{
    input_reader_t *r = data;
    unsigned long line = r->rec_line ? r->rec_line : r->line;

    (void)term;
    if (r->err == INPUT_OK)
        record(r, line);
    r->nfields = 0;
    r->rowlen = 0;
    r->rec_line = 0;
}

/* ---- encodings --------------------------------------------------------- */

const char *input_encoding_name(input_encoding_t e)
{
    switch (e) {
    case INPUT_ENC_UTF8: return "UTF-8";
    case INPUT_ENC_GB18030: return "GB18030";
    default: return "auto";
    }
}

int input_encoding_parse(const char *s, input_encoding_t *ret)
{
    if (strcasecmp(s, "auto") == 0)
        *ret = INPUT_ENC_AUTO;
    else if (strcasecmp(s, "utf-8") == 0 || strcasecmp(s, "utf8") == 0)
        *ret = INPUT_ENC_UTF8;
    else if (strcasecmp(s, "gb18030") == 0 || strcasecmp(s, "gbk") == 0 ||
             strcasecmp(s, "gb2312") == 0 || strcasecmp(s, "cp936") == 0)
        *ret = INPUT_ENC_GB18030; /* GB18030 is a superset of GBK and GB2312 */
    else
        return -1;
    return 0;
}

/*
 * Whether the whole of a regular file is UTF-8, read with pread() so the
 * stream's position is untouched. A sequence cut by a chunk's end is
 * carried into the next chunk.
 */
static bool file_is_utf8(int fd)
{
    char buf[65536 + 4];
    size_t carry = 0;
    off_t at = 0;

    for (;;) {
        ssize_t n = pread(fd, buf + carry, sizeof buf - 4 - carry, at);
        if (n < 0)
            return true; /* the read itself will fail and say why */
        if (n == 0)
            return carry == 0;
        at += n;
        size_t len = carry + (size_t)n, cut = len;
        /* back up over an incomplete last sequence (at most 3 bytes) */
        for (size_t k = 1; k <= 3 && k <= len; k++) {
            unsigned char c = (unsigned char)buf[len - k];
            if ((c & 0xC0) == 0x80)
                continue;
            if (c >= 0xC0)
                cut = len - k;
            break;
        }
        if (!utf8_valid(buf, cut))
            return false;
        carry = len - cut;
        memmove(buf, buf + cut, carry);
    }
}

static bool has_high_bytes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

static void use_gb18030(input_reader_t *r)
{
    r->enc = INPUT_ENC_GB18030;
    r->cd = iconv_open("UTF-8", "GB18030");
    if (r->cd == (iconv_t)-1)
        abort(); /* glibc always has it */
}

/*
 * Converts a segment to UTF-8 if the input is GB18030; returns the bytes to
 * parse. A byte GB18030 does not know is passed on as it is, so the field
 * check names the field ("is not valid UTF-8 (nor GB18030 ...)").
 */
static const char *decode(input_reader_t *r, const char *s, size_t len, size_t *ret_len)
{
    char in[SEGMENT_SIZE + sizeof r->carry];
    char *ip = in, *op = r->conv;
    size_t il, ol = sizeof r->conv;

    if (r->enc == INPUT_ENC_AUTO && has_high_bytes(s, len)) {
        /* a stream: its first line with non-ASCII bytes decides */
        if (utf8_valid(s, len))
            r->enc = INPUT_ENC_UTF8;
        else
            use_gb18030(r);
    }
    if (r->enc != INPUT_ENC_GB18030) {
        *ret_len = len;
        return s;
    }
    memcpy(in, r->carry, r->ncarry);
    memcpy(in + r->ncarry, s, len);
    il = r->ncarry + len;
    r->ncarry = 0;
    while (il > 0) {
        if (iconv(r->cd, &ip, &il, &op, &ol) != (size_t)-1)
            break;
        if (errno == EINVAL && il < sizeof r->carry) { /* cut at the end: wait for the rest */
            memcpy(r->carry, ip, il);
            r->ncarry = il;
            break;
        }
        if (ol == 0)
            break;     /* cannot happen: 4 bytes out per byte in at most */
        *op++ = *ip++; /* EILSEQ: keep the byte, the field check will name it */
        il--;
        ol--;
    }
    *ret_len = (size_t)(op - r->conv);
    return r->conv;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads the next segment (no further than limit bytes in all); returns its
 * length, 0 at the end of input, -1 on error. */
static ssize_t read_segment(input_reader_t *r, uint64_t limit)
{
    size_t n = 0;
    int c;

    while (n < SEGMENT_SIZE && r->offset + n < limit) {
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

static void feed(input_reader_t *r, const char *raw, size_t rawlen)
{
    size_t len;
    const char *s = decode(r, raw, rawlen, &len);

    if (r->rec_line == 0 && has_content(s, len))
        r->rec_line = r->line;
    size_t used = csv_parse(&r->csv, s, len, field_cb, record_cb, r);
    if (used != len) {
        if (csv_error(&r->csv) == CSV_EPARSE)
            fail(r, INPUT_ESYNTAX, r->line,
                 "malformed CSV: a quote inside an unquoted field or "
                 "text after a closing quote");
        else
            fail(r, INPUT_ESYNTAX, r->line, "a field is longer than %d bytes", INPUT_MAX_FIELD);
    }
    if (rawlen > 0 && raw[rawlen - 1] == '\n')
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

/* The first read: the encoding and the BOM, or a spreadsheet loaded. */
static void start(input_reader_t *r, const char *s, size_t n, size_t *ret_skip)
{
    struct stat st;

    r->started = true;
    *ret_skip = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        *ret_skip = 3;
        if (r->enc == INPUT_ENC_AUTO)
            r->enc = INPUT_ENC_UTF8;
    }
    if (r->enc == INPUT_ENC_AUTO && fstat(fileno(r->fp), &st) == 0 && S_ISREG(st.st_mode))
        r->enc = file_is_utf8(fileno(r->fp)) ? INPUT_ENC_UTF8 : INPUT_ENC_GB18030;
    if (r->enc == INPUT_ENC_GB18030 && r->cd == (iconv_t)-1)
        use_gb18030(r);
}

/* A spreadsheet is read whole at the first read; its position is the whole
 * file (size and CRC) and the row after the last one read. */
static int sheet_load(input_reader_t *r)
{
    char err[INPUT_ERRLEN];

    r->started = true;
    r->sheet = sheet_open(r->path, r->opts.sheet, err, sizeof err);
    if (r->sheet == NULL) {
        snprintf(r->errbuf, sizeof r->errbuf, "%s", err);
        return r->err = INPUT_EIO;
    }
    /* errors name the sheet: "book.xlsx[Sheet1]:12: ..." */
    char *name = NULL;
    if (asprintf(&name, "%s[%s]", r->name, sheet_name(r->sheet)) < 0)
        abort();
    free(r->name);
    r->name = name;
    /* the CRC of the whole file: its identity for a resumed run */
    if (fseek(r->fp, (long)r->offset, SEEK_SET) != 0)
        return fail(r, INPUT_EIO, 0, "seek: %s", strerror(errno)), r->err;
    while (read_segment(r, UINT64_MAX) > 0)
        ;
    r->file_size = r->offset;
    return INPUT_OK;
}

/* Moves pending samples into the batch; returns true if the row is done. */
static bool take_pending(input_reader_t *r)
{
    size_t left = r->npending - r->pending_next, room = r->max - r->nout;

    /* A row stays whole in one batch unless it alone is bigger than one. */
    if (left > room && r->nout > 0)
        return false;
    size_t k = left < room ? left : room;
    for (size_t i = 0; i < k; i++) {
        proto_sample_t *smp = &r->pending[r->pending_next + i];
        id_slot_t *slot = &r->slots[r->nout];
        memcpy(slot->firm, smp->firm.ptr, smp->firm.len);
        memcpy(slot->metric, smp->metric.ptr, smp->metric.len);
        r->out[r->nout] = *smp;
        r->out[r->nout].firm.ptr = slot->firm;
        r->out[r->nout].metric.ptr = slot->metric;
        r->lines[r->nout] = r->pending_line;
        if (r->out_lines)
            r->out_lines[r->nout] = r->pending_line;
        r->nout++;
    }
    r->pending_next += k;
    if (r->pending_next < r->npending)
        return false;
    r->npending = r->pending_next = 0;
    return true;
}

/* One step of a CSV input: a segment parsed, or the end. */
static void csv_step(input_reader_t *r, uint64_t limit)
{
    ssize_t n = read_segment(r, limit);
    size_t skip = 0;

    if (n < 0) {
        fail(r, INPUT_EIO, r->line, "read error: %s", strerror(errno));
    } else if (n == 0) {
        if (limit == UINT64_MAX)
            finish(r);
        else
            r->eof = true; /* the skip is done (or the input is short) */
    } else {
        if (!r->started)
            start(r, r->segment, (size_t)n, &skip);
        feed(r, r->segment + skip, (size_t)n - skip);
    }
}

static void sheet_step(input_reader_t *r)
{
    const rowmap_cell_t *cells;
    unsigned long row;
    size_t n;

    if (!sheet_next_row(r->sheet, &cells, &n, &row)) {
        r->eof = true;
        return;
    }
    r->line = row + 1;
    /* a resumed run reads the header again, but no row before pos.line */
    bool was = r->discard;
    if (row < r->pos.line && r->pos.line > 1 && rowmap_started(r->map))
        r->discard = true;
    map_row(r, row, cells, n);
    r->discard = was;
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
        free(r->lines);
        r->slots = xmalloc0(max * sizeof *r->slots);
        r->lines = xmalloc0(max * sizeof *r->lines);
        r->nslots = max;
    }
    r->out = samples;
    r->out_lines = ret_lines;
    r->nout = 0;
    r->max = max;
    if (r->path != NULL && r->sheet == NULL && !r->started && sheet_load(r) != INPUT_OK) {
        snprintf(err, errlen, "%s", r->errbuf);
        return r->err;
    }

    while (r->nout < max && r->err == INPUT_OK) {
        if (r->npending > 0) {
            if (!take_pending(r))
                break; /* the batch is full; the row goes first in the next */
            /* A row ends with its segment (or at the end of input), so a
             * finished row means we stand on a record boundary. */
            if (r->sheet != NULL)
                r->pos = (input_pos_t){
                    .offset = r->file_size, .line = r->pending_line + 1, .crc = r->crc};
            else
                r->pos = (input_pos_t){.offset = r->offset, .line = r->line, .crc = r->crc};
            continue;
        }
        if (r->eof)
            break;
        if (r->sheet != NULL)
            sheet_step(r);
        else
            csv_step(r, UINT64_MAX);
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

const unsigned long *input_reader_lines(const input_reader_t *r)
{
    return r->lines;
}

/* ---- lifecycle --------------------------------------------------------- */

input_reader_t *input_reader_new(FILE *fp, const char *name)
{
    input_reader_t *r = xmalloc0(sizeof *r);
    char err[ROWMAP_ERRLEN];

    r->fp = fp;
    r->name = strdup(name != NULL ? name : "stdin");
    if (r->name == NULL || csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI) != 0)
        abort();
    csv_set_realloc_func(&r->csv, capped_realloc);
    r->map = rowmap_new(NULL, err, sizeof err);
    r->cd = (iconv_t)-1;
    r->line = 1;
    r->pos.line = 1;
    return r;
}

int input_reader_configure(input_reader_t *r, const input_opts_t *opts, char *err, size_t errlen)
{
    char why[ROWMAP_ERRLEN];
    rowmap_t *m;

    if (r->started) {
        snprintf(err, errlen, "%s: configured after reading started", r->name);
        return INPUT_EIO;
    }
    if ((m = rowmap_new(&opts->map, why, sizeof why)) == NULL) {
        snprintf(err, errlen, "%s", why);
        return INPUT_ESYNTAX;
    }
    rowmap_destroy(&r->map);
    r->map = m;
    r->opts = *opts;
    r->enc = opts->encoding;
    return INPUT_OK;
}

bool input_reader_is_stream(const input_reader_t *r)
{
    struct stat st;
    return fstat(fileno(r->fp), &st) != 0 || !S_ISREG(st.st_mode);
}

input_reader_t *input_reader_open(const char *path, char *err, size_t errlen)
{
    return input_reader_open_named(path, path, err, errlen);
}

input_reader_t *input_reader_open_named(const char *path, const char *name, char *err,
                                        size_t errlen)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return input_reader_new(stdin, "stdin");
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        return NULL;
    }
    input_reader_t *r = input_reader_new(fp, name);
    r->owns_fp = true;
    if (sheet_is_spreadsheet(path)) {
        r->path = strdup(path);
        if (r->path == NULL)
            abort();
    }
    return r;
}

void input_reader_pos(const input_reader_t *r, input_pos_t *ret)
{
    *ret = r->pos;
}

/*
 * A CSV is read again up to pos->offset with its rows mapped but not kept,
 * so the header (which says what each column is) is known again; a
 * spreadsheet is checked whole and its rows before pos->line are passed over
 * when read.
 */
int input_reader_skip(input_reader_t *r, const input_pos_t *pos, char *err, size_t errlen)
{
    if (r->offset != 0 || r->started) {
        snprintf(err, errlen, "%s: skip after reading started", r->name);
        return INPUT_EIO;
    }
    if (r->path != NULL) {
        if (sheet_load(r) != INPUT_OK) {
            snprintf(err, errlen, "%s", r->errbuf);
            return r->err;
        }
        if (r->file_size != pos->offset || r->crc != pos->crc) {
            snprintf(err, errlen,
                     "%s: not the file already read (%" PRIu64 " bytes, was %" PRIu64 ")", r->name,
                     r->file_size, pos->offset);
            return INPUT_ECHANGED;
        }
        r->pos = *pos;
        return INPUT_OK;
    }
    r->discard = true;
    while (!r->eof && r->err == INPUT_OK && r->offset < pos->offset)
        csv_step(r, pos->offset);
    /*
     * A last record without a line end was ended by the end of the input in
     * the earlier run: end it here too (its samples discarded), so appended
     * text starts a record of its own. csv_fini() leaves libcsv ready for more.
     */
    if (r->err == INPUT_OK)
        csv_fini(&r->csv, field_cb, record_cb, r);
    r->nfields = 0;
    r->rowlen = 0;
    r->rec_line = 0;
    r->discard = false;
    if (r->err != INPUT_OK) {
        snprintf(err, errlen, "%s", r->errbuf);
        return r->err == INPUT_EIO ? INPUT_EIO : INPUT_ECHANGED;
    }
    if (r->offset < pos->offset) {
        snprintf(err, errlen,
                 "%s: shorter (%" PRIu64 " bytes) than the %" PRIu64 " bytes already read", r->name,
                 r->offset, pos->offset);
        return INPUT_ECHANGED;
    }
    if (r->crc != pos->crc) {
        snprintf(err, errlen, "%s: its first %" PRIu64 " bytes are not the ones already read",
                 r->name, pos->offset);
        return INPUT_ECHANGED;
    }
    r->eof = false;
    r->npending = 0;
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
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    sheet_destroy(&r->sheet);
    rowmap_destroy(&r->map);
    free(r->rowbuf);
    free(r->slots);
    free(r->lines);
    free(r->path);
    free(r->name);
    free(r);
    *rp = NULL;
}
