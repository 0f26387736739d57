//go:build !(goexperiment.simd && amd64)

package salsa20

import "golang.org/x/crypto/salsa20/salsa"

// XORKeyStream crypts bytes from in to out using the given key and counter,
// exactly as golang.org/x/crypto/salsa20/salsa.XORKeyStream does: counter
// holds the 8-byte nonce and the 64-bit little-endian block counter, and is
// not modified. In and out must overlap entirely or not at all, and out must
// be at least as long as in.
//
// This build has no AVX2 path (it needs GOEXPERIMENT=simd on amd64), so
// every call goes to x/crypto.
func XORKeyStream(out, in []byte, counter *[16]byte, key *[32]byte) {
	salsa.XORKeyStream(out, in, counter, key)
}
