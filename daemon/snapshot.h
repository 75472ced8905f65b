/*
 * snapshot.h -- periodic, atomic snapshots of the daemon's state: the
 * aggregate, the per-agent dedup table, rule states, the alert sequence
 * number and the lifetime counters.
 *
 * A snapshot "snap-<16 digits>.snap" covers every WAL segment numbered up to
 * and including its number. File: magic "CMSNAP\0\0", format version (u32
 * LE), CRC-32 of the payload (u32 LE), payload length (u64 LE), payload (one
 * MessagePack map, see snapshot.c). Firms, metrics and rules are stored by
 * name, so a snapshot survives a registry or config change (what no longer
 * exists is reported and dropped).
 *
 * Writing: the state is serialised on the loop (memory only, fast); the file
 * is replaced atomically (proto/fileio.h: a temp file, fsynced, renamed and
 * the directory fsynced) on libuv's thread pool. Only then are older snapshots and the WAL segments
 * that the *previous* snapshot covers removed: the previous snapshot plus
 * the WAL after it stays a complete fallback if the newest one is damaged.
 */
#ifndef CLUSTERMON_SNAPSHOT_H
#define CLUSTERMON_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <msgpack.h>

#define SNAPSHOT_FORMAT_VERSION 1

struct server;

typedef struct {
    struct server *srv;
    uv_work_t work;
    bool running;
    msgpack_sbuffer buf; /* serialised state handed to the worker */
    uint64_t segment;    /* WAL segments <= this are covered */
    int result;          /* worker's errno, 0 = ok */
    char path[4096];
    char err[4352]; /* worker's "PATH: step: reason" when result != 0 */
    uint64_t written, failed;
    int64_t last_ms; /* when the last one finished (loop time) */
    uint64_t last_bytes;
    uint64_t last_segment; /* the newest durable snapshot's segment, 0 = none */
} snapshot_t;

/* What snapshot_load used, for the start-up log line and status. */
typedef struct {
    uint64_t segment;   /* WAL segments <= this are in it; 0 = none used */
    uint64_t bytes;     /* its file size */
    unsigned ndamaged;  /* newer snapshots that could not be used */
    char damaged[1024]; /* "snapshot PATH damaged (why); ..." or "" */
} snapshot_loaded_t;

/*
 * Loads the newest usable snapshot in the state directory into srv (whose
 * aggregate, rules and ingest tables must be initialised and empty). A
 * snapshot that is damaged, or whose header gives another format version
 * (damage, or a newer daemon's file), is not used; the one before it is,
 * if the WAL segments after it (segs, ascending, nsegs of them) are all
 * there, or else no snapshot if the WAL is whole from segment 1: either way
 * the totals are exact. The unusable ones are renamed *.damaged (out of the
 * rotation, kept for a post-mortem). Returns 0, or -1 with err when no such
 * start exists: nothing is changed then, and err says which files are
 * damaged and how to accept the loss without discarding good data.
 */
int snapshot_load(struct server *srv, const uint64_t *segs, size_t nsegs, snapshot_loaded_t *ret,
                  char *err, size_t errlen);

/* Serialises the state now, covering WAL segments <= segment, and starts
 * writing it off the loop. Returns 0, or -1 if one is still being written
 * or the write could not be queued (counted in failed). A write that fails
 * is counted in failed; one that fails for want of space marks the WAL full
 * (wal.h), which starts the disk-full recovery. */
int snapshot_start(snapshot_t *s, struct server *srv, uint64_t segment);

/* The same, written synchronously on the calling thread: for the snapshot
 * of a clean stop, once the loop has run out (nothing else is writing).
 * Returns 0, or -1 (logged and counted in failed). */
int snapshot_write_now(snapshot_t *s, struct server *srv, uint64_t segment);

void snapshot_free(snapshot_t *s);

#endif
