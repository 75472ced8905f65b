/*
 * zpoll.h -- drives one ZeroMQ socket from the libuv loop.
 *
 * ZMQ_FD is edge-triggered and wakes for *any* socket event, so on every
 * wake we read ZMQ_EVENTS and call the owner's on_message until it reports
 * EAGAIN, then read ZMQ_EVENTS again: a send made while handling a message
 * can consume the edge that announced the next one. To keep one flooding
 * peer from starving the rest of the loop, at most ZPOLL_BUDGET messages are
 * handled per wake; the remainder is resumed from a uv_idle handle (which
 * also keeps the loop from blocking while work is pending).
 *
 * The socket is borrowed: the owner creates it and closes it (zmq_close)
 * only after zpoll_close()'s callback ran. Nothing here reads or closes the
 * fd itself. The daemon's sockets have that owner in zsock.h, which opens,
 * polls and closes a socket as one object; metrics.c's monitor sockets use
 * zpoll directly.
 */
#ifndef CLUSTERMON_ZPOLL_H
#define CLUSTERMON_ZPOLL_H

#include <stdbool.h>
#include <uv.h>

#define ZPOLL_BUDGET 512

typedef struct zpoll zpoll_t;

/* Handles one message if there is one: returns true if it consumed one,
 * false if the socket had none (EAGAIN). */
typedef bool (*zpoll_message_cb)(zpoll_t *zp);
typedef void (*zpoll_close_cb)(zpoll_t *zp);
/* Runs after a dispatch that handled at least one message (the socket is
 * drained, or the budget is spent): the place for work done once per batch
 * of messages, such as one WAL write for all of them. */
typedef void (*zpoll_drained_cb)(zpoll_t *zp);

struct zpoll {
    uv_poll_t poll;
    uv_idle_t idle;
    void *sock;
    zpoll_message_cb on_message;
    zpoll_close_cb on_close;
    zpoll_drained_cb on_drained; /* NULL: none; set after zpoll_start */
    void *data;                  /* the owner's */
    int open_handles;
    bool closing;
    bool dispatching;    /* guards against re-entry from zpoll_kick */
    unsigned long wakes; /* poll wake-ups, for tests and stats */
};

/* Starts watching sock. Returns 0 or a negative libuv/errno code. */
int zpoll_start(uv_loop_t *loop, zpoll_t *zp, void *sock, zpoll_message_cb on_message, void *data);

/* Call after sending on the socket from outside its own on_message: checks
 * ZMQ_EVENTS and handles input that the send may have hidden. */
void zpoll_kick(zpoll_t *zp);

/* Stops and closes the handles; on_close runs once both are closed. */
void zpoll_close(zpoll_t *zp, zpoll_close_cb on_close);

#endif
