package curve

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"golang.org/x/crypto/salsa20/salsa"

	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve/internal/poly1305"
	"github.com/zmqauth/zmqauth/zmtp/curve/internal/salsa20"
)

// The flags byte inside a MESSAGE box, as libzmq 4.3 writes it (the bits of
// its msg_t flags). Other bits are ignored on receipt, as libzmq does.
const (
	wireMore    = 0x01
	wireCommand = 0x02
)

// codec seals and opens MESSAGE commands for one connection after the
// handshake. It implements zmtp.FrameCodec.
//
// A MESSAGE box is XSalsa20-Poly1305 (NaCl's crypto_box_afternm) under the
// session key with the nonce prefix||short nonce. XSalsa20 first derives a
// subkey with HSalsa20 from the session key and the nonce's first 16 bytes;
// those bytes are the fixed prefix of one direction, so the codec derives
// each direction's subkey once and per message runs only Salsa20 with the
// short nonce and Poly1305, which is exactly what nacl/secretbox computes.
// Doing those two steps here lets the flags byte and the payload be
// encrypted straight into the caller's buffer, with no copy and no
// allocation. Salsa20 is internal/salsa20's, which is x/crypto's unless the
// build has GOEXPERIMENT=simd and the CPU AVX2 (then eight blocks at a time).
type codec struct {
	send direction
	_    [64]byte // keep the two directions, used by two goroutines, apart
	recv direction
}

// direction is one half of a codec. For sending, nonce is the last short
// nonce used; for receiving, the last one accepted.
type direction struct {
	subKey [32]byte // HSalsa20(prefix, session key)
	nonce  uint64
	closed bool
}

var _ zmtp.FrameCodec = (*codec)(nil)

// newCodec returns the codec for a session key. sendPrefix and recvPrefix
// are "CurveZMQMESSAGEC" and "CurveZMQMESSAGES" for a client, swapped for a
// server; sent and received are the last short nonces each side used in the
// handshake. The caller erases k.
func newCodec(k *sharedKey, sendPrefix, recvPrefix string, sent, received uint64) *codec {
	c := &codec{}
	deriveSubKey(&c.send.subKey, k, sendPrefix)
	deriveSubKey(&c.recv.subKey, k, recvPrefix)
	c.send.nonce = sent
	c.recv.nonce = received
	return c
}

func deriveSubKey(dst *[32]byte, k *sharedKey, prefix string) {
	var in [16]byte
	copy(in[:], prefix)
	salsa.HSalsa20(dst, &in, (*[32]byte)(k), &salsa.Sigma)
}

// SealedSize returns the MESSAGE body size for an n-byte payload: the short
// nonce, the Poly1305 tag, the flags byte and the payload.
func (c *codec) SealedSize(n int) int { return messageBodyOverhead + n }

// Seal appends the MESSAGE body (short nonce, box) carrying flags and
// payload to dst. payload must not overlap dst's spare capacity.
func (c *codec) Seal(dst []byte, flags zmtp.Flags, payload []byte) ([]byte, error) {
	d := &c.send
	if d.closed {
		return dst, fmt.Errorf("curve: sealing a frame: %w", zmtp.ErrClosed)
	}
	if d.nonce == math.MaxUint64 {
		return dst, fmt.Errorf("%w: all 2^64-1 short nonces are used, the connection must end", ErrNonce)
	}
	d.nonce++
	var wire byte
	if flags&zmtp.FlagMore != 0 {
		wire |= wireMore
	}
	if flags&zmtp.FlagCommand != 0 {
		wire |= wireCommand
	}

	start := len(dst)
	total := messageBodyOverhead + len(payload)
	dst = slices.Grow(dst, total)[:start+total]
	binary.BigEndian.PutUint64(dst[start:], d.nonce)
	tag := (*[16]byte)(dst[start+shortNonce:])
	ct := dst[start+shortNonce+boxOverhead:]

	var counter [16]byte
	binary.BigEndian.PutUint64(counter[:8], d.nonce)
	var block [64]byte // keystream block 0: Poly1305 key, then 32 bytes for the text
	salsa20.XORKeyStream(block[:], block[:], &counter, &d.subKey)
	ct[0] = wire ^ block[32]
	head := min(len(payload), 31)
	for i := range head {
		ct[1+i] = payload[i] ^ block[33+i]
	}
	if len(payload) > head {
		counter[8] = 1
		salsa20.XORKeyStream(ct[1+head:], payload[head:], &counter, &d.subKey)
	}
	poly1305.Sum(tag, ct, (*[32]byte)(block[:32]))
	clear(block[:])
	return dst, nil
}

// Open checks and decrypts a MESSAGE body and appends its payload to dst. The
// short nonce must exceed every one accepted before; the box must
// authenticate. Either failure is final: the connection must end.
func (c *codec) Open(dst []byte, body []byte) (zmtp.Flags, []byte, error) {
	d := &c.recv
	if d.closed {
		return 0, dst, fmt.Errorf("curve: opening a frame: %w", zmtp.ErrClosed)
	}
	if len(body) < messageBodyOverhead {
		return 0, dst, malformed("MESSAGE", "%d bytes, want at least %d", len(body), messageBodyOverhead)
	}
	n := binary.BigEndian.Uint64(body)
	if n <= d.nonce {
		return 0, dst, fmt.Errorf("%w: MESSAGE nonce %d after %d", ErrNonce, n, d.nonce)
	}
	tag := (*[16]byte)(body[shortNonce:])
	ct := body[shortNonce+boxOverhead:]

	var counter [16]byte
	binary.BigEndian.PutUint64(counter[:8], n)
	var block [64]byte
	salsa20.XORKeyStream(block[:], block[:], &counter, &d.subKey)
	if !poly1305.Verify(tag, ct, (*[32]byte)(block[:32])) {
		clear(block[:])
		return 0, dst, fmt.Errorf("%w: MESSAGE box does not authenticate", ErrCryptographic)
	}
	d.nonce = n

	wire := ct[0] ^ block[32]
	size := len(ct) - 1
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	out := dst[start:]
	head := min(size, 31)
	for i := range head {
		out[i] = ct[1+i] ^ block[33+i]
	}
	if size > head {
		counter[8] = 1
		salsa20.XORKeyStream(out[head:], ct[1+head:], &counter, &d.subKey)
	}
	clear(block[:])

	var flags zmtp.Flags
	if wire&wireMore != 0 {
		flags |= zmtp.FlagMore
	}
	if wire&wireCommand != 0 {
		flags |= zmtp.FlagCommand
	}
	return flags, dst, nil
}

// Close erases the session subkeys; Seal and Open then fail. It must not run
// concurrently with Seal or Open (zmtp.Conn holds both locks).
func (c *codec) Close() {
	clear(c.send.subKey[:])
	clear(c.recv.subKey[:])
	c.send.closed = true
	c.recv.closed = true
}
