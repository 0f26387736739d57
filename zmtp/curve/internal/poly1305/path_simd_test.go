//go:build goexperiment.simd && amd64

package poly1305

import "testing"

func avx2InUse() bool { return useAVX2 }

// forEachPath runs f once with the four-lane path taking every message of
// at least 64 bytes (when the CPU has AVX2) and once with the scalar path
// only, so that both are tested on a CPU that prefers the first. It reports
// nothing: TestBothPathsUsed checks which path each run takes.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	savedUse, savedMin := useAVX2, minBulk
	t.Cleanup(func() { useAVX2, minBulk = savedUse, savedMin })
	if savedUse {
		minBulk = bulkBlock
		t.Run("avx2", f)
		minBulk = savedMin
	}
	useAVX2 = false
	t.Run("scalar", f)
	useAVX2 = savedUse
}

// bulkTaken reports how many bytes of an n-byte message the four-lane path
// absorbs under the current settings.
func bulkTaken(n int) int {
	var a acc
	msg := make([]byte, n)
	return a.bulk(msg)
}

// forEachPathQuiet is forEachPath without subtests, for fuzz targets.
func forEachPathQuiet(f func()) {
	savedUse, savedMin := useAVX2, minBulk
	defer func() { useAVX2, minBulk = savedUse, savedMin }()
	if savedUse {
		minBulk = bulkBlock
		f()
		minBulk = savedMin
	}
	useAVX2 = false
	f()
}
