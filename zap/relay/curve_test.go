package relay

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/policy"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// curveKeys returns a new CURVE keypair.
func curveKeys(t testing.TB) curve.KeyPair {
	t.Helper()
	kp, err := curve.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// allowing returns an allowlist of the given client keys, each with the
// identity "test/NAME".
func allowing(keys map[string]curve.KeyPair) *allowlist.Allowlist {
	var entries []allowlist.Entry
	for name, kp := range keys {
		entries = append(entries, allowlist.Entry{Key: keygen.PublicKey(kp.Public), Identity: "test/" + name, Source: name + ".key"})
	}
	return allowlist.New(entries...)
}

// curveRoute is an inbound CURVE route in front of a Go application.
type curveRoute struct {
	in      *Inbound
	pol     *policy.Policy
	addr    string
	server  curve.KeyPair
	reg     *prometheus.Registry
	metrics *metrics.Metrics
}

// startCurveRoute runs an inbound CURVE route to app, allowing the given
// client keys.
func startCurveRoute(t *testing.T, app *goApp, clients map[string]curve.KeyPair) *curveRoute {
	t.Helper()
	r := &curveRoute{server: curveKeys(t), reg: prometheus.NewRegistry()}
	r.metrics = metrics.New(r.reg)
	r.pol = policy.New("in", policy.Enforce, r.metrics, nil)
	r.pol.SetAllowlist(allowing(clients))
	srv, err := curve.NewServer(curve.ServerConfig{Keys: []curve.KeyPair{r.server}, Authenticator: r.pol})
	if err != nil {
		t.Fatal(err)
	}
	r.in = &Inbound{Route: "in", Network: zmtp.Config{Mechanism: srv}, AppAddr: app.addr, Metrics: r.metrics, Verdict: r.pol.Verdict}
	r.addr = serveRoute(t, r.in.Serve)
	return r
}

// curveClient returns a CURVE client mechanism.
func curveClient(t testing.TB, key curve.KeyPair, server curve.PublicKey) *curve.Client {
	t.Helper()
	c, err := curve.NewClient(curve.ClientConfig{Key: key, ServerKey: server})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCurveChain(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "ROUTER"})
	clientKey := curveKeys(t)
	route := startCurveRoute(t, app, map[string]curve.KeyPair{"alice": clientKey})
	out := &Outbound{
		Route:      "out",
		ServerAddr: route.addr,
		NewMechanism: func() (zmtp.Mechanism, error) {
			return curveClient(t, clientKey, route.server.Public), nil
		},
		Metrics: route.metrics,
	}
	outAddr := serveRoute(t, out.Serve)

	client := dial(t, outAddr, zmtp.Config{SocketType: "DEALER", Identity: []byte("d1")})
	server := app.accept(t)
	if v, _ := server.Peer().Metadata.Get(zmtp.PropUserID); string(v) != "test/alice" {
		t.Errorf("app sees User-Id %q, want test/alice", v)
	}
	if string(server.Peer().Identity) != "d1" || server.Peer().SocketType != "DEALER" {
		t.Errorf("app sees %s %q, want DEALER d1", server.Peer().SocketType, server.Peer().Identity)
	}
	big := bytes.Repeat([]byte("z"), 1<<20)
	for _, m := range [][][]byte{{[]byte("a")}, {[]byte("x"), []byte("y")}, {big}} {
		if err := client.WriteMessage(m...); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, server); !equalMessages(got, m) {
			t.Fatal("message changed on the way to the app")
		}
		if err := server.WriteMessage(m...); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, client); !equalMessages(got, m) {
			t.Fatal("message changed on the way to the client")
		}
	}
	if got := handshakes(t, route.reg, metrics.ResultAccepted, metrics.ReasonAllowlisted); got != 1 {
		t.Errorf("accepted handshakes = %v, want 1", got)
	}
}

