package zmtp

import (
	"context"
	"net"
	"testing"
	"time"
)

// result of one side's NewConn.
type connResult struct {
	c   *Conn
	err error
}

// handshakePair runs NewConn on both ends of a connected pair concurrently
// and returns both results. Established connections are closed at cleanup.
func handshakePair(t *testing.T, a, b net.Conn, ca, cb *Config) (connResult, connResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chA := make(chan connResult, 1)
	chB := make(chan connResult, 1)
	go func() { c, err := NewConn(ctx, a, ca); chA <- connResult{c, err} }()
	go func() { c, err := NewConn(ctx, b, cb); chB <- connResult{c, err} }()
	ra, rb := <-chA, <-chB
	for _, r := range []connResult{ra, rb} {
		if r.c != nil {
			c := r.c
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	return ra, rb
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// mustPair establishes a connection over net.Pipe or TCP, failing the test
// on any error.
func mustPair(t *testing.T, overTCP bool, ca, cb *Config) (*Conn, *Conn) {
	t.Helper()
	var a, b net.Conn
	if overTCP {
		a, b = tcpPair(t)
	} else {
		a, b = net.Pipe()
	}
	ra, rb := handshakePair(t, a, b, ca, cb)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake failed: client: %v; server: %v", ra.err, rb.err)
	}
	return ra.c, rb.c
}

// netConn abbreviates net.Conn in test helpers.
type netConn = net.Conn

// pipePair returns the two ends of a net.Pipe.
func pipePair() (net.Conn, net.Conn) { return net.Pipe() }
