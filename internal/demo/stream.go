package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// StreamEvent is one line apps.py req-stream printed: a connection event
// of the application's socket (libzmq's monitor), a progress line, or the
// final summary, each with the counts so far.
type StreamEvent struct {
	// Event is "connected", "disconnected", "handshake_failed", "timeout",
	// "send_timeout", "progress" or "done".
	Event string `json:"event"`
	// Sent, Received and Lost count requests; Lost = Sent - Received.
	Sent     int `json:"sent"`
	Received int `json:"received"`
	Lost     int `json:"lost"`
	// Connected, Disconnected and HandshakeFailed count the connection
	// events the application's socket saw.
	Connected       int `json:"connected"`
	Disconnected    int `json:"disconnected"`
	HandshakeFailed int `json:"handshake_failed"`
	// UserIDs (in the summary) are the identities the server application
	// saw.
	UserIDs []string `json:"user_ids"`
	// At is when the line was read.
	At time.Time `json:"-"`
}

// String sums the event up for logs.
func (e StreamEvent) String() string {
	return fmt.Sprintf("%s at %s: sent %d, received %d, lost %d; connected %d, disconnected %d, handshake failures %d",
		e.Event, e.At.Format("15:04:05.000"), e.Sent, e.Received, e.Lost, e.Connected, e.Disconnected, e.HandshakeFailed)
}

// StreamOptions configures StartStream.
type StreamOptions struct {
	// Interval between requests (default 20 ms).
	Interval time.Duration
	// ReconnectEvery, when positive, opens a new connection every that
	// many requests; otherwise one connection serves them all (a timed out
	// request still opens a new one).
	ReconnectEvery int
	// Timeout for each reply (default 2 s).
	Timeout time.Duration
}

// Stream is a running apps.py req-stream: a pyzmq REQ application with no
// CURVE code sending requests through an outbound sidecar until stopped.
type Stream struct {
	proc  *Process
	stdin io.WriteCloser

	mu      sync.Mutex
	events  []StreamEvent
	changed chan struct{} // closed and replaced on every new event
	ended   chan struct{} // closed when stdout ends
}

// StartStream starts apps.py req-stream against addr.
func (r *Rig) StartStream(ctx context.Context, label, addr string, opts StreamOptions) (*Stream, error) {
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	s := &Stream{changed: make(chan struct{}), ended: make(chan struct{})}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.stdin = inW
	s.proc, err = r.Procs.start(ctx, label, r.Python, []string{r.apps(), "req-stream", "--connect", "tcp://" + addr,
		"--interval-ms", strconv.FormatInt(opts.Interval.Milliseconds(), 10),
		"--reconnect-every", strconv.Itoa(opts.ReconnectEvery),
		"--timeout-ms", strconv.FormatInt(opts.Timeout.Milliseconds(), 10)},
		&childPipes{stdin: inR, stdout: outW})
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go s.read(outR)
	return s, nil
}

// read records every line of the program's output until it ends.
func (s *Stream) read(stdout io.ReadCloser) {
	defer close(s.ended)
	defer stdout.Close()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev StreamEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		ev.At = time.Now()
		s.mu.Lock()
		s.events = append(s.events, ev)
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// Events returns the events so far.
func (s *Stream) Events() []StreamEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StreamEvent(nil), s.events...)
}

// Last returns the latest event (the zero event if none yet).
func (s *Stream) Last() StreamEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return StreamEvent{}
	}
	return s.events[len(s.events)-1]
}

// WaitFor returns the first event, from the start of the stream, that
// satisfies match, waiting for it until ctx ends or the program exits.
func (s *Stream) WaitFor(ctx context.Context, what string, match func(StreamEvent) bool) (StreamEvent, error) {
	seen := 0
	for {
		s.mu.Lock()
		events, changed := s.events[seen:], s.changed
		seen = len(s.events)
		s.mu.Unlock()
		for _, ev := range events {
			if match(ev) {
				return ev, nil
			}
		}
		select {
		case <-changed:
		case <-s.ended:
			if len(s.Events()) > seen {
				continue
			}
			return StreamEvent{}, fmt.Errorf("req-stream ended before %s (last: %v); see %s", what, s.Last(), s.proc.Log)
		case <-ctx.Done():
			return StreamEvent{}, fmt.Errorf("waiting for %s (last: %v): %w", what, s.Last(), ctx.Err())
		}
	}
}

// Stop asks the program to finish (it completes the request in flight)
// and returns its summary.
func (s *Stream) Stop(ctx context.Context) (StreamEvent, error) {
	_ = s.stdin.Close()
	ev, err := s.WaitFor(ctx, "the summary", func(e StreamEvent) bool { return e.Event == "done" })
	if err != nil {
		s.proc.Stop(time.Second)
		return ev, err
	}
	select {
	case <-s.proc.done:
	case <-ctx.Done():
		s.proc.Stop(time.Second)
	}
	return ev, nil
}
