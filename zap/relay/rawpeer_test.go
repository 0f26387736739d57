package relay

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// rawPeer is a ZMTP peer that announces version 3.0 with NULL, for testing
// the subscription translation (the zmtp engine always speaks 3.1).
type rawPeer struct {
	nc net.Conn
	br *bufio.Reader
}

// dialRaw30 connects to addr as a ZMTP 3.0 peer of socketType.
func dialRaw30(t *testing.T, addr, socketType string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return handshakeRaw30(t, nc, socketType)
}

// handshakeRaw30 runs a ZMTP 3.0 NULL handshake over nc. It must not call
// t.Fatal, since it may run outside the test goroutine; failures close nc
// and the test fails on the next read.
func handshakeRaw30(t *testing.T, nc net.Conn, socketType string) *rawPeer {
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	p := &rawPeer{nc: nc, br: bufio.NewReader(nc)}
	greeting, err := zmtp.AppendGreeting(nil, "NULL", false)
	if err != nil {
		t.Error(err)
		return p
	}
	greeting[11] = 0 // minor version 0: ZMTP 3.0
	ready, err := zmtp.ReadyCommand(zmtp.Metadata{{Name: zmtp.PropSocketType, Value: []byte(socketType)}})
	if err != nil {
		t.Error(err)
		return p
	}
	body, _ := zmtp.AppendCommand(nil, ready)
	out := zmtp.AppendFrame(greeting, zmtp.FlagCommand, body)
	go func() { _, _ = nc.Write(out) }()
	if _, err := io.ReadFull(p.br, make([]byte, 64)); err != nil {
		_ = nc.Close()
		return p
	}
	f, err := zmtp.ReadFrameFrom(p.br, nil, 1<<16)
	if err != nil || f.Flags&zmtp.FlagCommand == 0 {
		_ = nc.Close()
	}
	return p
}

// writeFrame sends one frame.
func (p *rawPeer) writeFrame(t *testing.T, flags zmtp.Flags, payload []byte) {
	t.Helper()
	if _, err := p.nc.Write(zmtp.AppendFrame(nil, flags, payload)); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one frame.
func (p *rawPeer) readFrame(t *testing.T) zmtp.Frame {
	t.Helper()
	f, err := zmtp.ReadFrameFrom(p.br, nil, 1<<24)
	if err != nil {
		t.Fatalf("raw peer read: %v", err)
	}
	return f
}
