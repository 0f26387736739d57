package zmtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer accepts connections on 127.0.0.1 and echoes messages on each
// until it fails; the error that ended each connection is recorded by the
// client's address.
type echoServer struct {
	ln   net.Listener
	cfg  *Config
	mu   sync.Mutex
	errs map[string]error
	wg   sync.WaitGroup
}

func startEchoServer(t *testing.T, cfg *Config) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, cfg: cfg, errs: map[string]error{}}
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.record(nc.RemoteAddr().String(), s.serve(ctx, nc))
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) serve(ctx context.Context, nc net.Conn) error {
	c, err := NewConn(ctx, nc, s.cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		msg, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if err := c.WriteMessage(msg...); err != nil {
			return err
		}
	}
}

func (s *echoServer) record(addr string, err error) {
	s.mu.Lock()
	s.errs[addr] = err
	s.mu.Unlock()
}

// errFor waits briefly for the error that ended the connection from addr.
func (s *echoServer) errFor(addr string) error {
	for i := 0; i < 100; i++ {
		s.mu.Lock()
		err, ok := s.errs[addr]
		s.mu.Unlock()
		if ok {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("connection still open")
}

// plainHandshake completes a PLAIN client handshake by hand.
func (p *rawPeer) plainHandshake(user, pass, socketType string) {
	p.t.Helper()
	p.write(rawGreeting(3, 1, "PLAIN", false))
	p.readGreeting()
	p.writeCommand(CmdHello, appendPlainHello(nil, user, pass))
	p.expect(CmdWelcome)
	md, _ := AppendMetadata(nil, Metadata{{Name: PropSocketType, Value: []byte(socketType)}})
	p.writeCommand(CmdInitiate, md)
	p.expect(CmdReady)
}

func (p *rawPeer) expect(name string) {
	p.t.Helper()
	f, err := p.readFrame()
	if err != nil {
		p.t.Fatalf("raw peer waiting for %s: %v", name, err)
	}
	if c, err := ParseCommand(f.Payload); err != nil || c.Name != name {
		p.t.Fatalf("raw peer: expected %s, got %q %v", name, c.Name, err)
	}
}

func TestHostilePeersCostOneConnection(t *testing.T) {
	const handshakeTimeout = 300 * time.Millisecond
	srv := startEchoServer(t, &Config{
		Mechanism:        mustPlainServer(t, passwordAuth()),
		SocketType:       "ROUTER",
		HandshakeTimeout: handshakeTimeout,
		MaxFrameSize:     1 << 20,
		MaxMessageSize:   1 << 20,
	})
	addr := srv.ln.Addr().String()

	// A well-behaved client keeps round-tripping while the attacks run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good, err := Dial(ctx, "tcp://"+addr, &Config{Mechanism: mustPlainClient(t, "alice", testPassword), SocketType: "DEALER"})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	stopGood := make(chan struct{})
	goodDone := make(chan error, 1)
	var rounds int
	go func() {
		for {
			select {
			case <-stopGood:
				goodDone <- nil
				return
			default:
			}
			want := []byte{byte(rounds)}
			if err := good.WriteMessage(want); err != nil {
				goodDone <- err
				return
			}
			got, err := good.ReadMessage()
			if err != nil || len(got) != 1 || !bytes.Equal(got[0], want) {
				goodDone <- errors.Join(err, errors.New("bad echo"))
				return
			}
			rounds++
		}
	}()

	hello := func(p *rawPeer) {
		p.write(rawGreeting(3, 1, "PLAIN", false))
		p.readGreeting()
	}
	tests := []struct {
		name   string
		attack func(p *rawPeer)
		want   error
		// maxDelay bounds the time from the start of the attack to the
		// server closing the connection.
		maxDelay time.Duration
	}{
		{"garbage greeting", func(p *rawPeer) { p.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }, ErrBadGreeting, handshakeTimeout},
		{"ZMTP 2.0 greeting", func(p *rawPeer) { p.write(rawGreeting(1, 0, "", false)[:12]) }, ErrUnsupportedVersion, handshakeTimeout},
		{"ZMTP 4.0 greeting", func(p *rawPeer) { p.write(rawGreeting(4, 0, "PLAIN", false)) }, ErrUnsupportedVersion, handshakeTimeout},
		{"NULL against PLAIN", func(p *rawPeer) { p.write(rawGreeting(3, 1, "NULL", false)) }, ErrMechanismMismatch, handshakeTimeout},
		{"as-server client", func(p *rawPeer) { p.write(rawGreeting(3, 1, "PLAIN", true)) }, ErrRoleMismatch, handshakeTimeout},
		{"truncated HELLO body", func(p *rawPeer) {
			hello(p)
			p.writeCommand(CmdHello, []byte{5, 'a', 'l'}) // username claims 5 bytes
		}, ErrProtocol, handshakeTimeout},
		{"HELLO cut mid-frame", func(p *rawPeer) {
			hello(p)
			p.write([]byte{0x04, 40, 5, 'H', 'E', 'L'}) // then stall
		}, ErrHandshakeTimeout, 2 * handshakeTimeout},
		{"huge handshake command", func(p *rawPeer) {
			hello(p)
			p.write(AppendFrameHeader(nil, FlagCommand, 1<<40))
		}, ErrFrameTooLarge, handshakeTimeout},
		{"data frame during handshake", func(p *rawPeer) {
			hello(p)
			p.write(AppendFrame(nil, 0, []byte("early")))
		}, ErrProtocol, handshakeTimeout},
		{"frame over limit after handshake", func(p *rawPeer) {
			p.plainHandshake("alice", testPassword, "DEALER")
			p.write(AppendFrameHeader(nil, 0, 1<<40))
		}, ErrFrameTooLarge, handshakeTimeout},
		{"stall after greeting", func(p *rawPeer) { hello(p) }, ErrHandshakeTimeout, 2 * handshakeTimeout},
		{"silent from the start", func(p *rawPeer) {}, ErrHandshakeTimeout, 2 * handshakeTimeout},
		{"half a greeting", func(p *rawPeer) { p.write(rawGreeting(3, 1, "PLAIN", false)[:30]) }, ErrHandshakeTimeout, 2 * handshakeTimeout},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				return
			}
			defer nc.Close()
			start := time.Now()
			p := newRawPeer(t, nc)
			tt.attack(p)
			// Wait for the server to close: EOF or reset, not our deadline.
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, rerr := io.Copy(io.Discard, p.br)
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				t.Errorf("%s: server did not close the connection", tt.name)
				return
			}
			if d := time.Since(start); d > tt.maxDelay+time.Second {
				t.Errorf("%s: closed after %v, want within %v", tt.name, d, tt.maxDelay)
			}
			if err := srv.errFor(nc.LocalAddr().String()); !errors.Is(err, tt.want) {
				t.Errorf("%s: server error = %v, want %v", tt.name, err, tt.want)
			}
		}()
	}
	wg.Wait()
	close(stopGood)
	if err := <-goodDone; err != nil {
		t.Fatalf("well-behaved client failed during the attacks: %v", err)
	}
	if rounds == 0 {
		t.Fatal("well-behaved client made no round trip during the attacks")
	}
	t.Logf("well-behaved client made %d round trips during the attacks", rounds)
	// And the listener still serves new clients.
	again, err := Dial(ctx, addr, &Config{Mechanism: mustPlainClient(t, "alice", testPassword), SocketType: "DEALER"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.WriteMessage([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if msg, err := again.ReadMessage(); err != nil || string(msg[0]) != "after" {
		t.Fatalf("%q %v", msg, err)
	}
}
