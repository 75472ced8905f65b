/*
 * aggregate.h -- the in-memory figures: per firm and metric, what was
 * reported for each calendar period.
 *
 * Period metrics (revenue, profit, ...) are amounts kept in fixed point, in
 * thousandths of the unit (int64 "milli"), so sums are exact: 10^13 yuan is
 * 10^16 milli, far inside int64. A firm may report a month, a quarter or a
 * whole year; a re-sent value for the same firm, metric and period replaces
 * the earlier one (reports get restated). A period's total for one firm is
 * the most direct report there is: the year's own value if reported, else
 * the sum of its quarters, each the quarter's own value if reported, else
 * the sum of its reported months.
 *
 * Readings (point measurements) keep the latest value and a count.
 *
 * Cluster and chain totals are computed from the firm figures on demand (a
 * report walks a few thousand firms at most); ingest only writes here.
 * Storage grows only when a firm reports a new year, never per sample.
 */
#ifndef CLUSTERMON_AGGREGATE_H
#define CLUSTERMON_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "daemon/config.h"
#include "daemon/registry.h"
#include "proto/proto.h"

typedef struct {
    uint16_t year;
    uint16_t month_mask;  /* bit m-1: month m reported */
    uint8_t quarter_mask; /* bit q-1: quarter q reported */
    bool has_annual;
    bool any; /* anything at all arrived for this year */
    /* Running sums of the reported months of each quarter, kept by the
     * delta each month brings (a restated month adds new - old), so a
     * total is O(1) however often it is asked for: rules ask per sample.
     * Derived state: not in the snapshot, rebuilt when it is loaded. Kept
     * next to the masks, so a month's put touches fewer cache lines of the
     * record (ingest and replay wait on those misses). */
    int64_t month_sum[4];
    int64_t month[12];
    int64_t quarter[4];
    int64_t annual;
} agg_year_t;

typedef struct {
    agg_year_t *years; /* sorted by year */
    uint32_t nyears, cap;
    uint16_t first_year; /* years[0].year, kept here: a lookup then reads one record, not two */
    double last;         /* readings: latest value (by timestamp) */
    int64_t last_ts;
    uint64_t count; /* readings received */
} agg_series_t;

typedef struct {
    size_t nfirms, nmetrics;
    agg_series_t *series; /* [firm * nmetrics + metric] */
} agg_t;

/* Caller owns the result: agg_destroy. */
agg_t *agg_new(size_t nfirms, size_t nmetrics);
void agg_destroy(agg_t **agg);

/* Makes room for firms up to nfirms (a former member appended to the
 * registry, registry.h), with empty series; never shrinks. Series pointers
 * from before the call do not survive it; indexes do. */
void agg_grow(agg_t *agg, size_t nfirms);

/* Converts an amount to milli-units (round half away from zero). The value
 * must be finite with |v| <= PROTO_MAX_ABS_VALUE (the decoder guarantees it). */
int64_t agg_to_milli(double v);

/* Records a period amount (kind YEAR, QUARTER or MONTH), replacing any
 * earlier value for the same period. */
void agg_put_period(agg_t *agg, int firm, int metric, proto_period_t p, int64_t milli);

/* Records a reading that falls in local (year, month). */
void agg_put_reading(agg_t *agg, int firm, int metric, int year, int month, double v,
                     int64_t ts_ms);

/* A firm's total for period p (see above). Returns false if it reported
 * nothing for p (then *ret_milli is 0). */
bool agg_firm_total(const agg_t *agg, int firm, int metric, proto_period_t p, int64_t *ret_milli);

/* True if the firm sent anything for the given year. */
bool agg_firm_reported(const agg_t *agg, int firm, int year);

const agg_series_t *agg_series(const agg_t *agg, int firm, int metric);

/* The series' record for year, or NULL if nothing arrived for it. Borrowed
 * until the series next changes. O(log years): a binary search. */
const agg_year_t *agg_series_year(const agg_series_t *s, int year);

/* ---- durable state ----------------------------------------------------------- */

/* What agg_unpack left behind: series whose firm or metric is gone. */
typedef struct {
    uint64_t unknown_firms, unknown_metrics;
} agg_dropped_t;

/*
 * Writes every series that holds anything, for the snapshot's "series": an
 * array of [firm id, metric name, last, last_ts, count, [[year, month_mask,
 * quarter_mask, has_annual, any, annual, [12 months], [4 quarters]], ...]].
 * Firms are named by reg (members and former members: reg->nall covers
 * agg->nfirms), metrics by cfg; both borrowed for the call.
 */
void agg_pack(const agg_t *agg, const registry_t *reg, const config_t *cfg, msgpack_packer *pk);

/*
 * Checks (apply false) or loads (apply true) an array agg_pack wrote into agg
 * (sized for reg and cfg, series empty): checking first means malformed input
 * changes nothing. A series whose firm (member or former member) or metric
 * is no longer known is dropped and counted in *ret_dropped (may be NULL).
 * Returns 0, or -1 with the reason in err ("series: ...").
 */
int agg_unpack(agg_t *agg, const registry_t *reg, const config_t *cfg, const msgpack_object *o,
               bool apply, agg_dropped_t *ret_dropped, char *err, size_t errlen);

#endif
