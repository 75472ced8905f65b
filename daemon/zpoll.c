/* zpoll.c -- see zpoll.h. */
#include "daemon/zpoll.h"

#include <errno.h>
#include <zmq.h>

#include "daemon/log.h"

static void idle_cb(uv_idle_t *h);

/* After dispatching is over (so a send it makes may kick a new dispatch). */
static void drained(zpoll_t *zp, unsigned handled)
{
    if (handled && zp->on_drained)
        zp->on_drained(zp);
}

static void dispatch(zpoll_t *zp)
{
    if (zp->dispatching || zp->closing || zp->open_handles < 2)
        return;
    zp->dispatching = true;
    unsigned handled = 0;
    for (;;) {
        uint32_t events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(zp->sock, ZMQ_EVENTS, &events, &len) != 0) {
            if (errno != EINTR)
                log_warn("zmq_getsockopt(ZMQ_EVENTS)");
            break;
        }
        if (!(events & ZMQ_POLLIN))
            break;
        unsigned before = handled;
        while (handled < ZPOLL_BUDGET && zp->on_message(zp))
            handled++;
        if (handled >= ZPOLL_BUDGET) {
            /* more may be queued and no new edge will tell us: resume soon */
            uv_idle_start(&zp->idle, idle_cb);
            zp->dispatching = false;
            drained(zp, handled);
            return;
        }
        if (handled == before)
            break; /* ZMQ_EVENTS said readable but recv said EAGAIN: wait for the next edge */
    }
    uv_idle_stop(&zp->idle);
    zp->dispatching = false;
    drained(zp, handled);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    zpoll_t *zp = h->data;
    (void)events;
    if (status < 0)
        log_warnx("uv_poll on a ZeroMQ socket: %s", uv_strerror(status));
    zp->wakes++;
    dispatch(zp);
}

static void idle_cb(uv_idle_t *h)
{
    dispatch(h->data);
}

int zpoll_start(uv_loop_t *loop, zpoll_t *zp, void *sock, zpoll_message_cb on_message, void *data)
{
    int fd;
    size_t len = sizeof fd;
    zp->open_handles = 0;
    zp->closing = false;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0)
        return -errno;
    zp->sock = sock;
    zp->on_message = on_message;
    zp->data = data;
    zp->dispatching = false;
    zp->on_drained = NULL;
    zp->wakes = 0;
    uv_idle_init(loop, &zp->idle);
    zp->idle.data = zp;
    zp->open_handles++;
    int rc = uv_poll_init(loop, &zp->poll, fd);
    if (rc < 0)
        return rc; /* the owner still calls zpoll_close(), which closes the idle */
    zp->poll.data = zp;
    zp->open_handles++;
    rc = uv_poll_start(&zp->poll, UV_READABLE, poll_cb);
    if (rc < 0)
        return rc;
    /* messages may have queued before we watched the fd: look once soon */
    uv_idle_start(&zp->idle, idle_cb);
    return 0;
}

void zpoll_kick(zpoll_t *zp)
{
    dispatch(zp);
}

static void handle_closed(uv_handle_t *h)
{
    zpoll_t *zp = h->data;
    if (--zp->open_handles == 0 && zp->on_close)
        zp->on_close(zp);
}

void zpoll_close(zpoll_t *zp, zpoll_close_cb on_close)
{
    zp->on_close = on_close;
    zp->closing = true;
    if (zp->open_handles == 0) {
        if (on_close)
            on_close(zp);
        return;
    }
    uv_idle_stop(&zp->idle);
    uv_close((uv_handle_t *)&zp->idle, handle_closed);
    if (zp->open_handles == 2) {
        uv_poll_stop(&zp->poll);
        uv_close((uv_handle_t *)&zp->poll, handle_closed);
    }
}
