/*
 * alertbook.h -- the alert lifecycle: every alert the rules have raised,
 * keyed by (rule index, firm index) -- its text id (rule + scope + firm) is
 * made once, when it is created --, its state, its basis (the
 * values it was computed from), and what has been published of it.
 *
 * Rules evaluate and hand each result to alertbook_eval(); the book decides
 * what that means: a new firing alert, a resolved one, a revision (the basis
 * of a firing alert changed: restated or late data), or nothing. Only
 * transitions are published, plus a reminder every `repeat` while firing.
 * An alert that changes state flap_max times within flap_window is held as
 * flapping: published once as such, then quiet until it settles. Silenced
 * alerts are tracked but not published. Events of one evaluation pass are
 * queued and flushed together, so a flood (every firm of a cluster going
 * silent at once) becomes one grouped alert per cluster and rule.
 *
 * In quiet mode (WAL replay at start-up) states change but nothing is
 * published: those transitions were published before the restart.
 *
 * Durable when it happens: with a journal hook set (the server's WAL), every
 * alert whose state changed in a way that matters -- a transition, with its
 * since and flap times; a publication, with its seq and time (reminders
 * too); a silenced one; flapping held or settled -- is journaled as a
 * RECORD_ALERT record (its whole state, as in the snapshot) when the
 * evaluation pass that changed it is flushed, right after its publication.
 * Replay applies those records over what replaying the batches re-derived,
 * so a restart finds each alert exactly as it was published.
 */
#ifndef CLUSTERMON_ALERTBOOK_H
#define CLUSTERMON_ALERTBOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/alerts.h"
#include "daemon/config.h"
#include "daemon/registry.h"
#include "daemon/silences.h"

#define AB_FLAP_RING 16

typedef struct {
    char key[PROTO_MAX_ID_LEN + 1];
    bool is_str;
    double num;
    char *str; /* owned when is_str */
} ab_detail_t;

typedef struct {
    char *id;
    int rule, firm; /* firm -1: the rule's scope as a whole */
    bool firing;
    bool flapping;               /* held: transitions are not published */
    int64_t since_ms;            /* data time it started firing */
    int64_t published_ms;        /* wall time it was last published (reminders) */
    int64_t flaps[AB_FLAP_RING]; /* wall times of its recent transitions */
    uint32_t nflaps;
    uint32_t pending_count; /* threshold: consecutive breaching samples */
    int64_t pending_since;  /* threshold: data time of the first of them */
    double observed, expected;
    char *summary;
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS];
    uint64_t seq;          /* seq of its last publication */
    uint64_t n;            /* its transitions so far, published or not (PROTOCOL.md 4.3 "n") */
    uint32_t rn;           /* reminders since the last transition ("rn") */
    bool journaled_firing; /* firing, as last journaled or restored (not itself stored) */
    bool dirty;            /* changed this pass: journaled at the flush */
} ab_alert_t;

/* One evaluation's result, filled by a rule. */
typedef struct {
    bool active;    /* the condition holds */
    bool revisable; /* a changed basis while firing is published as revised */
    double observed, expected;
    int64_t ts_ms; /* data time of the evaluation */
    char summary[PROTO_MAX_TEXT_LEN];
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS]; /* str points into strbuf */
    char strbuf[2048];
    size_t strused;
} ab_eval_t;

/* A queued publication, with the basis as it was at the transition (one
 * batch may fire and resolve the same alert: each event says its own). */
typedef struct {
    int state; /* proto_alert_state_t */
    bool reminder;
    uint64_t n; /* the alert's n and rn for this event */
    uint32_t rn;
    ab_alert_t *a;
    double observed, expected;
    int64_t since_ms;
    char *summary; /* owned */
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS]; /* strings owned */
} ab_event_t;

typedef struct {
    uint64_t key;   /* ab_key(rule, firm); 0: empty */
    uint32_t index; /* into alerts */
} ab_slot_t;

typedef struct {
    const config_t *cfg;   /* borrowed */
    const registry_t *reg; /* borrowed */
    alerts_t *pub;         /* borrowed */
    silences_t *silences;  /* borrowed */
    ab_alert_t **alerts;   /* all known, in creation order */
    size_t nalerts, cap;
    /* open addressing on (rule, firm), the key kept in the slot so a probe
     * that misses reads no alert (a lookup per evaluation and per reading) */
    ab_slot_t *slots;
    size_t mask;
    ab_event_t *events; /* queued by this pass */
    size_t nevents, events_cap;
    bool quiet;
    ab_alert_t **dirty; /* changed since the last flush, to journal */
    size_t ndirty, dirty_cap;
    record_journal_fn journal; /* NULL: nothing journaled (tests, WAL replay) */
    /* the alerts changed in one flush, in one write; NULL: journal one by one */
    record_journal_many_fn journal_many;
    void *journal_data;
    /* journal_many's scratch, owned, reused: where each record ends in rec,
     * and the pieces handed over */
    size_t *rec_ends;
    struct iovec *rec_iov;
    size_t rec_cap;
    /* alertbook_flush's scratch, owned, reused: no allocation per flush */
    bool *flush_done;
    ab_event_t *flush_group;
    size_t flush_cap;
    msgpack_sbuffer rec;     /* reused record buffer */
    uint64_t journaled;      /* RECORD_ALERT records written */
    uint64_t journal_failed; /* ... that the journal could not take (disk full) */
    uint64_t firing;         /* alerts firing now */
    uint64_t suppressed;     /* events not published: silenced */
    uint64_t grouped;        /* events published inside a grouped alert */
    uint64_t by_state[PROTO_ALERT_STATE_COUNT];
} alertbook_t;

