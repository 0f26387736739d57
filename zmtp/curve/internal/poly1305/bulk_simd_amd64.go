//go:build goexperiment.simd && amd64

package poly1305

import "simd/archsimd"

// useAVX2 reports whether this CPU can run the four-lane path. Tests switch
// it off to cover the scalar path on the same machine.
var useAVX2 = archsimd.X86.AVX2()

// minBulk is the shortest message the four-lane path takes: below it the
// cost of computing r^2, r^3 and r^4, of filling the vector operands and of
// folding the lanes together is not repaid. Measured on an AMD EPYC against
// the scalar path: at 448 bytes both take about 130 ns, at 512 the
// four-lane path is slightly faster, at 1 KiB it takes 25% less time, at
// 64 KiB 40%. Tests lower it to cover short messages.
var minBulk = 512

// bulkBlock is what one step of the four-lane path absorbs: four 16-byte
// Poly1305 blocks, one per lane.
const bulkBlock = 4 * TagSize

// The four-lane path holds each lane's accumulator in five 26-bit limbs, one
// per 64-bit vector lane, so that VPMULUDQ (32x32 to 64-bit products) can
// multiply them: limb i of lane j is lane j of vector i.
//
// Each step absorbs 64 bytes, four blocks, one per lane, so one lane gets
// the blocks 4k+j for a fixed j. Every step but the last multiplies all
// four lanes by r^4 after adding their block; the last multiplies the lane
// of the blocks 4k+j by r^(4-j) instead, so that block b of n ends up
// multiplied by r^(n-b), as in the serial h = (h + m) * r, and the lanes'
// sum is the serial accumulator. Loading 64 bytes as two vectors and
// interleaving their 64-bit halves puts blocks 0, 2, 1, 3 in lanes 0 to 3,
// so the last step's powers are r^4, r^2, r^3, r^1 in lane order.
//
// The vector code must not contain any legacy (non-VEX) SSE instruction
// while the upper halves of the YMM registers are in use: on some CPUs each
// one costs a state transition (see internal/salsa20, which ran ten times
// slower because of them). Go 1.26 emits such instructions for shifts by a
// constant count, for 128-bit values and for zeroing memory. So the shifts
// are the variable ones (VPSRLVQ, VPSLLVQ) with count vectors loaded from
// the tables below, every vector is 256 bits wide, the memory the vector
// code writes is zeroed by the caller before it starts, and the code clears
// the upper halves before returning.
var (
	mask26 = [4]uint64{1<<26 - 1, 1<<26 - 1, 1<<26 - 1, 1<<26 - 1}
	top24  = [4]uint64{1 << 24, 1 << 24, 1 << 24, 1 << 24} // 2^128 in limb 4
	by2    = [4]uint64{2, 2, 2, 2}
	by12   = [4]uint64{12, 12, 12, 12}
	by14   = [4]uint64{14, 14, 14, 14}
	by26   = [4]uint64{26, 26, 26, 26}
	by40   = [4]uint64{40, 40, 40, 40}
	by52   = [4]uint64{52, 52, 52, 52}
	lane0  = [8]uint32{0, 1, 0, 1, 0, 1, 0, 1} // VPERMD indices: copy lane 0
)

// powers holds a multiplier for every lane as vector operands: limbs r0 to
// r4 and 5*r1 to 5*r4 (2^130 = 5 mod p, so products past limb 4 fold back
// times five).
type powers struct {
	r [5][4]uint64
	s [4][4]uint64 // s[i] = 5 * r[i+1]
}

// set makes lane j's multiplier the fully reduced value
// v = v0 + v1<<64 + v2<<128 (v2 at most 3).
func (p *powers) set(j int, v0, v1, v2 uint64) {
	// Plain stores: a local array copied here would be read back with
	// wide loads that cannot be forwarded from the narrow stores.
	const m = 1<<26 - 1
	l1 := v0 >> 26 & m
	l2 := (v0>>52 | v1<<12) & m
	l3 := v1 >> 14 & m
	l4 := v1>>40 | v2<<24
	p.r[0][j] = v0 & m
	p.r[1][j] = l1
	p.r[2][j] = l2
	p.r[3][j] = l3
	p.r[4][j] = l4
	p.s[0][j] = 5 * l1
	p.s[1][j] = 5 * l2
	p.s[2][j] = 5 * l3
	p.s[3][j] = 5 * l4
}

