package sidecar

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zmtp"
)

// fastReload makes the watchers' safety net quick; fsnotify events are
// what the tests really rely on.
const fastReload = Duration(200 * time.Millisecond)

// serverSetup is an inbound route's files.
type serverSetup struct {
	keysDir, allowDir string
	server            keygen.KeyPair
	sec               *secrets
}

// newServerSetup writes a server keypair directory and returns the paths,
// with an allowlist directory path that does not exist yet.
func newServerSetup(t *testing.T) *serverSetup {
	t.Helper()
	dir := t.TempDir()
	s := &serverSetup{keysDir: filepath.Join(dir, "keys"), allowDir: filepath.Join(dir, "allow"), sec: &secrets{}}
	s.server = newKeyPair(t, s.sec)
	writeKeyDir(t, s.keysDir, s.server, nil)
	return s
}

// inbound returns a one-route config for the setup in front of app.
func (s *serverSetup) inbound(app string) Config {
	return Config{
		Admin:          "127.0.0.1:0",
		ReloadInterval: fastReload,
		Inbound: []InboundRoute{{
			Name: "bus", Listen: "127.0.0.1:0", App: app, Keys: s.keysDir, Allowlist: s.allowDir,
		}},
	}
}

// readyz fetches /readyz and returns its status and body.
func readyz(t *testing.T, s *running) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.AdminAddr()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricValue returns the value of a metric with the given labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
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

func TestOpenFailures(t *testing.T) {
	sec := &secrets{}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeKeyDir(t, good, newKeyPair(t, sec), nil)
	bad := filepath.Join(dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	badSecret := "this is not a key, it has spaces in it~~"
	writeFile(t, filepath.Join(bad, "secret.key"), []byte(badSecret), 0o600)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	serverPub := newKeyPair(t, sec).Public.String()

	in := func(keys, listen string) Config {
		return Config{Inbound: []InboundRoute{{Listen: listen, App: "127.0.0.1:1", Keys: keys, Allowlist: dir}}}
	}
	out := func(keys, serverKey, listen string) Config {
		return Config{Outbound: []OutboundRoute{{Listen: listen, Server: "127.0.0.1:1", ServerKey: serverKey, Keys: keys}}}
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"inbound keys missing", in(filepath.Join(dir, "nope"), "127.0.0.1:0"), "server keys"},
		{"inbound secret key malformed", in(bad, "127.0.0.1:0"), "secret.key"},
		{"inbound address taken", in(good, taken.Addr().String()), "cannot listen"},
		{"outbound keys missing", out(filepath.Join(dir, "nope"), serverPub, "127.0.0.1:0"), "client keys"},
		{"outbound server key malformed", out(good, "not-a-key", "127.0.0.1:0"), "server key"},
		{"outbound address taken", out(good, serverPub, taken.Addr().String()), "cannot listen"},
		{"admin address taken", func() Config { c := out(good, serverPub, "127.0.0.1:0"); c.Admin = taken.Addr().String(); return c }(), "admin"},
		{"no routes", Config{}, "no routes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.cfg, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), badSecret) {
				t.Error("the error repeats the malformed secret key file")
			}
			sec.assertAbsent(t, "the error", err.Error())
		})
	}
}