void alertbook_init(alertbook_t *b, const config_t *cfg, const registry_t *reg, alerts_t *pub,
                    silences_t *silences);
void alertbook_free(alertbook_t *b);

/* The alert of (rule, firm), or NULL; with create, made if missing. */
ab_alert_t *alertbook_get(alertbook_t *b, int rule, int firm, bool create);

/* Applies one evaluation of (rule, firm). now_ms is the wall clock. */
void alertbook_eval(alertbook_t *b, int rule, int firm, const ab_eval_t *ev, int64_t now_ms);

/* Takes over an alert from another book (a reload), whose rule and firm
 * indexes the caller has already set for this book's config and registry.
 * Takes ownership of a. */
void alertbook_adopt(alertbook_t *b, ab_alert_t *a);

/* What alertbook_carry_over did. */
typedef struct {
    size_t kept;  /* alerts now in the new book */
    size_t ended; /* firing alerts resolved because their rule or firm is gone */
} alertbook_carry_t;

/*
 * Reload, before the swap: moves the alerts of old into b (initialised with
 * alertbook_init for the new config and registry, still empty) by rule id
 * and firm id. An alert stays if its rule is still there and, for a firm's
 * alert, the firm is still a member and in the rule's scope, or, for a
 * scope-wide alert, the rule has the same type. The others end: a firing
 * one is published as resolved under old's config (whose names it carries)
 * and journaled like any other transition, so a restart does not bring it
 * back; it is not carried. Events queued in old are flushed first, so
 * nothing queued crosses over. b takes old's journal hook and lifetime
 * counters (journaled, suppressed, grouped, by_state). Afterwards old
 * holds only what ended: alertbook_free it (its config and registry must
 * still be alive for this call). now_ms is the wall clock.
 */
void alertbook_carry_over(alertbook_t *b, alertbook_t *old, int64_t now_ms, alertbook_carry_t *ret);

/*
 * True if alertbook_eval would keep ev's summary (a transition, a revision,
 * the latest basis of an alert that is not firing): a rule fills everything
 * else of ev first, then formats the summary only when this says so, since
 * most evaluations (per sample) change nothing and text is the dear part.
 */
bool alertbook_wants_summary(alertbook_t *b, int rule, int firm, const ab_eval_t *ev);

/* Periodic: reminders, flapping alerts that settled. */
void alertbook_tick(alertbook_t *b, int64_t now_ms);

/* Publishes the queued events (grouping floods); in quiet mode drops them. */
void alertbook_flush(alertbook_t *b, int64_t now_ms);

/* Fills a proto alert from a in the given state (strings borrow from a and
 * the config; details point into a). */
void alertbook_to_proto(const alertbook_t *b, const ab_alert_t *a, int state, proto_alert_t *out);

/* ---- durable state ----------------------------------------------------------- */

/* Writes every alert the book knows, for the snapshot: an array of
 * [rule id, firm|nil, firing, flapping, since, published, pending_count,
 * pending_since, observed, expected, summary, seq, [flap times, oldest
 * first], {details}]. A RECORD_ALERT record is the tag byte and one entry. */
void alertbook_pack(const alertbook_t *b, msgpack_packer *pk);

/* Checks (apply false) or loads (apply true) an array alertbook_pack wrote.
 * Entries whose rule or firm the config and registry no longer have are
 * dropped and counted in *ret_unknown. Returns 0, or -1 with the reason in
 * err ("alerts: entry N: ..."): checking first means malformed input changes
 * nothing. Loaded alerts count as journaled. */
int alertbook_unpack(alertbook_t *b, const msgpack_object *o, bool apply, uint64_t *ret_unknown,
                     char *err, size_t errlen);

/* Applies one RECORD_ALERT payload (tag byte included) at WAL replay: the
 * alert takes the recorded state whole, and its cluster's alert seq is
 * raised to the recorded one if behind. Returns 0, 1 if the rule or firm is
 * no longer known (skipped), or -1 with the reason in err (nothing changed). */
int alertbook_replay(alertbook_t *b, const void *payload, size_t len, char *err, size_t errlen);

/* After WAL replay, out of quiet mode: an alert whose firing state differs
 * from what was last journaled changed while nothing could be published
 * (replayed batches whose publication never happened, e.g. the process died
 * between the two): its current state is queued for the next flush. An
 * alert whose state is unchanged queues nothing. */
void alertbook_recovered(alertbook_t *b);

/* Helpers for rules building an evaluation. */
void ab_eval_reset(ab_eval_t *ev);
void ab_eval_num(ab_eval_t *ev, const char *key, double v);
void ab_eval_str(ab_eval_t *ev, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ab_eval_str of a plain string, without a format. */
void ab_eval_cstr(ab_eval_t *ev, const char *key, const char *s);

#endif
