/*
 * query.h -- control commands that read figures (see control.h for the
 * handler contract): report, totals, clusters, cluster, firms, runtime, describe.
 * Every handler runs on the loop and walks the firms at most a few times.
 */
#ifndef CLUSTERMON_QUERY_H
#define CLUSTERMON_QUERY_H

#include "daemon/control.h"

/* firms --silent: no data for this many days by default */
#define QUERY_SILENT_DAYS 45

void query_report(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void query_totals(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
/* [year], [days] -> per cluster: firms, reporting, above-scale, revenue,
 * profit for the year, silent firms, alerts firing */
void query_clusters(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
/* id, [through YYYY-MM] -> per chain and tier: firms, reporting, above-scale,
 * year-to-date totals vs the same months last year */
void query_cluster(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
/* [cluster], [silent 0|1], [days], [as_of YYYY-MM-DD] -> firms and their newest data */
void query_firms(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
/* -> pid, sockets and peers, samples/s, loop lag, agents, systemd */
void query_runtime(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

/* -> protocol versions and limit, metrics (kind, unit), and, scoped to the
 * caller's key under CURVE: the clusters it may see, the firms it may report
 * for, the commands it may run and their arguments */
void query_describe(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

#endif
