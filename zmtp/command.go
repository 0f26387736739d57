package zmtp

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Command names defined by RFC 23, 24, 25 and 37.
const (
	CmdReady     = "READY"     // metadata exchange (NULL, PLAIN, CURVE)
	CmdError     = "ERROR"     // handshake refusal with a reason
	CmdHello     = "HELLO"     // PLAIN and CURVE client greeting
	CmdWelcome   = "WELCOME"   // PLAIN and CURVE server answer to HELLO
	CmdInitiate  = "INITIATE"  // PLAIN and CURVE client metadata
	CmdMessage   = "MESSAGE"   // CURVE frame after the handshake
	CmdPing      = "PING"      // ZMTP 3.1 heartbeat request
	CmdPong      = "PONG"      // ZMTP 3.1 heartbeat reply
	CmdSubscribe = "SUBSCRIBE" // ZMTP 3.1 subscription
	CmdCancel    = "CANCEL"    // ZMTP 3.1 subscription cancellation
)

// Limits of command fields (RFC 37).
const (
	// MaxPingContext is the longest context a PING or PONG carries.
	MaxPingContext = 16
	// MaxErrorReason is the longest ERROR reason.
	MaxErrorReason = 255
	// MaxPingTTL is the largest TTL a PING can announce (65535 deciseconds).
	MaxPingTTL = 65535 * 100 * time.Millisecond
)

// AppendCommand appends the body of a command frame: the name's length, the
// name and the data. It fails on a name that is empty or longer than 255
// bytes.
func AppendCommand(dst []byte, c Command) ([]byte, error) {
	if len(c.Name) == 0 || len(c.Name) > 255 {
		return dst, fmt.Errorf("zmtp: command name must be 1 to 255 bytes, got %d", len(c.Name))
	}
	dst = append(dst, byte(len(c.Name)))
	dst = append(dst, c.Name...)
	return append(dst, c.Body...), nil
}

// splitCommand splits a command frame body into name and data without
// allocating.
func splitCommand(b []byte) (name, body []byte, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("%w: empty command frame", ErrProtocol)
	}
	n := int(b[0])
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: command with an empty name", ErrProtocol)
	}
	if len(b)-1 < n {
		return nil, nil, fmt.Errorf("%w: command name of %d bytes in a frame of %d", ErrProtocol, n, len(b))
	}
	return b[1 : 1+n], b[1+n:], nil
}

// ParseCommand splits a command frame body into its name and data. Body
// aliases b. Names are not restricted further (mechanisms define their own).
func ParseCommand(b []byte) (Command, error) {
	name, body, err := splitCommand(b)
	if err != nil {
		return Command{}, err
	}
	return Command{Name: string(name), Body: body}, nil
}

// ReadyCommand builds a READY command carrying md.
func ReadyCommand(md Metadata) (Command, error) {
	body, err := AppendMetadata(make([]byte, 0, md.EncodedLen()), md)
	if err != nil {
		return Command{}, err
	}
	return Command{Name: CmdReady, Body: body}, nil
}

// ErrorCommand builds an ERROR command. The reason is cut to 255 bytes and
// bytes outside printable ASCII are replaced by '?', so that a reason taken
// from an error string is always valid on the wire.
func ErrorCommand(reason string) Command {
	if len(reason) > MaxErrorReason {
		reason = reason[:MaxErrorReason]
	}
	body := make([]byte, 1, 1+len(reason))
	body[0] = byte(len(reason))
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		body = append(body, c)
	}
	return Command{Name: CmdError, Body: body}
}

// ParseError decodes an ERROR command's data into its reason.
func ParseError(body []byte) (string, error) {
	if len(body) == 0 {
		return "", fmt.Errorf("%w: ERROR without a reason length", ErrProtocol)
	}
	if int(body[0]) != len(body)-1 {
		return "", fmt.Errorf("%w: ERROR reason claims %d bytes, has %d", ErrProtocol, body[0], len(body)-1)
	}
	return string(body[1:]), nil
}

// pingTTL converts a duration to the PING TTL field (deciseconds, rounded
// down, capped at 65535).
func pingTTL(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	ds := d / (100 * time.Millisecond)
	if ds > 65535 {
		return 65535
	}
	return uint16(ds)
}

// PingCommand builds a PING command with a TTL (sent in deciseconds, rounded
// down, capped at MaxPingTTL) and a context of at most 16 bytes.
func PingCommand(ttl time.Duration, context []byte) (Command, error) {
	if len(context) > MaxPingContext {
		return Command{}, fmt.Errorf("zmtp: PING context of %d bytes exceeds %d", len(context), MaxPingContext)
	}
	body := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(context)), pingTTL(ttl))
	return Command{Name: CmdPing, Body: append(body, context...)}, nil
}

// ParsePing decodes a PING command's data. A context longer than 16 bytes is
// cut to 16, as libzmq does; context aliases body.
func ParsePing(body []byte) (ttl time.Duration, context []byte, err error) {
	if len(body) < 2 {
		return 0, nil, fmt.Errorf("%w: PING of %d bytes has no TTL", ErrProtocol, len(body))
	}
	ttl = time.Duration(binary.BigEndian.Uint16(body)) * 100 * time.Millisecond
	context = body[2:]
	if len(context) > MaxPingContext {
		context = context[:MaxPingContext]
	}
	return ttl, context, nil
}

// PongCommand builds a PONG command echoing a PING's context.
func PongCommand(context []byte) (Command, error) {
	if len(context) > MaxPingContext {
		return Command{}, fmt.Errorf("zmtp: PONG context of %d bytes exceeds %d", len(context), MaxPingContext)
	}
	return Command{Name: CmdPong, Body: append([]byte(nil), context...)}, nil
}

// ParsePong decodes a PONG command's data into its context.
func ParsePong(body []byte) ([]byte, error) {
	if len(body) > MaxPingContext {
		return nil, fmt.Errorf("%w: PONG context of %d bytes exceeds %d", ErrProtocol, len(body), MaxPingContext)
	}
	return body, nil
}

// SubscribeCommand builds a ZMTP 3.1 SUBSCRIBE command for topic.
func SubscribeCommand(topic []byte) Command {
	return Command{Name: CmdSubscribe, Body: topic}
}

// CancelCommand builds a ZMTP 3.1 CANCEL command for topic.
func CancelCommand(topic []byte) Command {
	return Command{Name: CmdCancel, Body: topic}
}

// SubscriptionMessage converts between the two forms of a subscription. It
// reports whether the single-frame data message msg is a ZMTP 3.0
// subscription (first byte 1) or cancellation (first byte 0) and returns
// the equivalent ZMTP 3.1 command, whose Body aliases msg.
func SubscriptionMessage(msg []byte) (Command, bool) {
	if len(msg) == 0 {
		return Command{}, false
	}
	switch msg[0] {
	case 1:
		return SubscribeCommand(msg[1:]), true
	case 0:
		return CancelCommand(msg[1:]), true
	}
	return Command{}, false
}

// AppendSubscriptionMessage appends the ZMTP 3.0 data-message form of a
// SUBSCRIBE or CANCEL command (a first byte of 1 or 0, then the topic), for
// a relay that forwards subscriptions to a ZMTP 3.0 peer. It fails on any
// other command.
func AppendSubscriptionMessage(dst []byte, c Command) ([]byte, error) {
	switch c.Name {
	case CmdSubscribe:
		dst = append(dst, 1)
	case CmdCancel:
		dst = append(dst, 0)
	default:
		return dst, fmt.Errorf("zmtp: %s is not a subscription command", c.Name)
	}
	return append(dst, c.Body...), nil
}
