package curve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// fixture is one complete handshake made deterministically (fixed keys, fixed
// random streams, a stopped clock), so that the commands it recorded stay
// valid seeds for the fuzz targets across runs.
type fixture struct {
	server      *Server
	client      *Client
	serverState serverState // after HELLO
	clientState clientState // after HELLO (before WELCOME is processed)
	session     sharedKey

	hello, welcome, initiate, ready []byte
	messages                        [][]byte // client to server, nonces 3, 4, 5
}

func fixedKeyPair(t testing.TB, label string) KeyPair {
	t.Helper()
	var kp KeyPair
	kp.Secret = SecretKey(sha256.Sum256([]byte("zmqauth curve test key " + label)))
	k, err := parseKeyPair(&kp)
	if err != nil {
		t.Fatal(err)
	}
	kp.Public = k.public
	return kp
}

func fixedRand(label string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("zmqauth curve test rand " + label)))
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  error
)

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = buildFixture(t) })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureVal
}

func buildFixture(t testing.TB) (*fixture, error) {
	serverKey, clientKey := fixedKeyPair(t, "server"), fixedKeyPair(t, "client")
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	server, err := NewServer(ServerConfig{
		Keys: []KeyPair{serverKey}, Authenticator: allow("fuzz"), Domain: "fuzz",
		Rand: fixedRand("server"), Now: func() time.Time { return epoch },
	})
	if err != nil {
		return nil, err
	}
	client, err := NewClient(ClientConfig{Key: clientKey, ServerKey: serverKey.Public, Rand: fixedRand("client")})
	if err != nil {
		return nil, err
	}
	f := &fixture{server: server, client: client}
	var cst clientState
	if f.hello, err = client.produceHello(&cst); err != nil {
		return nil, err
	}
	f.clientState = cst
	if f.welcome, err = server.processHello(&f.serverState, f.hello); err != nil {
		return nil, err
	}
	serverShort, err := client.processWelcome(&cst, f.welcome)
	if err != nil {
		return nil, err
	}
	if f.initiate, err = client.produceInitiate(&cst, &serverShort, dealerInfo().Local); err != nil {
		return nil, err
	}
	res, readyBody, err := server.acceptInitiate(context.Background(), &f.serverState, f.initiate, routerInfo())
	if err != nil {
		return nil, err
	}
	f.ready = readyBody
	f.session = cst.session
	if _, _, err := processReady(&f.session, f.ready); err != nil {
		return nil, err
	}
	sender := newCodec(&f.session, prefixMessageC, prefixMessageS, 2, 1)
	for i, p := range [][]byte{nil, []byte("hello"), payloadOf(100)} {
		body, err := sender.Seal(nil, []zmtp.Flags{zmtp.FlagMore, 0, zmtp.FlagCommand}[i], p)
		if err != nil {
			return nil, err
		}
		f.messages = append(f.messages, body)
	}
	res.Codec.Close()
	return f, nil
}

// The fuzz targets feed arbitrary bytes to each command decoder and the
// checks behind it. None may panic; an input that passes must be exactly the
// command the fixture recorded or one that re-encodes to itself.

func FuzzHello(f *testing.F) {
	fx := getFixture(f)
	f.Add(fx.hello)
	f.Add(fx.hello[:100])
	f.Fuzz(func(t *testing.T, body []byte) {
		h, perr := parseHello(body)
		if perr == nil {
			if again := appendHello(nil, &h); !bytes.Equal(again, body) {
				t.Fatalf("HELLO does not re-encode to itself")
			}
		}
		var st serverState
		welcome, err := fx.server.processHello(&st, body)
		if err != nil {
			return
		}
		if perr != nil || len(welcome) != welcomeBodySize {
			t.Fatalf("processHello accepted a HELLO parseHello refused (%v) or made a %d-byte WELCOME", perr, len(welcome))
		}
	})
}

func FuzzWelcome(f *testing.F) {
	fx := getFixture(f)
	f.Add(fx.welcome)
	f.Add(fx.welcome[:159])
	f.Fuzz(func(t *testing.T, body []byte) {
		st := fx.clientState
		serverShort, err := fx.client.processWelcome(&st, body)
		if err != nil {
			return
		}
		if !bytes.Equal(body, fx.welcome) {
			t.Fatalf("a WELCOME other than the server's opened (S' %s)", serverShort)
		}
	})
}

func FuzzInitiate(f *testing.F) {
	fx := getFixture(f)
	f.Add(fx.initiate)
	f.Add(fx.initiate[:initiateBodyMin])
	f.Add(append(bytes.Clone(fx.initiate), 0))
	f.Fuzz(func(t *testing.T, body []byte) {
		st := fx.serverState
		res, ready, err := fx.server.acceptInitiate(context.Background(), &st, body, routerInfo())
		if err != nil {
			return
		}
		defer res.Codec.Close()
		if !bytes.Equal(body, fx.initiate) || len(ready) < readyBodyMin {
			t.Fatalf("an INITIATE other than the client's was accepted")
		}
	})
}

func FuzzReady(f *testing.F) {
	fx := getFixture(f)
	f.Add(fx.ready)
	f.Add(fx.ready[:readyBodyMin])
	f.Fuzz(func(t *testing.T, body []byte) {
		md, nonce, err := processReady(&fx.session, body)
		if err != nil {
			return
		}
		if !bytes.Equal(body, fx.ready) || nonce != 1 {
			t.Fatalf("a READY other than the server's opened (nonce %d, metadata %v)", nonce, md)
		}
	})
}

func FuzzMessage(f *testing.F) {
	fx := getFixture(f)
	for _, m := range fx.messages {
		f.Add(m)
	}
	f.Add(fx.messages[0][:messageBodyOverhead-1])
	f.Fuzz(func(t *testing.T, body []byte) {
		receiver := newCodec(&fx.session, prefixMessageS, prefixMessageC, 1, 2)
		flags, payload, err := receiver.Open(nil, body)
		if err != nil {
			return
		}
		if len(payload) != len(body)-messageBodyOverhead || flags&^(zmtp.FlagMore|zmtp.FlagCommand) != 0 {
			t.Fatalf("Open returned %d bytes and flags %#x from a %d-byte body", len(payload), flags, len(body))
		}
		for _, m := range fx.messages {
			if bytes.Equal(m, body) {
				return
			}
		}
		t.Fatalf("a MESSAGE the client never sealed opened")
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/<FuzzName>/ from the fixture
// when CURVE_WRITE_FUZZ_SEEDS=1. The fixture is deterministic, so the files
// only change when the protocol code does.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CURVE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set CURVE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	fx := getFixture(t)
	mutated := func(b []byte, i int) []byte { return flipByte(b, i) }
	seeds := map[string][][]byte{
		"FuzzHello":    {fx.hello, fx.hello[:193], mutated(fx.hello, -1), mutated(fx.hello, 0), {}},
		"FuzzWelcome":  {fx.welcome, mutated(fx.welcome, 30), fx.welcome[:16]},
		"FuzzInitiate": {fx.initiate, mutated(fx.initiate, -1), mutated(fx.initiate, 10), fx.initiate[:247]},
		"FuzzReady":    {fx.ready, mutated(fx.ready, 9), fx.ready[:8]},
		"FuzzMessage":  append(append([][]byte{}, fx.messages...), mutated(fx.messages[1], -1), binary.BigEndian.AppendUint64(nil, 2)),
	}
	for name, bodies := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range bodies {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
