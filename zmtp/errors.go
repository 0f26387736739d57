package zmtp

import (
	"errors"
	"fmt"
)

// Errors a caller can test for with errors.Is. The errors returned carry
// details after these prefixes.
var (
	// ErrBadGreeting reports a greeting that is not a ZMTP 3.x greeting:
	// wrong signature or a malformed mechanism field.
	ErrBadGreeting = errors.New("zmtp: bad greeting")
	// ErrUnsupportedVersion reports a peer announcing a major version other than 3.
	ErrUnsupportedVersion = errors.New("zmtp: unsupported ZMTP version")
	// ErrMechanismMismatch reports a peer announcing another security mechanism.
	ErrMechanismMismatch = errors.New("zmtp: security mechanism mismatch")
	// ErrRoleMismatch reports an as-server combination the mechanism forbids.
	ErrRoleMismatch = errors.New("zmtp: as-server role mismatch")
	// ErrProtocol reports a frame or command that breaks the protocol.
	ErrProtocol = errors.New("zmtp: protocol error")
	// ErrFrameTooLarge reports a frame larger than the configured limit; it
	// is detected from the frame header, before the body is read.
	ErrFrameTooLarge = errors.New("zmtp: frame too large")
	// ErrMessageTooLarge reports a message whose frames together exceed the
	// configured limit.
	ErrMessageTooLarge = errors.New("zmtp: message too large")
	// ErrSocketType reports a missing, unknown or incompatible Socket-Type.
	ErrSocketType = errors.New("zmtp: socket type")
	// ErrHandshakeTimeout reports a greeting and handshake that did not
	// finish within Config.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("zmtp: handshake timed out")
	// ErrHeartbeatTimeout reports a peer from which nothing arrived within
	// the heartbeat timeout after a PING, or within the TTL of its PING.
	ErrHeartbeatTimeout = errors.New("zmtp: heartbeat timeout")
	// ErrAuthFailed reports a handshake refused by the server's authenticator.
	ErrAuthFailed = errors.New("zmtp: authentication failed")
	// ErrClosed reports use of a closed Conn.
	ErrClosed = errors.New("zmtp: connection closed")
)

// PeerError is the ERROR command a peer sent: it refused the handshake.
type PeerError struct {
	// Reason is the peer's error reason (at most 255 bytes, not trusted).
	Reason string
}

// Error implements error.
func (e *PeerError) Error() string {
	return fmt.Sprintf("zmtp: peer sent ERROR %q", e.Reason)
}
