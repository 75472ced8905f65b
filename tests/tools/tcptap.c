/*
 * tcptap -- a TCP relay on 127.0.0.1 that records every byte it passes, so
 * a test can show what an eavesdropper on the wire would read.
 *
 *   tcptap LISTEN_PORT TARGET_PORT CAPTURE_FILE
 *
 * Accepts connections on LISTEN_PORT, connects each to TARGET_PORT and
 * relays both ways, appending both directions to CAPTURE_FILE. Runs until
 * killed. LISTEN_PORT 0: the kernel picks a free port, and tcptap prints
 * "listening on PORT" (one line, on standard output) once it listens, so a
 * test never guesses a port that may be taken. Single-threaded poll(); at most MAX_PAIRS connections at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 32

static int tcp_socket(int port, int listening)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    if (fd < 0)
        return -1;
    if (listening) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
            close(fd);
            return -1;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: tcptap LISTEN_PORT TARGET_PORT CAPTURE_FILE\n");
        return 2;
    }
    int target = atoi(argv[2]);
    int lfd = tcp_socket(atoi(argv[1]), 1);
    FILE *cap = fopen(argv[3], "ab");
    if (lfd < 0 || !cap) {
        fprintf(stderr, "tcptap: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (getsockname(lfd, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "tcptap: getsockname: %s\n", strerror(errno));
        return 1;
    }
    printf("listening on %d\n", ntohs(bound.sin_port));
    fflush(stdout);
    int a[MAX_PAIRS], b[MAX_PAIRS], n = 0;
    for (;;) {
        struct pollfd p[1 + 2 * MAX_PAIRS];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){.fd = a[i], .events = POLLIN};
            p[2 + 2 * i] = (struct pollfd){.fd = b[i], .events = POLLIN};
        }
        if (poll(p, (nfds_t)(1 + 2 * n), -1) < 0 && errno != EINTR)
            return 1;
        for (int i = n - 1; i >= 0; i--) {
            for (int side = 0; side < 2; side++) {
                if (!(p[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                int from = side ? b[i] : a[i], to = side ? a[i] : b[i];
                char buf[65536];
                ssize_t got = read(from, buf, sizeof buf);
                if (got <= 0 || write(to, buf, (size_t)got) != got) {
                    close(a[i]);
                    close(b[i]);
                    a[i] = a[n - 1];
                    b[i] = b[n - 1];
                    n--;
                    break;
                }
                fwrite(buf, 1, (size_t)got, cap);
                fflush(cap);
            }
        }
        if (p[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            int t = c >= 0 && n < MAX_PAIRS ? tcp_socket(target, 0) : -1;
            if (t < 0) {
                if (c >= 0)
                    close(c);
                continue;
            }
            a[n] = c;
            b[n] = t;
            n++;
        }
    }
}
