// Command req-client is a ZeroMQ REQ client for a pod with the zmqauth
// sidecar: it connects in plain ZMTP to the sidecar's local port (the
// sidecar speaks CURVE to the server) and sends numbered requests
// "request N", waiting for each reply up to --timeout. It holds no CURVE
// code.
//
// It prints one JSON line a second, and one at exit:
//
//	{"sent":S,"received":R,"lost":L,"connections":C,"user_ids":["demo/collector"]}
//
// where user_ids are the distinct "user_id" fields seen in replies (the
// identity a pyzmq server behind a sidecar read from the User-Id property)
// and connections counts the sockets it opened. With --reconnect-every N it
// closes its socket and opens a new one after every N requests, so each
// new connection makes a new CURVE session with the keys in force: the way
// to watch a rotation reach new sessions.
//
//	req-client --connect tcp://127.0.0.1:6556 --interval 100ms --timeout 2s --count 0 --reconnect-every 0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
)

// stats is what the client prints.
type stats struct {
	mu       sync.Mutex
	Sent     int `json:"sent"`
	Received int `json:"received"`
	Lost     int `json:"lost"`
	// Connections counts the sockets opened.
	Connections int      `json:"connections"`
	UserIDs     []string `json:"user_ids"`
}

func (s *stats) print() {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func main() {
	connect := flag.String("connect", "tcp://127.0.0.1:6556", "endpoint to connect to (the sidecar's localPort)")
	interval := flag.Duration("interval", 100*time.Millisecond, "pause between requests")
	timeout := flag.Duration("timeout", 2*time.Second, "how long to wait for each reply")
	count := flag.Int("count", 0, "requests to send, then exit 0 (0: forever)")
	reconnectEvery := flag.Int("reconnect-every", 0, "open a new connection after this many requests (0: only after a lost request)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st := &stats{UserIDs: []string{}}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				st.print()
			}
		}
	}()
	err := run(ctx, st, *connect, *interval, *timeout, *count, *reconnectEvery)
	close(done)
	st.print()
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "req-client:", err)
		os.Exit(1)
	}
}

// dial opens a REQ socket connected to endpoint. zmq4 v0.17's Dial retries
// a refused connection WithDialerMaxRetries times (-1: until ctx ends),
// WithDialerRetry apart, so it returns once the peer is up.
//
// WithAutomaticReconnect is left off: in zmq4 v0.17 it re-dials from
// inside the failing connection's read, which for REQ is the caller's Recv,
// and a REQ socket that lost its peer mid-request is stuck anyway (REQ
// lockstep: the reply will never come). So this client does what libzmq
// users do: on a timeout or an error, close the socket and open a new one.
func dial(ctx context.Context, endpoint string) (zmq4.Socket, error) {
	sock := zmq4.NewReq(ctx, zmq4.WithDialerRetry(100*time.Millisecond), zmq4.WithDialerMaxRetries(-1))
	if err := sock.Dial(endpoint); err != nil {
		sock.Close()
		return nil, err
	}
	return sock, nil
}

func run(ctx context.Context, st *stats, endpoint string, interval, timeout time.Duration, count, reconnectEvery int) error {
	var sock zmq4.Socket
	defer func() {
		if sock != nil {
			sock.Close()
		}
	}()
	reset := func() {
		if sock != nil {
			sock.Close()
			sock = nil
		}
	}
	for n := 1; count == 0 || n <= count; n++ {
		if sock == nil {
			s, err := dial(ctx, endpoint)
			if err != nil {
				return fmt.Errorf("connecting to %s: %w", endpoint, err)
			}
			sock = s
			st.mu.Lock()
			st.Connections++
			st.mu.Unlock()
		}
		st.mu.Lock()
		st.Sent++
		st.mu.Unlock()
		reply, err := request(ctx, sock, fmt.Sprintf("request %d", n), timeout)
		if ctx.Err() != nil {
			return nil
		}
		st.mu.Lock()
		if err != nil {
			st.Lost++
			fmt.Fprintf(os.Stderr, "req-client: request %d lost: %v\n", n, err)
		} else {
			st.Received++
			var r struct {
				UserID *string `json:"user_id"`
			}
			if json.Unmarshal(reply, &r) == nil && r.UserID != nil && !slices.Contains(st.UserIDs, *r.UserID) {
				st.UserIDs = append(st.UserIDs, *r.UserID)
			}
		}
		st.mu.Unlock()
		if err != nil || (reconnectEvery > 0 && n%reconnectEvery == 0) {
			reset()
		}
		if count != 0 && n == count {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
	return nil
}

// errTimeout is a reply that did not come in time.
var errTimeout = errors.New("no reply in time")

// request sends body and waits for the reply up to timeout. zmq4's REQ Recv
// does not watch a deadline, so it runs aside; on a timeout the caller
// closes the socket, which ends it.
func request(ctx context.Context, sock zmq4.Socket, body string, timeout time.Duration) ([]byte, error) {
	if err := sock.Send(zmq4.NewMsgString(body)); err != nil {
		return nil, err
	}
	type result struct {
		msg zmq4.Msg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := sock.Recv()
		ch <- result{m, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errTimeout
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.msg.Bytes(), nil
	}
}
