/*
 * zmq_hs_server: a libzmq CURVE server for the handshake benchmark.
 *
 *   zmq_hs_server ENDPOINT SERVER_KEYDIR zap|nozap WARMUP_S DURATION_S
 *
 * A ROUTER socket with CURVE binds ENDPOINT and prints "ready ENDPOINT".
 * With "zap" a ZAP handler thread (RFC 27, inproc://zeromq.zap.01) answers
 * 200 to every request after checking it is a CURVE request with a 32-byte
 * key, as a real allowlist that lets every client in would; with "nozap"
 * libzmq accepts every client by itself. Completed handshakes are counted
 * from the socket monitor's HANDSHAKE_SUCCEEDED events. After WARMUP_S
 * seconds the process's CPU time (getrusage, all threads) and the count are
 * sampled, again DURATION_S seconds later, and
 * "result handshakes=N cpu_us=N wall_us=N zap_requests=N" is printed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"

static atomic_ullong zap_requests;

/* recv_frame receives one frame into buf (truncated to size) and returns
 * its length; *more tells whether another frame follows. */
static int recv_frame(void *sock, char *buf, size_t size, int *more)
{
    int rc = zmq_recv(sock, buf, size, 0);
    if (rc < 0)
        return rc;
    size_t len = sizeof *more;
    if (zmq_getsockopt(sock, ZMQ_RCVMORE, more, &len) != 0)
        return -1;
    return rc;
}

/* zap_handler answers ZAP requests until its context is terminated. */
static void *zap_handler(void *ctx)
{
    void *sock = zmq_socket(ctx, ZMQ_REP);
    if (!sock || zmq_bind(sock, "inproc://zeromq.zap.01") != 0)
        die("ZAP handler bind");
    for (;;) {
        /* version, request id, domain, address, identity, mechanism,
         * credentials (one frame for CURVE: the client's public key) */
        char frames[8][256];
        int lens[8], n = 0, more = 1;
        while (more) {
            char scratch[256];
            char *dst = n < 8 ? frames[n] : scratch;
            int rc = recv_frame(sock, dst, 256, &more);
            if (rc < 0) {
                if (errno == ETERM)
                    return NULL;
                die("ZAP recv");
            }
            if (n < 8)
                lens[n] = rc;
            n++;
        }
        const char *status = "200", *text = "OK";
        if (n != 7 || lens[5] != 5 || memcmp(frames[5], "CURVE", 5) != 0 || lens[6] != 32) {
            status = "400";
            text = "not a CURVE request";
        }
        int idlen = lens[1] > 255 ? 255 : lens[1];
        if (zmq_send(sock, "1.0", 3, ZMQ_SNDMORE) < 0 || zmq_send(sock, frames[1], idlen, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, status, 3, ZMQ_SNDMORE) < 0 || zmq_send(sock, text, strlen(text), ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(sock, "", 0, 0) < 0)
            die("ZAP send");
        atomic_fetch_add(&zap_requests, 1);
    }
}

/* cpu_us returns the CPU time (user and system) of every thread so far. */
static long long cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        die("getrusage");
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[3], "zap") != 0 && strcmp(argv[3], "nozap") != 0)) {
        fprintf(stderr, "usage: zmq_hs_server ENDPOINT SERVER_KEYDIR zap|nozap WARMUP_S DURATION_S\n");
        return 2;
    }
    double warmup = atof(argv[4]), duration = atof(argv[5]);
    void *ctx = zmq_ctx_new();
    if (!ctx)
        die("zmq_ctx_new");
    pthread_t zap;
    if (strcmp(argv[3], "zap") == 0 && pthread_create(&zap, NULL, zap_handler, ctx) != 0)
        die("pthread_create");
    /* Give the handler time to bind before the first handshake needs it. */
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);

    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (!sock)
        die("zmq_socket");
    setup_curve_server(sock, argv[2]);
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "bench", 5) != 0)
        die("ZMQ_ZAP_DOMAIN");
    if (zmq_socket_monitor(sock, "inproc://monitor", ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
        die("zmq_socket_monitor");
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    if (!mon || zmq_connect(mon, "inproc://monitor") != 0)
        die("monitor connect");
    bind_and_announce(sock, argv[1]);

    unsigned long long handshakes = 0, h0 = 0, z0 = 0;
    long long start = now_ns(), t0 = 0, c0 = 0;
    zmq_pollitem_t items[] = {{mon, 0, ZMQ_POLLIN, 0}, {sock, 0, ZMQ_POLLIN, 0}};
    char buf[256];
    for (;;) {
        if (zmq_poll(items, 2, 20) < 0)
            die("zmq_poll");
        if (items[0].revents & ZMQ_POLLIN) {
            /* An event is two frames: event id and value, then the address. */
            int more = 1;
            while (more)
                if (recv_frame(mon, buf, sizeof buf, &more) < 0)
                    die("monitor recv");
            handshakes++;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            int more = 1; /* clients send nothing; drain whatever comes */
            while (more)
                if (recv_frame(sock, buf, sizeof buf, &more) < 0)
                    die("recv");
        }
        long long now = now_ns();
        if (!t0 && now - start >= (long long)(warmup * 1e9)) {
            t0 = now;
            c0 = cpu_us();
            h0 = handshakes;
            z0 = atomic_load(&zap_requests);
        } else if (t0 && now - t0 >= (long long)(duration * 1e9)) {
            printf("result handshakes=%llu cpu_us=%lld wall_us=%lld zap_requests=%llu\n", handshakes - h0,
                   cpu_us() - c0, (now - t0) / 1000, atomic_load(&zap_requests) - z0);
            fflush(stdout);
            _exit(0);
        }
    }
}
