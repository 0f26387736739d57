package relay

import (
	"fmt"
	"time"

	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zmtp"
)

// reportInterval is how often a direction adds its counts to the metrics
// while traffic flows (and once more when it ends).
const reportInterval = 250 * time.Millisecond

// pump copies frames from src to dst until either fails, translating
// subscriptions between ZMTP 3.0 and 3.1 when the two sides differ. It
// flushes dst whenever src has nothing more buffered. direction and route
// label the counts added to m.
func pump(src, dst *zmtp.Conn, m *metrics.Metrics, route, direction string) error {
	// The frame buffer grows to the largest frame seen up to
	// zmtp.MaxKeptBuffer, the bound the engine keeps its own storage under,
	// so one huge message does not pin its size for the session's
	// lifetime; an idle session has none.
	var buf []byte
	var scratch []byte // translated subscriptions
	srcPeer, dstPeer := src.Peer(), dst.Peer()
	// Subscriptions travel from subscribers to publishers: data messages
	// whose first byte is 1 or 0 in ZMTP 3.0, commands in ZMTP 3.1.
	fromSubscriber := srcPeer.SocketType == "SUB" || srcPeer.SocketType == "XSUB"
	msgToCmd := fromSubscriber && srcPeer.Minor == 0 && dstPeer.Minor >= 1
	cmdToMsg := dstPeer.Minor == 0

	var msgs, bytes int
	lastReport := time.Now()
	report := func() {
		if msgs > 0 || bytes > 0 {
			m.Relayed(route, direction, msgs, bytes)
			msgs, bytes = 0, 0
		}
	}
	defer report()

	startOfMessage := true
	for {
		f, err := src.ReadFrame(buf[:0])
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		if c := cap(f.Payload); c > cap(buf) && c <= zmtp.MaxKeptBuffer {
			buf = f.Payload[:0]
		}

		switch {
		case f.Flags&zmtp.FlagCommand != 0:
			err = forwardCommand(dst, f.Payload, cmdToMsg, &scratch)
		case msgToCmd && startOfMessage && f.Flags&zmtp.FlagMore == 0:
			if cmd, ok := zmtp.SubscriptionMessage(f.Payload); ok {
				scratch, err = zmtp.AppendCommand(scratch[:0], cmd)
				if err == nil {
					err = dst.WriteFrame(zmtp.FlagCommand, scratch)
				}
				break
			}
			fallthrough
		default:
			err = dst.WriteFrame(f.Flags, f.Payload)
			bytes += len(f.Payload)
			if f.Flags&zmtp.FlagMore == 0 {
				msgs++
			}
			startOfMessage = f.Flags&zmtp.FlagMore == 0
		}
		if err != nil {
			return fmt.Errorf("writing: %w", err)
		}

		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return fmt.Errorf("flushing: %w", err)
			}
			if now := time.Now(); now.Sub(lastReport) >= reportInterval {
				report()
				lastReport = now
			}
		}
	}
}

// forwardCommand writes the command frame payload to dst, as the ZMTP 3.0
// subscription message when toMessage is set and it is a SUBSCRIBE or
// CANCEL. Other commands are forwarded unchanged.
func forwardCommand(dst *zmtp.Conn, payload []byte, toMessage bool, scratch *[]byte) error {
	if toMessage {
		if cmd, err := zmtp.ParseCommand(payload); err == nil && (cmd.Name == zmtp.CmdSubscribe || cmd.Name == zmtp.CmdCancel) {
			msg, err := zmtp.AppendSubscriptionMessage((*scratch)[:0], cmd)
			if err != nil {
				return err
			}
			*scratch = msg
			return dst.WriteFrame(0, msg)
		}
	}
	return dst.WriteFrame(zmtp.FlagCommand, payload)
}