func TestFailClosedAtStart(t *testing.T) {
	tests := []struct {
		name string
		// prepare puts the allowlist directory in its bad initial state.
		prepare    func(t *testing.T, s *serverSetup)
		wantReason string
		// refusedByPolicy: the route accepts connections and refuses
		// them in the handshake (an allowlist is in force); otherwise it
		// closes them at once.
		refusedByPolicy bool
	}{
		{"missing directory", func(*testing.T, *serverSetup) {}, "allowlist not loaded", false},
		{"not a directory", func(t *testing.T, s *serverSetup) {
			writeFile(t, s.allowDir, []byte("x"), 0o644)
		}, "allowlist not loaded", false},
		{"corrupt certificate", func(t *testing.T, s *serverSetup) {
			_ = os.MkdirAll(s.allowDir, 0o755)
			writeFile(t, filepath.Join(s.allowDir, "broken.key"), []byte("curve\n    public-key = \"short\"\n"), 0o644)
		}, "allowlist not loaded", false},
		{"secret certificate", func(t *testing.T, s *serverSetup) {
			_ = os.MkdirAll(s.allowDir, 0o755)
			kp := newKeyPair(t, s.sec)
			data, err := keygen.NewCertificate(kp, nil).MarshalSecret()
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(s.allowDir, "oops.key_secret"), data, 0o600)
		}, "allowlist not loaded", false},
		{"empty directory", func(t *testing.T, s *serverSetup) {
			_ = os.MkdirAll(s.allowDir, 0o755)
		}, "empty", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServerSetup(t)
			tt.prepare(t, s)
			client := newKeyPair(t, s.sec)
			app := startApp(t, "PULL")
			sc := startSidecar(t, s.inbound(app.addr), s.sec)
			addr := sc.Addr("bus").String()

			if err := sc.Ready(); err == nil || !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("Ready() = %v, want a reason mentioning %q", err, tt.wantReason)
			}
			code, body := readyz(t, sc)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, tt.wantReason) {
				t.Errorf("/readyz = %d %q, want 503 saying %q", code, body, tt.wantReason)
			}
			_, err := dialCurve(t, addr, client, s.server.Public)
			var pe *zmtp.PeerError
			switch {
			case err == nil:
				t.Fatal("a client got in before a usable allowlist was loaded")
			case tt.refusedByPolicy && !(errors.As(err, &pe) && pe.Reason == "400"):
				t.Errorf("dial: %v; want ERROR %q (ZAP status 400)", err, "400")
			case !tt.refusedByPolicy && errors.As(err, &pe):
				t.Errorf("dial: %v; want the connection closed before any handshake", err)
			}

			// Repair: the allowlist becomes good, the route opens.
			if fi, err := os.Stat(s.allowDir); err == nil && !fi.IsDir() {
				_ = os.Remove(s.allowDir)
			}
			_ = os.RemoveAll(s.allowDir)
			if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
				t.Fatal(err)
			}
			allow(t, s.allowDir, "team.client", client)
			waitFor(t, "ready after the allowlist was repaired", 3*time.Second, func() bool { return sc.Ready() == nil })
			if code, body := readyz(t, sc); code != http.StatusOK {
				t.Errorf("/readyz = %d %q after repair", code, body)
			}
			c, err := dialCurve(t, addr, client, s.server.Public)
			if err != nil {
				t.Fatalf("allowed client refused after repair: %v", err)
			}
			if err := c.WriteMessage([]byte("in")); err != nil {
				t.Fatal(err)
			}
			if v, _ := app.accept(t).Peer().Metadata.Get(zmtp.PropUserID); string(v) != "team/client" {
				t.Errorf("User-Id %q, want team/client", v)
			}
		})
	}
}

// TestDeclaredEmptyAllowlistServes: an operator's allowlist with nobody on
// it yet (index.json and no key) is ready, so the pod of a server deployed
// before its clients starts (the injected startup probe is /readyz), and
// still refuses every client until one is granted.
func TestDeclaredEmptyAllowlistServes(t *testing.T) {
	s := newServerSetup(t)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.allowDir, filecontract.IndexFile), []byte("[]\n"), 0o644)
	client := newKeyPair(t, s.sec)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	addr := sc.Addr("bus").String()

	if code, body := readyz(t, sc); code != http.StatusOK {
		t.Errorf("/readyz = %d %q with a declared empty allowlist, want 200", code, body)
	}
	_, err := dialCurve(t, addr, client, s.server.Public)
	var pe *zmtp.PeerError
	if !errors.As(err, &pe) || pe.Reason != "400" {
		t.Fatalf("dial with nobody granted: %v; want ERROR 400", err)
	}
	allow(t, s.allowDir, "team.client", client)
	waitFor(t, "the granted client gets in", 3*time.Second, func() bool {
		c, err := dialCurve(t, addr, client, s.server.Public)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}

func TestBadUpdateKeepsLastGood(t *testing.T) {
	s := newServerSetup(t)
	alice := newKeyPair(t, s.sec)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allow(t, s.allowDir, "team.alice", alice)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	addr := sc.Addr("bus").String()
	if err := sc.Ready(); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	live, err := dialCurve(t, addr, alice, s.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	app.accept(t)

	// A corrupt file arrives: the reload fails, is counted, and alice
	// (allowed by the last good allowlist) stays in and can reconnect.
	writeFile(t, filepath.Join(s.allowDir, "corrupt.key"), []byte("garbage"), 0o644)
	waitFor(t, "the failed reload counted", 3*time.Second, func() bool {
		return metricValue(t, sc.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "allowlist:bus"}) >= 1
	})
	// Removing alice's file while the corrupt one is there changes nothing
	// either: the whole load fails.
	// Each load opens corrupt.key (and fails there), one load after the
	// other (the event's, then a retry at each of the watch's checks): when
	// the third open after the removal begins, the second, which listed the
	// directory after the removal, has failed and been dealt with.
	loads := testenv.WatchOpens(t, filepath.Join(s.allowDir, "corrupt.key"))
	if err := os.Remove(filepath.Join(s.allowDir, "team.alice.key")); err != nil {
		t.Fatal(err)
	}
	since := loads.Count()
	waitFor(t, "two loads after the removal", 10*time.Duration(fastReload), func() bool { return loads.Count() >= since+3 })
	if err := sc.Ready(); err != nil {
		t.Errorf("a bad update made the sidecar unready: %v", err)
	}
	if _, err := dialCurve(t, addr, alice, s.server.Public); err != nil {
		t.Errorf("alice refused under the last good allowlist: %v", err)
	}
	if err := live.WriteMessage([]byte("still here")); err != nil {
		t.Errorf("live session broken by a bad update: %v", err)
	}
	if !strings.Contains(sc.logs.String(), "last good allowlist stays in force") {
		t.Error("the failed reload was not logged")
	}

	// The corrupt file goes: the update (without alice) applies, and her
	// sessions end.
	if err := os.Remove(filepath.Join(s.allowDir, "corrupt.key")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's live session closed", 3*time.Second, func() bool {
		_, err := live.ReadFrame(nil)
		return err != nil
	})
}

