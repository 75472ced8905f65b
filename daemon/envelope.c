/* envelope.c -- see envelope.h. */
#include "daemon/envelope.h"

#include <errno.h>

#include "daemon/log.h"

static bool more(void *sock)
{
    int m = 0;
    size_t len = sizeof m;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &m, &len) == 0 && m;
}

int envelope_recv(void *sock, envelope_t *env)
{
    zmq_msg_init(&env->id);
    zmq_msg_init(&env->body);
    env->has_delim = false;
    env->well_formed = false;
    env->nframes = 0;
    if (zmq_msg_recv(&env->id, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        envelope_close(env);
        if (e == EAGAIN)
            return 0;
        if (e != EINTR)
            log_warnx("zmq_msg_recv: %s", zmq_strerror(e));
        errno = e;
        return -1;
    }
    env->nframes = 1;
    /* A multipart message arrives whole: the remaining frames never block. */
    while (more(sock)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, 0) < 0) {
            zmq_msg_close(&part);
            break;
        }
        env->nframes++;
        if (env->nframes == 2 && zmq_msg_size(&part) == 0 && more(sock)) {
            env->has_delim = true;
            zmq_msg_close(&part);
            continue;
        }
        if (env->nframes == (env->has_delim ? 3 : 2))
            zmq_msg_move(&env->body, &part);
        zmq_msg_close(&part);
    }
    env->well_formed = env->nframes == (env->has_delim ? 3 : 2);
    return 1;
}

int envelope_reply(void *sock, envelope_t *env, const void *data, size_t len)
{
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, &env->id);
    if (zmq_msg_send(&id, sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return -1;
    }
    if (env->has_delim && zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(sock, data, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

void envelope_close(envelope_t *env)
{
    zmq_msg_close(&env->id);
    zmq_msg_close(&env->body);
}
