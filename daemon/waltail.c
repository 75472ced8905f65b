/* waltail.c -- see waltail.h. */
#include "daemon/waltail.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/wal.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/fileio.h"

struct waltail {
    char *dir;
    char *cursor_path;
    waltail_pos_t pos;       /* read position: the next record */
    waltail_pos_t committed; /* what the cursor file holds */
    waltail_pos_t mark;
    bool marked;
    waltail_pos_t limit;
    bool limited;
    char note[WALTAIL_NOTE_MAX + 1]; /* the committed position's note */
    int fd;                          /* the segment pos.segment, open; -1 if none */
    unsigned char *buf;              /* the record handed out last (owned) */
    size_t cap;
};

static int pos_cmp(waltail_pos_t a, waltail_pos_t b)
{
    if (a.segment != b.segment)
        return a.segment < b.segment ? -1 : 1;
    return a.offset < b.offset ? -1 : a.offset > b.offset;
}

/* The cursor file: "waltail 1 <segment> <offset>\n" [note "\n"]. Returns 1
 * (read), 0 (no file), -1 (err). */
static int cursor_read(const char *path, waltail_pos_t *ret, char *note, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char text[128 + WALTAIL_NOTE_MAX];
    ssize_t got = fileio_read_full(fd, text, sizeof text - 1);
    close(fd);
    if (got < 0) {
        snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    text[got] = '\0';
    uint64_t seg, off;
    int used = 0;
    char *nl = strchr(text, '\n');
    const char *rest = nl ? nl + 1 : "";
    size_t restlen = strlen(rest);
    bool note_ok = restlen == 0 || (restlen <= WALTAIL_NOTE_MAX + 1 && rest[restlen - 1] == '\n' &&
                                    memchr(rest, '\n', restlen - 1) == NULL);
    if (!nl || sscanf(text, "waltail 1 %" SCNu64 " %" SCNu64 "%n", &seg, &off, &used) != 2 ||
        text + used != nl || seg == 0 || off < WAL_SEG_HEADER || !note_ok) {
        snprintf(err, errlen, "%s: not a WAL cursor (want \"waltail 1 SEGMENT OFFSET\")", path);
        return -1;
    }
    ret->segment = seg;
    ret->offset = off;
    snprintf(note, WALTAIL_NOTE_MAX + 1, "%.*s", restlen ? (int)restlen - 1 : 0, rest);
    return 1;
}

int waltail_open(waltail_t **out, const char *wal_dir, const char *cursor_path, char *err,
                 size_t errlen)
{
    waltail_pos_t pos;
    char note[WALTAIL_NOTE_MAX + 1] = "";
    int rc = cursor_read(cursor_path, &pos, note, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        /* First start: everything the WAL still holds. */
        uint64_t *segs;
        size_t n;
        if (wal_segments(wal_dir, &segs, &n) != 0) {
            snprintf(err, errlen, "%s: %s", wal_dir, strerror(errno));
            return -1;
        }
        pos.segment = n ? segs[0] : 1;
        pos.offset = WAL_SEG_HEADER;
        free(segs);
    }
    waltail_t *t = xcalloc(1, sizeof *t);
    t->dir = xstrdup(wal_dir);
    t->cursor_path = xstrdup(cursor_path);
    t->pos = pos;
    t->committed = pos;
    memcpy(t->note, note, sizeof note);
    t->fd = -1;
    *out = t;
    return 0;
}

static void segment_close(waltail_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static bool segment_exists(const waltail_t *t, uint64_t n)
{
    char path[4096];
    wal_segment_path(t->dir, n, path, sizeof path);
    return access(path, F_OK) == 0;
}

/* Opens pos.segment and checks its header. Returns 1 (open), 0 (not there
 * or its header not written yet), -1 (err). */
static int segment_open(waltail_t *t, char *err, size_t errlen)
{
    char path[4096];
    wal_segment_path(t->dir, t->pos.segment, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        /* Gone while later ones exist: trimmed from under us. */
        uint64_t *segs;
        size_t n;
        if (wal_segments(t->dir, &segs, &n) != 0) {
            snprintf(err, errlen, "%s: %s", t->dir, strerror(errno));
            return -1;
        }
        bool later = n && segs[n - 1] > t->pos.segment;
        free(segs);
        if (later) {
            snprintf(err, errlen,
                     "%s: WAL segment %" PRIu64 " is gone but later ones exist: the records "
                     "after offset %" PRIu64 " in it are lost to this reader",
                     path, t->pos.segment, t->pos.offset);
            return -1;
        }
        return 0;
    }
    unsigned char hdr[WAL_SEG_HEADER];
    ssize_t got = pread(fd, hdr, sizeof hdr, 0);
    if (got < 0) {
        snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (got < (ssize_t)sizeof hdr) {
        close(fd); /* created, header not written yet */
        return 0;
    }
    if (memcmp(hdr, WAL_SEG_MAGIC, 8) != 0 || bytes_get_le32(hdr + 8) != WAL_FORMAT_VERSION) {
        snprintf(err, errlen,
                 "%s: WAL segment %" PRIu64 " offset 0: not a version %d segment header", path,
                 t->pos.segment, WAL_FORMAT_VERSION);
        close(fd);
        return -1;
    }
    t->fd = fd;
    return 1;
}

/* Reads the record at pos. Returns 1 (whole and intact: *ret_len), 0
 * (incomplete), -1 (corrupt or unreadable: err). */
static int record_read(waltail_t *t, size_t *ret_len, char *err, size_t errlen)
{
    unsigned char hdr[WAL_REC_HEADER];
    ssize_t got = pread(t->fd, hdr, sizeof hdr, (off_t)t->pos.offset);
    if (got < 0)
        goto io_error;
    if (got < (ssize_t)sizeof hdr)
        return 0;
    size_t len = bytes_get_le32(hdr + 4);
    if (bytes_get_le32(hdr) != WAL_REC_MAGIC || len > WAL_MAX_RECORD) {
        snprintf(err, errlen, "WAL segment %" PRIu64 " offset %" PRIu64 ": corrupt record (%s)",
                 t->pos.segment, t->pos.offset,
                 bytes_get_le32(hdr) != WAL_REC_MAGIC ? "bad magic" : "length over the maximum");
        return -1;
    }
    xgrow(&t->buf, &t->cap, len ? len : 1, 1);
    got = pread(t->fd, t->buf, len, (off_t)(t->pos.offset + WAL_REC_HEADER));
    if (got < 0)
        goto io_error;
    if ((size_t)got < len)
        return 0;
    if ((uint32_t)crc32(0L, t->buf, (uInt)len) != bytes_get_le32(hdr + 8)) {
        snprintf(err, errlen,
                 "WAL segment %" PRIu64 " offset %" PRIu64 ": corrupt record (checksum mismatch)",
                 t->pos.segment, t->pos.offset);
        return -1;
    }
    *ret_len = len;
    return 1;
io_error:
    snprintf(err, errlen, "WAL segment %" PRIu64 " offset %" PRIu64 ": read: %s", t->pos.segment,
             t->pos.offset, strerror(errno));
    return -1;
}

int waltail_next(waltail_t *t, const void **payload, size_t *len, char *err, size_t errlen)
{
    for (;;) {
        if (t->limited && t->pos.segment > t->limit.segment)
            return 0;
        if (t->fd < 0) {
            int rc = segment_open(t, err, errlen);
            if (rc <= 0)
                return rc;
        }
        size_t n;
        int rc = record_read(t, &n, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            waltail_pos_t end = {t->pos.segment, t->pos.offset + WAL_REC_HEADER + n};
            if (t->limited && pos_cmp(end, t->limit) > 0)
                return 0;
            t->pos = end;
            *payload = t->buf;
            *len = n;
            return 1;
        }
        /* Incomplete. The writer rotates only after its last append to a
         * segment returned, so once the next segment exists this one is
         * final: read it once more, then move on or call the rest damage. */
        if (!segment_exists(t, t->pos.segment + 1))
            return 0;
        rc = record_read(t, &n, err, errlen);
        if (rc != 0)
            continue; /* completed meanwhile (1), or corrupt (-1): judged above */
        struct stat sb;
        if (fstat(t->fd, &sb) != 0) {
            snprintf(err, errlen, "WAL segment %" PRIu64 ": fstat: %s", t->pos.segment,
                     strerror(errno));
            return -1;
        }
        if ((uint64_t)sb.st_size > t->pos.offset) {
            snprintf(err, errlen,
                     "WAL segment %" PRIu64 " offset %" PRIu64 ": torn record (%" PRIu64
                     " bytes) in a segment the writer has left",
                     t->pos.segment, t->pos.offset, (uint64_t)sb.st_size - t->pos.offset);
            return -1;
        }
        segment_close(t);
        t->pos.segment++;
        t->pos.offset = WAL_SEG_HEADER;
    }
}

waltail_pos_t waltail_tell(const waltail_t *t)
{
    return t->pos;
}

void waltail_seek(waltail_t *t, waltail_pos_t pos)
{
    if (pos.segment != t->pos.segment)
        segment_close(t);
    t->pos = pos;
    t->marked = false;
}

void waltail_mark(waltail_t *t)
{
    t->mark = t->pos;
    t->marked = true;
}

int waltail_commit_note(waltail_t *t, waltail_pos_t pos, const char *note, char *err, size_t errlen)
{
    if (strlen(note) > WALTAIL_NOTE_MAX || strchr(note, '\n')) {
        snprintf(err, errlen, "%s: a note of one line up to %d bytes", t->cursor_path,
                 WALTAIL_NOTE_MAX);
        return -1;
    }
    if (pos_cmp(pos, t->committed) == 0 && strcmp(note, t->note) == 0)
        return 0;
    char text[128 + WALTAIL_NOTE_MAX];
    int len = snprintf(text, sizeof text, "waltail 1 %" PRIu64 " %" PRIu64 "\n%s%s", pos.segment,
                       pos.offset, note, *note ? "\n" : "");
    if (fileio_write_atomic(t->cursor_path, text, (size_t)len, 0600, err, errlen) != 0)
        return -1;
    t->committed = pos;
    if (note != t->note)
        snprintf(t->note, sizeof t->note, "%s", note);
    return 0;
}

int waltail_commit_to(waltail_t *t, waltail_pos_t pos, char *err, size_t errlen)
{
    return waltail_commit_note(t, pos, t->note, err, errlen);
}

const char *waltail_note(const waltail_t *t)
{
    return t->note;
}

int waltail_commit(waltail_t *t, char *err, size_t errlen)
{
    waltail_pos_t pos = t->marked ? t->mark : t->pos;
    if (waltail_commit_to(t, pos, err, errlen) != 0)
        return -1;
    t->marked = false;
    return 0;
}

waltail_pos_t waltail_committed(const waltail_t *t)
{
    return t->committed;
}

uint64_t waltail_segment(const waltail_t *t)
{
    return t->committed.segment;
}

void waltail_limit(waltail_t *t, waltail_pos_t pos)
{
    t->limit = pos;
    t->limited = true;
}

void waltail_close(waltail_t *t)
{
    if (!t)
        return;
    segment_close(t);
    free(t->buf);
    free(t->dir);
    free(t->cursor_path);
    free(t);
}
