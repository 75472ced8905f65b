/*
 * proto.h -- the clustermon wire protocol, shared by every program.
 *
 * Each message is one ZeroMQ frame holding one MessagePack map (see
 * proto/PROTOCOL.md for the byte-level spec). This header is the only
 * interface to it: encoders write into a msgpack_sbuffer through msgpack-c's
 * packer; decoders read hostile bytes through a bounded cursor (proto/cursor.c)
 * and never allocate. Decoded strings are *borrowed*: they point into the
 * caller's buffer and are valid only while that buffer is.
 *
 * proto/ never logs. Every decoder returns PROTO_OK (0) or a negative
 * proto_err_t and writes a human-readable reason into the caller's buffer.
 */
#ifndef CLUSTERMON_PROTO_H
#define CLUSTERMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define PROTO_VERSION 2     /* the version this build speaks */
#define PROTO_VERSION_MIN 2 /* the oldest version it still accepts */

/* Limits (also in PROTOCOL.md). A message over any of them is rejected. */
#define PROTO_MAX_MSG_SIZE (4u << 20) /* bytes in one frame (ZMQ_MAXMSGSIZE) */
#define PROTO_MAX_ID_LEN 64           /* firm, metric, agent, cluster, chain, rule, alert id */
#define PROTO_MAX_TEXT_LEN 1024       /* reason, summary */
#define PROTO_MAX_ALERT_ID_LEN 160    /* an alert id: rule + ':' + firm or cluster */
#define PROTO_MAX_SAMPLES 10000       /* samples in one batch */
#define PROTO_MAX_CTL_ARGS 16         /* key/value pairs in one control request */
#define PROTO_MAX_DEPTH 4             /* nesting depth of any message */
#define PROTO_MIN_YEAR 1970           /* periods and timestamps: [1970, 2200) */
#define PROTO_MAX_YEAR 2199
#define PROTO_MAX_TS_MS 7258118400000LL /* 2200-01-01T00:00:00Z */
#define PROTO_MAX_ABS_VALUE 1e14        /* |value| limit: a firm-year of milli-units fits int64 */
#define PROTO_MAX_WINDOW 64             /* unsettled batches one agent stream may have in flight */

#define PROTO_ERRLEN 256 /* a comfortable size for reason buffers */

typedef enum {
    PROTO_OK = 0,
    PROTO_EMALFORMED =
        -1, /* not MessagePack, wrong types, missing/duplicate fields, trailing bytes */
    PROTO_EVERSION = -2, /* "v" outside [PROTO_VERSION_MIN, PROTO_VERSION] */
    PROTO_ETYPE = -3,    /* unknown or unexpected message "type" */
    PROTO_ELIMIT = -4,   /* a limit above exceeded */
    PROTO_EVALUE = -5,   /* NaN/Inf, bad period, timestamp out of range */
    PROTO_ENOMEM = -6,   /* encoder could not grow its buffer */
} proto_err_t;

/* A string inside a decoded message: not NUL-terminated, borrowed. */
typedef struct {
    const char *ptr;
    uint32_t len;
} proto_str_t;

#define PROTO_STR_FMT "%.*s"
#define PROTO_STR_ARG(s) (int)(s).len, (s).ptr

/* Returns a proto_str_t over a NUL-terminated C string (NULL -> empty). */
proto_str_t proto_str(const char *s);
bool proto_str_eq(proto_str_t a, const char *b);

/* ---- periods ---------------------------------------------------------- */

typedef enum {
    PROTO_PERIOD_NONE = 0,
    PROTO_PERIOD_YEAR,    /* "2021"    */
    PROTO_PERIOD_QUARTER, /* "2021-Q3" */
    PROTO_PERIOD_MONTH,   /* "2021-07" */
} proto_period_kind_t;

typedef struct {
    uint16_t year; /* PROTO_MIN_YEAR..PROTO_MAX_YEAR */
    uint8_t kind;  /* proto_period_kind_t */
    uint8_t index; /* quarter 1..4, month 1..12, 0 for a year */
} proto_period_t;

#define PROTO_PERIOD_STRLEN 8 /* "2021-Q3" + NUL */

/* Parses "YYYY", "YYYY-Qn" or "YYYY-MM". Returns PROTO_OK or PROTO_EVALUE. */
int proto_period_parse(const char *s, size_t len, proto_period_t *ret_period);
/* Formats into buf (>= PROTO_PERIOD_STRLEN bytes). Returns the length. */
size_t proto_period_format(proto_period_t p, char *buf, size_t bufsize);

