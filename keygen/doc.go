// Package keygen holds zmqauth's CURVE key material: Z85 text encoding
// (ZeroMQ RFC 32), CURVE (X25519) keypairs, and zcert certificate files, the
// ZPL (RFC 4) files that CZMQ's zcert and pyzmq's zmq.auth read and write.
//
// The elliptic-curve arithmetic comes from the standard library (crypto/ecdh).
// Z85 and the zcert file format are written by hand here: neither the
// standard library nor golang.org/x/crypto implements them, and the few Go
// ZeroMQ bindings that do are cgo wrappers around libzmq and CZMQ.
//
// Secret keys are held in SecretKey, whose String, GoString, Format and
// LogValue methods redact the key, so %v, %#v, %x and slog never print it. No
// error returned by this package contains secret-key material, not even the
// offending character of a malformed secret key. The only ways to get a secret
// key's text are the explicit SecretKey.Z85, SecretKey.Bytes and
// Certificate.MarshalSecret.
package keygen
