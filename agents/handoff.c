/* handoff.c -- see handoff.h. */
#include "agents/handoff.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort();
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void record_free(handoff_record_t *r)
{
    free(r->id);
    r->id = NULL;
    json_decref(r->alert);
    r->alert = NULL;
}

void handoff_init(handoff_t *d, unsigned retries, int64_t delay_ms, int64_t max_delay_ms)
{
    memset(d, 0, sizeof *d);
    d->retries = retries;
    d->delay_ms = delay_ms > 0 ? delay_ms : 1;
    d->max_delay_ms = max_delay_ms >= d->delay_ms ? max_delay_ms : d->delay_ms;
    d->next_tag = 1;
}

void handoff_free(handoff_t *d)
{
    for (size_t i = 0; i < d->ndone; i++)
        record_free(&d->done[i]);
    for (size_t i = 0; i < d->nqueue; i++)
        record_free(&d->queue[i].r);
    free(d->done);
    free(d->queue);
    free(d->floor);
    memset(d, 0, sizeof *d);
}

static handoff_record_t *done_find(const handoff_t *d, const char *id)
{
    for (size_t i = 0; i < d->ndone; i++)
        if (strcmp(d->done[i].id, id) == 0)
            return &d->done[i];
    return NULL;
}

/* The last thing known of id: its last pending event, else its record. */
static const handoff_record_t *latest(const handoff_t *d, const char *id)
{
    for (size_t i = d->nqueue; i-- > 0;)
        if (strcmp(d->queue[i].r.id, id) == 0)
            return &d->queue[i].r;
    return done_find(d, id);
}

/* Makes r (moved in: the caller's copy is emptied) the record of its id, or
 * drops the record for a resolved r. An older event never overwrites a
 * newer record (a group's members are recorded before earlier events of
 * theirs may finish). */
static void record_set(handoff_t *d, handoff_record_t *r)
{
    handoff_record_t *old = done_find(d, r->id);
    if (old && r->seq < old->seq) {
        record_free(r);
        return;
    }
    if (r->state == PROTO_ALERT_RESOLVED) {
        if (old) {
            record_free(old);
            *old = d->done[--d->ndone];
        }
        record_free(r);
        return;
    }
    if (!old) {
        if (d->ndone == d->done_cap) {
            d->done_cap = d->done_cap ? d->done_cap * 2 : 64;
            d->done = xrealloc(d->done, d->done_cap * sizeof *d->done);
        }
        old = &d->done[d->ndone++];
    } else {
        record_free(old);
    }
    *old = *r;
    /* revised and reminders are events; the condition they report is firing */
    if (old->state == PROTO_ALERT_REVISED)
        old->state = PROTO_ALERT_FIRING;
    memset(r, 0, sizeof *r);
}

static void fill(handoff_record_t *r, const char *id, size_t idlen, const char *cluster,
                 size_t clen, int state, uint64_t seq, json_t *alert)
{
    memset(r, 0, sizeof *r);
    r->id = xstrndup(id, idlen);
    if (clen > PROTO_MAX_ID_LEN)
        clen = PROTO_MAX_ID_LEN;
    memcpy(r->cluster, cluster, clen);
    r->state = state;
    r->seq = seq;
    r->alert = alert;
}

static handoff_event_t *enqueue(handoff_t *d, handoff_record_t *r, unsigned failures)
{
    if (d->nqueue == d->queue_cap) {
        d->queue_cap = d->queue_cap ? d->queue_cap * 2 : 64;
        d->queue = xrealloc(d->queue, d->queue_cap * sizeof *d->queue);
    }
    handoff_event_t *e = &d->queue[d->nqueue++];
    memset(e, 0, sizeof *e);
    e->r = *r;
    memset(r, 0, sizeof *r);
    e->tag = d->next_tag++;
    e->failures = failures;
    return e;
}

void handoff_live(handoff_t *d, const proto_alert_t *a, json_t *alert)
{
    handoff_record_t r;
    fill(&r, a->id.ptr, a->id.len, a->cluster.ptr, a->cluster.len, a->state, a->seq, alert);
    enqueue(d, &r, 0);
}

