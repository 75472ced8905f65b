/*
 * input.h -- the agent's sample reader: CSV, .xlsx and .xls tables.
 *
 * An agent feeds clustermon tables of samples: without a header, lines of
 *
 *     enterprise,metric,value,period-or-timestamp
 *
 * or, with a header, columns by name in any order, long or wide
 * (agents/rowmap.h), from a file, a pipe or a spreadsheet (agents/sheet.h).
 * A CSV is UTF-8 (a BOM is skipped) or GB18030/GBK (what Excel on Chinese
 * Windows saves), converted with iconv: a regular file is GB18030 if it is
 * not valid UTF-8 as a whole, a stream if its first line with non-ASCII
 * bytes is not; input_reader_configure() can fix the encoding instead.
 * This module turns them into proto_sample_t batches
 * ready for proto_batch_encode(). It reads incrementally (one physical line
 * at a time through stdio, never the whole input), so a pipe's lines are
 * parsed as they arrive, and memory stays bounded whatever the input.
 *
 * The format (RFC 4180 quoting via libcsv, strict mode):
 *   - exactly 4 fields per record; fields may be quoted ("a ""b"", c");
 *     unquoted fields lose surrounding spaces and tabs;
 *   - the first record is a header if one of its fields is a known column
 *     name (agents/rowmap.h); otherwise it must be a 4-field sample;
 *   - blank lines are skipped;
 *   - enterprise, metric: 1..PROTO_MAX_ID_LEN bytes of UTF-8, no control
 *     characters;
 *   - value: a decimal number ([-+]digits[.digits][e[-+]digits]; no hex,
 *     inf or nan), |value| <= PROTO_MAX_ABS_VALUE;
 *   - column 4, tried in this order:
 *       empty               -> no period, ts_ms = now
 *       a period            -> "2021", "2021-Q3", "2021-07"; ts_ms = now
 *       digits only         -> Unix time in milliseconds, except that four
 *                              digits are always a year ("1969" is an
 *                              error, not 1.969 s after the epoch)
 *       an ISO 8601 time    -> input_timestamp_parse() below
 *     "now" is the wall clock when the line is parsed.
 *
 * Errors name the input, the line a record starts on and the field:
 *     data.csv:17: value: 'abc' is not a number
 */
#ifndef CLUSTERMON_AGENTS_INPUT_H
#define CLUSTERMON_AGENTS_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agents/rowmap.h"
#include "proto/proto.h"

typedef enum {
    INPUT_OK = 0,
    INPUT_ESYNTAX = -1,  /* a line that is not a valid sample */
    INPUT_EIO = -2,      /* the input could not be opened or read */
    INPUT_ECHANGED = -3, /* input_reader_skip(): not the input the position came from */
} input_err_t;

#define INPUT_MAX_FIELD 1024 /* bytes in one CSV field; longer is an error */
#define INPUT_ERRLEN 512     /* a comfortable size for error buffers */

typedef struct input_reader input_reader_t;

typedef enum {
    INPUT_ENC_AUTO = 0, /* UTF-8 unless the bytes say GB18030 */
    INPUT_ENC_UTF8,
    INPUT_ENC_GB18030, /* also GBK and GB2312, which it contains */
} input_encoding_t;

/* "auto", "utf-8", "gb18030" (or "gbk", "gb2312", "cp936"): 0 or -1. */
int input_encoding_parse(const char *s, input_encoding_t *ret);
const char *input_encoding_name(input_encoding_t e);

/* How to read a table; all borrowed for the reader's life. */
typedef struct {
    input_encoding_t encoding;
    const char *sheet; /* a spreadsheet's worksheet, NULL: the first */
    rowmap_opts_t map; /* --columns and the wide-table metric map */
} input_opts_t;

/*
 * Returns a reader over fp, which is borrowed: it must stay open until
 * input_reader_destroy(), which does not close it. name is copied and used in
 * error messages ("stdin" if NULL). Never returns NULL (aborts on OOM).
 */
input_reader_t *input_reader_new(FILE *fp, const char *name);

/*
 * Opens path ("-" or NULL: stdin, named "stdin") and returns a reader that
 * owns the stream (closed by input_reader_destroy(), stdin excepted).
 * Returns NULL with "path: strerror" in err if the file cannot be opened.
 */
