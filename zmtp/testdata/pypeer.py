#!/usr/bin/python3
"""pypeer: a libzmq reference peer driven by tests, through pyzmq.

One ZeroMQ socket, configured from the command line, then driven by JSON
operations read one per line from stdin. Everything it reports is a JSON
object on one line of stdout. Binary data travels base64-encoded.

Run it with Debian's /usr/bin/python3 (python3-zmq, libzmq 4.3).

Socket:
  --type TYPE            socket type: REQ REP DEALER ROUTER PUB SUB XPUB XSUB
                         PUSH PULL PAIR (required)
  --bind ENDPOINT        bind, e.g. tcp://127.0.0.1:* (the real endpoint is
                         reported in the "ready" event)
  --connect ENDPOINT     connect, e.g. tcp://127.0.0.1:5555
  --identity ID          routing id (ZMQ_ROUTING_ID)
  --subscribe TOPIC      SUB/XSUB: subscribe at start (repeatable; "" = all)
  --linger MS            ZMQ_LINGER (default 0)
  --maxmsgsize N         ZMQ_MAXMSGSIZE
  --router-mandatory     ZMQ_ROUTER_MANDATORY (ROUTER)

Security:
  --mechanism M          NULL (default), PLAIN or CURVE
  --plain-server         be the PLAIN server
  --username U           PLAIN client username
  --password P           PLAIN client password
  --curve-server         be the CURVE server
  --curve-secret-key K   our secret key (Z85, 40 chars)
  --curve-public-key K   our public key (Z85)
  --curve-server-key K   CURVE client: the server's public key (Z85)
  --zap-domain D         ZMQ_ZAP_DOMAIN (libzmq consults ZAP for NULL only
                         when a domain is set)

ZAP handler (zmq.auth.thread.ThreadAuthenticator), started by any of:
  --zap                  start it (with no rule: PLAIN and CURVE are denied)
  --zap-allow IP         allow only these addresses (repeatable)
  --zap-deny IP          deny these addresses (repeatable)
  --zap-plain USER:PASS  PLAIN credentials to accept (repeatable)
  --zap-curve-any        accept any CURVE client key
  --zap-curve-dir DIR    accept the CURVE client public certificates in DIR

Heartbeats (ZMTP 3.1):
  --heartbeat-ivl MS  --heartbeat-timeout MS  --heartbeat-ttl MS

Reporting and safety:
  --monitor              report socket monitor events as they happen
  --timeout S            exit after S seconds whatever happens (default 60)

Operations on stdin (each may carry "id", echoed in its reply):
  {"op":"send","parts":[B64...],"repeat":N,"interval_ms":MS}
                                  -> {"event":"sent","count":N}
  {"op":"recv","timeout_ms":MS,"props":["User-Id",...],"props_part":N}
                                  -> {"event":"recv","parts":[B64...],
                                      "props":{"User-Id":"..."|null}}
                                     or {"event":"timeout"}
                                  props are read from part N (default 0;
                                  -1 is the last: a ROUTER's first part is
                                  the routing id it made, with no metadata)
  {"op":"echo","count":N,"timeout_ms":MS}
                                  -> {"event":"echoed","count":N}
                                     or {"event":"timeout","count":done}
  {"op":"subscribe","topic":B64} / {"op":"unsubscribe","topic":B64}
                                  -> {"event":"ok"}
  {"op":"sleep","ms":MS}          -> {"event":"ok"}
  {"op":"quit"}                   -> {"event":"exit"} and exit (also on EOF)
A failing operation answers {"event":"error","error":"..."}.

Events without an id:
  {"event":"ready","endpoint":"tcp://127.0.0.1:PORT"}   after bind/connect
  {"event":"monitor","name":"HANDSHAKE_SUCCEEDED","value":N,"endpoint":"..."}
  {"event":"exit"}
"""

import argparse
import base64
import json
import os
import sys
import threading

import zmq
import zmq.auth
import zmq.auth.thread
from zmq.utils.monitor import recv_monitor_message

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(s):
    return base64.b64decode(s)


