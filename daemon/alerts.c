/* alerts.c -- see alerts.h. */
#include "daemon/alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/ids.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/xalloc.h"
#include "proto/bytes.h"

#define SUB_LOGS_PER_SECOND 5

#define SEQ_MAGIC "CMASEQ\0"
#define SEQ_FORMAT 1
#define SEQ_HEADER 16
#define SEQ_RECORD (PROTO_MAX_ID_LEN + 8)

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    return pwrite(fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

static alerts_seq_t *seq_slot(alerts_t *al, const char *cluster, size_t len, bool create)
{
    for (size_t i = 0; i < al->nseqs; i++)
        if (strlen(al->seqs[i].cluster) == len && memcmp(al->seqs[i].cluster, cluster, len) == 0)
            return &al->seqs[i];
    if (!create || len == 0 || len > PROTO_MAX_ID_LEN)
        return NULL;
    xgrow(&al->seqs, &al->seqs_cap, al->nseqs + 1, sizeof *al->seqs);
    alerts_seq_t *s = &al->seqs[al->nseqs++];
    memset(s, 0, sizeof *s);
    memcpy(s->cluster, cluster, len);
    s->seq = al->seq_floor;
    s->record = -1;
    return s;
}

/* Writes seq as s's to its record, appending the record the first time
 * (seq: s->seq, or a held alert's when it is released: s->seq may be ahead). */
static void seq_persist_at(alerts_t *al, alerts_seq_t *s, uint64_t seq)
{
    if (al->seq_fd < 0)
        return;
    unsigned char rec[SEQ_RECORD] = {0};
    if (s->record < 0) {
        memcpy(rec, s->cluster, strlen(s->cluster));
        bytes_put_le64(rec + PROTO_MAX_ID_LEN, seq);
        if (pwrite_all(al->seq_fd, rec, sizeof rec,
                       (off_t)(SEQ_HEADER + al->nrecords * SEQ_RECORD)) != 0) {
            log_warn("%s: cannot add the record of cluster %s", al->seq_path, s->cluster);
            return;
        }
        s->record = (int64_t)al->nrecords++;
        return;
    }
    bytes_put_le64(rec, seq);
    if (pwrite_all(al->seq_fd, rec, 8,
                   (off_t)(SEQ_HEADER + (size_t)s->record * SEQ_RECORD + PROTO_MAX_ID_LEN)) != 0)
        log_warn("%s: cannot write the seq of cluster %s", al->seq_path, s->cluster);
}

static void seq_persist(alerts_t *al, alerts_seq_t *s)
{
    seq_persist_at(al, s, s->seq);
}

static int write_header(alerts_t *al)
{
    unsigned char hdr[SEQ_HEADER];
    memcpy(hdr, SEQ_MAGIC, 7);
    hdr[7] = SEQ_FORMAT;
    bytes_put_le64(hdr + 8, al->seq_floor);
    return pwrite_all(al->seq_fd, hdr, sizeof hdr, 0);
}

/* A new file: the floor from the old global state_dir/alert-seq, if any. */
static int seqs_create(alerts_t *al, const char *state_dir, char *err, size_t errlen)
{
    char old[4096];
    snprintf(old, sizeof old, "%s/alert-seq", state_dir);
    int fd = open(old, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        unsigned char b[9];
        ssize_t n = pread(fd, b, sizeof b, 0);
        close(fd);
        if (n != 0 && n != 8) {
            snprintf(err, errlen,
                     "%s: %zd bytes, expected 8 (the global alert seq of an older clustermond); "
                     "remove it to start every cluster's alert seq at 0",
                     old, n);
            return -1;
        }
        if (n == 8)
            al->seq_floor = bytes_get_le64(b);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", old, strerror(errno));
        return -1;
    }
    if (write_header(al) != 0 || fsync(al->seq_fd) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", al->seq_path, strerror(errno));
        return -1;
    }
    if (fd >= 0) {
        if (unlink(old) != 0)
            log_warn("%s: unlink", old);
        log_info("alerts: the global alert seq %llu of %s goes on per cluster in %s",
                 (unsigned long long)al->seq_floor, old, al->seq_path);
    }
    return 0;
}

static int seqs_read(alerts_t *al, off_t size, char *err, size_t errlen)
{
    unsigned char hdr[SEQ_HEADER];
    if (size < SEQ_HEADER || pread(al->seq_fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
        memcmp(hdr, SEQ_MAGIC, 7) != 0) {
        snprintf(err, errlen,
                 "%s: not an alert seq file (bad header); move it away to start "
                 "every cluster's alert seq at 0",
                 al->seq_path);
        return -1;
    }
    if (hdr[7] != SEQ_FORMAT) {
        snprintf(err, errlen, "%s: format version %u, this clustermond reads %d", al->seq_path,
                 hdr[7], SEQ_FORMAT);
        return -1;
    }
    al->seq_floor = bytes_get_le64(hdr + 8);
    size_t n = (size_t)(size - SEQ_HEADER) / SEQ_RECORD;
    if ((size_t)(size - SEQ_HEADER) % SEQ_RECORD != 0) {
        /* a record appended when the machine stopped: its cluster's first
         * publication; the snapshot's seqs still cover it */
        log_warnx("%s: a partial record at the end (%lld bytes) is dropped", al->seq_path,
                  (long long)((size - SEQ_HEADER) % SEQ_RECORD));
        if (ftruncate(al->seq_fd, (off_t)(SEQ_HEADER + n * SEQ_RECORD)) != 0)
            log_warn("%s: ftruncate", al->seq_path);
    }
    for (size_t r = 0; r < n; r++) {
        unsigned char rec[SEQ_RECORD];
        char why[128];
        off_t off = (off_t)(SEQ_HEADER + r * SEQ_RECORD);
        if (pread(al->seq_fd, rec, sizeof rec, off) != (ssize_t)sizeof rec) {
            snprintf(err, errlen, "%s: record %zu: %s", al->seq_path, r + 1,
                     strerror(errno ? errno : EIO));
            return -1;
        }
        size_t len = strnlen((const char *)rec, PROTO_MAX_ID_LEN);
        for (size_t k = len; k < PROTO_MAX_ID_LEN; k++)
            if (rec[k] != 0)
                len = 0; /* bytes after the NUL: not ours */
        if (ids_validate((const char *)rec, len, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: record %zu (offset %lld): cluster: %s", al->seq_path, r + 1,
                     (long long)off, len ? why : "not a NUL-padded id");
            return -1;
        }
        if (seq_slot(al, (const char *)rec, len, false)) {
            snprintf(err, errlen, "%s: record %zu (offset %lld): cluster '%.*s' twice",
                     al->seq_path, r + 1, (long long)off, (int)len, rec);
            return -1;
        }
        alerts_seq_t *s = seq_slot(al, (const char *)rec, len, true);
        s->seq = bytes_get_le64(rec + PROTO_MAX_ID_LEN);
        s->record = (int64_t)r;
    }
    al->nrecords = n;
    return 0;
}

int alerts_init(alerts_t *al, const char *state_dir, char *err, size_t errlen)
{
    memset(al, 0, sizeof *al);
    msgpack_sbuffer_init(&al->buf);
    msgpack_sbuffer_init(&al->outbox);
    snprintf(al->seq_path, sizeof al->seq_path, "%s/alert-seqs", state_dir);
    al->seq_fd = open(al->seq_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (al->seq_fd < 0 || fstat(al->seq_fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", al->seq_path, strerror(errno));
        return -1;
    }
    if (st.st_size == 0)
        return seqs_create(al, state_dir, err, errlen);
    return seqs_read(al, st.st_size, err, errlen);
}

uint64_t alerts_seq(const alerts_t *al, const char *cluster)
{
    for (size_t i = 0; i < al->nseqs; i++)
        if (strcmp(al->seqs[i].cluster, cluster) == 0)
            return al->seqs[i].seq;
    return al->seq_floor;
}

void alerts_seqs_pack(const alerts_t *al, msgpack_packer *pk)
{
    msgpack_pack_map(pk, al->nseqs);
    for (size_t i = 0; i < al->nseqs; i++) {
        size_t n = strlen(al->seqs[i].cluster);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, al->seqs[i].cluster, n);
        msgpack_pack_uint64(pk, al->seqs[i].seq);
    }
}

int alerts_seqs_load(alerts_t *al, const msgpack_object *map, bool apply, char *err, size_t errlen)
{
    char why[128];
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "alert_seqs: missing or not a map");
        return -1;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR ||
            ids_validate(kv->key.via.str.ptr, kv->key.via.str.size, why, sizeof why) != 0 ||
            kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(err, errlen, "alert_seqs: entry %u: not a cluster id and a seq", i + 1);
            return -1;
        }
        if (!apply)
            continue;
        alerts_seq_t *s = seq_slot(al, kv->key.via.str.ptr, kv->key.via.str.size, true);
        if (kv->val.via.u64 > s->seq || s->record < 0) {
            if (kv->val.via.u64 > s->seq)
                s->seq = kv->val.via.u64;
            seq_persist(al, s);
        }
    }
    return 0;
}

