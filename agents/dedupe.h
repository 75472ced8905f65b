/*
 * dedupe.h -- which alert events a subscriber of an HA pair has delivered,
 * so that the copy the other daemon publishes is dropped.
 *
 * Both daemons of a pair are fed the same batches and publish the same
 * transitions, but each numbers its publications with its own per-cluster
 * seq and stamps them with its own clock. What is the same on both is the
 * alert's own numbering (PROTOCOL.md 4.3): `n`, its transition ordinal, and
 * `rn`, the reminder's number since that transition. The dedupe key of an
 * event is (id, state, n, rn); since a daemon publishes one alert's events
 * in order, it is enough to remember, per alert id, the highest (n, rn)
 * delivered: an event at or below it is a copy (or older than what was
 * delivered, which the subscriber must not deliver after the newer one
 * anyway). A grouped alert's n is a sum over its members, not an order, so
 * for group ids the last few keys are remembered instead.
 *
 * An alert without n (an older daemon) is never taken for a copy: both
 * copies are delivered, and dedupe_take() says so through *ret_unnumbered.
 */
#ifndef CLUSTERMON_AGENTS_DEDUPE_H
#define CLUSTERMON_AGENTS_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/proto.h"

#define DEDUPE_GROUP_RING 8

typedef struct {
    uint8_t state;
    uint64_t n;
} dedupe_key_t;

typedef struct {
    char *id;   /* owned */
    uint64_t n; /* the highest (n, rn) delivered */
    uint32_t rn;
    dedupe_key_t ring[DEDUPE_GROUP_RING]; /* grouped alerts: the last keys delivered */
    unsigned nring;
} dedupe_entry_t;

typedef struct {
    dedupe_entry_t *items; /* owned, sorted by id */
    size_t n, cap;
    uint64_t dropped; /* copies dropped */
} dedupe_t;

void dedupe_init(dedupe_t *d);
void dedupe_free(dedupe_t *d);

/*
 * Whether a is an event not delivered yet; if so it is recorded as
 * delivered (the caller delivers it). *ret_unnumbered is set when a has
 * no n (an older daemon: never a copy).
 */
bool dedupe_take(dedupe_t *d, const proto_alert_t *a, bool *ret_unnumbered);

/* {id: [n, rn], ...}: what the state file keeps. Caller owns the result. */
json_t *dedupe_json(const dedupe_t *d);

/* Replaces the record with the state file's; 0, or -1 with the reason. */
int dedupe_load(dedupe_t *d, json_t *j, char *err, size_t errlen);

#endif
