package interop

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/pypeer"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/sidecar"
)

// curveClient returns o made a CURVE client with keys kp that trusts
// server. The secret key travels on the command line of a test process;
// internal/pypeer never prints it.
func curveClient(o pypeer.Options, kp keygen.KeyPair, server keygen.PublicKey) pypeer.Options {
	o.Mechanism = "CURVE"
	o.CurveSecretKey = kp.Secret.Z85()
	o.CurvePublicKey = kp.Public.String()
	o.CurveServerKey = server.String()
	return o
}

// expectNothing fails when p receives a message within d.
func expectNothing(t *testing.T, p *pypeer.Peer, d time.Duration, why string) {
	t.Helper()
	if ev, err := tryRecv(p, d); err == nil {
		t.Fatalf("%s, yet %s arrived", why, describe(ev.Parts))
	}
}

// waitUntil polls cond every 10 ms until it holds or limit passes, and
// returns how long it took.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestSidecarAllowlistWithPyzmqClient puts pyzmq CURVE clients with their
// own keys straight onto an inbound route: the allowlist decides who gets
// in, a key added is let in within a second, and a key removed loses its
// live connection within a second.
func TestSidecarAllowlistWithPyzmqClient(t *testing.T) {
	requireLibzmqCurve(t)
	w := newWorld(t)
	app := startPeer(t, pypeer.Options{Type: "PULL", Bind: "tcp://127.0.0.1:*"})
	in := w.start(w.inbound(app.Addr()))
	route := in.endpoint("server")
	reg := in.Registry()
	keys := func() float64 {
		return metric(t, reg, "zmqauth_sidecar_allowlist_keys", map[string]string{"route": "server"})
	}

	// The allowed client gets in and the application knows who it is.
	allowed := startPeer(t, curveClient(pypeer.Options{Type: "PUSH", Connect: route}, w.client, w.server.Public))
	send(t, allowed, b("hello"))
	if ev := recv(t, app, "User-Id"); string(ev.Parts[0]) != "hello" || ev.Prop("User-Id") != "team/client" {
		t.Fatalf("app got %s with User-Id %q; want hello from team/client", describe(ev.Parts), ev.Prop("User-Id"))
	}

	// A key outside the allowlist is refused.
	guest := w.newKeyPair()
	guestOpts := curveClient(pypeer.Options{Type: "PUSH", Connect: route, Monitor: true}, guest, w.server.Public)
	stranger := startPeer(t, guestOpts)
	send(t, stranger, b("knock"))
	waitUntil(t, "the refusal counted", 5*time.Second, func() bool {
		return metric(t, reg, "zmqauth_sidecar_handshakes_total", map[string]string{"result": "refused", "reason": "not_in_allowlist"}) >= 1
	})
	expectNothing(t, app, 300*time.Millisecond, "the guest is not in the allowlist")
	if !strings.Contains(in.logs.String(), guest.Public.String()) {
		t.Error("the refusal was not logged with the client's public key")
	}

	// Its certificate is added: within a second the sidecar lets it in.
	// (libzmq does not reconnect after a refused handshake, so the guest
	// connects again, as a restarted client would.)
	w.allow("team.guest", guest)
	if took := waitUntil(t, "the guest's key in force", 3*time.Second, func() bool { return keys() == 2 }); took > time.Second {
		t.Errorf("the added key took %v to take effect, want within 1 s", took)
	}
	guestPeer := startPeer(t, guestOpts)
	send(t, guestPeer, b("let me in"))
	if ev := recv(t, app, "User-Id"); string(ev.Parts[0]) != "let me in" || ev.Prop("User-Id") != "team/guest" {
		t.Fatalf("app got %s with User-Id %q; want the guest's message from team/guest", describe(ev.Parts), ev.Prop("User-Id"))
	}
	waitMonitor(t, guestPeer, "HANDSHAKE_SUCCEEDED", 0, 5*time.Second)

	// Its certificate is removed: its live connection is closed within a
	// second, and it cannot come back.
	disconnects := guestPeer.MonitorCount("DISCONNECTED")
	removed := time.Now()
	w.disallow("team.guest")
	waitMonitor(t, guestPeer, "DISCONNECTED", disconnects, 3*time.Second)
	if took := time.Since(removed); took > time.Second {
		t.Errorf("the revoked client's connection was closed after %v, want within 1 s", took)
	}
	send(t, guestPeer, b("still here?"))
	expectNothing(t, app, 500*time.Millisecond, "the guest was revoked")
	if n := metric(t, reg, "zmqauth_sidecar_sessions_revoked_total", map[string]string{"route": "server"}); n != 1 {
		t.Errorf("revoked sessions = %v, want 1", n)
	}

	// The allowed client was never disturbed.
	send(t, allowed, b("still fine"))
	if ev := recv(t, app); string(ev.Parts[0]) != "still fine" {
		t.Fatalf("app got %s, want the allowed client's message", describe(ev.Parts))
	}
}

