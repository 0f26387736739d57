package curve

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zmqauth/zmqauth/zmtp"
)

// The CURVE command bodies (RFC 26), after the command name that zmtp.Command
// carries separately. Decoders check sizes exactly and alias the body; they
// never allocate from a length read off the wire.

// Body sizes. The full commands are 200 (HELLO), 168 (WELCOME), 257+
// (INITIATE) and 30+ (READY) bytes with their names.
const (
	helloBodySize       = 2 + helloPadding + KeySize + shortNonce + helloBoxSize // 194
	helloPadding        = 72
	helloBoxSize        = boxOverhead + helloZeros // 80
	helloZeros          = 64
	welcomeBodySize     = longNonce + welcomeBoxSize // 160
	welcomeBoxSize      = boxOverhead + welcomePlainSize
	welcomePlainSize    = KeySize + cookieSize      // S' + cookie = 128
	cookieSize          = longNonce + cookieBoxSize // 96
	cookieBoxSize       = boxOverhead + cookiePlainSize
	cookiePlainSize     = 2 * KeySize              // C' + s'
	vouchSize           = longNonce + vouchBoxSize // 96
	vouchBoxSize        = boxOverhead + vouchPlainSize
	vouchPlainSize      = 2 * KeySize                                              // C' + S
	initiatePlainMin    = KeySize + vouchSize                                      // C + vouch = 128, then metadata
	initiateBodyMin     = cookieSize + shortNonce + boxOverhead + initiatePlainMin // 248
	readyBodyMin        = shortNonce + boxOverhead                                 // 24
	messageBodyOverhead = shortNonce + boxOverhead + 1                             // nonce, tag, flags
)

// Errors a caller can test for with errors.Is, besides zmtp.ErrProtocol (a
// malformed command) and zmtp.ErrAuthFailed (the authenticator refused).
var (
	// ErrCryptographic reports a box that does not authenticate, or one
	// whose contents contradict the handshake (a vouch for another key, a
	// cookie from another handshake).
	ErrCryptographic = errors.New("curve: cryptographic check failed")
	// ErrNonce reports a short nonce that did not increase, or a sender
	// that ran out of nonces.
	ErrNonce = errors.New("curve: short nonce out of order")
)

// malformed reports a command that breaks RFC 26's grammar.
func malformed(cmd, format string, args ...any) error {
	return fmt.Errorf("curve: malformed %s: %s (%w)", cmd, fmt.Sprintf(format, args...), zmtp.ErrProtocol)
}

// hello is a decoded HELLO body.
type hello struct {
	clientShort PublicKey // C'
	nonce       uint64
	box         []byte // Box[64 zero bytes](C'->S), helloBoxSize bytes
}

// parseHello decodes a HELLO body: version 1.0, 72 zero bytes of padding,
// C', a short nonce and the signature box.
func parseHello(b []byte) (hello, error) {
	if len(b) != helloBodySize {
		return hello{}, malformed("HELLO", "%d bytes, want %d", len(b), helloBodySize)
	}
	if b[0] != 1 || b[1] != 0 {
		return hello{}, malformed("HELLO", "CurveZMQ version %d.%d, want 1.0", b[0], b[1])
	}
	for _, c := range b[2 : 2+helloPadding] {
		if c != 0 {
			return hello{}, malformed("HELLO", "anti-amplification padding is not zero")
		}
	}
	off := 2 + helloPadding
	var h hello
	copy(h.clientShort[:], b[off:])
	off += KeySize
	h.nonce = binary.BigEndian.Uint64(b[off:])
	off += shortNonce
	h.box = b[off:]
	return h, nil
}

// appendHello appends a HELLO body; h.box must be helloBoxSize bytes.
func appendHello(dst []byte, h *hello) []byte {
	dst = append(dst, 1, 0)
	dst = append(dst, make([]byte, helloPadding)...)
	dst = append(dst, h.clientShort[:]...)
	dst = binary.BigEndian.AppendUint64(dst, h.nonce)
	return append(dst, h.box...)
}

// welcome is a decoded WELCOME body.
type welcome struct {
	nonce []byte // long nonce, 16 bytes
	box   []byte // Box[S' + cookie](S->C'), welcomeBoxSize bytes
}

// parseWelcome decodes a WELCOME body: a long nonce and a 144-byte box.
func parseWelcome(b []byte) (welcome, error) {
	if len(b) != welcomeBodySize {
		return welcome{}, malformed("WELCOME", "%d bytes, want %d", len(b), welcomeBodySize)
	}
	return welcome{nonce: b[:longNonce], box: b[longNonce:]}, nil
}

// initiate is a decoded INITIATE body.
type initiate struct {
	cookie []byte // cookieSize bytes: long nonce + Box[C' + s'](K)
	nonce  uint64
	box    []byte // Box[C + vouch + metadata](C'->S'), at least 144 bytes
}

// parseInitiate decodes an INITIATE body: the cookie, a short nonce and the
// box holding C, the vouch and the metadata.
func parseInitiate(b []byte) (initiate, error) {
	if len(b) < initiateBodyMin {
		return initiate{}, malformed("INITIATE", "%d bytes, want at least %d", len(b), initiateBodyMin)
	}
	return initiate{
		cookie: b[:cookieSize],
		nonce:  binary.BigEndian.Uint64(b[cookieSize:]),
		box:    b[cookieSize+shortNonce:],
	}, nil
}

// appendInitiate appends an INITIATE body.
func appendInitiate(dst []byte, in *initiate) []byte {
	dst = append(dst, in.cookie...)
	dst = binary.BigEndian.AppendUint64(dst, in.nonce)
	return append(dst, in.box...)
}

// initiatePlain is the decoded contents of INITIATE's box.
type initiatePlain struct {
	client     PublicKey // C, the client's long-term key
	vouchNonce []byte    // long nonce, 16 bytes
	vouchBox   []byte    // Box[C' + S](C->S'), vouchBoxSize bytes
	metadata   []byte
}

// parseInitiatePlain splits INITIATE's opened box.
func parseInitiatePlain(p []byte) (initiatePlain, error) {
	if len(p) < initiatePlainMin {
		return initiatePlain{}, malformed("INITIATE", "box holds %d bytes, want at least %d", len(p), initiatePlainMin)
	}
	var ip initiatePlain
	copy(ip.client[:], p)
	ip.vouchNonce = p[KeySize : KeySize+longNonce]
	ip.vouchBox = p[KeySize+longNonce : initiatePlainMin]
	ip.metadata = p[initiatePlainMin:]
	return ip, nil
}

// ready is a decoded READY body.
type ready struct {
	nonce uint64
	box   []byte // Box[metadata](S'->C'), at least 16 bytes
}

// parseReady decodes a READY body: a short nonce and the metadata box.
func parseReady(b []byte) (ready, error) {
	if len(b) < readyBodyMin {
		return ready{}, malformed("READY", "%d bytes, want at least %d", len(b), readyBodyMin)
	}
	return ready{nonce: binary.BigEndian.Uint64(b), box: b[shortNonce:]}, nil
}

// appendReady appends a READY body.
func appendReady(dst []byte, r *ready) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.nonce)
	return append(dst, r.box...)
}
