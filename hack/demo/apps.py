#!/usr/bin/python3
"""The demo's ZeroMQ applications: plain pyzmq programs with no CURVE code.

  apps.py rep-server --bind tcp://127.0.0.1:PORT
      A REP server that answers every request with the request and the
      User-Id the sidecar attached to it; prints one JSON line per request.
  apps.py req-client --connect tcp://127.0.0.1:PORT --count N [--interval-ms MS]
      A REQ client that sends N numbered requests, reconnecting (a new
      socket, a new connection) every --reconnect-every requests, and prints
      a JSON summary: sent, received, lost, the User-Id the server saw.
  apps.py req-stream --connect tcp://127.0.0.1:PORT [--interval-ms MS] [--reconnect-every N]
      A REQ client that sends numbered requests until its stdin closes, on
      one connection (or a new one every --reconnect-every requests, or
      after a request timed out), and prints one JSON line per connection
      event (libzmq's socket monitor: connected, disconnected,
      handshake_failed), a progress line every second and a summary at the
      end, each with the running counts.
  apps.py curve-probe --connect tcp://HOST:PORT --server-key Z85
      A CURVE client with a brand-new keypair (unknown to everyone): prints
      whether the handshake succeeded, per libzmq's socket monitor.

Run with Debian's /usr/bin/python3 (python3-zmq).
"""
import argparse
import json
import sys
import threading
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


_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
           zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


def req_stream(a):
    ctx = zmq.Context()
    stop = threading.Event()

    def wait_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    n = {"sent": 0, "received": 0, "connected": 0, "disconnected": 0, "handshake_failed": 0}
    users = set()

    def emit(event, **kw):
        out(event=event, lost=n["sent"] - n["received"], **n, **kw)

    sock = {"s": None, "mon": None}
    poller = zmq.Poller()

    def monitor_events():
        mon = sock["mon"]
        while mon is not None and mon.poll(0):
            e = recv_monitor_message(mon)["event"]
            if e == zmq.EVENT_CONNECTED:
                n["connected"] += 1
                emit("connected")
            elif e == zmq.EVENT_DISCONNECTED:
                n["disconnected"] += 1
                emit("disconnected")
            elif e in _FAILED:
                n["handshake_failed"] += 1
                emit("handshake_failed")

    def open_socket():
        s = ctx.socket(zmq.REQ)
        s.linger = 0
        s.sndtimeo = a.timeout_ms
        sock["s"], sock["mon"] = s, s.get_monitor_socket()
        poller.register(s, zmq.POLLIN)
        poller.register(sock["mon"], zmq.POLLIN)
        s.connect(a.connect)

    def close_socket():
        s, mon = sock["s"], sock["mon"]
        if s is None:
            return
        monitor_events()
        poller.unregister(s)
        poller.unregister(mon)
        s.disable_monitor()  # our own close is no disconnection to report
        mon.close()
        s.close()
        sock["s"] = sock["mon"] = None

    def wait(ms):
        """Process monitor events for up to ms; True when a reply is ready."""
        deadline = time.time() + ms / 1000.0
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            ready = dict(poller.poll(left * 1000))
            if sock["mon"] in ready:
                monitor_events()
            if sock["s"] in ready:
                return True

    i = 0
    last = time.time()
    while not stop.is_set():
        if sock["s"] is None or (a.reconnect_every and i and i % a.reconnect_every == 0):
            close_socket()
            open_socket()
        try:
            sock["s"].send_string("request %d" % i)
        except zmq.Again:
            emit("send_timeout", at=i)
            close_socket()
            continue
        n["sent"] += 1
        if wait(a.timeout_ms):
            reply = sock["s"].recv_json()
            if reply.get("echo") == "request %d" % i:
                n["received"] += 1
                users.add(reply.get("user_id"))
        else:
            emit("timeout", at=i)
            close_socket()
        i += 1
        if time.time() - last >= 1:
            last = time.time()
            emit("progress")
        if a.interval_ms and sock["s"] is not None:
            wait(a.interval_ms)
        elif a.interval_ms:
            time.sleep(a.interval_ms / 1000.0)
    close_socket()
    emit("done", user_ids=sorted(u for u in users if u is not None))


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
    t = sub.add_parser("req-stream")
    t.add_argument("--connect", required=True)
    t.add_argument("--interval-ms", type=int, default=20)
    t.add_argument("--reconnect-every", type=int, default=0)
    t.add_argument("--timeout-ms", type=int, default=2000)
    q = sub.add_parser("curve-probe")
    q.add_argument("--connect", required=True)
    q.add_argument("--server-key", required=True)
    q.add_argument("--timeout-ms", type=int, default=3000)
    a = p.parse_args()
    {"rep-server": rep_server, "req-client": req_client, "req-stream": req_stream,
     "curve-probe": curve_probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
