/*
 * zmq_thr: one-connection PUSH -> PULL throughput with libzmq, CURVE or NULL.
 *
 *   zmq_thr pull ENDPOINT SIZE WARMUP_S DURATION_S [SERVER_KEYDIR]
 *   zmq_thr push ENDPOINT SIZE [CLIENT_KEYDIR SERVER_PUBLIC_KEY_FILE]
 *
 * pull binds ENDPOINT (as CURVE server when SERVER_KEYDIR is given), prints
 * "ready ENDPOINT", and from its first message on ignores WARMUP_S seconds
 * of traffic, then counts the messages received in the next DURATION_S
 * seconds and prints "result msgs=N bytes=N secs=S" and exits.
 * push connects (as CURVE client when keys are given) and sends SIZE-byte
 * messages until it is killed.
 */
#include "common.h"

/* check_every is how many messages pass between two looks at the clock. */
#define check_every 256

static int run_pull(const char *endpoint, size_t size, double warmup, double duration, const char *keydir)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_PULL);
    if (!ctx || !sock)
        die("zmq_socket");
    if (keydir)
        setup_curve_server(sock, keydir);
    bind_and_announce(sock, endpoint);

    zmq_msg_t msg;
    zmq_msg_init(&msg);
    long long start = 0, t0 = 0, deadline = 0;
    unsigned long long msgs = 0, bytes = 0, n = 0;
    for (;;) {
        int rc = zmq_msg_recv(&msg, sock, 0);
        if (rc < 0)
            die("recv");
        if ((size_t)rc != size) {
            fprintf(stderr, "received %d bytes, want %zu\n", rc, size);
            return 1;
        }
        n++;
        if (t0) {
            msgs++;
            bytes += (unsigned long long)rc;
        }
        if (n % check_every != 1)
            continue;
        long long now = now_ns();
        if (!start) {
            start = now;
        } else if (!t0 && now - start >= (long long)(warmup * 1e9)) {
            t0 = now;
            deadline = t0 + (long long)(duration * 1e9);
        } else if (t0 && now >= deadline) {
            printf("result msgs=%llu bytes=%llu secs=%.6f\n", msgs, bytes, (now - t0) / 1e9);
            fflush(stdout);
            return 0;
        }
    }
}

_Noreturn static void run_push(const char *endpoint, size_t size, const char *keydir, const char *server_key)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_PUSH);
    if (!ctx || !sock)
        die("zmq_socket");
    if (keydir)
        setup_curve_client(sock, keydir, server_key);
    if (zmq_connect(sock, endpoint) != 0)
        die("connect %s", endpoint);
    char *buf = calloc(1, size ? size : 1);
    if (!buf)
        die("calloc");
    for (;;) {
        if (zmq_send(sock, buf, size, 0) < 0)
            die("send");
    }
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "pull") == 0 && argc <= 7)
        return run_pull(argv[2], strtoul(argv[3], NULL, 10), atof(argv[4]), atof(argv[5]), argc == 7 ? argv[6] : NULL);
    if (argc >= 4 && strcmp(argv[1], "push") == 0 && (argc == 4 || argc == 6))
        run_push(argv[2], strtoul(argv[3], NULL, 10), argc == 6 ? argv[4] : NULL, argc == 6 ? argv[5] : NULL);
    fprintf(stderr, "usage: zmq_thr pull ENDPOINT SIZE WARMUP_S DURATION_S [SERVER_KEYDIR]\n"
                    "       zmq_thr push ENDPOINT SIZE [CLIENT_KEYDIR SERVER_PUBLIC_KEY_FILE]\n");
    return 2;
}
