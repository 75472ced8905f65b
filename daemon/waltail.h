/*
 * waltail.h -- a reader that follows the daemon's own WAL (wal.h) from a
 * durable position, for forwarders: the province upstream (upstream.h) and
 * the Prometheus remote-write both send on what the daemon has journaled,
 * each at its own pace, and each must resume exactly where the far side
 * stopped acknowledging, across restarts and kills of either side.
 *
 * A position is (segment number, byte offset of the next record in that
 * segment). The reader hands out whole records whose magic, length and
 * CRC-32 are intact, in WAL order, crossing from a segment to the next when
 * the writer has rotated. A record not wholly written yet (the writer's
 * write(2) is under way, or the daemon died mid-write and has not cut the
 * torn tail yet) is "nothing more yet": the reader stays at its start and
 * reads it once it is complete. A torn record in a segment that has a
 * successor cannot be completed any more: it is an error naming the
 * segment and offset, as is a record whose magic or checksum is wrong.
 *
 * The committed position lives in a cursor file, replaced atomically
 * (proto/fileio.h): "waltail 1 <segment> <offset>\n", optionally followed by
 * one line of the caller's own (a note: what a forwarder must keep together
 * with the position, such as its stream's next seq). Without a cursor file
 * the reader starts at the oldest segment in the directory. The committed
 * segment is what WAL trimming must keep (server_wal_hold in server.h).
 *
 * Blocking file I/O (pread of a record, a small atomic rewrite on commit):
 * called from the daemon's loop like the WAL's own appends. Not thread-safe.
 */
#ifndef CLUSTERMON_WALTAIL_H
#define CLUSTERMON_WALTAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct waltail waltail_t;

/* A WAL position: the next record starts at offset bytes into segment. */
typedef struct {
    uint64_t segment;
    uint64_t offset;
} waltail_pos_t;

/* Opens a reader of the WAL in wal_dir at the position saved in
 * cursor_path (or at the oldest segment present if that file does not
 * exist). Returns 0 with *out set (caller owns it: waltail_close), or -1
 * with the reason in err (an unreadable or malformed cursor file). */
int waltail_open(waltail_t **out, const char *wal_dir, const char *cursor_path, char *err,
                 size_t errlen);

/* The next whole, checksummed record after the read position: 1 = *payload
 * and *len are set (the bytes are borrowed until the next call or close)
 * and the read position is after it; 0 = nothing more yet (not written, a
 * torn tail not completed, or beyond the limit); -1 = error (err names the
 * segment and offset; the position stays before the bad record). */
int waltail_next(waltail_t *t, const void **payload, size_t *len, char *err, size_t errlen);

/* The read position: after the last record handed out. */
waltail_pos_t waltail_tell(const waltail_t *t);

/* Moves the read position back to pos (a position waltail_tell returned
 * since the last commit, or the committed one): records after it are read
 * again. Used after a far side lost what it was sent. */
void waltail_seek(waltail_t *t, waltail_pos_t pos);

/* Remembers the read position, for waltail_commit. */
void waltail_mark(waltail_t *t);

/* Makes durable the position remembered by waltail_mark (if one was
 * remembered since the last commit) or else the read position. Returns 0,
 * or -1 with the reason in err (the committed position is then unchanged). */
int waltail_commit(waltail_t *t, char *err, size_t errlen);

/* Makes pos durable (a position waltail_tell returned). As waltail_commit. */
int waltail_commit_to(waltail_t *t, waltail_pos_t pos, char *err, size_t errlen);

/* As waltail_commit_to, with a note (one line, at most WALTAIL_NOTE_MAX
 * bytes, no '\n') kept in the same atomic write. */
#define WALTAIL_NOTE_MAX 200
int waltail_commit_note(waltail_t *t, waltail_pos_t pos, const char *note, char *err,
                        size_t errlen);

/* The note of the committed position ("" if none). Borrowed until the next
 * commit or close. */
const char *waltail_note(const waltail_t *t);

/* The committed position, and its segment: WAL trimming must keep that
 * segment and every later one. */
waltail_pos_t waltail_committed(const waltail_t *t);
uint64_t waltail_segment(const waltail_t *t);

/* Records ending after pos are not handed out (0 "nothing yet") until the
 * limit moves: the daemon sets it to what its WAL has fsynced, so nothing a
 * power cut could take back is forwarded. Without a call: no limit. */
void waltail_limit(waltail_t *t, waltail_pos_t pos);

/* Closes the reader and frees it (nothing is committed); NULL is a no-op. */
void waltail_close(waltail_t *t);

#endif
