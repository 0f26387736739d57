package zmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameHeaderEncoding(t *testing.T) {
	tests := []struct {
		name  string
		flags Flags
		size  uint64
		want  []byte
	}{
		{"empty", 0, 0, []byte{0x00, 0}},
		{"short 1", FlagMore, 1, []byte{0x01, 1}},
		{"short 255", 0, 255, []byte{0x00, 255}},
		{"long 256", 0, 256, []byte{0x02, 0, 0, 0, 0, 0, 0, 1, 0}},
		{"long more", FlagMore, 1 << 20, []byte{0x03, 0, 0, 0, 0, 0, 0x10, 0, 0}},
		{"short command", FlagCommand, 6, []byte{0x04, 6}},
		{"long command", FlagCommand, 300, []byte{0x06, 0, 0, 0, 0, 0, 0, 1, 44}},
		{"stray bits dropped", Flags(0xF0) | FlagMore, 2, []byte{0x01, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendFrameHeader(nil, tt.flags, tt.size)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 257, 65536} {
		for _, flags := range []Flags{0, FlagMore, FlagCommand} {
			payload := bytes.Repeat([]byte{0xAB}, n)
			wire := AppendFrame(nil, flags, payload)
			wantHeader := 2
			if n > 255 {
				wantHeader = 9
			}
			if len(wire) != wantHeader+n {
				t.Fatalf("size %d: frame of %d bytes", n, len(wire))
			}
			f, err := ReadFrameFrom(bufio.NewReader(bytes.NewReader(wire)), nil, 1<<20)
			if err != nil || f.Flags != flags || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("size %d flags %x: got %x/%d, %v", n, flags, f.Flags, len(f.Payload), err)
			}
		}
	}
}

func TestFrameDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		limit int64
		want  error
	}{
		{"reserved bit 3", []byte{0x08, 0}, 100, ErrProtocol},
		{"reserved bit 7", []byte{0x80, 0}, 100, ErrProtocol},
		{"command with MORE", []byte{0x05, 0}, 100, ErrProtocol},
		{"short over limit", []byte{0x00, 101}, 100, ErrFrameTooLarge},
		{"long over limit", []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 101}, 100, ErrFrameTooLarge},
		{"long size 2^63", []byte{0x02, 0x80, 0, 0, 0, 0, 0, 0, 0}, 100, ErrProtocol},
		{"huge size", []byte{0x02, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 100, ErrFrameTooLarge},
		{"header cut", []byte{0x02, 0, 0}, 100, io.ErrUnexpectedEOF},
		{"body cut", []byte{0x00, 5, 'a'}, 100, io.ErrUnexpectedEOF},
		{"no size", []byte{0x00}, 100, io.ErrUnexpectedEOF},
		{"clean end", nil, 100, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrameFrom(bufio.NewReader(bytes.NewReader(tt.in)), nil, tt.limit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFrameLongFormForSmallSizeAccepted(t *testing.T) {
	// A peer may use the long form for a small body.
	in := []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'}
	f, err := ReadFrameFrom(bufio.NewReader(bytes.NewReader(in)), nil, 100)
	if err != nil || string(f.Payload) != "abc" {
		t.Fatalf("got %q, %v", f.Payload, err)
	}
}

func TestFrameReuseBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	f, err := ReadFrameFrom(bufio.NewReader(bytes.NewReader(AppendFrame(nil, 0, []byte("hello")))), buf, 100)
	if err != nil || &f.Payload[0] != &buf[:1][0] {
		t.Fatalf("payload not stored in dst: %v", err)
	}
}
