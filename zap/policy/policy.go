// Package policy decides, with ZAP semantics (RFC 27), which CURVE clients
// an inbound sidecar route lets in: those whose long-term public key is in
// the route's allowlist.
//
// It fails closed: until an allowlist has been set every handshake gets 300
// "allowlist not loaded", and there is no accept-all setting. Audit mode lets
// clients outside the allowlist in (logged and counted) so an allowlist can
// be trialled before it is enforced; it changes nothing else: a wrong server
// key, a mechanism other than CURVE or a malformed handshake is refused by
// the mechanism or here regardless of mode.
//
// A Policy counts every decision it makes in metrics (results accepted,
// refused and audit_pass); handshakes that fail without reaching it are the
// caller's to count as failed.
package policy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
)

// Mode says what happens to a client key that is not in the allowlist.
type Mode string

const (
	// Enforce refuses clients whose key is not in the allowlist.
	Enforce Mode = "enforce"
	// Audit lets clients whose key is not in the allowlist in, logging and
	// counting each, with their key in Z85 as User-Id.
	Audit Mode = "audit"
)

// ParseMode parses a mode name ("enforce" or "audit").
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Enforce, Audit:
		return m, nil
	}
	return "", fmt.Errorf("policy: unknown mode %q (want %q or %q)", s, Enforce, Audit)
}

// Status texts sent to refused clients in the ERROR command.
const (
	// TextNotLoaded is sent while no allowlist has been loaded.
	TextNotLoaded = "allowlist not loaded"
	// TextNotAllowed is sent to a client whose key is not in the allowlist.
	TextNotAllowed = "client key not in allowlist"
	// TextMechanism is sent to a client that used a mechanism other than CURVE.
	TextMechanism = "mechanism not allowed"
	// TextMalformedKey is sent when the client key is not 32 bytes.
	TextMalformedKey = "malformed client key"
)

// Policy is a route's authenticator. It implements zmtp.Authenticator and is
// safe for concurrent use.
type Policy struct {
	route   string
	mode    Mode
	metrics *metrics.Metrics
	log     *slog.Logger
	list    atomic.Pointer[allowlist.Allowlist]
}

var _ zmtp.Authenticator = (*Policy)(nil)

// New returns the policy of a route, with no allowlist yet (it refuses
// everyone with 300 until SetAllowlist). A mode other than Audit enforces.
// m and log may be nil: no metrics, no logs.
func New(route string, mode Mode, m *metrics.Metrics, log *slog.Logger) *Policy {
	if mode != Audit {
		mode = Enforce
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Policy{
		route:   route,
		mode:    mode,
		metrics: m,
		log:     log.With("route", route, "mode", string(mode)),
	}
}

// Mode returns the policy's mode.
func (p *Policy) Mode() Mode { return p.mode }

// SetAllowlist puts an allowlist in force for the handshakes that follow,
// and records its size and the time in metrics. Live sessions are not
// touched: the caller re-checks them with Allowed. A nil allowlist is
// ignored, so a failed load can never unset the last good one.
func (p *Policy) SetAllowlist(a *allowlist.Allowlist) {
	if a == nil {
		return
	}
	old := p.list.Swap(a)
	p.metrics.AllowlistLoaded(p.route, a.Len(), time.Now())
	if old == nil {
		p.log.Info("allowlist loaded; accepting connections", "keys", a.Len())
	} else {
		p.log.Info("allowlist replaced", "keys", a.Len(), "previous_keys", old.Len())
	}
}

// Allowlist returns the allowlist in force, or nil before the first
// SetAllowlist.
func (p *Policy) Allowlist() *allowlist.Allowlist { return p.list.Load() }

// Ready reports whether an allowlist has been set.
func (p *Policy) Ready() bool { return p.list.Load() != nil }

// Allowed reports whether a session authenticated with the 32-byte client
// key may stay open under the allowlist now in force. In audit mode every
// key is allowed; before any allowlist is loaded in enforce mode, none is.
func (p *Policy) Allowed(key []byte) bool {
	if p.mode == Audit {
		return true
	}
	_, ok := p.list.Load().Lookup(key)
	return ok
}

// Authenticate answers a ZAP request: 200 with the entry's identity as
// User-Id for a key in the allowlist; for another key 400 (enforce) or 200
// with the key in Z85 as User-Id (audit); 400 for a mechanism other than
// CURVE or a key that is not 32 bytes; 300 while no allowlist is loaded.
func (p *Policy) Authenticate(ctx context.Context, req *zmtp.AuthRequest) zmtp.AuthResult {
	if req.Mechanism != "CURVE" {
		p.log.InfoContext(ctx, "refused: mechanism not allowed", "mechanism", req.Mechanism, "address", req.Address)
		return p.refuse(zmtp.StatusDenied, TextMechanism, metrics.ReasonMechanism)
	}
	key, err := keygen.PublicKeyFromBytes(req.ClientKey)
	if err != nil {
		p.log.WarnContext(ctx, "refused: malformed client key", "length", len(req.ClientKey), "address", req.Address)
		return p.refuse(zmtp.StatusDenied, TextMalformedKey, metrics.ReasonMalformedKey)
	}
	list := p.list.Load()
	if list == nil {
		p.log.InfoContext(ctx, "refused: allowlist not loaded", "client_key", key.String(), "address", req.Address)
		return p.refuse(zmtp.StatusTemporary, TextNotLoaded, metrics.ReasonNotLoaded)
	}
	if e, ok := list.Lookup(key[:]); ok {
		p.log.DebugContext(ctx, "accepted", "identity", e.Identity, "client_key", key.String(), "address", req.Address)
		return zmtp.AuthResult{StatusCode: zmtp.StatusOK, StatusText: "OK", UserID: e.Identity}
	}
	if p.mode == Audit {
		p.log.WarnContext(ctx, "audit: client key not in allowlist, let in", "client_key", key.String(), "address", req.Address)
		return zmtp.AuthResult{StatusCode: zmtp.StatusOK, StatusText: "OK", UserID: key.String()}
	}
	p.log.InfoContext(ctx, "refused: client key not in allowlist", "client_key", key.String(), "address", req.Address)
	return p.refuse(zmtp.StatusDenied, TextNotAllowed, metrics.ReasonNotInAllowlist)
}

// Verdict names what a session authenticated with the 32-byte client key
// counts as once it is established (see relay.Inbound.Verdict): accepted
// (allowlisted) for a key in the allowlist in force, else audit_pass.
// Authenticate counts refusals itself; accepted handshakes are counted by
// the relay, once, when the session is up, so a handshake that passes the
// allowlist but fails later is not counted twice. In enforce mode every
// established session was allowlisted when it was authenticated, whatever
// the list in force says by now (a rotation or revocation may have swapped
// it while the relay reached the application).
func (p *Policy) Verdict(key []byte) (result, reason string) {
	if p.mode != Audit {
		return metrics.ResultAccepted, metrics.ReasonAllowlisted
	}
	if list := p.list.Load(); list != nil {
		if _, ok := list.Lookup(key); ok {
			return metrics.ResultAccepted, metrics.ReasonAllowlisted
		}
	}
	return metrics.ResultAuditPass, metrics.ReasonNotInAllowlist
}

// refuse counts and returns a refusal.
func (p *Policy) refuse(code int, text, reason string) zmtp.AuthResult {
	p.metrics.Handshake(p.route, metrics.ResultRefused, reason)
	return zmtp.AuthResult{StatusCode: code, StatusText: text}
}
