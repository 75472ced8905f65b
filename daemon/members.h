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
 *  - the snapshot's "firms" section (members_pack/members_unpack): every
 *    firm, member or former, with its cluster, chain, tier and the date a
 *    former member left;
 *  - a WAL record (tag MEMBERS_REC) appended whenever membership changes: at
 *    a reload, and at start-up when the registry file changed while the
 *    daemon was down (or a firm is new to the state). A "joined" entry
 *    precedes every batch of that firm in the WAL, so replay can resolve a
 *    batch of a firm that later left even when no snapshot names it.
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

/* WAL record tag (after ingest.h's 0x01 batch and 0x02 settle):
 * [tag][MessagePack map {"ms": int, "joined": [firm...], "left": [firm...]}]
 * where firm = [id, name, cluster, chain|nil, tier, designations]. */
#define MEMBERS_REC 0x05

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
 * After a reload's swap or at the end of start-up recovery: appends one
 * MEMBERS_REC record naming the firms that joined (members the durable state
 * does not know as members: firm_t.known false) and those that left (former
 * members whose date is not set yet: they leave at now_ms), if any, and
 * starts an fsync; then marks every firm known. Returns the number of firms
 * it named, or -1 if the WAL refused the record (logged; the next snapshot
 * still holds the membership).
 */
int members_record(struct server *srv, int64_t now_ms);

/* Replays one MEMBERS_REC record at start-up (srv->reg is the file's
 * registry, plus the former members known so far; the aggregate grows with
 * it). A malformed record is logged and skipped. */
void members_replay(struct server *srv, const void *payload, size_t len);

/* Snapshot: packs the "firms" section (an array, see members.c). */
void members_pack(const struct server *srv, msgpack_packer *pk);

/* Snapshot: checks (apply false) or applies the "firms" section; must run
 * before the series are restored. Returns 0 or -1 with the reason in err. */
int members_unpack(struct server *srv, const msgpack_object *o, bool apply, char *err,
                   size_t errlen);

/* Writes "YYYY-MM-DD" (local date) of wall ms into buf. */
void members_format_date(int64_t ms, char *buf, size_t size);

#endif
