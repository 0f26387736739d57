package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestNullRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 255, 256, 70000, 1 << 20}
	for _, overTCP := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", overTCP), func(t *testing.T) {
			client, server := mustPair(t, overTCP,
				&Config{Mechanism: NewNullClient(), SocketType: "DEALER", Identity: []byte("client-1"),
					Properties: Metadata{{Name: "X-App", Value: []byte("test")}}},
				&Config{Mechanism: NewNullServer(nil, ""), SocketType: "ROUTER"})

			p := server.Peer()
			if p.SocketType != "DEALER" || string(p.Identity) != "client-1" || p.Mechanism != "NULL" || p.Minor != 1 {
				t.Fatalf("server sees peer %+v", p)
			}
			if v, _ := p.Metadata.Get("x-app"); string(v) != "test" {
				t.Fatalf("X-App = %q", v)
			}
			if st := client.Peer().SocketType; st != "ROUTER" {
				t.Fatalf("client sees socket type %q", st)
			}
			for _, n := range sizes {
				msg := [][]byte{[]byte("head"), bytes.Repeat([]byte{'x'}, n)}
				errc := make(chan error, 1)
				go func() { errc <- client.WriteMessage(msg...) }()
				got, err := server.ReadMessage()
				if err != nil {
					t.Fatalf("size %d: %v", n, err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("size %d: write: %v", n, err)
				}
				if len(got) != 2 || !bytes.Equal(got[0], msg[0]) || !bytes.Equal(got[1], msg[1]) {
					t.Fatalf("size %d: got %d parts", n, len(got))
				}
			}
		})
	}
}

func TestNullLocalFuncOrdering(t *testing.T) {
	// The server's LocalFunc sees the client's READY before it answers; a
	// client with LocalFunc against a plain server works too.
	var mu sync.Mutex
	var saw []string
	serverCfg := &Config{
		Mechanism: NewNullServer(nil, ""),
		LocalMetadata: func(peer *HandshakeResult) (Metadata, error) {
			if peer == nil {
				return nil, errors.New("NULL must pass the peer's READY")
			}
			st, _ := peer.Peer.Get(PropSocketType)
			mu.Lock()
			saw = append(saw, string(st))
			mu.Unlock()
			// Present the "other end" as a REP, whatever we are.
			return Metadata{{Name: PropSocketType, Value: []byte("REP")}}, nil
		},
	}
	client, server := mustPair(t, false, &Config{Mechanism: NewNullClient(), SocketType: "REQ"}, serverCfg)
	if got := client.Peer().SocketType; got != "REP" {
		t.Fatalf("client sees %q, want REP", got)
	}
	if got := server.Peer().SocketType; got != "REQ" {
		t.Fatalf("server sees %q", got)
	}
	if len(saw) != 1 || saw[0] != "REQ" {
		t.Fatalf("LocalFunc saw %v", saw)
	}
}

func TestNullLocalFuncError(t *testing.T) {
	a, b := tcpPair(t)
	ra, rb := handshakePair(t, a, b,
		&Config{Mechanism: NewNullClient(), SocketType: "REQ"},
		&Config{Mechanism: NewNullServer(nil, ""), LocalMetadata: func(*HandshakeResult) (Metadata, error) {
			return nil, errors.New("no route for this peer")
		}})
	if rb.err == nil || !strings.Contains(rb.err.Error(), "no route for this peer") {
		t.Fatalf("server error = %v", rb.err)
	}
	var pe *PeerError
	if !errors.As(ra.err, &pe) || !strings.Contains(pe.Reason, "no route for this peer") {
		t.Fatalf("client error = %v, want the server's ERROR", ra.err)
	}
}

func TestNullAuthenticator(t *testing.T) {
	tests := []struct {
		name    string
		result  AuthResult
		wantErr bool
	}{
		{"allow", AuthResult{StatusCode: StatusOK, UserID: "alice", Metadata: Metadata{{Name: "X-Role", Value: []byte("admin")}}}, false},
		{"deny", AuthResult{StatusCode: StatusDenied, StatusText: "address not allowed"}, true},
		{"deny without text", AuthResult{StatusCode: StatusDenied}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *AuthRequest
			auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) AuthResult {
				got = r
				return tt.result
			})
			a, b := tcpPair(t)
			ra, rb := handshakePair(t, a, b,
				&Config{Mechanism: NewNullClient(), SocketType: "PUSH"},
				&Config{Mechanism: NewNullServer(auth, "global"), SocketType: "PULL"})
			if got == nil || got.Mechanism != "NULL" || got.Domain != "global" || !strings.HasPrefix(got.Address, "127.0.0.1:") {
				t.Fatalf("authenticator got %+v", got)
			}
			if !tt.wantErr {
				if ra.err != nil || rb.err != nil {
					t.Fatalf("errors: %v, %v", ra.err, rb.err)
				}
				p := rb.c.Peer()
				if p.UserID != "alice" {
					t.Fatalf("UserID = %q", p.UserID)
				}
				if v, _ := p.AuthMetadata.Get("X-Role"); string(v) != "admin" {
					t.Fatalf("AuthMetadata = %v", p.AuthMetadata)
				}
				return
			}
			if !errors.Is(rb.err, ErrAuthFailed) {
				t.Fatalf("server error = %v", rb.err)
			}
			var pe *PeerError
			if !errors.As(ra.err, &pe) || pe.Reason != AuthErrorReason(tt.result) {
				t.Fatalf("client error = %v, want ERROR %q", ra.err, AuthErrorReason(tt.result))
			}
		})
	}
}