/* ---- metric batch (agent -> daemon) ------------------------------------ */

typedef struct {
    proto_str_t firm; /* enterprise id */
    proto_str_t metric;
    double value;          /* finite, |value| <= PROTO_MAX_ABS_VALUE */
    int64_t ts_ms;         /* Unix time in ms, [0, PROTO_MAX_TS_MS) */
    proto_period_t period; /* kind PROTO_PERIOD_NONE when absent */
} proto_sample_t;

typedef struct {
    proto_str_t agent;       /* agent id, 1..PROTO_MAX_ID_LEN bytes */
    uint64_t epoch;          /* the agent's stream, >= 1 (PROTOCOL.md 2: sequence discipline) */
    uint64_t seq;            /* the batch's place in that stream: 1, 2, 3 ... */
    uint32_t nsamples;       /* 1..PROTO_MAX_SAMPLES */
    proto_sample_t *samples; /* caller-provided storage, see below */
    uint32_t cap;            /* capacity of samples */
    bool partial; /* "partial": true: the sender takes per-sample answers (PROTOCOL.md 2) */
    bool dry_run; /* a "check" message: judge every sample, apply nothing, settle nothing */
} proto_batch_t;

/*
 * Encodes a batch (nsamples from b->samples) into out (appends).
 * Returns PROTO_OK, PROTO_ELIMIT/PROTO_EVALUE if the batch would not decode
 * (the same checks as the decoder), or PROTO_ENOMEM.
 */
int proto_batch_encode(const proto_batch_t *b, msgpack_sbuffer *out, char *err, size_t errlen);

/*
 * Decodes and fully validates one batch message. The caller sets b->samples
 * and b->cap (PROTO_MAX_SAMPLES covers every valid batch) before the call;
 * the decoder fills the rest. No allocation. Strings borrow from buf.
 * On failure b->seq, b->epoch and b->agent hold what was decoded before the
 * problem (else 0 / empty), so a nack can name the batch and the daemon can
 * settle its seq. Returns PROTO_OK or a negative proto_err_t with reason.
 */
int proto_batch_decode(const void *buf, size_t len, proto_batch_t *b, char *err, size_t errlen);

/* ---- ack / nack (daemon -> agent) -------------------------------------- */

typedef enum {
    PROTO_STATUS_OK = 0,         /* "ok": applied (or already applied: duplicate) */
    PROTO_STATUS_MALFORMED,      /* "malformed" */
    PROTO_STATUS_VERSION,        /* "version": unsupported protocol version */
    PROTO_STATUS_UNKNOWN_FIRM,   /* "unknown_firm" */
    PROTO_STATUS_UNKNOWN_METRIC, /* "unknown_metric" */
    PROTO_STATUS_INVALID,        /* "invalid": a value the daemon will not take */
    PROTO_STATUS_TOO_LARGE,      /* "too_large" */
    PROTO_STATUS_BUSY,           /* "busy": try again later */
    PROTO_STATUS_INTERNAL,       /* "internal" */
    PROTO_STATUS_FORBIDDEN,      /* "forbidden": the sender's key may not do this */
    PROTO_STATUS_RATE_LIMITED,   /* "rate_limited": over the samples/s limit; back off, resend */
    PROTO_STATUS_OUT_OF_ORDER, /* "out_of_order": an earlier seq is missing; resend from "expected" */
    PROTO_STATUS_AGENT_CONFLICT, /* "agent_conflict": another stream owns the agent id; stop */
    PROTO_STATUS_PARTIAL, /* "partial": settled; "accepted" samples applied, those in "refused" not */
    PROTO_STATUS_COUNT
} proto_status_t;

/* What a sender does with a batch after each status (PROTOCOL.md 5). */
typedef enum {
    PROTO_NEXT_DONE = 0, /* ok: applied; the seq is settled */
    PROTO_NEXT_FINAL,    /* refused for good; the seq is settled, the next one is seq + 1 */
    PROTO_NEXT_RETRY,    /* not taken now (busy, rate_limited, internal): resend the same bytes */
    PROTO_NEXT_REWIND,   /* out_of_order: resend from the ack's "expected" */
    PROTO_NEXT_STOP,     /* agent_conflict, or a nack with seq 0: the sender must stop */
} proto_next_t;