bool handoff_snapshot_alert(handoff_t *d, const proto_alert_t *a, uint64_t floor, json_t *alert)
{
    char id[PROTO_MAX_ALERT_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", (int)a->id.len, a->id.ptr);
    const handoff_record_t *k = latest(d, id);
    if (a->seq <= floor || (k && k->seq >= a->seq)) {
        json_decref(alert); /* seen live already, or known at this seq */
        return false;
    }
    json_object_set_new(alert, "snapshot", json_true());
    handoff_record_t r;
    fill(&r, a->id.ptr, a->id.len, a->cluster.ptr, a->cluster.len, a->state, a->seq, alert);
    enqueue(d, &r, 0);
    d->from_snapshot++;
    return true;
}

void handoff_covered(handoff_t *d, const proto_alert_t *a, json_t *alert)
{
    handoff_record_t r;
    fill(&r, a->id.ptr, a->id.len, a->cluster.ptr, a->cluster.len, a->state, a->seq, alert);
    record_set(d, &r);
}

static bool listed(const clone_t *c, const char *cluster)
{
    for (size_t i = 0; i < c->nseqs; i++)
        if (strcmp(c->seqs[i].cluster, cluster) == 0)
            return true;
    return false;
}

/* The resolved event the subscriber can vouch for: that it no longer fires. */
static json_t *synthesize(const json_t *last)
{
    json_t *j = json_deep_copy(last);
    if (!j)
        abort();
    json_object_set_new(j, "state", json_string("resolved"));
    json_object_set_new(j, "seq", json_null());
    json_object_set_new(j, "ts", json_null());
    json_object_set_new(j, "ts_ms", json_null());
    json_object_set_new(j, "observed", json_null());
    json_object_del(j, "details");
    json_object_del(j, "reminder");
    json_object_del(j, "count");
    json_object_set_new(j, "snapshot", json_true());
    json_object_set_new(j, "synthesized", json_true());
    return j;
}

static bool str_member_eq(const json_t *o, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && want && strcmp(v, want) == 0;
}

size_t handoff_snapshot_end(handoff_t *d, const clone_t *fresh, const char *group_cluster,
                            const char *group_rule, handoff_keep_cb keep, void *data)
{
    /* Candidates first: queueing while walking the queue would move it. */
    handoff_record_t *cand = NULL;
    size_t ncand = 0, queued = 0;
    const size_t total = d->ndone + d->nqueue;
    cand = xrealloc(NULL, total * sizeof *cand);
    for (size_t i = 0; i < total; i++) {
        const handoff_record_t *r = i < d->ndone ? &d->done[i] : &d->queue[i - d->ndone].r;
        if (latest(d, r->id) != r || r->state == PROTO_ALERT_RESOLVED ||
            !listed(fresh, r->cluster) || clone_has(fresh, r->id))
            continue;
        if (r->alert == NULL || (keep && !keep(r->alert, data)))
            continue;
        cand[ncand++] = *r; /* borrowed: used before anything moves */
    }
    uint64_t *seqs = xrealloc(NULL, ncand * sizeof *seqs);
    json_t **bodies = xrealloc(NULL, ncand * sizeof *bodies);
    bool *covered = xrealloc(NULL, ncand * sizeof *covered);
    char **ids = xrealloc(NULL, ncand * sizeof *ids);
    for (size_t i = 0; i < ncand; i++) {
        seqs[i] = clone_seq(fresh, proto_str(cand[i].cluster));
        ids[i] = xstrndup(cand[i].id, strlen(cand[i].id));
        /* a resolved group of its rule told of it only if it was delivered, not pending */
        covered[i] = group_rule && strcmp(cand[i].cluster, group_cluster) == 0 &&
                     str_member_eq(cand[i].alert, "rule", group_rule) &&
                     done_find(d, cand[i].id) == latest(d, cand[i].id);
        bodies[i] = covered[i] ? NULL : synthesize(cand[i].alert);
    }
    for (size_t i = 0; i < ncand; i++) {
        handoff_record_t r;
        size_t idlen = strlen(ids[i]);
        fill(&r, ids[i], idlen, cand[i].cluster, strlen(cand[i].cluster), PROTO_ALERT_RESOLVED,
             seqs[i], bodies[i]);
        if (covered[i]) {
            record_set(d, &r);
        } else {
            enqueue(d, &r, 0);
            d->synthesized++;
            queued++;
        }
        free(ids[i]);
    }
    free(ids);
    free(covered);
    free(bodies);
    free(seqs);
    free(cand);
    return queued;
}

static bool earlier_of_same_id(const handoff_t *d, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(d->queue[j].r.id, d->queue[i].r.id) == 0)
            return true;
    return false;
}

const handoff_event_t *handoff_next(handoff_t *d, int64_t now_ms)
{
    for (size_t i = 0; i < d->nqueue; i++) {
        handoff_event_t *e = &d->queue[i];
        if (e->running || e->not_before_ms > now_ms || earlier_of_same_id(d, i))
            continue;
        e->running = true;
        return e;
    }
    return NULL;
}

