/*
 * silences.h -- operator silences: "don't publish rule R for cluster C (and
 * firm F) for the next 2 h, because ...". Silenced alerts are still tracked;
 * only their publication is suppressed. Silences expire by themselves.
 *
 * Durable when they change: with a journal hook set (the server's WAL), an
 * add, a removal and an expiry are each written as a RECORD_SILENCE record
 * before they take effect, and the snapshot carries the whole set
 * (silences_pack), so a restart -- clean or SIGKILL -- finds exactly the
 * silences that were in force, with their ids, and never reuses an id.
 */
#ifndef CLUSTERMON_SILENCES_H
#define CLUSTERMON_SILENCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "daemon/record.h"

typedef struct {
    uint64_t id;
    char *rule;    /* rule id */
    char *cluster; /* cluster id */
    char *firm;    /* NULL = every firm (and the cluster-level alerts) */
    int64_t created_ms, until_ms;
    char *reason;
} silence_t;

typedef struct {
    silence_t *items;
    size_t n, cap;
    uint64_t next_id;
    record_journal_fn journal; /* NULL: changes are not journaled (tests, before recovery) */
    void *journal_data;
    uint64_t
        journal_failed; /* expiries the journal could not take (they replay as expired anyway) */
} silences_t;

void silences_init(silences_t *s);
void silences_free(silences_t *s);

/* Adds one (strings copied) and journals it; returns its id, or 0 if the
 * journal could not take the record (then nothing was added). */
uint64_t silences_add(silences_t *s, const char *rule, const char *cluster, const char *firm,
                      int64_t created_ms, int64_t until_ms, const char *reason);
/* Removes by id and journals it; returns 0, -1 if there is none, or -2 if
 * the journal could not take the record (then nothing was removed). */
int silences_remove(silences_t *s, uint64_t id);
/* Drops expired silences (journaled as removals); returns how many. */
size_t silences_expire(silences_t *s, int64_t now_ms);
/* True if a live silence covers (rule, cluster, firm); firm may be NULL. */
bool silences_match(const silences_t *s, const char *rule, const char *cluster, const char *firm,
                    int64_t now_ms);

/* ---- durable state ----------------------------------------------------------- */

/* Writes the set for the snapshot: {"next_id": N, "items": [[id, rule,
 * cluster, firm|nil, created_ms, until_ms, reason], ...]}. */
void silences_pack(const silences_t *s, msgpack_packer *pk);

/* Checks (apply false) or loads (apply true) what silences_pack wrote, or
 * the bare items array of an older daemon's snapshot, into s (which should
 * be empty). Returns 0, or -1 with the reason in err ("silences: ..."):
 * checking first means a malformed set changes nothing. Nothing is journaled. */
int silences_unpack(silences_t *s, const msgpack_object *o, bool apply, char *err, size_t errlen);

/* Applies one RECORD_SILENCE payload (tag byte included) at WAL replay:
 * idempotent (an add of a known id replaces it, a removal of an unknown one
 * does nothing). Returns 0, or -1 with the reason in err (s unchanged).
 * Nothing is journaled. */
int silences_replay(silences_t *s, const void *payload, size_t len, char *err, size_t errlen);

#endif
