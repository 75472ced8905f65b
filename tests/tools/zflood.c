/*
 * zflood -- a test tool: sends the same raw ingest message many times over
 * ONE connection, as fast as the socket takes them, and counts the replies.
 * tests/hostile.sh uses it for a flood from one peer (which must not starve
 * the others) and, with -n 1, to see a reply in full (zsend does not print
 * max_version).
 *
 *   zflood [-n COUNT | -d MS] [-w WINDOW] [-t MS] ENDPOINT FILE|-
 *
 * -n sends COUNT copies (default 1); -d sends copies for MS milliseconds
 * instead, as many as go through, so a test can keep a flood going for a
 * known time whatever the machine's speed.
 *
 * Messages are pipelined: up to WINDOW (default 500) are in flight at once,
 * and replies are drained as they arrive. The window stays below ZeroMQ's
 * default high-water mark of 1000 because a ROUTER drops the replies to a
 * peer whose queue is full: a client that sends without reading loses
 * answers by design, and this tool is meant to count them all. It stops once
 * COUNT replies arrived, or when nothing was sent or received for MS ms
 * (default 5000). Prints:
 *
 *   first: <status> seq=<n> accepted=<n> max_version=<n> reason=<text>
 *   sent=<n> replies=<n> [<status>=<n>]...
 *
 * (no "first:" line if nothing came back). Exit 0 if every message was
 * answered, 3 if some were not, 2 on a usage or connect error.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/proto.h"
#include "proto/clock.h"

#define MAX_FILE (16u << 20) /* four times the frame limit: room for frames ZeroMQ drops */

/* Counts one reply by status; prints it in full if it is the first. */
static void count_reply(const char *reply, size_t len, bool first, long *by_status)
{
    proto_ack_t ack;
    char err[PROTO_ERRLEN];
    int rc = proto_ack_decode(reply, len, &ack, err, sizeof err);

    by_status[rc == PROTO_OK ? ack.status : PROTO_STATUS_COUNT]++;
    if (first && rc != PROTO_OK)
        printf("first: undecodable reply: %s\n", err);
    else if (first)
        printf("first: %s seq=%llu accepted=%u max_version=%u reason=%.*s\n",
               proto_status_name(ack.status), (unsigned long long)ack.seq, ack.accepted,
               ack.max_version, PROTO_STR_ARG(ack.reason));
}

int main(int argc, char **argv)
{
    long count = 1, window = 500, timeout_ms = 5000, duration_ms = 0;
    int c;

    while ((c = getopt(argc, argv, "n:d:w:t:")) != -1) {
        if (c == 'n')
            count = atol(optarg);
        else if (c == 'd')
            duration_ms = atol(optarg);
        else if (c == 'w')
            window = atol(optarg);
        else if (c == 't')
            timeout_ms = atol(optarg);
        else
            return 2;
    }
    if (argc - optind != 2 || count < 1 || window < 1 || timeout_ms < 1 || duration_ms < 0) {
        fprintf(stderr, "usage: zflood [-n COUNT | -d MS] [-w WINDOW] [-t MS] ENDPOINT FILE|-\n");
        return 2;
    }
    if (duration_ms > 0)
        count = LONG_MAX; /* until the time is up */
    FILE *in = strcmp(argv[optind + 1], "-") == 0 ? stdin : fopen(argv[optind + 1], "rb");
    if (!in) {
        perror(argv[optind + 1]);
        return 2;
    }
    char *buf = malloc(MAX_FILE);
    if (!buf)
        return 2;
    size_t len = fread(buf, 1, MAX_FILE, in);
    if (in != stdin)
        fclose(in);

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, argv[optind]) != 0) {
        fprintf(stderr, "zflood: connect %s: %s\n", argv[optind], zmq_strerror(errno));
        return 2;
    }

    long sent = 0, replies = 0, by_status[PROTO_STATUS_COUNT + 1] = {0};
    static char reply[65536];
    int64_t stop_at = clock_monotonic_ms() + duration_ms;
    while (replies < count) {
        if (duration_ms > 0 && count == LONG_MAX && clock_monotonic_ms() >= stop_at)
            count = sent; /* time is up: wait for the replies still due */
        if (replies >= count)
            break;
        bool can_send = sent < count && sent - replies < window;
        zmq_pollitem_t item = {.socket = s,
                               .events = (short)(ZMQ_POLLIN | (can_send ? ZMQ_POLLOUT : 0))};
        if (zmq_poll(&item, 1, timeout_ms) <= 0)
            break; /* nothing moved for timeout_ms */
        while (can_send && (item.revents & ZMQ_POLLOUT) &&
               zmq_send(s, buf, len, ZMQ_DONTWAIT) >= 0) {
            sent++;
            can_send = sent < count && sent - replies < window;
        }
        int n;
        while ((n = zmq_recv(s, reply, sizeof reply, ZMQ_DONTWAIT)) >= 0)
            count_reply(reply, (size_t)n < sizeof reply ? (size_t)n : sizeof reply, ++replies == 1,
                        by_status);
    }
    printf("sent=%ld replies=%ld", sent, replies);
    for (int st = 0; st <= PROTO_STATUS_COUNT; st++)
        if (by_status[st])
            printf(" %s=%ld",
                   st < PROTO_STATUS_COUNT ? proto_status_name((proto_status_t)st) : "undecodable",
                   by_status[st]);
    printf("\n");
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(buf);
    return replies == count ? 0 : 3;
}
