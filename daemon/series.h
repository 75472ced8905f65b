/*
 * series.h -- figures over time for the officials' questions: one period
 * metric of a scope (a cluster, narrowed to a chain, a tier or a
 * designation; or one firm) month by month, quarter by quarter or year by
 * year, with coverage (firms reported / members) per point and optionally
 * the same point a year before; the firms of a scope ranked by growth with
 * each one's share of the scope's growth gap (the "drag firms"); and a
 * metric's total over a range of months.
 *
 * The computations fill plain structs (no msgpack) so the control socket
 * (series_pack_*, for clustermonctl) and the HTTP API render the same
 * figures. Everything reads the server's registry and aggregate on the loop;
 * nothing is kept between calls.
 *
 * Members per point follow query.c: current members, plus former members
 * for the points they reported for. A point's total sums each firm's most
 * direct report for the period (aggregate.h), so a quarter reported as a
 * quarter counts once, whether or not its months are in too.
 */
#ifndef CLUSTERMON_SERIES_H
#define CLUSTERMON_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/proto.h"

struct server;

#define SERIES_MAX_POINTS 1200 /* 100 years of months */

/* No chain: the members on no key chain ("other members"). */
#define SERIES_NO_CHAIN (-2)

/* Which firms, which metric, which months. */
typedef struct {
    int metric;             /* a period metric's index */
    int cluster;            /* -1 with a firm */
    int chain;              /* -1: every chain; SERIES_NO_CHAIN: none */
    int tier;               /* tier_t, -1: every tier */
    char designation[64];   /* "": any */
    char city[64];          /* "": any; else the registry's city column (a province) */
    int firm;               /* >= 0: that firm alone */
    int from, to;           /* months, year * 12 + month - 1, inclusive */
    proto_period_kind_t by; /* MONTH, QUARTER or YEAR */
} series_scope_t;

typedef struct {
    proto_period_t period;
    __int128 total;      /* milli-units */
    uint32_t reporting;  /* firms that reported the metric for the period */
    uint32_t members;    /* firms in scope for the period */
    __int128 prev_total; /* the same period a year before (yoy) */
    uint32_t prev_reporting;
} series_point_t;

/*
 * Reads a scope from a control request's arguments: metric, cluster |
 * firm, [chain], [tier], [designation], from, to, [by]. from and to are
 * periods (YYYY, YYYY-Qn or YYYY-MM): the range is the first month of from
 * through the last month of to, widened to whole quarters or years for
 * by=quarter / year. Returns 0, or -1 with "ARG: reason" in err.
 */
int series_scope_parse(const struct server *srv, const proto_ctl_request_t *req,
                       series_scope_t *ret, char *err, size_t errlen);

/* True if firm f is in scope s (membership for a point aside). */
bool series_in_scope(const struct server *srv, const series_scope_t *s, int f);

/* The points of s, oldest first; caller frees. *ret_n: how many. With
 * yoy, prev_total and prev_reporting are filled too. */
series_point_t *series_compute(const struct server *srv, const series_scope_t *s, bool yoy,
                               size_t *ret_n);

/* One firm's line in a ranking. */
typedef struct {
    int firm;
    __int128 cur, prev;     /* the range, and the same months a year before */
    bool has_cur, has_prev; /* reported anything in each */
    double growth_pct;      /* NaN without a base */
    double contribution_pp; /* its share of the scope's growth, in points */
    double gap_pp;          /* its share of the scope's gap to the target, in points */
} series_rank_t;

typedef struct {
    __int128 cur, prev;
    double growth_pct, target_pct, gap_pp; /* NaN where undefined */
    const char *target_rule;               /* the growth rule the target is from, or NULL */
    series_rank_t *firms;                  /* caller frees (series_ranking_free) */
    size_t nfirms;
} series_ranking_t;

/*
 * Ranks the firms of s over its whole range against the same months a year
 * before: growth, contribution to the scope's growth in points
 * ((cur - prev) / scope prev), and share of the gap to target_pct (NaN: a
 * growth rule's target on the same cluster and chain, else 0): (prev *
 * target - (cur - prev)) / scope prev. The shares add up to the scope's
 * gap. Sorted by gap share, largest drag first. Returns 0.
 */
int series_ranking(const struct server *srv, const series_scope_t *s, double target_pct,
                   series_ranking_t *ret);
void series_ranking_free(series_ranking_t *r);

/* A total of metric for one firm over months [from, to]: the range cut into
 * whole years, then whole quarters, then months, each the firm's most direct
 * report. Returns false if it reported none of them. */
bool series_firm_range(const struct server *srv, int firm, int metric, int from, int to,
                       __int128 *ret);

/* Parses "P" or "P..P" (periods) into months [from, to]. Returns 0 or -1. */
int series_range_parse(const char *s, size_t len, int *ret_from, int *ret_to);
/* Writes "2024-01..2024-06" (or "2024-03" for one month) for [from, to]. */
void series_range_format(int from, int to, char *buf, size_t size);

/* Decimal text of milli-units: "-1234.500" (always three decimals). */
void series_milli_str(__int128 v, char *buf, size_t size);

/* Control handlers (control.h contract), PROTOCOL.md 4.7. */
void series_cmd_series(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);
void series_cmd_ranking(struct server *srv, msgpack_packer *pk, const proto_ctl_request_t *req);

#endif
