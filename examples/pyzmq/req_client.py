#!/usr/bin/python3
"""A plain pyzmq REQ client for a pod with the zmqauth sidecar.

It connects in plain ZMTP to the sidecar's local port (the sidecar speaks
CURVE to the server) and has no CURVE code. It sends numbered requests
"request N", waits for each reply up to --timeout and, on a timeout, closes
the socket and opens a new one (REQ lockstep: the reply will never come)
and counts the request lost. It prints one JSON line a second, and one at
exit, as examples/zmq4/req-client does:

    {"sent": S, "received": R, "lost": L, "user_ids": [...]}

Run it with Debian's python3 (/usr/bin/python3, which has python3-zmq):

    /usr/bin/python3 req_client.py --connect tcp://127.0.0.1:6556 --count 10
"""

import argparse
import json
import re
import signal
import sys
import time

import zmq


def duration(s):
    """Parses a Go-style duration: 100ms, 2s, 1m."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m)", s)
    if not m:
        raise argparse.ArgumentTypeError("want a duration like 100ms, 2s or 1m: %r" % s)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", default="tcp://127.0.0.1:6556",
                    help="endpoint to connect to (the sidecar's localPort)")
    ap.add_argument("--interval", type=duration, default=0.1, help="pause between requests")
    ap.add_argument("--timeout", type=duration, default=2.0, help="how long to wait for each reply")
    ap.add_argument("--count", type=int, default=0, help="requests to send, then exit 0 (0: forever)")
    args = ap.parse_args()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))

    stats = {"sent": 0, "received": 0, "lost": 0, "user_ids": []}
    last_print = [time.monotonic()]

    def report(force=False):
        now = time.monotonic()
        if force or now - last_print[0] >= 1:
            print(json.dumps(stats), flush=True)
            last_print[0] = now

    ctx = zmq.Context()

    def connect():
        s = ctx.socket(zmq.REQ)
        s.linger = 0
        # libzmq reconnects by itself when the connection drops
        # (ZMQ_RECONNECT_IVL, 100 ms by default).
        s.connect(args.connect)
        return s

    def sleep(seconds):
        end = time.monotonic() + seconds
        while not stopping and time.monotonic() < end:
            time.sleep(min(0.05, max(0, end - time.monotonic())))
            report()

    sock = connect()
    n = 0
    while not stopping and (args.count == 0 or n < args.count):
        n += 1
        sock.send_string("request %d" % n)
        stats["sent"] += 1
        deadline = time.monotonic() + args.timeout
        got = False
        while not stopping and time.monotonic() < deadline:
            try:
                ready = sock.poll(50)
            except zmq.ZMQError as e:
                if e.errno == zmq.EINTR:
                    continue
                raise
            report()
            if ready:
                reply = sock.recv()
                got = True
                break
        if stopping and not got:
            break
        if got:
            stats["received"] += 1
            try:
                uid = json.loads(reply).get("user_id")
            except (ValueError, AttributeError):
                uid = None
            if uid is not None and uid not in stats["user_ids"]:
                stats["user_ids"].append(uid)
        else:
            stats["lost"] += 1
            print("req_client: request %d lost: no reply in time" % n, file=sys.stderr, flush=True)
            sock.close()
            sock = connect()
        if args.count == 0 or n < args.count:
            sleep(args.interval)

    report(force=True)
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
