/* alerts.c -- see alerts.h. */
#include "daemon/alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/log.h"

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

int alerts_open(alerts_t *al, void *zctx, const char *endpoint, int hwm, char *err, size_t errlen)
{
    al->sock = zmq_socket(zctx, ZMQ_PUB);
    if (!al->sock) {
        snprintf(err, errlen, "alerts: zmq_socket(PUB): %s", zmq_strerror(errno));
        return -1;
    }
    int linger = 0;
    zmq_setsockopt(al->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(al->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(al->sock, endpoint) != 0) {
        snprintf(err, errlen, "alerts: cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
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
        return -1;
    }
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
    msgpack_sbuffer_clear(&al->buf);
    if (proto_heartbeat_encode(al->seq, now_ms, &al->buf) != PROTO_OK)
        return;
    size_t tlen = strlen(proto_heartbeat_topic);
    if (zmq_send(al->sock, proto_heartbeat_topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(al->sock, al->buf.data, al->buf.size, ZMQ_DONTWAIT) < 0)
        al->send_errors++;
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
