package keygen_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zmqauth/zmqauth/keygen"
)

// Published test keypairs: the libzmq zmq_curve(7) example keys, and RFC
// 7748 section 6.1 (Alice) given in hex.
var knownPairs = []struct {
	name, public, secret string
}{
	{"zmq_curve server", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"},
	{"zmq_curve client", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"},
	{"RFC 7748 Alice", "G=]<>I7>&bBC>O5V{aj/4zK}kco8}o(.HIuS*=:#", "Cl.%(A#p:4jqL+Nql<!5?+kXU(+F]rV3l8w9L0ZJ"},
}

func TestPublicFromSecretKnown(t *testing.T) {
	for _, kp := range knownPairs {
		t.Run(kp.name, func(t *testing.T) {
			secret, err := keygen.ParseSecretKey(kp.secret)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := keygen.PublicFromSecret(secret)
			if err != nil {
				t.Fatal(err)
			}
			if pub.String() != kp.public {
				t.Errorf("PublicFromSecret = %s, want %s", pub, kp.public)
			}
			want, err := keygen.ParsePublicKey(kp.public)
			if err != nil {
				t.Fatal(err)
			}
			if pub != want {
				t.Errorf("parsed public key differs from derived one")
			}
		})
	}
	// RFC 7748 in its own hex, to pin the Z85 text above to the RFC.
	alice, _ := hex.DecodeString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	secret, err := keygen.SecretKeyFromBytes(alice)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keygen.PublicFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub[:]); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Errorf("RFC 7748 public key = %s", got)
	}
}

func TestGenerateKeyPair(t *testing.T) {
	seeded := func(seed uint64) *rand.ChaCha8 {
		var s [32]byte
		s[0] = byte(seed)
		return rand.NewChaCha8(s)
	}
	tests := []struct {
		name    string
		rand    func() interface{ Read([]byte) (int, error) }
		wantErr bool
	}{
		{"crypto/rand (nil)", func() interface{ Read([]byte) (int, error) } { return nil }, false},
		{"seeded", func() interface{ Read([]byte) (int, error) } { return seeded(1) }, false},
		{"short reader", func() interface{ Read([]byte) (int, error) } { return bytes.NewReader(make([]byte, 31)) }, true},
		{"failing reader", func() interface{ Read([]byte) (int, error) } { return iotest.ErrReader(errors.New("no entropy")) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rand()
			var pair keygen.KeyPair
			var err error
			if r == nil {
				pair, err = keygen.GenerateKeyPair(nil)
			} else {
				pair, err = keygen.GenerateKeyPair(r)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("GenerateKeyPair succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pair.Secret.IsZero() || pair.Public.IsZero() {
				t.Fatal("empty key in generated pair")
			}
			pub, err := keygen.PublicFromSecret(pair.Secret)
			if err != nil || pub != pair.Public {
				t.Errorf("generated public key does not derive from the secret key (err %v)", err)
			}
		})
	}
	// The same seed gives the same pair; different seeds differ.
	a, _ := keygen.GenerateKeyPair(seeded(7))
	b, _ := keygen.GenerateKeyPair(seeded(7))
	c, _ := keygen.GenerateKeyPair(seeded(8))
	if a.Public != b.Public || !a.Secret.Equal(b.Secret) {
		t.Error("same seed, different pairs")
	}
	if a.Public == c.Public || a.Secret.Equal(c.Secret) {
		t.Error("different seeds, same pair")
	}
}

func TestPublicFromSecretZero(t *testing.T) {
	_, err := keygen.PublicFromSecret(keygen.SecretKey{})
	if !errors.Is(err, keygen.ErrEmptyKey) {
		t.Errorf("err = %v, want ErrEmptyKey", err)
	}
}

// badKeys are inputs a user could paste instead of a key. want is the
// sentinel; msg is a substring the error must show.
var badKeys = []struct {
	name string
	in   string
	want error
	msg  string
}{
	{"empty", "", keygen.ErrKeyLength, "got 0"},
	{"truncated", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", keygen.ErrKeyLength, "got 39"},
	{"truncated to a group", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H", keygen.ErrKeyLength, "got 35"},
	{"padded with newline", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", keygen.ErrKeyLength, "got 41"},
	{"padded with spaces", " rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 ", keygen.ErrKeyLength, "got 42"},
	{"quoted", `"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"`, keygen.ErrKeyLength, "got 42"},
	{"doubled", strings.Repeat("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", 2), keygen.ErrKeyLength, "got 80"},
	{"hex instead of Z85", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", keygen.ErrKeyLength, "got 64"},
	{"base64 alphabet", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y_7", keygen.ErrInvalidZ85, "at position 38"},
	{"tilde", "rq:rM>}U?@Lns47E1~kR.o@n%FcmmsL/@{H8]yf7", keygen.ErrInvalidZ85, "at position 17"},
	{"comma", ",q:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", keygen.ErrInvalidZ85, "at position 0"},
	{"inner space", "rq:rM>}U?@Lns47E1%kR.o@n FcmmsL/@{H8]yf7", keygen.ErrInvalidZ85, "at position 24"},
	{"overflowing group", "%nSc1}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7X", keygen.ErrInvalidZ85, "group at position 0 overflows"},
}

func TestParsePublicKeyBad(t *testing.T) {
	for _, tt := range badKeys {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keygen.ParsePublicKey(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParsePublicKey: err = %v, want %v", err, tt.want)
			}
			if !k.IsZero() {
				t.Error("key returned with the error")
			}
			if !strings.HasPrefix(err.Error(), "keygen: public key: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q spans lines", err)
			}
		})
	}
	// A public key's bad character is shown (public keys are not secret).
	_, err := keygen.ParsePublicKey("rq:rM>}U?@Lns47E1~kR.o@n%FcmmsL/@{H8]yf7")
	if want := "keygen: public key: z85: invalid character '~' at position 17"; err == nil || err.Error() != want {
		t.Errorf("message = %v, want %q", err, want)
	}
}

func TestParseSecretKeyBad(t *testing.T) {
	for _, tt := range badKeys {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keygen.ParseSecretKey(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseSecretKey: err = %v, want %v", err, tt.want)
			}
			if !k.IsZero() {
				t.Error("key returned with the error")
			}
			if !strings.HasPrefix(err.Error(), "keygen: secret key: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", err, tt.msg)
			}
			assertNoSecret(t, err.Error(), tt.in)
		})
	}
	// The bad character of a secret key is withheld, its position given.
	_, err := keygen.ParseSecretKey("JTKVSB%%)wK0E.X)V>+}o~pNmC{O&4W4b!Ni{Lh6")
	if want := "keygen: secret key: z85: invalid character at position 21"; err == nil || err.Error() != want {
		t.Errorf("message = %v, want %q", err, want)
	}
	var zerr *keygen.Z85Error
	if !errors.As(err, &zerr) || zerr.Char != 0 || zerr.Position != 21 {
		t.Errorf("Z85Error = %+v, want position 21 and no character", zerr)
	}
}

