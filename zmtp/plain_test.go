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

const testPassword = "s3cret-Pa55word"

// passwordAuth allows user "alice" with testPassword.
func passwordAuth() Authenticator {
	return AuthenticatorFunc(func(_ context.Context, r *AuthRequest) AuthResult {
		if r.Mechanism == "PLAIN" && r.Username == "alice" && r.Password == testPassword {
			return AuthResult{StatusCode: StatusOK, UserID: "user:alice"}
		}
		return AuthResult{StatusCode: StatusDenied, StatusText: "invalid username or password"}
	})
}

func TestPlainServerNeedsAuthenticator(t *testing.T) {
	if _, err := NewPlainServer(nil, ""); !errors.Is(err, ErrNoAuthenticator) {
		t.Fatalf("NewPlainServer(nil) error = %v", err)
	}
	// A zero PlainServer built without the constructor refuses too.
	a, b := tcpPair(t)
	ra, rb := handshakePair(t, a, b,
		&Config{Mechanism: mustPlainClient(t, "alice", testPassword), SocketType: "REQ"},
		&Config{Mechanism: &PlainServer{}, SocketType: "REP"})
	if !errors.Is(rb.err, ErrNoAuthenticator) || ra.err == nil {
		t.Fatalf("errors: client %v, server %v", ra.err, rb.err)
	}
}

func mustPlainClient(t *testing.T, user, pass string) *PlainClient {
	t.Helper()
	m, err := NewPlainClient(user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustPlainServer(t *testing.T, auth Authenticator) *PlainServer {
	t.Helper()
	m, err := NewPlainServer(auth, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPlainHandshake(t *testing.T) {
	tests := []struct {
		name, user, pass string
		wantErr          bool
	}{
		{"good", "alice", testPassword, false},
		{"wrong password", "alice", "guess", true},
		{"unknown user", "mallory", testPassword, true},
		{"empty credentials", "", "", true},
	}
	for _, tt := range tests {
		for _, overTCP := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tcp=%v", tt.name, overTCP), func(t *testing.T) {
				var a, b = tcpPairOrPipe(t, overTCP)
				ra, rb := handshakePair(t, a, b,
					&Config{Mechanism: mustPlainClient(t, tt.user, tt.pass), SocketType: "DEALER"},
					&Config{Mechanism: mustPlainServer(t, passwordAuth()), SocketType: "ROUTER"})
				for _, err := range []error{ra.err, rb.err} {
					if err != nil && strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
						t.Fatalf("error reveals the password: %v", err)
					}
				}
				if tt.wantErr {
					var pe *PeerError
					if !errors.As(ra.err, &pe) || pe.Reason != "400" {
						t.Fatalf("client error = %v", ra.err)
					}
					if !errors.Is(rb.err, ErrAuthFailed) {
						t.Fatalf("server error = %v", rb.err)
					}
					return
				}
				if ra.err != nil || rb.err != nil {
					t.Fatalf("errors: %v, %v", ra.err, rb.err)
				}
				p := rb.c.Peer()
				if p.Username != "alice" || p.UserID != "user:alice" || p.SocketType != "DEALER" || p.Mechanism != "PLAIN" {
					t.Fatalf("server sees %+v", p)
				}
				if got := ra.c.Peer().SocketType; got != "ROUTER" {
					t.Fatalf("client sees %q", got)
				}
				go func() { _ = ra.c.WriteMessage([]byte("a"), bytes.Repeat([]byte("b"), 256)) }()
				msg, err := rb.c.ReadMessage()
				if err != nil || len(msg) != 2 || len(msg[1]) != 256 {
					t.Fatalf("message %v, %v", msg, err)
				}
			})
		}
	}
}

func tcpPairOrPipe(t *testing.T, overTCP bool) (netConn, netConn) {
	if overTCP {
		return tcpPair(t)
	}
	return pipePair()
}

