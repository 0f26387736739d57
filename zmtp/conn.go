package zmtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Peer describes the other end of an established connection.
type Peer struct {
	// SocketType is the peer's announced Socket-Type.
	SocketType string
	// Identity is the peer's announced Identity (routing id), if any.
	Identity []byte
	// Metadata holds every property the peer announced.
	Metadata Metadata
	// UserID is the identity our authenticator returned (server side).
	UserID string
	// AuthMetadata is the metadata our authenticator returned.
	AuthMetadata Metadata
	// ClientKey is the client's long-term CURVE public key (CURVE server).
	ClientKey []byte
	// Username is the PLAIN username (PLAIN server).
	Username string
	// Mechanism is the security mechanism in use.
	Mechanism string
	// Minor is the ZMTP minor version the peer announced (0 or 1).
	Minor byte
	// RemoteAddr is the peer's network address.
	RemoteAddr string
}

// Conn is an established ZMTP connection. One goroutine may read
// (ReadFrame, ReadMessage, Buffered) while others write; writes are
// serialized internally. Heartbeats need the connection to be read
// continuously, as a relay does: PINGs are answered from the read side.
type Conn struct {
	nc    net.Conn
	cfg   Config
	peer  Peer
	codec FrameCodec

	// Read side.
	rmu       sync.Mutex
	cr        countingReader
	br        *readBuffer
	sealed    []byte // MESSAGE command bodies, when a codec is in use
	maxSealed uint64 // largest MESSAGE command body accepted
	msgSize   int64  // bytes so far of the data message being read

	// Write side.
	wmu  sync.Mutex
	bw   *writeBuffer
	wbuf []byte                                      // frame headers, sealed frames
	ctrl [1 + len(CmdPing) + 2 + MaxPingContext]byte // PING and PONG bodies

	// Control frames the read side and the heartbeat loop ask for; whoever
	// holds the write lock next sends them.
	pingPending atomic.Bool
	pongPending atomic.Bool
	pongMu      sync.Mutex
	pongCtx     [MaxPingContext]byte
	pongLen     int

	// Heartbeats.
	ttlTimer    *time.Timer
	ttlArmed    atomic.Bool
	ttlSnapshot atomic.Int64
	ttl         atomic.Int64 // the peer's TTL, nanoseconds
	hbDone      chan struct{}

	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
	failMu    sync.Mutex
	failErr   error
}

// countingReader counts the bytes that arrive and whether a read is waiting,
// for the heartbeat timeouts.
type countingReader struct {
	r       io.Reader
	n       atomic.Int64
	reading atomic.Bool
}

// Read implements io.Reader.
func (c *countingReader) Read(p []byte) (int, error) {
	c.reading.Store(true)
	n, err := c.r.Read(p)
	c.reading.Store(false)
	c.n.Add(int64(n))
	return n, err
}

// Dial connects to addr ("host:port" or "tcp://host:port") within
// cfg.ConnectTimeout, and runs the greeting and handshake under ctx and
// cfg.HandshakeTimeout.
func Dial(ctx context.Context, addr string, cfg *Config) (*Conn, error) {
	if i := strings.Index(addr, "://"); i >= 0 {
		if addr[:i] != "tcp" {
			return nil, fmt.Errorf("zmtp: dial %s: only tcp:// endpoints are supported", addr)
		}
		addr = addr[i+3:]
	}
	if cfg == nil {
		return nil, errors.New("zmtp: nil Config")
	}
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("zmtp: dial %s: %w", addr, err)
	}
	return NewConn(ctx, nc, cfg)
}

