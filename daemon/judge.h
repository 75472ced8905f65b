/*
 * judge.h -- what the daemon refuses in a sample, one sample at a time.
 *
 * Ingest asks the judge about every sample of a batch before anything is
 * applied: is the firm in the registry (and still a member), may the
 * connection's key report for it, is the metric configured, does the period
 * fit the metric's kind -- and, since a wrong figure acked without a word is
 * worse than a refusal, is the figure plausible: no period after the current
 * month (plus daemon.future_slack_days), no value outside the metric's
 * min/max, no timestamp before daemon.ts_floor (Unix seconds read as
 * milliseconds land in January 1970; the reason says so). Each refusal has a
 * kind, counted for /metrics and status, and a reason naming the sample.
 *
 * It lives apart from ingest.c so that the rules about data are in one place
 * that the unit tests drive without sockets, and so that the partial answers
 * (PROTOCOL.md 2, "partial") and checks ("check" messages) share one verdict
 * with atomic batches. Pure apart from the counters: the caller passes the
 * clock.
 */
#ifndef CLUSTERMON_JUDGE_H
#define CLUSTERMON_JUDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/calendar.h"
#include "daemon/config.h"
#include "daemon/keys.h"
#include "daemon/registry.h"
#include "proto/proto.h"

/* A sample after resolution: everything the apply step needs, no strings. */
typedef struct {
    int firm, metric;
    proto_period_t period; /* a month for readings and timestamped amounts */
    int64_t milli;         /* period metrics */
    double value;          /* readings */
    int64_t ts_ms;
    bool refused; /* judged and refused: apply skips it */
} judge_resolved_t;

/* Why a sample was refused: the label of clustermon_samples_refused_total. */
typedef enum {
    JUDGE_UNKNOWN_FIRM = 0, /* not in the registry */
    JUDGE_FORMER_MEMBER,    /* it left the registry */
    JUDGE_FORBIDDEN,        /* the key may not report for it */
    JUDGE_UNKNOWN_METRIC,
    JUDGE_PERIOD_ON_READING, /* a period on a reading metric */
    JUDGE_NO_MONTH,          /* a timestamp with no calendar month */
    JUDGE_FUTURE_PERIOD,     /* after the current month (+ slack) */
    JUDGE_OUT_OF_RANGE,      /* outside the metric's min/max */
    JUDGE_BEFORE_FLOOR,      /* a timestamp before ts_floor */
    JUDGE_KIND_COUNT
} judge_kind_t;

#define JUDGE_REASONLEN 256 /* a sample's reason; longer ones are cut */

/* The clock-dependent limits of one batch, computed once per batch. */
typedef struct {
    const config_t *cfg;     /* borrowed for the batch */
    const registry_t *reg;   /* borrowed */
    calendar_t *cal;         /* borrowed (its cache changes) */
    const access_key_t *key; /* NULL: no CURVE, or WAL replay */
    bool replay;             /* WAL replay: resolve only; the plausibility checks were made when
                            * the batch came, and the clock has moved since */
    int latest_month;        /* year * 12 + month - 1 of now + future_slack_days */
    int64_t floor_ms;        /* daemon.ts_floor as Unix ms */
} judge_t;

/* The refusals of the daemon's life, per kind (status, /metrics). */
typedef struct {
    uint64_t refused[JUDGE_KIND_COUNT];
} judge_stats_t;

/* Sets up j for one batch judged at wall time now_ms. cfg, reg, cal and key
 * are borrowed until the batch is done. */
void judge_begin(judge_t *j, const config_t *cfg, const registry_t *reg, calendar_t *cal,
                 const access_key_t *key, bool replay, int64_t now_ms);

/*
 * Judges sample s (index i of its batch), filling *r on success. Returns
 * PROTO_STATUS_OK, or the status to refuse it with (unknown_firm,
 * unknown_metric, invalid, forbidden), its kind in *ret_kind and a reason
 * starting "sample I: " in reason.
 */
proto_status_t judge_sample(const judge_t *j, const proto_sample_t *s, uint32_t i,
                            judge_resolved_t *r, judge_kind_t *ret_kind, char *reason, size_t rlen);

/* The label of a kind ("future_period"). */
const char *judge_kind_name(judge_kind_t k);

/*
 * A refusal as kept for a settled seq (streams.h, the WAL): index << 8 |
 * status. A resend of the seq is answered from these, its reasons judged
 * again from the resent bytes.
 */
static inline uint32_t judge_pack_refusal(uint32_t index, uint8_t status)
{
    return index << 8 | status;
}

/*
 * Copies n refusals and their reasons into one allocation (the caller owns
 * it: free()), for an answer held until its WAL record is on disk.
 */
proto_refusal_t *judge_refusals_dup(const proto_refusal_t *r, uint32_t n);

#endif
