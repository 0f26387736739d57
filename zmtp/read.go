package zmtp

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// ReadFrame reads the next frame. The payload is stored in dst when it fits
// (pass the previous Frame.Payload[:0] to reuse its storage). PING is
// answered and PONG consumed here; every other command (SUBSCRIBE, CANCEL,
// unknown ones) is returned with FlagCommand set and the whole command
// (name length, name, data) as payload, so a relay can forward it. A peer's
// ERROR command ends the connection with a *PeerError.
//
// A frame over Config.MaxFrameSize, or one that would take the current
// message over Config.MaxMessageSize, is refused from its header, before
// anything is allocated; such a protocol violation closes the connection.
// At the end of the stream it returns an error wrapping io.EOF.
func (c *Conn) ReadFrame(dst []byte) (Frame, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		f, err := c.readOne(dst)
		if err != nil {
			return Frame{}, err
		}
		if f.Flags&FlagCommand == 0 {
			return f, nil
		}
		handled, err := c.handleCommand(f.Payload)
		if err != nil {
			return Frame{}, err
		}
		if !handled {
			return f, nil
		}
		dst = f.Payload[:0]
	}
}

// ReadMessage reads one whole data message, skipping the commands that
// arrive around and between its frames. Config.MaxMessageSize is enforced.
// Each part is a new allocation.
func (c *Conn) ReadMessage() ([][]byte, error) {
	var parts [][]byte
	for {
		f, err := c.ReadFrame(nil)
		if err != nil {
			return nil, err
		}
		if f.Flags&FlagCommand != 0 {
			continue
		}
		parts = append(parts, f.Payload)
		if f.Flags&FlagMore == 0 {
			return parts, nil
		}
	}
}

// readError turns a read failure into the caller's error; protocol errors
// close the connection, since the stream cannot be resynchronised.
func (c *Conn) readError(err error) error {
	switch {
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrMessageTooLarge):
		return c.fail(err)
	case errors.Is(err, io.EOF):
		if ferr := c.failure(); ferr != nil {
			return ferr
		}
		return fmt.Errorf("zmtp: read: %w", io.EOF)
	}
	return c.ioError("read", err)
}

// readOne reads one frame, decrypting it when a codec is in use, and keeps
// the message size account.
func (c *Conn) readOne(dst []byte) (Frame, error) {
	flags, size, err := readFrameHeader(c.br)
	if err != nil {
		return Frame{}, c.readError(err)
	}
	if c.codec == nil {
		if flags&FlagCommand == 0 {
			if err := c.checkDataSize(size); err != nil {
				return Frame{}, c.readError(err)
			}
		} else if size > uint64(c.cfg.MaxFrameSize) {
			return Frame{}, c.readError(frameTooLarge(size, c.cfg.MaxFrameSize))
		}
		p, err := readBody(c.br, dst[:0], size)
		if err != nil {
			return Frame{}, c.readError(err)
		}
		if flags&FlagCommand == 0 {
			c.account(flags, size)
		}
		return Frame{Flags: flags, Payload: p}, nil
	}

	// On an encrypted connection every frame must be a MESSAGE command.
	// libzmq sends it without the outer COMMAND flag (and no MORE: the real
	// flags are inside the box); a peer that sets COMMAND is accepted too.
	if flags&FlagMore != 0 {
		return Frame{}, c.readError(fmt.Errorf("%w: MORE set outside a MESSAGE box", ErrProtocol))
	}
	if size > c.maxSealed {
		return Frame{}, c.readError(frameTooLarge(size, int64(c.maxSealed)))
	}
	sealed, err := readBody(c.br, c.sealed[:0], size)
	c.sealed = keepBuffer(sealed)
	if err != nil {
		return Frame{}, c.readError(err)
	}
	name, body, err := splitCommand(sealed)
	if err != nil {
		return Frame{}, c.readError(err)
	}
	if string(name) != CmdMessage {
		return Frame{}, c.readError(fmt.Errorf("%w: %q command on an encrypted connection, expected MESSAGE", ErrProtocol, name))
	}
	inner, p, err := c.codec.Open(dst[:0], body)
	if err != nil {
		return Frame{}, c.fail(fmt.Errorf("zmtp: opening MESSAGE: %w", err))
	}
	if err := checkFrameFlags(byte(inner)); err != nil || inner&^(FlagMore|FlagCommand) != 0 {
		return Frame{}, c.readError(fmt.Errorf("%w: MESSAGE carries flags %#02x", ErrProtocol, byte(inner)))
	}
	if inner&FlagCommand == 0 {
		if err := c.checkDataSize(uint64(len(p))); err != nil {
			return Frame{}, c.readError(err)
		}
		c.account(inner, uint64(len(p)))
	}
	return Frame{Flags: inner, Payload: p}, nil
}

// checkDataSize applies the frame and message limits to a data frame.
func (c *Conn) checkDataSize(size uint64) error {
	if size > uint64(c.cfg.MaxFrameSize) {
		return frameTooLarge(size, c.cfg.MaxFrameSize)
	}
	if size > uint64(c.cfg.MaxMessageSize-c.msgSize) {
		return fmt.Errorf("%w: a frame of %d bytes after %d bytes of the same message exceeds the limit of %d",
			ErrMessageTooLarge, size, c.msgSize, c.cfg.MaxMessageSize)
	}
	return nil
}

// account tracks the size of the message being read.
func (c *Conn) account(flags Flags, size uint64) {
	if flags&FlagMore != 0 {
		c.msgSize += int64(size)
	} else {
		c.msgSize = 0
	}
}

// handleCommand processes a command received after the handshake. It reports
// whether the command was consumed (PING, PONG).
func (c *Conn) handleCommand(payload []byte) (bool, error) {
	name, body, err := splitCommand(payload)
	if err != nil {
		return false, c.readError(err)
	}
	switch string(name) {
	case CmdPing:
		ttl, ctx, err := ParsePing(body)
		if err != nil {
			return false, c.readError(err)
		}
		c.pongMu.Lock()
		c.pongLen = copy(c.pongCtx[:], ctx)
		c.pongMu.Unlock()
		c.pongPending.Store(true)
		c.kickControl()
		if ttl > 0 {
			c.armTTL(ttl)
		}
		return true, nil
	case CmdPong:
		return true, nil
	case CmdError:
		reason, err := ParseError(body)
		if err != nil {
			return false, c.readError(err)
		}
		return false, c.fail(&PeerError{Reason: reason})
	}
	return false, nil
}

// armTTL starts watching for the TTL the peer announced in its PING: if no
// byte arrives within it while we wait for one, the connection is closed.
func (c *Conn) armTTL(ttl time.Duration) {
	if c.ttlArmed.Swap(true) {
		return
	}
	c.ttl.Store(int64(ttl))
	c.ttlSnapshot.Store(c.cr.n.Load())
	c.ttlTimer.Reset(ttl)
}

// ttlExpired runs when the peer's TTL has passed since its PING.
func (c *Conn) ttlExpired() {
	if c.closed.Load() {
		return
	}
	ttl := time.Duration(c.ttl.Load())
	switch {
	case c.cr.n.Load() != c.ttlSnapshot.Load():
		c.ttlArmed.Store(false) // traffic arrived: the peer is alive
	case !c.cr.reading.Load():
		// Nobody is reading, so silence proves nothing; look again later.
		c.ttlTimer.Reset(ttl)
	default:
		c.fail(fmt.Errorf("%w: nothing received within the TTL of %v the peer announced in its PING", ErrHeartbeatTimeout, ttl))
	}
}