void alerts_seq_raise(alerts_t *al, const char *cluster, uint64_t seq)
{
    alerts_seq_t *s = seq_slot(al, cluster, strlen(cluster), true);
    if (s && seq > s->seq) {
        s->seq = seq;
        seq_persist(al, s);
    }
}

void alerts_seqs_raise_floor(alerts_t *al, uint64_t floor)
{
    if (floor <= al->seq_floor)
        return;
    al->seq_floor = floor;
    if (al->seq_fd >= 0 && write_header(al) != 0)
        log_warn("%s: cannot write the header", al->seq_path);
    for (size_t i = 0; i < al->nseqs; i++)
        if (al->seqs[i].seq < floor) {
            al->seqs[i].seq = floor;
            seq_persist(al, &al->seqs[i]);
        }
}

/* The PUB (or the gated XPUB) on endpoint. What subscribers send is
 * subscriptions: a topic of a few dozen bytes. A larger frame is a hostile
 * peer's, dropped by ZeroMQ before it is read. */
static zsock_options_t socket_options(const char *endpoint, int hwm, double peer_timeout)
{
    return (zsock_options_t){
        .name = "alerts",
        .type = ZMQ_PUB,
        .endpoint = endpoint,
        .sndhwm = hwm > 0 ? hwm : ZSOCK_HWM_NONE, /* alerts_hwm = 0: no limit, as libzmq's 0 */
        .rcvhwm = 1000,
        .maxmsgsize = 1024,
        .peer_timeout = peer_timeout,
    };
}

