/* wal.c -- see wal.h. */
#include "daemon/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"
#include "proto/clock.h"
#include "proto/fileio.h"

#define SEG_MAGIC WAL_SEG_MAGIC
#define SEG_HEADER WAL_SEG_HEADER
#define REC_MAGIC WAL_REC_MAGIC
#define REC_HEADER WAL_REC_HEADER

static uint32_t crc_of(const void *p, size_t len)
{
    return (uint32_t)crc32(0L, p, (uInt)len);
}

void wal_segment_path(const char *dir, uint64_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%s/wal-%016" PRIu64 ".log", dir, n);
}

/* ENOSPC and its kin: errors a snapshot and a trim can cure. */
static bool no_space(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static void reserve_path(const char *dir, char *buf, size_t size)
{
    snprintf(buf, size, "%s/reserve", dir);
}

/* Sets errno on failure; a half-created file is removed, so a failed
 * rotation leaves no segment without a header behind. */
static int segment_create(wal_t *w, uint64_t n, char *err, size_t errlen)
{
    char path[4096];
    wal_segment_path(w->dir, n, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char hdr[SEG_HEADER] = {0};
    memcpy(hdr, SEG_MAGIC, 8);
    bytes_put_le32(hdr + 8, WAL_FORMAT_VERSION);
    bytes_put_le32(hdr + 12, crc_of(hdr, 12));
    if (fileio_write_all(fd, hdr, sizeof hdr) != 0 || fsync(fd) != 0 ||
        fileio_sync_dir(w->dir) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot write the header: %s", path, strerror(e));
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    w->fd = fd;
    w->segment = n;
    w->seg_bytes = SEG_HEADER;
    return 0;
}

int wal_open(wal_t *w, uv_loop_t *loop, const char *dir, uint64_t segment, wal_synced_cb on_synced,
             void *data, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->dir = xstrdup(dir);
    w->fd = -1;
    w->on_synced = on_synced;
    w->data = data;
    if (segment_create(w, segment, err, errlen) == 0)
        return 0;
    char path[4096];
    reserve_path(dir, path, sizeof path);
    if (!no_space(errno) || unlink(path) != 0)
        return -1;
    /* The reserve is there for exactly this: start, full, and recover. */
    log_warnx("wal: disk full at start-up: released the reserve to open segment %" PRIu64, segment);
    if (segment_create(w, segment, err, errlen) != 0)
        return -1;
    w->full = true;
    return 0;
}

int wal_reserve_set(wal_t *w, uint64_t bytes, char *err, size_t errlen)
{
    char path[4096];
    reserve_path(w->dir, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t have = (uint64_t)sb.st_size;
    int rc = 0;
    if (have < bytes) {
        /* posix_fallocate returns the error; it does not set errno */
        int e = posix_fallocate(fd, 0, (off_t)bytes);
        if (e != 0) {
            snprintf(err, errlen, "%s: cannot allocate %" PRIu64 " bytes: %s", path, bytes,
                     strerror(e));
            if (have == 0)
                unlink(path);
            else if (ftruncate(fd, (off_t)have) != 0)
                log_warn("%s: ftruncate", path);
            rc = -1;
        } else {
            have = bytes;
        }
    } else if (have > 2 * bytes) {
        if (ftruncate(fd, (off_t)bytes) == 0)
            have = bytes;
    }
    close(fd);
    w->reserve_bytes = have; /* 0 if a new one could not be made: it was removed */
    return rc;
}

void wal_reserve_release(wal_t *w)
{
    char path[4096];
    reserve_path(w->dir, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("%s: unlink", path);
    w->reserve_bytes = 0;
}

/* An append that did not make it: whatever part of it is in the file is
 * cut off, or replay would report a damaged region for batches that were
 * never acked; errors a trim cures (or a cut that failed) mark the WAL full. */
static void append_failed(wal_t *w, int e)
{
    w->append_failed++;
    bool cut = ftruncate(w->fd, (off_t)w->seg_bytes) == 0;
    if (!cut)
        log_warn("wal: cannot cut a failed append off segment %" PRIu64 " at %" PRIu64
                 " bytes; rotating away from it",
                 w->segment, w->seg_bytes);
    if (no_space(e) || !cut) {
        /* A cut that failed leaves junk: the snapshot the recovery takes
         * rotates away from this segment, which then is never replayed. */
        w->full = true;
        log_error("wal: append to segment %" PRIu64 " failed: %s; ingest paused (batches "
                  "nacked busy) until a snapshot trimmed the WAL and the reserve is back",
                  w->segment, strerror(e));
    } else {
        errno = e;
        log_warn("wal: append to segment %" PRIu64 " failed", w->segment);
    }
}

static void put_header(unsigned char *hdr, const void *payload, size_t len)
{
    bytes_put_le32(hdr, REC_MAGIC);
    bytes_put_le32(hdr + 4, (uint32_t)len);
    bytes_put_le32(hdr + 8, crc_of(payload, len));
}

/* Counts n records of bytes in all as written. */
static uint64_t appended(wal_t *w, size_t n, size_t bytes)
{
    w->pos += bytes;
    w->written = w->pos;
    w->seg_bytes += bytes;
    w->appends += n;
    w->bytes_written += bytes;
    return w->pos;
}

/* Frames n records into the group buffer (staged, in file order). */
static uint64_t stage(wal_t *w, const struct iovec *payloads, size_t n, size_t total)
{
    xgrow(&w->stage, &w->stage_cap, w->stage_len + total, 1);
    unsigned char *p = w->stage + w->stage_len;
    for (size_t i = 0; i < n; i++) {
        put_header(p, payloads[i].iov_base, payloads[i].iov_len);
        memcpy(p + REC_HEADER, payloads[i].iov_base, payloads[i].iov_len);
        p += REC_HEADER + payloads[i].iov_len;
    }
    w->stage_len += total;
    w->stage_n += n;
    w->pos += total;
    w->appends += n;
    return w->pos;
}

int wal_group_flush(wal_t *w)
{
    w->grouping = false;
    if (w->stage_len == 0)
        return 0;
    if (w->fd < 0 || fileio_write_all(w->fd, w->stage, w->stage_len) != 0) {
        /* cut back, marked full if the disk is; the group stays staged for
         * the next try (its batches were applied: they cannot be dropped) */
        int e = w->fd < 0 ? EBADF : errno;
        if (w->fd >= 0)
            append_failed(w, e);
        w->group_failed++;
        return -1;
    }
    w->seg_bytes += w->stage_len;
    w->bytes_written += w->stage_len;
    w->written = w->pos;
    w->groups++;
    w->stage_len = 0;
    w->stage_n = 0;
    return 0;
}

/* A direct append may not overtake a staged group (file order is apply order). */
static bool direct_ok(wal_t *w)
{
    return w->stage_len == 0 || wal_group_flush(w) == 0;
}

uint64_t wal_append(wal_t *w, const void *payload, size_t len)
{
    if (w->fd < 0 || len > WAL_MAX_RECORD || w->full) {
        w->append_failed++;
        return 0;
    }
    if (w->grouping) {
        struct iovec one = {(void *)(uintptr_t)payload, len};
        return stage(w, &one, 1, REC_HEADER + len);
    }
    if (!direct_ok(w)) {
        w->append_failed++;
        return 0;
    }
    unsigned char hdr[REC_HEADER];
    put_header(hdr, payload, len);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)(uintptr_t)payload, len}};
    if (fileio_writev_all(w->fd, iov, 2) != 0) {
        append_failed(w, errno);
        return 0;
    }
    return appended(w, 1, REC_HEADER + len);
}

uint64_t wal_append_many(wal_t *w, const struct iovec *payloads, size_t n)
{
    if (n == 1)
        return wal_append(w, payloads[0].iov_base, payloads[0].iov_len);
    size_t total = 0;
    bool too_big = false;
    for (size_t i = 0; i < n; i++) {
        too_big |= payloads[i].iov_len > WAL_MAX_RECORD;
        total += REC_HEADER + payloads[i].iov_len;
    }
    if (w->fd < 0 || too_big || w->full) {
        w->append_failed += n;
        return 0;
    }
    if (n == 0)
        return w->pos;
    if (w->grouping)
        return stage(w, payloads, n, total);
    if (!direct_ok(w)) {
        w->append_failed += n;
        return 0;
    }
    /* Framed into one buffer (the WAL's, reused: no allocation once it is
     * big enough) and written with one write: one system call, not n. */
    xgrow(&w->group, &w->group_cap, total, 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        put_header(w->group + off, payloads[i].iov_base, payloads[i].iov_len);
        memcpy(w->group + off + REC_HEADER, payloads[i].iov_base, payloads[i].iov_len);
        off += REC_HEADER + payloads[i].iov_len;
    }
    if (fileio_write_all(w->fd, w->group, total) != 0) {
        /* all or nothing: the records written before the failure are cut too */
        int e = errno;
        append_failed(w, e);
        w->append_failed += n - 1;
        return 0;
    }
    return appended(w, n, total);
}

static void sync_start(wal_t *w, int fd);

static void sync_done(uv_fs_t *req)
{
    wal_t *w = req->data;
    int64_t result = req->result;
    uv_file fd = req->file;
    uv_fs_req_cleanup(req);
    uint64_t ns = clock_monotonic_ns() - w->sync_started_ns;
    w->fsyncs++;
    w->fsync_ns_total += ns;
    if (ns > w->fsync_ns_max)
        w->fsync_ns_max = ns;
    w->sync_running = false;
    if (result < 0) {
        /* The data may not be durable: keep acks waiting and try again. */
        log_warnx("wal: fsync failed: %s", uv_strerror((int)result));
    } else {
        w->synced = w->sync_target;
    }
    if (fd != w->fd)
        close(fd); /* a segment retired by wal_rotate */
    if (w->on_synced)
        w->on_synced(w, w->synced);
    if (w->written > w->synced && w->fd >= 0 && !w->sync_running)
        sync_start(w, w->fd);
}

static void sync_start(wal_t *w, int fd)
{
    w->sync_req.data = w;
    w->sync_target = w->written; /* a staged group is not in the file yet */
    w->sync_started_ns = clock_monotonic_ns();
    int rc = uv_fs_fdatasync(w->loop, &w->sync_req, fd, sync_done);
    if (rc < 0) {
        log_warnx("wal: cannot start fsync: %s", uv_strerror(rc));
        return;
    }
    w->sync_running = true;
}

void wal_sync(wal_t *w)
{
    if (w->sync_running || w->fd < 0 || w->written == w->synced)
        return; /* a running sync starts a follow-up when it ends */
    sync_start(w, w->fd);
}

bool wal_busy(const wal_t *w)
{
    return w->sync_running;
}

int64_t wal_rotate(wal_t *w, char *err, size_t errlen)
{
    if (w->sync_running) {
        snprintf(err, errlen, "wal: rotate while an fsync runs");
        return -1;
    }
    if (!direct_ok(w)) {
        snprintf(err, errlen, "wal: a group of records could not be written yet");
        return -1;
    }
    int old = w->fd;
    uint64_t closed = w->segment;
    if (segment_create(w, closed + 1, err, errlen) != 0) {
        /* A rotation that found no room is the stuck state the reserve is
         * for: mark the WAL full so the recovery releases it and retries. */
        if (no_space(errno))
            w->full = true;
        w->fd = old;
        return -1;
    }
    /* The retired segment is synced and closed off the loop. */
    sync_start(w, old);
    if (!w->sync_running)
        close(old);
    return (int64_t)closed;
}

void wal_close(wal_t *w)
{
    if (w->stage_len && wal_group_flush(w) != 0)
        log_error("wal: at close, %" PRIu64 " staged records could not be written (they were "
                  "never acknowledged)",
                  w->stage_n);
    free(w->stage);
    w->stage = NULL;
    w->stage_cap = w->stage_len = 0;
    if (w->fd >= 0) {
        if (fdatasync(w->fd) != 0)
            log_warn("wal: final fsync");
        close(w->fd);
    }
    w->fd = -1;
    free(w->dir);
    w->dir = NULL;
    free(w->group);
    w->group = NULL;
    w->group_cap = 0;
}

/* ---- replay ---------------------------------------------------------------- */

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int wal_segments(const char *dir, uint64_t **ret, size_t *ret_n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t num;
        char tail[8];
        if (strlen(e->d_name) != 24 || sscanf(e->d_name, "wal-%16" SCNu64 "%4s", &num, tail) != 2 ||
            strcmp(tail, ".log") != 0)
            continue;
        xgrow(&v, &cap, n + 1, sizeof *v);
        v[n++] = num;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, seg_cmp);
    *ret = v;
    *ret_n = n;
    return 0;
}

uint64_t wal_first_gap(const uint64_t *segs, size_t n, uint64_t after)
{
    uint64_t want = after + 1;
    for (size_t i = 0; i < n; i++) {
        if (segs[i] < want)
            continue;
        if (segs[i] != want)
            return want;
        want++;
    }
    return 0;
}

static bool record_ok(const unsigned char *buf, size_t size, size_t off, size_t *ret_len)
{
    if (size - off < REC_HEADER || bytes_get_le32(buf + off) != REC_MAGIC)
        return false;
    size_t len = bytes_get_le32(buf + off + 4);
    if (len > WAL_MAX_RECORD || size - off - REC_HEADER < len)
        return false;
    if (crc_of(buf + off + REC_HEADER, len) != bytes_get_le32(buf + off + 8))
        return false;
    *ret_len = len;
    return true;
}

typedef enum { HDR_OK, HDR_DAMAGED, HDR_OTHER_VERSION } hdr_state_t;

/* Judges a segment header (size >= SEG_HEADER). A consistent header of
 * another version is that version; an inconsistent one is damage. Headers
 * from before the check (check field 0) cannot tell: one of another version
 * whose first record reads as ours is taken for a damaged version field. */
static hdr_state_t header_judge(const unsigned char *buf, size_t size, char *why, size_t whylen)
{
    bool magic = memcmp(buf, SEG_MAGIC, 8) == 0;
    uint32_t version = bytes_get_le32(buf + 8), check = bytes_get_le32(buf + 12);
    size_t len;
    if (check != 0 && check != crc_of(buf, 12)) {
        snprintf(why, whylen, "header check mismatch%s, format version field %u",
                 magic ? "" : ", bad magic", version);
        return HDR_DAMAGED;
    }
    if (!magic) {
        snprintf(why, whylen, "bad magic");
        return HDR_DAMAGED;
    }
    if (version == WAL_FORMAT_VERSION)
        return HDR_OK;
    if (check == 0 && (size == SEG_HEADER || record_ok(buf, size, SEG_HEADER, &len))) {
        snprintf(why, whylen, "format version field %u, but its records are version %d's", version,
                 WAL_FORMAT_VERSION);
        return HDR_DAMAGED;
    }
    return HDR_OTHER_VERSION;
}

/* The replay's read buffer, reused from segment to segment (owned by
 * wal_replay). */
typedef struct {
    unsigned char *buf;
    size_t cap;
} replay_buf_t;

/* Reads what fits in 1 MiB at a time: a buffer that size stays in the cache
 * while its records are checked and applied (reading a whole segment, or
 * mapping it, made every byte a cache miss -- measured at 3x the time). */
#define REPLAY_CHUNK (1u << 20)

/* The streaming window: the file's bytes [base, base + have) are in rb. */
typedef struct {
    int fd;
    size_t size, base, have;
    replay_buf_t *rb;
} window_t;

/* Makes the file's bytes [off, off + n) present (off + n <= size), sliding
 * the window forward and reading on. Returns the pointer to byte off, or
 * NULL with errno (a read error, or a file that shrank: EIO). */
static const unsigned char *window_at(window_t *w, size_t off, size_t n)
{
    if (off >= w->base && off + n <= w->base + w->have)
        return w->rb->buf + (off - w->base);
    size_t keep = off < w->base + w->have ? w->base + w->have - off : 0;
    if (keep)
        memmove(w->rb->buf, w->rb->buf + (off - w->base), keep);
    w->base = off;
    w->have = keep;
    size_t want = n > REPLAY_CHUNK ? n : REPLAY_CHUNK;
    if (want > w->rb->cap) {
        w->rb->buf = xrealloc(w->rb->buf, want);
        w->rb->cap = want;
    }
    size_t room = w->rb->cap - w->have, left = w->size - (w->base + w->have);
    size_t take = room < left ? room : left;
    while (take > 0) {
        ssize_t got = pread(w->fd, w->rb->buf + w->have, take, (off_t)(w->base + w->have));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return NULL;
        }
        w->have += (size_t)got;
        take -= (size_t)got;
    }
    if (w->have < n) {
        errno = EIO; /* the file shrank under us */
        return NULL;
    }
    return w->rb->buf;
}

