/*
 * zsend -- a test tool: sends raw bytes as one ingest message and prints the
 * daemon's reply. It exists to put exactly the bytes a test wants on the wire
 * (malformed MessagePack, oversized headers, resends), which the real agent
 * refuses to produce.
 *
 *   zsend [-n FRAMES] [-r REPEAT] ENDPOINT FILE|- [FILE ...]
 *
 * Several files are sent in order on one connection, each after the reply
 * to the one before. Prints one line per reply:
 * "<status> seq=<n> accepted=<n> expected=<n> reason=<text>".
 * Exit 0 if every reply arrived (whatever its status), 3 on a timeout.
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
    int frames = 1, repeat = 1, c;
    while ((c = getopt(argc, argv, "n:r:")) != -1) {
        if (c == 'n')
            frames = atoi(optarg);
        else if (c == 'r')
            repeat = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind < 2 || frames < 1 || repeat < 1) {
        fprintf(stderr, "usage: zsend [-n FRAMES] [-r REPEAT] ENDPOINT FILE|- [FILE ...]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, argv[optind]) != 0) {
        fprintf(stderr, "zsend: connect %s: %s\n", argv[optind], zmq_strerror(errno));
        return 2;
    }
    static char buf[16 << 20];
    int status = 0;
    for (int fi = optind + 1; fi < argc && status == 0; fi++) {
        FILE *in = strcmp(argv[fi], "-") == 0 ? stdin : fopen(argv[fi], "rb");
        if (!in) {
            perror(argv[fi]);
            status = 2;
            break;
        }
        size_t len = fread(buf, 1, sizeof buf, in);
        if (in != stdin)
            fclose(in);
        for (int r = 0; r < repeat && status == 0; r++) {
            for (int f = 0; f < frames; f++)
                zmq_send(s, buf, len, f + 1 < frames ? ZMQ_SNDMORE : 0);
            zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
            if (zmq_poll(&item, 1, 5000) <= 0) {
                fprintf(stderr, "zsend: no reply within 5 s\n");
                status = 3;
                break;
            }
            char reply[65536];
            int n = zmq_recv(s, reply, sizeof reply, 0);
            proto_ack_t ack;
            char err[PROTO_ERRLEN];
            if (n < 0 || proto_ack_decode(reply, (size_t)n, &ack, err, sizeof err) != PROTO_OK) {
                printf("undecodable reply: %s\n", n < 0 ? zmq_strerror(errno) : err);
                continue;
            }
            printf("%s seq=%llu accepted=%u expected=%llu reason=%.*s\n",
                   proto_status_name(ack.status), (unsigned long long)ack.seq, ack.accepted,
                   (unsigned long long)ack.expected, PROTO_STR_ARG(ack.reason));
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return status;
}
