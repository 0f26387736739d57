package zmtp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults applied to zero Config fields.
const (
	// DefaultMaxFrameSize is the default limit on one received frame.
	DefaultMaxFrameSize = 256 << 20
	// DefaultMaxMessageSize is the default limit on one received message
	// (the sum of its frames).
	DefaultMaxMessageSize = 256 << 20
	// DefaultHandshakeTimeout bounds the greeting and security handshake.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Config configures one connection. A Config may be shared by many
// connections; NewConn copies it.
type Config struct {
	// Mechanism is the security mechanism in its role. Required.
	Mechanism Mechanism
	// SocketType is our ZeroMQ socket type, e.g. "DEALER", announced as
	// "Socket-Type" and checked against the peer's. Required unless
	// LocalMetadata is set.
	SocketType string
	// Identity is the routing id announced as "Identity" (optional; at
	// most 255 bytes, not starting with a zero byte). REQ, DEALER and ROUTER
	// sockets always announce it, possibly empty, as libzmq does.
	Identity []byte
	// Properties are extra properties announced after Socket-Type and
	// Identity, which they must not repeat.
	Properties Metadata
	// LocalMetadata, when set, is passed to the mechanism as
	// HandshakeInfo.LocalFunc: it chooses what we announce after seeing
	// what the peer announced where the mechanism allows, replacing
	// SocketType, Identity and Properties. The socket-type compatibility
	// check is then skipped (a relay checks at its two ends); the peer must
	// still announce a valid Socket-Type. With NULL, the side that has
	// LocalMetadata speaks second, so two such sides would wait for each
	// other until the handshake timeout.
	LocalMetadata func(peer *HandshakeResult) (Metadata, error)
	// MaxFrameSize limits a received frame (default 256 MiB). A frame over
	// it is refused from its header, before its body is read or allocated.
	// A frame within it larger than 1 MiB that does not fit the storage
	// given gets storage that grows as its bytes arrive, not all of its
	// announced size at once.
	MaxFrameSize int64
	// MaxMessageSize limits the frames of one received message together
	// (default 256 MiB), checked before each frame body is allocated.
	MaxMessageSize int64
	// HandshakeTimeout bounds the greeting and handshake together (default
	// 10 s). The context given to NewConn can shorten it.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds Dial's TCP connect alone, as libzmq's
	// ZMQ_CONNECT_TIMEOUT does; 0 leaves it to the context (and the
	// kernel's SYN retries, over two minutes). A caller that retries sets
	// it so that one connect to an address that went silent (a deleted
	// pod's, still behind a Service) cannot take the whole retry window.
	ConnectTimeout time.Duration
	// HeartbeatInterval is the interval between the PINGs we send to a ZMTP
	// 3.1 peer; 0 sends none.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout closes the connection when nothing at all arrives
	// within it after a PING we sent. 0 means HeartbeatInterval (libzmq's
	// default for ZMQ_HEARTBEAT_TIMEOUT); it only applies when
	// HeartbeatInterval is set.
	HeartbeatTimeout time.Duration
	// HeartbeatTTL is the time-to-live announced in our PINGs (sent in
	// deciseconds, at most MaxPingTTL): the peer may close the connection
	// when nothing arrives from us within it. 0 announces none.
	HeartbeatTTL time.Duration
}

// withDefaults returns a copy of cfg with defaults applied, or an error for
// an unusable configuration.
func (cfg *Config) withDefaults() (Config, error) {
	if cfg == nil {
		return Config{}, errors.New("zmtp: nil Config")
	}
	c := *cfg
	if c.Mechanism == nil {
		return Config{}, errors.New("zmtp: Config.Mechanism is required")
	}
	if c.LocalMetadata == nil {
		if c.SocketType == "" {
			return Config{}, fmt.Errorf("%w: Config.SocketType is required", ErrSocketType)
		}
		if !ValidSocketType(c.SocketType) {
			return Config{}, fmt.Errorf("%w: unknown socket type %q", ErrSocketType, c.SocketType)
		}
	}
	if len(c.Identity) > 255 {
		return Config{}, fmt.Errorf("zmtp: Identity of %d bytes exceeds 255", len(c.Identity))
	}
	if len(c.Identity) > 0 && c.Identity[0] == 0 {
		return Config{}, errors.New("zmtp: an Identity must not start with a zero byte (reserved, RFC 23)")
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ConnectTimeout < 0 {
		return Config{}, errors.New("zmtp: ConnectTimeout must not be negative")
	}
	if c.HeartbeatInterval < 0 || c.HeartbeatTimeout < 0 || c.HeartbeatTTL < 0 {
		return Config{}, errors.New("zmtp: heartbeat durations must not be negative")
	}
	if c.HeartbeatTTL > MaxPingTTL {
		return Config{}, fmt.Errorf("zmtp: HeartbeatTTL %v exceeds the protocol's maximum %v", c.HeartbeatTTL, MaxPingTTL)
	}
	if c.HeartbeatInterval > 0 && c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = c.HeartbeatInterval
	}
	return c, nil
}

// localMetadata builds the properties we announce from SocketType, Identity
// and Properties.
func (cfg *Config) localMetadata() (Metadata, error) {
	st := strings.ToUpper(cfg.SocketType)
	md := Metadata{{Name: PropSocketType, Value: []byte(st)}}
	switch {
	case len(cfg.Identity) > 0, st == "REQ", st == "DEALER", st == "ROUTER":
		md = append(md, Property{Name: PropIdentity, Value: cfg.Identity})
	}
	for _, p := range cfg.Properties {
		if strings.EqualFold(p.Name, PropSocketType) || strings.EqualFold(p.Name, PropIdentity) {
			return nil, fmt.Errorf("zmtp: Config.Properties must not set %q; use SocketType and Identity", p.Name)
		}
		if _, dup := md.Get(p.Name); dup {
			return nil, fmt.Errorf("zmtp: Config.Properties sets %q twice", p.Name)
		}
		md = append(md, p)
	}
	if _, err := AppendMetadata(nil, md); err != nil {
		return nil, err
	}
	return md, nil
}
