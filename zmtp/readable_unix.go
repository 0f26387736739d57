//go:build unix

package zmtp

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// idleReader reads from a socket into a readBuffer that holds no storage,
// taking the storage only once bytes have arrived, so that a connection
// waiting for its peer holds no read buffer. The net package has no such
// read (its Read needs the buffer before it waits), hence this one.
//
// The wait is the runtime's network poller through syscall.RawConn, so read
// deadlines and Close interrupt it as they interrupt Read. Each attempt is
// one non-blocking read(2) into freshly taken storage: with bytes waiting
// (the usual case under load) a refill costs one system call; with none the
// storage goes straight back and the poller waits.
type idleReader struct {
	nc net.Conn
	rc syscall.RawConn
	// ready is r.attempt bound once: a method value passed to rc.Read
	// escapes, and a read from an idle connection is on the hot path.
	ready func(fd uintptr) bool

	// The attempt's buffer and outcome.
	b   *readBuffer
	n   int
	err error
}

// newIdleReader returns the idle reader of nc, or nil when nc is not a
// socket (a net.Pipe in tests): then reads simply block in Read.
func newIdleReader(nc net.Conn) *idleReader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &idleReader{nc: nc, rc: rc}
	r.ready = r.attempt
	return r
}

// read waits until the socket has bytes, its end or an error, and reads
// what is there into b's storage, taken from the pool for the read. b holds
// storage afterwards only when n > 0.
func (r *idleReader) read(b *readBuffer) (n int, err error) {
	r.b, r.n, r.err = b, 0, nil
	defer func() { r.b = nil }()
	if err := r.rc.Read(r.ready); err != nil {
		return 0, err // the poller's: deadline, Close
	}
	return r.n, r.err
}

// attempt is one non-blocking read; false asks the poller to wait.
func (r *idleReader) attempt(fd uintptr) bool {
	p := r.b.take()
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			r.b.giveBack()
			return false
		case err != nil:
			r.b.giveBack()
			// As net.Conn.Read reports it.
			r.err = &net.OpError{Op: "read", Net: r.nc.LocalAddr().Network(), Source: r.nc.LocalAddr(),
				Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		case n == 0:
			r.b.giveBack()
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}
