package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/policy"
	"github.com/zmqauth/zmqauth/zap/relay"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// inboundRoute is one server-side route and its sources.
type inboundRoute struct {
	cfg     InboundRoute
	keysAt  origin // the server keypair
	listAt  origin // the allowlist
	log     *slog.Logger
	metrics *metrics.Metrics
	ln      net.Listener
	policy  *policy.Policy
	server  *curve.Server
	relay   *relay.Inbound

	keys keyfiles.ServerKeys // as loaded by Open, for load to log

	mu           sync.Mutex
	serverPublic []keygen.PublicKey // the key set in force, current first
	allowlistErr error              // the last allowlist load failure, until one succeeds
}

// newInbound resolves the route's sources; open does the rest once they
// exist.
func newInbound(rc InboundRoute, src *sources, m *metrics.Metrics, log *slog.Logger) (*inboundRoute, error) {
	r := &inboundRoute{cfg: rc, metrics: m, log: log.With("route", rc.Name)}
	var err error
	if r.keysAt, err = src.resolve(rc.Keys, false); err != nil {
		return nil, fmt.Errorf("route %s: server keys: %w", rc.Name, err)
	}
	if r.listAt, err = src.resolve(rc.Allowlist, false); err != nil {
		return nil, fmt.Errorf("route %s: allowlist: %w", rc.Name, err)
	}
	return r, nil
}

// open loads the route's keys (which must be there) and binds its
// listener; the allowlist is loaded by load.
func (r *inboundRoute) open(ctx context.Context, conn zmtp.Config, log *slog.Logger) error {
	rc := r.cfg
	mode, err := policy.ParseMode(rc.Mode)
	if err != nil {
		return fmt.Errorf("route %s: %w", rc.Name, err)
	}
	r.policy = policy.New(rc.Name, mode, r.metrics, log)

	keys, err := r.keysAt.serverKeys()
	if err != nil {
		return fmt.Errorf("route %s: server keys: %w", rc.Name, err)
	}
	pairs, err := curvePairs(keys)
	if err != nil {
		return fmt.Errorf("route %s: server keys: %w", rc.Name, err)
	}
	r.server, err = curve.NewServer(curve.ServerConfig{Keys: pairs, Authenticator: r.policy})
	if err != nil {
		return fmt.Errorf("route %s: server keys: %w", rc.Name, err)
	}
	r.keys = keys

	app, _ := NormalizeAddr(rc.App)
	network := conn
	network.Mechanism = r.server
	r.relay = &relay.Inbound{
		Route:   rc.Name,
		Network: network,
		AppAddr: app,
		App:     conn,
		Metrics: r.metrics,
		Verdict: r.policy.Verdict,
		Logger:  log,
	}
	r.ln, err = listen(ctx, rc.Name, rc.Listen)
	return err
}

// load runs once Open can no longer fail: it logs the keys in force and
// loads the allowlist (whose failure leaves the route closed, not Open
// failed). Nothing is logged before, so that a failed start prints only
// its reason.
func (r *inboundRoute) load() {
	r.noteKeys(r.keys)
	if err := r.reloadAllowlist(); err != nil {
		r.allowlistFailed(err)
	}
}

// start runs the route's relay and watchers.
func (r *inboundRoute) start(ctx context.Context, interval time.Duration, goRun func(func()), fail func(error)) {
	goRun(func() {
		fail(r.relay.Serve(ctx, &gatedListener{Listener: r.ln, open: r.policy.Ready, log: r.log}))
	})
	goRun(func() {
		r.keysAt.watch(ctx, interval, r.reloadKeys, func(err error) {
			r.metrics.ReloadError("keys:" + r.cfg.Name)
			r.log.Error("server keys not reloaded; the last good keys stay in force", "source", r.keysAt.String(), "error", err)
		}, r.log)
	})
	goRun(func() {
		r.listAt.watch(ctx, interval, r.reloadAllowlist, r.allowlistFailed, r.log)
	})
}

// reloadKeys puts the keypair directory's keys in force for new
// handshakes: the current key and, during an overlap, the previous one.
func (r *inboundRoute) reloadKeys() error {
	keys, err := r.keysAt.serverKeys()
	if err != nil {
		return err
	}
	if !r.keysChanged(keys) {
		return nil
	}
	pairs, err := curvePairs(keys)
	if err != nil {
		return err
	}
	if err := r.server.SetKeys(pairs); err != nil {
		return fmt.Errorf("setting server keys: %w", err)
	}
	r.noteKeys(keys)
	return nil
}

// keysChanged reports whether keys differ from the key set in force.
func (r *inboundRoute) keysChanged(keys keyfiles.ServerKeys) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	pairs := keys.Pairs()
	if len(pairs) != len(r.serverPublic) {
		return true
	}
	for i, p := range pairs {
		if p.Public != r.serverPublic[i] {
			return true
		}
	}
	return false
}

// noteKeys records and logs the public keys now in force.
func (r *inboundRoute) noteKeys(keys keyfiles.ServerKeys) {
	r.mu.Lock()
	r.serverPublic = r.serverPublic[:0]
	for _, p := range keys.Pairs() {
		r.serverPublic = append(r.serverPublic, p.Public)
	}
	r.mu.Unlock()
	attrs := []any{"public_key", keys.Current.Public.String()}
	if keys.Previous != nil {
		attrs = append(attrs, "previous_public_key", keys.Previous.Public.String())
	}
	r.log.Info("server keys in force", attrs...)
}

