package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/policy"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// serveInboundLimited serves in with at most maxHandshakes connections in
// their handshakes at once and returns the listener's address.
func serveInboundLimited(t *testing.T, in *Inbound, maxHandshakes int) string {
	t.Helper()
	in.MaxHandshakes = maxHandshakes
	return serveRoute(t, in.Serve)
}

// TestHandshakeLimit checks the bound on handshakes in progress: with room
// for two, two peers that connect and say nothing hold it; a third
// connection is closed at once, without a greeting, and counted as busy;
// once the two are gone, whether they hang up or time out, a real client
// gets through.
func TestHandshakeLimit(t *testing.T) {
	for _, tt := range []struct {
		name string
		// timeout is the route's handshake timeout.
		timeout time.Duration
		// hangUp closes the silent peers; otherwise they stay until the
		// handshake deadline drops them.
		hangUp bool
		// reason is what their handshakes are counted as.
		reason string
	}{
		{"silent peers hang up", 30 * time.Second, true, metrics.ReasonIO},
		{"silent peers time out", time.Second, false, metrics.ReasonTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := startApp(t, zmtp.Config{SocketType: "PULL"})
			client := curveKeys(t)
			server := curveKeys(t)
			reg := prometheus.NewRegistry()
			m := metrics.New(reg)
			pol := policy.New("in", policy.Enforce, m, nil)
			pol.SetAllowlist(allowing(map[string]curve.KeyPair{"c": client}))
			srv, err := curve.NewServer(curve.ServerConfig{Keys: []curve.KeyPair{server}, Authenticator: pol})
			if err != nil {
				t.Fatal(err)
			}
			in := &Inbound{Route: "in", Network: zmtp.Config{Mechanism: srv, HandshakeTimeout: tt.timeout},
				AppAddr: app.addr, Metrics: m, Verdict: pol.Verdict}
			addr := serveInboundLimited(t, in, 2)

			// Two peers that connect and say nothing: the route greets
			// each, and waits for theirs.
			var silent []net.Conn
			for range 2 {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = nc.Close() })
				_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
				if _, err := io.ReadFull(nc, make([]byte, 64)); err != nil {
					t.Fatalf("no greeting for a connection within the limit: %v", err)
				}
				silent = append(silent, nc)
			}

			// The third is closed at once, before any greeting.
			third, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer third.Close()
			start := time.Now()
			_ = third.SetReadDeadline(time.Now().Add(testTimeout))
			n, err := third.Read(make([]byte, 64))
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatal("a connection over the limit was kept open")
			case err == nil:
				t.Fatalf("a connection over the limit was greeted (%d bytes)", n)
			}
			if took := time.Since(start); took >= tt.timeout/2 {
				t.Errorf("a connection over the limit was closed after %v; want at once", took)
			}
			waitFor(t, "the closed connection to be counted as busy", func() bool {
				return handshakes(t, reg, metrics.ResultFailed, metrics.ReasonBusy) == 1
			})

			if tt.hangUp {
				for _, nc := range silent {
					_ = nc.Close()
				}
			}
			waitFor(t, "the silent peers' handshakes to end", func() bool {
				return handshakes(t, reg, metrics.ResultFailed, tt.reason) == 2
			})

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			conn, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: curveClient(t, client, server.Public), SocketType: "PUSH"})
			if err != nil {
				t.Fatalf("a client once the handshakes in progress ended: %v", err)
			}
			defer conn.Close()
			appConn := app.accept(t)
			if err := conn.WriteMessage([]byte("through")); err != nil {
				t.Fatal(err)
			}
			if got := readMessage(t, appConn); len(got) != 1 || string(got[0]) != "through" {
				t.Errorf("the application got %q", got)
			}
			if got := handshakes(t, reg, metrics.ResultAccepted, metrics.ReasonAllowlisted); got != 1 {
				t.Errorf("accepted/allowlisted = %v, want 1", got)
			}
			if got := handshakes(t, reg, metrics.ResultFailed, metrics.ReasonBusy); got != 1 {
				t.Errorf("failed/busy = %v, want 1", got)
			}
		})
	}
}

// TestHandshakeLimitDefault checks that a route given no bound (the zero
// value) serves: it gets DefaultMaxHandshakes, not a bound of zero.
func TestHandshakeLimitDefault(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "REP"})
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: app.addr,
	}
	addr := serveInboundLimited(t, in, 0)
	dial(t, addr, zmtp.Config{SocketType: "REQ"})
	app.accept(t)
}
