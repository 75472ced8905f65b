/*
 * record.h -- the kinds of WAL record, in one place. The WAL (wal.h) frames
 * and checksums opaque payloads; the first byte of a payload says which
 * module wrote it and so which one replays it (server.c's replay callback
 * dispatches on it). Each module encodes and decodes its own records.
 *
 * A payload that starts with a MessagePack map (0x80..0x8f, 0xde, 0xdf) is a
 * protocol-1 batch of an older daemon; no tag here may collide with those.
 */
#ifndef CLUSTERMON_RECORD_H
#define CLUSTERMON_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RECORD_BATCH 0x01   /* ingest: an applied batch (ingest.h) */
#define RECORD_SETTLE 0x02  /* ingest: a seq refused for good (ingest.h) */
#define RECORD_ALERT 0x03   /* alertbook: one alert's state after a change (alertbook.h) */
#define RECORD_SILENCE 0x04 /* silences: one added or removed (silences.h) */
#define RECORD_PARTIAL 0x05 /* ingest: a batch applied but for its refused samples (ingest.h) */

/*
 * How a module journals a record without knowing the WAL: the server hands
 * it one of these. Returns the record's WAL position (> 0) once the record
 * is written (to the page cache at least: a killed process loses nothing),
 * or 0 if it could not be (disk full). payload is borrowed for the call.
 */
typedef uint64_t (*record_journal_fn)(void *data, const void *payload, size_t len);

/*
 * The same for n records at once (one write for all: a batch that moves
 * many alerts journals them together), all or nothing: returns the last
 * record's WAL position (> 0), or 0 if none of them was written. Each
 * payloads[i] is borrowed for the call.
 */
typedef uint64_t (*record_journal_many_fn)(void *data, const struct iovec *payloads, size_t n);

#endif
