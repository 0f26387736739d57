package zmtp

import (
	"errors"
	"io"
	"sync"
)

// bufferSize is the size of a connection's read and write buffers while
// data flows.
const bufferSize = 64 << 10

// buffers holds the buffers connections borrow while data flows. A relay
// holds two connections per session, most of them idle most of the time;
// with a bufio.Reader and bufio.Writer each (which never give their storage
// back) a session pinned 256 KiB, paged in as soon as the allocator reused
// memory. Borrowing only while bytes wait in a buffer makes an idle
// connection cost no buffer at all. It is a cache of free memory, not
// state: nothing in it is visible to any caller.
var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

// readBuffer is the read side's buffer: the subset of bufio.Reader the
// decoders use, over storage borrowed from buffers only while unread bytes
// are in it. Holding none, fill reads through readIdle, which takes the
// storage only once bytes have arrived (see idleReader), so a reader
// blocked on an idle connection holds no buffer. It is used by one
// goroutine at a time.
type readBuffer struct {
	src io.Reader
	// readIdle, when set, reads src into storage it takes (take) only when
	// there are bytes; nil reads src at once into borrowed storage.
	readIdle func(b *readBuffer) (int, error)
	buf      *[bufferSize]byte
	r, w     int // unread bytes are buf[r:w]
	err      error
}

// take borrows storage for a buffer that holds none and returns it whole.
func (b *readBuffer) take() []byte {
	b.buf, b.r, b.w = buffers.Get().(*[bufferSize]byte), 0, 0
	return b.buf[:]
}

// giveBack returns storage taken for a read that brought no bytes.
func (b *readBuffer) giveBack() {
	buffers.Put(b.buf)
	b.buf = nil
}

// Buffered returns the number of bytes that can be read without blocking.
func (b *readBuffer) Buffered() int { return b.w - b.r }

// release returns the storage once everything in it has been read.
func (b *readBuffer) release() {
	if b.r == b.w && b.buf != nil {
		buffers.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// fill reads at least one more byte into the buffer, or records why it
// cannot. The unread bytes move to the front first.
func (b *readBuffer) fill() {
	if b.err != nil {
		return
	}
	if b.buf == nil {
		if b.readIdle != nil {
			n, err := b.readIdle(b)
			if n < 0 {
				panic(errors.New("zmtp: reader returned a negative count"))
			}
			b.w += n
			switch {
			case err != nil:
				b.err = err
			case n == 0:
				b.err = io.ErrNoProgress
			}
			return
		}
		b.take()
	}
	if b.r > 0 {
		copy(b.buf[:], b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	for i := 0; i < 100; i++ {
		n, err := b.src.Read(b.buf[b.w:])
		if n < 0 {
			panic(errors.New("zmtp: reader returned a negative count"))
		}
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// readErr returns and clears the recorded error, releasing the storage.
func (b *readBuffer) readErr() error {
	err := b.err
	b.err = nil
	b.release()
	return err
}

// ReadByte reads one byte.
func (b *readBuffer) ReadByte() (byte, error) {
	for b.r == b.w {
		if b.err != nil {
			return 0, b.readErr()
		}
		b.fill()
	}
	c := b.buf[b.r]
	b.r++
	b.release()
	return c, nil
}

// Peek returns the next n bytes without consuming them; n is at most
// bufferSize. The slice is valid until the next read.
func (b *readBuffer) Peek(n int) ([]byte, error) {
	if n > bufferSize {
		return nil, errors.New("zmtp: peek larger than the read buffer")
	}
	for b.w-b.r < n && b.err == nil {
		b.fill()
	}
	if b.w-b.r < n {
		if b.r == b.w {
			return nil, b.readErr()
		}
		err := b.err
		b.err = nil
		return b.buf[b.r:b.w], err
	}
	return b.buf[b.r : b.r+n], nil
}

// Discard skips the next n bytes, which the caller has peeked.
func (b *readBuffer) Discard(n int) (int, error) {
	if n > b.w-b.r {
		n = b.w - b.r
	}
	b.r += n
	b.release()
	return n, nil
}

// Read reads up to len(p) bytes. With nothing buffered and p at least as
// large as the buffer, it reads straight into p.
func (b *readBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.readErr()
		}
		if len(p) >= bufferSize {
			// Straight into p: no pooled buffer is held while the read
			// blocks, so there is nothing to wait for first.
			return b.src.Read(p)
		}
		b.fill()
		if b.r == b.w {
			return 0, b.readErr()
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	b.release()
	return n, nil
}

// writeBuffer is the write side's buffer: bufio.Writer's Write and Flush
// over storage borrowed from buffers from the first buffered byte until the
// flush that sends it. Errors are sticky. The caller serializes use.
type writeBuffer struct {
	dst io.Writer
	buf *[bufferSize]byte
	n   int
	err error
}

// Write buffers p, sending full buffers as they fill; with nothing buffered
// a p larger than the buffer is sent directly.
func (b *writeBuffer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > bufferSize-b.n && b.err == nil {
		var n int
		if b.n == 0 {
			n, b.err = b.dst.Write(p)
		} else {
			n = copy(b.buf[b.n:], p)
			b.n += n
			_ = b.Flush()
		}
		written += n
		p = p[n:]
	}
	if b.err != nil {
		return written, b.err
	}
	if len(p) == 0 {
		return written, nil
	}
	if b.buf == nil {
		b.buf = buffers.Get().(*[bufferSize]byte)
	}
	n := copy(b.buf[b.n:], p)
	b.n += n
	return written + n, nil
}

// Flush sends what is buffered and returns the storage.
func (b *writeBuffer) Flush() error {
	if b.err != nil {
		return b.err
	}
	if b.n > 0 {
		n, err := b.dst.Write(b.buf[:b.n])
		if n < b.n && err == nil {
			err = io.ErrShortWrite
		}
		if err != nil {
			if n > 0 && n < b.n {
				copy(b.buf[:], b.buf[n:b.n])
			}
			b.n -= n
			b.err = err
			return err
		}
		b.n = 0
	}
	if b.buf != nil {
		buffers.Put(b.buf)
		b.buf = nil
	}
	return nil
}
