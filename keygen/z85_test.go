package keygen_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known vectors: RFC 32's own, the extremes of a group, and keys (cross-checked
// with pyzmq's zmq.utils.z85 when the table was written).
func TestZ85Vectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		z85  string
	}{
		{"empty", "", ""},
		{"RFC 32 HelloWorld", "864fd26fb559f75b", "HelloWorld"},
		{"zero group", "00000000", "00000"},
		{"max group", "ffffffff", "%nSc0"},
		{"bytes 0..31", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "009c61o!#m2NH?C3>iWS5d]J*6CRx17-skh9337x"},
		{"RFC 7748 public key", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", "G=]<>I7>&bBC>O5V{aj/4zK}kco8}o(.HIuS*=:#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := mustHex(t, tt.hex)
			got, err := keygen.Z85Encode(raw)
			if err != nil {
				t.Fatalf("Z85Encode: %v", err)
			}
			if got != tt.z85 {
				t.Errorf("Z85Encode = %q, want %q", got, tt.z85)
			}
			back, err := keygen.Z85Decode(tt.z85)
			if err != nil {
				t.Fatalf("Z85Decode: %v", err)
			}
			if !bytes.Equal(back, raw) {
				t.Errorf("Z85Decode = %x, want %x", back, raw)
			}
		})
	}
}

func TestZ85RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 4, 8, 12, 32, 64, 256, 4096} {
		for i := 0; i < 20; i++ {
			raw := make([]byte, size)
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			text, err := keygen.Z85Encode(raw)
			if err != nil {
				t.Fatalf("size %d: Z85Encode: %v", size, err)
			}
			if len(text) != size/4*5 {
				t.Fatalf("size %d: encoded length %d, want %d", size, len(text), size/4*5)
			}
			back, err := keygen.Z85Decode(text)
			if err != nil {
				t.Fatalf("size %d: Z85Decode: %v", size, err)
			}
			if !bytes.Equal(back, raw) {
				t.Fatalf("size %d round %d: round trip changed the data", size, i)
			}
		}
	}
}

func TestZ85EncodeBadLength(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 31, 33} {
		_, err := keygen.Z85Encode(make([]byte, n))
		var zerr *keygen.Z85Error
		if !errors.As(err, &zerr) || zerr.Kind != keygen.Z85BadLength || zerr.Length != n {
			t.Errorf("length %d: err = %v, want a Z85BadLength error", n, err)
		}
		if !errors.Is(err, keygen.ErrInvalidZ85) {
			t.Errorf("length %d: err = %v, not ErrInvalidZ85", n, err)
		}
	}
}

func TestZ85DecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kind    keygen.Z85ErrorKind
		pos     int
		char    byte
		message string
	}{
		{"length 4", "Hell", keygen.Z85BadLength, 0, 0, "keygen: z85: input length 4 is not a multiple of 5"},
		{"length 11", "HelloWorld!", keygen.Z85BadLength, 0, 0, "keygen: z85: input length 11 is not a multiple of 5"},
		{"tilde at 17", "HelloWorldHelloWo~ld", keygen.Z85BadChar, 17, '~', "keygen: z85: invalid character '~' at position 17"},
		{"trailing newline", "HelloWorld\n", keygen.Z85BadLength, 0, 0, "keygen: z85: input length 11 is not a multiple of 5"},
		{"space in group", "Hell World", keygen.Z85BadChar, 4, ' ', "keygen: z85: invalid character ' ' at position 4"},
		{"quote", `Hell"World`, keygen.Z85BadChar, 4, '"', `keygen: z85: invalid character '"' at position 4`},
		{"backslash", `\ello`, keygen.Z85BadChar, 0, '\\', `keygen: z85: invalid character '\\' at position 0`},
		{"NUL", "Hel\x00o", keygen.Z85BadChar, 3, 0, `keygen: z85: invalid character '\x00' at position 3`},
		{"non-ASCII", "H\xc3\xa9llo" + "oooo", keygen.Z85BadChar, 1, 0xc3, `keygen: z85: invalid character '\xc3' at position 1`},
		{"overflow 2^32", "%nSc1", keygen.Z85Overflow, 0, 0, "keygen: z85: group at position 0 overflows 32 bits"},
		{"overflow max", "00000#####", keygen.Z85Overflow, 5, 0, "keygen: z85: group at position 5 overflows 32 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := keygen.Z85Decode(tt.in)
			if err == nil {
				t.Fatalf("Z85Decode(%q) = %x, want an error", tt.in, out)
			}
			if out != nil {
				t.Errorf("Z85Decode returned data with its error")
			}
			if !errors.Is(err, keygen.ErrInvalidZ85) {
				t.Errorf("error %v is not ErrInvalidZ85", err)
			}
			var zerr *keygen.Z85Error
			if !errors.As(err, &zerr) {
				t.Fatalf("error %v is not a *Z85Error", err)
			}
			if zerr.Kind != tt.kind {
				t.Errorf("kind = %v, want %v", zerr.Kind, tt.kind)
			}
			if tt.kind == keygen.Z85BadChar && (zerr.Position != tt.pos || zerr.Char != tt.char) {
				t.Errorf("position %d char %q, want %d %q", zerr.Position, zerr.Char, tt.pos, tt.char)
			}
			if err.Error() != tt.message {
				t.Errorf("message = %q, want %q", err.Error(), tt.message)
			}
		})
	}
}

// Every 5-character group up to 2^32-1 decodes; the RFC's "%nSc0" is the
// largest. Walk the boundary from both sides.
func TestZ85DecodeGroupBoundary(t *testing.T) {
	tests := []struct {
		in   string
		want string // hex, "" for an overflow
	}{
		{"%nSb#", "fffffffe"}, // '#' is digit 84: one below "%nSc0"
		{"%nSc0", "ffffffff"},
		{"%nSc1", ""},
		{"%nSd0", ""},
		{"%#000", ""},
		{"#0000", ""},
	}
	for _, tt := range tests {
		out, err := keygen.Z85Decode(tt.in)
		if tt.want == "" {
			if !errors.Is(err, keygen.ErrInvalidZ85) {
				t.Errorf("Z85Decode(%q) = %x, %v; want overflow", tt.in, out, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Z85Decode(%q): %v", tt.in, err)
			continue
		}
		if got := hex.EncodeToString(out); got != tt.want {
			t.Errorf("Z85Decode(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// Encoding back must give the same text: the decoding is exact.
		if text, _ := keygen.Z85Encode(out); text != tt.in {
			t.Errorf("Z85Decode(%q) = %x, encodes back to %q", tt.in, out, text)
		}
	}
}