/*
 * The common case, streamed through rb: a header that is plainly ours and
 * intact records to the end. Returns 0 when every record was replayed, 1 at
 * the first thing that is not an intact record (*ret_from: its offset, or 0
 * if the header itself needs judging), -1 on a read error (err).
 */
static int replay_stream(int fd, const char *path, size_t size, wal_record_cb cb, void *data,
                         wal_replay_stats_t *st, replay_buf_t *rb, size_t *ret_from, char *err,
                         size_t errlen)
{
    window_t w = {.fd = fd, .size = size, .rb = rb};
    const unsigned char *p = window_at(&w, 0, SEG_HEADER);
    if (!p)
        goto read_error;
    uint32_t check = bytes_get_le32(p + 12);
    *ret_from = 0;
    if (memcmp(p, SEG_MAGIC, 8) != 0 || bytes_get_le32(p + 8) != WAL_FORMAT_VERSION ||
        (check != 0 && check != crc_of(p, 12)))
        return 1;
    size_t off = SEG_HEADER;
    while (off < size) {
        *ret_from = off;
        if (size - off < REC_HEADER)
            return 1;
        if (!(p = window_at(&w, off, REC_HEADER)))
            goto read_error;
        size_t len = bytes_get_le32(p + 4);
        if (bytes_get_le32(p) != REC_MAGIC || len > WAL_MAX_RECORD || size - off - REC_HEADER < len)
            return 1;
        if (!(p = window_at(&w, off, REC_HEADER + len)))
            goto read_error;
        if (crc_of(p + REC_HEADER, len) != bytes_get_le32(p + 8))
            return 1;
        st->records++;
        cb(p + REC_HEADER, len, data);
        off += REC_HEADER + len;
    }
    return 0;
read_error:
    snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
    return -1;
}

