"""A libzmq CURVE REQ/REP round trip driven only by zcert files.

  curve_reqrep.py SERVER.key_secret CLIENT.key_secret SERVER.key ALLOW_DIR INTRUDER.key_secret

The server (REP, CURVE server) and its ZAP handler (pyzmq's ThreadAuthenticator
with configure_curve(location=ALLOW_DIR)) take their keys from the files; the
client (REQ) does too, and knows the server only by the public certificate.
An intruder whose public key is not in ALLOW_DIR must be refused. Everything
listens on 127.0.0.1 with an ephemeral port and every wait is bounded.
Prints one JSON document on stdout; no key is printed.
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


def main(server_secret, client_secret, server_public, allow_dir, intruder_secret):
    ctx = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    sockets = []
    try:
        allowed = zmq.auth.load_certificates(allow_dir)
        if len(allowed) != 1:
            raise SystemExit("pyzmq loaded %d keys from the allow directory, want 1" % len(allowed))
        # configure_curve reaches the authenticator thread through a pipe;
        # wait (bounded) until the thread holds the allowlist.
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

        client = curve_socket(ctx, zmq.REQ, client_secret)
        sockets.append(client)
        client.curve_serverkey = server_key
        client.connect(endpoint)

        client.send(b"ping")
        request = server.recv(copy=False)
        user_id = request.get("User-Id")
        server.send(b"pong")
        reply = client.recv()

        intruder = curve_socket(ctx, zmq.REQ, intruder_secret)
        sockets.append(intruder)
        intruder.curve_serverkey = server_key
        intruder.rcvtimeo = DENY_WAIT_MS
        intruder.connect(endpoint)
        intruder.send(b"let me in")
        intruder_served = bool(server.poll(DENY_WAIT_MS))
        try:
            intruder.recv()
            intruder_replied = True
        except zmq.Again:
            intruder_replied = False

        print(json.dumps({
            "request": request.bytes.decode(),
            "reply": reply.decode(),
            "user_id": user_id,
            "intruder_served": intruder_served,
            "intruder_replied": intruder_replied,
        }))
    finally:
        for s in sockets:
            s.close(linger=0)
        auth.stop()
        ctx.term()


if __name__ == "__main__":
    main(*sys.argv[1:])
