/*
 * seed.h -- serving a re-seed: the control commands through which the
 * other daemon of an HA pair, its disk lost, gets a consistent copy of this
 * one's state (`clustermonctl reseed`, README "HA pair").
 *
 * A consistent copy is a snapshot plus every WAL segment after it: the
 * snapshot covers the segments up to its number, and replaying the ones
 * after it gives everything applied since, to the last record (the newest
 * segment is still being appended to: a copy may end in a torn record,
 * which recovery cuts off as after a crash). So the client asks for a
 * snapshot (seed_snapshot: the WAL rolls over to a new segment and the
 * state is written off the loop), waits until its file is listed
 * (seed_files), then reads the snapshot and the segments after it, chunk by
 * chunk (seed_read). Nothing on this side stops or waits meanwhile; the
 * agents' spools give the copy whatever arrives after it.
 *
 * Only files of the state directory by their fixed names can be read
 * (snap-N.snap, wal-N.log, alert-seqs, history): a name is checked, never
 * joined to the directory as it comes. Admin keys only (it is the whole
 * state). Everything runs on the loop; a chunk is at most SEED_CHUNK bytes,
 * read with one pread.
 */
#ifndef CLUSTERMON_SEED_H
#define CLUSTERMON_SEED_H

#include <msgpack.h>

#include "proto/proto.h"

#define SEED_CHUNK (256 * 1024)

struct server;

/* seed_snapshot: {"snapshot": N}: snap-N.snap is being written. */
void seed_cmd_snapshot(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

/* seed_files: {"state_dir": str, "files": [{"name": str, "size": uint}, ...]}. */
void seed_cmd_files(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

/* seed_read (name, offset): {"size": uint (the file's now), "data": bin (<= SEED_CHUNK)}. */
void seed_cmd_read(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

/* Whether name is one a re-seed may read. */
bool seed_name_ok(const char *name);

#endif
