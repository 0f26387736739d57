/*
 * common.h: helpers shared by the libzmq benchmark programs of `make bench`.
 *
 * Keys are read from files (never from the command line, where the process
 * list would show them): a keypair directory holds public.key and
 * secret.key, 40 Z85 characters each, as zmqauth's keypair Secret does.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* die prints a message with the libzmq or system error and exits. */
_Noreturn static void die(const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", zmq_strerror(err));
    exit(1);
}

/* now_ns returns CLOCK_MONOTONIC in nanoseconds. */
static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* read_key reads a 40-character Z85 key (optionally followed by a newline)
 * from path into out, NUL-terminated. The file's content is never printed. */
static inline void read_key(const char *path, char out[41])
{
    char buf[64];
    FILE *f = fopen(path, "r");
    if (!f)
        die("open %s", path);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n != 40) {
        fprintf(stderr, "%s: not a 40-character Z85 key\n", path);
        exit(1);
    }
    memcpy(out, buf, 40);
    out[40] = 0;
    memset(buf, 0, sizeof buf);
}

/* key_path joins dir and name into out. */
static inline void key_path(char *out, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(1);
    }
}

/* setup_curve_server makes sock a CURVE server with the secret key in
 * keydir/secret.key. */
static inline void setup_curve_server(void *sock, const char *keydir)
{
    char path[4096], secret[41];
    int one = 1;
    key_path(path, sizeof path, keydir, "secret.key");
    read_key(path, secret);
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0)
        die("ZMQ_CURVE_SERVER");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 41) != 0)
        die("ZMQ_CURVE_SECRETKEY");
    memset(secret, 0, sizeof secret);
}

/* setup_curve_client makes sock a CURVE client with the keypair in keydir
 * and the server public key in server_key_file. */
static inline void setup_curve_client(void *sock, const char *keydir, const char *server_key_file)
{
    char path[4096], public[41], secret[41], server[41];
    key_path(path, sizeof path, keydir, "public.key");
    read_key(path, public);
    key_path(path, sizeof path, keydir, "secret.key");
    read_key(path, secret);
    read_key(server_key_file, server);
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 41) != 0)
        die("ZMQ_CURVE_SERVERKEY");
    if (zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public, 41) != 0)
        die("ZMQ_CURVE_PUBLICKEY");
    if (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 41) != 0)
        die("ZMQ_CURVE_SECRETKEY");
    memset(secret, 0, sizeof secret);
}

/* bind_and_announce binds sock to endpoint and prints "ready ENDPOINT" (the
 * endpoint actually bound, so that "tcp://127.0.0.1:*" picks a free port). */
static inline void bind_and_announce(void *sock, const char *endpoint)
{
    char last[256];
    size_t len = sizeof last;
    if (zmq_bind(sock, endpoint) != 0)
        die("bind %s", endpoint);
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, last, &len) != 0)
        die("ZMQ_LAST_ENDPOINT");
    printf("ready %s\n", last);
    fflush(stdout);
}

#endif
