/*
 * snapmerge.h -- one `alerts` snapshot out of several cities' snapshots, for
 * clustermon-relay's control endpoint.
 *
 * A subscriber following several cities through a relay keeps one Clone
 * copy (agents/clone.h) of all of them, so it needs one snapshot current to
 * every cluster it hears of: the relay asks each city's control endpoint for
 * its `alerts` snapshot and answers with their union. That is exact only if
 * a cluster id names the same cluster everywhere it appears, so a cluster
 * listed by two cities is an error, never a silent overwrite: the two
 * clusters' seqs would interleave on the relay's stream and every
 * subscriber would see false gaps (and miss real ones). A cluster outside
 * the relay's declared scope is an error too: the relay admitted its
 * subscribers for that scope only (agents/relayacl.h).
 *
 * Pure: no sockets, no logging; tested by tests/check_snapmerge.c.
 */
#ifndef CLUSTERMON_SNAPMERGE_H
#define CLUSTERMON_SNAPMERGE_H

#include <stddef.h>

#include <msgpack.h>

/*
 * bodies[i] is the body of city cities[i]'s ok `alerts` reply: a map with
 * "seqs" (map cluster -> uint), "alerts" (array of bin or nil) and
 * optionally "acks" (array). scope[0..nscope) is the relay's set of clusters
 * (nscope 0: any). On success packs into pk a whole ok ctl_reply whose body
 * is {"acks": [...], "seqs": {...}, "alerts": [...]}, every city's entries in
 * city order, and returns 0. On error packs nothing and returns -1 with
 * the reason (naming the city and cluster) in err.
 */
int snapmerge_pack(const msgpack_object *bodies, const char *const *cities, size_t n,
                   const char *const *scope, size_t nscope, msgpack_packer *pk, char *err,
                   size_t errlen);

#endif
