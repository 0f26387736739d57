package zmtp

import (
	"fmt"
	"net"
	"time"
)

// HandshakeCommandLimit is the largest command frame body accepted during a
// handshake. Handshake commands are small (a CURVE INITIATE with metadata is
// a few hundred bytes); the limit bounds what an unauthenticated peer can
// make us allocate.
const HandshakeCommandLimit = 8 << 10

// handshakeConn is the CommandReadWriter a mechanism runs on. Writes are
// queued and sent while the next read runs, so that two peers that both
// speak first (NULL READY, the greeting) never wait on each other even over
// an unbuffered transport such as net.Pipe.
type handshakeConn struct {
	nc       net.Conn
	br       *readBuffer
	deadline time.Time
	out      []byte
}

// queue adds raw bytes to the pending output.
func (h *handshakeConn) queue(b []byte) { h.out = append(h.out, b...) }

// WriteCommand queues one command frame; it is sent by the next read or by
// flush.
func (h *handshakeConn) WriteCommand(c Command) error {
	if len(c.Name) == 0 || len(c.Name) > 255 {
		return fmt.Errorf("zmtp: command name must be 1 to 255 bytes, got %d", len(c.Name))
	}
	h.out = AppendFrameHeader(h.out, FlagCommand, uint64(1+len(c.Name)+len(c.Body)))
	h.out, _ = AppendCommand(h.out, c)
	return nil
}

// ReadCommand sends what is queued and reads the next command frame. The
// returned Body is a fresh allocation the mechanism may keep.
func (h *handshakeConn) ReadCommand() (Command, error) {
	var cmd Command
	err := h.whileFlushing(func() error {
		var err error
		cmd, err = h.readCommand()
		return err
	})
	return cmd, err
}

// readCommand reads one frame and insists that it is a command within the
// handshake limit.
func (h *handshakeConn) readCommand() (Command, error) {
	flags, size, err := readFrameHeader(h.br)
	if err != nil {
		return Command{}, fmt.Errorf("zmtp: handshake: %w", noEOF(err))
	}
	if flags&FlagCommand == 0 {
		return Command{}, fmt.Errorf("%w: data frame during the handshake", ErrProtocol)
	}
	if size > HandshakeCommandLimit {
		return Command{}, fmt.Errorf("%w: handshake command of %d bytes, the limit is %d", ErrFrameTooLarge, size, HandshakeCommandLimit)
	}
	body, err := readBody(h.br, nil, size)
	if err != nil {
		return Command{}, fmt.Errorf("zmtp: handshake: %w", err)
	}
	if len(body) >= len(libzmqPlainError) && string(body[:len(libzmqPlainError)]) == libzmqPlainError {
		return Command{Name: CmdError, Body: body[len(libzmqPlainError):]}, nil
	}
	return ParseCommand(body)
}

// libzmqPlainError is how libzmq 4.3 (through at least 4.3.5) starts the
// ERROR command of its PLAIN mechanism: its C source spells the prefix
// "\x05ERROR", and a C hex escape takes every hex digit that follows, so the
// name length and the 'E' become one byte, 0x5E ('^'). Its PLAIN client
// expects this form (and rejects the correct one as an unexpected command).
// We accept it as ERROR; we send the correct form.
const libzmqPlainError = "^RROR"

// readGreeting sends what is queued (our greeting) and reads the peer's.
func (h *handshakeConn) readGreeting() (Greeting, error) {
	var g Greeting
	err := h.whileFlushing(func() error {
		var err error
		g, err = readGreeting(h.br)
		return err
	})
	return g, err
}

// whileFlushing runs read while the queued output is written. On a read
// error it aborts a write the peer does not drain, so that no goroutine
// outlives the call.
func (h *handshakeConn) whileFlushing(read func() error) error {
	if len(h.out) == 0 {
		return read()
	}
	buf := h.out
	h.out = nil
	done := make(chan error, 1)
	go func() {
		_, err := h.nc.Write(buf)
		done <- err
	}()
	if rerr := read(); rerr != nil {
		select {
		case <-done:
		default:
			_ = h.nc.SetWriteDeadline(time.Unix(1, 0))
			<-done
			_ = h.nc.SetWriteDeadline(h.deadline)
		}
		return rerr
	}
	if werr := <-done; werr != nil {
		return fmt.Errorf("zmtp: handshake write: %w", werr)
	}
	return nil
}

// flush writes whatever is queued.
func (h *handshakeConn) flush() error {
	if len(h.out) == 0 {
		return nil
	}
	_, err := h.nc.Write(h.out)
	h.out = nil
	if err != nil {
		return fmt.Errorf("zmtp: handshake write: %w", err)
	}
	return nil
}
