//go:build !(goexperiment.simd && amd64)

package salsa20

import "testing"

func avx2InUse() bool { return false }

// forEachPath runs f once: without the experiment there is only x/crypto.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("x-crypto", f)
}