const char *proto_status_name(proto_status_t s);
proto_next_t proto_status_next(proto_status_t s);
/* Returns the status for a wire name, or -1. */
int proto_status_from_name(proto_str_t name);

/* One sample a partial or check answer refuses: [index, status, reason] on the wire. */
typedef struct {
    uint32_t index;     /* the sample's index in its batch, 0-based */
    uint8_t status;     /* proto_status_t: unknown_firm, unknown_metric, invalid, forbidden */
    proto_str_t reason; /* text; borrowed */
} proto_refusal_t;

typedef struct {
    uint64_t seq;             /* the batch's seq, 0 if it could not be decoded */
    uint64_t expected;        /* the next seq the daemon wants from the stream; 0: not known */
    uint8_t status;           /* proto_status_t */
    uint8_t max_version;      /* highest version the sender speaks */
    uint32_t accepted;        /* samples applied (0 on a nack) */
    proto_str_t reason;       /* empty on ok; why, on a nack */
    bool dry_run;             /* the answer to a "check": nothing was applied or settled */
    uint32_t nrefused;        /* entries of "refused" (0: key absent) */
    proto_refusal_t *refused; /* encode: nrefused entries; decode: caller's storage, below */
    uint32_t refused_cap;     /* decode: capacity of refused */
} proto_ack_t;

/* Writes "dry_run" and "refused" only when set (older receivers never see them). */
int proto_ack_encode(const proto_ack_t *a, msgpack_sbuffer *out);
/*
 * Decodes an ack. Before the call the caller sets a->refused and
 * a->refused_cap (PROTO_MAX_SAMPLES covers every ack), or NULL and 0 to have
 * the entries checked and counted only. More entries than refused_cap are
 * PROTO_ELIMIT. Reasons borrow from buf.
 */
int proto_ack_decode(const void *buf, size_t len, proto_ack_t *a, char *err, size_t errlen);

/* ---- alert (daemon -> subscribers) -------------------------------------- */

typedef enum {
    PROTO_SEV_INFO = 0,
    PROTO_SEV_WARNING,
    PROTO_SEV_CRITICAL,
    PROTO_SEV_COUNT
} proto_severity_t;
typedef enum {
    PROTO_ALERT_FIRING = 0, /* the condition holds (again: a reminder has reminder = true) */
    PROTO_ALERT_RESOLVED,   /* it no longer holds */
    PROTO_ALERT_REVISED,    /* still firing, but its basis changed (restated or late data) */
    PROTO_ALERT_FLAPPING,   /* changing state too often: held, published once as such */
    PROTO_ALERT_STATE_COUNT
} proto_alert_state_t;

#define PROTO_MAX_DETAILS 24 /* entries in an alert's "details" map */

/* One input an alert was computed from: a number or a string. */
typedef struct {
    proto_str_t key; /* an id: 1..PROTO_MAX_ID_LEN bytes */
    bool is_str;
    double num;      /* finite */
    proto_str_t str; /* text, <= PROTO_MAX_TEXT_LEN */
} proto_detail_t;

const char *proto_severity_name(proto_severity_t s);
int proto_severity_from_name(proto_str_t name); /* or -1 */
const char *proto_alert_state_name(proto_alert_state_t s);
int proto_alert_state_from_name(proto_str_t name); /* or -1 */

typedef struct {
    proto_str_t id; /* stable: "<rule>:<firm>" or "<rule>:<cluster>", <= PROTO_MAX_ALERT_ID_LEN */
    proto_str_t rule;
    uint8_t severity; /* proto_severity_t */
    uint8_t state;    /* proto_alert_state_t */
    proto_str_t cluster;
    proto_str_t chain; /* optional: len 0 = absent (nil on the wire) */
    proto_str_t firm;  /* optional */
    proto_str_t metric;
    double observed;
    double expected;     /* the limit or target it was compared with */
    proto_str_t summary; /* one human sentence, <= PROTO_MAX_TEXT_LEN */
    int64_t since_ms;    /* when it started firing */
    int64_t ts_ms;       /* when this state was entered */
    uint64_t seq;        /* the cluster's alert sequence number, >= 1 */
    /* optional (left out on the wire when false / 0 / empty) */
    bool reminder;  /* a repeat of a firing alert, not a new transition */
    uint32_t count; /* > 0: a grouped alert standing for count alerts */
    /* The alert's own numbering, the same on every daemon of an HA pair
     * (PROTOCOL.md 4.3): n counts the alert's transitions (1 for its first
     * firing; a grouped alert's is the sum of its members'), rn the
     * reminders since the last transition. 0: not sent (an older daemon). */
    uint64_t n;
    uint32_t rn;
    uint32_t ndetails;
    proto_detail_t
        details[PROTO_MAX_DETAILS]; /* the inputs, so a reader can check the arithmetic */
} proto_alert_t;

