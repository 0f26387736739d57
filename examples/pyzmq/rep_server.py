#!/usr/bin/python3
"""A plain pyzmq REP server for a pod with the zmqauth sidecar.

It binds plain ZMTP on loopback (the sidecar terminates CURVE on the pod's
port, checks the client against the allowlist and relays here) and has no
CURVE code. For each request it prints one JSON line

    {"event": "request", "user_id": USER_ID, "body": BODY}

where USER_ID is the message's "User-Id" property, which the sidecar sets to
the CurveClient's namespace/name (null without a sidecar), and replies with
the JSON {"echo": BODY, "user_id": USER_ID}: the reply of
examples/zmq4/rep-server plus the identity, so that a req-client's
"user_ids" shows what this server saw.

Run it with Debian's python3 (/usr/bin/python3, which has python3-zmq):

    /usr/bin/python3 rep_server.py --bind tcp://127.0.0.1:15556
"""

import argparse
import json
import signal
import sys

import zmq


def user_id(frame):
    """The frame's User-Id property, or None when the peer set none."""
    try:
        return frame.get("User-Id")
    except zmq.ZMQError:  # EINVAL: no such property
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="tcp://127.0.0.1:15556",
                    help="endpoint to bind (the CurveServer port's appPort)")
    args = ap.parse_args()

    stopping = []
    # SIGTERM (the kubelet stopping the pod): finish the current request,
    # print the final line and exit 0.
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.linger = 0
    sock.bind(args.bind)
    print(json.dumps({"event": "listening", "bind": args.bind}), flush=True)

    served = 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stopping:
        try:
            if not poller.poll(200):
                continue
        except zmq.ZMQError as e:
            if e.errno == zmq.EINTR:
                continue
            raise
        frame = sock.recv(copy=False)
        body = frame.bytes.decode("utf-8", "replace")
        uid = user_id(frame)
        print(json.dumps({"event": "request", "user_id": uid, "body": body}), flush=True)
        sock.send(json.dumps({"echo": body, "user_id": uid}).encode())
        served += 1

    print(json.dumps({"event": "exit", "served": served}), flush=True)
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