def event_names():
    names = {}
    for attr in dir(zmq):
        if attr.startswith("EVENT_") and attr not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2"):
            names[int(getattr(zmq, attr))] = attr[len("EVENT_"):]
    return names


def parse_args(argv):
    p = argparse.ArgumentParser(description="libzmq reference peer for tests")
    p.add_argument("--type", required=True)
    p.add_argument("--bind")
    p.add_argument("--connect")
    p.add_argument("--identity")
    p.add_argument("--subscribe", action="append", default=[])
    p.add_argument("--linger", type=int, default=0)
    p.add_argument("--maxmsgsize", type=int)
    p.add_argument("--router-mandatory", action="store_true")
    p.add_argument("--mechanism", default="NULL", choices=["NULL", "PLAIN", "CURVE"])
    p.add_argument("--plain-server", action="store_true")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--curve-server", action="store_true")
    p.add_argument("--curve-secret-key")
    p.add_argument("--curve-public-key")
    p.add_argument("--curve-server-key")
    p.add_argument("--zap-domain")
    p.add_argument("--zap", action="store_true")
    p.add_argument("--zap-allow", action="append", default=[])
    p.add_argument("--zap-deny", action="append", default=[])
    p.add_argument("--zap-plain", action="append", default=[])
    p.add_argument("--zap-curve-any", action="store_true")
    p.add_argument("--zap-curve-dir")
    p.add_argument("--heartbeat-ivl", type=int)
    p.add_argument("--heartbeat-timeout", type=int)
    p.add_argument("--heartbeat-ttl", type=int)
    p.add_argument("--monitor", action="store_true")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args(argv)
    if bool(a.bind) == bool(a.connect):
        p.error("exactly one of --bind and --connect is required")
    return a


def start_zap(ctx, a):
    wanted = (a.zap or a.zap_allow or a.zap_deny or a.zap_plain
              or a.zap_curve_any or a.zap_curve_dir)
    if not wanted:
        return None
    auth = zmq.auth.thread.ThreadAuthenticator(ctx)
    auth.start()
    if a.zap_allow:
        auth.allow(*a.zap_allow)
    if a.zap_deny:
        auth.deny(*a.zap_deny)
    if a.zap_plain:
        passwords = dict(item.split(":", 1) for item in a.zap_plain)
        auth.configure_plain(domain="*", passwords=passwords)
    if a.zap_curve_any:
        auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    elif a.zap_curve_dir:
        auth.configure_curve(domain="*", location=a.zap_curve_dir)
    return auth


def configure(sock, a):
    sock.linger = a.linger
    if a.identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, a.identity.encode())
    if a.maxmsgsize is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, a.maxmsgsize)
    if a.router_mandatory:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    if a.heartbeat_ivl is not None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, a.heartbeat_ivl)
    if a.heartbeat_timeout is not None:
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, a.heartbeat_timeout)
    if a.heartbeat_ttl is not None:
        sock.setsockopt(zmq.HEARTBEAT_TTL, a.heartbeat_ttl)
    if a.zap_domain is not None:
        sock.setsockopt(zmq.ZAP_DOMAIN, a.zap_domain.encode())
    if a.mechanism == "PLAIN":
        if a.plain_server:
            sock.plain_server = True
        else:
            sock.plain_username = (a.username or "").encode()
            sock.plain_password = (a.password or "").encode()
    elif a.mechanism == "CURVE":
        if a.curve_secret_key:
            sock.curve_secretkey = a.curve_secret_key.encode()
        if a.curve_public_key:
            sock.curve_publickey = a.curve_public_key.encode()
        if a.curve_server:
            sock.curve_server = True
        elif a.curve_server_key:
            sock.curve_serverkey = a.curve_server_key.encode()
    for topic in a.subscribe:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())


