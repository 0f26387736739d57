package zmtp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WriteFrame buffers one frame with the given flags (FlagMore, FlagCommand).
// A command frame's payload is the whole command: name length, name, data
// (see AppendCommand). Call Flush to send what is buffered. With an
// encrypting mechanism the frame is sealed into a MESSAGE command.
func (c *Conn) WriteFrame(flags Flags, payload []byte) error {
	if err := checkWriteFlags(flags); err != nil {
		return err
	}
	c.wmu.Lock()
	err := c.writeLocked(flags, payload)
	c.wmu.Unlock()
	c.kickControl()
	if err != nil {
		return c.ioError("write", err)
	}
	return nil
}

// Flush sends everything buffered.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	err := c.bw.Flush()
	c.wmu.Unlock()
	c.kickControl()
	if err != nil {
		return c.ioError("flush", err)
	}
	return nil
}

// WriteMessage writes a data message of one or more parts and flushes it.
func (c *Conn) WriteMessage(parts ...[]byte) error {
	if len(parts) == 0 {
		return errors.New("zmtp: a message has at least one part")
	}
	c.wmu.Lock()
	var err error
	for i, p := range parts {
		var flags Flags
		if i < len(parts)-1 {
			flags = FlagMore
		}
		if err = c.writeLocked(flags, p); err != nil {
			break
		}
	}
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	c.kickControl()
	if err != nil {
		return c.ioError("write", err)
	}
	return nil
}

// WriteCommand writes one command (e.g. SubscribeCommand(topic)) and flushes
// it.
func (c *Conn) WriteCommand(cmd Command) error {
	payload, err := AppendCommand(nil, cmd)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	err = c.writeLocked(FlagCommand, payload)
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	c.kickControl()
	if err != nil {
		return c.ioError("write", err)
	}
	return nil
}

// checkWriteFlags refuses flags a caller may not set.
func checkWriteFlags(flags Flags) error {
	if flags&^(FlagMore|FlagCommand) != 0 {
		return fmt.Errorf("zmtp: invalid frame flags %#02x", byte(flags))
	}
	if flags&FlagCommand != 0 && flags&FlagMore != 0 {
		return errors.New("zmtp: a command frame cannot have the MORE flag")
	}
	return nil
}

// writeLocked buffers one frame; the caller holds wmu.
func (c *Conn) writeLocked(flags Flags, payload []byte) error {
	if c.codec == nil {
		c.wbuf = AppendFrameHeader(c.wbuf[:0], flags, uint64(len(payload)))
		if _, err := c.bw.Write(c.wbuf); err != nil {
			return err
		}
		_, err := c.bw.Write(payload)
		return err
	}
	// libzmq 4.3 sends MESSAGE in a frame without the COMMAND flag (MORE
	// and COMMAND travel inside the box) and treats a MESSAGE whose outer
	// frame has COMMAND set as a command, dropping its data; so do as it does.
	body := 1 + len(CmdMessage) + c.codec.SealedSize(len(payload))
	c.wbuf = AppendFrameHeader(c.wbuf[:0], 0, uint64(body))
	start := len(c.wbuf)
	c.wbuf = append(c.wbuf, byte(len(CmdMessage)))
	c.wbuf = append(c.wbuf, CmdMessage...)
	sealed, err := c.codec.Seal(c.wbuf, flags, payload)
	// The sealed frame is sent (or copied into bw) before writeLocked
	// returns, so its storage is free for the next frame, unless it is too
	// large to keep.
	c.wbuf = keepBuffer(sealed)
	if err != nil {
		return fmt.Errorf("zmtp: sealing frame: %w", err)
	}
	if len(sealed)-start != body {
		return fmt.Errorf("zmtp: codec sealed %d bytes, announced %d", len(sealed)-start, body)
	}
	_, err = c.bw.Write(sealed)
	return err
}

// kickControl sends the pending PONG and PING unless another goroutine holds
// the write lock, in which case that goroutine sends them when it is done.
// It never blocks, so the read side cannot stall behind a blocked writer.
func (c *Conn) kickControl() {
	for (c.pongPending.Load() || c.pingPending.Load()) && c.wmu.TryLock() {
		err := c.writeControlLocked()
		c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// writeControlLocked writes the pending PONG and PING and flushes.
func (c *Conn) writeControlLocked() error {
	wrote := false
	if c.pongPending.Swap(false) {
		n := copy(c.ctrl[:], "\x04PONG")
		c.pongMu.Lock()
		n += copy(c.ctrl[n:], c.pongCtx[:c.pongLen])
		c.pongMu.Unlock()
		if err := c.writeLocked(FlagCommand, c.ctrl[:n]); err != nil {
			return err
		}
		wrote = true
	}
	if c.pingPending.Swap(false) {
		n := copy(c.ctrl[:], "\x04PING")
		binary.BigEndian.PutUint16(c.ctrl[n:], pingTTL(c.cfg.HeartbeatTTL))
		if err := c.writeLocked(FlagCommand, c.ctrl[:n+2]); err != nil {
			return err
		}
		wrote = true
	}
	if !wrote {
		return nil
	}
	return c.bw.Flush()
}
