package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = 10 * time.Second

// listen opens an ephemeral loopback listener, closed at cleanup.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// goApp is an application made of zmtp connections: it accepts NULL
// connections with a fixed socket type and hands them to the test.
type goApp struct {
	addr  string
	conns chan *zmtp.Conn
}

// startApp runs an application listening on loopback with cfg (NULL).
func startApp(t testing.TB, cfg zmtp.Config) *goApp {
	t.Helper()
	ln := listen(t)
	a := &goApp{addr: ln.Addr().String(), conns: make(chan *zmtp.Conn, 16)}
	if cfg.Mechanism == nil {
		cfg.Mechanism = zmtp.NewNullServer(nil, "")
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				c, err := zmtp.NewConn(ctx, nc, &cfg)
				if err != nil {
					return
				}
				a.conns <- c
			}()
		}
	}()
	return a
}

// accept returns the next connection the application accepted.
func (a *goApp) accept(t testing.TB) *zmtp.Conn {
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

// userAuth authorizes every NULL peer as user.
func userAuth(user string) zmtp.Authenticator {
	return zmtp.AuthenticatorFunc(func(context.Context, *zmtp.AuthRequest) zmtp.AuthResult {
		return zmtp.AuthResult{StatusCode: zmtp.StatusOK, UserID: user}
	})
}

// serveRoute runs serve on a new listener until cleanup and returns the
// listener's address.
func serveRoute(t testing.TB, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("Serve did not return after cancel")
		}
	})
	return ln.Addr().String()
}

// nullChain starts app <- inbound <- outbound, all NULL, the inbound
// authorizing everyone as "alice", and returns the outbound's address.
func nullChain(t testing.TB, app *goApp) (outAddr string, in *Inbound) {
	t.Helper()
	in = &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: app.addr,
	}
	inAddr := serveRoute(t, in.Serve)
	out := &Outbound{
		Route:        "out",
		ServerAddr:   "tcp://" + inAddr,
		NewMechanism: func() (zmtp.Mechanism, error) { return zmtp.NewNullClient(), nil },
	}
	return serveRoute(t, out.Serve), in
}

// dial connects a NULL client.
func dial(t testing.TB, addr string, cfg zmtp.Config) *zmtp.Conn {
	t.Helper()
	if cfg.Mechanism == nil {
		cfg.Mechanism = zmtp.NewNullClient()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := zmtp.Dial(ctx, addr, &cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readMessage reads one message within the test timeout.
func readMessage(t testing.TB, c *zmtp.Conn) [][]byte {
	t.Helper()
	type result struct {
		m   [][]byte
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := c.ReadMessage(); ch <- result{m, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.m
	case <-time.After(testTimeout):
		_ = c.Close()
		t.Fatal("read timed out")
		return nil
	}
}

// readFrame reads one frame (a command or a data frame) within the test
// timeout.
func readFrame(t testing.TB, c *zmtp.Conn) zmtp.Frame {
	t.Helper()
	type result struct {
		f   zmtp.Frame
		err error
	}
	ch := make(chan result, 1)
	go func() { f, err := c.ReadFrame(nil); ch <- result{f, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.f
	case <-time.After(testTimeout):
		_ = c.Close()
		t.Fatal("read timed out")
		return zmtp.Frame{}
	}
}

func equalMessages(a, b [][]byte) bool {
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

func TestNullChainRelaysBothWays(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "ROUTER", Identity: []byte("app-router")})
	outAddr, in := nullChain(t, app)

	client := dial(t, outAddr, zmtp.Config{SocketType: "DEALER", Identity: []byte("client-7")})
	server := app.accept(t)

	// Each end sees the other's real socket type and identity; the
	// application sees the authenticated identity and not a claimed one.
	if got := server.Peer().SocketType; got != "DEALER" {
		t.Errorf("app sees socket type %q, want DEALER", got)
	}
	if got := string(server.Peer().Identity); got != "client-7" {
		t.Errorf("app sees identity %q, want client-7", got)
	}
	if v, ok := server.Peer().Metadata.Get(zmtp.PropUserID); !ok || string(v) != "alice" {
		t.Errorf("app sees User-Id %q (present %v), want alice", v, ok)
	}
	if got := client.Peer().SocketType; got != "ROUTER" {
		t.Errorf("client sees socket type %q, want ROUTER", got)
	}
	if got := string(client.Peer().Identity); got != "app-router" {
		t.Errorf("client sees identity %q, want app-router", got)
	}

	big := bytes.Repeat([]byte{0xA5}, 1<<20)
	messages := [][][]byte{
		{[]byte("hello")},
		{[]byte("multi"), []byte(""), []byte("part"), []byte("message")},
		{big},
		{[]byte("head"), big, []byte("tail")},
	}
	for _, m := range messages {
		if err := client.WriteMessage(m...); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, server); !equalMessages(got, m) {
			t.Fatalf("app got %d parts, want %d (sizes differ or content)", len(got), len(m))
		}
		if err := server.WriteMessage(m...); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, client); !equalMessages(got, m) {
			t.Fatalf("client got %d parts, want %d", len(got), len(m))
		}
	}
	if n := in.Sessions(); n != 1 {
		t.Errorf("inbound has %d sessions, want 1", n)
	}

	// Either end closing ends the session at the other end.
	_ = client.Close()
	if _, err := server.ReadFrame(nil); err == nil {
		t.Fatal("app still connected after the client left")
	}
}

func TestClaimedUserIDIsDropped(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "PULL"})
	outAddr, _ := nullChain(t, app)
	_ = dial(t, outAddr, zmtp.Config{
		SocketType: "PUSH",
		Properties: zmtp.Metadata{{Name: zmtp.PropUserID, Value: []byte("root")}, {Name: "X-Team", Value: []byte("blue")}},
	})
	server := app.accept(t)
	if v, _ := server.Peer().Metadata.Get(zmtp.PropUserID); string(v) != "alice" {
		t.Errorf("app sees User-Id %q, want the authenticated alice", v)
	}
	if v, _ := server.Peer().Metadata.Get("X-Team"); string(v) != "blue" {
		t.Errorf("app sees X-Team %q, want blue", v)
	}
}

