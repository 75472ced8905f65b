/*
 * check_zpoll.c -- a ZeroMQ socket driven from the libuv loop (daemon/zpoll.c,
 * daemon/zsock.c).
 *
 * Loop tests in libuv's manner: each builds its own loop, drives a ROUTER
 * bound on inproc:// through zpoll, counts callbacks, and ends by closing
 * every handle and asserting uv_loop_close() == 0 and that on_close ran
 * exactly once. ZMQ_FD is edge-triggered, so a lost wake-up shows up as a
 * test that stops making progress: one repeating timer checks for the end
 * and fails the test after DEADLINE_MS instead of hanging.
 *
 * The cases are the ones that lose messages when zpoll gets it wrong: a peer
 * flooding requests while the callback sends a reply to each (a send can eat
 * the edge that announced the next message), messages queued before the
 * socket was watched (no edge will ever come for them), and more queued
 * messages than one wake may handle (the rest must resume from the idle
 * handle).
 *
 * The "zsock" case covers the socket wrapper on top (daemon/zsock.c): open
 * from an options struct, serve, close with exactly one close callback and a
 * clean uv_loop_close() (and zmq_ctx_term() in the teardown, which would
 * block on a socket left open), and a failed open whose error names the
 * socket and the endpoint.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include "daemon/zpoll.h"
#include "daemon/zsock.h"

#define ENDPOINT "inproc://check-zpoll"
#define FLOOD_N 20000
#define DEADLINE_MS 15000 /* generous: the suites also run under valgrind */
#define PEER_DEADLINE_NS (12000ull * 1000000)

typedef struct {
    uv_loop_t loop;
    zpoll_t zp;
    uv_timer_t tick;      /* checks for the end, enforces the deadline */
    uv_prepare_t prepare; /* with check: delimit what one loop phase handled */
    uv_check_t check;
    uint64_t deadline;
    void *zctx, *router, *dealer;

    bool reply;      /* on_message answers each message */
    unsigned expect; /* messages to handle before the test ends */
    unsigned handled;
    unsigned send_errors;
    uint32_t next_send; /* the same-loop sender's next message */
    unsigned batch, max_batch;
    int closes; /* on_close calls */
    bool stopping, timed_out;

    /* the peer thread's, read after uv_thread_join */
    bool threaded;
    atomic_bool peer_done;
    unsigned peer_sent, peer_replies, peer_out_of_order;
} harness_t;

static harness_t h;

static void set_int(void *sock, int opt, int v)
{
    ck_assert_int_eq(zmq_setsockopt(sock, opt, &v, sizeof v), 0);
}

