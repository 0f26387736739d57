package admin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/admin"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/policy"
	"github.com/zmqauth/zmqauth/zmtp"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// serve starts s and returns its base URL and a function that stops it and
// returns Serve's result.
func serve(t *testing.T, s *admin.Server) (string, func() error) {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	stopped := false
	var result error
	stop := func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-errc:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + s.Addr(), stop
}

func TestAdminEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	p := policy.New("orders", policy.Enforce, m, nil)
	ready := func() error {
		if !p.Ready() {
			return errors.New("allowlist for route orders not loaded")
		}
		return nil
	}
	s := admin.New("127.0.0.1:0", reg, ready)
	if s.Addr() != "127.0.0.1:0" {
		t.Errorf("Addr before Listen = %q, want the configured address", s.Addr())
	}
	base, stop := serve(t, s)
	if strings.HasSuffix(base, ":0") {
		t.Fatalf("Addr after Listen = %q, want the bound port", s.Addr())
	}

	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	code, body := get(t, base+"/readyz")
	if code != 503 || !strings.Contains(body, "allowlist for route orders not loaded") {
		t.Errorf("/readyz before the allowlist = %d %q, want 503 with the reason", code, body)
	}

	k, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetAllowlist(allowlist.New(allowlist.Entry{Key: k.Public, Identity: "team-a/frontend"}))
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after the allowlist = %d %q, want 200", code, body)
	}

	// What a sidecar records over a few connections.
	other, _ := keygen.GenerateKeyPair(nil)
	p.Authenticate(context.Background(), &zmtp.AuthRequest{Mechanism: "CURVE", ClientKey: k.Public[:]})
	m.Handshake("orders", metrics.ResultAccepted, metrics.ReasonAllowlisted) // the relay, once the session is up
	p.Authenticate(context.Background(), &zmtp.AuthRequest{Mechanism: "CURVE", ClientKey: other.Public[:]})
	m.Handshake("orders", metrics.ResultFailed, metrics.ReasonTimeout)
	m.Handshake("orders", "weird-result", "client "+other.Public.String()) // must not become a label
	m.SessionOpened("orders")
	m.SessionOpened("orders")
	m.SessionClosed("orders")
	m.Relayed("orders", metrics.DirectionIn, 3, 300)
	m.Relayed("orders", metrics.DirectionOut, 1, 64)
	m.ReloadError("allowlist")
	m.Revoked("orders", 2)

	code, body = get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, line := range []string{
		`zmqauth_sidecar_handshakes_total{reason="allowlisted",result="accepted",route="orders"} 1`,
		`zmqauth_sidecar_handshakes_total{reason="not_in_allowlist",result="refused",route="orders"} 1`,
		`zmqauth_sidecar_handshakes_total{reason="timeout",result="failed",route="orders"} 1`,
		`zmqauth_sidecar_handshakes_total{reason="other",result="failed",route="orders"} 1`,
		`zmqauth_sidecar_sessions_active{route="orders"} 1`,
		`zmqauth_sidecar_relayed_messages_total{direction="in",route="orders"} 3`,
		`zmqauth_sidecar_relayed_bytes_total{direction="in",route="orders"} 300`,
		`zmqauth_sidecar_relayed_messages_total{direction="out",route="orders"} 1`,
		`zmqauth_sidecar_relayed_bytes_total{direction="out",route="orders"} 64`,
		`zmqauth_sidecar_allowlist_keys{route="orders"} 1`,
		`zmqauth_sidecar_reload_errors_total{source="allowlist"} 1`,
		`zmqauth_sidecar_sessions_revoked_total{route="orders"} 2`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if !strings.Contains(body, `zmqauth_sidecar_allowlist_last_reload_timestamp_seconds{route="orders"} 1.`) {
		t.Error("/metrics lacks a reload timestamp for route orders")
	}
	if strings.Contains(body, other.Public.String()) || strings.Contains(body, "weird-result") {
		t.Error("/metrics carries a key or a free-form label value")
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after its context ended, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the admin port still accepts connections after Serve returned")
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.New(ln.Addr().String(), nil, nil).Serve(ctx); err == nil {
		t.Fatal("Serve on a busy port returned nil")
	}
}

func TestNilReadyIsReady(t *testing.T) {
	base, _ := serve(t, admin.New("127.0.0.1:0", nil, nil))
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz with a nil ready func = %d, want 200", code)
	}
	if code, _ := get(t, base+"/metrics"); code != 200 {
		t.Errorf("/metrics with a nil gatherer = %d, want 200", code)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}