int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, double peer_timeout,
                char *err, size_t errlen)
{
    /* nothing to read: not polled, and no loop needed */
    zsock_options_t o = socket_options(endpoint, hwm, peer_timeout);
    return zsock_open(&al->zs, NULL, zctx, &o, NULL, al, err, errlen);
}

/* ---- gated subscriptions (CURVE) ------------------------------------------ */

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t plen)
{
    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* Applies opt (ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE) for topic on the pipe the
 * subscription came from, narrowed to what k may see. Returns how many
 * topics were applied (0: refused). */
static int admit(alerts_t *al, const access_key_t *k, int opt, const char *topic, size_t tlen)
{
    if (k->see_all)
        return zmq_setsockopt(al->zs.sock, opt, topic, tlen) == 0;
    const config_t *cfg = *al->cfg;
    char prefix[PROTO_MAX_ID_LEN + 16];
    /* Each cluster's heartbeat is "alert.<cluster>.heartbeat", under its
     * prefix like its alerts: narrowing by cluster scopes both, and a key
     * hears no heartbeat (no seq) of a cluster it may not see. Ids have no
     * '.', so "alert.eu." never covers another cluster. */
    /* narrower than one visible cluster: as asked */
    for (size_t c = 0; c < cfg->nclusters; c++) {
        int plen = snprintf(prefix, sizeof prefix, "alert.%s.", cfg->clusters[c].id);
        if (keys_may_see(k, (int)c) && plen > 0 && (size_t)plen < sizeof prefix &&
            has_prefix(topic, tlen, prefix, (size_t)plen))
            return zmq_setsockopt(al->zs.sock, opt, topic, tlen) == 0;
    }
    /* wider: each visible cluster's prefix it covers */
    int n = 0;
    for (size_t c = 0; c < cfg->nclusters; c++) {
        int plen = snprintf(prefix, sizeof prefix, "alert.%s.", cfg->clusters[c].id);
        if (keys_may_see(k, (int)c) && plen > 0 && (size_t)plen < sizeof prefix &&
            has_prefix(prefix, (size_t)plen, topic, tlen))
            n += zmq_setsockopt(al->zs.sock, opt, prefix, (size_t)plen) == 0;
    }
    return n;
}

static bool on_subscription(zsock_t *zs)
{
    alerts_t *al = zs->data;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, al->zs.sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return false;
    }
    const char *d = zmq_msg_data(&m);
    size_t len = zmq_msg_size(&m);
    if (len == 0 || (d[0] != 0 && d[0] != 1)) {
        zmq_msg_close(&m); /* not a subscription: a subscriber has nothing else to say */
        return true;
    }
    bool subscribe = d[0] == 1;
    const char *uid = zmq_msg_gets(&m, "User-Id");
    const access_key_t *k = uid ? keys_find(*al->keys, uid, strlen(uid)) : NULL;
    int n = k ? admit(al, k, subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, d + 1, len - 1) : 0;
    if (subscribe && n > 0) {
        al->subs_admitted++;
    } else if (subscribe) {
        al->subs_refused++;
        if (log_throttle(&al->log, (int64_t)uv_now(&al->srv->loop), SUB_LOGS_PER_SECOND, "alerts",
                         "refused subscriptions")) {
            char topic[64];
            size_t t = 0;
            for (size_t i = 1; i < len && t + 1 < sizeof topic; i++)
                topic[t++] = d[i] >= 0x20 && d[i] < 0x7f ? d[i] : '?';
            topic[t] = '\0';
            log_warnx("alerts: refused a subscription to '%s' from key %s: %s", topic,
                      k     ? k->name
                      : uid ? uid
                            : "?",
                      k ? "the key may not see those clusters" : "the key was revoked");
        }
    }
    zmq_msg_close(&m);
    return true;
}

