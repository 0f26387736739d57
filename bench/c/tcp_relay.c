/*
 * tcp_relay: the least a relay can do, for the latency floor of `make bench`.
 *
 *   tcp_relay HOST:PORT
 *
 * Listens on 127.0.0.1 (a free port), prints "ready 127.0.0.1:PORT", and for
 * each connection it accepts connects to HOST:PORT and copies bytes both
 * ways with two threads doing blocking read() and write(): no event loop,
 * no framing, no crypto. It stands where the sidecars stand to show what
 * two extra hops cost on this machine whatever the relay is written in.
 * It runs until it is killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* conn is one relayed connection: the accepted socket and the one to the
 * target, closed when both directions have ended. */
struct conn {
    int fd[2];
    int halves; /* directions still copying */
};

/* half is one direction of a conn. */
struct half {
    struct conn *conn;
    int from, to;
};

/* copy_half copies until EOF or an error, ends the other side's writing so
 * that the peer sees the close, and closes the connection when the other
 * direction is done too. */
static void *copy_half(void *arg)
{
    struct half *h = arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(h->from, buf, sizeof buf)) > 0) {
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(h->to, buf + done, (size_t)(n - done));
            if (w <= 0)
                goto out;
            done += w;
        }
    }
out:
    shutdown(h->to, SHUT_WR);
    if (__atomic_sub_fetch(&h->conn->halves, 1, __ATOMIC_ACQ_REL) == 0) {
        close(h->conn->fd[0]);
        close(h->conn->fd[1]);
        free(h->conn);
    }
    free(h);
    return NULL;
}

/* parse_addr fills sa from "HOST:PORT" (HOST an IPv4 address). */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* relay starts the two directions of a connection; on failure (out of
 * memory or threads) it closes it. */
static void relay(int c, int u)
{
    struct conn *conn = malloc(sizeof *conn);
    struct half *h[2] = {malloc(sizeof(struct half)), malloc(sizeof(struct half))};
    if (!conn || !h[0] || !h[1]) {
        free(conn), free(h[0]), free(h[1]);
        close(c), close(u);
        return;
    }
    conn->fd[0] = c;
    conn->fd[1] = u;
    conn->halves = 2;
    *h[0] = (struct half){conn, c, u};
    *h[1] = (struct half){conn, u, c};
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, copy_half, h[i]) != 0) {
            fprintf(stderr, "tcp_relay: no thread\n");
            exit(1);
        }
        pthread_detach(t);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in target, local;
    socklen_t len = sizeof local;
    int one = 1;
    if (argc != 2 || parse_addr(argv[1], &target) != 0) {
        fprintf(stderr, "usage: tcp_relay HOST:PORT (HOST an IPv4 address)\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    memset(&local, 0, sizeof local);
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&local, sizeof local) != 0 || listen(ls, 64) != 0 ||
        getsockname(ls, (struct sockaddr *)&local, &len) != 0) {
        perror("tcp_relay: listen");
        return 1;
    }
    printf("ready 127.0.0.1:%d\n", ntohs(local.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (u < 0 || connect(u, (struct sockaddr *)&target, sizeof target) != 0) {
            close(c);
            if (u >= 0)
                close(u);
            continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        relay(c, u);
    }
}
