/*
 * query.h -- control commands that read figures (see control.h for the
 * handler contract): report, totals.
 */
#ifndef CLUSTERMON_QUERY_H
#define CLUSTERMON_QUERY_H

#include "daemon/control.h"

void query_report(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void query_totals(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

#endif
