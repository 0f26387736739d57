//go:build !(goexperiment.simd && amd64)

package poly1305

import "testing"

func avx2InUse() bool { return false }

// forEachPath runs f once: without the experiment there is only the scalar
// path.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("scalar", f)
}

// bulkTaken reports how many bytes of an n-byte message the four-lane path
// absorbs: none in this build.
func bulkTaken(n int) int { return 0 }

// forEachPathQuiet is forEachPath without subtests, for fuzz targets.
func forEachPathQuiet(f func()) { f() }
