// Package salsa20 is the Salsa20/20 stream cipher as golang.org/x/crypto's
// salsa20/salsa.XORKeyStream computes it, with an AVX2 path that encrypts
// eight blocks at a time (rotating with AVX-512's VPROLD where the CPU has
// it).
//
// It exists because Salsa20 bounds the CURVE MESSAGE throughput at large
// frame sizes: x/crypto's amd64 code is SSE2 (four blocks in 128-bit
// registers) and no maintained Go library has an AVX2 Salsa20. The AVX2 path
// is written by hand with the experimental simd/archsimd package, so it is
// compiled only when the build sets GOEXPERIMENT=simd (the Makefile does)
// and used only when the CPU has AVX2. Any other build or CPU, and the tail
// of every call shorter than eight blocks, uses x/crypto, so the output is
// the same everywhere.
package salsa20
