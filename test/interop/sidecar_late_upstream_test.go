package interop

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/zmqauth/zmqauth/internal/pypeer"
	"github.com/zmqauth/zmqauth/zap/sidecar"
)

// lateHandshakeTimeout is the sidecars' handshake timeout in the late
// upstream cases that outlast the outbound route's retry window (four
// fifths of it): short, so that they take a couple of seconds. The cases
// within the window keep the default (10 s), so that the window does not
// pass while the test adds the key on a loaded machine.
const lateHandshakeTimeout = sidecar.Duration(2 * time.Second)

// lateUpstream is one way the server end is not ready when a client
// application, started with its pod, sends its first request.
type lateUpstream struct {
	name string
	// withinWindow: the server end becomes ready while the outbound route
	// still holds the application's first connection; otherwise only after
	// the route closed it (without ERROR) and the application reconnected.
	withinWindow bool
	// keyLate: the client's key is not in the server's allowlist yet (the
	// kubelet has not synced the allowlist ConfigMap into the server's pod).
	keyLate bool
	// appLate: the server application is not listening yet.
	appLate bool
	// inboundLate: the server's sidecar is not listening yet (the pod is
	// starting; nothing answers at the Service's address).
	inboundLate bool
}

// lateUpstreams are the cases; lateWorld.waitNotReady knows, for each, the
// sign in the sidecars' metrics that the first request is waiting on the
// server end.
var lateUpstreams = []lateUpstream{
	{name: "key added while the first connection is held", withinWindow: true, keyLate: true},
	{name: "key added after the route closed the first connection", keyLate: true},
	{name: "server application starts late", appLate: true},
	{name: "server sidecar starts late", inboundLate: true},
}

// lateWorld is one client sidecar and one server sidecar in front of a
// pyzmq REP application that echoes, where one part of the server end is
// made ready only when the test says so.
type lateWorld struct {
	t       *testing.T
	w       *world
	c       lateUpstream
	appAddr string // the server application's address, fixed in advance
	inAddr  string // the server sidecar's address, fixed in advance
	in      *runningSidecar
	out     *runningSidecar
}

// freeAddr returns a loopback address nothing listens on, for a listener
// started later.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// newLateWorld starts everything c does not hold back.
func newLateWorld(t *testing.T, c lateUpstream) *lateWorld {
	t.Helper()
	lw := &lateWorld{t: t, w: newWorld(t), c: c, appAddr: freeAddr(t), inAddr: freeAddr(t)}
	if c.keyLate {
		lw.w.disallow("team.client")
	}
	if !c.appLate {
		lw.startApp()
	}
	if !c.inboundLate {
		lw.startInbound()
	}
	cfg := lw.w.outbound("tcp://" + lw.inAddr)
	cfg.HandshakeTimeout = lw.handshakeTimeout()
	lw.out = lw.w.start(cfg)
	return lw
}

// handshakeTimeout is the sidecars' handshake timeout for the case (0: the
// default).
func (lw *lateWorld) handshakeTimeout() sidecar.Duration {
	if lw.c.withinWindow {
		return 0
	}
	return lateHandshakeTimeout
}

// startApp starts the server application: a pyzmq REP that echoes two
// requests.
func (lw *lateWorld) startApp() {
	lw.t.Helper()
	app := startPeer(lw.t, pypeer.Options{Type: "REP", Bind: "tcp://" + lw.appAddr})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		_, _ = app.Do(ctx, map[string]any{"op": "echo", "count": 2, "timeout_ms": int(peerTimeout / time.Millisecond)})
	}()
}

// startInbound starts the server's sidecar.
func (lw *lateWorld) startInbound() {
	lw.t.Helper()
	cfg := lw.w.inbound(lw.appAddr)
	cfg.Inbound[0].Listen = lw.inAddr
	cfg.HandshakeTimeout = lw.handshakeTimeout()
	lw.in = lw.w.start(cfg)
}

// waitNotReady waits until the sidecars' metrics show that a connection of
// the client's was turned away because of what the case holds back: the
// first request has been sent and is waiting on the server end.
func (lw *lateWorld) waitNotReady() {
	lw.t.Helper()
	counted := func(s *runningSidecar, labels map[string]string) func() bool {
		return func() bool { return metric(lw.t, s.Registry(), "zmqauth_sidecar_handshakes_total", labels) >= 1 }
	}
	cond, what := counted(lw.out, map[string]string{"route": "client", "result": "failed"}), "the client's sidecar to give up on its first connection"
	switch {
	case lw.c.withinWindow:
		cond, what = counted(lw.in, map[string]string{"route": "server", "result": "refused", "reason": "not_in_allowlist"}), "the server's sidecar to refuse the client's key"
	case lw.c.appLate:
		cond, what = counted(lw.in, map[string]string{"route": "server", "result": "failed", "reason": "upstream_error"}), "the server's sidecar to give up on the application"
	}
	waitUntil(lw.t, what, 20*time.Second, cond)
}

