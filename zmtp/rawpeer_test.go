package zmtp

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// rawPeer is a hand-driven ZMTP peer for tests that need to misbehave: it
// speaks through bytes written by the test, with helpers for the usual parts.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func newRawPeer(t testing.TB, nc net.Conn) *rawPeer {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// rawGreeting builds a greeting with arbitrary fields.
func rawGreeting(major, minor byte, mechanism string, asServer bool) []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, major, minor
	copy(g[12:32], mechanism)
	if asServer {
		g[32] = 1
	}
	return g
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Errorf("raw peer write: %v", err)
	}
}

// writeCommand writes one command frame.
func (p *rawPeer) writeCommand(name string, body []byte) {
	p.t.Helper()
	payload, err := AppendCommand(nil, Command{Name: name, Body: body})
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(AppendFrame(nil, FlagCommand, payload))
}

// readGreeting reads the 64-byte greeting the other side sent.
func (p *rawPeer) readGreeting() []byte {
	p.t.Helper()
	g := make([]byte, 64)
	if _, err := io.ReadFull(p.br, g); err != nil {
		p.t.Errorf("raw peer reading greeting: %v", err)
	}
	return g
}

// readFrame reads one frame.
func (p *rawPeer) readFrame() (Frame, error) {
	return ReadFrameFrom(p.br, nil, 1<<20)
}

// nullHandshake completes a NULL handshake as socketType announcing minor.
func (p *rawPeer) nullHandshake(socketType string, minor byte) {
	p.t.Helper()
	p.write(rawGreeting(3, minor, "NULL", false))
	p.readGreeting()
	ready, _ := ReadyCommand(Metadata{{Name: PropSocketType, Value: []byte(socketType)}})
	p.writeCommand(ready.Name, ready.Body)
	f, err := p.readFrame()
	if err != nil || f.Flags != FlagCommand {
		p.t.Fatalf("raw peer: reading READY: %v %+v", err, f)
	}
	if c, err := ParseCommand(f.Payload); err != nil || c.Name != CmdReady {
		p.t.Fatalf("raw peer: expected READY, got %q %v", c.Name, err)
	}
}
