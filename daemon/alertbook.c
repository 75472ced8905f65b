/* alertbook.c -- see alertbook.h. */
#include "daemon/alertbook.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/rules.h"
#include "daemon/xalloc.h"
#include "proto/hash.h"

/* An alert's durable entry (snapshot and RECORD_ALERT): 14 fields before
 * the ordinals n and rn were added, 16 since; both are read. */
#define ENTRY_FIELDS_V1 14
#define ENTRY_FIELDS 16

/* ---- evaluation helpers ------------------------------------------------------ */

void ab_eval_reset(ab_eval_t *ev)
{
    ev->active = ev->revisable = false;
    ev->observed = ev->expected = 0;
    ev->ts_ms = 0;
    ev->summary[0] = '\0';
    ev->ndetails = 0;
    ev->strused = 0;
}

/* The key, cut to fit: a copy, not a format (rules evaluate per sample). */
static void key_copy(char *dst, size_t size, const char *key)
{
    size_t n = strnlen(key, size - 1);
    memcpy(dst, key, n);
    dst[n] = '\0';
}

void ab_eval_num(ab_eval_t *ev, const char *key, double v)
{
    if (ev->ndetails >= PROTO_MAX_DETAILS || !isfinite(v))
        return;
    ab_detail_t *d = &ev->details[ev->ndetails++];
    key_copy(d->key, sizeof d->key, key);
    d->is_str = false;
    d->num = v;
    d->str = NULL;
}

void ab_eval_str(ab_eval_t *ev, const char *key, const char *fmt, ...)
{
    if (ev->ndetails >= PROTO_MAX_DETAILS || ev->strused >= sizeof ev->strbuf - 1)
        return;
    ab_detail_t *d = &ev->details[ev->ndetails++];
    key_copy(d->key, sizeof d->key, key);
    d->is_str = true;
    d->str = ev->strbuf + ev->strused;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->str, sizeof ev->strbuf - ev->strused, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used > sizeof ev->strbuf - ev->strused - 1)
        used = sizeof ev->strbuf - ev->strused - 1;
    ev->strused += used + 1;
}

void ab_eval_cstr(ab_eval_t *ev, const char *key, const char *s)
{
    if (ev->ndetails >= PROTO_MAX_DETAILS || ev->strused >= sizeof ev->strbuf - 1)
        return;
    ab_detail_t *d = &ev->details[ev->ndetails++];
    key_copy(d->key, sizeof d->key, key);
    d->is_str = true;
    d->str = ev->strbuf + ev->strused;
    size_t n = strnlen(s, sizeof ev->strbuf - ev->strused - 1);
    memcpy(d->str, s, n);
    d->str[n] = '\0';
    ev->strused += n + 1;
}

/* ---- the table ------------------------------------------------------------- */

/* Alerts are found by (rule index, firm index), integers: an evaluation runs
 * per sample, and formatting "rule:firm" to look one up cost more than the
 * rule. The text id is made once, when the alert is created. */
/* Never 0 (firm >= -1): 0 marks an empty slot. */
static uint64_t ab_key(int rule, int firm)
{
    return (uint64_t)(uint32_t)rule << 32 | (uint32_t)(firm + 1) | 1ull << 63;
}

/* Fibonacci hashing: the key's bits spread by one multiplication. */
static size_t key_slot(uint64_t key, size_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ h >> 32) & mask;
}

void alertbook_init(alertbook_t *b, const config_t *cfg, const registry_t *reg, alerts_t *pub,
                    silences_t *silences)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->reg = reg;
    b->pub = pub;
    b->silences = silences;
    b->mask = 255;
    b->slots = xcalloc(b->mask + 1, sizeof *b->slots);
    msgpack_sbuffer_init(&b->rec);
}

static void details_free(ab_detail_t *d, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (d[i].is_str)
            free(d[i].str);
}

static void event_free(ab_event_t *e)
{
    free(e->summary);
    e->summary = NULL;
    details_free(e->details, e->ndetails);
    e->ndetails = 0;
}

void alertbook_free(alertbook_t *b)
{
    for (size_t i = 0; i < b->nalerts; i++) {
        ab_alert_t *a = b->alerts[i];
        details_free(a->details, a->ndetails);
        free(a->summary);
        free(a->id);
        free(a);
    }
    for (size_t i = 0; i < b->nevents; i++)
        event_free(&b->events[i]);
    free(b->alerts);
    free(b->slots);
    free(b->events);
    free(b->dirty);
    msgpack_sbuffer_destroy(&b->rec);
    b->rec.data = NULL;
    free(b->rec_ends);
    free(b->rec_iov);
    free(b->flush_done);
    free(b->flush_group);
    b->flush_done = NULL;
    b->flush_group = NULL;
    b->flush_cap = 0;
    b->rec_ends = NULL;
    b->rec_iov = NULL;
    b->rec_cap = 0;
    b->alerts = NULL;
    b->slots = NULL;
    b->events = NULL;
    b->dirty = NULL;
    b->ndirty = 0;
}

