/*
 * wal.h -- the write-ahead log: every accepted batch is appended here before
 * it is acknowledged.
 *
 * The log is a sequence of segment files "wal-<16 digits>.log" in the state
 * directory, numbered from 1 without gaps. A segment starts with a 16-byte
 * header: magic "CMWAL\0\0\0", format version (4 bytes), CRC-32 of those
 * first 12 bytes (4; 0 in segments written before the check existed: then
 * unchecked); then records: magic (4 bytes), payload length (4), CRC-32 of
 * the payload (4), payload (the batch exactly as it arrived on the wire). All
 * integers are little-endian. The per-record magic lets replay resynchronise
 * after a damaged record, and after a damaged segment header: everything
 * intact before and after it is kept. The header check tells a flipped byte
 * (damage: read on) from a segment of another format version (refused).
 *
 * Disk full: a failed append is cut back off the segment (ftruncate to the
 * last good end), so no half record is left for replay to report as lost.
 * A "reserve" file of preallocated space in the state directory is what lets
 * the daemon climb out: when an append, a rotation or a snapshot meets
 * ENOSPC the WAL is marked full and refuses appends (ingest nacks busy);
 * server.c's cron then releases the reserve, snapshots twice (so the WAL the
 * previous snapshot needed can go) and trims, and resumes once the reserve
 * could be allocated again. Appends stay refused until then, so freed space
 * is not eaten by the WAL before the snapshot that trims it.
 *
 * Appends are write(2)s into the page cache (fast, so done on the loop);
 * fsync runs on libuv's thread pool, never on the loop. With policy
 * `always`, callers wait for wal_sync's callback before acking; while one
 * fsync is running, later appends queue up and share the next one (group
 * commit).
 */
#ifndef CLUSTERMON_WAL_H
#define CLUSTERMON_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define WAL_FORMAT_VERSION 1
/* The framing (see above), for readers of the files (waltail.h). */
#define WAL_SEG_MAGIC "CMWAL\0\0\0"
#define WAL_SEG_HEADER 16
#define WAL_REC_MAGIC 0x314c4157u /* "WAL1" little-endian */
#define WAL_REC_HEADER 12
#define WAL_MAX_RECORD (8u << 20)
/* The reserve is at least this big (more with a big state: see server.c). */
#define WAL_RESERVE_MIN (1u << 20)

typedef enum { WAL_FSYNC_ALWAYS = 0, WAL_FSYNC_INTERVAL, WAL_FSYNC_NEVER } wal_fsync_t;

typedef struct wal wal_t;
typedef void (*wal_synced_cb)(wal_t *w, uint64_t synced_pos);

struct wal {
    uv_loop_t *loop;
    char *dir;
    uint64_t segment;   /* number of the open segment */
    int fd;             /* open segment, -1 if none */
    uint64_t pos;       /* logical position: bytes appended since start-up */
    uint64_t synced;    /* logical position known durable */
    uint64_t seg_bytes; /* size of the open segment */
    bool sync_running;
    uv_fs_t sync_req;
    uint64_t sync_target; /* pos the running fsync covers */
    wal_synced_cb on_synced;
    void *data;
    /* figures for status */
    uint64_t appends, fsyncs, bytes_written;
    uint64_t fsync_ns_total, fsync_ns_max;
    uint64_t sync_started_ns;
    /* disk full (see above) */
    bool full;              /* appends refused until the reserve is back */
    uint64_t append_failed; /* appends that did not journal their record */
    uint64_t reserve_bytes; /* size of the reserve file, 0 = none */
    /* wal_append_many's framing buffer, owned, reused from call to call */
    unsigned char *group;
    size_t group_cap;
    /* group writes (wal_group_begin): records staged, written at once */
    uint64_t written;     /* logical position in the file (<= pos) */
    bool grouping;        /* appends are staged */
    unsigned char *stage; /* owned */
    size_t stage_len, stage_cap;
    uint64_t stage_n;      /* records staged */
    uint64_t groups;       /* group writes made */
    uint64_t group_failed; /* group writes that failed (retried) */
};

/* Opens a new segment numbered segment in dir (which must exist). If the disk
 * is too full for its header, a reserve left by the previous run is released
 * to make room and the WAL starts full (see above). Returns 0 or -1 with the
 * reason in err. on_synced runs on the loop after each fsync. */
int wal_open(wal_t *w, uv_loop_t *loop, const char *dir, uint64_t segment, wal_synced_cb on_synced,
             void *data, char *err, size_t errlen);

/* Appends one record. Returns the logical end position of the record (>0),
 * or 0 on failure (counted in append_failed; the caller nacks the batch as
 * busy). A failed write is cut back off the segment; ENOSPC, EDQUOT or EFBIG
 * (or a cut that failed) mark the WAL full, and every later append fails
 * without writing until w->full is cleared. */
uint64_t wal_append(wal_t *w, const void *payload, size_t len);

/* Appends n records (payloads[i], each borrowed for the call) with one
 * write(2), all or nothing: on failure none of them is in the segment
 * (the cut and the full marking as for wal_append; all n are counted in
 * append_failed). Returns the logical end position of the last record (>0),
 * w->pos if n is 0, or 0 on failure. Called on the loop. */