input_reader_t *input_reader_open(const char *path, char *err, size_t errlen);

/* input_reader_open(), its errors naming the input name (copied) instead of
 * path: a file kept under another name, such as the daemon's copy of an
 * upload (daemon/webupload.c). A spreadsheet is still told by path's
 * extension. */
input_reader_t *input_reader_open_named(const char *path, const char *name, char *err,
                                        size_t errlen);

/*
 * A position in the input at a record boundary, for resuming it later: the
 * agent records it in its spool with each batch.
 */
typedef struct {
    uint64_t offset; /* bytes consumed (a BOM included) */
    uint64_t
        line; /* the reader's line number at offset (after a CR, the LF to come ends the line) */
    uint32_t crc; /* CRC-32 of the bytes [0, offset) */
} input_pos_t;

/*
 * The position just after the last record that became a sample (blank lines
 * and a header after it are not counted: reading them again is harmless).
 * Before any sample it is {0, 1, 0}. On an error, it stays before the bad
 * line, so a resumed reader meets the same error again.
 */
void input_reader_pos(const input_reader_t *r, input_pos_t *ret);

/*
 * Before the first input_read_batch(): consumes pos->offset bytes and checks
 * that their CRC-32 is pos->crc, then continues line numbers from pos->line.
 * Returns INPUT_OK, INPUT_ECHANGED with the reason if the input is shorter or
 * its prefix differs (the reader is then spent: destroy it and read the input
 * from the start with a new one), or INPUT_EIO.
 */
int input_reader_skip(input_reader_t *r, const input_pos_t *pos, char *err, size_t errlen);

/*
 * Before the first read (or input_reader_skip()): sets the encoding, the
 * worksheet and the column maps. Returns INPUT_OK, or INPUT_ESYNTAX with the
 * reason in err (a malformed --columns).
 */
int input_reader_configure(input_reader_t *r, const input_opts_t *opts, char *err, size_t errlen);

/*
 * The source line (a spreadsheet's row number) of each sample of the last
 * input_read_batch(): lines[i] for samples[i]. Borrowed until the next read.
 * A wide row's samples share its line.
 */
const unsigned long *input_reader_lines(const input_reader_t *r);

/* True if the input is a stream (a pipe, a terminal, a socket): a read may
 * block until more arrives, where a regular file's never does. */
bool input_reader_is_stream(const input_reader_t *r);

/* Frees the reader (closing what input_reader_open() opened); sets *r to NULL. */
void input_reader_destroy(input_reader_t **r);

/*
 * Reads up to max samples into samples[0..max). *ret_n is set to the number
 * filled; it is 0 only at the end of input. Blocks until max samples are
 * read or the input ends, reading no further than needed.
 *
 * ret_lines (NULL, or room for max) receives the line each sample's record
 * starts on, so that an answer about sample i can name its line.
 *
 * Ownership: the firm and metric strings of the samples are borrowed from
 * the reader and stay valid until the next input_read_batch() or
 * input_reader_destroy(), whichever comes first.
 *
 * Returns INPUT_OK, or INPUT_ESYNTAX / INPUT_EIO with "name:line: field:
 * reason" in err. On an error *ret_n still counts the good samples that came
 * before the bad line in this call (the caller may deliver them), and the
 * error is sticky: later calls return it again with *ret_n = 0.
 */
int input_read_batch(input_reader_t *r, proto_sample_t *samples, size_t max, size_t *ret_n,
                     unsigned long *ret_lines, char *err, size_t errlen);

/*
 * Parses an absolute time into Unix milliseconds:
 *   - digits only: Unix time in ms;
 *   - ISO 8601: YYYY-MM-DDThh:mm[:ss[.fff...]] followed by Z or an offset
 *     (+hh:mm, +hhmm, +hh; from -12:00 to +14:00); 't', 'z' and a space for 'T' are accepted;
 *     fractions beyond milliseconds are truncated. A time without Z or an
 *     offset is refused: its time zone would be a guess.
 * The result must lie in [0, PROTO_MAX_TS_MS).
 * Returns INPUT_OK or INPUT_ESYNTAX with a reason (without the input) in err.
 * Pure; callable from any context.
 */
int input_timestamp_parse(const char *s, size_t len, int64_t *ret_ms, char *err, size_t errlen);

#endif
