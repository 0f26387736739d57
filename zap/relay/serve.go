package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// DefaultMaxHandshakes is how many accepted connections a route lets be in
// their handshakes at once. Each holds a goroutine and its buffers until it
// completes or its handshake deadline (10 s by default) passes, so without
// a bound anyone who can reach the port could open connections and say
// nothing until the sidecar's memory limit (128 Mi when injected) is gone.
// A connection beyond the bound is closed at once and counted as a failed
// handshake, reason busy; a libzmq peer reconnects later. Established
// sessions do not count.
const DefaultMaxHandshakes = 1024

// busyLogInterval is how often, at most, a route logs that it is closing
// connections because too many handshakes are in progress.
const busyLogInterval = 10 * time.Second

// establishFunc runs both handshakes of one session over an accepted
// connection: it returns the network-side and application-side connections.
// On failure it closes nc and whatever it opened.
type establishFunc func(ctx context.Context, nc net.Conn) (network, app *zmtp.Conn, err error)

// core is what Inbound and Outbound share: the accept loop, the session
// registry and the per-session relay.
type core struct {
	route   string
	timeout time.Duration
	metrics *metrics.Metrics
	log     *slog.Logger
	reg     *registry
	// verdict names what an established session's handshake is counted
	// as; nil: accepted, reason other.
	verdict   func(clientKey []byte) (result, reason string)
	establish establishFunc
	// maxHandshakes bounds the connections in their handshakes at once;
	// zero or less means DefaultMaxHandshakes.
	maxHandshakes int
}

// serve accepts connections on ln until ctx ends or ln fails, running each
// one's handshake and relay in its own goroutine, with at most
// maxHandshakes in their handshakes at once: a connection beyond that is
// closed at once. On return ln and every session are closed. It returns
// nil when ctx ended.
func (c *core) serve(ctx context.Context, ln net.Listener) error {
	limit := c.maxHandshakes
	if limit <= 0 {
		limit = DefaultMaxHandshakes
	}
	handshaking := make(chan struct{}, limit) // one token per handshake in progress
	var busy busyLog

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = ln.Close()
		c.reg.closeAll()
		wg.Wait()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("relay %s: accept: %w", c.route, err)
			}
			// Resource exhaustion (EMFILE, ...): wait and retry, as
			// net/http does, instead of spinning or giving up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			c.log.Warn("accept failed; retrying", "route", c.route, "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		select {
		case handshaking <- struct{}{}:
		default:
			c.refuseBusy(nc, limit, &busy)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.handle(ctx, nc, func() { <-handshaking })
		}()
	}
}

// busyLog is the accept loop's record of connections closed because too
// many handshakes were in progress, so that it logs them now and then
// rather than once each.
type busyLog struct {
	last   time.Time // when it last logged
	closed int       // connections closed since
}

// refuseBusy closes a connection accepted while limit handshakes are in
// progress, counts it as a failed handshake (busy), and logs at most once
// every busyLogInterval how many it closed.
func (c *core) refuseBusy(nc net.Conn, limit int, b *busyLog) {
	remote := nc.RemoteAddr().String()
	_ = nc.Close()
	c.metrics.Handshake(c.route, metrics.ResultFailed, metrics.ReasonBusy)
	c.log.Debug("handshake refused: too many in progress", "route", c.route, "remote", remote, "max_handshakes", limit)
	b.closed++
	if now := time.Now(); now.Sub(b.last) >= busyLogInterval {
		c.log.Warn("too many handshakes in progress; closing new connections at once until some finish",
			"route", c.route, "max_handshakes", limit, "closed_since_last_log", b.closed)
		b.last, b.closed = now, 0
	}
}

// handle runs one connection: both handshakes, then the relay until either
// side ends or ctx does. done is called once the handshakes are over,
// whatever their outcome.
func (c *core) handle(ctx context.Context, nc net.Conn, done func()) {
	remote := nc.RemoteAddr().String()
	gen := c.reg.generation()
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	network, app, err := c.establish(hctx, nc)
	cancel()
	done()
	if err != nil {
		c.handshakeFailed(ctx, remote, err)
		return
	}
	peer := network.Peer()
	s := &session{net: network, app: app, gen: gen}
	if len(peer.ClientKey) > 0 {
		s.clientKey = peer.ClientKey
	}
	attrs := []any{"route", c.route, "remote", remote, "socket_type", peer.SocketType}
	if s.clientKey != nil {
		attrs = append(attrs, "client_key", z85(s.clientKey), "user_id", peer.UserID)
	}
	ok, revoked := c.reg.add(s)
	if !ok {
		s.close()
		if revoked {
			c.metrics.Revoked(c.route, 1)
			c.log.Info("session revoked during its handshake", attrs...)
		}
		return
	}
	defer c.reg.remove(s)
	result, why := metrics.ResultAccepted, metrics.ReasonOther
	if c.verdict != nil {
		result, why = c.verdict(s.clientKey)
	}
	c.metrics.Handshake(c.route, result, why)
	c.metrics.SessionOpened(c.route)
	defer c.metrics.SessionClosed(c.route)
	c.log.Debug("session opened", attrs...)

	stop := context.AfterFunc(ctx, s.close)
	defer stop()
	inbound := make(chan error, 1)
	go func() {
		err := pump(network, app, c.metrics, c.route, metrics.DirectionIn)
		s.close()
		inbound <- err
	}()
	outErr := pump(app, network, c.metrics, c.route, metrics.DirectionOut)
	s.close()
	inErr := <-inbound

	reason := sessionEnd(inErr, outErr)
	switch {
	case ctx.Err() != nil:
		reason = "shutdown"
	case s.revokedNow(c.reg):
		reason = "revoked"
	}
	c.log.Debug("session closed", append(attrs, "reason", reason)...)
}

