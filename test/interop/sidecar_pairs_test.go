package interop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// pairRun is one socket-type pair scenario in progress: application a (the
// client side, which connects) and application b (the server side, which
// binds), directly connected or through an outbound and an inbound sidecar.
type pairRun struct {
	t          *testing.T
	a, b       *pyPeer
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
func (r *pairRun) note(who string, ev pyEvent) {
	var parts []string
	for _, p := range ev.Parts {
		if len(p) > 32 {
			parts = append(parts, fmt.Sprintf("%q...(%d bytes)", p[:16], len(p)))
		} else {
			parts = append(parts, fmt.Sprintf("%q", p))
		}
	}
	entry := who + " " + strings.Join(parts, ",")
	if st := prop(ev, "Socket-Type"); st != "" {
		entry += " from " + st
	}
	r.transcript = append(r.transcript, entry)
}

// expect receives one message at p and checks its parts; at b it also
// checks User-Id.
func (r *pairRun) expect(p *pyPeer, want ...[]byte) {
	r.t.Helper()
	who := "a"
	props := []string{"Socket-Type"}
	if p == r.b {
		who = "b"
		props = append(props, "User-Id")
	}
	ev := p.recv(r.t, props...)
	r.note(who, ev)
	if !equalParts(ev.Parts, want) {
		r.t.Fatalf("%s received %s, want %d parts %s", who, r.transcript[len(r.transcript)-1], len(want), describe(want))
	}
	if who == "b" {
		if got := prop(ev, "User-Id"); got != r.wantUser() {
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
		r.a.send(r.t, m...)
		r.expect(r.b, append(append([][]byte{}, env...), m...)...)
		if back {
			r.b.send(r.t, append(append([][]byte{}, env...), m...)...)
			r.expect(r.a, m...)
		}
	}
}

// pairCases are the socket-type pairs libzmq allows, each with what it must
// do.
var pairCases = []struct {
	name string
	a, b []string // pypeer flags of each side
	run  func(r *pairRun)
}{
	{
		name: "REQ-REP",
		a:    []string{"--type=REQ"},
		b:    []string{"--type=REP"},
		run:  func(r *pairRun) { roundTrips(r, true) },
	},
	{
		name: "DEALER-ROUTER",
		a:    []string{"--type=DEALER", "--identity=dealer-1"},
		b:    []string{"--type=ROUTER"},
		// The ROUTER sees the dealer's routing id as the first part and
		// routes its replies with it.
		run: func(r *pairRun) { roundTrips(r, true, b("dealer-1")) },
	},
	{
		name: "PUSH-PULL",
		a:    []string{"--type=PUSH"},
		b:    []string{"--type=PULL"},
		run:  func(r *pairRun) { roundTrips(r, false) },
	},
	{
		name: "PAIR-PAIR",
		a:    []string{"--type=PAIR"},
		b:    []string{"--type=PAIR"},
		run:  func(r *pairRun) { roundTrips(r, true) },
	},
	{
		name: "PUB-SUB",
		a:    []string{"--type=PUB"},
		b:    []string{"--type=SUB", "--subscribe=weather"},
		run: func(r *pairRun) {
			// The subscription reaches the publisher some time after the
			// connection: publish both topics until weather arrives.
			deadline := time.Now().Add(10 * time.Second)
			for {
				r.a.send(r.t, b("sports"), b("goal"))
				r.a.send(r.t, b("weather"), b("sunny"))
				ev, err := r.b.tryRecv(100*time.Millisecond, "Socket-Type", "User-Id")
				if err == nil {
					r.note("b", ev)
					if string(ev.Parts[0]) != "weather" {
						r.t.Fatalf("subscriber got an unsubscribed topic: %s", r.transcript[len(r.transcript)-1])
					}
					if got := prop(ev, "User-Id"); got != r.wantUser() {
						r.t.Errorf("b read User-Id %q, want %q", got, r.wantUser())
					}
					break
				}
				if err != errNoMessage || time.Now().After(deadline) {
					r.t.Fatalf("no subscribed message arrived: %v", err)
				}
			}
			// Drain what the loop sent, then check filtering on a known
			// sequence.
			for {
				if _, err := r.b.tryRecv(300 * time.Millisecond); err != nil {
					break
				}
			}
			for _, topic := range []string{"sports", "weather", "news", "weather"} {
				r.a.send(r.t, b(topic), b("report"))
			}
			r.a.send(r.t, b("weather"), bigMessage)
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), bigMessage)
			if ev, err := r.b.tryRecv(300 * time.Millisecond); err == nil {
				r.t.Errorf("subscriber got %s, which it did not subscribe to", describe(ev.Parts))
			}
		},
	},
	{
		name: "XPUB-XSUB",
		a:    []string{"--type=XPUB"},
		b:    []string{"--type=XSUB", "--monitor"},
		run: func(r *pairRun) {
			// The XSUB subscribes by sending the subscription message (once
			// connected: libzmq drops one sent before); the XPUB receives
			// it, then publishes.
			r.b.waitMonitor(r.t, "HANDSHAKE_SUCCEEDED", 0, 10*time.Second)
			r.b.send(r.t, b("\x01weather"))
			r.expect(r.a, b("\x01weather"))
			for _, topic := range []string{"sports", "weather"} {
				r.a.send(r.t, b(topic), b("report"))
			}
			r.a.send(r.t, b("weather"), bigMessage)
			r.expect(r.b, b("weather"), b("report"))
			r.expect(r.b, b("weather"), bigMessage)
			r.b.send(r.t, b("\x00weather"))
			r.expect(r.a, b("\x00weather"))
			r.a.send(r.t, b("weather"), b("after cancel"))
			if ev, err := r.b.tryRecv(300 * time.Millisecond); err == nil {
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
					server := startPeer(t, append([]string{"--bind=tcp://127.0.0.1:*"}, tc.b...)...)
					target := server.endpoint
					if via {
						in := w.start(w.inbound(server.addr()))
						out := w.start(w.outbound(in.endpoint("server")))
						target = out.endpoint("client")
					}
					client := startPeer(t, append([]string{"--connect=" + target}, tc.a...)...)
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