// reloadAllowlist loads the allowlist directory, puts it and the mode it
// carries (if any: the operator's does) in force, and closes the live
// sessions of keys that are no longer allowed.
func (r *inboundRoute) reloadAllowlist() error {
	list, err := r.listAt.allowlist()
	if err != nil {
		return err
	}
	mode := r.policy.Mode()
	if m := list.Mode(); m != "" {
		if mode, err = policy.ParseMode(m); err != nil {
			return fmt.Errorf("allowlist %s: its %s file holds neither %q nor %q", r.listAt.String(), filecontract.ModeFile, policy.Enforce, policy.Audit)
		}
	}
	r.mu.Lock()
	r.allowlistErr = nil
	r.mu.Unlock()
	modeChanged := r.policy.SetMode(mode)
	if !modeChanged && sameEntries(list, r.policy.Allowlist()) {
		return nil // a touched file or a remount: nothing to apply
	}
	r.policy.SetAllowlist(list)
	if n := r.relay.CloseWhere(func(key []byte) bool { return !r.policy.Allowed(key) }); n > 0 {
		r.metrics.Revoked(r.cfg.Name, n)
		r.log.Info("closed the live sessions of revoked client keys", "sessions", n)
	}
	r.policy.PruneRetired(r.relay.ClientKeys)
	return nil
}

// allowlistFailed counts and logs a failed allowlist load and remembers it
// for readiness.
func (r *inboundRoute) allowlistFailed(err error) {
	r.mu.Lock()
	// The same failure again, with no good load in between (Open's load
	// and the watch's first one, say), was logged and counted already.
	repeated := r.allowlistErr != nil && r.allowlistErr.Error() == err.Error()
	r.allowlistErr = err
	r.mu.Unlock()
	if repeated {
		return
	}
	r.metrics.ReloadError("allowlist:" + r.cfg.Name)
	if r.policy.Ready() {
		r.log.Error("allowlist not reloaded; the last good allowlist stays in force", "source", r.listAt.String(), "error", err)
	} else {
		r.log.Error("allowlist not loaded; refusing every connection until it is", "source", r.listAt.String(), "error", err)
	}
}

// ready reports whether the route serves: keys are loaded (Open saw to
// that), the listener is bound, and an allowlist is in force that lets
// somebody in or that the operator declared empty.
func (r *inboundRoute) ready() error {
	r.mu.Lock()
	lastErr := r.allowlistErr
	r.mu.Unlock()
	list := r.policy.Allowlist()
	switch {
	case list == nil && lastErr != nil:
		return fmt.Errorf("allowlist not loaded from %s: %w", r.cfg.Allowlist, lastErr)
	case list == nil:
		return fmt.Errorf("allowlist not loaded from %s yet", r.cfg.Allowlist)
	case list.Len() == 0 && !list.Declared() && r.policy.Mode() == policy.Enforce:
		// An operator's allowlist says it is empty (its index.json); an
		// empty directory may be a mount not filled yet. A server nobody
		// has been granted yet serves, refusing everyone, so that its pod
		// starts; the startup probe is this one.
		return fmt.Errorf("allowlist %s is empty: no client can connect", r.cfg.Allowlist)
	}
	return nil
}

// curvePairs converts loaded server keys to the curve package's keypairs,
// current first.
func curvePairs(keys keyfiles.ServerKeys) ([]curve.KeyPair, error) {
	var pairs []curve.KeyPair
	for _, p := range keys.Pairs() {
		cp, err := curvePair(p)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, cp)
	}
	return pairs, nil
}

// curvePair converts a keypair to the curve package's type.
func curvePair(p keyfiles.KeyPair) (curve.KeyPair, error) {
	secret := p.Secret.Bytes()
	if len(secret) != curve.KeySize {
		return curve.KeyPair{}, errors.New("secret key has the wrong size")
	}
	var cp curve.KeyPair
	cp.Public = curve.PublicKey(p.Public)
	copy(cp.Secret[:], secret)
	clear(secret)
	return cp, nil
}

// gatedListener closes every accepted connection at once while open says
// no: an inbound route accepts nobody until its allowlist is loaded.
type gatedListener struct {
	net.Listener
	open func() bool
	log  *slog.Logger
}

// Accept returns the next connection accepted while the gate is open.
func (g *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if g.open() {
			return c, nil
		}
		g.log.Debug("connection closed: allowlist not loaded", "remote", c.RemoteAddr().String())
		_ = c.Close()
	}
}

// sameEntries reports whether two allowlists allow the same keys with the
// same identities and are both declared or both not (which readiness
// reads); a nil allowlist equals nothing.
func sameEntries(a, b *allowlist.Allowlist) bool {
	if a == nil || b == nil {
		return false
	}
	ea, eb := a.Entries(), b.Entries()
	if len(ea) != len(eb) || a.Declared() != b.Declared() {
		return false
	}
	for i := range ea {
		if ea[i].Key != eb[i].Key || ea[i].Identity != eb[i].Identity {
			return false
		}
	}
	return true
}