int alerts_open_gated(alerts_t *al, struct server *srv, char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    al->srv = srv;
    al->gated = true;
    al->keys = &srv->keys;
    al->cfg = &srv->cfg;
    zsock_options_t o = socket_options(cfg->alerts, (int)cfg->alerts_hwm, cfg->peer_timeout);
    o.type = ZMQ_XPUB;
    o.xpub_manual = true;
    o.curve_secret = srv->curve_key.secret_z85;
    o.zap_domain = ZAP_DOMAIN_ALERTS;
    if (zsock_open(&al->zs, &srv->loop, srv->zctx, &o, on_subscription, al, err, errlen) != 0)
        return -1;
    size_t blen = sizeof al->bound;
    if (zmq_getsockopt(al->zs.sock, ZMQ_LAST_ENDPOINT, al->bound, &blen) != 0)
        snprintf(al->bound, sizeof al->bound, "%s", cfg->alerts);
    return 0;
}

/* A send may consume the edge that announced a subscription: look again. */
static void after_send(alerts_t *al)
{
    zsock_kick(&al->zs); /* a no-op on the plain PUB, which is not polled */
}

static void bind_again(alerts_t *al)
{
    const char *ep = (*al->cfg)->alerts;
    if (zmq_bind(al->zs.sock, ep) != 0) {
        log_warn("alerts: cannot bind %s again (retrying each second)", ep);
        al->rebind_pending = true;
        return;
    }
    size_t blen = sizeof al->bound;
    if (zmq_getsockopt(al->zs.sock, ZMQ_LAST_ENDPOINT, al->bound, &blen) != 0)
        snprintf(al->bound, sizeof al->bound, "%s", ep);
    al->rebind_pending = false;
}

void alerts_rebind(alerts_t *al)
{
    if (!al->gated || !al->zs.sock)
        return;
    al->rebinds++;
    if (!al->rebind_pending && zmq_unbind(al->zs.sock, al->bound) != 0)
        log_warn("alerts: unbind %s", al->bound);
    log_info("alerts: subscribers reconnect under the new keys (%s bound again)", al->bound);
    bind_again(al);
    after_send(al); /* the unsubscriptions of the dropped pipes are queued: read them */
}

void alerts_stop(alerts_t *al)
{
    zsock_close(&al->zs, NULL, NULL);
}

static int send_encoded(alerts_t *al, const proto_alert_t *a, alerts_seq_t *slot, const char *topic,
                        size_t tlen, const void *msg, size_t mlen);

int alerts_publish(alerts_t *al, proto_alert_t *a)
{
    char topic[PROTO_MAX_ID_LEN + 32];
    char err[PROTO_ERRLEN];
    if (a->reminder && al->hold_cb && al->hold_cb(al->hook_data, a))
        return 1; /* acknowledged: its reminders wait until it changes */
    if (!al->zs.sock) {
        al->send_errors++;
        return -1;
    }
    alerts_seq_t *slot = seq_slot(al, a->cluster.ptr, a->cluster.len, true);
    if (!slot) {
        log_error("alert %.*s: cannot publish: no cluster", PROTO_STR_ARG(a->id));
        al->send_errors++;
        return -1;
    }
    a->seq = ++slot->seq;
    msgpack_sbuffer_clear(&al->buf);
    int tlen = proto_alert_topic(a->cluster, (proto_severity_t)a->severity, topic, sizeof topic);
    if (tlen < 0 || proto_alert_encode(a, &al->buf, err, sizeof err) != PROTO_OK) {
        log_error("alert %.*s: cannot encode: %s", PROTO_STR_ARG(a->id), tlen < 0 ? "topic" : err);
        al->send_errors++;
        return -1;
    }
    if (al->must_hold && (al->outbox.size || al->must_hold(al->must_hold_data))) {
        /* the records it stems from are not written yet: out after them */
        unsigned char len[8];
        bytes_put_le32(len, (uint32_t)tlen);
        bytes_put_le32(len + 4, (uint32_t)al->buf.size);
        msgpack_sbuffer_write(&al->outbox, (const char *)len, sizeof len);
        msgpack_sbuffer_write(&al->outbox, topic, (size_t)tlen);
        msgpack_sbuffer_write(&al->outbox, al->buf.data, al->buf.size);
        al->held++;
        return 0;
    }
    return send_encoded(al, a, slot, topic, (size_t)tlen, al->buf.data, al->buf.size);
}

