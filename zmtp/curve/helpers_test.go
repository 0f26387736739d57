package curve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// pipeEnd is one end of an in-memory zmtp.CommandReadWriter pair: what one
// side writes the other reads, in order. A hook may rewrite or drop (empty
// Name) each command written; every command written is recorded as sent.
type pipeEnd struct {
	in   <-chan zmtp.Command
	out  chan<- zmtp.Command
	hook func(zmtp.Command) zmtp.Command

	mu   sync.Mutex
	sent []zmtp.Command
}

var errPipeTimeout = errors.New("test pipe: nothing to read for 10 s")

func (p *pipeEnd) ReadCommand() (zmtp.Command, error) {
	select {
	case c, ok := <-p.in:
		if !ok {
			return zmtp.Command{}, io.EOF
		}
		return c, nil
	case <-time.After(10 * time.Second):
		return zmtp.Command{}, errPipeTimeout
	}
}

func (p *pipeEnd) WriteCommand(c zmtp.Command) error {
	c.Body = bytes.Clone(c.Body) // as on a wire: the writer may reuse its buffer
	p.mu.Lock()
	p.sent = append(p.sent, zmtp.Command{Name: c.Name, Body: bytes.Clone(c.Body)})
	p.mu.Unlock()
	if p.hook != nil {
		c = p.hook(c)
		if c.Name == "" {
			return nil
		}
	}
	p.out <- c
	return nil
}

// Sent returns the commands written so far.
func (p *pipeEnd) Sent() []zmtp.Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]zmtp.Command(nil), p.sent...)
}

// Find returns the first command named name that was written.
func (p *pipeEnd) Find(name string) (zmtp.Command, bool) {
	for _, c := range p.Sent() {
		if c.Name == name {
			return c, true
		}
	}
	return zmtp.Command{}, false
}

// newPipe returns two connected ends and a function that closes end a's
// writing side (b then reads io.EOF) and one that closes b's.
func newPipe() (a, b *pipeEnd, closeA, closeB func()) {
	ab := make(chan zmtp.Command, 16)
	ba := make(chan zmtp.Command, 16)
	a = &pipeEnd{in: ba, out: ab}
	b = &pipeEnd{in: ab, out: ba}
	return a, b, sync.OnceFunc(func() { close(ab) }), sync.OnceFunc(func() { close(ba) })
}

// outcome is what both sides of an in-memory handshake returned.
type outcome struct {
	client, server       *zmtp.HandshakeResult
	clientErr, serverErr error
	clientEnd, serverEnd *pipeEnd
}

// closeCodecs releases the session keys of both results.
func (o *outcome) closeCodecs() {
	for _, r := range []*zmtp.HandshakeResult{o.client, o.server} {
		if r != nil && r.Codec != nil {
			r.Codec.Close()
		}
	}
}

// handshakeOpts tune runHandshake.
type handshakeOpts struct {
	clientInfo, serverInfo zmtp.HandshakeInfo
	clientHook, serverHook func(zmtp.Command) zmtp.Command
	// afterHello runs in the server's pipe just before WELCOME is delivered.
	afterHello func()
}

// runHandshake runs client and server against each other over an in-memory
// pipe and returns both results.
func runHandshake(t testing.TB, client, server zmtp.Mechanism, o handshakeOpts) *outcome {
	t.Helper()
	ce, se, closeC, closeS := newPipe()
	ce.hook = o.clientHook
	se.hook = o.serverHook
	if o.afterHello != nil {
		inner := se.hook
		se.hook = func(c zmtp.Command) zmtp.Command {
			if c.Name == zmtp.CmdWelcome {
				o.afterHello()
			}
			if inner != nil {
				return inner(c)
			}
			return c
		}
	}
	if o.serverInfo.RemoteAddr == "" {
		o.serverInfo.RemoteAddr = "192.0.2.7:40000"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := &outcome{clientEnd: ce, serverEnd: se}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer closeS()
		out.server, out.serverErr = server.Handshake(ctx, se, o.serverInfo)
	}()
	go func() {
		defer wg.Done()
		defer closeC()
		out.client, out.clientErr = client.Handshake(ctx, ce, o.clientInfo)
	}()
	wg.Wait()
	t.Cleanup(out.closeCodecs)
	return out
}

// authLog is an Authenticator that answers with result (or calls decide) and
// records every request.
type authLog struct {
	mu       sync.Mutex
	requests []zmtp.AuthRequest
	result   zmtp.AuthResult
	decide   func(*zmtp.AuthRequest) zmtp.AuthResult
}

func (a *authLog) Authenticate(_ context.Context, req *zmtp.AuthRequest) zmtp.AuthResult {
	a.mu.Lock()
	a.requests = append(a.requests, *req)
	a.mu.Unlock()
	if a.decide != nil {
		return a.decide(req)
	}
	return a.result
}

func (a *authLog) Requests() []zmtp.AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]zmtp.AuthRequest(nil), a.requests...)
}

func allow(userID string) *authLog {
	return &authLog{result: zmtp.AuthResult{StatusCode: zmtp.StatusOK, UserID: userID}}
}

func mustKeyPair(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func mustServer(t testing.TB, auth zmtp.Authenticator, keys ...KeyPair) *Server {
	t.Helper()
	s, err := NewServer(ServerConfig{Keys: keys, Authenticator: auth, Domain: "test-domain"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustClient(t testing.TB, key KeyPair, server PublicKey) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Key: key, ServerKey: server})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dealerInfo() zmtp.HandshakeInfo {
	return zmtp.HandshakeInfo{Local: zmtp.Metadata{{Name: zmtp.PropSocketType, Value: []byte("DEALER")}}}
}

func routerInfo() zmtp.HandshakeInfo {
	return zmtp.HandshakeInfo{Local: zmtp.Metadata{{Name: zmtp.PropSocketType, Value: []byte("ROUTER")}}}
}

// flipByte returns a copy of b with the byte at i (negative: from the end)
// inverted.
func flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0xff
	return b
}
