package zmtp

import (
	"context"
	"fmt"
)

// NullMechanism is the NULL security mechanism (RFC 23 and 37): no
// authentication, no confidentiality, a READY exchange carrying metadata.
// The as-server flag is always zero. In the server role it may consult an
// Authenticator (ZAP with mechanism "NULL"); without one it accepts every
// peer, as libzmq does, which is acceptable only because NULL is used on
// localhost.
type NullMechanism struct {
	server bool
	auth   Authenticator
	domain string
}

// NewNullClient returns the NULL mechanism for the connecting side.
func NewNullClient() *NullMechanism { return &NullMechanism{} }

// NewNullServer returns the NULL mechanism for the accepting side. When auth
// is not nil every peer is authorized through it (with the ZAP domain
// domain) before the READY exchange; a refusal ends the handshake with
// ERROR.
func NewNullServer(auth Authenticator, domain string) *NullMechanism {
	return &NullMechanism{server: true, auth: auth, domain: domain}
}

// Name returns "NULL".
func (m *NullMechanism) Name() string { return "NULL" }

// AsServer returns false: RFC 37 requires the NULL as-server flag to be zero.
func (m *NullMechanism) AsServer() bool { return false }

// Handshake exchanges READY commands. With info.LocalFunc set it reads the
// peer's READY before choosing and sending its own.
func (m *NullMechanism) Handshake(ctx context.Context, rw CommandReadWriter, info HandshakeInfo) (*HandshakeResult, error) {
	res := &HandshakeResult{}
	if m.server && m.auth != nil {
		ar := m.auth.Authenticate(ctx, &AuthRequest{
			Domain:    m.domain,
			Address:   info.RemoteAddr,
			Mechanism: "NULL",
		})
		if ar.StatusCode != StatusOK {
			return nil, Refuse(rw, AuthErrorReason(ar), AuthError("NULL", ar))
		}
		res.UserID = ar.UserID
		res.AuthMetadata = ar.Metadata
	}
	if info.LocalFunc == nil {
		if err := m.sendReady(rw, info.Local); err != nil {
			return nil, err
		}
		peer, err := readReady(rw)
		if err != nil {
			return nil, err
		}
		res.Peer = peer
		return res, nil
	}
	peer, err := readReady(rw)
	if err != nil {
		return nil, err
	}
	res.Peer = peer
	local, err := LocalProperties(info, res)
	if err != nil {
		if m.server {
			return nil, Refuse(rw, err.Error(), err)
		}
		return nil, err
	}
	if err := m.sendReady(rw, local); err != nil {
		return nil, err
	}
	return res, nil
}

// sendReady writes READY with md.
func (m *NullMechanism) sendReady(rw CommandReadWriter, md Metadata) error {
	cmd, err := ReadyCommand(md)
	if err != nil {
		return err
	}
	return rw.WriteCommand(cmd)
}

// readReady reads the peer's READY and decodes its metadata.
func readReady(rw CommandReadWriter) (Metadata, error) {
	body, err := ExpectCommand(rw, CmdReady)
	if err != nil {
		return nil, err
	}
	md, err := ParseMetadata(body)
	if err != nil {
		return nil, fmt.Errorf("%w: READY: %w", ErrProtocol, err)
	}
	return md, nil
}