uint64_t wal_append_many(wal_t *w, const struct iovec *payloads, size_t n);

/*
 * Group writes: between wal_group_begin() and wal_group_flush(), appends
 * frame their records into a buffer and return their logical end positions
 * as usual; the flush writes them with one write(2). Whoever acts on an
 * append made meanwhile (an ack, a published alert) holds the act until
 * wal->written has passed its position (ingest.c, alerts.c). A failed
 * flush cuts what it wrote back off the segment and keeps the group staged:
 * its records were applied already, so they cannot be dropped; the next
 * flush (or direct append, or rotation: none may overtake it) tries again.
 * Returns 0, or -1 with the group still staged.
 */
static inline void wal_group_begin(wal_t *w)
{
    w->grouping = true;
}
int wal_group_flush(wal_t *w);
/* A group is staged and not written (a flush failed, or it is open). */
static inline bool wal_group_pending(const wal_t *w)
{
    return w->stage_len > 0;
}

/* Starts an fsync covering everything appended so far, unless one runs
 * already (then a follow-up starts when it ends). */
void wal_sync(wal_t *w);

/* Closes the open segment and opens the next one; returns the number of the
 * segment just closed, or -1 (err). Flushes nothing: callers sync first if
 * they need to. */
int64_t wal_rotate(wal_t *w, char *err, size_t errlen);

/* Makes the reserve file (state dir/"reserve") hold bytes of allocated space
 * (posix_fallocate): grows it when smaller, shrinks it when over twice that.
 * Returns 0, or -1 with the reason in err (a reserve that could not grow is
 * left as it was; one that could not be created is removed). */
int wal_reserve_set(wal_t *w, uint64_t bytes, char *err, size_t errlen);

/* Removes the reserve file, freeing its space for a snapshot and a segment. */
void wal_reserve_release(wal_t *w);

/* True if an fsync is still running (a close must wait for it). */
bool wal_busy(const wal_t *w);

/* Closes the segment (fsyncs it synchronously: called at shutdown only). */
void wal_close(wal_t *w);

/* ---- replay ---------------------------------------------------------------- */

/* Called with each intact record in order; return 0 to go on. */
typedef int (*wal_record_cb)(const void *payload, size_t len, void *data);

typedef struct {
    uint64_t records;         /* intact records replayed */
    uint64_t damaged;         /* damaged regions skipped or cut */
    uint64_t bytes_skipped;   /* bytes in them */
    uint64_t truncated;       /* bytes cut off the end of the last segment */
    uint64_t headers_damaged; /* segments read on despite a damaged header */
    uint64_t missing;         /* segment numbers absent from the sequence */
    uint64_t first, last;     /* segments replayed (0, 0 if none) */
} wal_replay_stats_t;

/*
 * Replays segment files numbered > after, in order, calling cb per record.
 * Damage is logged (file, offset, reason) and counted, never fatal: a
 * damaged segment header is read past (its records found by their magic), a
 * torn tail of the newest segment is cut off (ftruncate) so appends continue
 * after intact data, and missing segment numbers are reported as lost.
 * Returns 0, or -1 with err if a segment cannot be read or has another
 * format version (its header intact: start-up must stop then). *ret_last is
 * the highest segment number left in dir (0 if none).
 */
int wal_replay(const char *dir, uint64_t after, wal_record_cb cb, void *data,
               wal_replay_stats_t *stats, uint64_t *ret_last, char *err, size_t errlen);

/* Lists the segment numbers in dir, ascending. Returns 0 (caller frees
 * *ret) or -1 (errno). */
int wal_segments(const char *dir, uint64_t **ret, size_t *ret_n);

/* The first segment number in after+1 .. segs[n-1] that is not in segs
 * (sorted ascending), or 0 if none is missing: a snapshot covering after,
 * plus these segments, is then the complete state. */
uint64_t wal_first_gap(const uint64_t *segs, size_t n, uint64_t after);

/* ---- holders ------------------------------------------------------------- */

/* Forwarders that read the WAL after the daemon applied it (waltail.h) each
 * hold the segment their committed position is in: trimming after a snapshot
 * keeps it and every later one, whatever the snapshot covers. A holder is a
 * name (borrowed: a string literal or one that outlives the list) and a
 * segment. */
#define WAL_HOLDS_MAX 8
typedef struct {
    const char *name[WAL_HOLDS_MAX];
    uint64_t segment[WAL_HOLDS_MAX];
    size_t n;
} wal_holds_t;

/* Sets name's held segment (0 releases it). Returns 0, or -1 if the list is
 * full (WAL_HOLDS_MAX holders: a programming error). */
int wal_holds_set(wal_holds_t *h, const char *name, uint64_t segment);

/* How far trimming may go: upto (the snapshot's segment) lowered to below the
 * lowest held segment. 0 = remove nothing. */
uint64_t wal_holds_trim_upto(const wal_holds_t *h, uint64_t upto);

/* Removes segment files numbered <= upto. */
void wal_remove_upto(const char *dir, uint64_t upto);

/* Writes the path of segment n into buf. */
void wal_segment_path(const char *dir, uint64_t n, char *buf, size_t size);

#endif
