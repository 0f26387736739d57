//go:build goexperiment.simd && amd64

package salsa20

import (
	"encoding/binary"
	"math"
	"simd/archsimd"

	"golang.org/x/crypto/salsa20/salsa"
)

// useAVX2 reports whether this CPU can run the eight-block path.
var useAVX2 = archsimd.X86.AVX2()

// useVPROLD reports whether the eight-block path may rotate with AVX-512's
// VPROLD (on 256-bit vectors, AVX512VL): one instruction where AVX2 needs
// two shifts and an or, which makes the rounds about a third shorter.
// Tests switch it off to cover the AVX2-only rotation too.
var useVPROLD = archsimd.X86.AVX512()

// chunk is what one pass of the AVX2 path encrypts: eight 64-byte blocks.
const chunk = 8 * 64

// XORKeyStream crypts bytes from in to out using the given key and counter,
// exactly as golang.org/x/crypto/salsa20/salsa.XORKeyStream does: counter
// holds the 8-byte nonce and the 64-bit little-endian block counter, and is
// not modified. In and out must overlap entirely or not at all, and out must
// be at least as long as in.
func XORKeyStream(out, in []byte, counter *[16]byte, key *[32]byte) {
	if len(in) == 0 {
		return
	}
	_ = out[len(in)-1]
	n := len(in) &^ (chunk - 1)
	if !useAVX2 || n == 0 {
		salsa.XORKeyStream(out, in, counter, key)
		return
	}
	// The vector code loads 32 bytes at a time; give it the counter in a
	// 32-byte buffer.
	var wide [32]byte
	copy(wide[:], counter[:])
	xorChunks(out[:n], in[:n], &wide, key)
	if n == len(in) {
		return
	}
	next := advance(counter, uint64(n/64))
	salsa.XORKeyStream(out[n:len(in)], in[n:], &next, key)
}

// advance returns counter with its 64-bit little-endian block counter
// (bytes 8 to 15) increased by n, wrapping as x/crypto's does.
func advance(counter *[16]byte, n uint64) [16]byte {
	c := *counter
	binary.LittleEndian.PutUint64(c[8:], binary.LittleEndian.Uint64(c[8:])+n)
	return c
}

// Vector constants, each loaded with one 256-bit load.
//
// The hot code must not contain any legacy (non-VEX) SSE instruction while
// the upper halves of the YMM registers are in use: on some CPUs each one
// costs a state transition, and this path ran ten times slower than x/crypto
// because of them. Go 1.26 emits such instructions for a logical right shift
// by a constant (the count goes through a legacy MOVQ; there is no
// immediate form), for spills of 128-bit values and for zeroing memory. So
// the rotations use the variable shift (VPSRLVD) with count vectors, no
// value is ever 128 bits wide (BroadcastUint32x8 builds one, so vectors of
// equal lanes are loaded from these tables or permuted from a loaded
// vector), and the code clears the upper halves before returning.
var (
	laneIndex = [8]uint32{0, 1, 2, 3, 4, 5, 6, 7}
	splat     [8][8]uint32 // splat[i] has i in every lane: Permute indices
	sigma     [4][8]uint32 // "expand 32-byte k", one word per vector
	rightBy   [4][8]uint32 // 32-7, 32-9, 32-13, 32-18
	eight     [8]uint32
)

func init() {
	for i := range 8 {
		for l := range 8 {
			splat[i][l] = uint32(i)
		}
		eight[i] = 8
		for w, s := range [4]uint32{0x61707865, 0x3320646e, 0x79622d32, 0x6b206574} {
			sigma[w][i] = s
		}
		for r, k := range [4]uint32{7, 9, 13, 18} {
			rightBy[r][i] = 32 - k
		}
	}
}

// rotl rotates each lane of v left by k bits; r holds 32-k in every lane.
// AVX2 has no vector rotate.
func rotl(v archsimd.Uint32x8, k uint64, r archsimd.Uint32x8) archsimd.Uint32x8 {
	return v.ShiftAllLeft(k).Or(v.ShiftRight(r))
}

