package zmtp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire flag bits of a frame header (RFC 23). MORE and COMMAND are the public
// FlagMore and FlagCommand; LONG selects the 8-byte size; bits 3-7 are
// reserved and must be zero.
const (
	wireLong     = 0x02
	wireReserved = 0xF8

	// maxShortSize is the largest body a short (1-byte size) frame carries.
	maxShortSize = 255
	// maxFrameHeader is the size of the longest frame header.
	maxFrameHeader = 9
)

// Frame is one ZMTP frame as the caller sees it.
type Frame struct {
	// Flags holds FlagMore and FlagCommand.
	Flags Flags
	// Payload is the frame body. For a command it is the whole command:
	// name length, name, data.
	Payload []byte
}

// AppendFrameHeader appends the header of a frame with the given flags (MORE,
// COMMAND) and body size: the short form up to 255 bytes, the long form
// above.
func AppendFrameHeader(dst []byte, flags Flags, size uint64) []byte {
	b := byte(flags & (FlagMore | FlagCommand))
	if size <= maxShortSize {
		return append(dst, b, byte(size))
	}
	dst = append(dst, b|wireLong)
	return binary.BigEndian.AppendUint64(dst, size)
}

// AppendFrame appends a whole frame (header and body).
func AppendFrame(dst []byte, flags Flags, payload []byte) []byte {
	dst = AppendFrameHeader(dst, flags, uint64(len(payload)))
	return append(dst, payload...)
}

// checkFrameFlags validates a received flags byte.
func checkFrameFlags(b byte) error {
	if b&wireReserved != 0 {
		return fmt.Errorf("%w: frame flags %#02x set reserved bits", ErrProtocol, b)
	}
	if b&byte(FlagCommand) != 0 && b&byte(FlagMore) != 0 {
		return fmt.Errorf("%w: command frame with the MORE flag", ErrProtocol)
	}
	return nil
}

// frameReader is what the frame decoder reads from: a bufio.Reader, or a
// connection's readBuffer.
type frameReader interface {
	io.Reader
	io.ByteReader
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// readFrameHeader reads one frame header. A clean end of stream before the
// first byte is io.EOF; inside the header it is io.ErrUnexpectedEOF. It does
// not allocate.
func readFrameHeader(r frameReader) (Flags, uint64, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	if err := checkFrameFlags(b); err != nil {
		return 0, 0, err
	}
	flags := Flags(b) & (FlagMore | FlagCommand)
	if b&wireLong == 0 {
		n, err := r.ReadByte()
		if err != nil {
			return 0, 0, noEOF(err)
		}
		return flags, uint64(n), nil
	}
	p, err := r.Peek(8)
	if err != nil {
		return 0, 0, noEOF(err)
	}
	size := binary.BigEndian.Uint64(p)
	_, _ = r.Discard(8)
	if size > 1<<63-1 {
		return 0, 0, fmt.Errorf("%w: frame size %d exceeds 2^63-1", ErrProtocol, size)
	}
	return flags, size, nil
}

// noEOF turns io.EOF inside a unit into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readChunk is how much storage a frame body that needs new storage gets
// before any of its bytes have arrived, and the first step of its growth.
const readChunk = 1 << 20

// MaxKeptBuffer is the largest storage a connection keeps for itself
// between frames (the MESSAGE bodies it reads and the frames it seals on an
// encrypted connection). Storage grown past it for one frame is dropped
// after that frame, so one huge message does not pin its size for the
// connection's life. A caller that reuses the payload storage ReadFrame
// returns should keep it under the same bound.
const MaxKeptBuffer = 4 << 20

// keepBuffer returns b emptied for reuse by the next frame, or nil when its
// storage is larger than MaxKeptBuffer.
func keepBuffer(b []byte) []byte {
	if cap(b) > MaxKeptBuffer {
		return nil
	}
	return b[:0]
}

// readBody reads size bytes into dst's storage, growing it only when needed.
// The caller has checked size against its limit. A body up to readChunk
// that does not fit gets storage of its size at once (one allocation, none
// when dst fits, as on the hot path); a larger one gets storage that grows
// as its bytes arrive, at most doubling and never past size, so that a peer
// announcing a large frame and sending little of it costs about what it
// sent, not what it announced. On error the storage is returned emptied.
func readBody(r io.Reader, dst []byte, size uint64) ([]byte, error) {
	n := int(size)
	if cap(dst) >= n || n <= readChunk {
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		if _, err := io.ReadFull(r, dst); err != nil {
			return dst[:0], noEOF(err)
		}
		return dst, nil
	}
	if cap(dst) < readChunk {
		dst = make([]byte, 0, readChunk)
	}
	dst = dst[:0]
	for len(dst) < n {
		if len(dst) == cap(dst) {
			grown := make([]byte, len(dst), min(n, 2*cap(dst)))
			copy(grown, dst)
			dst = grown
		}
		m, err := r.Read(dst[len(dst):min(cap(dst), n)])
		dst = dst[:len(dst)+m]
		if err != nil && len(dst) < n {
			return dst[:0], noEOF(err)
		}
	}
	return dst, nil
}

// frameTooLarge describes a frame over the limit.
func frameTooLarge(size uint64, limit int64) error {
	return fmt.Errorf("%w: peer announced a frame of %d bytes, the limit is %d", ErrFrameTooLarge, size, limit)
}

// ReadFrameFrom reads one frame from r, refusing before any allocation a
// frame larger than limit. The payload is stored in dst when it fits. It is
// the decoder a Conn uses, exposed for tools and fuzzing; it does not
// interpret commands.
func ReadFrameFrom(r *bufio.Reader, dst []byte, limit int64) (Frame, error) {
	return readFrame(r, dst, limit)
}

// readFrame is ReadFrameFrom for any frameReader.
func readFrame(r frameReader, dst []byte, limit int64) (Frame, error) {
	flags, size, err := readFrameHeader(r)
	if err != nil {
		return Frame{}, err
	}
	if size > uint64(limit) {
		return Frame{}, frameTooLarge(size, limit)
	}
	p, err := readBody(r, dst, size)
	if err != nil {
		return Frame{}, err
	}
	return Frame{Flags: flags, Payload: p}, nil
}
