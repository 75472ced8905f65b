/* zsock.c -- see zsock.h. */
#include "daemon/zsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static const char *type_name(int type)
{
    switch (type) {
    case ZMQ_PAIR: return "PAIR";
    case ZMQ_PUB: return "PUB";
    case ZMQ_SUB: return "SUB";
    case ZMQ_REQ: return "REQ";
    case ZMQ_REP: return "REP";
    case ZMQ_DEALER: return "DEALER";
    case ZMQ_ROUTER: return "ROUTER";
    case ZMQ_XPUB: return "XPUB";
    case ZMQ_XSUB: return "XSUB";
    default: return "?";
    }
}

/* A PING every seconds/2; no traffic for seconds/2 after one and the peer
 * is dropped; a handshake must be done within seconds. So a peer that stalls
 * in its handshake or in the middle of a frame is disconnected within
 * [daemon] peer_timeout and its buffers freed. A PING is answered by any
 * ZMTP 3.1 peer, even an idle one; a peer stuck mid-frame sends no complete
 * message, so no PONG is ever decoded and the timeout fires
 * (tests/stall_e2e.sh shows it). */
static int peer_timeout(void *sock, double seconds, char *why, size_t whylen)
{
    if (seconds <= 0)
        return 0;
    int ms = (int)(seconds * 1000.0);
    int half = ms / 2 > 100 ? ms / 2 : 100;
    struct {
        int opt;
        int value;
        const char *name;
    } opts[] = {
        {ZMQ_HEARTBEAT_IVL, half, "ZMQ_HEARTBEAT_IVL"},
        {ZMQ_HEARTBEAT_TIMEOUT, half, "ZMQ_HEARTBEAT_TIMEOUT"},
        {ZMQ_HEARTBEAT_TTL, ms, "ZMQ_HEARTBEAT_TTL"}, /* the peer may drop us as well */
        {ZMQ_HANDSHAKE_IVL, ms, "ZMQ_HANDSHAKE_IVL"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (zmq_setsockopt(sock, opts[i].opt, &opts[i].value, sizeof opts[i].value) != 0) {
            snprintf(why, whylen, "peer_timeout: %s = %d: %s", opts[i].name, opts[i].value,
                     zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Clients are then admitted by the ZAP handler (zap.h) under domain. */
static int make_curve_server(void *sock, const char *secret, const char *domain, char *why,
                             size_t whylen)
{
    int on = 1;
    if (!domain)
        domain = "";
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, strlen(secret) + 1) != 0) {
        snprintf(why, whylen, "cannot make the socket a CURVE server (ZAP domain %s): %s", domain,
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* The options set before the bind. Returns 0, or -1 with the reason in why. */
static int set_options(void *sock, const zsock_options_t *o, char *why, size_t whylen)
{
    int sndhwm = o->sndhwm == ZSOCK_HWM_NONE ? 0 : o->sndhwm;
    int rcvhwm = o->rcvhwm == ZSOCK_HWM_NONE ? 0 : o->rcvhwm;
    struct {
        int opt;
        const void *value;
        size_t len;
        bool set;
        const char *name;
    } opts[] = {
        {ZMQ_LINGER, &o->linger, sizeof o->linger, true, "ZMQ_LINGER"},
        {ZMQ_SNDHWM, &sndhwm, sizeof sndhwm, o->sndhwm != 0, "ZMQ_SNDHWM"},
        {ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm, o->rcvhwm != 0, "ZMQ_RCVHWM"},
        {ZMQ_MAXMSGSIZE, &o->maxmsgsize, sizeof o->maxmsgsize, o->maxmsgsize > 0, "ZMQ_MAXMSGSIZE"},
        {ZMQ_XPUB_MANUAL, &(int){1}, sizeof(int), o->xpub_manual, "ZMQ_XPUB_MANUAL"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (opts[i].set && zmq_setsockopt(sock, opts[i].opt, opts[i].value, opts[i].len) != 0) {
            snprintf(why, whylen, "%s: %s", opts[i].name, zmq_strerror(errno));
            return -1;
        }
    }
    if (peer_timeout(sock, o->peer_timeout, why, whylen) != 0)
        return -1;
    if (!o->curve_secret)
        return 0;
    return make_curve_server(sock, o->curve_secret, o->zap_domain, why, whylen);
}

static bool poll_message(zpoll_t *zp)
{
    zsock_t *zs = zp->data;
    return zs->on_message(zs);
}

int zsock_open(zsock_t *zs, uv_loop_t *loop, void *zctx, const zsock_options_t *o,
               zsock_message_cb on_message, void *data, char *err, size_t errlen)
{
    char why[256];
    memset(zs, 0, sizeof *zs);
    zs->data = data;
    zs->on_message = on_message;
    zs->zp.data = zs; /* before zpoll_start: a failed start is still closed through zs */
    zs->sock = zmq_socket(zctx, o->type);
    if (!zs->sock) {
        snprintf(err, errlen, "%s: zmq_socket(%s) for %s: %s", o->name, type_name(o->type),
                 o->endpoint, zmq_strerror(errno));
        return -1;
    }
    if (set_options(zs->sock, o, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s: %s", o->name, o->endpoint, why);
        return -1;
    }
    if (zmq_bind(zs->sock, o->endpoint) != 0) {
        snprintf(err, errlen, "%s: cannot bind %s: %s", o->name, o->endpoint, zmq_strerror(errno));
        return -1;
    }
    if (!on_message)
        return 0;
    zs->polled = true; /* even on failure: zpoll_close closes what it opened */
    int rc = zpoll_start(loop, &zs->zp, zs->sock, poll_message, zs);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s: cannot watch the socket: %s", o->name, o->endpoint,
                 uv_strerror(rc));
        return -1;
    }
    return 0;
}

void zsock_kick(zsock_t *zs)
{
    if (zs->polled && !zs->closing)
        zpoll_kick(&zs->zp);
}

/* The loop handles are gone: nothing can read the socket any more. */
static void finish(zsock_t *zs)
{
    if (zs->sock)
        zmq_close(zs->sock);
    zs->sock = NULL;
    if (zs->on_close)
        zs->on_close(zs->close_data);
}

static void poll_closed(zpoll_t *zp)
{
    finish(zp->data);
}

void zsock_close(zsock_t *zs, zsock_close_cb on_close, void *data)
{
    if (zs->closing)
        return;
    zs->closing = true;
    zs->on_close = on_close;
    zs->close_data = data;
    if (zs->polled)
        zpoll_close(&zs->zp, poll_closed);
    else
        finish(zs);
}
