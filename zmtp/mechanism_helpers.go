package zmtp

import (
	"fmt"
	"strconv"
)

// Helpers shared by the mechanisms (NULL, PLAIN here; CURVE in zmtp/curve).

// ExpectCommand reads the next handshake command and returns its data when
// its name is name. An ERROR command becomes a *PeerError; any other command
// is an ErrProtocol error.
func ExpectCommand(rw CommandReadWriter, name string) ([]byte, error) {
	c, err := rw.ReadCommand()
	if err != nil {
		return nil, err
	}
	switch c.Name {
	case name:
		return c.Body, nil
	case CmdError:
		reason, err := ParseError(c.Body)
		if err != nil {
			return nil, err
		}
		return nil, &PeerError{Reason: reason}
	}
	return nil, fmt.Errorf("%w: expected %s, got %q", ErrProtocol, name, c.Name)
}

// Refuse sends an ERROR command carrying reason and returns err. A failure to
// write the ERROR is ignored: the handshake is failing anyway.
func Refuse(rw CommandReadWriter, reason string, err error) error {
	_ = rw.WriteCommand(ErrorCommand(reason))
	return err
}

// AuthErrorReason is the ERROR reason a server sends when its authenticator
// refuses: the three-digit ZAP status code, as libzmq sends it. libzmq
// reports exactly that form to its application as an authentication failure
// with the code (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH); any other text it drops
// and reports only a disconnect. The status text stays on the server side,
// in AuthError, for logs and metrics.
func AuthErrorReason(r AuthResult) string {
	if r.StatusCode >= 300 && r.StatusCode <= 599 {
		return strconv.Itoa(r.StatusCode / 100 * 100)
	}
	return strconv.Itoa(StatusInternal)
}

// AuthError describes a refused authentication for the server's own error
// return. It names the status and text, never the credentials.
func AuthError(mechanism string, r AuthResult) error {
	return fmt.Errorf("%w: %s: status %d %q", ErrAuthFailed, mechanism, r.StatusCode, r.StatusText)
}

// LocalProperties returns what this side announces: info.Local, or the
// result of info.LocalFunc(peer) when it is set. peer is nil where the
// protocol makes this side speak first.
func LocalProperties(info HandshakeInfo, peer *HandshakeResult) (Metadata, error) {
	if info.LocalFunc == nil {
		return info.Local, nil
	}
	md, err := info.LocalFunc(peer)
	if err != nil {
		return nil, fmt.Errorf("zmtp: choosing local metadata: %w", err)
	}
	return md, nil
}

// String describes the request without the password, so that logging an
// AuthRequest never leaks it.
func (r AuthRequest) String() string {
	pw := ""
	if r.Password != "" {
		pw = " password=[redacted]"
	}
	return fmt.Sprintf("AuthRequest{domain=%q address=%q mechanism=%s username=%q%s client-key=%x}",
		r.Domain, r.Address, r.Mechanism, r.Username, pw, r.ClientKey)
}

// GoString is String, so that %#v does not print the password either.
func (r AuthRequest) GoString() string { return r.String() }
