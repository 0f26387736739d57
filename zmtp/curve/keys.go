package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/salsa20/salsa"
)

// KeySize is the size in bytes of every CURVE key: public, secret and shared.
const KeySize = 32

// PublicKey is a CURVE (X25519) public key.
type PublicKey [KeySize]byte

// String returns the key in hexadecimal.
func (k PublicKey) String() string { return fmt.Sprintf("%x", k[:]) }

// IsZero reports whether every byte of k is zero (an unset key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// SecretKey is a CURVE (X25519) secret key. It never prints its bytes: every
// fmt verb, String, GoString, slog and encoding/json show "[redacted]".
type SecretKey [KeySize]byte

const redacted = "[redacted]"

// String returns "[redacted]".
func (SecretKey) String() string { return redacted }

// GoString returns "[redacted]", so that %#v does not print the key either.
func (SecretKey) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb (%v, %x, %d, %q, ...).
func (SecretKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue makes slog print "[redacted]".
func (SecretKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", so that encoding/json and the slog
// handlers that use it never write the key either; a SecretKey cannot be
// serialised, by design.
func (SecretKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// IsZero reports whether every byte of k is zero (an unset key).
func (k SecretKey) IsZero() bool {
	return subtle.ConstantTimeCompare(k[:], make([]byte, KeySize)) == 1
}

// KeyPair is a long-term CURVE keypair.
type KeyPair struct {
	// Public is the public key. When it is zero it is derived from Secret.
	Public PublicKey
	// Secret is the secret key.
	Secret SecretKey
}

// GenerateKeyPair returns a new random keypair read from r (crypto/rand when
// r is nil).
func GenerateKeyPair(r io.Reader) (KeyPair, error) {
	if r == nil {
		r = rand.Reader
	}
	var kp KeyPair
	if _, err := io.ReadFull(r, kp.Secret[:]); err != nil {
		return KeyPair{}, fmt.Errorf("curve: generating a keypair: %w", err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(kp.Secret[:])
	if err != nil {
		return KeyPair{}, fmt.Errorf("curve: generating a keypair: %w", err)
	}
	copy(kp.Public[:], priv.PublicKey().Bytes())
	return kp, nil
}

// longTermKey is a parsed long-term keypair: the X25519 key parsed once, so
// that a handshake pays only for the scalar multiplications it needs.
type longTermKey struct {
	public PublicKey
	priv   *ecdh.PrivateKey
}

// ErrInvalidKey reports a key that cannot be used: a zero secret key, a public
// key that does not match its secret key, or a public key whose shared secret
// would be zero. Errors wrapping it never contain secret-key bytes.
var ErrInvalidKey = errors.New("curve: invalid key")

// parseKeyPair parses kp once. A zero public key is derived from the secret
// key; a non-zero one must match it.
func parseKeyPair(kp *KeyPair) (longTermKey, error) {
	if kp.Secret.IsZero() {
		return longTermKey{}, fmt.Errorf("%w: secret key is all zero", ErrInvalidKey)
	}
	priv, err := ecdh.X25519().NewPrivateKey(kp.Secret[:])
	if err != nil {
		return longTermKey{}, fmt.Errorf("%w: secret key rejected by X25519", ErrInvalidKey)
	}
	var pub PublicKey
	copy(pub[:], priv.PublicKey().Bytes())
	if !kp.Public.IsZero() && kp.Public != pub {
		return longTermKey{}, fmt.Errorf("%w: public key %s does not belong to the secret key", ErrInvalidKey, kp.Public)
	}
	return longTermKey{public: pub, priv: priv}, nil
}

// sharedKey is a precomputed NaCl box key, crypto_box_beforenm's output.
type sharedKey [KeySize]byte

// zeroNonce16 is HSalsa20's input when deriving a box key.
var zeroNonce16 [16]byte

// precompute derives the box key between priv and peer exactly as NaCl's
// crypto_box_beforenm does: HSalsa20 of the X25519 shared secret with a zero
// input and the sigma constant. It fails when peer is a low-order point
// (the shared secret would be zero), as libsodium does.
func precompute(dst *sharedKey, priv *ecdh.PrivateKey, peer *[KeySize]byte) error {
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return fmt.Errorf("%w: public key %x is a low-order point", ErrInvalidKey, peer[:])
	}
	salsa.HSalsa20((*[32]byte)(dst), &zeroNonce16, (*[32]byte)(secret), &salsa.Sigma)
	clear(secret)
	return nil
}

// parseShortTermKey parses a short-term secret key (32 bytes, possibly
// unclamped).
func parseShortTermKey(secret []byte) (*ecdh.PrivateKey, error) {
	priv, err := ecdh.X25519().NewPrivateKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: short-term secret key rejected by X25519", ErrInvalidKey)
	}
	return priv, nil
}
