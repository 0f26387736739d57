package keygen

import (
	"crypto/ecdh"
	cryptorand "crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
)

const (
	// KeySize is the size of a CURVE key in bytes.
	KeySize = 32
	// KeyTextSize is the size of a CURVE key in Z85 characters.
	KeyTextSize = 40
)

// redacted is what every printing of a SecretKey shows.
const redacted = "[REDACTED]"

// PublicKey is a CURVE (X25519) public key. Its zero value is all zero bytes.
type PublicKey [KeySize]byte

// ParsePublicKey parses a 40-character Z85 public key. Surrounding whitespace
// is an error, as in libzmq.
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := parsePublicKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("keygen: public key: %w", err)
	}
	return k, nil
}

// parsePublicKey is ParsePublicKey with errors that do not say "public key",
// for callers that say where the key came from.
func parsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if len(s) != KeyTextSize {
		return k, fmt.Errorf("%w (want %d Z85 characters, got %d)", ErrKeyLength, KeyTextSize, len(s))
	}
	if _, zerr := decodeZ85(k[:0], s); zerr != nil {
		return PublicKey{}, zerr
	}
	return k, nil
}

// PublicKeyFromBytes returns the public key held in b, which must be 32 bytes.
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	var k PublicKey
	if len(b) != KeySize {
		return k, fmt.Errorf("keygen: public key: %w (want %d bytes, got %d)", ErrKeyLength, KeySize, len(b))
	}
	copy(k[:], b)
	return k, nil
}

// String returns the key in Z85, as libzmq and the zcert files write it.
func (k PublicKey) String() string {
	return string(appendZ85(make([]byte, 0, KeyTextSize), k[:]))
}

// IsZero reports whether k is all zero bytes (the zero value).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// MarshalText returns the key in Z85, so JSON and YAML carry keys as text.
func (k PublicKey) MarshalText() ([]byte, error) {
	return appendZ85(make([]byte, 0, KeyTextSize), k[:]), nil
}

// UnmarshalText parses a 40-character Z85 public key.
func (k *PublicKey) UnmarshalText(text []byte) error {
	p, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// SecretKey is a CURVE (X25519) secret key. Printing it in any way (String,
// %v, %#v, %x, %s, slog) shows only "[REDACTED]". Copies share the key bytes,
// which are never modified. The zero value holds no key.
type SecretKey struct {
	// key returns the key bytes. It is a func rather than the bytes or a
	// pointer to them because fmt cannot call methods on unexported fields:
	// a struct that holds a SecretKey in an unexported field is printed by
	// reflection, which shows a func only as an address, while it would
	// dereference a pointer for some verbs (%s, %q).
	key func() *[KeySize]byte
}

// newSecretKey wraps key bytes, which the caller no longer modifies.
func newSecretKey(k *[KeySize]byte) SecretKey {
	return SecretKey{key: func() *[KeySize]byte { return k }}
}

// bytes returns the key bytes, or nil for the zero value.
func (s SecretKey) bytes() *[KeySize]byte {
	if s.key == nil {
		return nil
	}
	return s.key()
}

// ParseSecretKey parses a 40-character Z85 secret key. Errors never show the
// input: a bad character is reported by position only.
func ParseSecretKey(s string) (SecretKey, error) {
	k, err := parseSecretKey(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("keygen: secret key: %w", err)
	}
	return k, nil
}

// parseSecretKey is ParseSecretKey with errors that do not say "secret key",
// for callers that say where the key came from.
func parseSecretKey(s string) (SecretKey, error) {
	if len(s) != KeyTextSize {
		return SecretKey{}, fmt.Errorf("%w (want %d Z85 characters, got %d)", ErrKeyLength, KeyTextSize, len(s))
	}
	k := new([KeySize]byte)
	if _, zerr := decodeZ85(k[:0], s); zerr != nil {
		return SecretKey{}, zerr.redact()
	}
	return newSecretKey(k), nil
}

// SecretKeyFromBytes returns a secret key holding a copy of b, which must be
// 32 bytes.
func SecretKeyFromBytes(b []byte) (SecretKey, error) {
	if len(b) != KeySize {
		return SecretKey{}, fmt.Errorf("keygen: secret key: %w (want %d bytes, got %d)", ErrKeyLength, KeySize, len(b))
	}
	k := new([KeySize]byte)
	copy(k[:], b)
	return newSecretKey(k), nil
}

// IsZero reports whether s is the zero value, holding no key.
func (s SecretKey) IsZero() bool { return s.key == nil }

// Bytes returns a copy of the 32 key bytes, or nil for the zero value.
func (s SecretKey) Bytes() []byte {
	k := s.bytes()
	if k == nil {
		return nil
	}
	b := make([]byte, KeySize)
	copy(b, k[:])
	return b
}

// Z85 returns the key's 40-character Z85 text, or "" for the zero value. It
// is the one deliberate way to turn a secret key into text; the result must
// go only where secret keys belong (a 0600 file, a Kubernetes Secret).
func (s SecretKey) Z85() string {
	k := s.bytes()
	if k == nil {
		return ""
	}
	return string(appendZ85(make([]byte, 0, KeyTextSize), k[:]))
}

// Equal reports whether s and o hold the same key, in constant time.
func (s SecretKey) Equal(o SecretKey) bool {
	a, b := s.bytes(), o.bytes()
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// String returns "[REDACTED]", never the key.
func (s SecretKey) String() string { return redacted }

// GoString returns a redacted Go-syntax form, never the key.
func (s SecretKey) GoString() string { return "keygen.SecretKey{" + redacted + "}" }

// Format prints "[REDACTED]" for every verb (%v, %s, %x, %d, ...), never the key.
func (s SecretKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// LogValue makes log/slog print "[REDACTED]", never the key.
func (s SecretKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// KeyPair is a CURVE keypair.
type KeyPair struct {
	// Public is the public key, which peers use to reach or recognise this identity.
	Public PublicKey
	// Secret is the secret key; it never leaves the identity's owner.
	Secret SecretKey
}

// GenerateKeyPair makes a new CURVE keypair from 32 bytes of rand (crypto/rand
// when rand is nil), as libzmq's zmq_curve_keypair does: the secret key is
// the random bytes and the public key is their X25519 product with the base
// point.
func GenerateKeyPair(rand io.Reader) (KeyPair, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	k := new([KeySize]byte)
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return KeyPair{}, fmt.Errorf("keygen: generate keypair: read random bytes: %w", err)
	}
	secret := newSecretKey(k)
	public, err := PublicFromSecret(secret)
	if err != nil {
		return KeyPair{}, fmt.Errorf("keygen: generate keypair: %w", err)
	}
	return KeyPair{Public: public, Secret: secret}, nil
}

// PublicFromSecret derives the public key of a secret key (X25519 with the
// base point, as libzmq's zmq_curve_public).
func PublicFromSecret(secret SecretKey) (PublicKey, error) {
	k := secret.bytes()
	if k == nil {
		return PublicKey{}, fmt.Errorf("keygen: derive public key: %w", ErrEmptyKey)
	}
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// crypto/ecdh's errors describe sizes and modes, never key bytes.
		return PublicKey{}, fmt.Errorf("keygen: derive public key: %w", err)
	}
	var pub PublicKey
	copy(pub[:], priv.PublicKey().Bytes())
	return pub, nil
}
