// Package zmtp implements the ZeroMQ Message Transport Protocol 3.x in pure
// Go: the greeting, framing, commands and connection metadata of RFC 23
// (ZMTP 3.0) and RFC 37 (ZMTP 3.1), the NULL mechanism, the PLAIN mechanism
// of RFC 24, ZMTP 3.1 heartbeats, and the contract (Mechanism, FrameCodec)
// through which the CURVE mechanism of RFC 25/26 (package zmtp/curve) plugs
// in.
//
// It exists because no maintained Go library can carry CURVE: the pure-Go
// github.com/go-zeromq/zmq4 has no CURVE mechanism and no hook through which
// one could encrypt its frames, and the cgo bindings hand the wire to libzmq
// entirely, so a relay that must see, authenticate and re-frame each frame
// (the zmqauth sidecar) cannot be built on either. Everything here is
// written against the RFCs and checked against libzmq 4.3 in the tests.
//
// A Conn is one ZMTP connection after its greeting and security handshake:
// NewConn runs both over an established net.Conn, Dial connects first. The
// connection then reads and writes frames (ReadFrame, WriteFrame, Flush) or
// whole messages (ReadMessage, WriteMessage). It answers PING, sends PINGs
// when heartbeats are configured, enforces frame and message size limits
// before allocating, and hands every other command (SUBSCRIBE, CANCEL, ...)
// to the caller so that a relay can forward it.
//
// Security rules the package keeps: a server mechanism that authenticates
// has no accept-all default (ErrNoAuthenticator), passwords and secret keys
// never appear in errors, a hostile peer costs one connection (handshake
// deadline, handshake command size limit, frame size limit checked before
// any allocation).
package zmtp
