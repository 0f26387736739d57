package zmtp

import (
	"context"
	"fmt"
)

// PLAIN (RFC 24): the client sends HELLO with a username and password, the
// server answers WELCOME (or ERROR), the client sends INITIATE with its
// metadata, the server answers READY with its own (or ERROR). Credentials
// travel in clear text; PLAIN belongs on trusted networks only.

// PlainClient is the PLAIN mechanism in the client role. Printing it never
// shows the password.
type PlainClient struct {
	username, password string
}

// NewPlainClient returns a PLAIN client presenting username and password
// (each at most 255 bytes).
func NewPlainClient(username, password string) (*PlainClient, error) {
	if len(username) > 255 {
		return nil, fmt.Errorf("zmtp: PLAIN username of %d bytes exceeds 255", len(username))
	}
	if len(password) > 255 {
		return nil, fmt.Errorf("zmtp: PLAIN password of %d bytes exceeds 255", len(password))
	}
	return &PlainClient{username: username, password: password}, nil
}

// Name returns "PLAIN".
func (m *PlainClient) Name() string { return "PLAIN" }

// AsServer returns false.
func (m *PlainClient) AsServer() bool { return false }

// String describes the mechanism without its password.
func (m *PlainClient) String() string { return fmt.Sprintf("PLAIN client (username %q)", m.username) }

// GoString is String, so that %#v does not print the password either.
func (m *PlainClient) GoString() string { return m.String() }

// Handshake runs the client side: HELLO, WELCOME, INITIATE, READY. A
// LocalFunc is called with nil, since INITIATE precedes the server's READY.
func (m *PlainClient) Handshake(_ context.Context, rw CommandReadWriter, info HandshakeInfo) (*HandshakeResult, error) {
	if err := rw.WriteCommand(Command{Name: CmdHello, Body: appendPlainHello(nil, m.username, m.password)}); err != nil {
		return nil, err
	}
	body, err := ExpectCommand(rw, CmdWelcome)
	if err != nil {
		return nil, err
	}
	if err := parsePlainWelcome(body); err != nil {
		return nil, err
	}
	local, err := LocalProperties(info, nil)
	if err != nil {
		return nil, err
	}
	initiate, err := AppendMetadata(nil, local)
	if err != nil {
		return nil, err
	}
	if err := rw.WriteCommand(Command{Name: CmdInitiate, Body: initiate}); err != nil {
		return nil, err
	}
	peer, err := readReady(rw)
	if err != nil {
		return nil, err
	}
	return &HandshakeResult{Peer: peer}, nil
}

// PlainServer is the PLAIN mechanism in the server role. It always consults
// its Authenticator; there is no accept-all default.
type PlainServer struct {
	auth   Authenticator
	domain string
}

// NewPlainServer returns a PLAIN server that authorizes every HELLO through
// auth with the ZAP domain domain. A nil auth returns ErrNoAuthenticator.
func NewPlainServer(auth Authenticator, domain string) (*PlainServer, error) {
	if auth == nil {
		return nil, ErrNoAuthenticator
	}
	return &PlainServer{auth: auth, domain: domain}, nil
}

// Name returns "PLAIN".
func (m *PlainServer) Name() string { return "PLAIN" }

// AsServer returns true.
func (m *PlainServer) AsServer() bool { return true }

// Handshake runs the server side: HELLO (authorized), WELCOME, INITIATE,
// READY. A LocalFunc is called after authorization and INITIATE, before
// READY, with the client's metadata and the authenticator's answer.
func (m *PlainServer) Handshake(ctx context.Context, rw CommandReadWriter, info HandshakeInfo) (*HandshakeResult, error) {
	if m.auth == nil {
		return nil, Refuse(rw, "no authenticator", ErrNoAuthenticator)
	}
	body, err := ExpectCommand(rw, CmdHello)
	if err != nil {
		return nil, Refuse(rw, "expected HELLO", err)
	}
	username, password, err := parsePlainHello(body)
	if err != nil {
		return nil, Refuse(rw, "malformed HELLO", err)
	}
	ar := m.auth.Authenticate(ctx, &AuthRequest{
		Domain:    m.domain,
		Address:   info.RemoteAddr,
		Mechanism: "PLAIN",
		Username:  username,
		Password:  password,
	})
	if ar.StatusCode != StatusOK {
		return nil, Refuse(rw, AuthErrorReason(ar), fmt.Errorf("user %q: %w", username, AuthError("PLAIN", ar)))
	}
	if err := rw.WriteCommand(Command{Name: CmdWelcome}); err != nil {
		return nil, err
	}
	body, err = ExpectCommand(rw, CmdInitiate)
	if err != nil {
		return nil, Refuse(rw, "expected INITIATE", err)
	}
	peer, err := parsePlainInitiate(body)
	if err != nil {
		return nil, Refuse(rw, "malformed INITIATE metadata", err)
	}
	res := &HandshakeResult{
		Peer:         peer,
		UserID:       ar.UserID,
		AuthMetadata: ar.Metadata,
		Username:     username,
	}
	local, err := LocalProperties(info, res)
	if err != nil {
		return nil, Refuse(rw, err.Error(), err)
	}
	ready, err := ReadyCommand(local)
	if err != nil {
		return nil, Refuse(rw, "internal error", err)
	}
	if err := rw.WriteCommand(ready); err != nil {
		return nil, err
	}
	return res, nil
}

// appendPlainHello appends a HELLO body: username and password, each
// prefixed by its 1-byte length. The caller has checked the lengths.
func appendPlainHello(dst []byte, username, password string) []byte {
	dst = append(dst, byte(len(username)))
	dst = append(dst, username...)
	dst = append(dst, byte(len(password)))
	return append(dst, password...)
}

// parsePlainHello decodes a HELLO body. Errors never contain the password.
func parsePlainHello(b []byte) (username, password string, err error) {
	if len(b) < 1 {
		return "", "", fmt.Errorf("%w: HELLO has no username length", ErrProtocol)
	}
	ulen := int(b[0])
	if len(b) < 1+ulen+1 {
		return "", "", fmt.Errorf("%w: HELLO of %d bytes is truncated", ErrProtocol, len(b))
	}
	username = string(b[1 : 1+ulen])
	rest := b[1+ulen:]
	plen := int(rest[0])
	if len(rest)-1 != plen {
		return "", "", fmt.Errorf("%w: HELLO password length does not match the command size", ErrProtocol)
	}
	return username, string(rest[1:]), nil
}

// parsePlainWelcome checks that a WELCOME body is empty.
func parsePlainWelcome(b []byte) error {
	if len(b) != 0 {
		return fmt.Errorf("%w: WELCOME carries %d unexpected bytes", ErrProtocol, len(b))
	}
	return nil
}

// parsePlainInitiate decodes an INITIATE body (metadata).
func parsePlainInitiate(b []byte) (Metadata, error) {
	md, err := ParseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("%w: INITIATE: %w", ErrProtocol, err)
	}
	return md, nil
}
