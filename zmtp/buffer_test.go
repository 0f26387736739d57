package zmtp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"testing/iotest"
	"time"
)

// TestIdleConnHoldsNoBuffer checks what keeps a relay's memory flat: a
// connection over TCP that waits for its peer, or has sent everything it
// wrote, holds no read or write buffer, and gets them back when data flows.
func TestIdleConnHoldsNoBuffer(t *testing.T) {
	a, b := mustPair(t, true, &Config{Mechanism: NewNullClient(), SocketType: "PAIR"}, &Config{Mechanism: NewNullServer(nil, ""), SocketType: "PAIR"})
	got := make(chan error, 1)
	go func() {
		_, err := b.ReadMessage()
		got <- err
	}()
	if b.br.readIdle == nil {
		t.Fatal("a connection over TCP has no idle reader: it would block in Read holding a buffer")
	}
	time.Sleep(50 * time.Millisecond) // b is now blocked waiting for data
	if a.br.buf != nil || a.bw.buf != nil {
		t.Errorf("idle sender holds buffers: read %v, write %v", a.br.buf != nil, a.bw.buf != nil)
	}
	if err := a.WriteFrame(0, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if a.bw.buf == nil {
		t.Error("an unflushed frame is not in a write buffer")
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if a.bw.buf != nil {
		t.Error("the write buffer is still held after the flush")
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b.br.buf != nil {
		t.Error("the read buffer is still held after everything in it was read")
	}
}

// TestIdleReader checks the read of a buffer that holds no storage: while
// the peer is silent it holds none, it returns the peer's bytes in storage
// it took, and the end of the stream and a deadline leave it holding none.
func TestIdleReader(t *testing.T) {
	client, server := tcpPair(t)
	ir := newIdleReader(server)
	if ir == nil {
		t.Fatal("no idle reader for a TCP connection")
	}
	var b readBuffer
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := ir.read(&b)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("read returned (%d, %v) before the peer sent anything", r.n, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := client.Write([]byte("xy")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("read did not return after the peer sent")
	}
	if r.err != nil || r.n != 2 || b.buf == nil || string(b.buf[:2]) != "xy" {
		t.Fatalf("read (%d, %v), buffer held %v; want the 2 bytes \"xy\" in taken storage", r.n, r.err, b.buf != nil)
	}
	b.giveBack()

	if err := server.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := ir.read(&b); !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 || b.buf != nil {
		t.Fatalf("read past the deadline: (%d, %v), buffer held %v; want a deadline error and no buffer", n, err, b.buf != nil)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := ir.read(&b); !errors.Is(err, io.EOF) || n != 0 || b.buf != nil {
		t.Fatalf("read at the end of the stream: (%d, %v), buffer held %v; want io.EOF and no buffer", n, err, b.buf != nil)
	}
}

// TestReadBufferMatchesTheStream reads a random frame stream through a
// readBuffer fed in chunks of every kind and checks that every frame comes
// back intact, as over bufio.Reader.
func TestReadBufferMatchesTheStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var want [][]byte
	for i := 0; i < 200; i++ {
		n := []int{0, 1, 255, 256, 4096, bufferSize - 9, bufferSize, bufferSize + 1, 200 << 10}[rng.IntN(9)]
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		want = append(want, p)
		stream = AppendFrame(stream, 0, p)
	}
	feeds := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, feed := range feeds {
		t.Run(name, func(t *testing.T) {
			b := &readBuffer{src: feed(bytes.NewReader(stream))}
			var dst []byte
			for i, w := range want {
				f, err := readFrame(b, dst, 1<<20)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(f.Payload, w) {
					t.Fatalf("frame %d: %d bytes differ from the %d sent", i, len(f.Payload), len(w))
				}
				dst = f.Payload
			}
			if _, err := readFrame(b, dst, 1<<20); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
			if b.buf != nil {
				t.Error("the buffer is held at the end of the stream")
			}
		})
	}
}

// TestWriteBufferSendsEverything writes pieces of every size through a
// writeBuffer with short and failing destinations.
func TestWriteBufferSendsEverything(t *testing.T) {
	var out bytes.Buffer
	w := &writeBuffer{dst: &out}
	var want []byte
	for _, n := range []int{1, 100, bufferSize - 101, 1, bufferSize, 3 * bufferSize, 7} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		want = append(want, p...)
		if k, err := w.Write(p); err != nil || k != n {
			t.Fatalf("Write(%d) = %d, %v", n, k, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) || w.buf != nil {
		t.Fatalf("sent %d bytes, want %d; buffer held %v", out.Len(), len(want), w.buf != nil)
	}

	broken := &writeBuffer{dst: failingWriter{}}
	_, _ = broken.Write([]byte("x"))
	if err := broken.Flush(); err == nil {
		t.Fatal("Flush to a failing writer succeeded")
	}
	if _, err := broken.Write([]byte("y")); err == nil {
		t.Error("a write after a failed flush succeeded; errors must stick")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