def monitor_loop(mon, names):
    while True:
        try:
            msg = recv_monitor_message(mon)
        except zmq.ZMQError:
            break
        ev = msg["event"]
        endpoint = msg.get("endpoint", b"")
        if isinstance(endpoint, bytes):
            endpoint = endpoint.decode("utf-8", "replace")
        emit({"event": "monitor", "name": names.get(ev, str(ev)), "value": msg.get("value"),
              "endpoint": endpoint})
        if ev == zmq.EVENT_MONITOR_STOPPED:
            break
    mon.close(0)


def do_recv(sock, op):
    timeout = int(op.get("timeout_ms", 5000))
    if not sock.poll(timeout, zmq.POLLIN):
        return {"event": "timeout"}
    frames = sock.recv_multipart(copy=False)
    part = frames[int(op.get("props_part", 0))]
    props = {}
    for name in op.get("props", []):
        try:
            props[name] = part.get(name)
        except zmq.ZMQError:
            props[name] = None
    return {"event": "recv", "parts": [b64(f.bytes) for f in frames], "props": props}


def do_send(sock, op):
    parts = [unb64(p) for p in op.get("parts", [])]
    repeat = int(op.get("repeat", 1))
    interval = int(op.get("interval_ms", 0))
    for i in range(repeat):
        sock.send_multipart(parts)
        if interval and i < repeat - 1:
            zmq_sleep(interval)
    return {"event": "sent", "count": repeat}


def zmq_sleep(ms):
    threading.Event().wait(ms / 1000.0)


def do_echo(sock, op):
    count = int(op.get("count", 1))
    timeout = int(op.get("timeout_ms", 5000))
    for i in range(count):
        if not sock.poll(timeout, zmq.POLLIN):
            return {"event": "timeout", "count": i}
        sock.send_multipart(sock.recv_multipart())
    return {"event": "echoed", "count": count}


def run(a):
    ctx = zmq.Context()
    auth = start_zap(ctx, a)
    sock = ctx.socket(getattr(zmq, a.type.upper()))
    configure(sock, a)
    mon_thread = None
    if a.monitor:
        mon = sock.get_monitor_socket()
        mon_thread = threading.Thread(target=monitor_loop, args=(mon, event_names()), daemon=True)
        mon_thread.start()
    if a.bind:
        sock.bind(a.bind)
    else:
        sock.connect(a.connect)
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
    emit({"event": "ready", "endpoint": endpoint.decode() if endpoint else (a.bind or a.connect)})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        op = json.loads(line)
        name = op.get("op")
        try:
            if name == "quit":
                break
            elif name == "send":
                reply = do_send(sock, op)
            elif name == "recv":
                reply = do_recv(sock, op)
            elif name == "echo":
                reply = do_echo(sock, op)
            elif name == "subscribe":
                sock.setsockopt(zmq.SUBSCRIBE, unb64(op.get("topic", "")))
                reply = {"event": "ok"}
            elif name == "unsubscribe":
                sock.setsockopt(zmq.UNSUBSCRIBE, unb64(op.get("topic", "")))
                reply = {"event": "ok"}
            elif name == "sleep":
                zmq_sleep(int(op.get("ms", 0)))
                reply = {"event": "ok"}
            else:
                reply = {"event": "error", "error": "unknown op %r" % name}
        except Exception as e:  # report, keep serving
            reply = {"event": "error", "error": "%s: %s" % (type(e).__name__, e)}
        if "id" in op:
            reply["id"] = op["id"]
        emit(reply)

    if a.monitor:
        sock.disable_monitor()
        if mon_thread is not None:
            mon_thread.join(2)
    sock.close(0)
    if auth is not None:
        auth.stop()
    emit({"event": "exit"})


def main():
    a = parse_args(sys.argv[1:])
    watchdog = threading.Timer(a.timeout, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    try:
        run(a)
    except Exception as e:
        emit({"event": "error", "error": "%s: %s" % (type(e).__name__, e)})
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    # Skip interpreter teardown: the context may still hold the monitor
    # socket of a thread we gave up waiting for.
    os._exit(0)


if __name__ == "__main__":
    main()
