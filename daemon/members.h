/*
 * members.h -- membership over time: which firms left the registry, and
 * when, so the figures they reported while members are never lost.
 *
 * A firm removed from the registry file becomes a *former member*
 * (registry.h): its series stay in the aggregate and keep counting in its
 * cluster's figures for the periods it reported; new samples for it are
 * refused (unknown_firm, "left on DATE"). A firm put back in the file is a
 * member again and continues its own series (same id, same series).
 *
 * Durable in two places, so a restart at any moment (SIGKILL included)
 * knows every firm whose figures it replays:
 *  - the membership file, state_dir/members (members_save/members_load):
 *    every firm, member or former, with its cluster, chain, tier and the
 *    date a former member left. It is rewritten atomically (and fsynced) at
 *    start-up, before any batch is taken, and at every reload, and read
 *    before the snapshot and the WAL: so every batch in the WAL is of a
 *    firm it names, even one that left after the batch and before any
 *    snapshot. No WAL record is needed, and replay order does not matter;
 *  - the snapshot's "firms" section (members_pack/members_unpack), the same
 *    list: a lost or damaged membership file costs nothing the snapshot
 *    still has.
 * Firms are recorded by name (cluster and chain ids, tier name), so both
 * survive a config change; a former member whose cluster no longer exists
 * is dropped with its figures (logged), as a removed metric's are.
 */
#ifndef CLUSTERMON_MEMBERS_H
#define CLUSTERMON_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "daemon/config.h"
#include "daemon/registry.h"

struct server;

/* What a reload changed; see members_carry. */
typedef struct {
    size_t joined, rejoined, left, dropped;
} members_change_t;

/*
 * Reload, phase 2: adds to the new registry (reg, loaded from the file
 * against cfg) every firm of the running one (srv->reg) that the file no
 * longer lists, as a former member: those that had left keep their date,
 * those that were members get none yet (members_record sets it and records
 * the departure); one whose cluster cfg no longer has is dropped (counted).
 * A member of both stays known; a firm that joins or rejoins is not (yet).
 * Counts what changed into *ret. Call before building the new aggregate (it
 * must hold reg->nall firms).
 */
void members_carry(const struct server *srv, const config_t *cfg, registry_t *reg,
                   members_change_t *ret);

/*
 * After a reload's swap, and at start-up once the snapshot and the WAL are
 * read (before any batch is taken): former members whose date is not set
 * yet leave at now_ms, and the membership file is rewritten. Returns how many
 * firms joined (members the saved state did not know as members: firm_t.known
 * false) or left, or -1 if the file could not be written (logged; the next
 * snapshot still records the membership).
 */
int members_save(struct server *srv, int64_t now_ms);

/* At start-up, before the snapshot is loaded: adds the firms the membership
 * file names and the registry file no longer lists as former members (the
 * aggregate grows with them). No file: 0. A damaged one is logged and not
 * used (-1). */
int members_load(struct server *srv);

/* Snapshot: packs the "firms" section (an array, see members.c). */
void members_pack(const struct server *srv, msgpack_packer *pk);

/* Snapshot: checks (apply false) or applies the "firms" section; must run
 * before the series are restored. Returns 0 or -1 with the reason in err. */
int members_unpack(struct server *srv, const msgpack_object *o, bool apply, char *err,
                   size_t errlen);

/* Snapshot: packs the "firms_seen" section, when the daemon first had each
 * member firm in its registry (firm_t.first_seen_ms): an array of [firm id,
 * first seen ms]. */
void members_seen_pack(const registry_t *reg, msgpack_packer *pk);

/* Snapshot: checks (apply false) or applies what members_seen_pack wrote;
 * a firm that is no longer a member is skipped. Returns 0, or -1 with the
 * reason in err ("firms_seen: ..."). */
int members_seen_unpack(registry_t *reg, const msgpack_object *o, bool apply, char *err,
                        size_t errlen);

/* Writes "YYYY-MM-DD" (local date) of wall ms into buf. */
void members_format_date(int64_t ms, char *buf, size_t size);

#endif
