#!/usr/bin/python3
"""The demo's ZeroMQ applications: plain pyzmq programs with no CURVE code.

  apps.py rep-server --bind tcp://127.0.0.1:PORT
      A REP server that answers every request with the request and the
      User-Id the sidecar attached to it; prints one JSON line per request.
  apps.py req-client --connect tcp://127.0.0.1:PORT --count N [--interval-ms MS]
      A REQ client that sends N numbered requests, reconnecting (a new
      socket, a new connection) every --reconnect-every requests, and prints
      a JSON summary: sent, received, lost, the User-Id the server saw.
  apps.py curve-probe --connect tcp://HOST:PORT --server-key Z85
      A CURVE client with a brand-new keypair (unknown to everyone): prints
      whether the handshake succeeded, per libzmq's socket monitor.

Run with Debian's /usr/bin/python3 (python3-zmq).
"""
import argparse
import json
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message


def out(**kw):
    print(json.dumps(kw), flush=True)


def rep_server(a):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REP)
    s.linger = 0
    s.bind(a.bind)
    out(event="listening", endpoint=a.bind)
    while True:
        frame = s.recv(copy=False)
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:
            user = None
        body = frame.bytes
        s.send_json({"echo": body.decode(), "user_id": user})
        if a.verbose:
            out(event="request", body=body.decode(), user_id=user)


def req_client(a):
    ctx = zmq.Context()
    sent = received = 0
    users = set()
    s = None
    for i in range(a.count):
        if s is None or (a.reconnect_every and i % a.reconnect_every == 0):
            if s is not None:
                s.close()
            s = ctx.socket(zmq.REQ)
            s.linger = 0
            s.rcvtimeo = a.timeout_ms
            s.connect(a.connect)
        s.send_string("request %d" % i)
        sent += 1
        try:
            reply = s.recv_json()
        except zmq.Again:
            out(event="timeout", at=i)
            s.close()
            s = None
            continue
        if reply.get("echo") == "request %d" % i:
            received += 1
            users.add(reply.get("user_id"))
        if a.interval_ms:
            time.sleep(a.interval_ms / 1000.0)
    out(event="done", sent=sent, received=received, lost=sent - received,
        user_ids=sorted(u for u in users if u is not None))


def curve_probe(a):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.linger = 0
    pub, sec = zmq.curve_keypair()
    s.curve_publickey, s.curve_secretkey, s.curve_serverkey = pub, sec, a.server_key.encode()
    mon = s.get_monitor_socket()
    s.connect(a.connect)
    deadline = time.time() + a.timeout_ms / 1000.0
    result = "no-answer"
    detail = None
    while time.time() < deadline:
        if mon.poll(100):
            ev = recv_monitor_message(mon)
            e = ev["event"]
            if e == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                result = "accepted"
                break
            if e in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                     zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                result = "refused"
                detail = ev["value"]
                break
    # A refused libzmq socket never reconnects, so a send would wait for a
    # peer forever: send without blocking and look for an answer briefly.
    got = False
    try:
        s.send_string("hello?", zmq.NOBLOCK)
        got = bool(s.poll(300, zmq.POLLIN))
    except zmq.Again:
        pass
    out(event="probe", result=result, served=bool(got),
        status=(detail if result == "refused" else None))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rep-server")
    r.add_argument("--bind", required=True)
    r.add_argument("--verbose", action="store_true")
    c = sub.add_parser("req-client")
    c.add_argument("--connect", required=True)
    c.add_argument("--count", type=int, default=10)
    c.add_argument("--interval-ms", type=int, default=0)
    c.add_argument("--reconnect-every", type=int, default=0)
    c.add_argument("--timeout-ms", type=int, default=5000)
    q = sub.add_parser("curve-probe")
    q.add_argument("--connect", required=True)
    q.add_argument("--server-key", required=True)
    q.add_argument("--timeout-ms", type=int, default=3000)
    a = p.parse_args()
    {"rep-server": rep_server, "req-client": req_client, "curve-probe": curve_probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
