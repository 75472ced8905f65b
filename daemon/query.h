/*
 * query.h -- control commands that read figures (see control.h for the
 * handler contract): report, totals, clusters, cluster, firms, runtime, describe.
 * Every handler runs on the loop and walks the firms at most a few times.
 */
#ifndef CLUSTERMON_QUERY_H
#define CLUSTERMON_QUERY_H

#include "daemon/config.h"
#include "daemon/control.h"

/* firms --silent: no data for this many days by default */
#define QUERY_SILENT_DAYS 45

/*
 * The figures of one cluster or chain for one year. Former members count
 * only if they reported for the year (query.c, at the top), so firms less
 * former is the members now. __int128 (a GNU extension) because a sum of
 * many firm-years of milli-units can pass int64 even though no single
 * firm-year can.
 */
typedef struct {
    uint32_t firms;           /* members, and former members that reported */
    uint32_t former;          /* former members among firms */
    uint32_t reporting;       /* firms that reported revenue (the revenue metric) for the year */
    uint32_t above_scale;     /* firms whose revenue for the year is at or above the line */
    __int128 revenue, profit; /* profit: 0 without a profit metric */
} query_tally_t;

typedef struct {
    query_tally_t cluster;
    query_tally_t chains[CONFIG_MAX_CHAINS]; /* the cluster's nchains, in config order */
} query_cluster_tally_t;

struct server;

/* A named group of a cluster's firms (a designation) and its figures. */
typedef struct {
    char *id;
    query_tally_t t;
} query_group_t;

/*
 * One cluster for one year, every way the press release cuts it: the
 * cluster, each chain, the members on no chain (so the chain rows and this
 * one add up to the cluster), each tier, and each designation the
 * registry gives its firms (sorted by name; a firm with two counts in both).
 */
typedef struct {
    query_tally_t cluster, no_chain;
    query_tally_t chains[CONFIG_MAX_CHAINS];
    query_tally_t tiers[4]; /* tier_t order: leading, backbone, potential, member */
    query_group_t *designations;
    size_t ndesignations;
} query_breakdown_t;

/* Returns cfg->nclusters breakdowns for year, in config order; caller owns
 * the result: query_breakdown_free(b, cfg->nclusters). Reads srv only. */
query_breakdown_t *query_breakdown(const struct server *srv, int year);
void query_breakdown_free(query_breakdown_t *b, size_t n);

/* True if firm's revenue for year is at or above the config's above-scale
 * line: the one definition of "above scale" (report, clusters, cluster and
 * /metrics). */
bool query_firm_above_scale(const struct server *srv, int firm, int year);

/*
 * Tallies year for every cluster and chain in one walk over the firms
 * (members and former members). Returns cfg->nclusters entries, in config
 * order; caller owns the result (free). Reads srv only.
 */
query_cluster_tally_t *query_tally_clusters(const struct server *srv, int year);

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
