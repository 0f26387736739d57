//go:build !(goexperiment.simd && amd64)

package salsa20

func avx2InUse() bool { return false }
