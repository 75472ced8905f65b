/*
 * nullsink -- a benchmark baseline: a bare ROUTER that decodes each batch
 * (to learn its seq) and acks it, doing nothing else. Running the same agent
 * against it and against clustermond shows what the daemon's resolve, apply,
 * rules and event loop cost on top of transport and decoding.
 *
 *   nullsink ENDPOINT MAX_BATCHES
 */
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "proto/proto.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: nullsink ENDPOINT MAX_BATCHES\n");
        return 2;
    }
    long max = atol(argv[2]);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(s, argv[1]) != 0) {
        fprintf(stderr, "nullsink: bind %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    static proto_sample_t samples[PROTO_MAX_SAMPLES];
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    for (long n = 0; n < max; n++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0)
            break;
        proto_batch_t b = {.samples = samples, .cap = PROTO_MAX_SAMPLES};
        char err[PROTO_ERRLEN];
        int rc = proto_batch_decode(zmq_msg_data(&body), zmq_msg_size(&body), &b, err, sizeof err);
        proto_ack_t ack = {.seq = b.seq,
                           .status = rc == PROTO_OK ? PROTO_STATUS_OK : PROTO_STATUS_MALFORMED,
                           .max_version = PROTO_VERSION,
                           .accepted = rc == PROTO_OK ? b.nsamples : 0,
                           .reason = proto_str(rc == PROTO_OK ? "" : err)};
        msgpack_sbuffer_clear(&out);
        proto_ack_encode(&ack, &out);
        zmq_msg_send(&id, s, ZMQ_SNDMORE);
        zmq_send(s, out.data, out.size, 0);
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    msgpack_sbuffer_destroy(&out);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
