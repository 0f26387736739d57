package curve

import (
	"encoding/binary"

	"golang.org/x/crypto/nacl/secretbox"
)

// Nonce prefixes (RFC 26). A 24-byte nonce is a prefix followed by a short
// (8-byte, big-endian counter) or long (16-byte random) nonce.
const (
	prefixHello    = "CurveZMQHELLO---" // + short nonce
	prefixWelcome  = "WELCOME-"         // + long nonce
	prefixCookie   = "COOKIE--"         // + long nonce
	prefixInitiate = "CurveZMQINITIATE" // + short nonce
	prefixVouch    = "VOUCH---"         // + long nonce
	prefixReady    = "CurveZMQREADY---" // + short nonce
	prefixMessageC = "CurveZMQMESSAGEC" // + short nonce, client to server
	prefixMessageS = "CurveZMQMESSAGES" // + short nonce, server to client
)

// Sizes of the NaCl building blocks.
const (
	boxOverhead = secretbox.Overhead // Poly1305 tag in front of every box
	shortNonce  = 8
	longNonce   = 16
	nonceSize   = 24
)

// shortNonceFrom builds the 24-byte nonce prefix + big-endian n.
func shortNonceFrom(dst *[nonceSize]byte, prefix string, n uint64) {
	copy(dst[:], prefix)
	binary.BigEndian.PutUint64(dst[16:], n)
}

// nonceFrom builds the 24-byte nonce prefix + suffix; len(prefix)+len(suffix)
// is 24.
func nonceFrom(dst *[nonceSize]byte, prefix string, suffix []byte) {
	copy(dst[:], prefix)
	copy(dst[len(prefix):], suffix)
}

// seal appends Box[msg] under the precomputed key k (crypto_box_afternm's
// output without its leading zero bytes: tag then ciphertext).
func seal(dst []byte, k *sharedKey, nonce *[nonceSize]byte, msg []byte) []byte {
	return secretbox.Seal(dst, msg, nonce, (*[32]byte)(k))
}

// open appends the contents of box to dst, or reports false when box does not
// authenticate under k and nonce.
func open(dst []byte, k *sharedKey, nonce *[nonceSize]byte, box []byte) ([]byte, bool) {
	return secretbox.Open(dst, box, nonce, (*[32]byte)(k))
}
