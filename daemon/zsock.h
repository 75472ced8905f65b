/*
 * zsock.h -- one ZeroMQ socket of the daemon, owned from open to close and
 * driven by the libuv loop.
 *
 * Every socket peers connect to is made the same way: created, given its
 * limits (linger, high-water marks, the largest frame), ZMTP heartbeats and a
 * handshake deadline (peer_timeout), made a CURVE server under a ZAP domain
 * when the daemon has a key, bound, and then read through zpoll (zpoll.h:
 * the edge-triggered ZMQ_FD, the per-wake budget). This module does that
 * once, from an options struct, so ingest, control, zap and alerts describe
 * their socket instead of writing out its lifecycle; a failure names the
 * socket and its endpoint.
 *
 * Lifecycle, libuv's: zsock_open(), then zsock_close() exactly once (after a
 * failed open too); the socket is closed (zmq_close) only once the loop
 * handles are, and then the close callback runs with the owner's data.
 * The owner frees nothing the callbacks may touch before that. A socket
 * opened without on_message is not polled (a PUB nobody reads); it needs no
 * loop, and zsock_close() closes it at once.
 */
#ifndef CLUSTERMON_ZSOCK_H
#define CLUSTERMON_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/zpoll.h"

typedef struct zsock zsock_t;

#define ZSOCK_HWM_NONE (-1) /* zsock_options_t.sndhwm/rcvhwm: libzmq's 0, unlimited */

/* Handles one message if there is one: returns true if it consumed one,
 * false if the socket had none (EAGAIN). Runs on the loop. */
typedef bool (*zsock_message_cb)(zsock_t *zs);
/* Runs once the loop handles and the socket are closed, with the data
 * given to zsock_close. From here on the owner may free what the callbacks
 * used. */
typedef void (*zsock_close_cb)(void *data);

/* What a socket is. Zero is the default of every field but name, type and
 * endpoint. */
typedef struct {
    const char *name;     /* names the socket in errors ("ingest") */
    int type;             /* ZMQ_ROUTER, ZMQ_PUB, ... */
    const char *endpoint; /* bound */
    int linger;           /* ms unsent messages outlive the close (0: dropped) */
    int sndhwm, rcvhwm;   /* messages queued per peer; 0: libzmq's default
                                 (1000); ZSOCK_HWM_NONE: no limit */
    int64_t maxmsgsize;   /* a larger inbound frame drops the connection; 0: no limit */
    bool xpub_manual;     /* XPUB: subscriptions are the owner's to apply */
    /* Seconds within which a peer that stalls in its handshake or mid-frame
     * is dropped (ZMTP heartbeats + a handshake deadline); <= 0: none. Set
     * before the bind, as libzmq copies options then: not reloadable. */
    double peer_timeout;
    const char *curve_secret; /* Z85 secret key: a CURVE server; NULL: a plain socket */
    const char *zap_domain;   /* with curve_secret: the ZAP domain clients are admitted under */
} zsock_options_t;

struct zsock {
    void *sock;                  /* owned; NULL before open and after close */
    void *data;                  /* the owner's */
    zpoll_t zp;                  /* the loop handles, when polled */
    zsock_message_cb on_message; /* NULL: not polled */
    zsock_close_cb on_close;
    void *close_data;
    bool polled; /* zp was started (if that failed: still has handles) */
    bool closing;
};

/*
 * Creates the socket in zctx, sets o's options, binds o->endpoint and, if
 * on_message is set, starts reading it on loop (which may be NULL
 * otherwise). Returns 0, or -1 with "NAME: ... ENDPOINT ...: reason" in err;
 * either way the owner ends it with zsock_close(). Borrows o for the call.
 */
int zsock_open(zsock_t *zs, uv_loop_t *loop, void *zctx, const zsock_options_t *o,
               zsock_message_cb on_message, void *data, char *err, size_t errlen);

/* After a send on zs->sock from outside on_message: reads ZMQ_EVENTS and
 * handles input the send may have hidden (zpoll_kick). */
void zsock_kick(zsock_t *zs);

/*
 * Stops reading and closes the socket; on_close(data) (on_close may be
 * NULL) runs once, from the loop once the handles are closed -- or before
 * zsock_close returns if there are none (not polled, or never opened: data
 * is given here, not taken from the open, so that a zsock whose open never
 * ran, in a start-up that failed before it, closes the same way). A second
 * call is ignored.
 */
void zsock_close(zsock_t *zs, zsock_close_cb on_close, void *data);

#endif
