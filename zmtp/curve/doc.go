// Package curve implements the CURVE security mechanism of ZMTP 3.x: ZeroMQ
// RFC 25 (ZMTP-CURVE) carrying the CurveZMQ handshake and message boxes of
// RFC 26, in the client and the server role, wire-compatible with libzmq 4.3.
//
// A Server and a Client are zmtp.Mechanism values that a zmtp.Conn runs after
// the greeting; the handshake (HELLO, WELCOME, INITIATE, READY) yields a
// zmtp.FrameCodec that seals every later frame into a MESSAGE command.
//
// Why this is written here: no Go library implements ZMTP-CURVE. The pure-Go
// ZeroMQ implementations have no CURVE mechanism and the cgo bindings leave the
// wire to libzmq. What this package writes by hand is only the CURVE command
// codecs and the handshake state machine; the cryptography comes from the
// standard library and golang.org/x/crypto: X25519 from crypto/ecdh, the NaCl
// box key derivation from salsa20/salsa.HSalsa20 (what crypto_box_beforenm
// does), and XSalsa20-Poly1305 from nacl/secretbox, or, for MESSAGE, from
// Salsa20 and Poly1305 used directly, so that the flags byte and the payload
// are encrypted without first being copied together. Those two are the
// exception, this module's own, because x/crypto's SSE2 Salsa20 and scalar
// Poly1305 bound throughput at large frames: internal/salsa20 (an AVX2
// Salsa20 that falls back to x/crypto's salsa20/salsa) and internal/poly1305
// (Poly1305 in Go with an AVX2 path for long messages). Their AVX2 code is
// used only in builds with GOEXPERIMENT=simd, and both are tested to equal
// x/crypto's output. Tests check every box against
// golang.org/x/crypto/nacl/box.
//
// Wire details follow libzmq 4.3: HELLO is 200 bytes (version 1.0, 72 zero
// bytes of anti-amplification padding); short nonces start at 1 and strictly
// increase in each direction; the flags byte inside MESSAGE uses 0x01 for MORE
// and 0x02 for COMMAND (its other bits are ignored, as libzmq does); a server
// that refuses a client sends ERROR whose reason is the three-digit ZAP
// status code, the form libzmq's monitor reports as an authentication failure
// (the authenticator's text stays in the server's own error). On the wire libzmq
// carries each MESSAGE command in a data frame whose only outer flag is LONG
// (MORE and COMMAND travel inside the box), and treats a MESSAGE that arrives
// in a frame with the command flag as a command, dropping its data; framing
// is the engine's part (zmtp.Conn), this package produces and reads the
// MESSAGE body.
//
// Costs: the long-term keys are parsed once (NewServer, NewClient,
// Server.SetKeys) and every shared key is computed once per handshake, with
// crypto/ecdh and HSalsa20 rather than nacl/box, whose Precompute, Seal and
// Open each derive a public key first. A server handshake costs five X25519
// scalar multiplications (plus one per extra server key tried on HELLO):
// HELLO's box, drawing the short-term key, parsing that key again out of the
// cookie (crypto/ecdh derives the public key of every key it parses), the
// session key and the vouch. The fourth would be saved by keeping the parsed
// short-term key in memory between WELCOME and INITIATE, as libzmq does; this
// server keeps it only in the cookie instead (below). Sealing and opening a
// MESSAGE allocate nothing and touch each byte only in the cipher and the
// MAC.
//
// The server keeps no per-client secret between WELCOME and INITIATE: its
// short-term secret key travels in the cookie, boxed under a cookie key that
// the Server rotates (every 60 s by default; cookies made under the current or
// the previous key are accepted). A server accepts a HELLO made for any key of
// its key set, which SetKeys replaces at run time; this is how a server key
// rotates without an outage.
//
// Secret keys never appear in errors or printed output: SecretKey redacts
// itself under every fmt verb and in slog. Short-term secret keys and session
// keys held by this package are erased when a handshake fails and when a
// FrameCodec is closed; crypto/ecdh keeps private copies of the keys it
// parses, which only the garbage collector reclaims.
package curve