func TestCurveRefusalsAndRevocation(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "PULL"})
	alice, mallory := curveKeys(t), curveKeys(t)
	route := startCurveRoute(t, app, map[string]curve.KeyPair{"alice": alice})

	dialCurve := func(key curve.KeyPair, server curve.PublicKey) (*zmtp.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		return zmtp.Dial(ctx, route.addr, &zmtp.Config{Mechanism: curveClient(t, key, server), SocketType: "PUSH"})
	}

	// A key outside the allowlist is refused with ZAP status 400 on the
	// wire, the form libzmq reports as an authentication failure.
	_, err := dialCurve(mallory, route.server.Public)
	var pe *zmtp.PeerError
	if !errors.As(err, &pe) || pe.Reason != "400" {
		t.Fatalf("unknown key: %v; want ERROR %q", err, "400")
	}
	// A HELLO made for another server key fails and is counted as such.
	if _, err := dialCurve(alice, curveKeys(t).Public); err == nil {
		t.Fatal("a client with the wrong server key got in")
	}
	waitFor(t, "wrong_server_key counted", func() bool {
		return handshakes(t, route.reg, metrics.ResultFailed, metrics.ReasonServerKey) == 1
	})

	// An allowed key gets in, and its live session ends when it is revoked.
	c, err := dialCurve(alice, route.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	app.accept(t)
	waitFor(t, "session registered", func() bool { return route.in.Sessions() == 1 })
	if n := route.in.CloseWhere(func(k []byte) bool { return !route.pol.Allowed(k) }); n != 0 {
		t.Fatalf("sweep with alice allowed closed %d sessions", n)
	}
	route.pol.SetAllowlist(allowing(nil))
	start := time.Now()
	if n := route.in.CloseWhere(func(k []byte) bool { return !route.pol.Allowed(k) }); n != 1 {
		t.Fatalf("sweep after revocation closed %d sessions, want 1", n)
	}
	_ = c.WriteMessage([]byte("still there?"))
	if _, err := c.ReadFrame(nil); err == nil {
		t.Fatal("revoked client still connected")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("revocation took %v", d)
	}
	waitFor(t, "session gone", func() bool { return route.in.Sessions() == 0 })
}

// waitFor polls cond until it holds or the test timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter returns the value of the metric name with the given labels in
// reg, or 0 when it does not exist.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// handshakes returns the handshakes counted for route in reg.
func handshakes(t *testing.T, reg *prometheus.Registry, result, reason string) float64 {
	t.Helper()
	return counter(t, reg, "zmqauth_sidecar_handshakes_total", map[string]string{"route": "in", "result": result, "reason": reason})
}

// TestUnreachableAppCountsOneFailure checks that a client the allowlist
// accepts, whose session cannot be set up because the application does not
// answer, is counted once, as failed, and not also as accepted.
func TestUnreachableAppCountsOneFailure(t *testing.T) {
	client := curveKeys(t)
	gone := listen(t)
	appAddr := gone.Addr().String()
	_ = gone.Close()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	pol := policy.New("in", policy.Enforce, m, nil)
	pol.SetAllowlist(allowing(map[string]curve.KeyPair{"c": client}))
	server := curveKeys(t)
	srv, err := curve.NewServer(curve.ServerConfig{Keys: []curve.KeyPair{server}, Authenticator: pol})
	if err != nil {
		t.Fatal(err)
	}
	in := &Inbound{Route: "in", Network: zmtp.Config{Mechanism: srv, HandshakeTimeout: 500 * time.Millisecond},
		AppAddr: appAddr, Metrics: m, Verdict: pol.Verdict}
	addr := serveRoute(t, in.Serve)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: curveClient(t, client, server.Public), SocketType: "PUSH"})
	if err == nil {
		_ = conn.Close()
		t.Fatal("a session was set up with no application to relay to")
	}
	deadline := time.Now().Add(5 * time.Second)
	for handshakes(t, reg, metrics.ResultFailed, metrics.ReasonUpstream) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := handshakes(t, reg, metrics.ResultFailed, metrics.ReasonUpstream); got != 1 {
		t.Errorf("failed/upstream_error = %v, want 1", got)
	}
	if got := handshakes(t, reg, metrics.ResultAccepted, metrics.ReasonAllowlisted); got != 0 {
		t.Errorf("accepted/allowlisted = %v, want 0: the handshake would be counted twice", got)
	}
}