func TestPlainLocalFuncOrdering(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	}
	auth := AuthenticatorFunc(func(ctx context.Context, r *AuthRequest) AuthResult {
		record("authenticate")
		return passwordAuth().Authenticate(ctx, r)
	})
	serverCfg := &Config{
		Mechanism: mustPlainServer(t, auth),
		LocalMetadata: func(peer *HandshakeResult) (Metadata, error) {
			if peer == nil {
				return nil, errors.New("PLAIN server must pass the result")
			}
			st, _ := peer.Peer.Get(PropSocketType)
			record(fmt.Sprintf("server LocalFunc user=%s userid=%s peer=%s", peer.Username, peer.UserID, st))
			return Metadata{{Name: PropSocketType, Value: []byte("ROUTER")}, {Name: PropUserID, Value: []byte(peer.UserID)}}, nil
		},
	}
	clientCfg := &Config{
		Mechanism: mustPlainClient(t, "alice", testPassword),
		LocalMetadata: func(peer *HandshakeResult) (Metadata, error) {
			record(fmt.Sprintf("client LocalFunc nil=%v", peer == nil))
			return Metadata{{Name: PropSocketType, Value: []byte("DEALER")}}, nil
		},
	}
	client, _ := mustPair(t, true, clientCfg, serverCfg)
	want := []string{"authenticate", "client LocalFunc nil=true", "server LocalFunc user=alice userid=user:alice peer=DEALER"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", events, want)
	}
	if v, _ := client.Peer().Metadata.Get("user-id"); string(v) != "user:alice" {
		t.Fatalf("client sees User-Id %q", v)
	}
}

func TestPlainNeverShowsPassword(t *testing.T) {
	m := mustPlainClient(t, "alice", testPassword)
	req := AuthRequest{Username: "alice", Password: testPassword, Mechanism: "PLAIN"}
	for _, s := range []string{
		fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s", m, m, m, m),
		fmt.Sprint(req), fmt.Sprintf("%v %+v %#v", req, &req, req),
	} {
		if strings.Contains(s, testPassword) {
			t.Fatalf("formatted value shows the password: %s", s)
		}
	}
	if _, _, err := parsePlainHello(appendPlainHello(nil, "alice", testPassword)[:10]); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("truncated HELLO error = %v", err)
	}
}

func TestPlainCodecs(t *testing.T) {
	long := strings.Repeat("u", 255)
	tests := []struct {
		name       string
		body       []byte
		user, pass string
		wantErr    bool
	}{
		{"empty fields", []byte{0, 0}, "", "", false},
		{"both", appendPlainHello(nil, "bob", "pw"), "bob", "pw", false},
		{"max lengths", appendPlainHello(nil, long, long), long, long, false},
		{"empty body", nil, "", "", true},
		{"no password length", []byte{3, 'b', 'o', 'b'}, "", "", true},
		{"short password", []byte{1, 'a', 5, 'x'}, "", "", true},
		{"trailing bytes", []byte{1, 'a', 1, 'x', 'y'}, "", "", true},
		{"username overruns", []byte{200, 'a'}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p, err := parsePlainHello(tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (u != tt.user || p != tt.pass) {
				t.Fatalf("got %q/%q", u, p)
			}
		})
	}
	if err := parsePlainWelcome(nil); err != nil {
		t.Fatal(err)
	}
	if err := parsePlainWelcome([]byte{1}); err == nil {
		t.Fatal("WELCOME with a body accepted")
	}
	if _, err := NewPlainClient(strings.Repeat("u", 256), ""); err == nil {
		t.Fatal("username of 256 bytes accepted")
	}
	if _, err := parsePlainInitiate([]byte{0}); err == nil {
		t.Fatal("INITIATE with an empty property name accepted")
	}
}

func TestPlainClientReadsLibzmqError(t *testing.T) {
	// libzmq 4.3's PLAIN server sends ERROR as "^RROR" + reason (see
	// libzmqPlainError); the bytes below are what it sent in the interop
	// test. The correct form works too.
	for _, wire := range [][]byte{
		[]byte("\x04\x09^RROR\x03400"),
		[]byte("\x04\x0a\x05ERROR\x03400"),
	} {
		a, b := tcpPair(t)
		raw := newRawPeer(t, b)
		go func() {
			raw.write(rawGreeting(3, 1, "PLAIN", false))
			raw.readGreeting()
			_, _ = raw.readFrame() // HELLO
			raw.write(wire)
		}()
		_, err := NewConn(context.Background(), a, &Config{Mechanism: mustPlainClient(t, "alice", "x"), SocketType: "DEALER"})
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Reason != "400" {
			t.Fatalf("%q: err = %v, want ERROR 400", wire, err)
		}
	}
}
