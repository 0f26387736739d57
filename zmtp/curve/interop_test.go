package curve

// Interoperability with the reference implementation: libzmq 4.3 through
// pyzmq (zmtp/testdata/pypeer.py, driven by internal/pypeer), in both
// directions, over TCP through the zmtp engine.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/pypeer"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zmtp"
)

// interopSizes straddle the short/long frame boundary and include a large
// message.
var interopSizes = []int{1, 255, 256, 1 << 20}

func z85(t testing.TB, b []byte) string {
	t.Helper()
	s, err := keygen.Z85Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// redactTB hides the given strings (the libzmq peer's secret keys, passed on
// its command line) from everything logged through it: pypeer logs its
// command line when a test fails.
type redactTB struct {
	testing.TB
	secrets []string
}

func (r redactTB) clean(s string) string {
	for _, x := range r.secrets {
		s = strings.ReplaceAll(s, x, "[redacted]")
	}
	return s
}

func (r redactTB) Logf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Log(r.clean(fmt.Sprintf(format, args...)))
}

func (r redactTB) Fatalf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Fatal(r.clean(fmt.Sprintf(format, args...)))
}

func (r redactTB) Errorf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Error(r.clean(fmt.Sprintf(format, args...)))
}

func (r redactTB) Fatal(args ...any) {
	r.TB.Helper()
	r.TB.Fatal(r.clean(fmt.Sprint(args...)))
}

// startPeer starts the libzmq peer, keeping secret keys out of the output.
func startPeer(t *testing.T, o pypeer.Options) *pypeer.Peer {
	t.Helper()
	var secrets []string
	if o.CurveSecretKey != "" {
		secrets = append(secrets, o.CurveSecretKey)
	}
	return pypeer.Start(redactTB{TB: t, secrets: secrets}, o)
}

// curveKeys is a keypair with its Z85 forms, for the libzmq side.
type curveKeys struct {
	KeyPair
	pub, sec string
}

func newCurveKeys(t *testing.T) curveKeys {
	kp := mustKeyPair(t)
	return curveKeys{KeyPair: kp, pub: z85(t, kp.Public[:]), sec: z85(t, kp.Secret[:])}
}

// writeCert writes a zcert public certificate for pub into dir, as pyzmq's
// configure_curve(location=dir) reads it.
func writeCert(t *testing.T, dir, name, pub string) {
	t.Helper()
	cert := "metadata\ncurve\n    public-key = \"" + pub + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, name+".key"), []byte(cert), 0o644); err != nil {
		t.Fatal(err)
	}
}

type connResult struct {
	c   *zmtp.Conn
	err error
}

// listenCurve accepts TCP connections and runs zmtp.NewConn on each,
// delivering every outcome.
func listenCurve(t *testing.T, cfg *zmtp.Config) (endpoint string, results <-chan connResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan connResult, 64)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c, err := zmtp.NewConn(ctx, nc, cfg)
				select {
				case ch <- connResult{c, err}:
				default:
					if c != nil {
						c.Close()
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
		close(ch)
		for r := range ch {
			if r.c != nil {
				r.c.Close()
			}
		}
	})
	return "tcp://" + ln.Addr().String(), ch
}

func nextResult(t *testing.T, results <-chan connResult) connResult {
	t.Helper()
	select {
	case r := <-results:
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no connection attempt from the libzmq peer")
	}
	return connResult{}
}

func interopCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func interopPayload(n int) []byte { return payloadOf(n) }

// testenvPyZMQ skips (fails under ZMQAUTH_REQUIRE_DEPS=1) without pyzmq.
func testenvPyZMQ(t *testing.T) { testenv.PyZMQ(t) }

