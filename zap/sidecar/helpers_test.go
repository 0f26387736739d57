package sidecar

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = 10 * time.Second

// secrets collects the Z85 secret keys a test wrote, so that the logs can
// be checked for them.
type secrets struct {
	mu   sync.Mutex
	keys []string
}

func (s *secrets) add(k string) {
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.mu.Unlock()
}

// assertAbsent fails the test when text contains a secret key. It never
// prints the key.
func (s *secrets) assertAbsent(t *testing.T, what, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if strings.Contains(text, k) {
			t.Errorf("%s contain secret key #%d", what, i)
		}
	}
}

// newKeyPair returns a new keypair; its secret is recorded in sec.
func newKeyPair(t *testing.T, sec *secrets) keygen.KeyPair {
	t.Helper()
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sec.add(kp.Secret.Z85())
	return kp
}

// writeFile writes data to path atomically (rename), as the kubelet's
// swaps appear to a reader.
func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeKeyDir writes a keypair directory: public.key and secret.key, and
// previous-secret.key when previous is not nil (removed otherwise).
func writeKeyDir(t *testing.T, dir string, kp keygen.KeyPair, previous *keygen.KeyPair) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(dir, filecontract.PreviousSecretKeyFile)
	if previous != nil {
		writeFile(t, prev, []byte(previous.Secret.Z85()+"\n"), 0o600)
	}
	writeFile(t, filepath.Join(dir, filecontract.SecretKeyFile), []byte(kp.Secret.Z85()+"\n"), 0o600)
	writeFile(t, filepath.Join(dir, filecontract.PublicKeyFile), []byte(kp.Public.String()+"\n"), 0o644)
	if previous == nil {
		_ = os.Remove(prev)
	}
}

// allow writes the public certificate of kp into the allowlist directory as
// NAME.key.
func allow(t *testing.T, dir, name string, kp keygen.KeyPair) {
	t.Helper()
	data, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, nil).MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name+".key"), data, 0o644)
}

// running is a sidecar run by a test.
type running struct {
	*Sidecar
	logs *testenv.LogBuffer
}

// startSidecar opens and runs a sidecar until cleanup, when it checks that
// Run returned and that the logs hold no secret key.
func startSidecar(t *testing.T, cfg Config, sec *secrets) *running {
	t.Helper()
	return startSidecarWith(t, cfg, Options{}, sec)
}

// startSidecarWith is startSidecar with options (its Logger is replaced).
func startSidecarWith(t *testing.T, cfg Config, opts Options, sec *secrets) *running {
	t.Helper()
	logs := &testenv.LogBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("Run did not return after cancel")
		}
		sec.assertAbsent(t, "sidecar logs", logs.String())
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	return &running{Sidecar: s, logs: logs}
}

// goApp accepts NULL connections of one socket type and hands them over.
type goApp struct {
	addr  string
	conns chan *zmtp.Conn
}

// startApp runs a Go application on loopback.
func startApp(t *testing.T, socketType string) *goApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	a := &goApp{addr: ln.Addr().String(), conns: make(chan *zmtp.Conn, 16)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				c, err := zmtp.NewConn(ctx, nc, &zmtp.Config{Mechanism: zmtp.NewNullServer(nil, ""), SocketType: socketType})
				if err == nil {
					a.conns <- c
				}
			}()
		}
	}()
	return a
}

// accept returns the next connection the application accepted.
func (a *goApp) accept(t *testing.T) *zmtp.Conn {
	t.Helper()
	select {
	case c := <-a.conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(testTimeout):
		t.Fatal("the application got no connection")
		return nil
	}
}

// dialCurve connects a Go CURVE client (PUSH) to addr.
func dialCurve(t *testing.T, addr string, client keygen.KeyPair, server keygen.PublicKey) (*zmtp.Conn, error) {
	t.Helper()
	var cp curve.KeyPair
	cp.Public = curve.PublicKey(client.Public)
	copy(cp.Secret[:], client.Secret.Bytes())
	mech, err := curve.NewClient(curve.ClientConfig{Key: cp, ServerKey: curve.PublicKey(server)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: mech, SocketType: "PUSH"})
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// waitFor polls cond every 10 ms until it holds or limit passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedAt reads c until a read fails and returns a channel that then
// receives the time it failed: when the sidecar closed the session.
func closedAt(c *zmtp.Conn) <-chan time.Time {
	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, err := c.ReadFrame(nil); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	return closed
}

// expectClosedWithinSecond fails the test unless closed (from closedAt)
// reports a close, and reports one that came more than a second after
// since; what names the session for the messages.
func expectClosedWithinSecond(t *testing.T, closed <-chan time.Time, since time.Time, what string) {
	t.Helper()
	select {
	case at := <-closed:
		if d := at.Sub(since); d > time.Second {
			t.Errorf("%s closed %v later, want within 1 s", what, d)
		}
	case <-time.After(testTimeout):
		t.Fatalf("%s still open", what)
	}
}
