/*
 * alerts.h -- the alert fan-out: a PUB socket, frames [topic][alert] with
 * topic "alert.<cluster>.<severity>", and the global alert sequence number.
 *
 * PUB never blocks: a subscriber that falls behind by more than the
 * high-water mark loses messages, which it detects by a gap in seq and
 * repairs with the control socket's "alerts" snapshot (the Clone pattern).
 *
 * The sequence number never goes back, across restarts too: it is written
 * (pwrite, 8 bytes) to state_dir/alert-seq after every publication and read
 * at start-up. Alerts are rare next to samples, so this costs nothing.
 */
#ifndef CLUSTERMON_ALERTS_H
#define CLUSTERMON_ALERTS_H

#include <stdint.h>

#include "proto/proto.h"

typedef struct {
    void *sock;              /* owned: closed by alerts_close */
    int seq_fd;              /* state_dir/alert-seq, -1 if none */
    uint64_t seq;            /* last sequence number published */
    msgpack_sbuffer buf;     /* reused encode buffer */
    uint64_t published;
    uint64_t send_errors;
    uint64_t by_severity[PROTO_SEV_COUNT];
} alerts_t;

/* Prepares al (no socket yet) and reads the last sequence number from
 * state_dir/alert-seq. Returns 0, or -1 with the reason in err. */
int alerts_init(alerts_t *al, const char *state_dir, char *err, size_t errlen);

/* Binds a PUB socket on endpoint with high-water mark hwm (messages queued
 * per subscriber). Returns 0, or -1 with the reason in err. */
int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, char *err, size_t errlen);

/* Gives a->seq the next sequence number, encodes and sends it. Returns 0 or
 * -1 (logged and counted; the alert is lost for subscribers, not for state). */
int alerts_publish(alerts_t *al, proto_alert_t *a);

/* Publishes a heartbeat carrying the last sequence number (from the cron,
 * once a second), so a subscriber that lost the latest alerts notices. */
void alerts_heartbeat(alerts_t *al, int64_t now_ms);

void alerts_close(alerts_t *al);

#endif
