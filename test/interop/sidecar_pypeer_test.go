// Package interop holds the suites that put zmqauth between real libzmq
// applications (pyzmq on Debian's libzmq 4.3): the sidecar's routes with
// every socket-type pair, allowlist changes, revocation and key rotation.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/testenv"
)

// This file drives zmtp/testdata/pypeer.py, the libzmq reference peer the
// zmtp tests use (its header documents the flags and operations). The Go
// driver next to it lives in zmtp/internal/pypeer, which Go's internal rule
// keeps out of reach from here; this is the small part of it these suites
// need. Unlike that driver it never logs the peer's arguments, which carry
// CURVE secret keys.

// peerTimeout bounds a peer process's life.
const peerTimeout = 90 * time.Second

// pyEvent is one JSON line the peer printed.
type pyEvent struct {
	Event    string             `json:"event"`
	ID       int                `json:"id"`
	Endpoint string             `json:"endpoint"`
	Name     string             `json:"name"`
	Parts    [][]byte           `json:"parts"`
	Props    map[string]*string `json:"props"`
	Count    int                `json:"count"`
	Error    string             `json:"error"`
}

// pyPeer is a running pypeer.py with one socket.
type pyPeer struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	stderr lockedBuffer

	wmu    sync.Mutex
	nextID int

	mu      sync.Mutex
	changed chan struct{}
	events  []pyEvent // unsolicited: ready, monitor, exit
	replies map[int]pyEvent
	exited  bool

	endpoint string
}

// lockedBuffer is a concurrency-safe buffer.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPeer runs pypeer.py with args (see its header) and waits until its
// socket is bound or connecting. It is stopped at cleanup.
func startPeer(t testing.TB, args ...string) *pyPeer {
	t.Helper()
	python := testenv.PyZMQ(t)
	script := filepath.Join(testenv.RepoRoot(t), "zmtp", "testdata", "pypeer.py")
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout+5*time.Second)
	args = append([]string{script, fmt.Sprintf("--timeout=%d", int(peerTimeout.Seconds()))}, args...)
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.WaitDelay = 2 * time.Second
	p := &pyPeer{t: t, cmd: cmd, cancel: cancel, changed: make(chan struct{}), replies: map[int]pyEvent{}}
	cmd.Stderr = &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("pypeer: start: %v", err)
	}
	go p.readLoop(stdout)
	t.Cleanup(func() {
		p.close()
		if t.Failed() {
			t.Logf("pypeer stderr:\n%s", p.stderr.String())
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	ev, err := p.waitEvent(wctx, func(e pyEvent) bool { return e.Event == "ready" })
	if err != nil {
		t.Fatalf("pypeer did not become ready: %v\nstderr:\n%s", err, p.stderr.String())
	}
	p.endpoint = ev.Endpoint
	return p
}

// readLoop collects the peer's output.
func (p *pyPeer) readLoop(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev pyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = pyEvent{Event: "error", Error: "bad output line"}
		}
		p.mu.Lock()
		if ev.ID != 0 {
			p.replies[ev.ID] = ev
		} else {
			p.events = append(p.events, ev)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	_ = p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// addr is the endpoint the peer bound, without "tcp://".
func (p *pyPeer) addr() string { return strings.TrimPrefix(p.endpoint, "tcp://") }

// waitEvent waits for an unsolicited event matching match, looking at every
// event since the start.
func (p *pyPeer) waitEvent(ctx context.Context, match func(pyEvent) bool) (pyEvent, error) {
	seen := 0
	for {
		p.mu.Lock()
		evs := p.events[seen:]
		seen = len(p.events)
		changed, exited := p.changed, p.exited
		p.mu.Unlock()
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
		}
		if exited {
			return pyEvent{}, errors.New("pypeer exited")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return pyEvent{}, ctx.Err()
		}
	}
}

// monitorCount returns how many monitor events named name arrived so far.
func (p *pyPeer) monitorCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.events {
		if e.Event == "monitor" && e.Name == name {
			n++
		}
	}
	return n
}

// waitMonitor waits until the count of monitor events named name exceeds
// after, and returns when the wait ended.
func (p *pyPeer) waitMonitor(t testing.TB, name string, after int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for p.monitorCount(name) <= after {
		if time.Now().After(deadline) {
			t.Fatalf("no %s monitor event within %v", name, limit)
		}
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
		}
	}
}

