"""A pyzmq CURVE server enforcing an allowlist directory written from a
zmqauth allowlist ConfigMap.

  allowlist_curve.py SERVER.key_secret SERVER.key ALLOW_DIR LISTED.key_secret UNLISTED.key_secret

The server (REP) takes its keypair from SERVER.key_secret (the server's
curve.key_secret) and its ZAP handler is pyzmq's ThreadAuthenticator with
configure_curve(location=ALLOW_DIR). Each client (REQ) knows the server only
by SERVER.key (the server key file zmqauth put in the client's Secret). The
listed client must get a reply, the unlisted one must be refused. Everything
listens on 127.0.0.1 with an ephemeral port and every wait is bounded.
Prints one JSON document on stdout; no secret key is printed.
"""
import json
import sys
import time

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

TIMEOUT_MS = 10000
DENY_WAIT_MS = 1500


def curve_socket(ctx, kind, cert_path):
    public, secret = zmq.auth.load_certificate(cert_path)
    if secret is None:
        raise SystemExit("no secret key in " + cert_path)
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.rcvtimeo = TIMEOUT_MS
    sock.sndtimeo = TIMEOUT_MS
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    return sock


def main(server_secret, server_public, allow_dir, listed_secret, unlisted_secret):
    ctx = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    sockets = []
    try:
        allowed = zmq.auth.load_certificates(allow_dir)
        auth.configure_curve(domain="*", location=allow_dir)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while auth.certs.get("*") != allowed:
            if time.monotonic() > deadline:
                raise SystemExit("the authenticator did not load the allow directory")
            time.sleep(0.01)

        server = curve_socket(ctx, zmq.REP, server_secret)
        sockets.append(server)
        server.curve_server = True
        port = server.bind_to_random_port("tcp://127.0.0.1")
        endpoint = "tcp://127.0.0.1:%d" % port
        server_key, _ = zmq.auth.load_certificate(server_public)

        listed = curve_socket(ctx, zmq.REQ, listed_secret)
        sockets.append(listed)
        listed.curve_serverkey = server_key
        listed.connect(endpoint)
        listed.send(b"ping")
        request = server.recv(copy=False)
        user_id = request.get("User-Id")
        server.send(b"pong")
        reply = listed.recv()

        unlisted = curve_socket(ctx, zmq.REQ, unlisted_secret)
        sockets.append(unlisted)
        unlisted.curve_serverkey = server_key
        unlisted.rcvtimeo = DENY_WAIT_MS
        unlisted.connect(endpoint)
        unlisted.send(b"let me in")
        unlisted_served = bool(server.poll(DENY_WAIT_MS))
        try:
            unlisted.recv()
            unlisted_replied = True
        except zmq.Again:
            unlisted_replied = False

        print(json.dumps({
            "allowed": len(allowed),
            "request": request.bytes.decode(),
            "reply": reply.decode(),
            "user_id": user_id,
            "unlisted_served": unlisted_served,
            "unlisted_replied": unlisted_replied,
        }))
    finally:
        for s in sockets:
            s.close(linger=0)
        auth.stop()
        ctx.term()


if __name__ == "__main__":
    main(*sys.argv[1:])
