package salsa20

import (
	"testing"

	"golang.org/x/crypto/salsa20/salsa"
)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"1500B", 1500}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}}

func benchmarkXOR(b *testing.B, f func(out, in []byte, counter *[16]byte, key *[32]byte)) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			buf := make([]byte, size.n)
			var counter [16]byte
			var key [32]byte
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			for b.Loop() {
				f(buf, buf, &counter, &key)
			}
		})
	}
}

func BenchmarkXORKeyStream(b *testing.B) { benchmarkXOR(b, XORKeyStream) }

// BenchmarkXCrypto is the same work done by x/crypto, for comparison.
func BenchmarkXCrypto(b *testing.B) { benchmarkXOR(b, salsa.XORKeyStream) }