// makeReady makes the server end ready and returns when.
func (lw *lateWorld) makeReady() time.Time {
	lw.t.Helper()
	switch {
	case lw.c.keyLate:
		lw.w.allow("team.client", lw.w.client)
	case lw.c.appLate:
		lw.startApp()
	case lw.c.inboundLate:
		lw.startInbound()
	}
	return time.Now()
}

// TestSidecarFirstRequestWaitsForLateUpstream: a libzmq REQ or DEALER
// application queues its first request as soon as it connects, before
// anything answers, and libzmq keeps it on the socket's pipe across
// reconnections until a handshake completes. The client's sidecar
// completes the application's handshake only once it holds a CURVE session
// with the server, and otherwise closes the application's connection
// without ERROR, so the request is never taken from the pipe while there
// is nowhere to send it: whatever part of the server end is late (the
// allowlist, the server application, the server's sidecar), and however
// long, the first request is answered once that part is ready. (On the
// node, a pyzmq client's first request "lost" while its key reached the
// server's allowlist was the client's own timeout, counted from its send,
// running out first: see examples/pyzmq/req_client.py.)
func TestSidecarFirstRequestWaitsForLateUpstream(t *testing.T) {
	for _, c := range lateUpstreams {
		for _, st := range []string{"REQ", "DEALER"} {
			t.Run(c.name+"/pyzmq "+st, func(t *testing.T) {
				lw := newLateWorld(t, c)
				client := startPeer(t, pypeer.Options{Type: st, Connect: lw.out.endpoint("client")})
				var env [][]byte
				if st == "DEALER" {
					env = [][]byte{{}} // the empty delimiter a REQ adds itself
				}
				for i, req := range []string{"request 1", "request 2"} {
					send(t, client, append(env, b(req))...)
					since := time.Now()
					if i == 0 {
						lw.waitNotReady()
						since = lw.makeReady()
					}
					ev, err := tryRecv(client, recvTimeout)
					if err != nil {
						t.Fatalf("%s: no reply within %v of the server end being ready: %v", req, recvTimeout, err)
					}
					if want := append(env, b(req)); !equalParts(ev.Parts, want) {
						t.Fatalf("%s: reply %s, want %s", req, describe(ev.Parts), describe(want))
					}
					after := "it was sent"
					if i == 0 {
						after = "the server end was ready"
					}
					t.Logf("%s answered %v after %s", req, time.Since(since).Round(time.Millisecond), after)
				}
			})
		}
	}
}

// TestSidecarZmq4DialWaitsForLateKey: a go-zeromq/zmq4 REQ application's
// Dial runs the handshake the client's sidecar holds until it has a CURVE
// session, so it returns once the server admits the client's key, and its
// first request is answered. (zmq4 v0.17 does not retry a failed
// handshake: a key that takes longer than the sidecar's retry window fails
// Dial, and the application must dial again.)
func TestSidecarZmq4DialWaitsForLateKey(t *testing.T) {
	lw := newLateWorld(t, lateUpstreams[0])
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	sock := zmq4.NewReq(ctx, zmq4.WithDialerRetry(100*time.Millisecond), zmq4.WithDialerMaxRetries(-1))
	defer sock.Close()
	dialed := make(chan error, 1)
	go func() { dialed <- sock.Dial(lw.out.endpoint("client")) }()
	lw.waitNotReady()
	ready := lw.makeReady()
	select {
	case err := <-dialed:
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
	case <-time.After(recvTimeout):
		t.Fatalf("Dial did not return within %v of the key being added", recvTimeout)
	}
	t.Logf("Dial returned %v after the key was added", time.Since(ready).Round(time.Millisecond))
	for _, req := range []string{"request 1", "request 2"} {
		if got := zmq4Request(t, sock, req); got != req {
			t.Fatalf("reply %q, want the echo of %q", got, req)
		}
	}
}

// zmq4Request sends body on the REQ socket sock and returns the reply, or
// fails the test after recvTimeout.
func zmq4Request(t *testing.T, sock zmq4.Socket, body string) string {
	t.Helper()
	if err := sock.Send(zmq4.NewMsgString(body)); err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	reply := make(chan zmq4.Msg, 1)
	go func() {
		m, err := sock.Recv() // ends with an error when sock is closed
		if err == nil {
			reply <- m
		}
	}()
	select {
	case m := <-reply:
		return string(m.Bytes())
	case <-time.After(recvTimeout):
		t.Fatalf("%q: no reply within %v", body, recvTimeout)
		return ""
	}
}
