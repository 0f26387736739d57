package zmtp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCommandEncoding(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want []byte
	}{
		{"ready empty", Command{Name: "READY"}, []byte("\x05READY")},
		{"subscribe", SubscribeCommand([]byte("topic")), []byte("\x09SUBSCRIBEtopic")},
		{"cancel", CancelCommand(nil), []byte("\x06CANCEL")},
		{"error", ErrorCommand("bad"), []byte("\x05ERROR\x03bad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendCommand(nil, tt.cmd)
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			back, err := ParseCommand(got)
			if err != nil || back.Name != tt.cmd.Name || !bytes.Equal(back.Body, tt.cmd.Body) {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
	if _, err := AppendCommand(nil, Command{}); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := AppendCommand(nil, Command{Name: strings.Repeat("N", 256)}); err == nil {
		t.Fatal("256-byte name accepted")
	}
}

func TestParseCommandErrors(t *testing.T) {
	for _, in := range [][]byte{nil, {0}, {0, 'x'}, {5, 'R', 'E'}} {
		if _, err := ParseCommand(in); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestReadyCommand(t *testing.T) {
	md := Metadata{{Name: PropSocketType, Value: []byte("DEALER")}, {Name: PropIdentity}}
	cmd, err := ReadyCommand(md)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 37's worked example: the DEALER's READY body.
	want := []byte("\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00")
	if !bytes.Equal(cmd.Body, want) {
		t.Fatalf("READY body %q, want %q", cmd.Body, want)
	}
	if _, err := ReadyCommand(Metadata{{Name: "bad name"}}); err == nil {
		t.Fatal("invalid property name accepted")
	}
}

func TestErrorCommand(t *testing.T) {
	tests := []struct {
		reason, want string
	}{
		{"", ""},
		{"denied", "denied"},
		{"line\nbreak\x00", "line?break?"},
		{strings.Repeat("r", 300), strings.Repeat("r", 255)},
	}
	for _, tt := range tests {
		cmd := ErrorCommand(tt.reason)
		got, err := ParseError(cmd.Body)
		if err != nil || got != tt.want {
			t.Errorf("ErrorCommand(%q) parses as %q, %v", tt.reason, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {3, 'a'}, {1, 'a', 'b'}} {
		if _, err := ParseError(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseError(%q) = %v", bad, err)
		}
	}
}

func TestPingPong(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		ctx     []byte
		wantTTL time.Duration
	}{
		{"no ttl", 0, nil, 0},
		{"rounded down", 1234 * time.Millisecond, []byte("c"), 1200 * time.Millisecond},
		{"capped", 10 * time.Hour, bytes.Repeat([]byte("x"), 16), MaxPingTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ping, err := PingCommand(tt.ttl, tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			ttl, ctx, err := ParsePing(ping.Body)
			if err != nil || ttl != tt.wantTTL || !bytes.Equal(ctx, tt.ctx) {
				t.Fatalf("got %v %q %v", ttl, ctx, err)
			}
			pong, err := PongCommand(ctx)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePong(pong.Body)
			if err != nil || !bytes.Equal(back, tt.ctx) {
				t.Fatalf("PONG %q %v", back, err)
			}
		})
	}
	if _, err := PingCommand(0, make([]byte, 17)); err == nil {
		t.Fatal("17-byte PING context accepted")
	}
	if _, _, err := ParsePing([]byte{1}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("1-byte PING: %v", err)
	}
	// libzmq cuts an over-long context; so do we.
	_, ctx, err := ParsePing(append([]byte{0, 1}, make([]byte, 20)...))
	if err != nil || len(ctx) != 16 {
		t.Fatalf("long context: %d %v", len(ctx), err)
	}
	if _, err := ParsePong(make([]byte, 17)); err == nil {
		t.Fatal("17-byte PONG accepted")
	}
}

func TestSubscriptionForms(t *testing.T) {
	tests := []struct {
		msg  []byte
		name string
		ok   bool
	}{
		{[]byte("\x01news"), CmdSubscribe, true},
		{[]byte("\x00news"), CmdCancel, true},
		{[]byte("\x01"), CmdSubscribe, true},
		{[]byte("\x02x"), "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		cmd, ok := SubscriptionMessage(tt.msg)
		if ok != tt.ok || cmd.Name != tt.name {
			t.Errorf("%q: got %q %v", tt.msg, cmd.Name, ok)
			continue
		}
		if ok {
			back, err := AppendSubscriptionMessage(nil, cmd)
			if err != nil || !bytes.Equal(back, tt.msg) {
				t.Errorf("%q: back %q %v", tt.msg, back, err)
			}
		}
	}
	if _, err := AppendSubscriptionMessage(nil, Command{Name: CmdPing}); err == nil {
		t.Fatal("PING converted to a subscription")
	}
}

func TestMetadataCaseInsensitive(t *testing.T) {
	body, err := AppendMetadata(nil, Metadata{{Name: "socket-TYPE", Value: []byte("PUB")}, {Name: "X-Empty"}})
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMetadata(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Socket-Type", "SOCKET-TYPE", "socket-type"} {
		if v, ok := md.Get(name); !ok || string(v) != "PUB" {
			t.Errorf("Get(%q) = %q, %v", name, v, ok)
		}
	}
	if v, ok := md.Get("x-empty"); !ok || len(v) != 0 {
		t.Errorf("empty value: %q %v", v, ok)
	}
	dup, _ := AppendMetadata(nil, Metadata{{Name: "Identity"}, {Name: "IDENTITY"}})
	if _, err := ParseMetadata(dup); err == nil {
		t.Fatal("a name repeated in another case was accepted")
	}
	// A peer's Socket-Type is found whatever case it uses.
	if _, err := checkPeerSocketType("SUB", md); err != nil {
		t.Fatal(err)
	}
}

func TestSocketTypeTable(t *testing.T) {
	all := []string{"REQ", "REP", "DEALER", "ROUTER", "PUB", "XPUB", "SUB", "XSUB", "PUSH", "PULL", "PAIR",
		"CLIENT", "SERVER", "RADIO", "DISH", "SCATTER", "GATHER", "PEER", "CHANNEL"}
	allowed := map[[2]string]bool{}
	for _, p := range [][2]string{
		{"REQ", "REP"}, {"REQ", "ROUTER"}, {"REP", "DEALER"}, {"DEALER", "DEALER"}, {"DEALER", "ROUTER"},
		{"ROUTER", "ROUTER"}, {"PUB", "SUB"}, {"PUB", "XSUB"}, {"XPUB", "SUB"}, {"XPUB", "XSUB"},
		{"PUSH", "PULL"}, {"PAIR", "PAIR"}, {"CLIENT", "SERVER"}, {"RADIO", "DISH"}, {"SCATTER", "GATHER"},
		{"PEER", "PEER"}, {"CHANNEL", "CHANNEL"},
	} {
		allowed[p] = true
		allowed[[2]string{p[1], p[0]}] = true
	}
	for _, a := range all {
		if !ValidSocketType(a) || !ValidSocketType(strings.ToLower(a)) {
			t.Errorf("%s not valid", a)
		}
		for _, b := range all {
			if got := SocketTypesCompatible(a, b); got != allowed[[2]string{a, b}] {
				t.Errorf("SocketTypesCompatible(%s, %s) = %v", a, b, got)
			}
		}
	}
	if ValidSocketType("STREAM") || SocketTypesCompatible("FOO", "FOO") {
		t.Error("unknown socket type accepted")
	}
	if !SocketTypesCompatible("dealer", "Router") {
		t.Error("case matters")
	}
}

func TestPeerSocketTypeChecked(t *testing.T) {
	tests := []struct {
		name       string
		ours       string
		peer       Metadata
		wantErr    bool
		wantResult string
	}{
		{"compatible", "REQ", Metadata{{Name: PropSocketType, Value: []byte("ROUTER")}}, false, "ROUTER"},
		{"missing", "REQ", Metadata{{Name: PropIdentity}}, true, ""},
		{"unknown", "REQ", Metadata{{Name: PropSocketType, Value: []byte("STREAM")}}, true, ""},
		{"incompatible", "PUB", Metadata{{Name: PropSocketType, Value: []byte("PULL")}}, true, ""},
		{"relay skips compatibility", "", Metadata{{Name: PropSocketType, Value: []byte("PULL")}}, false, "PULL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := checkPeerSocketType(tt.ours, tt.peer)
			if (err != nil) != tt.wantErr || st != tt.wantResult {
				t.Fatalf("got %q, %v", st, err)
			}
			if err != nil && !errors.Is(err, ErrSocketType) {
				t.Fatalf("err = %v, want ErrSocketType", err)
			}
		})
	}
}