static void make_id(const alertbook_t *b, int rule, int firm, char *buf, size_t size)
{
    const config_rule_t *r = &b->cfg->rules[rule];
    snprintf(buf, size, "%s:%s", r->id,
             firm >= 0 ? b->reg->firms[firm].id : b->cfg->clusters[r->cluster].id);
}

static void slots_insert(alertbook_t *b, size_t index)
{
    uint64_t key = ab_key(b->alerts[index]->rule, b->alerts[index]->firm);
    size_t i = key_slot(key, b->mask);
    while (b->slots[i].key)
        i = (i + 1) & b->mask;
    b->slots[i] = (ab_slot_t){.key = key, .index = (uint32_t)index};
}

ab_alert_t *alertbook_get(alertbook_t *b, int rule, int firm, bool create)
{
    uint64_t key = ab_key(rule, firm);
    for (size_t i = key_slot(key, b->mask); b->slots[i].key; i = (i + 1) & b->mask)
        if (b->slots[i].key == key)
            return b->alerts[b->slots[i].index];
    if (!create)
        return NULL;
    char id[PROTO_MAX_ALERT_ID_LEN + 1];
    make_id(b, rule, firm, id, sizeof id);
    if ((b->nalerts + 1) * 2 > b->mask + 1) {
        free(b->slots);
        b->mask = b->mask * 2 + 1;
        b->slots = xcalloc(b->mask + 1, sizeof *b->slots);
        for (size_t k = 0; k < b->nalerts; k++)
            slots_insert(b, k);
    }
    ab_alert_t *a = xcalloc(1, sizeof *a);
    a->id = xstrdup(id);
    a->rule = rule;
    a->firm = firm;
    a->summary = xstrdup("");
    xgrow(&b->alerts, &b->cap, b->nalerts + 1, sizeof *b->alerts);
    b->alerts[b->nalerts] = a;
    slots_insert(b, b->nalerts++);
    return a;
}

void alertbook_adopt(alertbook_t *b, ab_alert_t *a)
{
    if ((b->nalerts + 1) * 2 > b->mask + 1) {
        free(b->slots);
        b->mask = b->mask * 2 + 1;
        b->slots = xcalloc(b->mask + 1, sizeof *b->slots);
        for (size_t k = 0; k < b->nalerts; k++)
            slots_insert(b, k);
    }
    xgrow(&b->alerts, &b->cap, b->nalerts + 1, sizeof *b->alerts);
    b->alerts[b->nalerts] = a;
    slots_insert(b, b->nalerts++);
    if (a->firing)
        b->firing++;
}

/* ---- lifecycle --------------------------------------------------------------- */

/* *dst (an owned string, or NULL) becomes a copy of src, in place when it
 * fits in what *dst holds: a basis is taken on every evaluation that changed
 * it, and its texts are mostly as long as the last ones (no malloc then). */
static void str_assign(char **dst, const char *src)
{
    size_t n = strlen(src);
    if (*dst && strlen(*dst) >= n) {
        memcpy(*dst, src, n + 1);
        return;
    }
    free(*dst);
    *dst = xstrdup(src);
}

static void take_basis(ab_alert_t *a, const ab_eval_t *ev)
{
    a->observed = ev->observed;
    a->expected = ev->expected;
    str_assign(&a->summary, ev->summary);
    for (uint32_t i = ev->ndetails; i < a->ndetails; i++)
        if (a->details[i].is_str)
            free(a->details[i].str);
    for (uint32_t i = 0; i < ev->ndetails; i++) {
        char *str = i < a->ndetails && a->details[i].is_str ? a->details[i].str : NULL;
        a->details[i] = ev->details[i];
        if (ev->details[i].is_str) {
            a->details[i].str = str;
            str_assign(&a->details[i].str, ev->details[i].str);
        } else {
            free(str);
        }
    }
    a->ndetails = ev->ndetails;
}

/* Did the inputs of a firing alert change? (a restated or late report) */
static bool basis_changed(const ab_alert_t *a, const ab_eval_t *ev)
{
    if (a->observed != ev->observed || a->expected != ev->expected || a->ndetails != ev->ndetails)
        return true;
    for (uint32_t i = 0; i < ev->ndetails; i++) {
        const ab_detail_t *x = &a->details[i], *y = &ev->details[i];
        if (strcmp(x->key, y->key) != 0 || x->is_str != y->is_str ||
            (x->is_str ? strcmp(x->str, y->str) != 0 : x->num != y->num))
            return true;
    }
    return false;
}

bool alertbook_wants_summary(alertbook_t *b, int rule, int firm, const ab_eval_t *ev)
{
    /* the branches of alertbook_eval that take the basis (take_basis) */
    const ab_alert_t *a = alertbook_get(b, rule, firm, false);
    if (!a)
        return ev->active;
    if (ev->active != a->firing)
        return true;
    if (ev->active)
        return ev->revisable && basis_changed(a, ev);
    return !ev->revisable || basis_changed(a, ev);
}