/* One message: [identity][body] from the ROUTER; the reply echoes the body. */
static bool on_message(zpoll_t *zp)
{
    harness_t *t = zp->data;
    char id[256], body[64];

    int idlen = zmq_recv(t->router, id, sizeof id, ZMQ_DONTWAIT);
    if (idlen < 0) {
        ck_assert_int_eq(errno, EAGAIN);
        return false;
    }
    int n = zmq_recv(t->router, body, sizeof body, ZMQ_DONTWAIT); /* multipart is atomic */
    ck_assert_int_ge(n, 0);
    t->handled++;
    t->batch++;
    if (t->batch > t->max_batch)
        t->max_batch = t->batch;
    if (t->reply) {
        if (zmq_send(t->router, id, (size_t)idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(t->router, body, (size_t)n, ZMQ_DONTWAIT) < 0)
            t->send_errors++;
    }
    return true;
}

static void on_close(zpoll_t *zp)
{
    harness_t *t = zp->data;

    t->closes++;
}

static void stop(harness_t *t)
{
    if (t->stopping)
        return;
    t->stopping = true;
    zpoll_close(&t->zp, on_close);
    uv_close((uv_handle_t *)&t->tick, NULL);
    uv_close((uv_handle_t *)&t->prepare, NULL);
    uv_close((uv_handle_t *)&t->check, NULL);
}

static void tick_cb(uv_timer_t *timer)
{
    harness_t *t = timer->data;
    bool done = t->handled >= t->expect && (!t->threaded || atomic_load(&t->peer_done));

    if (!done && uv_now(&t->loop) < t->deadline)
        return;
    t->timed_out = !done;
    stop(t);
}

static void phase_cb(uv_handle_t *handle)
{
    harness_t *t = handle->data;

    t->batch = 0;
}

static void prepare_cb(uv_prepare_t *p)
{
    phase_cb((uv_handle_t *)p);
}

static void check_cb(uv_check_t *c)
{
    phase_cb((uv_handle_t *)c);
}

/* A loop, a context, a ROUTER bound on inproc:// and a DEALER connected to it. */
static void setup(void)
{
    memset(&h, 0, sizeof h);
    ck_assert_int_eq(uv_loop_init(&h.loop), 0);
    h.zctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(h.zctx);
    h.router = zmq_socket(h.zctx, ZMQ_ROUTER);
    ck_assert_ptr_nonnull(h.router);
    set_int(h.router, ZMQ_LINGER, 0);
    set_int(h.router, ZMQ_SNDHWM, 0); /* unlimited: nothing may be dropped */
    set_int(h.router, ZMQ_RCVHWM, 0);
    set_int(h.router, ZMQ_ROUTER_MANDATORY, 1); /* an unroutable reply is an error */
    ck_assert_int_eq(zmq_bind(h.router, ENDPOINT), 0);
    h.dealer = zmq_socket(h.zctx, ZMQ_DEALER);
    ck_assert_ptr_nonnull(h.dealer);
    set_int(h.dealer, ZMQ_LINGER, 0);
    set_int(h.dealer, ZMQ_SNDHWM, 0);
    set_int(h.dealer, ZMQ_RCVHWM, 0);
    ck_assert_int_eq(zmq_connect(h.dealer, ENDPOINT), 0);
    atomic_init(&h.peer_done, false);
}

static void teardown(void)
{
    zmq_close(h.dealer);
    zmq_close(h.router);
    ck_assert_int_eq(zmq_ctx_term(h.zctx), 0);
}

/* Watches the ROUTER and starts the tick, prepare and check handles. */
static void start(harness_t *t)
{
    ck_assert_int_eq(zpoll_start(&t->loop, &t->zp, t->router, on_message, t), 0);
    ck_assert_ptr_eq(t->zp.data, t);
    ck_assert_int_eq(uv_timer_init(&t->loop, &t->tick), 0);
    t->tick.data = t;
    t->deadline = uv_now(&t->loop) + DEADLINE_MS;
    ck_assert_int_eq(uv_timer_start(&t->tick, tick_cb, 2, 2), 0);
    ck_assert_int_eq(uv_prepare_init(&t->loop, &t->prepare), 0);
    t->prepare.data = t;
    ck_assert_int_eq(uv_prepare_start(&t->prepare, prepare_cb), 0);
    ck_assert_int_eq(uv_check_init(&t->loop, &t->check), 0);
    t->check.data = t;
    ck_assert_int_eq(uv_check_start(&t->check, check_cb), 0);
}

/* Runs the loop until every handle is closed, then closes the loop. */
static void run_to_close(harness_t *t)
{
    ck_assert_int_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&t->loop), 0);
    ck_assert_int_eq(t->closes, 1);
}

/* Sends n 4-byte bodies from the DEALER and waits until the ROUTER reports
 * them readable. zmq_poll reads ZMQ_EVENTS: the edge on ZMQ_FD is spent. */
static void queue_before_start(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(zmq_send(h.dealer, &i, sizeof i, ZMQ_DONTWAIT), (int)sizeof i);
    zmq_pollitem_t item = {.socket = h.router, .events = ZMQ_POLLIN};
    ck_assert_int_eq(zmq_poll(&item, 1, 5000), 1);
}

/* ---- flood with replies -------------------------------------------------------- */

/* The peer: sends FLOOD_N requests as fast as it can, then collects the
 * replies (each echoes its request's number, so they must arrive in order). */