// bulkState is everything the vector code reads and writes, prepared (and
// zeroed) by scalar code before it starts.
type bulkState struct {
	last powers       // r^4, r^2, r^3, r^1: set by the caller
	step powers       // r^4 in every lane: set by lanes
	h    [5][4]uint64 // the lanes' limbs after the last block
}

// bulk absorbs the longest prefix of msg that is a whole number of 64-byte
// steps, if msg is long enough and the CPU has AVX2, and returns its
// length. a must be fresh: its accumulator zero.
func (a *acc) bulk(msg []byte) int {
	if !useAVX2 || len(msg) < minBulk || len(msg) < bulkBlock {
		return 0
	}
	n := len(msg) &^ (bulkBlock - 1)

	var st bulkState
	// r^2, r^3 and r^4, fully reduced: multiplying by r is absorbing a
	// zero block with no 2^128 added.
	var zero [TagSize]byte
	r0, r1 := a.r0, a.r1
	pw := acc{h0: r0, h1: r1, r0: r0, r1: r1}
	pw.blocks(zero[:], 0)
	p20, p21, p22 := reduce(pw.h0, pw.h1, pw.h2)
	pw.blocks(zero[:], 0)
	p30, p31, p32 := reduce(pw.h0, pw.h1, pw.h2)
	pw.blocks(zero[:], 0)
	p40, p41, p42 := reduce(pw.h0, pw.h1, pw.h2)
	st.last.set(0, p40, p41, p42)
	st.last.set(1, p20, p21, p22)
	st.last.set(2, p30, p31, p32)
	st.last.set(3, r0, r1, 0)

	lanes(&st, msg[:n])

	// Sum the lanes and carry to five 26-bit limbs, then to radix 2^64.
	var l [5]uint64
	for i := range l {
		l[i] = st.h[i][0] + st.h[i][1] + st.h[i][2] + st.h[i][3]
	}
	const m = 1<<26 - 1
	for i := range 4 {
		l[i+1] += l[i] >> 26
		l[i] &= m
	}
	l[0] += 5 * (l[4] >> 26)
	l[4] &= m
	for i := range 4 {
		l[i+1] += l[i] >> 26
		l[i] &= m
	}
	// l[0] to l[3] are below 2^26 and l[4] at most 2^26: h is below 2^130 + 2^104.
	a.h0 = l[0] | l[1]<<26 | l[2]<<52
	a.h1 = l[2]>>12 | l[3]<<14 | l[4]<<40
	a.h2 = l[4] >> 24
	return n
}

