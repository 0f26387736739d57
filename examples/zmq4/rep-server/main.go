// Command rep-server is a ZeroMQ REP server for a pod with the zmqauth
// sidecar: it binds plain ZMTP on loopback (the sidecar terminates CURVE on
// the pod's port and relays here) and answers each request with the JSON
// {"echo": BODY}. It holds no CURVE code.
//
//	rep-server --bind tcp://127.0.0.1:15556
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
)

func main() {
	bind := flag.String("bind", "tcp://127.0.0.1:15556", "endpoint to bind (the CurveServer port's appPort)")
	flag.Parse()

	// SIGTERM (the kubelet stopping the pod) cancels ctx, which ends the
	// socket's blocking Recv.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A REP socket listens: each peer (the sidecar's relay session) that
	// goes away is dropped by zmq4 and a new one is accepted when it
	// reconnects, so the server needs no reconnect logic.
	sock := zmq4.NewRep(ctx)
	defer sock.Close()
	if err := sock.Listen(*bind); err != nil {
		fmt.Fprintf(os.Stderr, "rep-server: listen %s: %v\n", *bind, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "rep-server: listening on %s\n", *bind)

	served := 0
	for {
		msg, err := sock.Recv()
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			// A peer that went away mid-request: wait for the next.
			fmt.Fprintf(os.Stderr, "rep-server: recv: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		reply, err := json.Marshal(map[string]string{"echo": string(msg.Bytes())})
		if err != nil {
			panic(err) // a map of strings always marshals
		}
		if err := sock.Send(zmq4.NewMsg(reply)); err != nil {
			fmt.Fprintf(os.Stderr, "rep-server: send: %v\n", err)
			continue
		}
		served++
	}
	out, _ := json.Marshal(map[string]int{"served": served})
	fmt.Println(string(out))
}