/*
 * The careful way, for a segment with damage or a header to judge: the
 * whole segment in memory, records found by their magic and CRC, from
 * offset from (0: judge the header first; else the header was fine and the
 * records before from are replayed already). Returns 0, 1 if the (last)
 * segment was removed, or -1 (err).
 */
static int replay_whole(int fd, const char *path, size_t size, size_t from, bool last,
                        wal_record_cb cb, void *data, wal_replay_stats_t *st, char *err,
                        size_t errlen)
{
    int rc = 0;
    uint64_t records_before = st->records, skipped_before = st->bytes_skipped;
    if (size < SEG_HEADER) {
        /* shorter than a header: no record can be in it */
        st->damaged++;
        if (last) {
            /* created but its header never reached the disk */
            log_warnx("%s: torn header (%zu bytes): removed", path, size);
            st->truncated += size;
            unlink(path);
            return 1;
        }
        log_warnx("%s: %zu bytes, shorter than a segment header: holds no record, skipped", path,
                  size);
        st->bytes_skipped += size;
        return 0;
    }
    unsigned char *buf = xmalloc(size);
    ssize_t got = lseek(fd, 0, SEEK_SET) == 0 ? fileio_read_full(fd, buf, size) : -1;
    if (got < 0 || (size_t)got < size) {
        snprintf(err, errlen, "%s: read: %s", path, got < 0 ? strerror(errno) : "short file");
        free(buf);
        return -1;
    }
    char why[128];
    hdr_state_t hs = from ? HDR_OK : header_judge(buf, size, why, sizeof why);
    if (hs == HDR_OTHER_VERSION) {
        snprintf(err, errlen, "%s: WAL format version %u; this clustermond reads version %d", path,
                 bytes_get_le32(buf + 8), WAL_FORMAT_VERSION);
        free(buf);
        return -1;
    }
    if (hs == HDR_DAMAGED) {
        st->headers_damaged++;
        log_warnx("%s: damaged header (%s): reading its records by their own magic and CRC", path,
                  why);
    }
    size_t off = from ? from : SEG_HEADER, len;
    while (off < size) {
        if (record_ok(buf, size, off, &len)) {
            st->records++;
            cb(buf + off + REC_HEADER, len, data);
            off += REC_HEADER + len;
            continue;
        }
        /* Damage: look for the next intact record. */
        size_t next = off + 1;
        while (next < size && !record_ok(buf, size, next, &len))
            next++;
        st->damaged++;
        if (next >= size && last) {
            log_warnx("%s: damaged tail at offset %zu: cut off %zu bytes (a crash mid-write); "
                      "%" PRIu64 " records kept",
                      path, off, size - off, st->records);
            st->truncated += size - off;
            if (ftruncate(fd, (off_t)off) != 0)
                log_warn("%s: ftruncate", path);
            break;
        }
        log_warnx("%s: damaged region at offset %zu..%zu (%zu bytes) skipped; the records in it "
                  "are lost",
                  path, off, next, next - off);
        st->bytes_skipped += next - off;
        off = next;
    }
    if (hs == HDR_DAMAGED)
        log_warnx("%s: damaged header: %" PRIu64 " intact records read from the segment, %" PRIu64
                  " bytes of damage skipped after the header",
                  path, st->records - records_before, st->bytes_skipped - skipped_before);
    free(buf);
    return rc;
}

