package interop

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/pypeer"
)

// pairRun is one socket-type pair scenario in progress: application a (the
// client side, which connects) and application b (the server side, which
// binds), directly connected or through an outbound and an inbound sidecar.
type pairRun struct {
	t          *testing.T
	a, b       *pypeer.Peer
	viaSidecar bool
	// transcript records what each application received, in order, so
	// that the direct run and the sidecar run can be compared.
	transcript []string
}

// wantUser is the User-Id application b must read: the client's identity
// in the allowlist through the sidecars, nothing directly.
func (r *pairRun) wantUser() string {
	if r.viaSidecar {
		return "team/client"
	}
	return ""
}

// note records a received message in the transcript.
func (r *pairRun) note(who string, ev pypeer.Event) {
	var parts []string
	for _, p := range ev.Parts {
		if len(p) > 32 {
			parts = append(parts, fmt.Sprintf("%q...(%d bytes)", p[:16], len(p)))
		} else {
			parts = append(parts, fmt.Sprintf("%q", p))
		}
	}
	entry := who + " " + strings.Join(parts, ",")
	if st := ev.Prop("Socket-Type"); st != "" {
		entry += " from " + st
	}
	r.transcript = append(r.transcript, entry)
}

// expect receives one message at p and checks its parts; at b it also
// checks User-Id.
func (r *pairRun) expect(p *pypeer.Peer, want ...[]byte) {
	r.t.Helper()
	who := "a"
	props := []string{"Socket-Type"}
	if p == r.b {
		who = "b"
		props = append(props, "User-Id")
	}
	ev := recv(r.t, p, props...)
	r.note(who, ev)
	if !equalParts(ev.Parts, want) {
		r.t.Fatalf("%s received %s, want %d parts %s", who, r.transcript[len(r.transcript)-1], len(want), describe(want))
	}
	if who == "b" {
		if got := ev.Prop("User-Id"); got != r.wantUser() {
			r.t.Errorf("b read User-Id %q, want %q", got, r.wantUser())
		}
	}
}

func equalParts(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func describe(parts [][]byte) string {
	var s []string
	for _, p := range parts {
		if len(p) > 32 {
			s = append(s, fmt.Sprintf("(%d bytes)", len(p)))
		} else {
			s = append(s, fmt.Sprintf("%q", p))
		}
	}
	return strings.Join(s, ",")
}

// b is shorthand for a []byte literal.
func b(s string) []byte { return []byte(s) }

// bigMessage is 1 MiB of pseudo-random bytes.
var bigMessage = func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	m := make([]byte, 1<<20)
	for i := range m {
		m[i] = byte(r.Uint32())
	}
	return m
}()

// roundTrips sends single, multi-part and 1 MiB messages from a to b and,
// when back is set, from b to a (with b's reply envelope prefix env).
func roundTrips(r *pairRun, back bool, env ...[]byte) {
	r.t.Helper()
	for _, m := range [][][]byte{{b("hello")}, {b("multi"), b(""), b("part")}, {bigMessage}} {
		send(r.t, r.a, m...)
		r.expect(r.b, append(append([][]byte{}, env...), m...)...)
		if back {
			send(r.t, r.b, append(append([][]byte{}, env...), m...)...)
			r.expect(r.a, m...)
		}
	}
}