/* a changed in a way a restart must find: journaled at the flush. */
static void mark(alertbook_t *b, ab_alert_t *a)
{
    if (b->quiet || a->dirty)
        return; /* replay: the records that follow say what was published */
    a->dirty = true;
    xgrow(&b->dirty, &b->dirty_cap, b->ndirty + 1, sizeof *b->dirty);
    b->dirty[b->ndirty++] = a;
}

static void queue(alertbook_t *b, ab_alert_t *a, int state, bool reminder)
{
    if (b->quiet)
        return; /* replay: published before the restart (its record restores n) */
    /* Numbered when it happens, silenced or not, so that two daemons fed the
     * same batches (an HA pair) number an alert's events alike whatever each
     * one's silences, restarts and seqs: the subscribers' dedupe key. */
    if (reminder) {
        a->rn++;
    } else {
        a->n++;
        a->rn = 0;
    }
    mark(b, a);
    xgrow(&b->events, &b->events_cap, b->nevents + 1, sizeof *b->events);
    ab_event_t *e = &b->events[b->nevents++];
    e->state = state;
    e->reminder = reminder;
    e->n = a->n;
    e->rn = a->rn;
    e->a = a;
    e->observed = a->observed;
    e->expected = a->expected;
    e->since_ms = a->since_ms;
    e->summary = xstrdup(a->summary);
    e->ndetails = a->ndetails;
    for (uint32_t i = 0; i < a->ndetails; i++) {
        e->details[i] = a->details[i];
        if (a->details[i].is_str)
            e->details[i].str = xstrdup(a->details[i].str);
    }
}

static uint32_t flaps_within(const ab_alert_t *a, int64_t now_ms, int64_t window)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->nflaps && i < AB_FLAP_RING; i++)
        if (now_ms - a->flaps[i] < window)
            n++;
    return n;
}

/* A firing <-> resolved change: counted for flapping, then queued unless held. */
static void transition(alertbook_t *b, ab_alert_t *a, int state, int64_t now_ms)
{
    a->flaps[a->nflaps++ % AB_FLAP_RING] = now_ms;
    mark(b, a); /* held while flapping or not, the new state is durable */
    if (b->quiet)
        a->published_ms = now_ms; /* replayed: it was published then; reminders count from here */
    if (a->flapping)
        return;
    if (flaps_within(a, now_ms, b->cfg->flap_window_ms) >= b->cfg->flap_max) {
        a->flapping = true;
        queue(b, a, PROTO_ALERT_FLAPPING, false);
        return;
    }
    queue(b, a, state, false);
}

void alertbook_eval(alertbook_t *b, int rule, int firm, const ab_eval_t *ev, int64_t now_ms)
{
    ab_alert_t *a = alertbook_get(b, rule, firm, ev->active);
    if (!a)
        return;
    if (ev->active && !a->firing) {
        a->firing = true;
        a->since_ms = ev->ts_ms;
        b->firing++;
        take_basis(a, ev);
        transition(b, a, PROTO_ALERT_FIRING, now_ms);
    } else if (!ev->active && a->firing) {
        a->firing = false;
        b->firing--;
        take_basis(a, ev);
        transition(b, a, PROTO_ALERT_RESOLVED, now_ms);
    } else if (ev->active && ev->revisable && basis_changed(a, ev)) {
        take_basis(a, ev);
        if (!a->flapping)
            queue(b, a, PROTO_ALERT_REVISED, false);
    } else if (ev->active) {
        /* new values, same alert (a threshold still breached): keep the
         * latest for listings, publish nothing */
        a->observed = ev->observed;
    } else if (!ev->revisable || basis_changed(a, ev)) {
        /* not firing: keep the latest basis for listings (where a growth
         * rule stands in `clustermonctl cluster`), publish nothing */
        take_basis(a, ev);
    }
}

void alertbook_tick(alertbook_t *b, int64_t now_ms)
{
    for (size_t i = 0; i < b->nalerts; i++) {
        ab_alert_t *a = b->alerts[i];
        if (a->flapping && a->nflaps &&
            now_ms - a->flaps[(a->nflaps - 1) % AB_FLAP_RING] >= b->cfg->flap_window_ms) {
            /* settled: say where it ended up */
            a->flapping = false;
            queue(b, a, a->firing ? PROTO_ALERT_FIRING : PROTO_ALERT_RESOLVED, false);
            continue;
        }
        int64_t repeat = b->cfg->rules[a->rule].repeat_ms;
        if (a->firing && !a->flapping && repeat > 0 && now_ms - a->published_ms >= repeat)
            queue(b, a, PROTO_ALERT_FIRING, true);
    }
}

/* ---- publishing -------------------------------------------------------------- */