static void peer_main(void *arg)
{
    harness_t *t = arg;
    uint64_t deadline = uv_hrtime() + PEER_DEADLINE_NS;

    for (uint32_t i = 0; i < FLOOD_N; i++) {
        if (zmq_send(t->dealer, &i, sizeof i, 0) != (int)sizeof i)
            break;
        t->peer_sent++;
    }
    while (t->peer_replies < t->peer_sent && uv_hrtime() < deadline) {
        zmq_pollitem_t item = {.socket = t->dealer, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        uint32_t v;
        while (zmq_recv(t->dealer, &v, sizeof v, ZMQ_DONTWAIT) == (int)sizeof v) {
            if (v != t->peer_replies)
                t->peer_out_of_order++;
            t->peer_replies++;
        }
    }
    atomic_store(&t->peer_done, true);
}

START_TEST(test_flood_with_replies)
{
    uv_thread_t peer;

    h.reply = true;
    h.expect = FLOOD_N;
    h.threaded = true;
    start(&h);
    /* the DEALER belongs to the peer thread from here until the join */
    ck_assert_int_eq(uv_thread_create(&peer, peer_main, &h), 0);
    ck_assert_int_eq(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_thread_join(&peer), 0);
    ck_assert_int_eq(uv_loop_close(&h.loop), 0);

    ck_assert_msg(!h.timed_out, "stalled: %u of %u handled, %u replies back", h.handled, FLOOD_N,
                  h.peer_replies);
    ck_assert_uint_eq(h.peer_sent, FLOOD_N);
    ck_assert_uint_eq(h.handled, FLOOD_N);
    ck_assert_uint_eq(h.send_errors, 0);
    ck_assert_uint_eq(h.peer_replies, FLOOD_N);
    ck_assert_uint_eq(h.peer_out_of_order, 0);
    ck_assert_uint_le(h.max_batch, ZPOLL_BUDGET);
    /* (zp.wakes may be 0: a peer that stays a budget ahead is served from idle alone) */
    ck_assert_int_eq(h.closes, 1);
}
END_TEST

/* ---- queued before zpoll_start ---------------------------------------------------- */

START_TEST(test_queued_before_start)
{
    queue_before_start(100);
    h.expect = 100;
    start(&h);
    run_to_close(&h);
    ck_assert_msg(!h.timed_out, "stalled: %u of 100 handled", h.handled);
    ck_assert_uint_eq(h.handled, 100);
}
END_TEST

/* Queued before, then replied to: the replies reach the DEALER. */
START_TEST(test_queued_before_start_replies)
{
    h.reply = true;
    queue_before_start(10);
    h.expect = 10;
    start(&h);
    run_to_close(&h);
    ck_assert(!h.timed_out);
    for (uint32_t i = 0; i < 10; i++) {
        uint32_t v;
        ck_assert_int_eq(zmq_recv(h.dealer, &v, sizeof v, ZMQ_DONTWAIT), (int)sizeof v);
        ck_assert_uint_eq(v, i);
    }
}
END_TEST

/* ---- more than one wake's budget ----------------------------------------------------- */

START_TEST(test_more_than_budget)
{
    const unsigned n = 3 * ZPOLL_BUDGET + 7;

    queue_before_start(n);
    h.expect = n;
    start(&h);
    run_to_close(&h);
    ck_assert_msg(!h.timed_out, "stalled: %u of %u handled", h.handled, n);
    ck_assert_uint_eq(h.handled, n);
    /* no loop phase handled more than the budget, and one handled exactly it */
    ck_assert_uint_eq(h.max_batch, ZPOLL_BUDGET);
}
END_TEST

/* One turn of the loop handles one budget's worth; closing then leaves the
 * rest on the socket and still closes cleanly, the idle handle included. */
START_TEST(test_close_with_work_pending)
{
    const unsigned n = 3 * ZPOLL_BUDGET;

    queue_before_start(n);
    h.expect = n;
    start(&h);
    uv_run(&h.loop, UV_RUN_NOWAIT);
    unsigned handled = h.handled;
    ck_assert_uint_ge(handled, ZPOLL_BUDGET);
    ck_assert_uint_lt(handled, n);
    ck_assert_uint_eq(handled % ZPOLL_BUDGET, 0);
    ck_assert(uv_is_active((uv_handle_t *)&h.zp.idle)); /* the continuation is pending */
    stop(&h);
    ck_assert_int_eq(h.closes, 0); /* on_close runs from the loop, not from zpoll_close */
    run_to_close(&h);
    ck_assert_uint_eq(h.handled, handled); /* nothing handled after the close */
}
END_TEST

/* ---- lifecycle ------------------------------------------------------------------------ */

START_TEST(test_close_before_run)
{
    start(&h);
    stop(&h);
    run_to_close(&h);
    ck_assert_uint_eq(h.handled, 0);
    ck_assert(!h.timed_out);
}
END_TEST

/* An idle socket: the loop waits on it, and the tick's deadline ends it. */
START_TEST(test_nothing_to_read)
{
    h.expect = 0; /* done at the first tick */
    start(&h);
    run_to_close(&h);
    ck_assert(!h.timed_out);
    ck_assert_uint_eq(h.handled, 0);
}
END_TEST

/* Messages sent while the loop runs, from a timer in the same loop. */
static void send_cb(uv_timer_t *timer)
{
    harness_t *t = timer->data;

    for (int i = 0; i < 100 && t->next_send < 1000; i++, t->next_send++)
        ck_assert_int_eq(zmq_send(t->dealer, &t->next_send, sizeof t->next_send, ZMQ_DONTWAIT),
                         (int)sizeof t->next_send);
    if (t->next_send == 1000)
        uv_close((uv_handle_t *)timer, NULL);
}

START_TEST(test_same_loop_sender)
{
    uv_timer_t sender;

    h.reply = true;
    h.expect = 1000;
    start(&h);
    ck_assert_int_eq(uv_timer_init(&h.loop, &sender), 0);
    sender.data = &h;
    ck_assert_int_eq(uv_timer_start(&sender, send_cb, 0, 1), 0);
    run_to_close(&h);
    ck_assert_msg(!h.timed_out, "stalled: %u of 1000 handled", h.handled);
    ck_assert_uint_eq(h.handled, 1000);
    ck_assert_uint_eq(h.send_errors, 0);
    unsigned replies = 0;
    uint32_t v;
    while (zmq_recv(h.dealer, &v, sizeof v, ZMQ_DONTWAIT) == (int)sizeof v)
        ck_assert_uint_eq(v, replies++);
    ck_assert_uint_eq(replies, 1000);
}
END_TEST

/* ---- zsock: the socket's open and close ------------------------------------------------ */

/* Each test: its own loop and context; zsocks opened through the wrapper;
 * a DEALER to talk to them. Ends with every zsock closed, the loop run out,
 * uv_loop_close() == 0 and each close callback run exactly once. */
#define ZS_ENDPOINT "inproc://check-zsock"
#define ZS_MESSAGES 300

typedef struct {
    uv_loop_t loop;
    void *zctx, *dealer;
    zsock_t zs, other;
    uv_timer_t tick;
    uint64_t deadline;
    unsigned handled;
    int closes; /* close callbacks run, on this harness */
    bool stopping, timed_out;
} zharness_t;

static zharness_t z;

static void zs_setup(void)
{
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(uv_loop_init(&z.loop), 0);
    z.zctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(z.zctx);
}

static void zs_teardown(void)
{
    if (z.dealer)
        zmq_close(z.dealer);
    /* would block forever on a socket the wrapper left open */
    ck_assert_int_eq(zmq_ctx_term(z.zctx), 0);
}

static void zs_closed(void *data)
{
    zharness_t *t = data;
    t->closes++;
}

/* [identity][body] in, the body echoed back. */
static bool zs_message(zsock_t *zs)
{
    zharness_t *t = zs->data;
    char id[256], body[64];
    int idlen = zmq_recv(zs->sock, id, sizeof id, ZMQ_DONTWAIT);
    if (idlen < 0) {
        ck_assert_int_eq(errno, EAGAIN);
        return false;
    }
    int n = zmq_recv(zs->sock, body, sizeof body, ZMQ_DONTWAIT);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(zmq_send(zs->sock, id, (size_t)idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT), idlen);
    ck_assert_int_eq(zmq_send(zs->sock, body, (size_t)n, ZMQ_DONTWAIT), n);
    t->handled++;
    return true;
}

static void zs_stop(zharness_t *t)
{
    if (t->stopping)
        return;
    t->stopping = true;
    zsock_close(&t->zs, zs_closed, t);
    zsock_close(&t->other, zs_closed, t);
    uv_close((uv_handle_t *)&t->tick, NULL);
}

static void zs_tick(uv_timer_t *timer)
{
    zharness_t *t = timer->data;
    bool done = t->handled >= ZS_MESSAGES;
    if (!done && uv_now(&t->loop) < t->deadline)
        return;
    t->timed_out = !done;
    zs_stop(t);
}

static void zs_start_tick(zharness_t *t)
{
    ck_assert_int_eq(uv_timer_init(&t->loop, &t->tick), 0);
    t->tick.data = t;
    t->deadline = uv_now(&t->loop) + DEADLINE_MS;
    ck_assert_int_eq(uv_timer_start(&t->tick, zs_tick, 2, 2), 0);
}

static void zs_run_to_close(zharness_t *t, int closes)
{
    ck_assert_int_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&t->loop), 0);
    ck_assert_int_eq(t->closes, closes);
    ck_assert_ptr_null(t->zs.sock);
    ck_assert_ptr_null(t->other.sock);
}