func TestHandshakeFailures(t *testing.T) {
	deadAddr := func(t *testing.T) string {
		ln := listen(t)
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}
	refusingApp := func(t *testing.T) string {
		deny := zmtp.AuthenticatorFunc(func(context.Context, *zmtp.AuthRequest) zmtp.AuthResult {
			return zmtp.AuthResult{StatusCode: zmtp.StatusDenied, StatusText: "go away"}
		})
		return startApp(t, zmtp.Config{SocketType: "ROUTER", Mechanism: zmtp.NewNullServer(deny, "app")}).addr
	}
	tests := []struct {
		name    string
		appAddr func(t *testing.T) string
		// wantReason is the ERROR the client must get; "" means the
		// connection must be closed without one, so a libzmq client
		// reconnects.
		wantReason string
	}{
		{"application down", deadAddr, ""},
		{"socket types do not match", func(t *testing.T) string {
			return startApp(t, zmtp.Config{SocketType: "PUB"}).addr
		}, "application socket type does not match"},
		{"application refuses", refusingApp, "application refused the connection: 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Inbound{
				Route:   "in",
				Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), ""), HandshakeTimeout: time.Second},
				AppAddr: tt.appAddr(t),
			}
			addr := serveRoute(t, in.Serve)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			_, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "DEALER", HandshakeTimeout: 5 * time.Second})
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			var pe *zmtp.PeerError
			if tt.wantReason == "" {
				if errors.As(err, &pe) {
					t.Fatalf("got ERROR %q; want the connection closed without one", pe.Reason)
				}
				if errors.Is(err, zmtp.ErrHandshakeTimeout) {
					t.Fatalf("dial: %v; want the sidecar to close the connection within its own deadline", err)
				}
				return
			}
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tt.wantReason) {
				t.Fatalf("dial: %v; want an ERROR saying %q", err, tt.wantReason)
			}
			if strings.Contains(pe.Reason, "127.0.0.1") {
				t.Errorf("ERROR reason %q names an internal address", pe.Reason)
			}
		})
	}
}

func TestApplicationComesUpDuringHandshake(t *testing.T) {
	ln := listen(t)
	appAddr := ln.Addr().String()
	_ = ln.Close()
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: appAddr,
	}
	addr := serveRoute(t, in.Serve)
	type result struct {
		c   *zmtp.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "PUSH"})
		done <- result{c, err}
	}()
	time.Sleep(300 * time.Millisecond)
	ln, err := net.Listen("tcp", appAddr)
	if err != nil {
		t.Skipf("the application's port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if c, err := zmtp.NewConn(ctx, nc, &zmtp.Config{Mechanism: zmtp.NewNullServer(nil, ""), SocketType: "PULL"}); err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("the client did not get through once the application was up: %v", r.err)
	}
	_ = r.c.Close()
}

