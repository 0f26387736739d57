//go:build !(goexperiment.simd && amd64)

package poly1305

// bulk is where builds with GOEXPERIMENT=simd on amd64 absorb the long
// prefix of a message with AVX2; here every block goes through the scalar
// code, and bulk absorbs nothing.
func (a *acc) bulk(msg []byte) int { return 0 }