int64_t handoff_wait_ms(const handoff_t *d, int64_t now_ms)
{
    int64_t best = -1;
    for (size_t i = 0; i < d->nqueue; i++) {
        const handoff_event_t *e = &d->queue[i];
        if (e->running)
            continue;
        int64_t w = e->not_before_ms > now_ms ? e->not_before_ms - now_ms : 0;
        if ((best < 0 || w < best) && !earlier_of_same_id(d, i))
            best = w;
    }
    return best;
}

static int64_t backoff(const handoff_t *d, unsigned failures)
{
    int64_t delay = d->delay_ms;
    for (unsigned i = 1; i < failures && delay < d->max_delay_ms; i++)
        delay *= 2;
    return delay < d->max_delay_ms ? delay : d->max_delay_ms;
}

handoff_outcome_t handoff_done(handoff_t *d, uint64_t tag, bool ok, int64_t now_ms,
                               int64_t *ret_delay_ms, char *ret_id, size_t idlen,
                               unsigned *ret_failures)
{
    size_t i = 0;
    while (i < d->nqueue && d->queue[i].tag != tag)
        i++;
    if (i == d->nqueue)
        return HANDOFF_UNKNOWN;
    handoff_event_t *e = &d->queue[i];
    e->running = false;
    if (ret_id && idlen)
        snprintf(ret_id, idlen, "%s", e->r.id);
    handoff_outcome_t out = HANDOFF_OK;
    if (!ok) {
        e->failures++;
        d->failures++;
        if (e->failures <= d->retries) {
            e->not_before_ms = now_ms + backoff(d, e->failures);
            if (ret_delay_ms)
                *ret_delay_ms = e->not_before_ms - now_ms;
            if (ret_failures)
                *ret_failures = e->failures;
            return HANDOFF_RETRY;
        }
        out = HANDOFF_GAVE_UP;
        d->given_up++;
    } else {
        d->delivered++;
    }
    if (ret_failures)
        *ret_failures = e->failures;
    handoff_record_t r = e->r;
    memmove(e, e + 1, (d->nqueue - i - 1) * sizeof *e); /* keeps the order */
    d->nqueue--;
    record_set(d, &r);
    return out;
}

size_t handoff_pending(const handoff_t *d)
{
    return d->nqueue;
}

uint64_t handoff_floor(const handoff_t *d, const char *cluster)
{
    for (size_t i = 0; i < d->nfloor; i++)
        if (strcmp(d->floor[i].cluster, cluster) == 0)
            return d->floor[i].seq;
    return 0;
}

void handoff_floor_reset(handoff_t *d, const char *cluster)
{
    for (size_t i = 0; i < d->nfloor; i++)
        if (strcmp(d->floor[i].cluster, cluster) == 0)
            d->floor[i].seq = 0;
}

/* ---- the state file --------------------------------------------------------- */

static json_t *record_json(const handoff_record_t *r, bool with_id)
{
    json_t *o = json_object();
    if (with_id) {
        json_object_set_new(o, "id", json_string(r->id));
        json_object_set_new(o, "cluster", json_string(r->cluster));
    }
    json_object_set_new(o, "state",
                        json_string(proto_alert_state_name((proto_alert_state_t)r->state)));
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    json_object_set(o, "alert", r->alert ? r->alert : json_null());
    return o;
}

void handoff_save(const handoff_t *d, json_t *root)
{
    json_t *delivered = json_object(), *pending = json_array();
    for (size_t i = 0; i < d->ndone; i++) {
        const handoff_record_t *r = &d->done[i];
        json_t *cl = json_object_get(delivered, r->cluster);
        if (!cl) {
            cl = json_object();
            json_object_set_new(delivered, r->cluster, cl);
        }
        json_object_set_new(cl, r->id, record_json(r, false));
    }
    for (size_t i = 0; i < d->nqueue; i++) {
        json_t *o = record_json(&d->queue[i].r, true);
        json_object_set_new(o, "failures", json_integer(d->queue[i].failures));
        json_array_append_new(pending, o);
    }
    json_object_set_new(root, "delivered", delivered);
    json_object_set_new(root, "pending", pending);
}