/* Sends one encoded alert and does what follows a publication. */
static int send_encoded(alerts_t *al, const proto_alert_t *a, alerts_seq_t *slot, const char *topic,
                        size_t tlen, const void *msg, size_t mlen)
{
    if (zmq_send(al->zs.sock, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(al->zs.sock, msg, mlen, ZMQ_DONTWAIT) < 0) {
        log_warn("alert %.*s seq %llu: publish failed", PROTO_STR_ARG(a->id),
                 (unsigned long long)a->seq);
        al->send_errors++;
        after_send(al);
        return -1;
    }
    after_send(al);
    al->published++;
    seq_persist_at(al, slot, a->seq);
    if (a->severity < PROTO_SEV_COUNT)
        al->by_severity[a->severity]++;
    if (al->on_publish)
        al->on_publish(al->on_publish_data, a);
    log_info("alert %s %.*s: %.*s (%.*s seq %llu)", proto_alert_state_name(a->state),
             PROTO_STR_ARG(a->id), PROTO_STR_ARG(a->summary), PROTO_STR_ARG(a->cluster),
             (unsigned long long)a->seq);
    if (al->published_cb)
        al->published_cb(al->hook_data, a);
    return 0;
}

void alerts_release(alerts_t *al)
{
    size_t off = 0;
    const unsigned char *p = (const unsigned char *)al->outbox.data;
    while (off + 8 <= al->outbox.size) {
        size_t tlen = bytes_get_le32(p + off), mlen = bytes_get_le32(p + off + 4);
        const char *topic = (const char *)p + off + 8;
        const void *msg = p + off + 8 + tlen;
        off += 8 + tlen + mlen;
        proto_alert_t a;
        char err[PROTO_ERRLEN] = "no cluster";
        alerts_seq_t *slot = NULL;
        if (proto_alert_decode(msg, mlen, &a, err, sizeof err) != PROTO_OK ||
            !(slot = seq_slot(al, a.cluster.ptr, a.cluster.len, true))) {
            log_error("alerts: a held alert cannot be read back (%s): not published", err);
            al->send_errors++;
            continue;
        }
        if (al->zs.sock)
            send_encoded(al, &a, slot, topic, tlen, msg, mlen);
        else
            al->send_errors++;
    }
    msgpack_sbuffer_clear(&al->outbox);
}

void alerts_heartbeat(alerts_t *al, const config_t *cfg, int64_t now_ms)
{
    char topic[PROTO_MAX_ID_LEN + 32], err[PROTO_ERRLEN];
    if (!al->zs.sock || al->outbox.size)
        return; /* its seqs would run ahead of what subscribers got */
    if (al->rebind_pending)
        bind_again(al);
    for (size_t c = 0; c < cfg->nclusters; c++) {
        const char *id = cfg->clusters[c].id;
        proto_heartbeat_t hb = {proto_str(id), alerts_seq(al, id), now_ms};
        msgpack_sbuffer_clear(&al->buf);
        int tlen = proto_heartbeat_topic(hb.cluster, topic, sizeof topic);
        if (tlen < 0 || proto_heartbeat_encode(&hb, &al->buf, err, sizeof err) != PROTO_OK)
            continue; /* a config id always fits and encodes */
        if (zmq_send(al->zs.sock, topic, (size_t)tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(al->zs.sock, al->buf.data, al->buf.size, ZMQ_DONTWAIT) < 0)
            al->send_errors++;
    }
    after_send(al);
}

void alerts_close(alerts_t *al)
{
    zsock_close(&al->zs, NULL, NULL); /* a no-op after alerts_stop */
    if (al->seq_fd >= 0)
        close(al->seq_fd);
    al->seq_fd = -1;
    free(al->seqs);
    al->seqs = NULL;
    al->nseqs = al->seqs_cap = 0;
    msgpack_sbuffer_destroy(&al->buf);
    msgpack_sbuffer_destroy(&al->outbox);
}
