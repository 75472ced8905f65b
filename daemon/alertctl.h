/*
 * alertctl.h -- control commands on alerts and silences (see control.h for
 * the handler contract):
 *   alerts                      -> {"seqs": {cluster: N}, "alerts": [bin, ...]}:
 *                                  every firing or flapping alert, each
 *                                  encoded exactly as on the PUB socket, and
 *                                  each cluster's sequence number they are
 *                                  current to (a subscriber's snapshot: the
 *                                  Clone pattern); with CURVE only the
 *                                  clusters the caller's key may see
 *   silence_add rule cluster [firm] for reason  -> {"id": N, "until_ms": T}
 *   silence_list                -> [{"id", "rule", "cluster", "firm", "until_ms", "reason", ...}]
 *   silence_rm id               -> {"id": N}
 */
#ifndef CLUSTERMON_ALERTCTL_H
#define CLUSTERMON_ALERTCTL_H

#include "daemon/control.h"

void alertctl_alerts(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_add(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_list(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void alertctl_silence_rm(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

#endif
