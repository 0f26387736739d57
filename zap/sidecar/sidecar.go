// Package sidecar runs zmqauth's sidecar: a set of inbound (server-side) and
// outbound (client-side) relay routes, the key and allowlist sources that
// feed them, and the admin endpoint (/metrics, /healthz, /readyz).
//
// Sources are mounted directories, watched with zap/watch, or Secrets and
// ConfigMaps in the Kubernetes API (secret:NAMESPACE/NAME, ...), watched
// with zap/kubesource, in the same layout: a route's server
// keypair (a change goes to curve.Server.SetKeys with the current and the
// previous key, so clients holding either keep connecting), a client
// keypair and server public key (used by the next outbound dial), and an
// allowlist (put in force with policy.SetAllowlist, after which the live
// sessions of keys that left it are closed). A bad update keeps the last
// good state in force, is logged with its reason and counted.
//
// Failing closed: keys that cannot be loaded at start are an error (Open
// fails). An allowlist that cannot be loaded at start leaves its route
// listening but closing every connection at once, and the sidecar not
// ready, until a good one appears. There is no accept-all state.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/zmqauth/zmqauth/zap/admin"
	"github.com/zmqauth/zmqauth/zap/kubesource"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
)

// Options are the sidecar's runtime dependencies.
type Options struct {
	// Logger receives the sidecar's logs; nil discards them.
	Logger *slog.Logger
	// Registry collects the metrics served on /metrics; nil creates one.
	Registry *prometheus.Registry
	// Kube reaches the Kubernetes API, for routes whose keys or allowlist
	// name a Secret or ConfigMap (secret:NAMESPACE/NAME, ...); nil when
	// none does.
	Kube kubernetes.Interface
	// Namespace is the namespace of such a reference that gives none.
	Namespace string
}

// Sidecar is a configured, bound sidecar. Open it, then Run it (or Close
// it).
type Sidecar struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	admin    *admin.Server
	inbound  []*inboundRoute
	outbound []*outboundRoute
	running  sync.Once
	// stopSources ends the watches of objects in the Kubernetes API.
	stopSources context.CancelFunc
}

// Open validates cfg, loads every route's keys and binds every listener
// (routes and admin); ctx bounds the binding. A Secret or ConfigMap named
// as a source is waited for, up to Config.SourceTimeout. It fails, leaving
// nothing open, on an invalid configuration, a key file (or Secret) that is
// missing or malformed, and an address that cannot be bound. Allowlists are loaded too, but one that cannot be
// loaded is not an error: its route stays closed and the sidecar not ready
// until it can be (see the package documentation).
func Open(ctx context.Context, cfg Config, opts Options) (_ *Sidecar, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	s := &Sidecar{cfg: cfg, log: opts.Logger, registry: opts.Registry, stopSources: stopSources}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = metrics.New(s.registry)
	defer func() {
		if err != nil {
			s.closeListeners()
		}
	}()
	src := &sources{kube: opts.Kube, namespace: opts.Namespace, ctx: srcCtx, objects: map[kubesource.Ref]*kubesource.Object{}, dataKeys: map[kubesource.Ref][]string{}}
	for _, rc := range cfg.Inbound {
		r, err := newInbound(rc, src, s.metrics, s.log)
		if err != nil {
			return nil, err
		}
		s.inbound = append(s.inbound, r)
	}
	for _, rc := range cfg.Outbound {
		r, err := newOutbound(rc, src, s.metrics, s.log)
		if err != nil {
			return nil, err
		}
		s.outbound = append(s.outbound, r)
	}
	if len(src.objects) > 0 {
		timeout := time.Duration(cfg.SourceTimeout)
		if timeout == 0 {
			timeout = DefaultSourceTimeout
		}
		if err := src.wait(ctx, timeout); err != nil {
			return nil, err
		}
	}
	for _, r := range s.inbound {
		if err := r.open(ctx, s.connConfig(r.cfg.MaxMessageSize), s.log); err != nil {
			return nil, err
		}
	}
	for _, r := range s.outbound {
		if err := r.open(ctx, s.connConfig(r.cfg.MaxMessageSize), s.log); err != nil {
			return nil, err
		}
	}
	if cfg.Admin != "" {
		addr, _ := NormalizeAddr(cfg.Admin)
		s.admin = admin.New(addr, s.registry, s.Ready)
		if err := s.admin.Listen(); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	for _, r := range s.inbound {
		r.load()
	}
	for _, r := range s.outbound {
		r.load()
	}
	return s, nil
}

// connConfig is the zmtp configuration of a route's connections, on the
// network and on the application side alike: maxMessage (the route's
// validated MaxMessageSize) limits each received message and frame.
func (s *Sidecar) connConfig(maxMessage int64) zmtp.Config {
	c := zmtp.Config{
		HandshakeTimeout: time.Duration(s.cfg.HandshakeTimeout),
		MaxFrameSize:     maxMessage,
		MaxMessageSize:   maxMessage,
	}
	if hb := time.Duration(s.cfg.Heartbeat); hb > 0 {
		c.HeartbeatInterval = hb
		c.HeartbeatTimeout = 3 * hb
		c.HeartbeatTTL = min(3*hb, zmtp.MaxPingTTL)
	}
	return c
}

// reloadInterval is the watchers' safety-net period.
func (s *Sidecar) reloadInterval() time.Duration {
	if d := time.Duration(s.cfg.ReloadInterval); d > 0 {
		return d
	}
	return DefaultReloadInterval
}

// closeListeners closes every listener Open bound and ends the watches it
// started.
func (s *Sidecar) closeListeners() {
	s.stopSources()
	for _, r := range s.inbound {
		if r.ln != nil {
			_ = r.ln.Close()
		}
	}
	for _, r := range s.outbound {
		if r.ln != nil {
			_ = r.ln.Close()
		}
	}
	// The admin server has no Close; Serve with a cancelled context
	// releases its listener.
	if s.admin != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.admin.Serve(ctx)
	}
}

