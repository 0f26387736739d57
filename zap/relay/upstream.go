package relay

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// Retrying the other end of the relay. The application may be restarting,
// or not up yet (the sidecar starts before it); a remote server may be
// restarting, or may not have our key in its allowlist yet (allowlists
// follow new clients within seconds). A libzmq peer that gets an ERROR
// during the handshake treats it as a protocol error and never reconnects,
// while one whose connection is merely closed reconnects
// (ZMQ_RECONNECT_IVL). So the other end is retried within the handshake
// deadline, and if it stays out of reach the peer's connection is closed
// without ERROR, as a refused TCP connection would be: the peer comes back
// by itself. Only what retrying cannot fix is final and passed on as ERROR
// with its reason: socket types that cannot talk, and on the inbound side
// the application's own refusal (its ZAP handler, say), as a direct
// connection would get it.

const (
	// firstRetry and maxRetry bound the pause between two attempts.
	firstRetry = 50 * time.Millisecond
	maxRetry   = 500 * time.Millisecond
	// connectTimeout bounds each attempt's TCP connect. Measured on a
	// node: a server pod deleted behind its Service left a client's next
	// connect to the dead pod's address unanswered, and without a bound
	// that one attempt took the whole retry window though the replacement
	// pod was Ready 2-4 s later. A new attempt is a new connection, which
	// the Service routes afresh. Within a cluster a connect takes well
	// under a millisecond, so a second is the kernel's first SYN
	// retransmission and no more.
	connectTimeout = time.Second
)

// withConnectTimeout returns cfg with a per-attempt connect bound, unless
// the caller chose one.
func withConnectTimeout(cfg zmtp.Config) zmtp.Config {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	return cfg
}

// upstreamError is a handshake failure at the other end of the relay: the
// application, or the remote server, could not be reached or refused us.
// Its text is what the peer reads in the ERROR command, so it names no
// address; the cause is kept for the log.
type upstreamError struct {
	reason string
	cause  error
}

// Error returns the reason sent to the peer.
func (e *upstreamError) Error() string { return e.reason }

// Unwrap returns the cause.
func (e *upstreamError) Unwrap() error { return e.cause }

// dialUpstream calls dial until it succeeds, fails for good (final says
// so), or the retry window ends: four fifths of what is left of ctx's
// deadline (the rest is for finishing the handshake).
func dialUpstream(ctx context.Context, final func(error) bool, dial func() (*zmtp.Conn, error)) (*zmtp.Conn, error) {
	until := time.Now().Add(time.Second)
	if d, ok := ctx.Deadline(); ok {
		until = time.Now().Add(time.Until(d) * 4 / 5)
	}
	pause := firstRetry
	for {
		c, err := dial()
		if err == nil || final(err) || ctx.Err() != nil || time.Now().Add(pause).After(until) {
			return c, err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, err
		}
		pause = min(2*pause, maxRetry)
	}
}

// appRefused reports whether a failed dial of the application is final:
// socket types that cannot talk, or the application's refusal.
func appRefused(err error) bool {
	var pe *zmtp.PeerError
	return errors.As(err, &pe) || incompatible(err)
}

// incompatible reports whether a failed dial is final because the two ends
// can never talk: their socket types or mechanisms do not match.
func incompatible(err error) bool {
	return errors.Is(err, zmtp.ErrSocketType) || errors.Is(err, zmtp.ErrMechanismMismatch)
}

// upstreamFailure describes a failed dial of end (the application or the
// server) for the peer on nc. A final failure is returned for the
// mechanism to send as ERROR. Otherwise nc is closed first, so that the
// mechanism's ERROR never leaves and a libzmq peer reconnects.
func upstreamFailure(end string, err error, final bool, nc net.Conn) error {
	var pe *zmtp.PeerError
	switch {
	case !final:
		_ = nc.Close()
		return &upstreamError{reason: end + " not reachable", cause: err}
	case errors.Is(err, zmtp.ErrSocketType):
		return &upstreamError{reason: end + " socket type does not match", cause: err}
	case errors.As(err, &pe):
		return &upstreamError{reason: end + " refused the connection: " + pe.Reason, cause: err}
	}
	return &upstreamError{reason: end + " refused the connection", cause: err}
}
