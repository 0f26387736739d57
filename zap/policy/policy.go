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
	"sync"
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
	audit   atomic.Bool // the mode: Audit when set, else Enforce
	metrics *metrics.Metrics
	log     *slog.Logger
	list    atomic.Pointer[allowlist.Allowlist]
	// retired holds the keys whose rotation overlap ended while sessions
	// made with them may still be open (see SetAllowlist); stored before
	// the list it goes with. Written under mu.
	retired atomic.Pointer[map[keygen.PublicKey]retiredKey]
	mu      sync.Mutex
}

// retiredKey is a client key that left the allowlist at the end of its
// rotation overlap: sessions made with it stay open while its client keeps
// the key that replaced it (anchor) under the same identity.
type retiredKey struct {
	identity string
	anchor   keygen.PublicKey
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
	p := &Policy{
		route:   route,
		metrics: m,
		log:     log.With("route", route),
	}
	p.audit.Store(mode == Audit)
	return p
}

// Mode returns the policy's mode.
func (p *Policy) Mode() Mode {
	if p.audit.Load() {
		return Audit
	}
	return Enforce
}

// SetMode changes the mode for the handshakes that follow and reports
// whether it changed. Live sessions are not touched: after a switch to
// Enforce the caller closes those Allowed no longer keeps.
func (p *Policy) SetMode(m Mode) bool {
	changed := p.audit.Swap(m == Audit) != (m == Audit)
	if changed {
		p.log.Info("mode changed", "mode", string(p.Mode()))
	}
	return changed
}

// SetAllowlist puts an allowlist in force for the handshakes that follow,
// and records its size and the time in metrics. Live sessions are not
// touched: the caller re-checks them with Allowed. A nil allowlist is
// ignored, so a failed load can never unset the last good one.
//
// A client key that leaves through its previous-key entry while the same
// client keeps its current key has only ended its rotation overlap: it is
// retired, not revoked, and Allowed keeps the sessions made with it open,
// as established sessions survive a rotation. They stay open for as long as
// that client goes on rotating; a key that leaves any other way (the client
// deleted or no longer granted, a lost or leaked key replaced) closes them,
// and so does any change that removes the key the retired one gave way to.
func (p *Policy) SetAllowlist(a *allowlist.Allowlist) {
	if a == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	retired := retire(p.list.Load(), p.retiredKeys(), a)
	p.retired.Store(&retired)
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
// key may stay open under the allowlist now in force: the key is on it, or
// was retired from it at the end of its rotation overlap (SetAllowlist). In
// audit mode every key is allowed; before any allowlist is loaded in
// enforce mode, none is. New handshakes need the key on the allowlist.
func (p *Policy) Allowed(key []byte) bool {
	if p.Mode() == Audit {
		return true
	}
	if _, ok := p.list.Load().Lookup(key); ok {
		return true
	}
	k, err := keygen.PublicKeyFromBytes(key)
	if err != nil {
		return false
	}
	_, ok := p.retiredKeys()[k]
	return ok
}

// PruneRetired forgets the retired keys that no live session uses (live
// returns the client keys of the route's sessions; it is called only when
// there are retired keys), so that the set stays as small as the sessions
// it protects.
func (p *Policy) PruneRetired(live func() [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.retiredKeys()
	if len(old) == 0 {
		return
	}
	kept := make(map[keygen.PublicKey]retiredKey)
	for _, key := range live() {
		if k, err := keygen.PublicKeyFromBytes(key); err == nil {
			if r, ok := old[k]; ok {
				kept[k] = r
			}
		}
	}
	p.retired.Store(&kept)
}

// retiredKeys returns the current retired keys (nil: none).
func (p *Policy) retiredKeys() map[keygen.PublicKey]retiredKey {
	if m := p.retired.Load(); m != nil {
		return *m
	}
	return nil
}

// retire returns the retired keys once next replaces old (see
// SetAllowlist): those retired before whose anchor stays with the same
// identity, or itself retires (they follow it to its anchor), and the keys
// that leave next through a previous-key entry while a current key of the
// same client stays.
func retire(old *allowlist.Allowlist, before map[keygen.PublicKey]retiredKey, next *allowlist.Allowlist) map[keygen.PublicKey]retiredKey {
	if old == nil {
		return nil
	}
	entries := old.Entries() // a copy: taken once
	// A current key of each client that stays current.
	staying := map[string]keygen.PublicKey{}
	for _, e := range entries {
		if e.Previous() {
			continue
		}
		if n, ok := next.Lookup(e.Key[:]); ok && n.Identity == e.Identity && !n.Previous() {
			staying[e.Identity] = e.Key
		}
	}
	out := map[keygen.PublicKey]retiredKey{}
	for _, e := range entries {
		if !e.Previous() {
			continue
		}
		if _, still := next.Lookup(e.Key[:]); still {
			continue
		}
		if anchor, ok := staying[e.Identity]; ok {
			out[e.Key] = retiredKey{identity: e.Identity, anchor: anchor}
		}
	}
	for k, r := range before {
		if _, back := next.Lookup(k[:]); back {
			continue // on the list again: no longer retired
		}
		if a, ok := out[r.anchor]; ok && a.identity == r.identity {
			r.anchor = a.anchor // its anchor retired in turn: follow it
		}
		if n, ok := next.Lookup(r.anchor[:]); ok && n.Identity == r.identity {
			out[k] = r
		}
	}
	return out
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
	if p.Mode() == Audit {
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
	if p.Mode() != Audit {
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
