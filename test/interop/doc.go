// Package interop holds the suites that put zmqauth between real libzmq
// applications (pyzmq on Debian's libzmq 4.3): the sidecar's routes with
// every socket-type pair, allowlist changes, revocation and key rotation.
//
// The applications are zmtp/testdata/pypeer.py, the libzmq reference peer
// the zmtp tests use, driven by the same Go driver, internal/pypeer.
package interop
