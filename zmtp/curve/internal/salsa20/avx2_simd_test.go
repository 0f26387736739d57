//go:build goexperiment.simd && amd64

package salsa20

import "testing"

func avx2InUse() bool { return useAVX2 }

// forEachPath runs f once for every rotation this CPU can run in the
// eight-block path: AVX-512's VPROLD when present, and AVX2's shifts
// always, so both are tested on a CPU that prefers the first.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := useVPROLD
	t.Cleanup(func() { useVPROLD = saved })
	if saved {
		t.Run("vprold", f)
	}
	useVPROLD = false
	t.Run("avx2-shifts", f)
	useVPROLD = saved
}