// Close releases what Open bound, for a Sidecar that will not Run. After
// Run it does nothing: Run releases everything when its context ends.
func (s *Sidecar) Close() {
	s.running.Do(s.closeListeners)
}

// Run serves every route, watches every source and serves the admin
// endpoint until ctx ends, then closes every listener and session and
// returns nil. It returns an error when a route's listener or the admin
// server fails, after shutting the rest down. Call it once.
func (s *Sidecar) Run(ctx context.Context) error {
	started := false
	s.running.Do(func() { started = true })
	if !started {
		return errors.New("sidecar: Run called twice, or after Close")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) {
		if err == nil || ctx.Err() != nil {
			return
		}
		errOnce.Do(func() { runErr = err })
		cancel()
	}
	goRun := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	interval := s.reloadInterval()
	for _, r := range s.inbound {
		r.start(ctx, interval, goRun, fail)
	}
	for _, r := range s.outbound {
		r.start(ctx, interval, goRun, fail)
	}
	if s.admin != nil {
		goRun(func() { fail(s.admin.Serve(ctx)) })
	}
	s.log.Info("sidecar running", "routes", s.routeNames(), "admin", s.AdminAddr())
	<-ctx.Done()
	wg.Wait()
	s.stopSources()
	if runErr != nil {
		return runErr
	}
	s.log.Info("sidecar stopped")
	return nil
}

// routeNames lists the routes for logs.
func (s *Sidecar) routeNames() []string {
	var names []string
	for _, r := range s.inbound {
		names = append(names, "inbound "+r.cfg.Name+" "+r.ln.Addr().String())
	}
	for _, r := range s.outbound {
		names = append(names, "outbound "+r.cfg.Name+" "+r.ln.Addr().String())
	}
	return names
}

// Ready reports whether every route has what it needs to serve: nil when
// ready, else an error naming each route that is not and why. It backs
// /readyz.
func (s *Sidecar) Ready() error {
	var problems []string
	for _, r := range s.inbound {
		if err := r.ready(); err != nil {
			problems = append(problems, fmt.Sprintf("route %s: %v", r.cfg.Name, err))
		}
	}
	for _, r := range s.outbound {
		if err := r.ready(); err != nil {
			problems = append(problems, fmt.Sprintf("route %s: %v", r.cfg.Name, err))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New(strings.Join(problems, "; "))
}

// Addr returns the address route name listens on, or nil when there is no
// such route. With port 0 in the configuration it reports the real port.
func (s *Sidecar) Addr(name string) net.Addr {
	for _, r := range s.inbound {
		if r.cfg.Name == name {
			return r.ln.Addr()
		}
	}
	for _, r := range s.outbound {
		if r.cfg.Name == name {
			return r.ln.Addr()
		}
	}
	return nil
}

// AdminAddr returns the admin endpoint's address, or "" when there is none.
func (s *Sidecar) AdminAddr() string {
	if s.admin == nil {
		return ""
	}
	return s.admin.Addr()
}

// Registry returns the registry the sidecar's metrics are in.
func (s *Sidecar) Registry() *prometheus.Registry { return s.registry }

// listen binds a route's address.
func listen(ctx context.Context, route, addr string) (net.Listener, error) {
	a, err := NormalizeAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", route, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a)
	if err != nil {
		return nil, fmt.Errorf("route %s: cannot listen: %w", route, err)
	}
	return ln, nil
}
