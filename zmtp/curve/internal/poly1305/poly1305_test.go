package poly1305

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305"
)

// longLengths are past the four-lane path's threshold with and without a
// tail of partial steps and blocks.
var longLengths = []int{4096, 4096 + 15, 65536 + 7, 1 << 20}

// edgeKeys have r and s limbs at their extremes: all ones (which clamping
// trims to the largest r), zero, and single bits at limb edges.
func edgeKeys() map[string][32]byte {
	keys := map[string][32]byte{}
	var k [32]byte
	keys["zero"] = k
	for i := range k {
		k[i] = 0xff
	}
	keys["all-ones"] = k
	var rOnes [32]byte
	for i := range 16 {
		rOnes[i] = 0xff
	}
	keys["r-ones-s-zero"] = rOnes
	var sOnes [32]byte
	for i := 16; i < 32; i++ {
		sOnes[i] = 0xff
	}
	keys["r-zero-s-ones"] = sOnes
	var one [32]byte
	one[0] = 1
	keys["r-one"] = one
	var lane [32]byte
	binary.LittleEndian.PutUint64(lane[0:], 1<<26|1<<52)
	binary.LittleEndian.PutUint64(lane[8:], 1<<14|1<<40|1<<59)
	binary.LittleEndian.PutUint64(lane[16:], 1<<63)
	binary.LittleEndian.PutUint64(lane[24:], 1<<63)
	keys["limb-edges"] = lane
	var tops [32]byte
	for i := 0; i < 16; i += 4 {
		tops[i+3] = 0x0f // the top bits clamping keeps
	}
	keys["word-tops"] = tops
	return keys
}

// check compares Sum with x/crypto without printing key material.
func check(t *testing.T, what string, msg []byte, key *[32]byte) {
	t.Helper()
	var got, want [16]byte
	Sum(&got, msg, key)
	poly1305.Sum(&want, msg, key)
	if got != want {
		t.Errorf("%s: %d-byte message: tag differs from x/crypto's (the four-lane path took %d bytes)", what, len(msg), bulkTaken(len(msg)))
	}
}

func TestSumMatchesXCrypto(t *testing.T) {
	t.Logf("AVX2 path in use: %v", avx2InUse())
	forEachPath(t, testMatchesXCrypto)
}

func testMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{'p', 'o', 'l', 'y'}))
	random := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	long := make([]byte, 1<<20)
	random(long)
	for n := 0; n <= 1100; n++ {
		for range 3 {
			var key [32]byte
			random(key[:])
			check(t, "random key", long[:n], &key)
		}
	}
	for _, n := range longLengths {
		var key [32]byte
		random(key[:])
		check(t, "random key", long[:n], &key)
	}
}

func TestSumEdgeCases(t *testing.T) {
	forEachPath(t, testEdgeCases)
}

func testEdgeCases(t *testing.T) {
	lengths := []int{0, 1, 15, 16, 17, 32, 48, 63, 64, 65, 127, 128, 255, 256, 257, 320, 1024, 1100}
	lengths = append(lengths, longLengths...)
	ones := bytes.Repeat([]byte{0xff}, 1<<20)
	zeros := make([]byte, 1<<20)
	for name, key := range edgeKeys() {
		for _, n := range lengths {
			check(t, name+" key, 0xff message", ones[:n], &key)
			check(t, name+" key, zero message", zeros[:n], &key)
		}
	}
	// All-ones messages under many random keys stress the carries.
	r := rand.New(rand.NewChaCha8([32]byte{'c', 'a', 'r', 'r', 'y'}))
	for n := 0; n <= 1100; n += 7 {
		var key [32]byte
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		for i := range 16 { // r as large as clamping allows
			key[i] = 0xff
		}
		check(t, "r-ones random s, 0xff message", ones[:n], &key)
	}
}

func TestBothPathsUsed(t *testing.T) {
	var used []string
	forEachPath(t, func(t *testing.T) {
		if bulkTaken(64) > 0 {
			used = append(used, "avx2")
		} else {
			used = append(used, "scalar")
		}
	})
	t.Logf("paths: %v", used)
	if avx2InUse() && (len(used) != 2 || used[0] != "avx2" || used[1] != "scalar") {
		t.Errorf("paths run: %v, want avx2 then scalar", used)
	}
	if !avx2InUse() && (len(used) != 1 || used[0] != "scalar") {
		t.Errorf("paths run: %v, want scalar", used)
	}
	// With the default threshold, long messages take the four-lane path
	// when it is there and short ones never do.
	if got := bulkTaken(16); got != 0 {
		t.Errorf("a 16-byte message: four-lane path took %d bytes", got)
	}
	if avx2InUse() {
		if got := bulkTaken(65536 + 7); got != 65536 {
			t.Errorf("a 65543-byte message: four-lane path took %d bytes, want 65536", got)
		}
	}
}

func TestVerify(t *testing.T) {
	forEachPath(t, testVerify)
}

func testVerify(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{'v', 'e', 'r', 'i', 'f', 'y'}))
	for _, n := range []int{0, 1, 16, 100, 1500, 65536 + 7} {
		var key [32]byte
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(r.Uint32())
		}
		var tag [16]byte
		Sum(&tag, msg, &key)
		if !Verify(&tag, msg, &key) {
			t.Errorf("%d-byte message: Verify rejects the right tag", n)
		}
		for bit := range 128 {
			bad := tag
			bad[bit/8] ^= 1 << (bit % 8)
			if Verify(&bad, msg, &key) {
				t.Errorf("%d-byte message: Verify accepts the tag with bit %d flipped", n, bit)
			}
		}
		if n > 0 {
			msg[n/2] ^= 1
			if Verify(&tag, msg, &key) {
				t.Errorf("%d-byte message: Verify accepts a changed message", n)
			}
		}
	}
}

func TestNoAllocations(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		var key [32]byte
		var tag [16]byte
		for _, n := range []int{0, 100, 65536 + 7} {
			msg := make([]byte, n)
			if a := testing.AllocsPerRun(10, func() { Sum(&tag, msg, &key) }); a != 0 {
				t.Errorf("Sum of %d bytes: %v allocations, want 0", n, a)
			}
			if a := testing.AllocsPerRun(10, func() { Verify(&tag, msg, &key) }); a != 0 {
				t.Errorf("Verify of %d bytes: %v allocations, want 0", n, a)
			}
		}
	})
}

// FuzzSum compares Sum with x/crypto for arbitrary keys and messages,
// repeating the message to reach long lengths cheaply. Both paths run on
// every input.
func FuzzSum(f *testing.F) {
	f.Add([]byte("key"), []byte("message"), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 64), uint16(17))
	f.Fuzz(func(t *testing.T, k, msg []byte, repeat uint16) {
		var key [32]byte
		copy(key[:], k)
		if len(msg) > 0 {
			msg = bytes.Repeat(msg, 1+int(repeat)%(1+(1<<16)/len(msg)))
		}
		forEachPathQuiet(func() { check(t, "fuzz", msg, &key) })
	})
}