// pairCases are the socket-type pairs libzmq allows, each with what it must
// do.
var pairCases = []struct {
	name string
	a, b pypeer.Options // each side's socket; the test adds Bind or Connect
	run  func(r *pairRun)
}{
	{
		name: "REQ-REP",
		a:    pypeer.Options{Type: "REQ"},
		b:    pypeer.Options{Type: "REP"},
		run:  func(r *pairRun) { roundTrips(r, true) },
	},
	{
		name: "DEALER-ROUTER",
		a:    pypeer.Options{Type: "DEALER", Identity: "dealer-1"},
		b:    pypeer.Options{Type: "ROUTER"},
		// The ROUTER sees the dealer's routing id as the first part and
		// routes its replies with it.
		run: func(r *pairRun) { roundTrips(r, true, b("dealer-1")) },
	},
	{
		name: "PUSH-PULL",
		a:    pypeer.Options{Type: "PUSH"},
		b:    pypeer.Options{Type: "PULL"},
		run:  func(r *pairRun) { roundTrips(r, false) },
	},
	{
		name: "PAIR-PAIR",
		a:    pypeer.Options{Type: "PAIR"},
		b:    pypeer.Options{Type: "PAIR"},
		run:  func(r *pairRun) { roundTrips(r, true) },
	},
	{
		name: "PUB-SUB",
		a:    pypeer.Options{Type: "PUB"},
		b:    pypeer.Options{Type: "SUB", Subscribe: []string{"weather"}},
		run: func(r *pairRun) {
			// The subscription reaches the publisher some time after the
			// connection: publish both topics until weather arrives.
			deadline := time.Now().Add(10 * time.Second)
			for {
				send(r.t, r.a, b("sports"), b("goal"))
				send(r.t, r.a, b("weather"), b("sunny"))
				ev, err := tryRecv(r.b, 100*time.Millisecond, "Socket-Type", "User-Id")
				if err == nil {
					r.note("b", ev)
					if string(ev.Parts[0]) != "weather" {
						r.t.Fatalf("subscriber got an unsubscribed topic: %s", r.transcript[len(r.transcript)-1])
					}
					if got := ev.Prop("User-Id"); got != r.wantUser() {
						r.t.Errorf("b read User-Id %q, want %q", got, r.wantUser())
					}
					break
				}
				if !errors.Is(err, pypeer.ErrTimeout) || time.Now().After(deadline) {
					r.t.Fatalf("no subscribed message arrived: %v", err)
				}
			}
			// Drain what the loop sent, then check filtering on a known
			// sequence.
			for {
				if _, err := tryRecv(r.b, 300*time.Millisecond); err != nil {
					break
				}
			}
			for _, topic := range []string{"sports", "weather", "news", "weather"} {
				send(r.t, r.a, b(topic), b("report"))
			}
			send(r.t, r.a, b("weather"), bigMessage)
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), bigMessage)
			if ev, err := tryRecv(r.b, 300*time.Millisecond); err == nil {
				r.t.Errorf("subscriber got %s, which it did not subscribe to", describe(ev.Parts))
			}
		},
	},
	{
		name: "XPUB-XSUB",
		a:    pypeer.Options{Type: "XPUB"},
		b:    pypeer.Options{Type: "XSUB", Monitor: true},
		run: func(r *pairRun) {
			// The XSUB subscribes by sending the subscription message (once
			// connected: libzmq drops one sent before); the XPUB receives
			// it, then publishes.
			waitMonitor(r.t, r.b, "HANDSHAKE_SUCCEEDED", 0, 10*time.Second)
			send(r.t, r.b, b("\x01weather"))
			r.expect(r.a, b("\x01weather"))
			for _, topic := range []string{"sports", "weather"} {
				send(r.t, r.a, b(topic), b("report"))
			}
			send(r.t, r.a, b("weather"), bigMessage)
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), bigMessage)
			send(r.t, r.b, b("\x00weather"))
			r.expect(r.a, b("\x00weather"))
			send(r.t, r.a, b("weather"), b("after cancel"))
			if ev, err := tryRecv(r.b, 300*time.Millisecond); err == nil {
				r.t.Errorf("XSUB got %s after cancelling", describe(ev.Parts))
			}
		},
	},
}

// TestSidecarSocketPairs runs every socket-type pair twice, pyzmq
// application to pyzmq application: directly, then through an outbound
// and an inbound sidecar (NULL to the applications, CURVE between the
// sidecars). Through the sidecars everything must happen as directly, and
// the server-side application reads the client's identity as User-Id.
func TestSidecarSocketPairs(t *testing.T) {
	for _, tc := range pairCases {
		t.Run(tc.name, func(t *testing.T) {
			var transcripts [2][]string
			for i, via := range []bool{false, true} {
				name := "direct"
				if via {
					name = "sidecars"
				}
				t.Run(name, func(t *testing.T) {
					w := newWorld(t)
					so := tc.b
					so.Bind = "tcp://127.0.0.1:*"
					server := startPeer(t, so)
					target := server.Endpoint()
					if via {
						in := w.start(w.inbound(server.Addr()))
						out := w.start(w.outbound(in.endpoint("server")))
						target = out.endpoint("client")
					}
					co := tc.a
					co.Connect = target
					client := startPeer(t, co)
					r := &pairRun{t: t, a: client, b: server, viaSidecar: via}
					tc.run(r)
					transcripts[i] = r.transcript
				})
			}
			if t.Failed() {
				return
			}
			if d, s := strings.Join(transcripts[0], "\n"), strings.Join(transcripts[1], "\n"); d != s {
				t.Errorf("through the sidecars the applications saw\n%s\ndirectly they saw\n%s", s, d)
			}
		})
	}
}
