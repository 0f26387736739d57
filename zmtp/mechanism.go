package zmtp

import (
	"context"
	"errors"
)

// Command is a ZMTP command frame split into its name and body (RFC 23 and 37).
type Command struct {
	// Name is the command name, 1 to 255 bytes, e.g. "READY", "HELLO".
	Name string
	// Body is everything after the name.
	Body []byte
}

// CommandReadWriter carries a mechanism's handshake. Every frame exchanged
// during the handshake is a command frame.
type CommandReadWriter interface {
	// ReadCommand reads the next command. It fails on a non-command frame,
	// on a frame larger than the handshake limit, and when the handshake
	// deadline passes.
	ReadCommand() (Command, error)
	// WriteCommand writes one command frame.
	WriteCommand(Command) error
}

// HandshakeInfo is what the connection knows before the mechanism runs.
type HandshakeInfo struct {
	// Local holds the properties this side announces in READY or INITIATE
	// (Socket-Type, Identity, ...), used when LocalFunc is nil.
	Local Metadata
	// LocalFunc, when set, replaces Local and lets this side choose its
	// properties after seeing the peer's: the mechanism reads the peer's
	// metadata first wherever its protocol allows (NULL, either role: read
	// the peer's READY before sending ours; PLAIN and CURVE servers: after
	// INITIATE is checked and authorized, before READY) and passes what it
	// has learnt. Where the protocol makes this side speak first (PLAIN and
	// CURVE clients, in INITIATE) it is called with nil. An error from it
	// ends the handshake; a server sends ERROR with the error's text first.
	// A relay uses this to present each end's real socket type to the other.
	LocalFunc func(peer *HandshakeResult) (Metadata, error)
	// RemoteAddr is the peer's network address, passed to the authenticator.
	RemoteAddr string
	// PeerMinor is the minor ZMTP version the peer announced (0 or 1).
	PeerMinor byte
}

// HandshakeResult is what a completed handshake established.
type HandshakeResult struct {
	// Peer holds the properties the peer announced.
	Peer Metadata
	// UserID is the identity the server's authenticator returned; empty on
	// the client side and for mechanisms without an authenticator.
	UserID string
	// AuthMetadata holds the metadata the authenticator returned.
	AuthMetadata Metadata
	// ClientKey is the client's long-term CURVE public key, as seen by a
	// CURVE server; nil otherwise.
	ClientKey []byte
	// Username is the PLAIN username, as seen by a PLAIN server.
	Username string
	// Codec seals and opens frames after the handshake; nil when frames
	// travel in the clear (NULL, PLAIN).
	Codec FrameCodec
}

// Mechanism is a configured security mechanism in one role (client or
// server). One value serves many connections concurrently: per-connection
// state lives inside Handshake and in the FrameCodec it returns.
type Mechanism interface {
	// Name is the mechanism name as written in the greeting: "NULL", "PLAIN", "CURVE".
	Name() string
	// AsServer reports whether this side is the mechanism's server; it is
	// the greeting's as-server field.
	AsServer() bool
	// Handshake runs the mechanism's command exchange until both sides are
	// READY. On failure a server sends ERROR with the reason before returning.
	Handshake(ctx context.Context, rw CommandReadWriter, info HandshakeInfo) (*HandshakeResult, error)
}

// FrameCodec wraps frames in MESSAGE commands after a handshake (CURVE). Seal
// is called from one goroutine and Open from one goroutine; the two may run
// concurrently.
type FrameCodec interface {
	// SealedSize is the body size (after the name "MESSAGE") of the MESSAGE
	// command that carries a payload of n bytes.
	SealedSize(n int) int
	// Seal appends to dst the MESSAGE command body carrying one frame with
	// the given MORE and COMMAND flags and payload, and returns the result.
	Seal(dst []byte, flags Flags, payload []byte) ([]byte, error)
	// Open decodes a MESSAGE command body and appends the frame's payload to
	// dst. It rejects a nonce that does not increase and a box that fails to
	// authenticate.
	Open(dst []byte, body []byte) (Flags, []byte, error)
	// Close erases the session keys.
	Close()
}

// Flags are the frame flags a caller sees: MORE and COMMAND. The wire's LONG
// bit is the engine's business.
type Flags byte

const (
	// FlagMore marks a frame that is followed by another frame of the same message.
	FlagMore Flags = 0x01
	// FlagCommand marks a command frame.
	FlagCommand Flags = 0x04
)

// AuthRequest holds the facts of a handshake, handed to an Authenticator
// with the semantics of a ZAP request (RFC 27).
type AuthRequest struct {
	// Domain is the ZAP domain configured on the server.
	Domain string
	// Address is the peer's network address.
	Address string
	// RoutingID is the routing id of the connection, if any.
	RoutingID []byte
	// Mechanism is "NULL", "PLAIN" or "CURVE".
	Mechanism string
	// ClientKey is the client's 32-byte long-term public key (CURVE).
	ClientKey []byte
	// Username and Password are the PLAIN credentials.
	Username, Password string
}

// AuthResult is an Authenticator's answer, with ZAP status codes.
type AuthResult struct {
	// StatusCode is 200 (allow), 300 (temporary error), 400 (deny) or 500
	// (internal error). Anything but 200 ends the handshake.
	StatusCode int
	// StatusText is the reason, sent to the peer in the ERROR command when
	// the status is not 200. It must not contain secrets.
	StatusText string
	// UserID is the authenticated identity, exposed as the "User-Id" property.
	UserID string
	// Metadata is extra metadata attached to the session.
	Metadata Metadata
}

// ZAP status codes (RFC 27).
const (
	StatusOK        = 200
	StatusTemporary = 300
	StatusDenied    = 400
	StatusInternal  = 500
)

// Authenticator decides whether a client may complete the handshake. It is
// called by server mechanisms that authenticate (PLAIN, CURVE, and NULL when
// one is configured). It must be safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, req *AuthRequest) AuthResult
}

// AuthenticatorFunc adapts a function to the Authenticator interface.
type AuthenticatorFunc func(ctx context.Context, req *AuthRequest) AuthResult

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, req *AuthRequest) AuthResult {
	return f(ctx, req)
}

// ErrNoAuthenticator is returned when a server mechanism that needs an
// authenticator has none. There is no accept-all default.
var ErrNoAuthenticator = errors.New("zmtp: server mechanism has no authenticator configured")