// TestSidecarOutboundToPyzmqCurveServer points an outbound route at a
// pyzmq CURVE server whose ZAP handler (zmq.auth.ThreadAuthenticator) reads
// an allowlist directory in zmqauth's format: the directory decides.
func TestSidecarOutboundToPyzmqCurveServer(t *testing.T) {
	requireLibzmqCurve(t)
	w := newWorld(t)
	server := startPeer(t, pypeer.Options{Type: "PULL", Bind: "tcp://127.0.0.1:*", Mechanism: "CURVE", CurveServer: true,
		CurveSecretKey: w.server.Secret.Z85(), CurvePublicKey: w.server.Public.String(),
		ZAPCurveDir: w.allowlist})

	t.Run("allowed", func(t *testing.T) {
		out := w.start(w.outbound(server.Endpoint()))
		app := startPeer(t, pypeer.Options{Type: "PUSH", Connect: out.endpoint("client")})
		send(t, app, b("through"))
		ev := recv(t, server, "User-Id")
		if string(ev.Parts[0]) != "through" {
			t.Fatalf("server got %s", describe(ev.Parts))
		}
		// pyzmq's authenticator names a CURVE client by its public key.
		if got := ev.Prop("User-Id"); got != w.client.Public.String() {
			t.Errorf("server read User-Id %q, want the client's public key %s", got, w.client.Public)
		}
	})

	t.Run("not in the directory", func(t *testing.T) {
		stranger := w.newKeyPair()
		dir := filepath.Join(t.TempDir(), "stranger")
		w.writeKeyDirAt(dir, stranger)
		cfg := w.outbound(server.Endpoint())
		cfg.Outbound[0].Keys = dir
		cfg.HandshakeTimeout = sidecar.Duration(time.Second)
		out := w.start(cfg)
		app := startPeer(t, pypeer.Options{Type: "PUSH", Connect: out.endpoint("client")})
		send(t, app, b("let me in"))
		expectNothing(t, server, 1500*time.Millisecond, "the client's key is not in the server's directory")
		waitUntil(t, "the refusal counted", 5*time.Second, func() bool {
			return metric(t, out.Registry(), "zmqauth_sidecar_handshakes_total", map[string]string{"result": "failed", "reason": "upstream_error"}) >= 1
		})
		if !strings.Contains(out.logs.String(), `peer sent ERROR \"400\"`) {
			t.Errorf("the server's refusal (ZAP 400) was not logged")
		}
	})
}

// TestSidecarFailClosedWithPyzmqClient starts an inbound route with a
// corrupt allowlist: a pyzmq client is kept out, /readyz says why, and
// once the allowlist is repaired the same client (which libzmq keeps
// reconnecting, since it was never refused) gets in by itself. A later bad
// update leaves the last good allowlist in force.
func TestSidecarFailClosedWithPyzmqClient(t *testing.T) {
	requireLibzmqCurve(t)
	w := newWorld(t)
	w.disallow("team.client")
	w.writeFile(filepath.Join(w.allowlist, "broken.key"), []byte("this is not a certificate"), 0o644)
	app := startPeer(t, pypeer.Options{Type: "PULL", Bind: "tcp://127.0.0.1:*"})
	in := w.start(w.inbound(app.Addr()))

	code, body := get(t, "http://"+in.AdminAddr()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "allowlist not loaded") || !strings.Contains(body, "broken.key") {
		t.Errorf("/readyz = %d %q, want 503 naming the broken file", code, body)
	}
	client := startPeer(t, curveClient(pypeer.Options{Type: "PUSH", Connect: in.endpoint("server")}, w.client, w.server.Public))
	send(t, client, b("early"))
	expectNothing(t, app, time.Second, "no allowlist is loaded")

	// Repair: the client's message arrives without the client doing
	// anything.
	w.writeFile(filepath.Join(w.allowlist, "broken.key"), mustPublicCert(t, w.client), 0o644)
	if ev := recv(t, app, "User-Id"); string(ev.Parts[0]) != "early" {
		t.Fatalf("app got %s, want the queued message", describe(ev.Parts))
	}
	if code, body := get(t, "http://"+in.AdminAddr()+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q after the repair", code, body)
	}

	// A bad update: the good allowlist stays in force.
	w.writeFile(filepath.Join(w.allowlist, "zz-bad.key"), []byte("garbage"), 0o644)
	waitUntil(t, "the bad update counted", 5*time.Second, func() bool {
		return metric(t, in.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "allowlist:server"}) >= 1
	})
	send(t, client, b("after a bad update"))
	if ev := recv(t, app); string(ev.Parts[0]) != "after a bad update" {
		t.Fatalf("app got %s", describe(ev.Parts))
	}
	if code, _ := get(t, "http://"+in.AdminAddr()+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after a bad update; the last good allowlist is in force", code)
	}
}

// mustPublicCert returns kp's public certificate file content.
func mustPublicCert(t *testing.T, kp keygen.KeyPair) []byte {
	t.Helper()
	data, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, nil).MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
