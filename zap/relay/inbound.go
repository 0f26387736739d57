package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
)

// Inbound is the server side of the sidecar: it accepts connections from
// the network with the route's server mechanism (CURVE, authorized by the
// route's policy) and relays each to a new NULL connection to the
// application. Set the fields, then call Serve once.
type Inbound struct {
	// Route names the route in metrics and logs.
	Route string
	// Network configures the connections accepted from the network. Its
	// Mechanism is required: the route's server mechanism, e.g. a
	// *curve.Server whose authenticator is the route's policy. Its limits,
	// heartbeats and HandshakeTimeout apply; HandshakeTimeout also bounds
	// the dial to the application. SocketType, Identity, Properties and
	// LocalMetadata are chosen per connection by the relay.
	Network zmtp.Config
	// AppAddr is the application's address ("host:port" or
	// "tcp://host:port"), normally on localhost.
	AppAddr string
	// App configures the connections to the application (limits,
	// heartbeats). Its mechanism is always NULL; SocketType, Identity,
	// Properties and LocalMetadata are chosen per connection.
	App zmtp.Config
	// Metrics counts handshakes, sessions and relayed traffic; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Verdict names the result and reason a handshake is counted under
	// once its session is established (both handshakes done), from the
	// client's long-term key; nil counts every one as accepted. The route's
	// authenticator counts refusals; a session that fails after it accepted
	// (the application unreachable) is counted once, as failed.
	Verdict func(clientKey []byte) (result, reason string)
	// Logger receives the relay's logs; nil discards them.
	Logger *slog.Logger
	// MaxHandshakes bounds the accepted connections in their handshakes at
	// once; one beyond it is closed at once (0: DefaultMaxHandshakes).
	MaxHandshakes int

	reg registry
}

// Serve accepts connections on ln until ctx ends, running each connection's
// handshake and relay in its own goroutine, so a slow handshake never holds
// up the next accept. When ctx ends it closes ln and every session and
// returns nil once they are gone; if ln fails first it returns the error
// (after the same cleanup).
func (in *Inbound) Serve(ctx context.Context, ln net.Listener) error {
	if in.Network.Mechanism == nil {
		_ = ln.Close()
		return fmt.Errorf("relay %s: inbound route has no server mechanism: %w", in.Route, zmtp.ErrNoAuthenticator)
	}
	if in.AppAddr == "" {
		_ = ln.Close()
		return fmt.Errorf("relay %s: inbound route has no application address", in.Route)
	}
	c := &core{
		maxHandshakes: in.MaxHandshakes,
		route:         in.Route,
		timeout:       handshakeTimeout(&in.Network),
		metrics:       in.Metrics,
		log:           logger(in.Logger),
		reg:           &in.reg,
		establish:     in.establish,
		verdict:       in.Verdict,
	}
	return c.serve(ctx, ln)
}

// CloseWhere closes at once the live sessions whose client long-term public
// key satisfies match and returns how many it closed. Sessions still in
// their handshake are checked against match when they complete. The
// sidecar calls it after every allowlist change with the negation of the
// policy's verdict, so that revoking a key ends its sessions.
func (in *Inbound) CloseWhere(match func(clientKey []byte) bool) int {
	return in.reg.closeWhere(match)
}

// Sessions returns the number of live sessions.
func (in *Inbound) Sessions() int { return in.reg.count() }

// ClientKeys returns the long-term client keys of the live sessions (one
// per session, so a key appears as often as it has sessions). The slices
// must not be modified.
func (in *Inbound) ClientKeys() [][]byte { return in.reg.clientKeys() }

// establish runs the network handshake; once the client is authorized it
// dials the application, presenting the client, and presents the
// application to the client in READY.
func (in *Inbound) establish(ctx context.Context, nc net.Conn) (*zmtp.Conn, *zmtp.Conn, error) {
	var app *zmtp.Conn
	cfg := in.Network
	cfg.SocketType, cfg.Identity, cfg.Properties = "", nil, nil
	cfg.LocalMetadata = func(peer *zmtp.HandshakeResult) (zmtp.Metadata, error) {
		if peer == nil {
			return nil, errors.New("relay: the server mechanism called LocalMetadata before the client's metadata")
		}
		st, id, props, err := peerSide(peer.Peer)
		if err != nil {
			return nil, err
		}
		props = withAuth(props, peer)
		acfg := withConnectTimeout(in.App)
		acfg.Mechanism = zmtp.NewNullClient()
		acfg.SocketType, acfg.Identity, acfg.Properties, acfg.LocalMetadata = st, id, props, nil
		app, err = dialUpstream(ctx, appRefused, func() (*zmtp.Conn, error) { return zmtp.Dial(ctx, in.AppAddr, &acfg) })
		if err != nil {
			return nil, upstreamFailure("application", err, appRefused(err), nc)
		}
		return announced(app.Peer().Metadata), nil
	}
	network, err := zmtp.NewConn(ctx, nc, &cfg)
	if err != nil {
		if app != nil {
			_ = app.Close()
		}
		return nil, nil, err
	}
	if app == nil {
		_ = network.Close()
		return nil, nil, fmt.Errorf("relay %s: the server mechanism never asked for local metadata", in.Route)
	}
	return network, app, nil
}

// withAuth adds what the authenticator established to the properties
// presented to the application: User-Id and the authenticator's metadata
// (as libzmq exposes ZAP metadata), never overriding Socket-Type or
// Identity.
func withAuth(props zmtp.Metadata, peer *zmtp.HandshakeResult) zmtp.Metadata {
	if peer.UserID != "" {
		props = append(props, zmtp.Property{Name: zmtp.PropUserID, Value: []byte(peer.UserID)})
	}
	for _, p := range peer.AuthMetadata {
		if strings.EqualFold(p.Name, zmtp.PropSocketType) || strings.EqualFold(p.Name, zmtp.PropIdentity) {
			continue
		}
		if _, dup := props.Get(p.Name); dup {
			continue
		}
		props = append(props, p)
	}
	return props
}

// logger returns l, or a logger that discards everything.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