// lanes runs the four-lane path over msg, a whole number of 64-byte steps,
// and stores the lanes' limbs in st.h, each below 2^26 plus a little.
//
//go:noinline
func lanes(st *bulkState, msg []byte) {
	mask, top := archsimd.LoadUint64x4(&mask26), archsimd.LoadUint64x4(&top24)
	sh2, sh12, sh14, sh26, sh40, sh52 := archsimd.LoadUint64x4(&by2), archsimd.LoadUint64x4(&by12), archsimd.LoadUint64x4(&by14), archsimd.LoadUint64x4(&by26), archsimd.LoadUint64x4(&by40), archsimd.LoadUint64x4(&by52)

	// split loads four blocks and returns their limbs, 2^128 included.
	split := func(b *[64]byte) (m0, m1, m2, m3, m4 archsimd.Uint64x4) {
		x := archsimd.LoadUint8x32((*[32]byte)(b[0:32])).AsUint64x4()
		y := archsimd.LoadUint8x32((*[32]byte)(b[32:64])).AsUint64x4()
		lo := x.InterleaveLoGrouped(y) // low halves of blocks 0, 2, 1, 3
		hi := x.InterleaveHiGrouped(y)
		m0 = lo.And(mask)
		m1 = lo.ShiftRight(sh26).And(mask)
		m2 = lo.ShiftRight(sh52).Or(hi.ShiftLeft(sh12)).And(mask)
		m3 = hi.ShiftRight(sh14).And(mask)
		m4 = hi.ShiftRight(sh40).Or(top)
		return
	}

	// Each pass multiplies every lane by its power, st.step's or, on the
	// last pass, st.last's, and carries so that every limb is below 2^26
	// but limb 1, which may exceed it by a little; then it adds the next
	// four blocks. The limbs must stay below 2^32, since VPMULUDQ reads
	// the low half of each lane: they are below 2^27.1 after the addition,
	// and with 5*r below 2^29 each sum of five products is below 2^59.
	// The steps' multiplier is lane 0 of the last one, copied to all lanes
	// here: vector stores that the loop's vector loads can be forwarded
	// from, unlike the scalar stores that filled st.last.
	idx := archsimd.LoadUint32x8(&lane0)
	for i := range st.last.r {
		archsimd.LoadUint64x4(&st.last.r[i]).AsUint32x8().Permute(idx).AsUint64x4().Store(&st.step.r[i])
	}
	for i := range st.last.s {
		archsimd.LoadUint64x4(&st.last.s[i]).AsUint32x8().Permute(idx).AsUint64x4().Store(&st.step.s[i])
	}

	h0, h1, h2, h3, h4 := split((*[64]byte)(msg[0:64]))
	msg = msg[64:]
	p := &st.step
	for {
		last := len(msg) < 64
		if last {
			p = &st.last
		}
		a0, a1, a2, a3, a4 := h0.AsUint32x8(), h1.AsUint32x8(), h2.AsUint32x8(), h3.AsUint32x8(), h4.AsUint32x8()
		r0 := archsimd.LoadUint64x4(&p.r[0]).AsUint32x8()
		r1 := archsimd.LoadUint64x4(&p.r[1]).AsUint32x8()
		r2 := archsimd.LoadUint64x4(&p.r[2]).AsUint32x8()
		r3 := archsimd.LoadUint64x4(&p.r[3]).AsUint32x8()
		r4 := archsimd.LoadUint64x4(&p.r[4]).AsUint32x8()
		s1 := archsimd.LoadUint64x4(&p.s[0]).AsUint32x8()
		s2 := archsimd.LoadUint64x4(&p.s[1]).AsUint32x8()
		s3 := archsimd.LoadUint64x4(&p.s[2]).AsUint32x8()
		s4 := archsimd.LoadUint64x4(&p.s[3]).AsUint32x8()

		d0 := a0.MulEvenWiden(r0).Add(a1.MulEvenWiden(s4)).Add(a2.MulEvenWiden(s3)).Add(a3.MulEvenWiden(s2)).Add(a4.MulEvenWiden(s1))
		d1 := a0.MulEvenWiden(r1).Add(a1.MulEvenWiden(r0)).Add(a2.MulEvenWiden(s4)).Add(a3.MulEvenWiden(s3)).Add(a4.MulEvenWiden(s2))
		d2 := a0.MulEvenWiden(r2).Add(a1.MulEvenWiden(r1)).Add(a2.MulEvenWiden(r0)).Add(a3.MulEvenWiden(s4)).Add(a4.MulEvenWiden(s3))
		d3 := a0.MulEvenWiden(r3).Add(a1.MulEvenWiden(r2)).Add(a2.MulEvenWiden(r1)).Add(a3.MulEvenWiden(r0)).Add(a4.MulEvenWiden(s4))
		d4 := a0.MulEvenWiden(r4).Add(a1.MulEvenWiden(r3)).Add(a2.MulEvenWiden(r2)).Add(a3.MulEvenWiden(r1)).Add(a4.MulEvenWiden(r0))

		// Two interleaved carry chains, 0-1-2-3 and 3-4-0-1.
		c := d0.ShiftRight(sh26)
		d0 = d0.And(mask)
		d1 = d1.Add(c)
		c = d3.ShiftRight(sh26)
		d3 = d3.And(mask)
		d4 = d4.Add(c)

		c = d1.ShiftRight(sh26)
		d1 = d1.And(mask)
		d2 = d2.Add(c)
		c = d4.ShiftRight(sh26) // below 2^34: times five with a shift and an add
		d4 = d4.And(mask)
		d0 = d0.Add(c).Add(c.ShiftLeft(sh2))

		c = d2.ShiftRight(sh26)
		d2 = d2.And(mask)
		d3 = d3.Add(c)
		c = d0.ShiftRight(sh26)
		d0 = d0.And(mask)
		d1 = d1.Add(c)

		c = d3.ShiftRight(sh26)
		d3 = d3.And(mask)
		d4 = d4.Add(c)

		h0, h1, h2, h3, h4 = d0, d1, d2, d3, d4
		if last {
			break
		}
		m0, m1, m2, m3, m4 := split((*[64]byte)(msg[0:64]))
		h0, h1, h2, h3, h4 = h0.Add(m0), h1.Add(m1), h2.Add(m2), h3.Add(m3), h4.Add(m4)
		msg = msg[64:]
	}
	h0.Store(&st.h[0])
	h1.Store(&st.h[1])
	h2.Store(&st.h[2])
	h3.Store(&st.h[3])
	h4.Store(&st.h[4])
	// Leave the upper halves clean for the scalar code that runs next.
	archsimd.ClearAVXUpperBits()
}
