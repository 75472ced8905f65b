/*
 * envelope.h -- the ROUTER envelope shared by the ingest and control
 * sockets: [identity][payload] from a DEALER, [identity][""][payload] from a
 * REQ. Receiving keeps the identity (and the delimiter) so the reply goes
 * back in the same shape. Anything else is taken off the socket whole and
 * reported as malformed, so one broken peer cannot desynchronise framing.
 */
#ifndef CLUSTERMON_ENVELOPE_H
#define CLUSTERMON_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

typedef struct {
    zmq_msg_t id;
    zmq_msg_t body;
    bool has_delim;
    bool well_formed;
    int nframes;
} envelope_t;

/* Receives one whole message without blocking. Returns 1 if one was taken
 * (then envelope_close() it; body is valid only if well_formed), 0 if there
 * was none (EAGAIN), -1 on another error (logged). */
int envelope_recv(void *sock, envelope_t *env);

/* Sends [identity][(delimiter)][data]. Returns 0 or -1 (errno). A peer that
 * has gone away is not an error for a ROUTER: the reply is dropped. */
int envelope_reply(void *sock, envelope_t *env, const void *data, size_t len);

void envelope_close(envelope_t *env);

static inline const void *envelope_data(envelope_t *env)
{
    return zmq_msg_data(&env->body);
}
static inline size_t envelope_size(envelope_t *env)
{
    return zmq_msg_size(&env->body);
}

#endif
