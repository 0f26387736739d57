package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/relay"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// outboundRoute is one client-side route and its sources.
type outboundRoute struct {
	cfg         OutboundRoute
	keysAt      origin // the client keypair
	serverKeyAt origin // the server's public key
	log         *slog.Logger
	metrics     *metrics.Metrics
	ln          net.Listener
	relay       *relay.Outbound
	// keys is the client keypair in force; serverKey the server's public
	// key. Each new dial reads both.
	keys      atomic.Pointer[curve.KeyPair]
	serverKey atomic.Pointer[keygen.PublicKey]
}

// newOutbound resolves the route's sources; open does the rest once they
// exist.
func newOutbound(rc OutboundRoute, src *sources, m *metrics.Metrics, log *slog.Logger) (*outboundRoute, error) {
	r := &outboundRoute{cfg: rc, metrics: m, log: log.With("route", rc.Name)}
	var err error
	if r.keysAt, err = src.resolve(rc.Keys, false); err != nil {
		return nil, fmt.Errorf("route %s: client keys: %w", rc.Name, err)
	}
	if r.serverKeyAt, err = src.resolve(rc.ServerKey, true); err != nil {
		return nil, fmt.Errorf("route %s: server key: %w", rc.Name, err)
	}
	return r, nil
}

// open loads the route's keypair and server key (both must be there) and
// binds its listener.
func (r *outboundRoute) open(ctx context.Context, conn zmtp.Config, log *slog.Logger) error {
	rc := r.cfg
	if err := r.reloadKeys(); err != nil {
		return fmt.Errorf("route %s: client keys: %w", rc.Name, err)
	}
	if err := r.reloadServerKey(); err != nil {
		return fmt.Errorf("route %s: server key: %w", rc.Name, err)
	}
	server, _ := NormalizeAddr(rc.Server)
	r.relay = &relay.Outbound{
		Route:        rc.Name,
		App:          conn,
		ServerAddr:   server,
		Network:      conn,
		NewMechanism: r.mechanism,
		Metrics:      r.metrics,
		Logger:       log,
	}
	var err error
	r.ln, err = listen(ctx, rc.Name, rc.Listen)
	return err
}

// start runs the route's relay and watchers.
func (r *outboundRoute) start(ctx context.Context, interval time.Duration, goRun func(func()), fail func(error)) {
	goRun(func() { fail(r.relay.Serve(ctx, r.ln)) })
	goRun(func() {
		r.keysAt.watch(ctx, interval, r.reloadKeys, func(err error) {
			r.metrics.ReloadError("keys:" + r.cfg.Name)
			r.log.Error("client keys not reloaded; the last good keys stay in force", "source", r.keysAt.String(), "error", err)
		}, r.log)
	})
	goRun(func() {
		r.serverKeyAt.watch(ctx, interval, r.reloadServerKey, func(err error) {
			r.metrics.ReloadError("server-key:" + r.cfg.Name)
			r.log.Error("server key not reloaded; the last good key stays in force", "source", r.serverKeyAt.String(), "error", err)
		}, r.log)
	})
}

// load runs once Open can no longer fail and logs the keys Open loaded
// (later changes are logged as they are loaded).
func (r *outboundRoute) load() {
	r.log.Info("client keys in force", "public_key", keygen.PublicKey(r.keys.Load().Public).String())
	r.log.Info("server key in force", "server_key", r.serverKey.Load().String())
}

// mechanism builds the CURVE client for one new connection from the keys
// in force now.
func (r *outboundRoute) mechanism() (zmtp.Mechanism, error) {
	keys, server := r.keys.Load(), r.serverKey.Load()
	c, err := curve.NewClient(curve.ClientConfig{Key: *keys, ServerKey: curve.PublicKey(*server)})
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", r.cfg.Name, err)
	}
	return c, nil
}

// reloadKeys puts the keypair directory's keys in force for new
// connections.
func (r *outboundRoute) reloadKeys() error {
	kp, err := r.keysAt.clientKeys()
	if err != nil {
		return err
	}
	if old := r.keys.Load(); old != nil && old.Public == curve.PublicKey(kp.Public) {
		return nil
	}
	cp, err := curvePair(kp)
	if err != nil {
		return err
	}
	if r.keys.Swap(&cp) != nil {
		r.log.Info("client keys in force", "public_key", kp.Public.String())
	}
	return nil
}

// reloadServerKey reads the server's public key from its source.
func (r *outboundRoute) reloadServerKey() error {
	k, err := r.serverKeyAt.publicKey()
	if err != nil {
		return err
	}
	if old := r.serverKey.Load(); old != nil && *old == k {
		return nil
	}
	if r.serverKey.Swap(&k) != nil {
		r.log.Info("server key in force", "server_key", k.String())
	}
	return nil
}

// ready reports whether the route serves. Its keys were loaded by Open and
// a failed reload keeps them, so it always does.
func (r *outboundRoute) ready() error { return nil }