// recordingConn keeps a copy of everything written through it.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// engineSealsInCommandFrames reports, from an in-process connection,
// whether the zmtp engine wraps a CURVE MESSAGE in a command frame.
//
// libzmq 4.3 sends every MESSAGE in a data frame (outer flags 0 or LONG;
// MORE and COMMAND travel only inside the box) and keeps the outer frame's
// flags on receipt: a MESSAGE arriving in a command frame becomes a command
// and is dropped, so no data passes.
func engineSealsInCommandFrames(t *testing.T) bool {
	t.Helper()
	serverKey := mustKeyPair(t)
	a, b := net.Pipe()
	rec := &recordingConn{Conn: a}
	type res struct {
		c   *zmtp.Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := zmtp.NewConn(t.Context(), b, &zmtp.Config{Mechanism: mustServer(t, allow("u"), serverKey), SocketType: "PAIR"})
		done <- res{c, err}
	}()
	c, err := zmtp.NewConn(t.Context(), rec, &zmtp.Config{Mechanism: mustClient(t, mustKeyPair(t), serverKey.Public), SocketType: "PAIR"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	rec.mu.Lock()
	rec.out.Reset()
	rec.mu.Unlock()
	go func() { _ = c.WriteMessage([]byte("probe")); _ = c.Flush() }()
	if _, err := r.c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	wire := bytes.Clone(rec.out.Bytes())
	rec.mu.Unlock()
	i := bytes.Index(wire, []byte("\x07MESSAGE"))
	if i < 2 {
		t.Fatalf("no MESSAGE on the wire: % x", wire)
	}
	return wire[i-2]&0x04 != 0 // a short frame: flags, size, body
}

// requireMessageInDataFrames fails the test, with the reason, when the
// engine frames MESSAGE in a way libzmq cannot read, rather than letting the
// round trips time out.
func requireMessageInDataFrames(t *testing.T) {
	t.Helper()
	testenvPyZMQ(t)
	if engineSealsInCommandFrames(t) {
		t.Fatal("the zmtp engine sends CURVE MESSAGE in command frames (outer flag 0x04): libzmq 4.3 " +
			"sends and expects MESSAGE in data frames (outer flags 0 or LONG only) and drops a MESSAGE that " +
			"arrives in a command frame, and the engine refuses libzmq's data-frame MESSAGE. zmtp's " +
			"writeLocked and readOne must frame MESSAGE as a data frame")
	}
}

func TestInteropOurClientLibzmqServer(t *testing.T) {
	requireMessageInDataFrames(t)
	ourClientLibzmqServer(t)
}

func ourClientLibzmqServer(t *testing.T) {
	ctx := interopCtx(t)
	server, client := newCurveKeys(t), newCurveKeys(t)
	certs := t.TempDir()
	writeCert(t, certs, "our-client", client.pub)
	peer := startPeer(t, pypeer.Options{
		Type: "ROUTER", Bind: "tcp://127.0.0.1:*", Monitor: true,
		Mechanism: "CURVE", CurveServer: true, CurvePublicKey: server.pub, CurveSecretKey: server.sec,
		ZAPCurveDir: certs,
	})
	mech := mustClient(t, client.KeyPair, server.Public)
	endpoint := peer.Endpoint()
	c, err := zmtp.Dial(ctx, endpoint, &zmtp.Config{Mechanism: mech, SocketType: "DEALER", Identity: []byte("go-dealer")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.Peer(); p.SocketType != "ROUTER" || p.Mechanism != "CURVE" {
		t.Fatalf("peer %+v", p)
	}
	if _, err := peer.WaitMonitor(ctx, "HANDSHAKE_SUCCEEDED"); err != nil {
		t.Fatal(err)
	}

	// libzmq's ZAP handler authenticated our long-term key: its User-Id is
	// the key's Z85 form.
	if err := c.WriteMessage([]byte("who am I")); err != nil {
		t.Fatal(err)
	}
	// Read the properties from the last part: a ROUTER's first part is the
	// routing id it made, without metadata.
	ev, err := peer.Do(ctx, map[string]any{"op": "recv", "timeout_ms": 10000, "props": []string{"User-Id"}, "props_part": -1})
	if err != nil || ev.Event != "recv" {
		t.Fatalf("libzmq received nothing: %v %v", ev.Event, err)
	}
	if uid := ev.Props["User-Id"]; uid == nil || *uid != client.pub {
		t.Fatalf("libzmq sees User-Id %v, want our public key %s", uid, client.pub)
	}
	if len(ev.Parts) != 2 || string(ev.Parts[0]) != "go-dealer" || string(ev.Parts[1]) != "who am I" {
		t.Fatalf("libzmq received %q", ev.Parts)
	}

	echoDone := make(chan error, 1)
	go func() { echoDone <- peer.Echo(ctx, len(interopSizes), 20*time.Second) }()
	for _, n := range interopSizes {
		want := [][]byte{[]byte(fmt.Sprintf("size-%d", n)), interopPayload(n), []byte("tail")}
		if err := c.WriteMessage(want...); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if len(got) != len(want) || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) || !bytes.Equal(got[2], want[2]) {
			t.Fatalf("size %d: echo differs (%d parts)", n, len(got))
		}
	}
	if err := <-echoDone; err != nil {
		t.Fatal(err)
	}
}

func TestInteropLibzmqClientOurServer(t *testing.T) {
	requireMessageInDataFrames(t)
	libzmqClientOurServer(t)
}

func libzmqClientOurServer(t *testing.T) {
	ctx := interopCtx(t)
	server, client := newCurveKeys(t), newCurveKeys(t)
	auth := &authLog{decide: func(r *zmtp.AuthRequest) zmtp.AuthResult {
		if bytes.Equal(r.ClientKey, client.Public[:]) {
			return zmtp.AuthResult{StatusCode: 200, UserID: "libzmq-client"}
		}
		return zmtp.AuthResult{StatusCode: 400}
	}}
	endpoint, results := listenCurve(t, &zmtp.Config{Mechanism: mustServer(t, auth, server.KeyPair), SocketType: "ROUTER"})
	peer := startPeer(t, pypeer.Options{
		Type: "DEALER", Connect: endpoint, Identity: "py-dealer", Monitor: true,
		Mechanism: "CURVE", CurveServerKey: server.pub, CurvePublicKey: client.pub, CurveSecretKey: client.sec,
	})
	r := nextResult(t, results)
	if r.err != nil {
		t.Fatalf("our server: %v", r.err)
	}
	c := r.c
	p := c.Peer()
	if p.SocketType != "DEALER" || string(p.Identity) != "py-dealer" || p.UserID != "libzmq-client" || !bytes.Equal(p.ClientKey, client.Public[:]) {
		t.Fatalf("peer %+v", p)
	}
	if reqs := auth.Requests(); len(reqs) != 1 || reqs[0].Mechanism != "CURVE" || reqs[0].Address == "" {
		t.Fatalf("auth requests %v", reqs)
	}
	go func() {
		for {
			msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(msg...) != nil {
				return
			}
		}
	}()
	for _, n := range interopSizes {
		want := [][]byte{[]byte(fmt.Sprintf("size-%d", n)), interopPayload(n), []byte("tail")}
		if err := peer.Send(ctx, want...); err != nil {
			t.Fatal(err)
		}
		ev, err := peer.Recv(ctx, 20*time.Second)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if len(ev.Parts) != len(want) || !bytes.Equal(ev.Parts[0], want[0]) || !bytes.Equal(ev.Parts[1], want[1]) || !bytes.Equal(ev.Parts[2], want[2]) {
			t.Fatalf("size %d: echo differs (%d parts)", n, len(ev.Parts))
		}
	}
	if _, err := peer.WaitMonitor(ctx, "HANDSHAKE_SUCCEEDED"); err != nil {
		t.Fatal(err)
	}
}

// TestInteropDenyThenAllow has our server refuse a libzmq client's key, then
// accept it: libzmq reports the refusal in its monitor and delivers nothing;
// once the key is allowed, the same client key connects and works. libzmq
// 4.3 treats an ERROR as a protocol error and does not reconnect that
// socket (session_base_t::engine_error), so the allowed attempt is a fresh
// libzmq socket with the same keys.
func TestInteropDenyThenAllow(t *testing.T) {
	requireMessageInDataFrames(t)
	denyThenAllow(t)
}

func denyThenAllow(t *testing.T) {
	tests := []struct {
		name       string
		statusText string
		// wantEvent is the monitor event libzmq reports for the refusal.
		// It maps only a bare status code ("400") to HANDSHAKE_FAILED_AUTH;
		// for any other reason text it drops the connection silently.
		wantEvent string
	}{
		{"bare status code", "", "HANDSHAKE_FAILED_AUTH"},
		{"reason text", "client key not on the allowlist", "DISCONNECTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := interopCtx(t)
			server, client := newCurveKeys(t), newCurveKeys(t)
			var allowed atomic.Bool
			auth := &authLog{decide: func(*zmtp.AuthRequest) zmtp.AuthResult {
				if allowed.Load() {
					return zmtp.AuthResult{StatusCode: 200, UserID: "now-allowed"}
				}
				return zmtp.AuthResult{StatusCode: 400, StatusText: tt.statusText}
			}}
			endpoint, results := listenCurve(t, &zmtp.Config{Mechanism: mustServer(t, auth, server.KeyPair), SocketType: "ROUTER"})
			opts := pypeer.Options{
				Type: "DEALER", Connect: endpoint, Monitor: true,
				Mechanism: "CURVE", CurveServerKey: server.pub, CurvePublicKey: client.pub, CurveSecretKey: client.sec,
			}
			peer := startPeer(t, opts)
			r := nextResult(t, results)
			if !errors.Is(r.err, zmtp.ErrAuthFailed) {
				t.Fatalf("our server: %v, want ErrAuthFailed", r.err)
			}
			ev, err := peer.WaitMonitor(ctx, tt.wantEvent)
			if err != nil {
				t.Fatalf("%v; monitor saw %v", err, peer.MonitorNames())
			}
			if tt.wantEvent == "HANDSHAKE_FAILED_AUTH" && (ev.Value == nil || *ev.Value != 400) {
				t.Fatalf("HANDSHAKE_FAILED_AUTH value %v, want 400", ev.Value)
			}
			if _, err := peer.Recv(ctx, 300*time.Millisecond); !errors.Is(err, pypeer.ErrTimeout) {
				t.Fatalf("refused libzmq client received something: %v", err)
			}
			for _, name := range peer.MonitorNames() {
				if name == "HANDSHAKE_SUCCEEDED" {
					t.Fatal("libzmq reports a successful handshake while refused")
				}
			}

			allowed.Store(true)
			_ = peer.Close()
			peer = startPeer(t, opts)
			var c *zmtp.Conn
			for c == nil {
				r := nextResult(t, results)
				if r.err == nil {
					c = r.c
				} else if !errors.Is(r.err, zmtp.ErrAuthFailed) {
					t.Fatalf("our server: %v", r.err)
				}
			}
			if p := c.Peer(); p.UserID != "now-allowed" {
				t.Fatalf("peer %+v", p)
			}
			if err := c.WriteMessage([]byte("welcome")); err != nil {
				t.Fatal(err)
			}
			got, err := peer.Recv(ctx, 10*time.Second)
			if err != nil || len(got.Parts) != 1 || string(got.Parts[0]) != "welcome" {
				t.Fatalf("libzmq got %q, %v", got.Parts, err)
			}
			if err := peer.Send(ctx, []byte("thanks")); err != nil {
				t.Fatal(err)
			}
			msg, err := c.ReadMessage()
			if err != nil || len(msg) != 1 || string(msg[0]) != "thanks" {
				t.Fatalf("got %q, %v; want libzmq's reply", msg, err)
			}
		})
	}
}

// TestInteropRefusedPeers covers libzmq clients our CURVE server must turn
// away: one speaking NULL, one holding the wrong server public key.
func TestInteropRefusedPeers(t *testing.T) {
	server, client, wrong := newCurveKeys(t), newCurveKeys(t), newCurveKeys(t)
	tests := []struct {
		name    string
		opts    pypeer.Options
		wantErr error // nil: any error
	}{
		// libzmq reads our greeting's mechanism first and hangs up, so our
		// side may see the end of the stream before the mismatch.
		{"NULL client", pypeer.Options{Mechanism: "NULL"}, nil},
		{"CURVE client with the wrong server key", pypeer.Options{
			Mechanism: "CURVE", CurveServerKey: wrong.pub, CurvePublicKey: client.pub, CurveSecretKey: client.sec,
		}, ErrCryptographic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := interopCtx(t)
			auth := allow("anyone")
			endpoint, results := listenCurve(t, &zmtp.Config{Mechanism: mustServer(t, auth, server.KeyPair), SocketType: "ROUTER"})
			o := tt.opts
			o.Type, o.Connect, o.Monitor = "DEALER", endpoint, true
			peer := startPeer(t, o)
			r := nextResult(t, results)
			if r.err == nil || tt.wantErr != nil && !errors.Is(r.err, tt.wantErr) {
				t.Fatalf("our server: %v, want %v", r.err, tt.wantErr)
			}
			t.Logf("our server: %v", r.err)
			assertNoSecrets(t, r.err, server.KeyPair, client.KeyPair, wrong.KeyPair)
			if n := len(auth.Requests()); n != 0 {
				t.Fatalf("authenticator consulted %d times", n)
			}
			if _, err := peer.Recv(ctx, 300*time.Millisecond); !errors.Is(err, pypeer.ErrTimeout) {
				t.Fatalf("refused libzmq client received something: %v", err)
			}
			if _, err := peer.WaitEvent(ctx, func(e pypeer.Event) bool {
				return e.Event == "monitor" && (strings.HasPrefix(e.Name, "HANDSHAKE_FAILED") || e.Name == "DISCONNECTED")
			}); err != nil {
				t.Fatalf("%v; monitor saw %v", err, peer.MonitorNames())
			}
			t.Logf("libzmq monitor: %v", peer.MonitorNames())
			for _, name := range peer.MonitorNames() {
				if name == "HANDSHAKE_SUCCEEDED" {
					t.Fatal("libzmq reports a successful handshake")
				}
			}
		})
	}
}

// TestInteropLibzmqServerRefusesUs checks our client's side of refusals by a
// libzmq server: its ZAP handler denying our key, and our client holding the
// wrong server key.
func TestInteropLibzmqServerRefusesUs(t *testing.T) {
	server, client, wrong := newCurveKeys(t), newCurveKeys(t), newCurveKeys(t)
	tests := []struct {
		name      string
		target    PublicKey
		wantEvent string
		check     func(t *testing.T, err error)
	}{
		{"ZAP denies our key", server.Public, "HANDSHAKE_FAILED_AUTH", func(t *testing.T, err error) {
			var pe *zmtp.PeerError
			if !errors.As(err, &pe) || pe.Reason != "400" {
				t.Fatalf("Dial error %v, want libzmq's ERROR 400", err)
			}
		}},
		{"we hold the wrong server key", wrong.Public, "HANDSHAKE_FAILED_PROTOCOL", func(t *testing.T, err error) {
			if err == nil {
				t.Fatal("Dial succeeded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := interopCtx(t)
			peer := startPeer(t, pypeer.Options{
				Type: "ROUTER", Bind: "tcp://127.0.0.1:*", Monitor: true,
				Mechanism: "CURVE", CurveServer: true, CurvePublicKey: server.pub, CurveSecretKey: server.sec,
				ZAPCurveDir: t.TempDir(), // no certificate: every client key is denied
			})
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := zmtp.Dial(dctx, peer.Endpoint(), &zmtp.Config{Mechanism: mustClient(t, client.KeyPair, tt.target), SocketType: "DEALER"})
			if c != nil {
				c.Close()
			}
			tt.check(t, err)
			assertNoSecrets(t, err, server.KeyPair, client.KeyPair, wrong.KeyPair)
			if _, err := peer.WaitMonitor(ctx, tt.wantEvent); err != nil {
				t.Fatalf("%v; monitor saw %v", err, peer.MonitorNames())
			}
		})
	}
}