func TestRevocationAndAdmission(t *testing.T) {
	s := newServerSetup(t)
	alice, bob := newKeyPair(t, s.sec), newKeyPair(t, s.sec)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allow(t, s.allowDir, "team.alice", alice)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	addr := sc.Addr("bus").String()

	if _, err := dialCurve(t, addr, bob, s.server.Public); err == nil {
		t.Fatal("bob got in before being allowed")
	}
	allow(t, s.allowDir, "team.bob", bob)
	start := time.Now()
	waitFor(t, "bob admitted", 2*time.Second, func() bool {
		c, err := dialCurve(t, addr, bob, s.server.Public)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("bob admitted after %v, want within 1 s", d)
	}

	live, err := dialCurve(t, addr, alice, s.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	closed := closedAt(live)
	if err := os.Remove(filepath.Join(s.allowDir, "team.alice.key")); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	expectClosedWithinSecond(t, closed, removed, "the revoked session")
	waitFor(t, "revocation counted", time.Second, func() bool {
		return metricValue(t, sc.Registry(), "zmqauth_sidecar_sessions_revoked_total", map[string]string{"route": "bus"}) == 1
	})
}

func TestServerKeyRotation(t *testing.T) {
	s := newServerSetup(t)
	alice := newKeyPair(t, s.sec)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allow(t, s.allowDir, "team.alice", alice)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	addr := sc.Addr("bus").String()
	old := s.server

	established, err := dialCurve(t, addr, alice, old.Public)
	if err != nil {
		t.Fatal(err)
	}
	oldSession := app.accept(t)

	// Overlap: the new key is current, the old one previous. Both work.
	next := newKeyPair(t, s.sec)
	writeKeyDir(t, s.keysDir, next, &old)
	waitFor(t, "the new server key in force", 3*time.Second, func() bool {
		c, err := dialCurve(t, addr, alice, next.Public)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	if c, err := dialCurve(t, addr, alice, old.Public); err != nil {
		t.Errorf("the previous key refused during the overlap: %v", err)
	} else {
		_ = c.Close()
	}

	// End of the overlap: only the new key works; the established session
	// keeps its ephemeral keys.
	writeKeyDir(t, s.keysDir, next, nil)
	waitFor(t, "the previous server key retired", 3*time.Second, func() bool {
		c, err := dialCurve(t, addr, alice, old.Public)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	if err := established.WriteMessage([]byte("after rotation")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := oldSession.ReadMessage()
		if err != nil {
			t.Fatalf("established session broken by rotation: %v", err)
		}
		if string(m[0]) == "after rotation" {
			break
		}
	}
	if metricValue(t, sc.Registry(), "zmqauth_sidecar_handshakes_total", map[string]string{"route": "bus", "result": "failed", "reason": "wrong_server_key"}) < 1 {
		t.Error("the retired key's refusal was not counted as wrong_server_key")
	}

	// A malformed key update keeps the keys in force.
	writeFile(t, filepath.Join(s.keysDir, "secret.key"), []byte("garbage"), 0o600)
	waitFor(t, "the failed key reload counted", 3*time.Second, func() bool {
		return metricValue(t, sc.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "keys:bus"}) >= 1
	})
	if c, err := dialCurve(t, addr, alice, next.Public); err != nil {
		t.Errorf("the key in force was dropped by a bad update: %v", err)
	} else {
		_ = c.Close()
	}
}

// TestOutboundToInbound runs both kinds of route in one sidecar: a Go app
// connects to the outbound route, which dials the inbound route with the
// client keys in force at that moment.
func TestOutboundToInbound(t *testing.T) {
	s := newServerSetup(t)
	clientDir := filepath.Join(t.TempDir(), "client")
	c1 := newKeyPair(t, s.sec)
	writeKeyDir(t, clientDir, c1, nil)
	serverKeyFile := filepath.Join(clientDir, "bus.key")
	writeFile(t, serverKeyFile, []byte(s.server.Public.String()+"\n"), 0o644)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allow(t, s.allowDir, "team.c1", c1)

	app := startApp(t, "REP")
	cfg := s.inbound(app.addr)
	sc := startSidecar(t, cfg, s.sec)
	// A second sidecar for the client side, as in two pods.
	out := startSidecar(t, Config{
		ReloadInterval: fastReload,
		Outbound: []OutboundRoute{{
			Name: "to-bus", Listen: "127.0.0.1:0", Server: "tcp://" + sc.Addr("bus").String(),
			ServerKey: serverKeyFile, Keys: clientDir,
		}},
	}, s.sec)
	outAddr := out.Addr("to-bus").String()

	request := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		req, err := zmtp.Dial(ctx, outAddr, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "REQ"})
		if err != nil {
			t.Fatalf("app dial: %v", err)
		}
		defer req.Close()
		rep := app.accept(t)
		user, _ := rep.Peer().Metadata.Get(zmtp.PropUserID)
		if err := req.WriteMessage([]byte{}, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		m, err := rep.ReadMessage()
		if err != nil || string(m[len(m)-1]) != "ping" {
			t.Fatalf("REP got %q, %v", m, err)
		}
		if err := rep.WriteMessage(m...); err != nil {
			t.Fatal(err)
		}
		if m, err := req.ReadMessage(); err != nil || string(m[len(m)-1]) != "ping" {
			t.Fatalf("REQ got %q, %v", m, err)
		}
		_ = rep.Close()
		return string(user)
	}
	if got := request(); got != "team/c1" {
		t.Fatalf("User-Id %q, want team/c1", got)
	}

	// Client key rotation: both keys allowed, the new one in the key
	// directory; the next connection uses it.
	c2 := newKeyPair(t, s.sec)
	allow(t, s.allowDir, "team.c2", c2)
	writeKeyDir(t, clientDir, c2, nil)
	waitFor(t, "the new client key used", 3*time.Second, func() bool { return request() == "team/c2" })
}

// TestAuditMode lets a client outside the allowlist in, naming it by its
// key and counting it, with heartbeats on every connection.
func TestAuditMode(t *testing.T) {
	s := newServerSetup(t)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stranger := newKeyPair(t, s.sec)
	app := startApp(t, "PULL")
	cfg := s.inbound(app.addr)
	cfg.Inbound[0].Mode = "audit"
	// Intervals generous enough for a loaded 2-core machine: the peers drop
	// the hop if nothing comes within the TTL (twice the interval).
	cfg.Heartbeat = Duration(250 * time.Millisecond)
	sc := startSidecar(t, cfg, s.sec)
	if err := sc.Ready(); err != nil {
		t.Errorf("audit mode with an empty allowlist not ready: %v", err)
	}
	c, err := dialCurve(t, sc.Addr("bus").String(), stranger, s.server.Public)
	if err != nil {
		t.Fatalf("audit mode refused a client: %v", err)
	}
	pull := app.accept(t)
	if v, _ := pull.Peer().Metadata.Get(zmtp.PropUserID); string(v) != stranger.Public.String() {
		t.Errorf("User-Id %q, want the client's key %s", v, stranger.Public)
	}
	// Both ends read all the time, as libzmq does, so that they answer the
	// sidecar's PINGs; idle for several heartbeat intervals, the hops stay
	// up.
	go func() {
		for {
			if _, err := c.ReadFrame(nil); err != nil {
				return
			}
		}
	}()
	got := make(chan string, 1)
	go func() {
		m, err := pull.ReadMessage()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(m[0])
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := c.WriteMessage([]byte("audited")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "audited" {
			t.Fatalf("app got %q", m)
		}
	case <-time.After(testTimeout):
		t.Fatal("nothing arrived")
	}
	if n := metricValue(t, sc.Registry(), "zmqauth_sidecar_handshakes_total", map[string]string{"result": "audit_pass"}); n != 1 {
		t.Errorf("audit_pass handshakes = %v, want 1", n)
	}
	if !strings.Contains(sc.logs.String(), stranger.Public.String()) {
		t.Error("the audited client's key was not logged")
	}
}
