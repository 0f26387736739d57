package curve

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"github.com/zmqauth/zmqauth/zmtp"
)

// sessionPair returns the client and server codecs of one session, built
// from two fresh short-term keypairs as a handshake would, plus the keys.
func sessionPair(t testing.TB) (client, server *codec, c, s *ecdh.PrivateKey) {
	t.Helper()
	c = mustShortKey(t)
	s = mustShortKey(t)
	var kc, ks sharedKey
	if err := precompute(&kc, c, (*[32]byte)(s.PublicKey().Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := precompute(&ks, s, (*[32]byte)(c.PublicKey().Bytes())); err != nil {
		t.Fatal(err)
	}
	if kc != ks {
		t.Fatal("the two sides derived different session keys")
	}
	return newCodec(&kc, prefixMessageC, prefixMessageS, 2, 1), newCodec(&ks, prefixMessageS, prefixMessageC, 1, 2), c, s
}

func mustShortKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	kp := mustKeyPair(t)
	k, err := parseShortTermKey(kp.Secret[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + n)
	}
	return b
}

// The sizes cover the first keystream block's boundary (31 payload bytes
// share block 0 with the Poly1305 key and the flags byte) and large frames.
var codecSizes = []int{0, 1, 30, 31, 32, 33, 63, 64, 95, 96, 97, 255, 256, 1000, 64 << 10, 1 << 20}

func TestCodecRoundTrip(t *testing.T) {
	client, server, _, _ := sessionPair(t)
	flagSets := []zmtp.Flags{0, zmtp.FlagMore, zmtp.FlagCommand}
	for _, n := range codecSizes {
		for _, flags := range flagSets {
			p := payloadOf(n)
			prefix := []byte("prefix")
			sealed, err := client.Seal(bytes.Clone(prefix), flags, p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(sealed, prefix) || len(sealed)-len(prefix) != client.SealedSize(n) {
				t.Fatalf("n=%d: Seal returned %d bytes after the prefix, SealedSize says %d", n, len(sealed)-len(prefix), client.SealedSize(n))
			}
			got, out, err := server.Open([]byte("dst"), sealed[len(prefix):])
			if err != nil {
				t.Fatalf("n=%d flags=%#x: Open: %v", n, flags, err)
			}
			if got != flags || !bytes.Equal(out, append([]byte("dst"), p...)) {
				t.Fatalf("n=%d flags=%#x: Open returned flags %#x and a different payload", n, flags, got)
			}
		}
	}
}

// TestCodecMatchesNaCl checks the in-place MESSAGE box and the handshake
// boxes against golang.org/x/crypto/nacl/box for the same keys and nonces.
func TestCodecMatchesNaCl(t *testing.T) {
	client, server, c, s := sessionPair(t)
	sPub := (*[32]byte)(s.PublicKey().Bytes())
	cPub := (*[32]byte)(c.PublicKey().Bytes())
	cSec, sSec := (*[32]byte)(c.Bytes()), (*[32]byte)(s.Bytes())
	tests := []struct {
		flags zmtp.Flags
		wire  byte
	}{{0, 0}, {zmtp.FlagMore, 1}, {zmtp.FlagCommand, 2}}
	for _, n := range codecSizes {
		for _, tt := range tests {
			p := payloadOf(n)
			// Client to server: nonce prefix CurveZMQMESSAGEC.
			body, err := client.Seal(nil, tt.flags, p)
			if err != nil {
				t.Fatal(err)
			}
			var nonce [24]byte
			shortNonceFrom(&nonce, prefixMessageC, binary.BigEndian.Uint64(body))
			want := box.Seal(nil, append([]byte{tt.wire}, p...), &nonce, sPub, cSec)
			if !bytes.Equal(body[8:], want) {
				t.Fatalf("n=%d flags=%#x: our MESSAGE box differs from nacl/box.Seal", n, tt.flags)
			}
			// Server to client, opened by NaCl.
			body, err = server.Seal(nil, tt.flags, p)
			if err != nil {
				t.Fatal(err)
			}
			shortNonceFrom(&nonce, prefixMessageS, binary.BigEndian.Uint64(body))
			plain, ok := box.Open(nil, body[8:], &nonce, cPub, sSec)
			if !ok || !bytes.Equal(plain, append([]byte{tt.wire}, p...)) {
				t.Fatalf("n=%d flags=%#x: nacl/box.Open does not open our server MESSAGE", n, tt.flags)
			}
			// A NaCl box opened by us.
			n2 := binary.BigEndian.Uint64(body) + 1
			shortNonceFrom(&nonce, prefixMessageS, n2)
			naclBody := binary.BigEndian.AppendUint64(nil, n2)
			naclBody = box.Seal(naclBody, append([]byte{tt.wire}, p...), &nonce, cPub, sSec)
			server.send.nonce = n2 // keep the server's sequence ahead of what we forged
			flags, got, err := client.Open(nil, naclBody)
			if err != nil || flags != tt.flags || !bytes.Equal(got, p) {
				t.Fatalf("n=%d flags=%#x: our Open of a NaCl box: flags %#x, err %v", n, tt.flags, flags, err)
			}
		}
	}

	// The handshake boxes: precompute + seal equals box.Seal.
	var k sharedKey
	if err := precompute(&k, c, sPub); err != nil {
		t.Fatal(err)
	}
	var nonce [24]byte
	shortNonceFrom(&nonce, prefixHello, 1)
	msg := make([]byte, 64)
	if got, want := seal(nil, &k, &nonce, msg), box.Seal(nil, msg, &nonce, sPub, cSec); !bytes.Equal(got, want) {
		t.Fatal("precompute+seal differs from nacl/box.Seal")
	}
	var bk [32]byte
	box.Precompute(&bk, sPub, cSec)
	if bk != k {
		t.Fatal("precompute differs from nacl/box.Precompute")
	}
}

func TestCodecRefuses(t *testing.T) {
	tests := []struct {
		name string
		// body makes the body to open from the sealed bodies of frames 1..3
		// (nonces 3, 4, 5 from the client); opened lists what was opened first.
		opened []int
		body   func(bodies [][]byte) []byte
		want   error
	}{
		{"repeated nonce", []int{0}, func(b [][]byte) []byte { return b[0] }, ErrNonce},
		{"decreasing nonce", []int{1}, func(b [][]byte) []byte { return b[0] }, ErrNonce},
		{"nonce of the INITIATE", nil, func(b [][]byte) []byte {
			x := bytes.Clone(b[0])
			binary.BigEndian.PutUint64(x, 2)
			return x
		}, ErrNonce},
		{"tampered tag", nil, func(b [][]byte) []byte { return flipByte(b[0], 8) }, ErrCryptographic},
		{"tampered ciphertext", nil, func(b [][]byte) []byte { return flipByte(b[0], -1) }, ErrCryptographic},
		{"tampered flags byte", nil, func(b [][]byte) []byte { return flipByte(b[0], 24) }, ErrCryptographic},
		{"tampered nonce", nil, func(b [][]byte) []byte { return flipByte(b[0], 7) }, ErrCryptographic},
		{"truncated", nil, func(b [][]byte) []byte { return b[0][:24] }, zmtp.ErrProtocol},
		{"empty", nil, func([][]byte) []byte { return nil }, zmtp.ErrProtocol},
		{"extended", nil, func(b [][]byte) []byte { return append(bytes.Clone(b[0]), 0) }, ErrCryptographic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server, _, _ := sessionPair(t)
			var bodies [][]byte
			for i := range 3 {
				b, err := client.Seal(nil, 0, payloadOf(40+i))
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			for _, i := range tt.opened {
				if _, _, err := server.Open(nil, bodies[i]); err != nil {
					t.Fatal(err)
				}
			}
			dst := make([]byte, 0, 128)
			_, out, err := server.Open(dst, tt.body(bodies))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error %v, want %v", err, tt.want)
			}
			if len(out) != 0 {
				t.Errorf("Open returned %d bytes with its error", len(out))
			}
		})
	}
}

func TestCodecNonceSequence(t *testing.T) {
	client, server, _, _ := sessionPair(t)
	for want := uint64(3); want < 6; want++ {
		b, err := client.Seal(nil, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint64(b); got != want {
			t.Fatalf("client MESSAGE nonce %d, want %d (HELLO 1, INITIATE 2)", got, want)
		}
	}
	b, err := server.Seal(nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(b); got != 2 {
		t.Fatalf("server first MESSAGE nonce %d, want 2 (READY 1)", got)
	}

	client.send.nonce = ^uint64(0) - 1
	if _, err := client.Seal(nil, 0, nil); err != nil {
		t.Fatalf("sealing with the last nonce: %v", err)
	}
	if _, err := client.Seal(nil, 0, nil); !errors.Is(err, ErrNonce) {
		t.Fatalf("sealing after the last nonce: %v, want ErrNonce", err)
	}
}

func TestCodecIgnoresReservedFlagBits(t *testing.T) {
	client, server, c, s := sessionPair(t)
	_ = client
	var nonce [24]byte
	shortNonceFrom(&nonce, prefixMessageC, 3)
	body := binary.BigEndian.AppendUint64(nil, 3)
	body = box.Seal(body, []byte{0xfd, 'x'}, &nonce, (*[32]byte)(s.PublicKey().Bytes()), (*[32]byte)(c.Bytes()))
	flags, p, err := server.Open(nil, body)
	if err != nil || flags != zmtp.FlagMore || string(p) != "x" {
		t.Fatalf("Open = %#x %q %v, want MORE and \"x\"", flags, p, err)
	}
}

func TestCodecClose(t *testing.T) {
	client, server, _, _ := sessionPair(t)
	b, err := client.Seal(nil, 0, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	server.Close()
	if client.send.subKey != ([32]byte{}) || client.recv.subKey != ([32]byte{}) || server.send.subKey != ([32]byte{}) {
		t.Error("Close left key material")
	}
	if _, err := client.Seal(nil, 0, []byte("x")); !errors.Is(err, zmtp.ErrClosed) {
		t.Errorf("Seal after Close: %v, want ErrClosed", err)
	}
	if _, _, err := server.Open(nil, b); !errors.Is(err, zmtp.ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
}

func TestCodecAllocatesNothing(t *testing.T) {
	client, server, _, _ := sessionPair(t)
	for _, n := range []int{64, 64 << 10} {
		p := payloadOf(n)
		sealed := make([]byte, 0, client.SealedSize(n))
		opened := make([]byte, 0, n)
		allocs := testing.AllocsPerRun(100, func() {
			b, err := client.Seal(sealed[:0], zmtp.FlagMore, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := server.Open(opened[:0], b); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d-byte Seal+Open allocates %v times", n, allocs)
		}
	}
}