static zsock_options_t router_options(void)
{
    return (zsock_options_t){.name = "check", .type = ZMQ_ROUTER, .endpoint = ZS_ENDPOINT};
}

/* Opened, served, closed: every message answered, the socket closed before
 * the one close callback, and the loop closes clean. */
START_TEST(test_zsock_serve_and_close)
{
    char err[256] = "";
    zsock_options_t o = router_options();
    ck_assert_msg(zsock_open(&z.zs, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_ptr_nonnull(z.zs.sock);
    ck_assert_ptr_eq(z.zs.data, &z);
    z.dealer = zmq_socket(z.zctx, ZMQ_DEALER);
    set_int(z.dealer, ZMQ_LINGER, 0);
    ck_assert_int_eq(zmq_connect(z.dealer, ZS_ENDPOINT), 0);
    for (uint32_t i = 0; i < ZS_MESSAGES; i++)
        ck_assert_int_eq(zmq_send(z.dealer, &i, sizeof i, ZMQ_DONTWAIT), (int)sizeof i);
    zs_start_tick(&z);
    zs_run_to_close(&z, 2); /* z.other was never opened: closed at once */
    ck_assert_msg(!z.timed_out, "stalled: %u of %u handled", z.handled, ZS_MESSAGES);
    ck_assert_uint_eq(z.handled, ZS_MESSAGES);
    for (uint32_t i = 0; i < ZS_MESSAGES; i++) {
        uint32_t v;
        ck_assert_int_eq(zmq_recv(z.dealer, &v, sizeof v, ZMQ_DONTWAIT), (int)sizeof v);
        ck_assert_uint_eq(v, i);
    }
}
END_TEST

/* The close callback runs from the loop, not from zsock_close, and once:
 * a second close is ignored. */
START_TEST(test_zsock_close_once)
{
    char err[256] = "";
    zsock_options_t o = router_options();
    ck_assert_msg(zsock_open(&z.zs, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err) == 0,
                  "%s", err);
    zsock_close(&z.zs, zs_closed, &z);
    ck_assert_int_eq(z.closes, 0);
    ck_assert_ptr_nonnull(z.zs.sock); /* the loop handles go first */
    zsock_close(&z.zs, zs_closed, &z);
    ck_assert_int_eq(uv_run(&z.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&z.loop), 0);
    ck_assert_int_eq(z.closes, 1);
    ck_assert_ptr_null(z.zs.sock);
}
END_TEST

/* A zsock never opened (a start-up that failed before it) closes at once,
 * with the data given to the close. */
START_TEST(test_zsock_close_unopened)
{
    zsock_close(&z.zs, zs_closed, &z);
    ck_assert_int_eq(z.closes, 1);
    zsock_close(&z.zs, zs_closed, &z);
    ck_assert_int_eq(z.closes, 1);
    ck_assert_int_eq(uv_loop_close(&z.loop), 0);
}
END_TEST

/* Not polled (a PUB nobody reads): no loop, closed at once. */
START_TEST(test_zsock_unpolled)
{
    char err[256] = "";
    zsock_options_t o = {.name = "pub", .type = ZMQ_PUB, .endpoint = ZS_ENDPOINT};
    ck_assert_msg(zsock_open(&z.zs, NULL, z.zctx, &o, NULL, &z, err, sizeof err) == 0, "%s", err);
    ck_assert(!z.zs.polled);
    zsock_kick(&z.zs); /* harmless */
    zsock_close(&z.zs, zs_closed, &z);
    ck_assert_int_eq(z.closes, 1);
    ck_assert_ptr_null(z.zs.sock);
    ck_assert_int_eq(uv_loop_close(&z.loop), 0);
}
END_TEST

/* A failed open names the socket and the endpoint; the owner still closes
 * it, and the close callback still runs once. */
static const struct {
    const char *endpoint; /* the second socket's */
    const char *reason;   /* in the error too */
} open_errors[] = {
    {ZS_ENDPOINT, "cannot bind inproc://check-zsock"}, /* taken by the first */
    {"bogus://nowhere", "cannot bind bogus://nowhere"},
    {"tcp://256.0.0.1:1", "cannot bind tcp://256.0.0.1:1"},
};

START_TEST(test_zsock_open_error)
{
    char err[256] = "";
    zsock_options_t o = router_options();
    ck_assert_msg(zsock_open(&z.zs, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err) == 0,
                  "%s", err);
    o.name = "second";
    o.endpoint = open_errors[_i].endpoint;
    ck_assert_int_eq(zsock_open(&z.other, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err),
                     -1);
    ck_assert_msg(strncmp(err, "second: ", 8) == 0, "err \"%s\" does not name the socket", err);
    ck_assert_msg(strstr(err, open_errors[_i].reason) != NULL, "err \"%s\", expected \"%s\"", err,
                  open_errors[_i].reason);
    zsock_close(&z.zs, zs_closed, &z);
    zsock_close(&z.other, zs_closed, &z);
    zs_run_to_close(&z, 2);
}
END_TEST

static int get_int(void *sock, int opt)
{
    int v = -12345;
    size_t len = sizeof v;
    ck_assert_int_eq(zmq_getsockopt(sock, opt, &v, &len), 0);
    return v;
}

/* The options struct reaches the socket. */
START_TEST(test_zsock_options)
{
    char err[256] = "";
    zsock_options_t o = router_options();
    o.sndhwm = 123;
    o.rcvhwm = ZSOCK_HWM_NONE;
    o.maxmsgsize = 4096;
    o.linger = 7;
    o.peer_timeout = 3;
    ck_assert_msg(zsock_open(&z.zs, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_SNDHWM), 123);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_RCVHWM), 0); /* libzmq's "no limit" */
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_LINGER), 7);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_HEARTBEAT_IVL), 1500);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_HEARTBEAT_TIMEOUT), 1500);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_HANDSHAKE_IVL), 3000);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_MECHANISM), ZMQ_NULL);
    int64_t max = 0;
    size_t len = sizeof max;
    ck_assert_int_eq(zmq_getsockopt(z.zs.sock, ZMQ_MAXMSGSIZE, &max, &len), 0);
    ck_assert_int_eq(max, 4096);
    zsock_close(&z.zs, zs_closed, &z);
    zsock_close(&z.other, zs_closed, &z);
    zs_run_to_close(&z, 2);
}
END_TEST