// assertNoSecret fails when text shows secret, or any 8-character run of it
// (a secret key is 40 characters; 8 would already be a leak).
func assertNoSecret(t *testing.T, text, secret string) {
	t.Helper()
	secret = strings.TrimSpace(secret)
	if len(secret) < 8 {
		return
	}
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+8]) {
			t.Errorf("output shows part of the secret key (at secret offset %d)", i)
			return
		}
	}
}

func TestKeyFromBytes(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := keygen.PublicKeyFromBytes(make([]byte, n)); !errors.Is(err, keygen.ErrKeyLength) {
			t.Errorf("PublicKeyFromBytes(%d bytes): %v, want ErrKeyLength", n, err)
		}
		if _, err := keygen.SecretKeyFromBytes(make([]byte, n)); !errors.Is(err, keygen.ErrKeyLength) {
			t.Errorf("SecretKeyFromBytes(%d bytes): %v, want ErrKeyLength", n, err)
		}
	}
	raw := bytes.Repeat([]byte{0xab}, 32)
	s, err := keygen.SecretKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] = 0 // the key holds a copy
	if b := s.Bytes(); b[0] != 0xab {
		t.Error("SecretKeyFromBytes did not copy its input")
	}
	b := s.Bytes()
	b[1] = 0 // and Bytes returns a copy
	if s.Bytes()[1] != 0xab {
		t.Error("Bytes returned the key's own storage")
	}
	if (keygen.SecretKey{}).Bytes() != nil || (keygen.SecretKey{}).Z85() != "" {
		t.Error("zero SecretKey has bytes or text")
	}
}

func TestPublicKeyText(t *testing.T) {
	want := "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	k, err := keygen.ParsePublicKey(want)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(map[string]keygen.PublicKey{"key": k})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]keygen.PublicKey
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back["key"] != k || fmt.Sprint(k) != want {
		t.Errorf("text round trip: %s -> %v", js, back)
	}
	if err := json.Unmarshal([]byte(`{"key":"short"}`), &back); !errors.Is(err, keygen.ErrKeyLength) {
		t.Errorf("bad key in JSON: %v, want ErrKeyLength", err)
	}
}

// A secret key must not come out of any printing path.
func TestSecretKeyRedacted(t *testing.T) {
	text := knownPairs[0].secret
	s, err := keygen.ParseSecretKey(text)
	if err != nil {
		t.Fatal(err)
	}
	raw := s.Bytes()
	type holder struct {
		Name   string
		Secret keygen.SecretKey
	}
	type hidden struct {
		secret keygen.SecretKey // unexported: fmt cannot call its methods
	}
	pair := keygen.KeyPair{Secret: s}
	cert := keygen.Certificate{SecretKey: s}
	values := []any{s, &s, holder{"x", s}, &holder{"x", s}, hidden{s}, pair, &pair, cert, &cert, []keygen.SecretKey{s}, map[string]keygen.SecretKey{"k": s}}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "% x", "%o", "%b", "%T"}

	var outputs []string
	for _, v := range values {
		for _, verb := range verbs {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
		outputs = append(outputs, fmt.Sprint(v), fmt.Sprintln(v))
	}
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	logger.Info("msg", "secret", s, "pair", pair)
	jl := slog.New(slog.NewJSONHandler(&logBuf, nil))
	jl.Info("msg", "secret", s)
	outputs = append(outputs, logBuf.String(), s.String(), s.GoString())
	if js, err := json.Marshal(holder{"x", s}); err == nil {
		outputs = append(outputs, string(js))
	}

	forms := []string{text, hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)), fmt.Sprint(raw), fmt.Sprintf("%q", raw), string(raw)}
	for _, out := range outputs {
		for _, form := range forms {
			if strings.Contains(out, form) {
				t.Fatalf("a printing of SecretKey shows the key (output %d chars, form %d): %q", len(out), len(form), out)
			}
		}
		assertNoSecret(t, out, text)
	}
	if got := fmt.Sprint(s); got != "[REDACTED]" {
		t.Errorf("fmt.Sprint(secret) = %q", got)
	}
	if !strings.Contains(logBuf.String(), "secret=[REDACTED]") {
		t.Errorf("slog output does not show the redaction: %q", logBuf.String())
	}
	// The deliberate accessors do give the key.
	if s.Z85() != text {
		t.Error("Z85() does not return the key text")
	}
}
