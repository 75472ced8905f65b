/*
 * wal.h -- the write-ahead log: every accepted batch is appended here before
 * it is acknowledged.
 *
 * The log is a sequence of segment files "wal-<16 digits>.log" in the state
 * directory. A segment starts with a header (magic "CMWAL", format version);
 * then records: magic (4 bytes), payload length (4), CRC-32 of the payload
 * (4), payload (the batch exactly as it arrived on the wire). All integers
 * are little-endian. The per-record magic lets replay resynchronise after a
 * damaged record: everything intact before and after it is kept.
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
#include <uv.h>

#define WAL_FORMAT_VERSION 1
#define WAL_MAX_RECORD (8u << 20)

typedef enum { WAL_FSYNC_ALWAYS = 0, WAL_FSYNC_INTERVAL, WAL_FSYNC_NEVER } wal_fsync_t;

typedef struct wal wal_t;
typedef void (*wal_synced_cb)(wal_t *w, uint64_t synced_pos);

struct wal {
    uv_loop_t *loop;
    char *dir;
    uint64_t segment;        /* number of the open segment */
    int fd;                  /* open segment, -1 if none */
    uint64_t pos;            /* logical position: bytes appended since start-up */
    uint64_t synced;         /* logical position known durable */
    uint64_t seg_bytes;      /* size of the open segment */
    bool sync_running;
    uv_fs_t sync_req;
    uint64_t sync_target;    /* pos the running fsync covers */
    wal_synced_cb on_synced;
    void *data;
    /* figures for status */
    uint64_t appends, fsyncs, bytes_written;
    uint64_t fsync_ns_total, fsync_ns_max;
    uint64_t sync_started_ns;
};

/* Opens a new segment numbered segment in dir (which must exist). Returns 0
 * or -1 with the reason in err. on_synced runs on the loop after each fsync. */
int wal_open(wal_t *w, uv_loop_t *loop, const char *dir, uint64_t segment, wal_synced_cb on_synced,
             void *data, char *err, size_t errlen);

/* Appends one record. Returns the logical end position of the record (>0),
 * or 0 on failure (logged; the caller nacks the batch as internal). */
uint64_t wal_append(wal_t *w, const void *payload, size_t len);

/* Starts an fsync covering everything appended so far, unless one runs
 * already (then a follow-up starts when it ends). */
void wal_sync(wal_t *w);

/* Closes the open segment and opens the next one; returns the number of the
 * segment just closed, or -1 (err). Flushes nothing: callers sync first if
 * they need to. */
int64_t wal_rotate(wal_t *w, char *err, size_t errlen);

/* True if an fsync is still running (a close must wait for it). */
bool wal_busy(const wal_t *w);

/* Closes the segment (fsyncs it synchronously: called at shutdown only). */
void wal_close(wal_t *w);

/* ---- replay ---------------------------------------------------------------- */

/* Called with each intact record in order; return 0 to go on. */
typedef int (*wal_record_cb)(const void *payload, size_t len, void *data);

typedef struct {
    uint64_t records;        /* intact records replayed */
    uint64_t damaged;        /* damaged regions skipped or cut */
    uint64_t bytes_skipped;  /* bytes in them */
    uint64_t truncated;      /* bytes cut off the end of the last segment */
} wal_replay_stats_t;

/*
 * Replays segment files numbered > after, in order, calling cb per record.
 * Damage is logged (file, offset, reason) and counted, never fatal: a torn
 * tail of the newest segment is cut off (ftruncate) so appends continue
 * after intact data. Returns 0, or -1 with err if a segment cannot be read
 * or has another format version (start-up must stop then). *ret_last is the
 * highest segment number found (0 if none).
 */
int wal_replay(const char *dir, uint64_t after, wal_record_cb cb, void *data,
               wal_replay_stats_t *stats, uint64_t *ret_last, char *err, size_t errlen);

/* Removes segment files numbered <= upto. */
void wal_remove_upto(const char *dir, uint64_t upto);

/* Writes the path of segment n into buf. */
void wal_segment_path(const char *dir, uint64_t n, char *buf, size_t size);

#endif
