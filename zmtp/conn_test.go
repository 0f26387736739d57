package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
	}{
		{"nil", nil},
		{"no mechanism", &Config{SocketType: "REQ"}},
		{"no socket type", &Config{Mechanism: NewNullClient()}},
		{"unknown socket type", &Config{Mechanism: NewNullClient(), SocketType: "STREAM"}},
		{"identity too long", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", Identity: make([]byte, 256)}},
		{"identity starts with zero", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", Identity: []byte{0, 1}}},
		{"property repeats Socket-Type", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", Properties: Metadata{{Name: "socket-type"}}}},
		{"bad property name", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", Properties: Metadata{{Name: "has space"}}}},
		{"negative heartbeat", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", HeartbeatInterval: -1}},
		{"ttl too long", &Config{Mechanism: NewNullClient(), SocketType: "DEALER", HeartbeatTTL: 2 * MaxPingTTL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			defer b.Close()
			if _, err := NewConn(context.Background(), a, tt.cfg); err == nil {
				t.Fatal("accepted")
			}
			// NewConn closed a on failure.
			if _, err := a.Write([]byte{0}); err == nil {
				t.Fatal("net.Conn left open after failure")
			}
		})
	}
}

func TestLocalMetadataAnnounced(t *testing.T) {
	tests := []struct {
		socketType string
		identity   []byte
		wantID     bool
	}{
		{"DEALER", nil, true}, // REQ, DEALER, ROUTER always announce one, as libzmq
		{"REQ", []byte("r"), true},
		{"PUSH", nil, false},
		{"PUSH", []byte("p"), true},
	}
	for _, tt := range tests {
		cfg := Config{Mechanism: NewNullClient(), SocketType: strings.ToLower(tt.socketType), Identity: tt.identity}
		md, err := cfg.localMetadata()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := md.Get(PropSocketType); string(v) != tt.socketType {
			t.Errorf("%s: Socket-Type %q", tt.socketType, v)
		}
		id, ok := md.Get(PropIdentity)
		if ok != tt.wantID || !bytes.Equal(id, tt.identity) {
			t.Errorf("%s: Identity %q %v", tt.socketType, id, ok)
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	plainServer := mustPlainServer(t, passwordAuth())
	tests := []struct {
		name       string
		client     *Config
		server     *Config
		wantClient error
		wantServer error
	}{
		{"socket types", &Config{Mechanism: NewNullClient(), SocketType: "PUB"}, &Config{Mechanism: NewNullServer(nil, ""), SocketType: "PULL"}, ErrSocketType, ErrSocketType},
		{"mechanisms", &Config{Mechanism: NewNullClient(), SocketType: "REQ"}, &Config{Mechanism: plainServer, SocketType: "REP"}, ErrMechanismMismatch, ErrMechanismMismatch},
		{"two PLAIN servers", &Config{Mechanism: plainServer, SocketType: "REQ"}, &Config{Mechanism: plainServer, SocketType: "REP"}, ErrRoleMismatch, ErrRoleMismatch},
		// libzmq never sets as-server, so two clients meet in the handshake.
		{"two PLAIN clients", &Config{Mechanism: mustPlainClient(t, "a", "b"), SocketType: "REQ"}, &Config{Mechanism: mustPlainClient(t, "a", "b"), SocketType: "REP"}, ErrProtocol, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			ra, rb := handshakePair(t, a, b, tt.client, tt.server)
			if !errors.Is(ra.err, tt.wantClient) || !errors.Is(rb.err, tt.wantServer) {
				t.Fatalf("client: %v\nserver: %v", ra.err, rb.err)
			}
		})
	}
}

func TestHandshakeContextCancel(t *testing.T) {
	a, b := tcpPair(t)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := NewConn(ctx, a, &Config{Mechanism: NewNullClient(), SocketType: "REQ"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	a, b := tcpPair(t)
	defer b.Close()
	start := time.Now()
	_, err := NewConn(context.Background(), a, &Config{Mechanism: NewNullClient(), SocketType: "REQ", HandshakeTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("err = %v, want ErrHandshakeTimeout", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timeout after %v", d)
	}
}

func TestConnSizeLimits(t *testing.T) {
	tests := []struct {
		name   string
		frames [][]byte // raw frames the peer sends
		want   error
	}{
		{"frame over limit", [][]byte{AppendFrameHeader(nil, 0, 1<<30)}, ErrFrameTooLarge},
		{"command over limit", [][]byte{AppendFrameHeader(nil, FlagCommand, 1<<30)}, ErrFrameTooLarge},
		{"message over limit", [][]byte{
			AppendFrame(nil, FlagMore, make([]byte, 600<<10)),
			AppendFrame(nil, FlagMore, make([]byte, 300<<10)),
			AppendFrameHeader(nil, 0, 200<<10),
		}, ErrMessageTooLarge},
		{"reserved flags", [][]byte{{0x10, 0}}, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			raw := newRawPeer(t, b)
			done := make(chan struct{})
			go func() {
				defer close(done)
				raw.nullHandshake("PUSH", 1)
				for _, f := range tt.frames {
					raw.write(f)
				}
			}()
			c, err := NewConn(context.Background(), a, &Config{Mechanism: NewNullClient(), SocketType: "PULL",
				MaxFrameSize: 1 << 20, MaxMessageSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			<-done
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var rerr error
			for rerr == nil {
				_, rerr = c.ReadFrame(nil)
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(rerr, tt.want) {
				t.Fatalf("err = %v, want %v", rerr, tt.want)
			}
			// The refused frame was never allocated (the accepted ones of
			// the message case take 900 KiB).
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<20 {
				t.Fatalf("allocated %d bytes while refusing", grew)
			}
			// The connection was closed: the peer sees EOF.
			_ = raw.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadAll(raw.br); err != nil {
				t.Fatalf("peer read: %v (want EOF)", err)
			}
		})
	}
}

func TestReadFrameReturnsCommands(t *testing.T) {
	client, server := mustPair(t, true,
		&Config{Mechanism: NewNullClient(), SocketType: "SUB"},
		&Config{Mechanism: NewNullServer(nil, ""), SocketType: "XPUB"})
	go func() {
		_ = client.WriteCommand(SubscribeCommand([]byte("news")))
		_ = client.WriteCommand(Command{Name: "X-CUSTOM", Body: []byte{1, 2}})
		_ = client.WriteMessage([]byte("data"))
	}()
	var got []string
	for len(got) < 3 {
		f, err := server.ReadFrame(nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Flags&FlagCommand != 0 {
			cmd, err := ParseCommand(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cmd.Name+":"+string(cmd.Body))
		} else {
			got = append(got, "data:"+string(f.Payload))
		}
	}
	if want := "SUBSCRIBE:news|X-CUSTOM:\x01\x02|data:data"; strings.Join(got, "|") != want {
		t.Fatalf("got %q", got)
	}
}

func TestReadMessageSkipsCommands(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	go func() {
		raw.nullHandshake("PUSH", 1)
		var w []byte
		w = AppendFrame(w, FlagMore, []byte("one"))
		sub, _ := AppendCommand(nil, SubscribeCommand([]byte("x")))
		w = AppendFrame(w, FlagCommand, sub)
		ping, _ := PingCommand(0, []byte("p"))
		pingb, _ := AppendCommand(nil, ping)
		w = AppendFrame(w, FlagCommand, pingb)
		w = AppendFrame(w, 0, []byte("two"))
		raw.write(w)
	}()
	c, err := NewConn(context.Background(), a, &Config{Mechanism: NewNullClient(), SocketType: "PULL"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg, err := c.ReadMessage()
	if err != nil || len(msg) != 2 || string(msg[0]) != "one" || string(msg[1]) != "two" {
		t.Fatalf("got %q, %v", msg, err)
	}
	// The interleaved PING was answered.
	f, err := raw.readFrame()
	if cmd, _ := ParseCommand(f.Payload); err != nil || cmd.Name != CmdPong || string(cmd.Body) != "p" {
		t.Fatalf("peer got %q, %v", f.Payload, err)
	}
}

func TestPeerErrorAfterHandshake(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	go func() {
		raw.nullHandshake("PAIR", 1)
		e := ErrorCommand("going away")
		raw.writeCommand(e.Name, e.Body)
	}()
	c, err := NewConn(context.Background(), a, &Config{Mechanism: NewNullClient(), SocketType: "PAIR"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.ReadFrame(nil)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Reason != "going away" {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseIdempotentAndErrClosed(t *testing.T) {
	client, server := mustPair(t, false,
		&Config{Mechanism: NewNullClient(), SocketType: "PAIR"},
		&Config{Mechanism: NewNullServer(nil, ""), SocketType: "PAIR"})
	readErr := make(chan error, 1)
	go func() { _, err := client.ReadFrame(nil); readErr <- err }()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked read: %v", err)
	}
	if err := client.WriteMessage([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := server.ReadFrame(nil); !errors.Is(err, io.EOF) {
		t.Fatalf("peer read: %v", err)
	}
}

func TestWriteFrameFlags(t *testing.T) {
	client, server := mustPair(t, true,
		&Config{Mechanism: NewNullClient(), SocketType: "PAIR"},
		&Config{Mechanism: NewNullServer(nil, ""), SocketType: "PAIR"})
	if err := client.WriteFrame(FlagCommand|FlagMore, []byte("\x01X")); err == nil {
		t.Fatal("command with MORE accepted")
	}
	if err := client.WriteFrame(0x10, nil); err == nil {
		t.Fatal("reserved flag accepted")
	}
	for i := 0; i < 3; i++ {
		if err := client.WriteFrame(FlagMore, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.WriteFrame(0, nil); err != nil {
		t.Fatal(err)
	}
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := server.ReadMessage()
	if err != nil || len(msg) != 4 || len(msg[3]) != 0 {
		t.Fatalf("got %q %v", msg, err)
	}
	// Buffered reports what is already here: nothing left.
	if n := server.Buffered(); n != 0 {
		t.Fatalf("Buffered = %d", n)
	}
}

// --- a toy encrypting mechanism, to exercise the MESSAGE path a codec uses.

// sealMech is a test mechanism that runs a NULL-like READY exchange and
// returns a toy FrameCodec.
type sealMech struct {
	server bool
	closed *atomic.Int32
}

func (m sealMech) Name() string   { return "TESTSEAL" }
func (m sealMech) AsServer() bool { return m.server }
func (m sealMech) Handshake(ctx context.Context, rw CommandReadWriter, info HandshakeInfo) (*HandshakeResult, error) {
	res, err := NewNullClient().Handshake(ctx, rw, info)
	if err != nil {
		return nil, err
	}
	res.Codec = &toyCodec{closed: m.closed}
	return res, nil
}

// toyCodec "seals" a frame as flags byte, 8-byte counter, payload XOR 0x5A,
// and rejects counters that do not increase, like CURVE's nonces.
type toyCodec struct {
	sendN, recvN uint64
	closed       *atomic.Int32
}

func (c *toyCodec) SealedSize(n int) int { return 1 + 8 + n }
func (c *toyCodec) Seal(dst []byte, flags Flags, payload []byte) ([]byte, error) {
	c.sendN++
	dst = append(dst, byte(flags))
	dst = binary.BigEndian.AppendUint64(dst, c.sendN)
	for _, b := range payload {
		dst = append(dst, b^0x5A)
	}
	return dst, nil
}
func (c *toyCodec) Open(dst []byte, body []byte) (Flags, []byte, error) {
	if len(body) < 9 {
		return 0, nil, errors.New("short")
	}
	n := binary.BigEndian.Uint64(body[1:])
	if n <= c.recvN {
		return 0, nil, fmt.Errorf("counter %d not above %d", n, c.recvN)
	}
	c.recvN = n
	for _, b := range body[9:] {
		dst = append(dst, b^0x5A)
	}
	return Flags(body[0]), dst, nil
}
func (c *toyCodec) Close() { c.closed.Add(1) }

func TestCodecWrapsEveryFrame(t *testing.T) {
	var closed atomic.Int32
	a, b := tcpPair(t)
	ra, rb := handshakePair(t, a, b,
		&Config{Mechanism: sealMech{closed: &closed}, SocketType: "DEALER", HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 500 * time.Millisecond},
		&Config{Mechanism: sealMech{server: true, closed: &closed}, SocketType: "ROUTER", HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 500 * time.Millisecond})
	if ra.err != nil || rb.err != nil {
		t.Fatal(ra.err, rb.err)
	}
	client, server := ra.c, rb.c
	go func() {
		_ = client.WriteCommand(SubscribeCommand([]byte("t")))
		_ = client.WriteMessage([]byte("secret"), bytes.Repeat([]byte{7}, 300))
	}()
	f, err := server.ReadFrame(nil)
	if err != nil || f.Flags != FlagCommand || string(f.Payload) != "\x09SUBSCRIBEt" {
		t.Fatalf("command through codec: %+v %v", f, err)
	}
	msg, err := server.ReadMessage()
	if err != nil || string(msg[0]) != "secret" || len(msg[1]) != 300 {
		t.Fatalf("message through codec: %q %v", msg, err)
	}
	// PINGs travel sealed too and are answered: both sides stay up while
	// reading for a while.
	readErr := make(chan error, 2)
	go func() { _, err := client.ReadFrame(nil); readErr <- err }()
	go func() { _, err := server.ReadFrame(nil); readErr <- err }()
	select {
	case err := <-readErr:
		t.Fatalf("sealed heartbeats failed: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	client.Close()
	server.Close()
	if closed.Load() != 2 {
		t.Fatalf("Codec.Close called %d times, want 2", closed.Load())
	}
}

func TestCodecRefusesClearFrames(t *testing.T) {
	var closed atomic.Int32
	a, b := tcpPair(t)
	raw := newRawPeer(t, b)
	go func() {
		raw.write(rawGreeting(3, 1, "TESTSEAL", true))
		raw.readGreeting()
		ready, _ := ReadyCommand(Metadata{{Name: PropSocketType, Value: []byte("PAIR")}})
		raw.writeCommand(ready.Name, ready.Body)
		_, _ = raw.readFrame()
		raw.write(AppendFrame(nil, 0, []byte("clear text")))
	}()
	c, err := NewConn(context.Background(), a, &Config{Mechanism: sealMech{closed: &closed}, SocketType: "PAIR"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ReadFrame(nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}
