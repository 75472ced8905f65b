/* clone.c -- see clone.h. */
#include "agents/clone.h"

#include "proto/fileio.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

void clone_init(clone_t *c)
{
    memset(c, 0, sizeof *c);
}

static void clear(clone_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i].id);
    c->n = 0;
    c->nseqs = 0;
}

void clone_free(clone_t *c)
{
    clear(c);
    free(c->items);
    c->items = NULL;
    c->cap = 0;
    free(c->seqs);
    c->seqs = NULL;
    c->seqs_cap = 0;
}

static clone_seq_t *seq_find(const clone_t *c, proto_str_t cluster)
{
    for (size_t i = 0; i < c->nseqs; i++)
        if (proto_str_eq(cluster, c->seqs[i].cluster))
            return &c->seqs[i];
    return NULL;
}

/* The slot of cluster, made (at 0) if missing; NULL for an id no daemon sends. */
static clone_seq_t *seq_get(clone_t *c, proto_str_t cluster)
{
    clone_seq_t *s = seq_find(c, cluster);
    if (s || cluster.len == 0 || cluster.len > PROTO_MAX_ID_LEN)
        return s;
    if (c->nseqs == c->seqs_cap) {
        size_t ncap = c->seqs_cap ? c->seqs_cap * 2 : 8;
        clone_seq_t *ns = realloc(c->seqs, ncap * sizeof *ns);
        if (!ns)
            abort();
        c->seqs = ns;
        c->seqs_cap = ncap;
    }
    s = &c->seqs[c->nseqs++];
    memset(s, 0, sizeof *s);
    memcpy(s->cluster, cluster.ptr, cluster.len);
    return s;
}

uint64_t clone_seq(const clone_t *c, proto_str_t cluster)
{
    const clone_seq_t *s = seq_find(c, cluster);
    return s ? s->seq : 0;
}

void clone_advance(clone_t *c, proto_str_t cluster, uint64_t seq)
{
    clone_seq_t *s = seq_get(c, cluster);
    if (s && seq > s->seq)
        s->seq = seq;
}

static clone_entry_t *find(clone_t *c, proto_str_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->items[i].id) == id.len && memcmp(c->items[i].id, id.ptr, id.len) == 0)
            return &c->items[i];
    return NULL;
}

/* Sets or removes a's entry; the seqs are the caller's. */
static void apply_entry(clone_t *c, const proto_alert_t *a)
{
    clone_entry_t *e = find(c, a->id);
    if (a->state == PROTO_ALERT_RESOLVED) {
        if (e) {
            free(e->id);
            *e = c->items[--c->n];
        }
        return;
    }
    if (!e) {
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 64;
            clone_entry_t *ni = realloc(c->items, ncap * sizeof *ni);
            if (!ni)
                abort();
            c->items = ni;
            c->cap = ncap;
        }
        e = &c->items[c->n++];
        e->id = malloc(a->id.len + 1);
        if (!e->id)
            abort();
        memcpy(e->id, a->id.ptr, a->id.len);
        e->id[a->id.len] = '\0';
    }
    /* revised is an event, not a condition: the alert still fires */
    e->state = a->state == PROTO_ALERT_REVISED ? PROTO_ALERT_FIRING : a->state;
    e->seq = a->seq;
}

void clone_apply(clone_t *c, const proto_alert_t *a)
{
    apply_entry(c, a);
    clone_advance(c, a->cluster, a->seq);
}

clone_verdict_t clone_check(const clone_t *c, proto_str_t cluster, uint64_t seq)
{
    const clone_seq_t *s = seq_find(c, cluster);
    if (!s && !c->synced)
        return CLONE_APPLY; /* no snapshot to be current to: take the stream as it comes */
    uint64_t last = s ? s->seq : 0;
    if (seq == last + 1)
        return CLONE_APPLY;
    return seq <= last ? CLONE_OLD : CLONE_GAP;
}

bool clone_heartbeat(clone_t *c, proto_str_t cluster, uint64_t seq)
{
    const clone_seq_t *s = seq_find(c, cluster);
    if (s)
        return seq > s->seq;
    if (seq == 0 || !c->synced) {
        /* nothing published there yet, or no snapshot to be stale against:
         * remember where the cluster stands */
        clone_advance(c, cluster, seq);
        return !c->synced && seq > 0;
    }
    return true;
}