func TestOutboundServerDown(t *testing.T) {
	ln := listen(t)
	dead := ln.Addr().String()
	_ = ln.Close()
	out := &Outbound{
		Route:        "out",
		App:          zmtp.Config{HandshakeTimeout: time.Second},
		ServerAddr:   dead,
		NewMechanism: func() (zmtp.Mechanism, error) { return zmtp.NewNullClient(), nil },
	}
	addr := serveRoute(t, out.Serve)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "REQ", HandshakeTimeout: 5 * time.Second})
	var pe *zmtp.PeerError
	if err == nil || errors.As(err, &pe) || errors.Is(err, zmtp.ErrHandshakeTimeout) {
		t.Fatalf("dial: %v; want the connection closed without ERROR within the sidecar's deadline", err)
	}
}

func TestSlowHandshakeDoesNotBlockAccept(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "REP"})
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), ""), HandshakeTimeout: 500 * time.Millisecond},
		AppAddr: app.addr,
	}
	addr := serveRoute(t, in.Serve)
	// A peer that connects and says nothing.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	c := dial(t, addr, zmtp.Config{SocketType: "REQ"})
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("handshake took %v behind a silent peer", d)
	}
	_ = c
	// The silent peer is dropped at the handshake deadline.
	_ = silent.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 128)
	for {
		if _, err := silent.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("silent peer not dropped")
			}
			break
		}
	}
}

func TestServeEndsSessionsOnCancel(t *testing.T) {
	app := startApp(t, zmtp.Config{SocketType: "PAIR"})
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: app.addr,
	}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Serve(ctx, ln) }()
	client := dial(t, ln.Addr().String(), zmtp.Config{SocketType: "PAIR"})
	server := app.accept(t)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
	for _, c := range []*zmtp.Conn{client, server} {
		if _, err := c.ReadFrame(nil); err == nil {
			t.Error("a session survived the shutdown")
		}
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

func TestServeRequiresConfiguration(t *testing.T) {
	tests := []struct {
		name  string
		serve func(context.Context, net.Listener) error
	}{
		{"inbound without mechanism", (&Inbound{AppAddr: "127.0.0.1:1"}).Serve},
		{"inbound without app", (&Inbound{Network: zmtp.Config{Mechanism: zmtp.NewNullServer(nil, "")}}).Serve},
		{"outbound without mechanism", (&Outbound{ServerAddr: "127.0.0.1:1"}).Serve},
		{"outbound without server", (&Outbound{NewMechanism: func() (zmtp.Mechanism, error) { return zmtp.NewNullClient(), nil }}).Serve},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			if err := tt.serve(context.Background(), ln); err == nil {
				t.Fatal("Serve accepted an incomplete route")
			}
			if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				t.Error("listener left open")
			}
		})
	}
}

func TestSubscriptionTranslation(t *testing.T) {
	t.Run("3.0 subscriber to 3.1 publisher", func(t *testing.T) {
		app := startApp(t, zmtp.Config{SocketType: "PUB"})
		outAddr, _ := nullChain(t, app)
		sub := dialRaw30(t, outAddr, "SUB")
		pub := app.accept(t)
		sub.writeFrame(t, 0, []byte("\x01weather"))
		f := readFrame(t, pub)
		cmd, err := zmtp.ParseCommand(f.Payload)
		if f.Flags&zmtp.FlagCommand == 0 || err != nil || cmd.Name != zmtp.CmdSubscribe || string(cmd.Body) != "weather" {
			t.Fatalf("publisher got flags %v payload %q; want SUBSCRIBE weather", f.Flags, f.Payload)
		}
		sub.writeFrame(t, 0, []byte("\x00weather"))
		f = readFrame(t, pub)
		cmd, err = zmtp.ParseCommand(f.Payload)
		if err != nil || cmd.Name != zmtp.CmdCancel || string(cmd.Body) != "weather" {
			t.Fatalf("publisher got %q; want CANCEL weather", f.Payload)
		}
		// Messages flow the other way unchanged.
		if err := pub.WriteMessage([]byte("weather"), []byte("sunny")); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"weather", "sunny"} {
			if got := sub.readFrame(t); string(got.Payload) != want {
				t.Fatalf("subscriber got %q, want %q", got.Payload, want)
			}
		}
	})
	t.Run("3.1 subscriber to 3.0 publisher", func(t *testing.T) {
		// The raw 3.0 publisher is the application; the inbound side dials it.
		ln := listen(t)
		pubCh := make(chan *rawPeer, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			pubCh <- handshakeRaw30(t, nc, "PUB")
		}()
		in := &Inbound{
			Route:   "in",
			Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
			AppAddr: ln.Addr().String(),
		}
		sub := dial(t, serveRoute(t, in.Serve), zmtp.Config{SocketType: "SUB"})
		var pub *rawPeer
		select {
		case pub = <-pubCh:
		case <-time.After(testTimeout):
			t.Fatal("no connection at the 3.0 publisher")
		}
		if err := sub.WriteCommand(zmtp.SubscribeCommand([]byte("news"))); err != nil {
			t.Fatal(err)
		}
		if f := pub.readFrame(t); f.Flags != 0 || string(f.Payload) != "\x01news" {
			t.Fatalf("3.0 publisher got flags %v %q; want the message \\x01news", f.Flags, f.Payload)
		}
		if err := sub.WriteCommand(zmtp.CancelCommand([]byte("news"))); err != nil {
			t.Fatal(err)
		}
		if f := pub.readFrame(t); string(f.Payload) != "\x00news" {
			t.Fatalf("3.0 publisher got %q; want \\x00news", f.Payload)
		}
	})
}

