//go:build unix

package zmtp

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable returns a function that blocks until nc has bytes to read
// (or its end, or an error), without reading them, so that a connection
// waiting for its peer holds no read buffer. It returns nil when nc is not
// a socket (a net.Pipe in tests): then reads simply block in Read.
//
// The wait is the runtime's network poller through syscall.RawConn, so read
// deadlines and Close interrupt it as they interrupt Read. Readiness is
// checked with a non-blocking MSG_PEEK of one byte, never assumed from an
// earlier poller event: the buffer may not have drained the socket.
func waitReadable(nc net.Conn) func() error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var probe [1]byte
	// Made once: a func literal passed to rc.Read escapes, and the wait runs
	// before every refill that borrows a buffer.
	ready := func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing yet, let the poller wait. Bytes, the end of the
		// stream (0, nil) or an error (EINTR included): the read that
		// follows reports it, or blocks in the poller itself.
		return !errors.Is(err, syscall.EAGAIN)
	}
	return func() error { return rc.Read(ready) }
}
