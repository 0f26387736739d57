// Command benchpeer is the Go side of `make bench`: the zmqauth ZMTP engine
// (package zmtp with zmtp/curve) as a handshake server, a handshake load
// generator, a PUSH/PULL throughput pair and a holder of many idle
// sessions. bench/cmd/benchall runs it next to the libzmq programs in
// bench/c, which speak the same line protocol on stdout:
//
//	ready ADDR           a server is listening on ADDR
//	result k=v k=v ...   a measurement, after which the process exits
//
// Keys come from keypair directories (public.key, secret.key) and public
// key files, never from the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// subcommands maps each subcommand to its function; args exclude the name.
var subcommands = map[string]func(ctx context.Context, args []string) error{
	"hs-server": runHSServer,
	"hs-load":   runHSLoad,
	"thr-pull":  runThrPull,
	"thr-push":  runThrPush,
	"idle":      runIdle,
	"proxy":     runProxy,
}

func main() {
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: benchpeer hs-server|hs-load|thr-pull|thr-push|idle|proxy [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := subcommands[os.Args[1]](ctx, os.Args[2:]); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "benchpeer %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
