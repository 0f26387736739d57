package zmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Seeds live in testdata/fuzz/<FuzzName>/ as well; the f.Add calls keep the
// essentials next to the code.

func FuzzGreeting(f *testing.F) {
	for _, g := range [][]byte{
		rawGreeting(3, 1, "NULL", false),
		rawGreeting(3, 0, "CURVE", true),
		rawGreeting(2, 0, "", false),
		[]byte("GET / HTTP/1.1\r\n"),
	} {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGreeting(data)
		// Reading in pieces agrees with parsing the whole, for any split.
		g2, err2 := readGreeting(iotest.OneByteReader(bytes.NewReader(data)))
		if len(data) >= greetingSize && (err == nil) != (err2 == nil) {
			t.Fatalf("ParseGreeting err %v, readGreeting err %v", err, err2)
		}
		if err != nil {
			return
		}
		if g2 != g {
			t.Fatalf("ParseGreeting %+v, readGreeting %+v", g, g2)
		}
		if g.Major != 3 || g.Mechanism == "" || len(g.Mechanism) > 20 {
			t.Fatalf("accepted %+v", g)
		}
		enc, err := AppendGreeting(nil, g.Mechanism, g.AsServer)
		if err != nil {
			t.Fatalf("cannot re-encode %+v: %v", g, err)
		}
		back, err := ParseGreeting(enc)
		if err != nil || back.Mechanism != g.Mechanism || back.AsServer != g.AsServer {
			t.Fatalf("round trip %+v -> %+v, %v", g, back, err)
		}
	})
}

// fuzzConn is an established NULL connection whose input is data, for
// fuzzing the data-phase reader without a handshake.
func fuzzConn(t *testing.T, data []byte, maxFrame, maxMsg int64) *Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() { _, _ = io.Copy(io.Discard, b) }()
	c := &Conn{
		nc:   a,
		cfg:  Config{MaxFrameSize: maxFrame, MaxMessageSize: maxMsg, SocketType: "PAIR", Mechanism: NewNullClient()},
		done: make(chan struct{}),
		peer: Peer{Minor: 1},
	}
	c.cr.r = bytes.NewReader(data)
	// One byte per read: every frame straddles refills.
	c.br = &readBuffer{src: iotest.OneByteReader(&c.cr)}
	c.bw = &writeBuffer{dst: io.Discard}
	c.ttlTimer = time.AfterFunc(time.Hour, func() {})
	c.ttlTimer.Stop()
	t.Cleanup(func() { c.ttlTimer.Stop() })
	return c
}

func FuzzFrame(f *testing.F) {
	var stream []byte
	stream = AppendFrame(stream, FlagMore, []byte("part"))
	stream = AppendFrame(stream, 0, bytes.Repeat([]byte("x"), 300))
	ping, _ := AppendCommand(nil, Command{Name: CmdPing, Body: []byte{0, 10, 'c'}})
	stream = AppendFrame(stream, FlagCommand, ping)
	sub, _ := AppendCommand(nil, SubscribeCommand([]byte("t")))
	stream = AppendFrame(stream, FlagCommand, sub)
	f.Add(stream)
	f.Add([]byte{0x02, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x05, 0})
	f.Add([]byte{0x04, 6, 5, 'E', 'R', 'R', 'O', 'R'})
	const limit = 1024
	f.Fuzz(func(t *testing.T, data []byte) {
		// The plain frame decoder: every frame within the limit, and the
		// frames re-encode to a stream that decodes the same.
		br := bufio.NewReader(bytes.NewReader(data))
		var frames []Frame
		for {
			fr, err := ReadFrameFrom(br, nil, limit)
			if err != nil {
				break
			}
			if len(fr.Payload) > limit || cap(fr.Payload) > limit {
				t.Fatalf("frame of %d bytes (cap %d) over the limit", len(fr.Payload), cap(fr.Payload))
			}
			frames = append(frames, fr)
		}
		var again []byte
		for _, fr := range frames {
			again = AppendFrame(again, fr.Flags, fr.Payload)
		}
		br = bufio.NewReader(bytes.NewReader(again))
		for i, want := range frames {
			got, err := ReadFrameFrom(br, nil, limit)
			if err != nil || got.Flags != want.Flags || !bytes.Equal(got.Payload, want.Payload) {
				t.Fatalf("frame %d: re-encoded %+v, decoded %+v, %v", i, want, got, err)
			}
		}

		// The connection's reader: limits, commands, PING handling.
		c := fuzzConn(t, data, limit, 2*limit)
		var msg int
		for {
			fr, err := c.ReadFrame(nil)
			if err != nil {
				if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMessageTooLarge) || errors.Is(err, ErrProtocol) ||
					errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return
				}
				var pe *PeerError
				if errors.As(err, &pe) {
					return
				}
				t.Fatalf("unexpected error kind: %v", err)
			}
			if len(fr.Payload) > limit {
				t.Fatalf("frame of %d bytes over the limit", len(fr.Payload))
			}
			if fr.Flags&FlagCommand != 0 {
				name, _, err := splitCommand(fr.Payload)
				if err != nil || string(name) == CmdPing || string(name) == CmdPong {
					t.Fatalf("command %q returned to the caller (%v)", fr.Payload, err)
				}
				continue
			}
			msg += len(fr.Payload)
			if msg > 2*limit {
				t.Fatalf("message of %d bytes over the limit", msg)
			}
			if fr.Flags&FlagMore == 0 {
				msg = 0
			}
		}
	})
}