/* Reads one record's fields from o; path names it for errors. */
static int record_from_json(const json_t *o, const char *path, const char *id, const char *cluster,
                            handoff_record_t *r, char *err, size_t errlen)
{
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: not an object", path);
        return -1;
    }
    if (!id || !*id || strlen(id) > PROTO_MAX_ALERT_ID_LEN) {
        snprintf(err, errlen, "%s.id: not an alert id (1..%d bytes)", path, PROTO_MAX_ALERT_ID_LEN);
        return -1;
    }
    if (!cluster || !*cluster || strlen(cluster) > PROTO_MAX_ID_LEN) {
        snprintf(err, errlen, "%s.cluster: not a cluster id (1..%d bytes)", path, PROTO_MAX_ID_LEN);
        return -1;
    }
    const char *st = json_string_value(json_object_get(o, "state"));
    int state = st ? proto_alert_state_from_name(proto_str(st)) : -1;
    if (state < 0) {
        snprintf(err, errlen, "%s.state: not an alert state", path);
        return -1;
    }
    const json_t *seq = json_object_get(o, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
        snprintf(err, errlen, "%s.seq: not a non-negative integer", path);
        return -1;
    }
    const json_t *alert = json_object_get(o, "alert");
    if (alert && !json_is_object(alert) && !json_is_null(alert)) {
        snprintf(err, errlen, "%s.alert: not an object", path);
        return -1;
    }
    fill(r, id, strlen(id), cluster, strlen(cluster), state, (uint64_t)json_integer_value(seq),
         json_is_object(alert) ? json_deep_copy(alert) : NULL);
    return 0;
}

int handoff_load(handoff_t *d, const json_t *root, char *err, size_t errlen)
{
    handoff_t n;
    char path[PROTO_MAX_ID_LEN + PROTO_MAX_ALERT_ID_LEN + 64];
    handoff_init(&n, d->retries, d->delay_ms, d->max_delay_ms);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto fail;
    }
    json_t *seqs = json_object_get(root, "seqs"), *delivered = json_object_get(root, "delivered"),
           *pending = json_object_get(root, "pending");
    if (seqs && !json_is_object(seqs)) {
        snprintf(err, errlen, "seqs: not an object");
        goto fail;
    }
    if (seqs) {
        n.floor = xrealloc(NULL, json_object_size(seqs) * sizeof *n.floor);
        const char *cl;
        json_t *v;
        json_object_foreach(seqs, cl, v)
        {
            if (!*cl || strlen(cl) > PROTO_MAX_ID_LEN || !json_is_integer(v) ||
                json_integer_value(v) < 0) {
                snprintf(err, errlen, "seqs.%.64s: not a cluster and a non-negative integer", cl);
                goto fail;
            }
            clone_seq_t *f = &n.floor[n.nfloor++];
            memset(f, 0, sizeof *f);
            memcpy(f->cluster, cl, strlen(cl));
            f->seq = (uint64_t)json_integer_value(v);
        }
    }
    if (delivered && !json_is_object(delivered)) {
        snprintf(err, errlen, "delivered: not an object");
        goto fail;
    }
    if (delivered) {
        const char *cl, *id;
        json_t *ids, *o;
        json_object_foreach(delivered, cl, ids)
        {
            if (!json_is_object(ids)) {
                snprintf(err, errlen, "delivered.%.64s: not an object", cl);
                goto fail;
            }
            json_object_foreach(ids, id, o)
            {
                handoff_record_t r;
                snprintf(path, sizeof path, "delivered.%.64s.%.128s", cl, id);
                if (record_from_json(o, path, id, cl, &r, err, errlen) != 0)
                    goto fail;
                record_set(&n, &r);
            }
        }
    }
    if (pending && !json_is_array(pending)) {
        snprintf(err, errlen, "pending: not an array");
        goto fail;
    }
    for (size_t i = 0; pending && i < json_array_size(pending); i++) {
        const json_t *o = json_array_get(pending, i);
        handoff_record_t r;
        snprintf(path, sizeof path, "pending[%zu]", i);
        if (record_from_json(o, path, json_string_value(json_object_get(o, "id")),
                             json_string_value(json_object_get(o, "cluster")), &r, err,
                             errlen) != 0)
            goto fail;
        const json_t *f = json_object_get(o, "failures");
        if (!r.alert || (f && (!json_is_integer(f) || json_integer_value(f) < 0))) {
            snprintf(err, errlen, "%s.%s", path,
                     r.alert ? "failures: not a non-negative integer"
                             : "alert: missing (the command's input)");
            record_free(&r);
            goto fail;
        }
        enqueue(&n, &r, f ? (unsigned)json_integer_value(f) : 0);
    }
    n.next_tag = n.next_tag > d->next_tag ? n.next_tag : d->next_tag;
    handoff_free(d);
    *d = n;
    return 0;
fail:
    handoff_free(&n);
    return -1;
}
