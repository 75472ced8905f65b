/*
 * zap.h -- the ZeroMQ authentication handler (ZAP, RFC 27), inside the
 * event loop.
 *
 * With CURVE on, libzmq's I/O threads ask inproc://zeromq.zap.01 whether
 * each new connection's client key may connect; that REP socket lives here,
 * opened and driven by zsock like the others, so the answer is taken from
 * the same key table the sockets use afterwards (keys.h). Each socket carries a ZAP
 * domain naming it ("ingest", "alerts", "control"); a key is admitted if it
 * is known and one of its roles may use that socket. The reply's User-Id is
 * the key's Z85 text, which every message from the connection then carries.
 * It must be bound before any CURVE socket: without a handler, libzmq would
 * admit every key.
 */
#ifndef CLUSTERMON_ZAP_H
#define CLUSTERMON_ZAP_H

#include <stdint.h>

#include "daemon/log.h"
#include "daemon/zsock.h"

struct server;

#define ZAP_DOMAIN_INGEST "ingest"
#define ZAP_DOMAIN_ALERTS "alerts"
#define ZAP_DOMAIN_CONTROL "control"

typedef struct {
    struct server *srv;
    zsock_t zs; /* REP on inproc://zeromq.zap.01 */
    uint64_t admitted, refused, bad_requests;
    log_throttle_t log;
} zap_t;

/* Binds the handler's REP and starts answering. Returns 0 or -1 (err). */
int zap_start(zap_t *z, struct server *srv, char *err, size_t errlen);
/* Stops answering; the socket is closed once the loop has closed its
 * handles (zsock_close). Safe on a zap that never started. */
void zap_close(zap_t *z);

/* The roles (KEY_ROLE_*) that may connect to the socket of a ZAP domain. */
unsigned zap_domain_roles(const char *domain, size_t len);

#endif