func FuzzCommand(f *testing.F) {
	for _, c := range []Command{
		{Name: CmdReady, Body: []byte("\x0bSocket-Type\x00\x00\x00\x03PUB")},
		ErrorCommand("denied"),
		{Name: CmdPing, Body: []byte{0, 50, 'x'}},
		{Name: CmdPong, Body: []byte("x")},
		SubscribeCommand([]byte("topic")),
	} {
		b, _ := AppendCommand(nil, c)
		f.Add(b)
	}
	f.Add([]byte("^RROR\x03400"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCommand(data)
		if err != nil {
			return
		}
		back, err := AppendCommand(nil, c)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip %q -> %q, %v", data, back, err)
		}
		if reason, err := ParseError(c.Body); err == nil {
			if again, _ := ParseError(ErrorCommand(reason).Body); len(again) != len(reason) {
				t.Fatalf("ERROR reason %q re-encodes as %q", reason, again)
			}
		}
		if ttl, ctx, err := ParsePing(c.Body); err == nil {
			if ttl < 0 || ttl > MaxPingTTL || len(ctx) > MaxPingContext {
				t.Fatalf("PING ttl %v context %d", ttl, len(ctx))
			}
			if _, err := PongCommand(ctx); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = ParsePong(c.Body)
		if cmd, ok := SubscriptionMessage(c.Body); ok {
			if m, err := AppendSubscriptionMessage(nil, cmd); err != nil || !bytes.Equal(m, c.Body) {
				t.Fatalf("subscription %q -> %q, %v", c.Body, m, err)
			}
		}
		// An ERROR built from any text is valid.
		if _, err := ParseError(ErrorCommand(string(data)).Body); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzMetadata(f *testing.F) {
	for _, md := range []Metadata{
		{{Name: PropSocketType, Value: []byte("DEALER")}, {Name: PropIdentity}},
		{{Name: "X-Long", Value: bytes.Repeat([]byte("v"), 300)}},
	} {
		b, _ := AppendMetadata(nil, md)
		f.Add(b)
	}
	f.Add([]byte{0})
	f.Add([]byte{3, 'a', 'b', 'c', 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadata(data)
		if err != nil {
			return
		}
		if md.EncodedLen() != len(data) {
			t.Fatalf("EncodedLen %d for %d bytes", md.EncodedLen(), len(data))
		}
		back, err := AppendMetadata(nil, md)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip %q -> %q, %v", data, back, err)
		}
		for _, p := range md {
			for _, name := range []string{p.Name, strings.ToUpper(p.Name), strings.ToLower(p.Name)} {
				if v, ok := md.Get(name); !ok || !bytes.Equal(v, p.Value) {
					t.Fatalf("Get(%q) = %q, %v", name, v, ok)
				}
			}
		}
	})
}

func FuzzPlainCommands(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Add(appendPlainHello(nil, "alice", "secret"))
	f.Add([]byte("\x0bSocket-Type\x00\x00\x00\x06DEALER"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if u, p, err := parsePlainHello(data); err == nil {
			if back := appendPlainHello(nil, u, p); !bytes.Equal(back, data) {
				t.Fatalf("HELLO round trip %q -> %q", data, back)
			}
		}
		if err := parsePlainWelcome(data); (err == nil) != (len(data) == 0) {
			t.Fatalf("WELCOME %q: %v", data, err)
		}
		if md, err := parsePlainInitiate(data); err == nil {
			if back, err := AppendMetadata(nil, md); err != nil || !bytes.Equal(back, data) {
				t.Fatalf("INITIATE round trip %q -> %q, %v", data, back, err)
			}
		}
	})
}