int clone_snapshot(clone_t *c, void *ctx, const char *endpoint, const clientkey_t *key,
                   int timeout_ms, clone_alert_cb cb, void *data, char *err, size_t errlen)
{
    int rc = -1, linger = 0;
    msgpack_sbuffer req;
    msgpack_sbuffer_init(&req);
    proto_ctl_request_t r = {.cmd = proto_str("alerts")};
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 8192);
    if (!sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto out;
    }
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (clientkey_setup(key, sock, err, errlen) != 0)
        goto out;
    if (proto_ctl_request_encode(&r, &req) != PROTO_OK || zmq_connect(sock, endpoint) != 0 ||
        zmq_send(sock, req.data, req.size, 0) < 0) {
        snprintf(err, errlen, "cannot ask %s: %s", endpoint, zmq_strerror(errno));
        goto out;
    }
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0 || zmq_msg_recv(&msg, sock, 0) < 0) {
        snprintf(err, errlen, "no snapshot from %s within %d ms", endpoint, timeout_ms);
        goto out;
    }
    bool ok;
    proto_str_t reason;
    msgpack_object body;
    char why[PROTO_ERRLEN];
    if (proto_ctl_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &zone, &ok, &reason, &body,
                               why, sizeof why) != PROTO_OK) {
        snprintf(err, errlen, "malformed snapshot reply: %s", why);
        goto out;
    }
    if (!ok) {
        snprintf(err, errlen, "snapshot refused: %.*s", (int)reason.len, reason.ptr);
        goto out;
    }
    const msgpack_object *seqs = proto_obj_get(&body, "seqs"),
                         *alerts = proto_obj_get(&body, "alerts");
    if (!seqs || seqs->type != MSGPACK_OBJECT_MAP || !alerts ||
        alerts->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "snapshot reply without seqs and alerts%s",
                 proto_obj_get(&body, "seq") ? " (a daemon with one global alert seq: upgrade it)"
                                             : "");
        goto out;
    }
    for (uint32_t i = 0; i < seqs->via.map.size; i++) {
        const msgpack_object_kv *kv = &seqs->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0 ||
            kv->key.via.str.size > PROTO_MAX_ID_LEN ||
            kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(err, errlen, "snapshot reply: seqs entry %u is not a cluster and a seq",
                     i + 1);
            goto out;
        }
    }
    clear(c);
    for (uint32_t i = 0; i < seqs->via.map.size; i++) {
        const msgpack_object_kv *kv = &seqs->via.map.ptr[i];
        proto_str_t cl = {kv->key.via.str.ptr, kv->key.via.str.size};
        clone_advance(c, cl, kv->val.via.u64);
    }
    c->synced = true;
    for (uint32_t i = 0; i < alerts->via.array.size; i++) {
        const msgpack_object *o = &alerts->via.array.ptr[i];
        proto_alert_t a;
        if (o->type != MSGPACK_OBJECT_BIN ||
            proto_alert_decode(o->via.bin.ptr, o->via.bin.size, &a, why, sizeof why) != PROTO_OK)
            continue;       /* one bad entry does not spoil the rest */
        apply_entry(c, &a); /* current to the snapshot's seqs, not its newest alert's */
        if (cb)
            cb(&a, data);
    }
    c->snapshots++;
    rc = 0;
out:
    msgpack_zone_destroy(&zone);
    zmq_msg_close(&msg);
    if (sock)
        zmq_close(sock);
    msgpack_sbuffer_destroy(&req);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const clone_entry_t *)a)->id, ((const clone_entry_t *)b)->id);
}

bool clone_has(const clone_t *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].id, id) == 0)
            return true;
    return false;
}

json_t *clone_state_json(const clone_t *c)
{
    clone_entry_t *sorted = malloc((c->n ? c->n : 1) * sizeof *sorted);
    if (!sorted)
        abort();
    if (c->n) {
        memcpy(sorted, c->items, c->n * sizeof *sorted);
        qsort(sorted, c->n, sizeof *sorted, cmp_entry);
    }
    json_t *root = json_object(), *arr = json_array(), *seqs = json_object();
    for (size_t i = 0; i < c->nseqs; i++)
        json_object_set_new(seqs, c->seqs[i].cluster, json_integer((json_int_t)c->seqs[i].seq));
    json_object_set_new(root, "seqs", seqs);
    for (size_t i = 0; i < c->n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "id", json_string(sorted[i].id));
        json_object_set_new(e, "state", json_string(proto_alert_state_name(sorted[i].state)));
        json_object_set_new(e, "seq", json_integer((json_int_t)sorted[i].seq));
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "firing", arr);
    free(sorted);
    return root;
}

int clone_write_state(const clone_t *c, const char *path)
{
    json_t *root = clone_state_json(c);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS), err[256];
    json_decref(root);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    int rc = fileio_write_atomic(path, text, strlen(text), 0600, err, sizeof err);
    free(text);
    return rc;
}