// xorChunks encrypts len(in)/512 chunks; counter holds the 16 counter bytes
// then 16 unused ones. Each of the sixteen state words is one vector whose
// lane i belongs to block i of the chunk, so a quarter-round step is one
// vector add, rotate and xor for all eight blocks; the result is transposed
// back to eight consecutive 64-byte blocks before the xor with in.
func xorChunks(out, in []byte, counter *[32]byte, key *[32]byte) {
	// The loads are written out in full: through a function value
	// (load := archsimd.LoadUint32x8) each one was a call, not an
	// instruction.
	kv := archsimd.LoadUint8x32(key).AsUint32x8()
	cv := archsimd.LoadUint8x32(counter).AsUint32x8()
	// The state of one block, as x/crypto's core lays it out: the constant
	// in words 0, 5, 10, 15, the key in 1-4 and 11-14, the nonce in 6-7 and
	// the block counter in 8-9.
	j0 := archsimd.LoadUint32x8(&sigma[0])
	j1 := kv.Permute(archsimd.LoadUint32x8(&splat[0]))
	j2 := kv.Permute(archsimd.LoadUint32x8(&splat[1]))
	j3 := kv.Permute(archsimd.LoadUint32x8(&splat[2]))
	j4 := kv.Permute(archsimd.LoadUint32x8(&splat[3]))
	j5 := archsimd.LoadUint32x8(&sigma[1])
	j6 := cv.Permute(archsimd.LoadUint32x8(&splat[0]))
	j7 := cv.Permute(archsimd.LoadUint32x8(&splat[1]))
	j10 := archsimd.LoadUint32x8(&sigma[2])
	j11 := kv.Permute(archsimd.LoadUint32x8(&splat[4]))
	j12 := kv.Permute(archsimd.LoadUint32x8(&splat[5]))
	j13 := kv.Permute(archsimd.LoadUint32x8(&splat[6]))
	j14 := kv.Permute(archsimd.LoadUint32x8(&splat[7]))
	j15 := archsimd.LoadUint32x8(&sigma[3])
	r7, r9, r13, r18 := archsimd.LoadUint32x8(&rightBy[0]), archsimd.LoadUint32x8(&rightBy[1]), archsimd.LoadUint32x8(&rightBy[2]), archsimd.LoadUint32x8(&rightBy[3])

	// Lane i of words 8 and 9 is the block counter ctr+i; ctr is kept as a
	// scalar too, to see when the low word carries.
	ctr := binary.LittleEndian.Uint64(counter[8:])
	lo := cv.Permute(archsimd.LoadUint32x8(&splat[2])).Add(archsimd.LoadUint32x8(&laneIndex))
	hi := cv.Permute(archsimd.LoadUint32x8(&splat[3]))

	for len(in) >= chunk && len(out) >= chunk {
		j8, j9 := lo, hi
		if uint32(ctr) >= math.MaxUint32-7 {
			// The low word wraps in this chunk or right after it: the
			// high word differs between lanes or for the next chunk.
			j8, j9 = counterLanes(ctr)
			hi = archsimd.LoadUint32x8(&splat[1]).Add(hi)
		}
		lo = lo.Add(archsimd.LoadUint32x8(&eight))
		ctr += 8

		x0, x1, x2, x3, x4, x5, x6, x7 := j0, j1, j2, j3, j4, j5, j6, j7
		x8, x9, x10, x11, x12, x13, x14, x15 := j8, j9, j10, j11, j12, j13, j14, j15

		// The two loops below are the same rounds with two rotations; an
		// edit to one belongs in the other (the tests run both).
		if useVPROLD {
			for range 10 {
				// Column round.
				x4 = x4.Xor(x0.Add(x12).RotateAllLeft(7))
				x9 = x9.Xor(x5.Add(x1).RotateAllLeft(7))
				x14 = x14.Xor(x10.Add(x6).RotateAllLeft(7))
				x3 = x3.Xor(x15.Add(x11).RotateAllLeft(7))

				x8 = x8.Xor(x4.Add(x0).RotateAllLeft(9))
				x13 = x13.Xor(x9.Add(x5).RotateAllLeft(9))
				x2 = x2.Xor(x14.Add(x10).RotateAllLeft(9))
				x7 = x7.Xor(x3.Add(x15).RotateAllLeft(9))

				x12 = x12.Xor(x8.Add(x4).RotateAllLeft(13))
				x1 = x1.Xor(x13.Add(x9).RotateAllLeft(13))
				x6 = x6.Xor(x2.Add(x14).RotateAllLeft(13))
				x11 = x11.Xor(x7.Add(x3).RotateAllLeft(13))

				x0 = x0.Xor(x12.Add(x8).RotateAllLeft(18))
				x5 = x5.Xor(x1.Add(x13).RotateAllLeft(18))
				x10 = x10.Xor(x6.Add(x2).RotateAllLeft(18))
				x15 = x15.Xor(x11.Add(x7).RotateAllLeft(18))

				// Row round.
				x1 = x1.Xor(x0.Add(x3).RotateAllLeft(7))
				x6 = x6.Xor(x5.Add(x4).RotateAllLeft(7))
				x11 = x11.Xor(x10.Add(x9).RotateAllLeft(7))
				x12 = x12.Xor(x15.Add(x14).RotateAllLeft(7))

				x2 = x2.Xor(x1.Add(x0).RotateAllLeft(9))
				x7 = x7.Xor(x6.Add(x5).RotateAllLeft(9))
				x8 = x8.Xor(x11.Add(x10).RotateAllLeft(9))
				x13 = x13.Xor(x12.Add(x15).RotateAllLeft(9))

				x3 = x3.Xor(x2.Add(x1).RotateAllLeft(13))
				x4 = x4.Xor(x7.Add(x6).RotateAllLeft(13))
				x9 = x9.Xor(x8.Add(x11).RotateAllLeft(13))
				x14 = x14.Xor(x13.Add(x12).RotateAllLeft(13))

				x0 = x0.Xor(x3.Add(x2).RotateAllLeft(18))
				x5 = x5.Xor(x4.Add(x7).RotateAllLeft(18))
				x10 = x10.Xor(x9.Add(x8).RotateAllLeft(18))
				x15 = x15.Xor(x14.Add(x13).RotateAllLeft(18))
			}
		} else {
			for range 10 {
				// Column round.
				x4 = x4.Xor(rotl(x0.Add(x12), 7, r7))
				x9 = x9.Xor(rotl(x5.Add(x1), 7, r7))
				x14 = x14.Xor(rotl(x10.Add(x6), 7, r7))
				x3 = x3.Xor(rotl(x15.Add(x11), 7, r7))

				x8 = x8.Xor(rotl(x4.Add(x0), 9, r9))
				x13 = x13.Xor(rotl(x9.Add(x5), 9, r9))
				x2 = x2.Xor(rotl(x14.Add(x10), 9, r9))
				x7 = x7.Xor(rotl(x3.Add(x15), 9, r9))

				x12 = x12.Xor(rotl(x8.Add(x4), 13, r13))
				x1 = x1.Xor(rotl(x13.Add(x9), 13, r13))
				x6 = x6.Xor(rotl(x2.Add(x14), 13, r13))
				x11 = x11.Xor(rotl(x7.Add(x3), 13, r13))

				x0 = x0.Xor(rotl(x12.Add(x8), 18, r18))
				x5 = x5.Xor(rotl(x1.Add(x13), 18, r18))
				x10 = x10.Xor(rotl(x6.Add(x2), 18, r18))
				x15 = x15.Xor(rotl(x11.Add(x7), 18, r18))

				// Row round.
				x1 = x1.Xor(rotl(x0.Add(x3), 7, r7))
				x6 = x6.Xor(rotl(x5.Add(x4), 7, r7))
				x11 = x11.Xor(rotl(x10.Add(x9), 7, r7))
				x12 = x12.Xor(rotl(x15.Add(x14), 7, r7))

				x2 = x2.Xor(rotl(x1.Add(x0), 9, r9))
				x7 = x7.Xor(rotl(x6.Add(x5), 9, r9))
				x8 = x8.Xor(rotl(x11.Add(x10), 9, r9))
				x13 = x13.Xor(rotl(x12.Add(x15), 9, r9))

				x3 = x3.Xor(rotl(x2.Add(x1), 13, r13))
				x4 = x4.Xor(rotl(x7.Add(x6), 13, r13))
				x9 = x9.Xor(rotl(x8.Add(x11), 13, r13))
				x14 = x14.Xor(rotl(x13.Add(x12), 13, r13))

				x0 = x0.Xor(rotl(x3.Add(x2), 18, r18))
				x5 = x5.Xor(rotl(x4.Add(x7), 18, r18))
				x10 = x10.Xor(rotl(x9.Add(x8), 18, r18))
				x15 = x15.Xor(rotl(x14.Add(x13), 18, r18))
			}

		}

		// Words 0-7 are the first half of each block, words 8-15 the
		// second half.
		xorHalves(out, in, 0, x0.Add(j0), x1.Add(j1), x2.Add(j2), x3.Add(j3),
			x4.Add(j4), x5.Add(j5), x6.Add(j6), x7.Add(j7))
		xorHalves(out, in, 32, x8.Add(j8), x9.Add(j9), x10.Add(j10), x11.Add(j11),
			x12.Add(j12), x13.Add(j13), x14.Add(j14), x15.Add(j15))
		in = in[chunk:]
		out = out[chunk:]
	}
	// Leave the upper halves clean for the SSE code that runs next
	// (x/crypto's Salsa20 and Poly1305, the runtime).
	archsimd.ClearAVXUpperBits()
}