void alertbook_to_proto(const alertbook_t *b, const ab_alert_t *a, int state, proto_alert_t *out)
{
    const config_t *cfg = b->cfg;
    const config_rule_t *r = &cfg->rules[a->rule];
    const config_cluster_t *cl = &cfg->clusters[r->cluster];
    const firm_t *f = a->firm >= 0 ? &b->reg->firms[a->firm] : NULL;
    memset(out, 0, sizeof *out);
    out->id = proto_str(a->id);
    out->rule = proto_str(r->id);
    out->severity = (uint8_t)r->severity;
    out->state = (uint8_t)state;
    out->cluster = proto_str(cl->id);
    /* the rule's scope, as for its grouped alerts: nil when the rule is
     * cluster-wide, even for one firm's alert (the firm names it) */
    out->chain = proto_str(r->chain >= 0 ? cl->chains[r->chain] : NULL);
    out->firm = proto_str(f ? f->id : NULL);
    out->metric = proto_str(r->metric >= 0 ? cfg->metrics[r->metric].name : "any");
    out->observed = isfinite(a->observed) ? a->observed : 0;
    out->expected = isfinite(a->expected) ? a->expected : 0;
    out->summary = proto_str(a->summary);
    out->since_ms = a->since_ms > 0 ? a->since_ms : 0;
    /* as last published (the Clone pattern's snapshot entry is that message);
     * publish_one sets its own */
    out->ts_ms = a->published_ms > 0 ? a->published_ms : out->since_ms;
    out->seq = a->seq ? a->seq : 1;
    out->n = a->n;
    out->rn = a->rn;
    out->ndetails = a->ndetails;
    for (uint32_t i = 0; i < a->ndetails; i++) {
        out->details[i].key = proto_str(a->details[i].key);
        out->details[i].is_str = a->details[i].is_str;
        out->details[i].num = a->details[i].num;
        out->details[i].str = proto_str(a->details[i].is_str ? a->details[i].str : NULL);
    }
}

static void publish_one(alertbook_t *b, ab_event_t *e, int64_t now_ms)
{
    ab_alert_t *a = e->a;
    proto_alert_t p;
    alertbook_to_proto(b, a, e->state, &p);
    /* the basis of this event, not the alert's latest */
    p.observed = isfinite(e->observed) ? e->observed : 0;
    p.expected = isfinite(e->expected) ? e->expected : 0;
    p.since_ms = e->since_ms > 0 ? e->since_ms : 0;
    p.summary = proto_str(e->summary);
    p.ndetails = e->ndetails;
    for (uint32_t i = 0; i < e->ndetails; i++) {
        p.details[i].key = proto_str(e->details[i].key);
        p.details[i].is_str = e->details[i].is_str;
        p.details[i].num = e->details[i].num;
        p.details[i].str = proto_str(e->details[i].is_str ? e->details[i].str : NULL);
    }
    p.reminder = e->reminder;
    p.n = e->n;
    p.rn = e->rn;
    p.ts_ms = now_ms;
    if (alerts_publish(b->pub, &p) == 0)
        a->seq = p.seq;
    a->published_ms = now_ms;
    b->by_state[e->state]++;
}

/* One alert standing for n events of the same rule, cluster and state. */
static void publish_group(alertbook_t *b, ab_event_t *ev, size_t n, int64_t now_ms)
{
    const config_rule_t *r = &b->cfg->rules[ev[0].a->rule];
    const config_cluster_t *cl = &b->cfg->clusters[r->cluster];
    char id[PROTO_MAX_ALERT_ID_LEN + 1], summary[PROTO_MAX_TEXT_LEN], names[512];
    size_t off = 0;
    names[0] = '\0';
    for (size_t i = 0; i < n && i < 5 && off < sizeof names; i++) {
        const ab_alert_t *a = ev[i].a;
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                a->firm >= 0 ? b->reg->firms[a->firm].id : cl->id);
    }
    snprintf(id, sizeof id, "%s:%s:group", r->id, cl->id);
    snprintf(summary, sizeof summary, "%zu alerts of rule %s in %s are %s at once: %s%s", n, r->id,
             cl->id, proto_alert_state_name((proto_alert_state_t)ev[0].state), names,
             n > 5 ? ", ..." : "");
    proto_alert_t p;
    memset(&p, 0, sizeof p);
    p.id = proto_str(id);
    p.rule = proto_str(r->id);
    p.severity = (uint8_t)r->severity;
    p.state = (uint8_t)ev[0].state;
    p.cluster = proto_str(cl->id);
    p.chain = proto_str(r->chain >= 0 ? cl->chains[r->chain] : NULL);
    p.metric = proto_str(r->metric >= 0 ? b->cfg->metrics[r->metric].name : "any");
    p.observed = (double)n;
    p.summary = proto_str(summary);
    p.since_ms = now_ms;
    p.ts_ms = now_ms;
    p.count = (uint32_t)n;
    /* the same members with the same ordinals on both sides of a pair give
     * the same sum: one group event, one key */
    for (size_t i = 0; i < n; i++)
        p.n += ev[i].n;
    if (alerts_publish(b->pub, &p) == 0)
        for (size_t i = 0; i < n; i++)
            ev[i].a->seq = p.seq;
    for (size_t i = 0; i < n; i++)
        ev[i].a->published_ms = now_ms;
    b->grouped += n;
    b->by_state[ev[0].state]++;
}