/* Returns 0, 1 if the (last) segment was removed, or -1 (err). */
static int replay_segment(const char *path, bool last, wal_record_cb cb, void *data,
                          wal_replay_stats_t *st, replay_buf_t *rb, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size, from = 0;
    int rc = 1;
    if (size >= SEG_HEADER)
        rc = replay_stream(fd, path, size, cb, data, st, rb, &from, err, errlen);
    /* damage, or a header that is not plainly ours: the careful way, from
     * where the stream stopped */
    if (rc == 1)
        rc = replay_whole(fd, path, size, from, last, cb, data, st, err, errlen);
    close(fd);
    return rc;
}

int wal_replay(const char *dir, uint64_t after, wal_record_cb cb, void *data,
               wal_replay_stats_t *stats, uint64_t *ret_last, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    *ret_last = 0;
    uint64_t *segs;
    size_t n;
    if (wal_segments(dir, &segs, &n) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    uint64_t want = after + 1;
    replay_buf_t rb = {NULL, 0};
    for (size_t i = 0; i < n && rc >= 0; i++) {
        *ret_last = segs[i];
        if (segs[i] <= after)
            continue;
        if (segs[i] != want) {
            /* Segments are numbered without gaps: these were deleted. */
            log_error("WAL segments %016" PRIu64 "..%016" PRIu64 " are missing from %s: the "
                      "batches in them are lost",
                      want, segs[i] - 1, dir);
            stats->missing += segs[i] - want;
        }
        want = segs[i] + 1;
        char path[4096];
        wal_segment_path(dir, segs[i], path, sizeof path);
        rc = replay_segment(path, i + 1 == n, cb, data, stats, &rb, err, errlen);
        if (rc == 1) {
            /* a torn last segment, removed: its number is free again */
            *ret_last = i > 0 ? segs[i - 1] : 0;
            break;
        }
        if (!stats->first)
            stats->first = segs[i];
        stats->last = segs[i];
    }
    free(segs);
    free(rb.buf);
    return rc < 0 ? -1 : 0;
}

int wal_holds_set(wal_holds_t *h, const char *name, uint64_t segment)
{
    size_t i = 0;
    while (i < h->n && strcmp(h->name[i], name) != 0)
        i++;
    if (segment == 0) {
        if (i < h->n) {
            h->n--;
            h->name[i] = h->name[h->n];
            h->segment[i] = h->segment[h->n];
        }
        return 0;
    }
    if (i == h->n) {
        if (h->n == WAL_HOLDS_MAX)
            return -1;
        h->name[h->n++] = name;
    }
    h->segment[i] = segment;
    return 0;
}

uint64_t wal_holds_trim_upto(const wal_holds_t *h, uint64_t upto)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->segment[i] <= upto)
            upto = h->segment[i] - 1;
    }
    return upto;
}

void wal_remove_upto(const char *dir, uint64_t upto)
{
    uint64_t *segs;
    size_t n;
    if (wal_segments(dir, &segs, &n) != 0)
        return;
    for (size_t i = 0; i < n && segs[i] <= upto; i++) {
        char path[4096];
        wal_segment_path(dir, segs[i], path, sizeof path);
        if (unlink(path) != 0)
            log_warn("%s: unlink", path);
    }
    free(segs);
}
