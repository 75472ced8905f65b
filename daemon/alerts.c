/* alerts.c -- see alerts.h. */
#include "daemon/alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/server.h"

#define SUB_LOGS_PER_SECOND 5

int alerts_init(alerts_t *al, const char *state_dir, char *err, size_t errlen)
{
    memset(al, 0, sizeof *al);
    msgpack_sbuffer_init(&al->buf);
    char path[4096];
    snprintf(path, sizeof path, "%s/alert-seq", state_dir);
    al->seq_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (al->seq_fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char b[8];
    if (pread(al->seq_fd, b, sizeof b, 0) == (ssize_t)sizeof b)
        for (int i = 7; i >= 0; i--)
            al->seq = al->seq << 8 | b[i];
    return 0;
}

/* What subscribers send is subscriptions: a topic of a few dozen bytes. A
 * larger frame is a hostile peer's, dropped by ZeroMQ before it is read. */
static void set_inbound_limits(void *sock)
{
    int64_t maxmsg = 1024;
    int rcvhwm = 1000;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
}

int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, double peer_timeout,
                char *err, size_t errlen)
{
    al->sock = zmq_socket(zctx, ZMQ_PUB);
    if (!al->sock) {
        snprintf(err, errlen, "alerts: zmq_socket(PUB): %s", zmq_strerror(errno));
        return -1;
    }
    int linger = 0;
    zmq_setsockopt(al->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(al->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    set_inbound_limits(al->sock);
    if (server_peer_timeout(al->sock, peer_timeout, err, errlen) != 0)
        return -1;
    if (zmq_bind(al->sock, endpoint) != 0) {
        snprintf(err, errlen, "alerts: cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
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
        return zmq_setsockopt(al->sock, opt, topic, tlen) == 0;
    const config_t *cfg = *al->cfg;
    const char *hb = proto_heartbeat_topic;
    size_t hblen = strlen(hb);
    char prefix[PROTO_MAX_ID_LEN + 16];
    /* narrower than one visible cluster (or the heartbeat): as asked */
    if (has_prefix(topic, tlen, hb, hblen))
        return zmq_setsockopt(al->sock, opt, topic, tlen) == 0;
    for (size_t c = 0; c < cfg->nclusters; c++) {
        int plen = snprintf(prefix, sizeof prefix, "alert.%s.", cfg->clusters[c].id);
        if (keys_may_see(k, (int)c) && plen > 0 && (size_t)plen < sizeof prefix &&
            has_prefix(topic, tlen, prefix, (size_t)plen))
            return zmq_setsockopt(al->sock, opt, topic, tlen) == 0;
    }
    /* wider: each visible cluster's topic (and the heartbeat) it covers */
    int n = 0;
    if (has_prefix(hb, hblen, topic, tlen))
        n += zmq_setsockopt(al->sock, opt, hb, hblen) == 0;
    for (size_t c = 0; c < cfg->nclusters; c++) {
        int plen = snprintf(prefix, sizeof prefix, "alert.%s.", cfg->clusters[c].id);
        if (keys_may_see(k, (int)c) && plen > 0 && (size_t)plen < sizeof prefix &&
            has_prefix(prefix, (size_t)plen, topic, tlen))
            n += zmq_setsockopt(al->sock, opt, prefix, (size_t)plen) == 0;
    }
    return n;
}

static bool on_subscription(zpoll_t *zp)
{
    alerts_t *al = zp->data;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, al->sock, ZMQ_DONTWAIT) < 0) {
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
        if (log_throttle(&al->log, (int64_t)uv_now(&al->srv->loop), SUB_LOGS_PER_SECOND,
                         "alerts", "refused subscriptions")) {
            char topic[64];
            size_t t = 0;
            for (size_t i = 1; i < len && t + 1 < sizeof topic; i++)
                topic[t++] = d[i] >= 0x20 && d[i] < 0x7f ? d[i] : '?';
            topic[t] = '\0';
            log_warnx("alerts: refused a subscription to '%s' from key %s: %s", topic,
                      k ? k->name : uid ? uid : "?",
                      k ? "the key may not see those clusters" : "the key was revoked");
        }
    }
    zmq_msg_close(&m);
    return true;
}

int alerts_open_gated(alerts_t *al, struct server *srv, char *err, size_t errlen)
{
    const config_t *cfg = srv->cfg;
    int hwm = (int)cfg->alerts_hwm, on = 1, linger = 0;
    al->srv = srv;
    al->gated = true;
    al->keys = &srv->keys;
    al->cfg = &srv->cfg;
    al->sock = zmq_socket(srv->zctx, ZMQ_XPUB);
    if (!al->sock) {
        snprintf(err, errlen, "alerts: zmq_socket(XPUB): %s", zmq_strerror(errno));
        return -1;
    }
    zmq_setsockopt(al->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(al->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    set_inbound_limits(al->sock);
    zmq_setsockopt(al->sock, ZMQ_XPUB_MANUAL, &on, sizeof on);
    if (server_peer_timeout(al->sock, cfg->peer_timeout, err, errlen) != 0 ||
        server_secure_socket(srv, al->sock, ZAP_DOMAIN_ALERTS, err, errlen) != 0)
        return -1;
    if (zmq_bind(al->sock, cfg->alerts) != 0) {
        snprintf(err, errlen, "alerts: cannot bind %s: %s", cfg->alerts, zmq_strerror(errno));
        return -1;
    }
    size_t blen = sizeof al->bound;
    if (zmq_getsockopt(al->sock, ZMQ_LAST_ENDPOINT, al->bound, &blen) != 0)
        snprintf(al->bound, sizeof al->bound, "%s", cfg->alerts);
    int rc = zpoll_start(&srv->loop, &al->zp, al->sock, on_subscription, al);
    if (rc < 0) {
        snprintf(err, errlen, "alerts: cannot watch the socket: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* A send may consume the edge that announced a subscription: look again. */
static void after_send(alerts_t *al)
{
    if (al->gated)
        zpoll_kick(&al->zp);
}

static void bind_again(alerts_t *al)
{
    const char *ep = (*al->cfg)->alerts;
    if (zmq_bind(al->sock, ep) != 0) {
        log_warn("alerts: cannot bind %s again (retrying each second)", ep);
        al->rebind_pending = true;
        return;
    }
    size_t blen = sizeof al->bound;
    if (zmq_getsockopt(al->sock, ZMQ_LAST_ENDPOINT, al->bound, &blen) != 0)
        snprintf(al->bound, sizeof al->bound, "%s", ep);
    al->rebind_pending = false;
}

void alerts_rebind(alerts_t *al)
{
    if (!al->gated || !al->sock)
        return;
    al->rebinds++;
    if (!al->rebind_pending && zmq_unbind(al->sock, al->bound) != 0)
        log_warn("alerts: unbind %s", al->bound);
    log_info("alerts: subscribers reconnect under the new keys (%s bound again)", al->bound);
    bind_again(al);
    after_send(al); /* the unsubscriptions of the dropped pipes are queued: read them */
}

static void zp_closed(zpoll_t *zp)
{
    alerts_t *al = zp->data;
    if (al->on_closed)
        al->on_closed(al->srv);
}

void alerts_stop(alerts_t *al, void (*on_closed)(struct server *))
{
    al->on_closed = on_closed;
    al->zp.data = al;
    zpoll_close(&al->zp, zp_closed);
}

int alerts_publish(alerts_t *al, proto_alert_t *a)
{
    char topic[PROTO_MAX_ID_LEN + 32];
    char err[PROTO_ERRLEN];
    if (!al->sock) {
        al->send_errors++;
        return -1;
    }
    a->seq = ++al->seq;
    msgpack_sbuffer_clear(&al->buf);
    int tlen = proto_alert_topic(a->cluster, (proto_severity_t)a->severity, topic, sizeof topic);
    if (tlen < 0 || proto_alert_encode(a, &al->buf, err, sizeof err) != PROTO_OK) {
        log_error("alert %.*s: cannot encode: %s", PROTO_STR_ARG(a->id), tlen < 0 ? "topic" : err);
        al->send_errors++;
        return -1;
    }
    if (zmq_send(al->sock, topic, (size_t)tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(al->sock, al->buf.data, al->buf.size, ZMQ_DONTWAIT) < 0) {
        log_warn("alert %.*s seq %llu: publish failed", PROTO_STR_ARG(a->id),
                 (unsigned long long)a->seq);
        al->send_errors++;
        after_send(al);
        return -1;
    }
    after_send(al);
    al->published++;
    if (al->seq_fd >= 0) {
        unsigned char b[8];
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)(al->seq >> (8 * i));
        if (pwrite(al->seq_fd, b, sizeof b, 0) != (ssize_t)sizeof b)
            log_warn("alert-seq: write");
    }
    if (a->severity < PROTO_SEV_COUNT)
        al->by_severity[a->severity]++;
    log_info("alert %s %.*s: %.*s (seq %llu)", proto_alert_state_name(a->state),
             PROTO_STR_ARG(a->id), PROTO_STR_ARG(a->summary), (unsigned long long)a->seq);
    return 0;
}

void alerts_heartbeat(alerts_t *al, int64_t now_ms)
{
    if (!al->sock)
        return;
    if (al->rebind_pending)
        bind_again(al);
    msgpack_sbuffer_clear(&al->buf);
    if (proto_heartbeat_encode(al->seq, now_ms, &al->buf) != PROTO_OK)
        return;
    size_t tlen = strlen(proto_heartbeat_topic);
    if (zmq_send(al->sock, proto_heartbeat_topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(al->sock, al->buf.data, al->buf.size, ZMQ_DONTWAIT) < 0)
        al->send_errors++;
    after_send(al);
}

void alerts_close(alerts_t *al)
{
    if (al->sock)
        zmq_close(al->sock);
    al->sock = NULL;
    if (al->seq_fd >= 0)
        close(al->seq_fd);
    al->seq_fd = -1;
    msgpack_sbuffer_destroy(&al->buf);
}