static void journal_dirty(alertbook_t *b);

void alertbook_flush(alertbook_t *b, int64_t now_ms)
{
    if (b->nevents == 0) {
        journal_dirty(b); /* held transitions of flapping alerts */
        return;
    }
    silences_expire(b->silences, now_ms);
    /* drop silenced events first: they are tracked, not published */
    size_t n = 0;
    for (size_t i = 0; i < b->nevents; i++) {
        ab_event_t *e = &b->events[i];
        const config_rule_t *r = &b->cfg->rules[e->a->rule];
        const char *firm = e->a->firm >= 0 ? b->reg->firms[e->a->firm].id : NULL;
        if (silences_match(b->silences, r->id, b->cfg->clusters[r->cluster].id, firm, now_ms)) {
            b->suppressed++;
            e->a->published_ms = now_ms;
            event_free(e);
            continue;
        }
        b->events[n++] = *e;
    }
    /* Events are in evaluation order (deterministic); group per rule and
     * state, keeping the first occurrence's position. */
    if (n > b->flush_cap) {
        /* both arrays hold flush_cap entries: grown alike from the same size */
        size_t cap = b->flush_cap;
        xgrow(&b->flush_done, &cap, n, sizeof *b->flush_done);
        cap = b->flush_cap;
        xgrow(&b->flush_group, &cap, n, sizeof *b->flush_group);
        b->flush_cap = cap;
    }
    bool *done = b->flush_done;
    ab_event_t *group = b->flush_group;
    if (n)
        memset(done, 0, n * sizeof *done); /* done is NULL until a flush had events */
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        size_t g = 0;
        for (size_t j = i; j < n; j++) {
            if (!done[j] && b->events[j].a->rule == b->events[i].a->rule &&
                b->events[j].state == b->events[i].state &&
                b->events[j].reminder == b->events[i].reminder && b->events[j].a->firm >= 0) {
                bool seen = false; /* one alert twice in a pass counts once */
                for (size_t k = 0; k < g && !seen; k++)
                    seen = group[k].a == b->events[j].a;
                if (!seen)
                    group[g++] = b->events[j];
            }
        }
        if (g > b->cfg->group_max && b->events[i].a->firm >= 0) {
            for (size_t j = i; j < n; j++)
                if (b->events[j].a->rule == b->events[i].a->rule &&
                    b->events[j].state == b->events[i].state &&
                    b->events[j].reminder == b->events[i].reminder && b->events[j].a->firm >= 0)
                    done[j] = true;
            publish_group(b, group, g, now_ms);
        } else {
            done[i] = true;
            publish_one(b, &b->events[i], now_ms);
        }
    }
    for (size_t i = 0; i < n; i++)
        event_free(&b->events[i]);
    b->nevents = 0;
    journal_dirty(b);
}

/* ---- reload ------------------------------------------------------------------ */

