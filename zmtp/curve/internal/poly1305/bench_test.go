package poly1305

import (
	"testing"

	"golang.org/x/crypto/poly1305"
)

var benchSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"256B", 256}, {"1500B", 1500}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}}

func benchmarkSum(b *testing.B, f func(out *[16]byte, msg []byte, key *[32]byte)) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			msg := make([]byte, size.n)
			var key [32]byte
			for i := range key {
				key[i] = byte(i * 7)
			}
			var tag [16]byte
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			for b.Loop() {
				f(&tag, msg, &key)
			}
		})
	}
}

func BenchmarkSum(b *testing.B) { benchmarkSum(b, Sum) }

// BenchmarkSumXCrypto is the same work done by x/crypto, for comparison.
func BenchmarkSumXCrypto(b *testing.B) { benchmarkSum(b, poly1305.Sum) }
