// Command pub is a ZeroMQ PUB server for a pod with the zmqauth sidecar: it
// binds plain ZMTP on loopback (the sidecar terminates CURVE on the pod's
// port and relays here) and publishes "TOPIC SEQ" for each topic every
// --interval, SEQ a running sequence number shared by the topics, so that a
// subscriber can count what it missed. It holds no CURVE code.
//
// It prints one JSON line a second, and one at exit: {"published":N}.
//
//	pub --bind tcp://127.0.0.1:15555 --interval 50ms --topics metrics.cpu,audit.login
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
)

func main() {
	bind := flag.String("bind", "tcp://127.0.0.1:15555", "endpoint to bind (the CurveServer port's appPort)")
	interval := flag.Duration("interval", 50*time.Millisecond, "time between rounds of messages")
	topics := flag.String("topics", "metrics.cpu,audit.login", "comma-separated topics")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A PUB socket listens; subscribers (the sidecar's relay sessions) that
	// go away are dropped and new ones accepted, and a message finds only
	// the subscribers connected when it is sent, as in libzmq.
	sock := zmq4.NewPub(ctx)
	defer sock.Close()
	if err := sock.Listen(*bind); err != nil {
		fmt.Fprintf(os.Stderr, "pub: listen %s: %v\n", *bind, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pub: listening on %s\n", *bind)

	var published atomic.Int64
	show := func() {
		out, _ := json.Marshal(map[string]int64{"published": published.Load()})
		fmt.Println(string(out))
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	for seq := 1; ; {
		select {
		case <-ctx.Done():
			show()
			return
		case <-report.C:
			show()
		case <-tick.C:
			for _, t := range strings.Split(*topics, ",") {
				if err := sock.Send(zmq4.NewMsgString(fmt.Sprintf("%s %d", t, seq))); err != nil {
					fmt.Fprintf(os.Stderr, "pub: send: %v\n", err)
					continue
				}
				published.Add(1)
			}
			seq++
		}
	}
}
