/*
 * alertbook.h -- the alert lifecycle: every alert the rules have raised,
 * keyed by a stable id (rule + scope + firm), its state, its basis (the
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
    char *str;   /* owned when is_str */
} ab_detail_t;

typedef struct {
    char *id;
    int rule, firm;          /* firm -1: the rule's scope as a whole */
    bool firing;
    bool flapping;           /* held: transitions are not published */
    int64_t since_ms;        /* data time it started firing */
    int64_t published_ms;    /* wall time it was last published (reminders) */
    int64_t flaps[AB_FLAP_RING]; /* wall times of its recent transitions */
    uint32_t nflaps;
    uint32_t pending_count;  /* threshold: consecutive breaching samples */
    int64_t pending_since;   /* threshold: data time of the first of them */
    double observed, expected;
    char *summary;
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS];
    uint64_t seq;            /* seq of its last publication */
} ab_alert_t;

/* One evaluation's result, filled by a rule. */
typedef struct {
    bool active;             /* the condition holds */
    bool revisable;          /* a changed basis while firing is published as revised */
    double observed, expected;
    int64_t ts_ms;           /* data time of the evaluation */
    char summary[PROTO_MAX_TEXT_LEN];
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS]; /* str points into strbuf */
    char strbuf[2048];
    size_t strused;
} ab_eval_t;

/* A queued publication, with the basis as it was at the transition (one
 * batch may fire and resolve the same alert: each event says its own). */
typedef struct {
    int state;               /* proto_alert_state_t */
    bool reminder;
    ab_alert_t *a;
    double observed, expected;
    int64_t since_ms;
    char *summary;           /* owned */
    uint32_t ndetails;
    ab_detail_t details[PROTO_MAX_DETAILS]; /* strings owned */
} ab_event_t;

typedef struct {
    const config_t *cfg;     /* borrowed */
    const registry_t *reg;   /* borrowed */
    alerts_t *pub;           /* borrowed */
    silences_t *silences;    /* borrowed */
    ab_alert_t **alerts;     /* all known, in creation order */
    size_t nalerts, cap;
    uint32_t *slots;         /* open addressing on id: index + 1 */
    size_t mask;
    ab_event_t *events;      /* queued by this pass */
    size_t nevents, events_cap;
    bool quiet;
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

/* Periodic: reminders, flapping alerts that settled. */
void alertbook_tick(alertbook_t *b, int64_t now_ms);

/* Publishes the queued events (grouping floods); in quiet mode drops them. */
void alertbook_flush(alertbook_t *b, int64_t now_ms);

/* Fills a proto alert from a in the given state (strings borrow from a and
 * the config; details point into a). */
void alertbook_to_proto(const alertbook_t *b, const ab_alert_t *a, int state, proto_alert_t *out);

/* Helpers for rules building an evaluation. */
void ab_eval_reset(ab_eval_t *ev);
void ab_eval_num(ab_eval_t *ev, const char *key, double v);
void ab_eval_str(ab_eval_t *ev, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