int proto_alert_encode(const proto_alert_t *a, msgpack_sbuffer *out, char *err, size_t errlen);
int proto_alert_decode(const void *buf, size_t len, proto_alert_t *a, char *err, size_t errlen);

/* Writes "alert.<cluster>.<severity>" into buf; returns its length or -1 if it does not fit. */
int proto_alert_topic(proto_str_t cluster, proto_severity_t sev, char *buf, size_t bufsize);

/* ---- heartbeat (daemon -> subscribers, once a second per cluster) ------ */

typedef struct {
    proto_str_t cluster; /* the cluster it speaks for */
    uint64_t seq;        /* the last alert seq published in that cluster (0: none yet) */
    int64_t ts_ms;       /* when it was sent */
} proto_heartbeat_t;

/* Writes "alert.<cluster>.heartbeat" into buf; returns its length or -1 if
 * cluster is empty or it does not fit. */
int proto_heartbeat_topic(proto_str_t cluster, char *buf, size_t bufsize);

/* Returns PROTO_OK, or a negative proto_err_t with the reason in err (an
 * invalid cluster id or timestamp). */
int proto_heartbeat_encode(const proto_heartbeat_t *hb, msgpack_sbuffer *out, char *err,
                           size_t errlen);
/* On success hb->cluster borrows from buf. */
int proto_heartbeat_decode(const void *buf, size_t len, proto_heartbeat_t *hb, char *err,
                           size_t errlen);

/* ---- control (clustermonctl <-> daemon) -------------------------------- */

typedef enum { PROTO_ARG_NIL = 0, PROTO_ARG_INT, PROTO_ARG_STR } proto_arg_kind_t;

typedef struct {
    proto_str_t key;
    uint8_t kind; /* proto_arg_kind_t */
    int64_t ival;
    proto_str_t sval;
} proto_ctl_arg_t;

typedef struct {
    proto_str_t cmd; /* e.g. "report" */
    uint32_t nargs;
    proto_ctl_arg_t args[PROTO_MAX_CTL_ARGS];
} proto_ctl_request_t;

int proto_ctl_request_encode(const proto_ctl_request_t *r, msgpack_sbuffer *out);
int proto_ctl_request_decode(const void *buf, size_t len, proto_ctl_request_t *r, char *err,
                             size_t errlen);
/* Returns the argument named key, or NULL. */
const proto_ctl_arg_t *proto_ctl_arg(const proto_ctl_request_t *r, const char *key);

/*
 * A control reply is {"v","type":"ctl_reply","ok":bool,"reason":str,"max_version":uint,
 * "body":any}.
 * The daemon writes the envelope with proto_ctl_reply_begin() and then packs
 * exactly one object (the body; nil on error) with pk.
 */
int proto_ctl_reply_begin(msgpack_packer *pk, bool ok, const char *reason);

/*
 * Decodes a reply on the client side with msgpack-c's unpacker into zone
 * (the caller owns zone). The daemon is trusted here, but the envelope is
 * still checked. body's containers live in zone, and msgpack-c points its
 * strings (reason included) into buf: both zone and buf must outlive them.
 */
int proto_ctl_reply_decode(const void *buf, size_t len, msgpack_zone *zone, bool *ret_ok,
                           proto_str_t *ret_reason, msgpack_object *ret_body, char *err,
                           size_t errlen);

/* The value of key in a map decoded by msgpack-c (control replies, the
 * snapshot file), or NULL if map is not a map or has no such str key. */
const msgpack_object *proto_obj_get(const msgpack_object *map, const char *key);

/* Reads an integer of a msgpack-c object into *ret: true if o is non-NULL
 * and an integer that fits (the snapshot and journal readers' one check). */
bool proto_obj_i64(const msgpack_object *o, int64_t *ret);
bool proto_obj_u64(const msgpack_object *o, uint64_t *ret);

/* Returns a static English name for an error code. */
const char *proto_strerror(int err);

#endif