// counterLanes returns the low and high words of the block counters ctr to
// ctr+7. It is for the rare chunk (one in 2^29 of a stream) in which the low
// word carries into the high one or reaches its last value, and is kept out
// of line so that its scalar code, which the compiler may give legacy SSE
// instructions, is preceded by clearing the upper halves.
//
//go:noinline
func counterLanes(ctr uint64) (lo, hi archsimd.Uint32x8) {
	archsimd.ClearAVXUpperBits()
	var l, h [8]uint32
	for i := range l {
		v := ctr + uint64(i)
		l[i] = uint32(v)
		h[i] = uint32(v >> 32)
	}
	return archsimd.LoadUint32x8(&l), archsimd.LoadUint32x8(&h)
}

// xorHalves transposes eight vectors of eight words, a0[i] ... a7[i] being
// 32 bytes of block i, and xors each block's 32 bytes, at offset off within
// the block, from in into out.
func xorHalves(out, in []byte, off int, a0, a1, a2, a3, a4, a5, a6, a7 archsimd.Uint32x8) {
	// Pairs of words: t0 = a0[0] a1[0] a0[1] a1[1] | a0[4] a1[4] a0[5] a1[5].
	t0 := a0.InterleaveLoGrouped(a1).AsUint64x4()
	t1 := a0.InterleaveHiGrouped(a1).AsUint64x4()
	t2 := a2.InterleaveLoGrouped(a3).AsUint64x4()
	t3 := a2.InterleaveHiGrouped(a3).AsUint64x4()
	t4 := a4.InterleaveLoGrouped(a5).AsUint64x4()
	t5 := a4.InterleaveHiGrouped(a5).AsUint64x4()
	t6 := a6.InterleaveLoGrouped(a7).AsUint64x4()
	t7 := a6.InterleaveHiGrouped(a7).AsUint64x4()
	// Runs of four words: u0 = words 0-3 of block 0 | of block 4.
	u0 := t0.InterleaveLoGrouped(t2)
	u1 := t0.InterleaveHiGrouped(t2)
	u2 := t1.InterleaveLoGrouped(t3)
	u3 := t1.InterleaveHiGrouped(t3)
	v0 := t4.InterleaveLoGrouped(t6) // words 4-7 of block 0 | of block 4
	v1 := t4.InterleaveHiGrouped(t6)
	v2 := t5.InterleaveLoGrouped(t7)
	v3 := t5.InterleaveHiGrouped(t7)

	xor32(out, in, 0*64+off, u0.Select128FromPair(0, 2, v0))
	xor32(out, in, 1*64+off, u1.Select128FromPair(0, 2, v1))
	xor32(out, in, 2*64+off, u2.Select128FromPair(0, 2, v2))
	xor32(out, in, 3*64+off, u3.Select128FromPair(0, 2, v3))
	xor32(out, in, 4*64+off, u0.Select128FromPair(1, 3, v0))
	xor32(out, in, 5*64+off, u1.Select128FromPair(1, 3, v1))
	xor32(out, in, 6*64+off, u2.Select128FromPair(1, 3, v2))
	xor32(out, in, 7*64+off, u3.Select128FromPair(1, 3, v3))
}

// xor32 xors 32 bytes of keystream into out[at:] from in[at:].
func xor32(out, in []byte, at int, ks archsimd.Uint64x4) {
	src := (*[32]byte)(in[at : at+32])
	dst := (*[32]byte)(out[at : at+32])
	archsimd.LoadUint8x32(src).Xor(ks.AsUint8x32()).Store(dst)
}
