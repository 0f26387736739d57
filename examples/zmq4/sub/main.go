// Command sub is a ZeroMQ SUB client for a pod with the zmqauth sidecar: it
// connects in plain ZMTP to the sidecar's local port (the sidecar speaks
// CURVE to the publisher), subscribes to each --subscribe prefix and reads
// the "TOPIC SEQ" messages of examples/zmq4/pub. It holds no CURVE code.
//
// It prints one JSON line a second, and one at exit:
//
//	{"received":N,"gaps":G,"last":SEQ,"topics":["metrics.cpu"]}
//
// gaps counts the sequence numbers missing per topic after the first
// message of that topic, last is the last sequence number received and
// topics lists the topics received.
//
//	sub --connect tcp://127.0.0.1:6555 --subscribe metrics. [--subscribe audit.]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
)

// prefixes is a repeatable string flag.
type prefixes []string

func (p *prefixes) String() string     { return strings.Join(*p, ",") }
func (p *prefixes) Set(v string) error { *p = append(*p, v); return nil }

// stats is what the subscriber prints.
type stats struct {
	mu       sync.Mutex
	Received int `json:"received"`
	Gaps     int `json:"gaps"`
	Last     int `json:"last"`
	// Topics are the distinct topics received, in order of arrival: what
	// the subscriptions let through.
	Topics []string       `json:"topics"`
	last   map[string]int // topic -> last sequence number
}

// add counts the message "TOPIC SEQ".
func (s *stats) add(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Received++
	topic, num, ok := strings.Cut(body, " ")
	seq, err := strconv.Atoi(num)
	if !ok || err != nil {
		return
	}
	prev, seen := s.last[topic]
	if seen && seq > prev+1 {
		s.Gaps += seq - prev - 1
	}
	if !seen {
		s.Topics = append(s.Topics, topic)
	}
	s.last[topic] = seq
	s.Last = seq
}

func (s *stats) print() {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func main() {
	connect := flag.String("connect", "tcp://127.0.0.1:6555", "endpoint to connect to (the sidecar's localPort)")
	var subs prefixes
	flag.Var(&subs, "subscribe", "topic prefix to subscribe to (repeatable; default: everything)")
	flag.Parse()
	if len(subs) == 0 {
		subs = prefixes{""}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// zmq4 v0.17: Dial retries a refused connection WithDialerMaxRetries
	// times (-1: until ctx ends), WithDialerRetry apart. When an
	// established connection drops, Recv returns its error once and, with
	// WithAutomaticReconnect, the socket dials again (with the same retry
	// policy) and re-sends the subscriptions to the new connection, so the
	// loop below only has to keep calling Recv.
	sock := zmq4.NewSub(ctx,
		zmq4.WithAutomaticReconnect(true),
		zmq4.WithDialerRetry(100*time.Millisecond),
		zmq4.WithDialerMaxRetries(-1))
	defer sock.Close()

	st := &stats{Topics: []string{}, last: map[string]int{}}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st.print()
			}
		}
	}()

	if err := sock.Dial(*connect); err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "sub: dial %s: %v\n", *connect, err)
			os.Exit(1)
		}
		st.print()
		return
	}
	for _, p := range subs {
		if err := sock.SetOption(zmq4.OptionSubscribe, p); err != nil {
			fmt.Fprintf(os.Stderr, "sub: subscribe %q: %v\n", p, err)
			os.Exit(1)
		}
	}
	for {
		msg, err := sock.Recv()
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sub: recv: %v (reconnecting)\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		st.add(string(msg.Bytes()))
	}
	st.print()
}