func TestCloseWhere(t *testing.T) {
	var r registry
	mk := func(key string) *session {
		s := &session{net: closedConn(t), app: closedConn(t)}
		if key != "" {
			s.clientKey = []byte(key)
		}
		return s
	}
	a, b, none := mk("alice"), mk("bob"), mk("")
	for _, s := range []*session{a, b, none} {
		if ok, _ := r.add(s); !ok {
			t.Fatal("add refused")
		}
	}
	isBob := func(k []byte) bool { return string(k) == "bob" }
	if n := r.closeWhere(isBob); n != 1 {
		t.Fatalf("closeWhere closed %d, want 1", n)
	}
	if n := r.closeWhere(isBob); n != 0 {
		t.Fatalf("a second sweep closed %d, want 0", n)
	}
	// A session whose handshake began before a sweep is checked on
	// registration; one that began after is not.
	late := mk("bob")
	late.gen = r.generation() - 1
	if ok, revoked := r.add(late); ok || !revoked {
		t.Fatalf("add(late) = %v, %v; want refused as revoked", ok, revoked)
	}
	fresh := mk("bob")
	fresh.gen = r.generation()
	if ok, _ := r.add(fresh); !ok {
		t.Fatal("a session that began after the sweep was refused")
	}
	r.closeAll()
	if ok, _ := r.add(mk("carol")); ok {
		t.Fatal("add accepted after closeAll")
	}
}

// closedConn returns an established zmtp connection over a pipe, closed at
// cleanup.
func closedConn(t *testing.T) *zmtp.Conn {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if c, err := zmtp.NewConn(ctx, b, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "PAIR"}); err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	c, err := zmtp.NewConn(ctx, a, &zmtp.Config{Mechanism: zmtp.NewNullServer(nil, ""), SocketType: "PAIR"})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRelaySteadyStateDoesNotAllocate checks that relaying a stream of
// frames allocates (next to) nothing per frame.
func TestRelaySteadyStateDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over many messages")
	}
	app := startApp(t, zmtp.Config{SocketType: "PULL"})
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: app.addr,
	}
	client := dial(t, serveRoute(t, in.Serve), zmtp.Config{SocketType: "PUSH"})
	server := app.accept(t)

	payload := bytes.Repeat([]byte("x"), 200)
	const n = 20000
	run := func() {
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 0, 1024)
			for i := 0; i < n; i++ {
				f, err := server.ReadFrame(buf[:0])
				if err != nil {
					done <- err
					return
				}
				buf = f.Payload[:0]
			}
			done <- nil
		}()
		for i := 0; i < n; i++ {
			if err := client.WriteFrame(0, payload); err != nil {
				t.Fatal(err)
			}
			if i%64 == 63 {
				if err := client.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(testTimeout):
			t.Fatal("messages did not arrive")
		}
	}
	run() // warm up: buffers grow to their working size
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run()
	runtime.ReadMemStats(&after)
	perFrame := float64(after.Mallocs-before.Mallocs) / n
	if perFrame > 0.05 {
		t.Errorf("%.3f allocations per relayed frame, want none", perFrame)
	}
}

// BenchmarkRelay measures relaying 64-byte messages through an inbound
// route with NULL on both sides.
func BenchmarkRelay(b *testing.B) {
	app := startApp(b, zmtp.Config{SocketType: "PULL"})
	in := &Inbound{
		Route:   "in",
		Network: zmtp.Config{Mechanism: zmtp.NewNullServer(userAuth("alice"), "")},
		AppAddr: app.addr,
	}
	client := dial(b, serveRoute(b, in.Serve), zmtp.Config{SocketType: "PUSH"})
	server := app.accept(b)
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			f, err := server.ReadFrame(buf[:0])
			if err != nil {
				done <- err
				return
			}
			buf = f.Payload[:0]
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if err := client.WriteFrame(0, payload); err != nil {
			b.Fatal(err)
		}
		if i%128 == 127 {
			_ = client.Flush()
		}
	}
	_ = client.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
