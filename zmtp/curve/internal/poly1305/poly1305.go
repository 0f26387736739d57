// Package poly1305 is the Poly1305 one-time authenticator of RFC 8439, as
// golang.org/x/crypto/poly1305 computes it, with an AVX2 path that
// authenticates four 16-byte blocks at a time.
//
// It exists because Poly1305 is a large share of the CURVE MESSAGE cost at
// large frame sizes, next to the AVX2 Salsa20 of internal/salsa20:
// x/crypto's Poly1305 is scalar (one 16-byte block per multiplication) and no
// maintained Go library has a vector Poly1305. The AVX2 path is written with
// the experimental simd/archsimd package, so it is compiled only when the
// build sets GOEXPERIMENT=simd, and used only when the CPU has AVX2 and the
// message is long enough for it to win. Short messages, the tail of a long
// one, the final reduction and every other build use the scalar code in this
// file, so the tag is the same everywhere; tests compare it with x/crypto's.
package poly1305

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// TagSize is the length of a Poly1305 tag in bytes.
const TagSize = 16

// Sum writes to out the Poly1305 tag of msg under the one-time key key: the
// first 16 bytes of key are r (clamped as RFC 8439 requires), the last 16
// are s. A key must authenticate only one message.
func Sum(out *[16]byte, msg []byte, key *[32]byte) {
	var a acc
	a.setKey(key)
	msg = msg[a.bulk(msg):]
	full := len(msg) &^ (TagSize - 1)
	a.blocks(msg[:full], 1)
	if full < len(msg) {
		var last [TagSize]byte
		n := copy(last[:], msg[full:])
		last[n] = 1 // the padding bit replaces the 2^128 of a full block
		a.blocks(last[:], 0)
	}
	a.finish(out)
}

// Verify reports whether mac is the Poly1305 tag of msg under key, comparing
// in constant time.
func Verify(mac *[16]byte, msg []byte, key *[32]byte) bool {
	var tag [16]byte
	Sum(&tag, msg, key)
	return subtle.ConstantTimeCompare(tag[:], mac[:]) == 1
}

// acc is the running state of one tag computation in radix 2^64: the
// accumulator h = h0 + h1<<64 + h2<<128, kept only partially reduced (h2 is
// at most 5), the clamped multiplier r = r0 + r1<<64 and the final addend
// s = s0 + s1<<64.
type acc struct {
	h0, h1, h2 uint64
	r0, r1     uint64
	s0, s1     uint64
}

// Clamping clears the top four bits of every 32-bit word of r and the low
// two bits of its upper three words. It keeps r0 and r1 below 2^60, which
// blocks relies on.
const (
	clampLo = 0x0ffffffc0fffffff
	clampHi = 0x0ffffffc0ffffffc
)

// setKey sets r, clamped, and s from key.
func (a *acc) setKey(key *[32]byte) {
	a.r0 = binary.LittleEndian.Uint64(key[0:8]) & clampLo
	a.r1 = binary.LittleEndian.Uint64(key[8:16]) & clampHi
	a.s0 = binary.LittleEndian.Uint64(key[16:24])
	a.s1 = binary.LittleEndian.Uint64(key[24:32])
}

// blocks absorbs msg, whole 16-byte blocks, each with top<<128 added (one
// for a full block, zero for a padded last one): h = (h + m) * r mod p for
// each block m, partially reduced. h stays below 2^130 + 2^129, its top
// word at most 5; r clamped (r0 and r1 below 2^60) keeps every partial
// product within the words given to it.
func (a *acc) blocks(msg []byte, top uint64) {
	h0, h1, h2 := a.h0, a.h1, a.h2
	r0, r1 := a.r0, a.r1
	for len(msg) >= TagSize {
		var c uint64
		h0, c = bits.Add64(h0, binary.LittleEndian.Uint64(msg[0:8]), 0)
		h1, c = bits.Add64(h1, binary.LittleEndian.Uint64(msg[8:16]), c)
		h2 += top + c // at most 7

		// The product t = t0 + t1<<64 + t2<<128 + t3<<192, column by
		// column.
		hi00, t0 := bits.Mul64(h0, r0)
		hi10, lo10 := bits.Mul64(h1, r0)
		hi01, lo01 := bits.Mul64(h0, r1)
		hi11, lo11 := bits.Mul64(h1, r1)
		var c2 uint64
		t1, c := bits.Add64(hi00, lo10, 0)
		t2, c2 := bits.Add64(hi10, lo11, c)
		t3 := hi11 + c2
		t1, c = bits.Add64(t1, lo01, 0)
		t2, c2 = bits.Add64(t2, hi01, c)
		t3 += c2
		// h2 is at most 7 and r below 2^60: these products fit one word.
		t2, c = bits.Add64(t2, h2*r0, 0)
		t3 += h2*r1 + c

		// 2^130 = 5 mod p, so the part of t from bit 130 up, q, folds
		// back as 5q = 4q + q. 4q is t2 with its low two bits cleared,
		// and t3, as a 128-bit number; q is that shifted right by two.
		f0, f1 := t2&^3, t3
		h0, c = bits.Add64(t0, f0, 0)
		h1, c = bits.Add64(t1, f1, c)
		h2 = t2&3 + c
		f0 = f0>>2 | f1<<62
		f1 >>= 2
		h0, c = bits.Add64(h0, f0, 0)
		h1, c = bits.Add64(h1, f1, c)
		h2 += c

		msg = msg[TagSize:]
	}
	a.h0, a.h1, a.h2 = h0, h1, h2
}

// reduce returns h0 + h1<<64 + h2<<128 modulo p, fully reduced, in constant
// time; h2 must be at most 5, as blocks and bulk leave it.
func reduce(h0, h1, h2 uint64) (uint64, uint64, uint64) {
	// g = h - p = h + 5 - 2^130 is the answer when h >= p, that is when
	// h + 5 reaches 2^130.
	g0, c := bits.Add64(h0, 5, 0)
	g1, c := bits.Add64(h1, 0, c)
	g2 := h2 + c
	keep := (g2>>2 - 1) // all ones when h < p, zero when h >= p
	g2 -= 4
	h0 = h0&keep | g0&^keep
	h1 = h1&keep | g1&^keep
	h2 = h2&keep | g2&^keep
	return h0, h1, h2
}

// finish writes (h mod p + s) mod 2^128 to out.
func (a *acc) finish(out *[16]byte) {
	h0, h1, _ := reduce(a.h0, a.h1, a.h2)
	var c uint64
	h0, c = bits.Add64(h0, a.s0, 0)
	h1, _ = bits.Add64(h1, a.s1, c)
	binary.LittleEndian.PutUint64(out[0:8], h0)
	binary.LittleEndian.PutUint64(out[8:16], h1)
}