// NewConn runs the greeting and the security handshake over nc and returns
// the established connection. Both must finish within cfg.HandshakeTimeout
// and before ctx ends. On failure nc is closed.
func NewConn(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	c, err := newConn(ctx, nc, cfg)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func newConn(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	conf, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var local Metadata
	if conf.LocalMetadata == nil {
		if local, err = conf.localMetadata(); err != nil {
			return nil, err
		}
	}
	c := &Conn{nc: nc, cfg: conf, done: make(chan struct{})}
	c.cr.r = nc
	c.br = &readBuffer{src: &c.cr}
	if idle := newIdleReader(nc); idle != nil {
		c.br.readIdle = func(b *readBuffer) (int, error) {
			c.cr.reading.Store(true)
			n, err := idle.read(b)
			c.cr.reading.Store(false)
			c.cr.n.Add(int64(n))
			return n, err
		}
	}

	deadline := time.Now().Add(conf.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("zmtp: setting handshake deadline: %w", err)
	}
	stop := context.AfterFunc(hctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(hctx, local, deadline)
	if !stop() && err == nil {
		err = hctx.Err()
	}
	if err != nil {
		return nil, c.handshakeError(ctx, err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("zmtp: clearing handshake deadline: %w", err)
	}

	c.bw = &writeBuffer{dst: nc}
	c.wbuf = make([]byte, 0, 64)
	c.ttlTimer = time.AfterFunc(time.Hour, c.ttlExpired)
	c.ttlTimer.Stop()
	if c.codec != nil {
		c.maxSealed = uint64(1 + len(CmdMessage) + c.codec.SealedSize(int(conf.MaxFrameSize)))
	}
	if conf.HeartbeatInterval > 0 && c.peer.Minor >= 1 {
		c.hbDone = make(chan struct{})
		go c.heartbeatLoop(conf.HeartbeatInterval, conf.HeartbeatTimeout)
	}
	return c, nil
}

// handshakeError explains a failed greeting or handshake, telling the
// handshake deadline from the caller's context.
func (c *Conn) handshakeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("zmtp: handshake with %s: %w (%w)", c.remoteAddr(), ctx.Err(), err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: greeting and handshake with %s did not finish within %v: %w", ErrHandshakeTimeout, c.remoteAddr(), c.cfg.HandshakeTimeout, err)
	}
	return fmt.Errorf("zmtp: handshake with %s: %w", c.remoteAddr(), err)
}

// remoteAddr is the peer's address as text.
func (c *Conn) remoteAddr() string {
	if a := c.nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// handshake exchanges greetings, runs the mechanism and checks the peer's
// socket type.
func (c *Conn) handshake(ctx context.Context, local Metadata, deadline time.Time) error {
	mech := c.cfg.Mechanism
	h := &handshakeConn{nc: c.nc, br: c.br, deadline: deadline}
	greeting, err := AppendGreeting(nil, mech.Name(), mech.AsServer())
	if err != nil {
		return err
	}
	h.queue(greeting)
	g, err := h.readGreeting()
	if err != nil {
		return err
	}
	if g.Mechanism != mech.Name() {
		return fmt.Errorf("%w: we use %s, the peer %s", ErrMechanismMismatch, mech.Name(), g.Mechanism)
	}
	if err := checkRoles(mech.Name(), mech.AsServer(), g); err != nil {
		return err
	}
	minor := g.Minor
	if minor > VersionMinor {
		minor = VersionMinor
	}
	info := HandshakeInfo{
		Local:      local,
		LocalFunc:  c.cfg.LocalMetadata,
		RemoteAddr: c.remoteAddr(),
		PeerMinor:  minor,
	}
	res, err := mech.Handshake(ctx, h, info)
	if err != nil {
		// Deliver the ERROR the mechanism queued, without waiting long for
		// a peer that does not read.
		if soon := time.Now().Add(500 * time.Millisecond); soon.Before(deadline) {
			_ = c.nc.SetWriteDeadline(soon)
		}
		_ = h.flush()
		return err
	}
	if res == nil {
		return fmt.Errorf("zmtp: %s mechanism returned no result", mech.Name())
	}
	if err := h.flush(); err != nil {
		if res.Codec != nil {
			res.Codec.Close()
		}
		return err
	}
	ours := c.cfg.SocketType
	if c.cfg.LocalMetadata != nil {
		ours = ""
	}
	st, err := checkPeerSocketType(ours, res.Peer)
	if err != nil {
		if res.Codec != nil {
			res.Codec.Close()
		}
		return err
	}
	c.codec = res.Codec
	c.peer = Peer{
		SocketType:   strings.ToUpper(st),
		Metadata:     res.Peer,
		UserID:       res.UserID,
		AuthMetadata: res.AuthMetadata,
		ClientKey:    res.ClientKey,
		Username:     res.Username,
		Mechanism:    mech.Name(),
		Minor:        minor,
		RemoteAddr:   info.RemoteAddr,
	}
	if id, ok := res.Peer.Get(PropIdentity); ok {
		c.peer.Identity = id
	}
	return nil
}

// Peer describes the other end. The returned value shares its slices with
// the connection; do not modify them.
func (c *Conn) Peer() Peer { return c.peer }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Buffered returns the number of bytes already received and waiting to be
// read: when it is zero the next ReadFrame may block, so a relay flushes
// what it has written before that. Call it from the reading goroutine.
func (c *Conn) Buffered() int { return c.br.Buffered() }

// fail records the first fatal error and closes the network connection, so
// that blocked readers and writers return it.
func (c *Conn) fail(err error) error {
	c.failMu.Lock()
	if c.failErr == nil {
		c.failErr = err
	}
	err = c.failErr
	c.failMu.Unlock()
	_ = c.nc.Close()
	return err
}

// failure returns the recorded fatal error, if any.
func (c *Conn) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failErr
}

// ioError turns a network error into the error a caller sees: the recorded
// fatal error, ErrClosed after Close, or the error wrapped.
func (c *Conn) ioError(op string, err error) error {
	if ferr := c.failure(); ferr != nil {
		return ferr
	}
	if c.closed.Load() {
		return fmt.Errorf("%w (%s: %w)", ErrClosed, op, err)
	}
	return fmt.Errorf("zmtp: %s: %w", op, err)
}

// Close closes the connection and erases the session keys of an encrypting
// mechanism. Data written but not flushed is discarded. It is idempotent.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		if cerr := c.nc.Close(); cerr != nil && c.failure() == nil {
			err = fmt.Errorf("zmtp: close: %w", cerr)
		}
		c.ttlTimer.Stop()
		if c.hbDone != nil {
			<-c.hbDone
		}
		if c.codec != nil {
			c.rmu.Lock()
			c.wmu.Lock()
			c.codec.Close()
			c.wmu.Unlock()
			c.rmu.Unlock()
		}
	})
	return err
}
