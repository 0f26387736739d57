package zmtp

import (
	"context"
	"fmt"
	"testing"
)

// benchPair is a NULL connection over loopback TCP.
func benchPair(tb testing.TB) (*Conn, *Conn) {
	tb.Helper()
	a, b := tcpPair(tb)
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := NewConn(context.Background(), b, &Config{Mechanism: NewNullServer(nil, ""), SocketType: "PULL"})
		ch <- res{c, err}
	}()
	client, err := NewConn(context.Background(), a, &Config{Mechanism: NewNullClient(), SocketType: "PUSH"})
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	tb.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func BenchmarkFrameLoopbackNULL(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			w, r := benchPair(b)
			payload := make([]byte, size)
			errc := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					if err := w.WriteFrame(0, payload); err != nil {
						errc <- err
						return
					}
				}
				errc <- w.Flush()
			}()
			buf := make([]byte, 0, size)
			for i := 0; i < b.N; i++ {
				f, err := r.ReadFrame(buf)
				if err != nil {
					b.Fatal(err)
				}
				buf = f.Payload[:0]
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	w, r := benchPair(t)
	payload := make([]byte, 300) // long frame form
	buf := make([]byte, 0, 512)
	ping, _ := PingCommand(0, []byte("ctx"))
	pingFrame, _ := AppendCommand(nil, ping)
	allocs := testing.AllocsPerRun(200, func() {
		// A data frame and a PING (answered with a PONG from the read
		// side) each way through the engine.
		if err := w.WriteFrame(FlagMore, payload); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(FlagCommand, pingFrame); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(0, payload[:10]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			f, err := r.ReadFrame(buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = f.Payload[:0]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round, want 0", allocs)
	}
}

// BenchmarkRoundTripLoopbackNULL measures one 64-byte frame there and back
// at a time: each read finds its connection idle, so it shows what waiting
// for and reading a frame from an idle connection costs.
func BenchmarkRoundTripLoopbackNULL(b *testing.B) {
	a, z := benchPair(b)
	payload := make([]byte, 64)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 0, 64)
		for {
			f, err := z.ReadFrame(buf)
			if err != nil {
				errc <- nil // a's Close at the end
				return
			}
			if err := z.WriteFrame(0, f.Payload); err == nil {
				err = z.Flush()
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.WriteFrame(0, payload); err != nil {
			b.Fatal(err)
		}
		if err := a.Flush(); err != nil {
			b.Fatal(err)
		}
		if _, err := a.ReadFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = a.Close()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