static int rule_index(const config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* An alert whose rule or firm a reload took away, firing: published as
 * resolved, with old's names, and marked to be journaled as such. */
static void end_firing(alertbook_t *old, ab_alert_t *a, int64_t now_ms)
{
    proto_alert_t p;
    char summary[PROTO_MAX_TEXT_LEN];
    alertbook_to_proto(old, a, PROTO_ALERT_RESOLVED, &p);
    snprintf(summary, sizeof summary,
             "no longer watched after a reload (rule %s or its scope changed): %s",
             old->cfg->rules[a->rule].id, a->summary);
    p.summary = proto_str(summary);
    p.ts_ms = now_ms;
    p.ndetails = 0;
    p.n = ++a->n; /* a transition like any other */
    p.rn = a->rn = 0;
    if (alerts_publish(old->pub, &p) == 0)
        a->seq = p.seq;
    /* the alert as published: what its record says */
    a->firing = false;
    old->firing--;
    a->published_ms = now_ms;
    free(a->summary);
    a->summary = xstrdup(summary);
    details_free(a->details, a->ndetails);
    a->ndetails = 0;
    old->by_state[PROTO_ALERT_RESOLVED]++;
    mark(old, a);
}

void alertbook_carry_over(alertbook_t *b, alertbook_t *old, int64_t now_ms, alertbook_carry_t *ret)
{
    alertbook_flush(old, now_ms); /* nothing queued crosses over */
    b->journal = old->journal;
    b->journal_many = old->journal_many;
    b->journal_data = old->journal_data;
    b->quiet = old->quiet;
    memset(ret, 0, sizeof *ret);
    size_t left = 0;
    for (size_t i = 0; i < old->nalerts; i++) {
        ab_alert_t *a = old->alerts[i];
        const config_rule_t * or = &old->cfg->rules[a->rule];
        int rule = rule_index(b->cfg, or->id);
        int firm = -1;
        if (a->firm >= 0) {
            const char *fid = old->reg->firms[a->firm].id;
            firm = registry_find(b->reg, fid, strlen(fid));
        }
        bool keep = rule >= 0 && (a->firm < 0 ? b->cfg->rules[rule].type == or->type
                                              : firm >= 0 && rules_in_scope(&b->cfg->rules[rule],
                                                                            &b->reg->firms[firm]));
        if (keep) {
            a->rule = rule;
            a->firm = firm;
            alertbook_adopt(b, a);
            ret->kept++;
            continue;
        }
        if (a->firing) {
            end_firing(old, a, now_ms);
            ret->ended++;
        }
        old->alerts[left++] = a; /* freed with old */
    }
    old->nalerts = left;
    /* the slots index what was handed over: rebuilt for what is left */
    memset(old->slots, 0, (old->mask + 1) * sizeof *old->slots);
    for (size_t k = 0; k < old->nalerts; k++)
        slots_insert(old, k);
    journal_dirty(old); /* the ended ones, under old's names */
    /* the counters are the daemon's lifetime's (/metrics counters), not the config's */
    b->journaled = old->journaled;
    b->journal_failed = old->journal_failed;
    b->suppressed = old->suppressed;
    b->grouped = old->grouped;
    memcpy(b->by_state, old->by_state, sizeof b->by_state);
}

/* ---- durable state ------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_entry(const alertbook_t *b, const ab_alert_t *a, msgpack_packer *pk)
{
    msgpack_pack_array(pk, ENTRY_FIELDS);
    pack_str(pk, b->cfg->rules[a->rule].id);
    if (a->firm >= 0)
        pack_str(pk, b->reg->firms[a->firm].id);
    else
        msgpack_pack_nil(pk);
    msgpack_pack_uint8(pk, a->firing);
    msgpack_pack_uint8(pk, a->flapping);
    msgpack_pack_int64(pk, a->since_ms);
    msgpack_pack_int64(pk, a->published_ms);
    msgpack_pack_uint32(pk, a->pending_count);
    msgpack_pack_int64(pk, a->pending_since);
    msgpack_pack_double(pk, a->observed);
    msgpack_pack_double(pk, a->expected);
    pack_str(pk, a->summary);
    msgpack_pack_uint64(pk, a->seq);
    /* oldest first, so the ring is rebuilt in order (the newest decides
     * when a flapping alert has settled) */
    uint32_t nf = a->nflaps < AB_FLAP_RING ? a->nflaps : AB_FLAP_RING;
    uint32_t first = a->nflaps < AB_FLAP_RING ? 0 : a->nflaps % AB_FLAP_RING;
    msgpack_pack_array(pk, nf);
    for (uint32_t k = 0; k < nf; k++)
        msgpack_pack_int64(pk, a->flaps[(first + k) % AB_FLAP_RING]);
    msgpack_pack_map(pk, a->ndetails);
    for (uint32_t k = 0; k < a->ndetails; k++) {
        pack_str(pk, a->details[k].key);
        if (a->details[k].is_str)
            pack_str(pk, a->details[k].str);
        else
            msgpack_pack_double(pk, a->details[k].num);
    }
    msgpack_pack_uint64(pk, a->n);
    msgpack_pack_uint32(pk, a->rn);
}

void alertbook_pack(const alertbook_t *b, msgpack_packer *pk)
{
    msgpack_pack_array(pk, b->nalerts);
    for (size_t i = 0; i < b->nalerts; i++)
        pack_entry(b, b->alerts[i], pk);
}

/* Appends alert a's record to b->rec (which may hold others before it). */
static void pack_record(alertbook_t *b, const ab_alert_t *a)
{
    unsigned char tag = RECORD_ALERT;
    msgpack_sbuffer_write(&b->rec, (const char *)&tag, 1);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b->rec, msgpack_sbuffer_write);
    pack_entry(b, a, &pk);
}

static void journal_failed(alertbook_t *b, const ab_alert_t *a)
{
    if (b->journal_failed++ % 100 == 0)
        log_warnx("alert %s: its new state could not be journaled (%" PRIu64
                  " so far): a restart before the next snapshot may publish it again",
                  a->id, b->journal_failed);
}

/* The dirty alerts' records, packed one after another into b->rec, handed
 * to journal_many in one call (one WAL write): a batch can move hundreds. */
