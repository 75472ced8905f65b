/*
 * alerts.h -- the alert fan-out: a PUB socket, frames [topic][alert] with
 * topic "alert.<cluster>.<severity>", and the global alert sequence number.
 *
 * PUB never blocks: a subscriber that falls behind by more than the
 * high-water mark loses messages, which it can detect by a gap in seq (the
 * later rule-engine issue adds the snapshot to resynchronise).
 */
#ifndef CLUSTERMON_ALERTS_H
#define CLUSTERMON_ALERTS_H

#include <stdint.h>

#include "proto/proto.h"

typedef struct {
    void *sock;              /* owned: closed by alerts_close */
    uint64_t seq;            /* last sequence number published */
    msgpack_sbuffer buf;     /* reused encode buffer */
    uint64_t published;
    uint64_t send_errors;
    uint64_t by_severity[PROTO_SEV_COUNT];
} alerts_t;

/* Binds a PUB socket on endpoint. Returns 0, or -1 with the reason in err. */
int alerts_open(alerts_t *al, void *zctx, const char *endpoint, char *err, size_t errlen);

/* Gives a->seq the next sequence number, encodes and sends it. Returns 0 or
 * -1 (logged and counted; the alert is lost for subscribers, not for state). */
int alerts_publish(alerts_t *al, proto_alert_t *a);

void alerts_close(alerts_t *al);

#endif
