package zmtp

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestLargeFrameStorageNotKept checks that after one 8 MiB frame on an
// encrypted connection neither side keeps storage of that size: the
// reader's MESSAGE buffer (sealed) and the writer's sealing buffer (wbuf)
// are dropped once over MaxKeptBuffer, while a small frame's are kept.
func TestLargeFrameStorageNotKept(t *testing.T) {
	const big = 8 << 20
	var closed atomic.Int32
	client, server := mustPair(t, true,
		&Config{Mechanism: sealMech{closed: &closed}, SocketType: "PAIR"},
		&Config{Mechanism: sealMech{server: true, closed: &closed}, SocketType: "PAIR"})

	payload := bytes.Repeat([]byte{0xA5}, big)
	errc := make(chan error, 1)
	go func() { errc <- client.WriteMessage(payload) }()
	f, err := server.ReadFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Payload, payload) {
		t.Fatalf("payload of %d bytes differs from the %d sent", len(f.Payload), big)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if c := cap(server.sealed); c >= big {
		t.Errorf("reader keeps %d bytes of MESSAGE storage after an 8 MiB frame", c)
	}
	if c := cap(client.wbuf); c >= big {
		t.Errorf("writer keeps %d bytes of sealing storage after an 8 MiB frame", c)
	}

	// The connection goes on, and a small frame's storage is kept for the
	// next one.
	go func() { errc <- client.WriteMessage([]byte("small")) }()
	if f, err = server.ReadFrame(nil); err != nil || string(f.Payload) != "small" {
		t.Fatalf("after the large frame: %q, %v", f.Payload, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if cap(server.sealed) == 0 || cap(client.wbuf) == 0 {
		t.Errorf("small frame storage not kept: sealed %d, wbuf %d bytes", cap(server.sealed), cap(client.wbuf))
	}
}

// readSizeConn records the largest buffer a Read was given: the storage the
// reader holds while it waits for the peer.
type readSizeConn struct {
	net.Conn
	largest atomic.Int64
}

func (c *readSizeConn) Read(p []byte) (int, error) {
	if n := int64(len(p)); n > c.largest.Load() {
		c.largest.Store(n)
	}
	return c.Conn.Read(p)
}

// TestAnnouncedFrameCostsWhatArrives checks that a peer announcing a frame
// near the limit and then sending (almost) nothing makes the reader hold
// storage of the order of readChunk, not of the announced size, on a clear
// and on an encrypted connection.
func TestAnnouncedFrameCostsWhatArrives(t *testing.T) {
	const limit = 64 << 20
	var closed atomic.Int32
	for _, tt := range []struct {
		name         string
		client, serv Mechanism
		// header announces the frame and starts its body.
		header []byte
	}{
		{
			name:   "NULL",
			client: NewNullClient(), serv: NewNullServer(nil, ""),
			header: append(AppendFrameHeader(nil, 0, limit), "start"...),
		},
		{
			name:   "sealed",
			client: sealMech{closed: &closed}, serv: sealMech{server: true, closed: &closed},
			header: append(AppendFrameHeader(nil, 0, limit), "\x07MESSAGE"...),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			rec := &readSizeConn{Conn: b}
			ra, rb := handshakePair(t, a, rec,
				&Config{Mechanism: tt.client, SocketType: "PAIR"},
				&Config{Mechanism: tt.serv, SocketType: "PAIR", MaxFrameSize: limit, MaxMessageSize: limit})
			if ra.err != nil || rb.err != nil {
				t.Fatalf("handshake failed: client: %v; server: %v", ra.err, rb.err)
			}
			server := rb.c
			if _, err := a.Write(tt.header); err != nil {
				t.Fatal(err)
			}
			if err := rec.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			_, err := server.ReadFrame(nil)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadFrame: %v, want the read deadline", err)
			}
			if n := rec.largest.Load(); n > readChunk {
				t.Errorf("reader waited with %d bytes of storage for a frame of which %d bytes arrived", n, len(tt.header))
			}
			if c := cap(server.sealed); c > readChunk {
				t.Errorf("reader holds %d bytes of MESSAGE storage after the stalled frame", c)
			}
		})
	}
}