// revokedNow reports whether a sweep closed s.
func (s *session) revokedNow(r *registry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return s.revoked
}

// sessionEnd describes why a session ended: the first error that is not
// the consequence of the other side's close.
func sessionEnd(inErr, outErr error) string {
	for _, err := range []error{inErr, outErr} {
		if err != nil && !errors.Is(err, zmtp.ErrClosed) {
			if errors.Is(err, io.EOF) {
				return "peer closed"
			}
			return err.Error()
		}
	}
	return "closed"
}

// handshakeFailed counts and logs a failed handshake. Refusals by the
// authenticator are counted and logged by it (with the client's public
// key); the relay counts every other failure.
func (c *core) handshakeFailed(ctx context.Context, remote string, err error) {
	if ctx.Err() != nil {
		return // shutting down
	}
	if errors.Is(err, zmtp.ErrAuthFailed) {
		c.log.Debug("handshake refused", "route", c.route, "remote", remote, "error", err)
		return
	}
	reason := failureReason(err)
	c.metrics.Handshake(c.route, metrics.ResultFailed, reason)
	attrs := []any{"route", c.route, "remote", remote, "reason", reason, "error", err}
	var ue *upstreamError
	if errors.As(err, &ue) && ue.cause != nil {
		attrs = append(attrs, "cause", ue.cause)
	}
	c.log.Info("handshake failed", attrs...)
}

// failureReason maps a handshake error to a metrics reason.
func failureReason(err error) string {
	var pe *zmtp.PeerError
	var ue *upstreamError
	switch {
	case errors.As(err, &ue):
		return metrics.ReasonUpstream
	case errors.Is(err, curve.ErrCryptographic) && strings.Contains(err.Error(), "HELLO"):
		// The client's HELLO is boxed for a server key we do not hold.
		return metrics.ReasonServerKey
	case errors.Is(err, zmtp.ErrHandshakeTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return metrics.ReasonTimeout
	case errors.Is(err, zmtp.ErrProtocol), errors.Is(err, zmtp.ErrBadGreeting),
		errors.Is(err, zmtp.ErrUnsupportedVersion), errors.Is(err, zmtp.ErrMechanismMismatch),
		errors.Is(err, zmtp.ErrRoleMismatch), errors.Is(err, zmtp.ErrSocketType),
		errors.Is(err, zmtp.ErrFrameTooLarge), errors.As(err, &pe),
		errors.Is(err, curve.ErrCryptographic), errors.Is(err, curve.ErrNonce):
		return metrics.ReasonProtocol
	}
	return metrics.ReasonIO
}

// z85 renders a public key for logs.
func z85(key []byte) string {
	s, err := keygen.Z85Encode(key)
	if err != nil {
		return fmt.Sprintf("invalid key of %d bytes", len(key))
	}
	return s
}

// handshakeTimeout is the bound on both handshakes of a session together.
func handshakeTimeout(cfg *zmtp.Config) time.Duration {
	if cfg.HandshakeTimeout > 0 {
		return cfg.HandshakeTimeout
	}
	return zmtp.DefaultHandshakeTimeout
}

// announced picks, from what one end announced, the properties the relay
// presents to the other end on its behalf: Socket-Type, Identity and the
// application-defined "X-" properties. User-Id and anything else a peer
// claims for itself are dropped: only the relay's own authenticator sets
// User-Id.
func announced(md zmtp.Metadata) zmtp.Metadata {
	out := make(zmtp.Metadata, 0, 2)
	for _, p := range md {
		switch {
		case strings.EqualFold(p.Name, zmtp.PropSocketType), strings.EqualFold(p.Name, zmtp.PropIdentity),
			len(p.Name) > 2 && strings.EqualFold(p.Name[:2], "X-"):
			if _, dup := out.Get(p.Name); !dup {
				out = append(out, zmtp.Property{Name: p.Name, Value: append([]byte(nil), p.Value...)})
			}
		}
	}
	return out
}

// peerSide extracts from what one end announced the Config fields the relay
// uses to present that end to the other: socket type, identity and "X-"
// properties.
func peerSide(md zmtp.Metadata) (socketType string, identity []byte, props zmtp.Metadata, err error) {
	st, ok := md.Get(zmtp.PropSocketType)
	if !ok || !zmtp.ValidSocketType(string(st)) {
		return "", nil, nil, fmt.Errorf("%w: peer announced no valid Socket-Type", zmtp.ErrSocketType)
	}
	for _, p := range announced(md) {
		switch {
		case strings.EqualFold(p.Name, zmtp.PropSocketType):
		case strings.EqualFold(p.Name, zmtp.PropIdentity):
			identity = p.Value
		default:
			props = append(props, p)
		}
	}
	return string(st), identity, props, nil
}
