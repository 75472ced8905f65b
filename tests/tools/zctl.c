/*
 * zctl -- a test tool: sends one control request built from the command
 * line, possibly one the real client refuses to produce (any argument of any
 * type, another protocol version, a padded frame), and prints the reply.
 *
 *   zctl [-v VERSION] [-p PAD_BYTES] [-t MS] ENDPOINT CMD [NAME=int:N|NAME=str:S|NAME=nil]...
 *
 * -v patches the request's "v"; -p adds an unknown top-level key "pad"
 * holding PAD_BYTES bytes (a bin), to make the frame as large as a test
 * wants. Prints "ok=true|false max_version=N reason=TEXT". Exit 0 on any
 * reply, 3 on a timeout, 2 on a usage error or a reply that does not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/proto.h"

int main(int argc, char **argv)
{
    long version = -1, pad = -1, timeout = 5000;
    int c;
    while ((c = getopt(argc, argv, "v:p:t:")) != -1) {
        if (c == 'v')
            version = atol(optarg);
        else if (c == 'p')
            pad = atol(optarg);
        else if (c == 't')
            timeout = atol(optarg);
        else
            return 2;
    }
    if (argc - optind < 2 || argc - optind - 2 > PROTO_MAX_CTL_ARGS || version > 127) {
        fprintf(stderr, "usage: zctl [-v VERSION] [-p PAD] [-t MS] ENDPOINT CMD [NAME=int:N|"
                        "NAME=str:S|NAME=nil]...\n");
        return 2;
    }
    proto_ctl_request_t r = {.cmd = proto_str(argv[optind + 1])};
    for (int i = optind + 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "zctl: %s: expected NAME=TYPE:VALUE\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        proto_ctl_arg_t *a = &r.args[r.nargs++];
        a->key = proto_str(argv[i]);
        a->sval = proto_str("");
        if (strncmp(eq + 1, "int:", 4) == 0) {
            a->kind = PROTO_ARG_INT;
            a->ival = strtoll(eq + 5, NULL, 10);
        } else if (strncmp(eq + 1, "str:", 4) == 0) {
            a->kind = PROTO_ARG_STR;
            a->sval = proto_str(eq + 5);
        } else {
            a->kind = PROTO_ARG_NIL;
        }
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (proto_ctl_request_encode(&r, &sb) != PROTO_OK) {
        fprintf(stderr, "zctl: cannot encode the request\n");
        return 2;
    }
    /* The encoder writes a fixmap of 4, then "v" as a positive fixint. */
    if (version >= 0)
        sb.data[3] = (char)version;
    if (pad >= 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        sb.data[0] = (char)0x85;
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "pad", 3);
        msgpack_pack_bin(&pk, (size_t)pad);
        char *zeros = calloc(1, (size_t)pad + 1);
        msgpack_pack_bin_body(&pk, zeros, (size_t)pad);
        free(zeros);
    }

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, ipv6 = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_IPV6, &ipv6, sizeof ipv6);
    if (zmq_connect(s, argv[optind]) != 0) {
        fprintf(stderr, "zctl: connect %s: %s\n", argv[optind], zmq_strerror(errno));
        return 2;
    }
    int status = 0;
    zmq_send(s, sb.data, sb.size, 0);
    zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_poll(&item, 1, timeout) <= 0 || zmq_msg_recv(&msg, s, 0) < 0) {
        fprintf(stderr, "zctl: no reply within %ld ms\n", timeout);
        status = 3;
    } else {
        msgpack_zone zone;
        msgpack_zone_init(&zone, 4096);
        msgpack_object body, all;
        proto_str_t reason;
        bool ok;
        char err[PROTO_ERRLEN];
        size_t off = 0;
        if (proto_ctl_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &zone, &ok, &reason,
                                   &body, err, sizeof err) != PROTO_OK ||
            msgpack_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &off, &zone, &all) !=
                MSGPACK_UNPACK_SUCCESS) {
            fprintf(stderr, "zctl: bad reply: %s\n", err);
            status = 2;
        } else {
            const msgpack_object *mv = proto_obj_get(&all, "max_version");
            printf("ok=%s max_version=%lld reason=" PROTO_STR_FMT "\n", ok ? "true" : "false",
                   mv && mv->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (long long)mv->via.u64
                                                                     : -1LL,
                   PROTO_STR_ARG(reason));
        }
        msgpack_zone_destroy(&zone);
    }
    zmq_msg_close(&msg);
    zmq_close(s);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&sb);
    return status;
}
