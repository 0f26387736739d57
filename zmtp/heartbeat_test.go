package zmtp

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHeartbeatKeepsLiveConnection(t *testing.T) {
	hb := func(m Mechanism, st string) *Config {
		return &Config{Mechanism: m, SocketType: st, HeartbeatInterval: 30 * time.Millisecond,
			HeartbeatTimeout: 400 * time.Millisecond, HeartbeatTTL: 600 * time.Millisecond}
	}
	client, server := mustPair(t, true, hb(NewNullClient(), "PAIR"), hb(NewNullServer(nil, ""), "PAIR"))
	// Both sides read (so PINGs are answered) and see no data for 20
	// intervals and beyond the timeout and TTL; neither may time out.
	errs := make(chan error, 2)
	for _, c := range []*Conn{client, server} {
		go func() {
			f, err := c.ReadFrame(nil)
			if err == nil {
				_ = f
				err = errors.New("unexpected frame")
			}
			errs <- err
		}()
	}
	select {
	case err := <-errs:
		t.Fatalf("connection ended while heartbeating: %v", err)
	case <-time.After(800 * time.Millisecond):
	}
	if err := client.WriteMessage([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	// The server's reader returns the data frame (as "unexpected frame").
	if err := <-errs; err == nil || err.Error() != "unexpected frame" {
		t.Fatalf("server reader: %v", err)
	}
}

func TestHeartbeatDropsSilentPeer(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw.nullHandshake("PAIR", 1)
		// Then silence: no PONG, nothing.
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NewConn(ctx, a, &Config{Mechanism: NewNullClient(), SocketType: "PAIR",
		HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	start := time.Now()
	_, err = c.ReadFrame(nil)
	if !errors.Is(err, ErrHeartbeatTimeout) {
		t.Fatalf("ReadFrame error = %v, want ErrHeartbeatTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("silent peer dropped after %v", d)
	}
	// The raw peer saw our PINGs before we gave up.
	f, err := raw.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ParseCommand(f.Payload)
	if err != nil || cmd.Name != CmdPing {
		t.Fatalf("raw peer got %q %v, want PING", cmd.Name, err)
	}
}

func TestHeartbeatAnswersPingAndHonoursTTL(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw.nullHandshake("PAIR", 1)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// No heartbeats of our own: only the peer's TTL can end this.
	c, err := NewConn(ctx, a, &Config{Mechanism: NewNullClient(), SocketType: "PAIR"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	ping, _ := PingCommand(300*time.Millisecond, []byte("ctx-42"))
	raw.writeCommand(ping.Name, ping.Body)

	readErr := make(chan error, 1)
	start := time.Now()
	go func() { _, err := c.ReadFrame(nil); readErr <- err }()

	f, err := raw.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ParseCommand(f.Payload)
	if err != nil || cmd.Name != CmdPong || string(cmd.Body) != "ctx-42" {
		t.Fatalf("got %q %q %v, want PONG ctx-42", cmd.Name, cmd.Body, err)
	}
	err = <-readErr
	if !errors.Is(err, ErrHeartbeatTimeout) {
		t.Fatalf("ReadFrame error = %v, want ErrHeartbeatTimeout", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("TTL of 300ms enforced after %v", d)
	}
}

func TestHeartbeatTTLDisarmedByTraffic(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	done := make(chan struct{})
	go func() { defer close(done); raw.nullHandshake("PAIR", 1) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NewConn(ctx, a, &Config{Mechanism: NewNullClient(), SocketType: "PAIR"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	ping, _ := PingCommand(300*time.Millisecond, nil)
	raw.writeCommand(ping.Name, ping.Body)
	go func() {
		time.Sleep(30 * time.Millisecond)
		raw.write(AppendFrame(nil, 0, []byte("alive")))
	}()
	f, err := c.ReadFrame(nil)
	if err != nil || string(f.Payload) != "alive" {
		t.Fatalf("ReadFrame = %q, %v", f.Payload, err)
	}
	// Traffic after the PING disarmed the TTL: reading on past it is fine.
	go func() {
		time.Sleep(700 * time.Millisecond)
		raw.write(AppendFrame(nil, 0, []byte("later")))
	}()
	f, err = c.ReadFrame(nil)
	if err != nil || string(f.Payload) != "later" {
		t.Fatalf("ReadFrame = %q, %v", f.Payload, err)
	}
}

func TestHeartbeatNotSentToZMTP30Peer(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	done := make(chan struct{})
	go func() { defer close(done); raw.nullHandshake("PAIR", 0) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NewConn(ctx, a, &Config{Mechanism: NewNullClient(), SocketType: "PAIR",
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	if c.Peer().Minor != 0 {
		t.Fatalf("Minor = %d", c.Peer().Minor)
	}
	readErr := make(chan error, 1)
	go func() { _, err := c.ReadFrame(nil); readErr <- err }()
	_ = raw.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := raw.readFrame(); err == nil {
		t.Fatalf("ZMTP 3.0 peer received %+v", f)
	}
	select {
	case err := <-readErr:
		t.Fatalf("connection to a silent 3.0 peer ended: %v", err)
	default:
	}
}
