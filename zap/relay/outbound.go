package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
)

// Outbound is the client side of the sidecar: it accepts the application's
// NULL connections on localhost and relays each to a new connection to the
// remote server, made with a client mechanism (CURVE) built for that
// connection. Set the fields, then call Serve once.
type Outbound struct {
	// Route names the route in metrics and logs.
	Route string
	// App configures the connections accepted from the application
	// (limits, heartbeats, HandshakeTimeout, which also bounds the dial to
	// the server). Its mechanism is always NULL, with no authenticator: the
	// listener belongs on localhost.
	App zmtp.Config
	// ServerAddr is the remote server's address ("host:port" or
	// "tcp://host:port").
	ServerAddr string
	// Network configures the connections to the server (limits,
	// heartbeats). Its Mechanism is ignored: NewMechanism supplies one per
	// connection.
	Network zmtp.Config
	// NewMechanism returns the client mechanism for one new connection to
	// the server: a CURVE client with the workload's current keypair and
	// the server's public key. It is called for every dial, so rotated keys
	// apply to new connections while established ones keep theirs.
	// Required.
	NewMechanism func() (zmtp.Mechanism, error)
	// Metrics counts handshakes, sessions and relayed traffic; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Logger receives the relay's logs; nil discards them.
	Logger *slog.Logger
	// MaxHandshakes bounds the accepted connections in their handshakes at
	// once; one beyond it is closed at once (0: DefaultMaxHandshakes).
	MaxHandshakes int

	reg registry
}

// Serve accepts the application's connections on ln until ctx ends, running
// each connection's handshakes and relay in its own goroutine. When ctx ends
// it closes ln and every session and returns nil once they are gone; if ln
// fails first it returns the error (after the same cleanup).
func (out *Outbound) Serve(ctx context.Context, ln net.Listener) error {
	if out.NewMechanism == nil {
		_ = ln.Close()
		return fmt.Errorf("relay %s: outbound route has no client mechanism", out.Route)
	}
	if out.ServerAddr == "" {
		_ = ln.Close()
		return fmt.Errorf("relay %s: outbound route has no server address", out.Route)
	}
	c := &core{
		maxHandshakes: out.MaxHandshakes,
		route:         out.Route,
		timeout:       handshakeTimeout(&out.App),
		metrics:       out.Metrics,
		log:           logger(out.Logger),
		reg:           &out.reg,
		establish:     out.establish,
	}
	return c.serve(ctx, ln)
}

// Sessions returns the number of live sessions.
func (out *Outbound) Sessions() int { return out.reg.count() }

// establish reads the application's READY, dials the server presenting the
// application, and presents the server to the application in READY.
//
// The application's READY is answered only once the CURVE session with the
// server exists, never before: a libzmq application queues its messages
// (a REQ's request, say) on the socket's pipe as soon as it connects, keeps
// them there across reconnections, and takes them from the pipe only when
// a handshake completes; a REQ never sends a taken request again. So while
// the server cannot be reached or refuses us (a key not yet in its
// allowlist, a server still starting) the application's handshake waits,
// and if the retry window ends the connection is closed without ERROR
// (see upstream.go): the queued request stays with libzmq, which
// reconnects and delivers it once the server takes us. Completing the
// application's handshake first and then failing to reach the server would
// drop that request. It also keeps the route fail-closed: no message of
// the application's is read before the server has authenticated the
// session.
// (test/interop's TestSidecarFirstRequestWaitsForLateUpstream.)
func (out *Outbound) establish(ctx context.Context, nc net.Conn) (*zmtp.Conn, *zmtp.Conn, error) {
	var server *zmtp.Conn
	cfg := out.App
	cfg.Mechanism = zmtp.NewNullServer(nil, "")
	cfg.SocketType, cfg.Identity, cfg.Properties = "", nil, nil
	cfg.LocalMetadata = func(peer *zmtp.HandshakeResult) (zmtp.Metadata, error) {
		if peer == nil {
			return nil, errors.New("relay: NULL mechanism called LocalMetadata before the application's metadata")
		}
		st, id, props, err := peerSide(peer.Peer)
		if err != nil {
			return nil, err
		}
		server, err = dialUpstream(ctx, incompatible, func() (*zmtp.Conn, error) {
			// A new mechanism per attempt: the keys in force now.
			mech, err := out.NewMechanism()
			if err != nil {
				return nil, fmt.Errorf("client keys: %w", err)
			}
			scfg := withConnectTimeout(out.Network)
			scfg.Mechanism = mech
			scfg.SocketType, scfg.Identity, scfg.Properties, scfg.LocalMetadata = st, id, props, nil
			return zmtp.Dial(ctx, out.ServerAddr, &scfg)
		})
		if err != nil {
			return nil, upstreamFailure("server", err, incompatible(err), nc)
		}
		return announced(server.Peer().Metadata), nil
	}
	app, err := zmtp.NewConn(ctx, nc, &cfg)
	if err != nil {
		if server != nil {
			_ = server.Close()
		}
		return nil, nil, err
	}
	if server == nil {
		_ = app.Close()
		return nil, nil, fmt.Errorf("relay %s: the NULL mechanism never asked for local metadata", out.Route)
	}
	return server, app, nil
}
