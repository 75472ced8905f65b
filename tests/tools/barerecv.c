/*
 * barerecv -- the benchmark's ceiling: the least a receiver of ingest
 * batches must do. A ROUTER driven from a libuv loop through the daemon's
 * own zpoll module (uv_poll on ZMQ_FD, ZMQ_EVENTS, drained with
 * ZMQ_DONTWAIT, the same per-wake budget), each batch decoded with msgpack-c
 * (every sample walked) and answered with an `ok` ack, and nothing else: no
 * registry, no aggregate, no rules, no WAL. `make bench` sends the same
 * bytes here and to clustermond and compares the CPU time of the two.
 *
 *   barerecv [-p] ENDPOINT
 *
 * -p decodes with proto_batch_decode (the daemon's validating decoder)
 * instead of msgpack_unpack_next. Runs until SIGTERM or SIGINT, then prints
 *
 *   barerecv: batches=N samples=N malformed=N
 *
 * and exits 0 (1 if it could not bind). A REQ peer's empty delimiter frame
 * is echoed, as the daemon does.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/zpoll.h"
#include "proto/proto.h"

typedef struct {
    void *sock;
    bool use_proto;
    long batches, samples, malformed;
    msgpack_unpacked unpacked;
    msgpack_sbuffer out;
    proto_sample_t *decoded; /* for -p */
} recv_t;

/* Walks one batch map with msgpack-c: finds its seq and counts the samples,
 * looking at every field of each. Returns the sample count or -1. */
static long walk_batch(recv_t *r, const char *data, size_t len, uint64_t *ret_seq)
{
    size_t off = 0;
    if (msgpack_unpack_next(&r->unpacked, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || r->unpacked.data.type != MSGPACK_OBJECT_MAP)
        return -1;
    const msgpack_object_map *m = &r->unpacked.data.via.map;
    long n = -1;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return -1;
        if (k->via.str.size == 3 && memcmp(k->via.str.ptr, "seq", 3) == 0 &&
            v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *ret_seq = v->via.u64;
        if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "samples", 7) == 0 &&
            v->type == MSGPACK_OBJECT_ARRAY) {
            n = 0;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                const msgpack_object *s = &v->via.array.ptr[j];
                if (s->type != MSGPACK_OBJECT_ARRAY || s->via.array.size < 4 ||
                    s->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
                    s->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
                    (s->via.array.ptr[2].type != MSGPACK_OBJECT_FLOAT64 &&
                     s->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER))
                    return -1;
                n++;
            }
        }
    }
    return n;
}

static bool on_message(zpoll_t *zp)
{
    recv_t *r = zp->data;
    zmq_msg_t id, part;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, r->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return false;
    }
    zmq_msg_init(&part);
    bool delim = false;
    if (zmq_msg_recv(&part, r->sock, 0) >= 0 && zmq_msg_size(&part) == 0 && zmq_msg_more(&part)) {
        delim = true; /* a REQ peer: the body follows */
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        zmq_msg_recv(&part, r->sock, 0);
    }
    while (zmq_msg_more(&part)) { /* extra frames: not a batch */
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        zmq_msg_recv(&part, r->sock, 0);
    }

    uint64_t seq = 0;
    long n;
    if (r->use_proto) {
        proto_batch_t b = {.samples = r->decoded, .cap = PROTO_MAX_SAMPLES};
        char err[PROTO_ERRLEN];
        n = proto_batch_decode(zmq_msg_data(&part), zmq_msg_size(&part), &b, err, sizeof err) ==
                    PROTO_OK
                ? (long)b.nsamples
                : -1;
        seq = b.seq;
    } else {
        n = walk_batch(r, zmq_msg_data(&part), zmq_msg_size(&part), &seq);
    }
    r->batches++;
    if (n < 0)
        r->malformed++;
    else
        r->samples += n;
    proto_ack_t ack = {.seq = seq,
                       .expected = seq + 1,
                       .status = n >= 0 ? PROTO_STATUS_OK : PROTO_STATUS_MALFORMED,
                       .max_version = PROTO_VERSION,
                       .accepted = n >= 0 ? (uint32_t)n : 0,
                       .reason = proto_str(n >= 0 ? "" : "not a batch")};
    msgpack_sbuffer_clear(&r->out);
    proto_ack_encode(&ack, &r->out);
    zmq_msg_send(&id, r->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (delim)
        zmq_send(r->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(r->sock, r->out.data, r->out.size, ZMQ_DONTWAIT);
    zmq_msg_close(&id);
    zmq_msg_close(&part);
    return true;
}

static zpoll_t zp;
static uv_signal_t sterm, sint;
static void on_closed(zpoll_t *z)
{
    (void)z;
}
/* The first signal closes every handle, so uv_run returns. */
static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    if (uv_is_closing((uv_handle_t *)&sterm))
        return;
    zpoll_close(&zp, on_closed);
    uv_close((uv_handle_t *)&sterm, NULL);
    uv_close((uv_handle_t *)&sint, NULL);
}

int main(int argc, char **argv)
{
    recv_t r = {0};
    int c;
    while ((c = getopt(argc, argv, "p")) != -1) {
        if (c == 'p')
            r.use_proto = true;
        else
            return 2;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: barerecv [-p] ENDPOINT\n");
        return 2;
    }
    log_init(LOG_LVL_WARN, "barerecv");
    static proto_sample_t decoded[PROTO_MAX_SAMPLES];
    r.decoded = decoded;
    msgpack_unpacked_init(&r.unpacked);
    msgpack_sbuffer_init(&r.out);
    void *ctx = zmq_ctx_new();
    r.sock = zmq_socket(ctx, ZMQ_ROUTER);
    int linger = 0, hwm = 10000;
    zmq_setsockopt(r.sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r.sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(r.sock, argv[optind]) != 0) {
        fprintf(stderr, "barerecv: bind %s: %s\n", argv[optind], zmq_strerror(zmq_errno()));
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uv_signal_init(loop, &sterm);
    uv_signal_init(loop, &sint);
    uv_signal_start(&sterm, on_signal, SIGTERM);
    uv_signal_start(&sint, on_signal, SIGINT);
    if (zpoll_start(loop, &zp, r.sock, on_message, &r) != 0) {
        fprintf(stderr, "barerecv: zpoll_start failed\n");
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0)
        fprintf(stderr, "barerecv: a loop handle was left open\n");
    printf("barerecv: batches=%ld samples=%ld malformed=%ld\n", r.batches, r.samples, r.malformed);
    fflush(stdout);
    zmq_close(r.sock);
    zmq_ctx_term(ctx);
    msgpack_unpacked_destroy(&r.unpacked);
    msgpack_sbuffer_destroy(&r.out);
    return 0;
}
