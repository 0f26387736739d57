package salsa20

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/salsa20/salsa"
)

// lengths covers empty input, partial and whole 64-byte blocks, both sides
// of the 512-byte chunk the AVX2 path encrypts at once, and a long stream
// with a tail.
var lengths = []int{0, 1, 63, 64, 65, 511, 512, 513, 1000, 4096, 65536 + 7}

// counters are block counters (bytes 8 to 15 of the counter, little endian)
// that start at zero, at one (the CURVE message payload), and near the point
// where the low 32-bit word carries into the high one, inside a chunk, at a
// chunk's end and a few chunks ahead, and near the 64-bit wrap.
var counters = []uint64{
	0,
	1,
	0x00000000_fffffffe,
	0x00000000_fffffff8,
	0x00000000_fffffff9,
	0x00000000_ffffffe0,
	0x00000001_ffffffff,
	0xffffffff_fffffffc,
	0xffffffff_ffffffff,
}

// want is x/crypto's output, the reference.
func want(in []byte, counter *[16]byte, key *[32]byte) []byte {
	out := make([]byte, len(in))
	salsa.XORKeyStream(out, in, counter, key)
	return out
}

// check compares got with the reference without printing key material.
func check(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: output differs from x/crypto from byte %d of %d (block %d)", name, i, len(got), i/64)
	}
}

func TestXORKeyStreamMatchesXCrypto(t *testing.T) {
	t.Logf("AVX2 path in use: %v", avx2InUse())
	forEachPath(t, testMatchesXCrypto)
}

func testMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{'s', 'a', 'l', 's', 'a'}))
	for _, n := range lengths {
		for _, c := range counters {
			for trial := range 2 {
				var key [32]byte
				var counter [16]byte
				for i := range key {
					key[i] = byte(r.Uint32())
				}
				binary.LittleEndian.PutUint64(counter[:8], r.Uint64()) // the nonce
				binary.LittleEndian.PutUint64(counter[8:], c)
				in := make([]byte, n)
				for i := range in {
					in[i] = byte(r.Uint32())
				}
				saved := counter
				ref := want(in, &counter, &key)

				out := make([]byte, n+1)
				out[n] = 0xa5
				XORKeyStream(out[:n], in, &counter, &key)
				name := func(what string) string {
					return fmt.Sprintf("%s, len %d, block counter %#x, trial %d", what, n, c, trial)
				}
				check(t, name("separate"), out[:n], ref)
				if out[n] != 0xa5 {
					t.Errorf("%s: wrote past len(in)", name("separate"))
				}
				if counter != saved {
					t.Errorf("%s: counter modified", name("separate"))
				}

				inPlace := bytes.Clone(in)
				XORKeyStream(inPlace, inPlace, &counter, &key)
				check(t, name("in place"), inPlace, ref)

				// Decrypting is the same operation.
				XORKeyStream(inPlace, inPlace, &counter, &key)
				check(t, name("round trip"), inPlace, in)
			}
		}
	}
}

// TestXORKeyStreamSplit checks that a stream cut at any block boundary and
// continued with the advanced counter equals the stream in one call, as
// the codec relies on (block 0 alone, then the rest from counter 1).
func TestXORKeyStreamSplit(t *testing.T) {
	forEachPath(t, testSplit)
}

func testSplit(t *testing.T) {
	var key [32]byte
	var counter [16]byte
	for i := range key {
		key[i] = byte(3*i + 1)
	}
	binary.LittleEndian.PutUint64(counter[8:], 0xffffffe0)
	in := make([]byte, 3000)
	ref := want(in, &counter, &key)
	for cut := 0; cut <= len(in); cut += 64 {
		out := make([]byte, len(in))
		XORKeyStream(out[:cut], in[:cut], &counter, &key)
		next := counter
		binary.LittleEndian.PutUint64(next[8:], binary.LittleEndian.Uint64(counter[8:])+uint64(cut/64))
		XORKeyStream(out[cut:], in[cut:], &next, &key)
		check(t, fmt.Sprintf("cut at %d", cut), out, ref)
	}
}

func TestXORKeyStreamShortOutputPanics(t *testing.T) {
	var key [32]byte
	var counter [16]byte
	for _, n := range []int{1, 600} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("len(in) %d, len(out) %d: no panic", n, n-1)
				}
			}()
			XORKeyStream(make([]byte, n-1), make([]byte, n), &counter, &key)
		}()
	}
}

func TestXORKeyStreamDoesNotAllocate(t *testing.T) {
	var key [32]byte
	var counter [16]byte
	buf := make([]byte, 4096+100)
	if n := testing.AllocsPerRun(10, func() { XORKeyStream(buf, buf, &counter, &key) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// FuzzXORKeyStream compares with x/crypto for any key, counter and length;
// pad appends zero bytes so that short inputs from the mutator still reach
// the multi-block paths.
func FuzzXORKeyStream(f *testing.F) {
	f.Add([]byte{}, []byte{}, []byte{}, uint16(0), false)
	f.Add([]byte("key"), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}, []byte("text"), uint16(1000), true)
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 16), []byte{1}, uint16(4095), false)
	f.Fuzz(func(t *testing.T, keyBytes, counterBytes, data []byte, pad uint16, inPlace bool) {
		var key [32]byte
		var counter [16]byte
		copy(key[:], keyBytes)
		copy(counter[:], counterBytes)
		in := append(bytes.Clone(data), make([]byte, int(pad)%8192)...)
		ref := want(in, &counter, &key)
		out := make([]byte, len(in))
		if inPlace {
			out = bytes.Clone(in)
			XORKeyStream(out, out, &counter, &key)
		} else {
			XORKeyStream(out, in, &counter, &key)
		}
		check(t, "fuzz", out, ref)
	})
}
