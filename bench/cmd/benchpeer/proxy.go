package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
)

// runProxy is the least a Go relay can do: accept TCP connections and copy
// bytes both ways with io.Copy, no ZMTP, no crypto. Two of them in a
// latency run measure what two extra Go processes in the path cost by
// themselves (the runtime's network poller waking a goroutine per hop), the
// floor for any relay written in Go, the sidecar included. It prints
// "ready ADDR" once listening and runs until ctx ends.
func runProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to accept connections on")
	to := fs.String("to", "", "address to relay each connection to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("-to is required")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	fmt.Printf("ready %s\n", ln.Addr())
	var wg sync.WaitGroup
	defer wg.Wait()
	var d net.Dialer
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			u, err := d.DialContext(ctx, "tcp", *to)
			if err != nil {
				return
			}
			defer u.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = u.Close() })
			defer stop()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			_, _ = io.Copy(c, u)
		})
	}
}