static void journal_all(alertbook_t *b)
{
    if (b->ndirty > b->rec_cap) {
        /* both arrays hold rec_cap entries: grown alike from the same size */
        size_t cap = b->rec_cap;
        xgrow(&b->rec_ends, &cap, b->ndirty, sizeof *b->rec_ends);
        cap = b->rec_cap;
        xgrow(&b->rec_iov, &cap, b->ndirty, sizeof *b->rec_iov);
        b->rec_cap = cap;
    }
    msgpack_sbuffer_clear(&b->rec);
    for (size_t i = 0; i < b->ndirty; i++) {
        pack_record(b, b->dirty[i]);
        b->rec_ends[i] = b->rec.size;
    }
    /* the pieces point into rec only now: packing may have moved it */
    for (size_t i = 0, from = 0; i < b->ndirty; from = b->rec_ends[i++])
        b->rec_iov[i] = (struct iovec){b->rec.data + from, b->rec_ends[i] - from};
    bool ok = b->journal_many(b->journal_data, b->rec_iov, b->ndirty) > 0;
    for (size_t i = 0; i < b->ndirty; i++) {
        ab_alert_t *a = b->dirty[i];
        a->dirty = false;
        if (ok) {
            a->journaled_firing = a->firing;
            b->journaled++;
        } else {
            journal_failed(b, a);
        }
    }
    b->ndirty = 0;
}

/* One record per alert changed by the pass just flushed, after its
 * publication: the record carries the seq it was published with. */
static void journal_dirty(alertbook_t *b)
{
    if (b->journal_many && b->ndirty > 0) {
        journal_all(b);
        return;
    }
    for (size_t i = 0; i < b->ndirty; i++) {
        ab_alert_t *a = b->dirty[i];
        a->dirty = false;
        if (!b->journal) {
            a->journaled_firing = a->firing; /* no journal: nothing more to do */
            continue;
        }
        msgpack_sbuffer_clear(&b->rec);
        pack_record(b, a);
        if (b->journal(b->journal_data, b->rec.data, b->rec.size) > 0) {
            a->journaled_firing = a->firing;
            b->journaled++;
        } else {
            journal_failed(b, a);
        }
    }
    b->ndirty = 0;
}

static bool is_float(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32;
}

static bool is_str_max(const msgpack_object *o, size_t max)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size <= max &&
           !memchr(o->via.str.ptr, '\0', o->via.str.size);
}

