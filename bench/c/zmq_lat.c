/*
 * zmq_lat: REQ/REP round-trip latency with libzmq, CURVE or NULL.
 *
 *   zmq_lat rep ENDPOINT [SERVER_KEYDIR]
 *   zmq_lat req ENDPOINT SIZE WARMUP_S DURATION_S [CLIENT_KEYDIR SERVER_PUBLIC_KEY_FILE]
 *
 * rep binds ENDPOINT (as CURVE server when SERVER_KEYDIR is given), prints
 * "ready ENDPOINT" and echoes every request until it is killed.
 * req connects, ping-pongs SIZE-byte messages one at a time, discards the
 * round trips of the first WARMUP_S seconds, records those of the next
 * DURATION_S seconds and prints
 * "result n=N p50_us=X p90_us=X p99_us=X mean_us=X" and exits.
 */
#include "common.h"

_Noreturn static void run_rep(const char *endpoint, const char *keydir)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_REP);
    if (!ctx || !sock)
        die("zmq_socket");
    if (keydir)
        setup_curve_server(sock, keydir);
    bind_and_announce(sock, endpoint);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    for (;;) {
        if (zmq_msg_recv(&msg, sock, 0) < 0)
            die("recv");
        if (zmq_msg_send(&msg, sock, 0) < 0)
            die("send");
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* pct returns the p-th percentile (nearest rank) of sorted v, in µs. */
static double pct(const long long *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return v[i] / 1e3;
}

static int run_req(const char *endpoint, size_t size, double warmup, double duration, const char *keydir, const char *server_key)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_REQ);
    if (!ctx || !sock)
        die("zmq_socket");
    if (keydir)
        setup_curve_client(sock, keydir, server_key);
    if (zmq_connect(sock, endpoint) != 0)
        die("connect %s", endpoint);

    char *buf = calloc(1, size ? size : 1);
    size_t cap = 1 << 20, n = 0;
    long long *rtt = malloc(cap * sizeof *rtt);
    if (!buf || !rtt)
        die("malloc");
    long long start = 0, t0 = 0, deadline = 0;
    for (;;) {
        long long a = now_ns();
        if (zmq_send(sock, buf, size, 0) < 0)
            die("send");
        int rc = zmq_recv(sock, buf, size, 0);
        if (rc < 0)
            die("recv");
        long long b = now_ns();
        if (!start) {
            start = b; /* the first round trip includes the handshake */
            continue;
        }
        if (!t0) {
            if (b - start >= (long long)(warmup * 1e9)) {
                t0 = b;
                deadline = t0 + (long long)(duration * 1e9);
            }
            continue;
        }
        if (n == cap) {
            cap *= 2;
            rtt = realloc(rtt, cap * sizeof *rtt);
            if (!rtt)
                die("realloc");
        }
        rtt[n++] = b - a;
        if (b >= deadline)
            break;
    }
    qsort(rtt, n, sizeof *rtt, cmp_ll);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += rtt[i];
    printf("result n=%zu p50_us=%.2f p90_us=%.2f p99_us=%.2f mean_us=%.2f\n", n, pct(rtt, n, 50), pct(rtt, n, 90),
           pct(rtt, n, 99), sum / n / 1e3);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "rep") == 0)
        run_rep(argv[2], argc == 4 ? argv[3] : NULL);
    if ((argc == 6 || argc == 8) && strcmp(argv[1], "req") == 0)
        return run_req(argv[2], strtoul(argv[3], NULL, 10), atof(argv[4]), atof(argv[5]), argc == 8 ? argv[6] : NULL,
                       argc == 8 ? argv[7] : NULL);
    fprintf(stderr, "usage: zmq_lat rep ENDPOINT [SERVER_KEYDIR]\n"
                    "       zmq_lat req ENDPOINT SIZE WARMUP_S DURATION_S [CLIENT_KEYDIR SERVER_PUBLIC_KEY_FILE]\n");
    return 2;
}