/* With a secret key: a CURVE server under its ZAP domain. */
START_TEST(test_zsock_curve)
{
    char pub[41], secret[41], err[256] = "", domain[32] = "";
    if (!zmq_has("curve"))
        return; /* this libzmq has no CURVE: nothing to check */
    ck_assert_int_eq(zmq_curve_keypair(pub, secret), 0);
    zsock_options_t o = router_options();
    o.curve_secret = secret;
    o.zap_domain = "ingest";
    ck_assert_msg(zsock_open(&z.zs, &z.loop, z.zctx, &o, zs_message, &z, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_MECHANISM), ZMQ_CURVE);
    ck_assert_int_eq(get_int(z.zs.sock, ZMQ_CURVE_SERVER), 1);
    size_t len = sizeof domain;
    ck_assert_int_eq(zmq_getsockopt(z.zs.sock, ZMQ_ZAP_DOMAIN, domain, &len), 0);
    ck_assert_str_eq(domain, "ingest");
    zsock_close(&z.zs, zs_closed, &z);
    zsock_close(&z.other, zs_closed, &z);
    zs_run_to_close(&z, 2);
}
END_TEST

static Suite *zpoll_suite(void)
{
    Suite *s = suite_create("zpoll");
    TCase *tc = tcase_create("loop");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_flood_with_replies);
    tcase_add_test(tc, test_queued_before_start);
    tcase_add_test(tc, test_queued_before_start_replies);
    tcase_add_test(tc, test_more_than_budget);
    tcase_add_test(tc, test_close_with_work_pending);
    tcase_add_test(tc, test_close_before_run);
    tcase_add_test(tc, test_nothing_to_read);
    tcase_add_test(tc, test_same_loop_sender);
    suite_add_tcase(s, tc);

    tc = tcase_create("zsock");
    tcase_add_checked_fixture(tc, zs_setup, zs_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zsock_serve_and_close);
    tcase_add_test(tc, test_zsock_close_once);
    tcase_add_test(tc, test_zsock_close_unopened);
    tcase_add_test(tc, test_zsock_unpolled);
    tcase_add_loop_test(tc, test_zsock_open_error, 0,
                        (int)(sizeof open_errors / sizeof open_errors[0]));
    tcase_add_test(tc, test_zsock_options);
    tcase_add_test(tc, test_zsock_curve);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(zpoll_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