/* Checks one entry; the field at fault in why. */
static bool entry_ok(const msgpack_object *e, char *why, size_t size)
{
    int64_t t;
    if (e->type != MSGPACK_OBJECT_ARRAY ||
        (e->via.array.size != ENTRY_FIELDS_V1 && e->via.array.size != ENTRY_FIELDS)) {
        snprintf(why, size, "not an array of %d (or %d)", ENTRY_FIELDS, ENTRY_FIELDS_V1);
        return false;
    }
    const msgpack_object *v = e->via.array.ptr;
    const char *bad = NULL;
    if (!is_str_max(&v[0], PROTO_MAX_ID_LEN) || v[0].via.str.size == 0)
        bad = "rule";
    else if (v[1].type != MSGPACK_OBJECT_NIL &&
             (!is_str_max(&v[1], PROTO_MAX_ID_LEN) || v[1].via.str.size == 0))
        bad = "firm";
    else if (v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[2].via.u64 > 1)
        bad = "firing";
    else if (v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[3].via.u64 > 1)
        bad = "flapping";
    else if (!proto_obj_i64(&v[4], &t))
        bad = "since";
    else if (!proto_obj_i64(&v[5], &t))
        bad = "published";
    else if (v[6].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[6].via.u64 > UINT32_MAX)
        bad = "pending_count";
    else if (!proto_obj_i64(&v[7], &t))
        bad = "pending_since";
    else if (!is_float(&v[8]))
        bad = "observed";
    else if (!is_float(&v[9]))
        bad = "expected";
    else if (!is_str_max(&v[10], PROTO_MAX_TEXT_LEN))
        bad = "summary";
    else if (v[11].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        bad = "seq";
    else if (v[12].type != MSGPACK_OBJECT_ARRAY || v[12].via.array.size > AB_FLAP_RING)
        bad = "flaps";
    else if (v[13].type != MSGPACK_OBJECT_MAP || v[13].via.map.size > PROTO_MAX_DETAILS)
        bad = "details";
    for (uint32_t k = 0; !bad && k < v[12].via.array.size; k++)
        if (!proto_obj_i64(&v[12].via.array.ptr[k], &t))
            bad = "flaps";
    if (!bad && e->via.array.size == ENTRY_FIELDS &&
        (v[14].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
         v[15].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[15].via.u64 > UINT32_MAX))
        bad = "n";
    for (uint32_t k = 0; !bad && k < v[13].via.map.size; k++) {
        const msgpack_object_kv *kv = &v[13].via.map.ptr[k];
        if (!is_str_max(&kv->key, PROTO_MAX_ID_LEN) || kv->key.via.str.size == 0 ||
            !(is_float(&kv->val) || is_str_max(&kv->val, PROTO_MAX_TEXT_LEN)))
            bad = "details";
    }
    if (bad)
        snprintf(why, size, "%s: malformed", bad);
    return !bad;
}

/* The alert a checked entry names, created if need be; NULL if the config
 * or registry no longer has its rule or firm. */
static ab_alert_t *entry_alert(alertbook_t *b, const msgpack_object *v)
{
    int rule = -1, firm = -1;
    for (size_t k = 0; k < b->cfg->nrules && rule < 0; k++)
        if (strlen(b->cfg->rules[k].id) == v[0].via.str.size &&
            memcmp(b->cfg->rules[k].id, v[0].via.str.ptr, v[0].via.str.size) == 0)
            rule = (int)k;
    if (v[1].type == MSGPACK_OBJECT_STR)
        firm = registry_find(b->reg, v[1].via.str.ptr, v[1].via.str.size);
    if (rule < 0 || (v[1].type == MSGPACK_OBJECT_STR && firm < 0))
        return NULL;
    return alertbook_get(b, rule, firm, true);
}

/* Gives a the state of a checked entry, whole. */
static void entry_load(alertbook_t *b, ab_alert_t *a, const msgpack_object *v, uint32_t nfields)
{
    bool was = a->firing;
    int64_t t = 0;
    a->firing = v[2].via.u64 != 0;
    a->flapping = v[3].via.u64 != 0;
    proto_obj_i64(&v[4], &a->since_ms);
    proto_obj_i64(&v[5], &a->published_ms);
    a->pending_count = (uint32_t)v[6].via.u64;
    proto_obj_i64(&v[7], &t);
    a->pending_since = t;
    a->observed = v[8].via.f64;
    a->expected = v[9].via.f64;
    free(a->summary);
    a->summary = xstrndup(v[10].via.str.ptr, v[10].via.str.size);
    a->seq = v[11].via.u64;
    a->nflaps = v[12].via.array.size;
    for (uint32_t k = 0; k < a->nflaps; k++)
        proto_obj_i64(&v[12].via.array.ptr[k], &a->flaps[k]);
    details_free(a->details, a->ndetails);
    a->ndetails = v[13].via.map.size;
    for (uint32_t k = 0; k < a->ndetails; k++) {
        const msgpack_object_kv *kv = &v[13].via.map.ptr[k];
        ab_detail_t *d = &a->details[k];
        snprintf(d->key, sizeof d->key, "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
        d->is_str = kv->val.type == MSGPACK_OBJECT_STR;
        d->num = d->is_str ? 0 : kv->val.via.f64;
        d->str = d->is_str ? xstrndup(kv->val.via.str.ptr, kv->val.via.str.size) : NULL;
    }
    /* an entry written before the ordinals keeps what replay counted */
    if (nfields == ENTRY_FIELDS) {
        a->n = v[14].via.u64;
        a->rn = (uint32_t)v[15].via.u64;
    }
    a->journaled_firing = a->firing;
    if (a->firing != was) {
        if (a->firing)
            b->firing++;
        else
            b->firing--;
    }
}

int alertbook_unpack(alertbook_t *b, const msgpack_object *o, bool apply, uint64_t *ret_unknown,
                     char *err, size_t errlen)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "alerts: missing or not an array");
        return -1;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        char why[64];
        if (!entry_ok(&o->via.array.ptr[i], why, sizeof why)) {
            snprintf(err, errlen, "alerts: entry %u: %s", i + 1, why);
            return -1;
        }
    }
    for (uint32_t i = 0; apply && i < o->via.array.size; i++) {
        const msgpack_object *v = o->via.array.ptr[i].via.array.ptr;
        ab_alert_t *a = entry_alert(b, v);
        if (a)
            entry_load(b, a, v, o->via.array.ptr[i].via.array.size);
        else if (ret_unknown)
            (*ret_unknown)++;
    }
    return 0;
}

int alertbook_replay(alertbook_t *b, const void *payload, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = payload;
    if (len < 2 || p[0] != RECORD_ALERT) {
        snprintf(err, errlen, "alert record: too short or not tagged 0x%02x", RECORD_ALERT);
        return -1;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    msgpack_object o;
    size_t off = 0;
    char why[64];
    int rc = -1;
    if (msgpack_unpack((const char *)p + 1, len - 1, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS ||
        off != len - 1) {
        snprintf(err, errlen, "alert record: not one MessagePack value");
    } else if (!entry_ok(&o, why, sizeof why)) {
        snprintf(err, errlen, "alert record: %s", why);
    } else {
        ab_alert_t *a = entry_alert(b, o.via.array.ptr);
        rc = 1;
        if (a) {
            entry_load(b, a, o.via.array.ptr, o.via.array.size);
            /* the seq file is written after the record: repair it if a
             * kill came between the two */
            const config_rule_t *r = &b->cfg->rules[a->rule];
            alerts_seq_raise(b->pub, b->cfg->clusters[r->cluster].id, a->seq);
            rc = 0;
        }
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

void alertbook_recovered(alertbook_t *b)
{
    for (size_t i = 0; i < b->nalerts; i++) {
        ab_alert_t *a = b->alerts[i];
        if (a->firing == a->journaled_firing || a->flapping)
            continue;
        /* its transition was replayed from a batch but never published */
        queue(b, a, a->firing ? PROTO_ALERT_FIRING : PROTO_ALERT_RESOLVED, false);
    }
}