// do sends one operation and waits for its reply.
func (p *pyPeer) do(op map[string]any) (pyEvent, error) {
	p.wmu.Lock()
	p.nextID++
	id := p.nextID
	op["id"] = id
	line, err := json.Marshal(op)
	if err == nil && p.stdin == nil {
		err = errors.New("peer closed")
	}
	if err == nil {
		_, err = p.stdin.Write(append(line, '\n'))
	}
	p.wmu.Unlock()
	if err != nil {
		return pyEvent{}, fmt.Errorf("pypeer %v: %w", op["op"], err)
	}
	// An operation answers within its own timeout (plus slack for a loaded
	// machine); one that blocks longer means the peer is stuck.
	wait := peerTimeout
	if ms, ok := op["timeout_ms"].(int64); ok {
		wait = time.Duration(ms)*time.Millisecond + 10*time.Second
	}
	timeout := time.After(wait)
	for {
		p.mu.Lock()
		ev, ok := p.replies[id]
		changed, exited := p.changed, p.exited
		p.mu.Unlock()
		if ok {
			if ev.Event == "error" {
				return ev, fmt.Errorf("pypeer %v: %s", op["op"], ev.Error)
			}
			return ev, nil
		}
		if exited {
			return pyEvent{}, fmt.Errorf("pypeer exited before answering %v", op["op"])
		}
		select {
		case <-changed:
		case <-timeout:
			return pyEvent{}, fmt.Errorf("pypeer %v: no answer", op["op"])
		}
	}
}

// send sends one multi-part message.
func (p *pyPeer) send(t testing.TB, parts ...[]byte) {
	t.Helper()
	if _, err := p.do(map[string]any{"op": "send", "parts": parts}); err != nil {
		t.Fatal(err)
	}
}

// sendRepeat sends the same message repeat times, interval apart.
func (p *pyPeer) sendRepeat(repeat int, interval time.Duration, parts ...[]byte) error {
	_, err := p.do(map[string]any{"op": "send", "parts": parts, "repeat": repeat, "interval_ms": interval.Milliseconds()})
	return err
}

// errNoMessage is tryRecv's answer when nothing arrived in time.
var errNoMessage = errors.New("no message")

// tryRecv receives one message within timeout, with the message properties
// named in props.
func (p *pyPeer) tryRecv(timeout time.Duration, props ...string) (pyEvent, error) {
	if props == nil {
		props = []string{}
	}
	// Properties are read from the last part: a ROUTER's first part is the
	// routing id it made itself, which carries no metadata.
	ev, err := p.do(map[string]any{"op": "recv", "timeout_ms": timeout.Milliseconds(), "props": props, "props_part": -1})
	if err == nil && ev.Event == "timeout" {
		return ev, errNoMessage
	}
	return ev, err
}

// recv receives one message within 10 s or fails the test.
func (p *pyPeer) recv(t testing.TB, props ...string) pyEvent {
	t.Helper()
	ev, err := p.tryRecv(10*time.Second, props...)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return ev
}

// close asks the peer to quit and waits for it, killing it after a few
// seconds. It is idempotent.
func (p *pyPeer) close() {
	p.wmu.Lock()
	if p.stdin == nil {
		p.wmu.Unlock()
		return
	}
	_, _ = p.stdin.Write([]byte("{\"op\":\"quit\"}\n"))
	_ = p.stdin.Close()
	p.stdin = nil
	p.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.waitEvent(ctx, func(e pyEvent) bool { return e.Event == "exit" }); err != nil {
		p.cancel()
	}
	p.cancel()
}

// prop returns a received message property ("" when absent).
func prop(ev pyEvent, name string) string {
	if v := ev.Props[name]; v != nil {
		return *v
	}
	return ""
}
