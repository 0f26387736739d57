package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// runIdle opens -n CURVE connections to -addr, prints "ready n=N" when all
// are established, and holds them, silent, until it is interrupted: the
// load for measuring what idle sessions cost a server (the inbound sidecar).
func runIdle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	keys := fs.String("keys", "", "client keypair directory")
	serverKey := fs.String("server-key", "", "file holding the server's public key")
	n := fs.Int("n", 1000, "connections to hold")
	parallel := fs.Int("parallel", 32, "handshakes in flight at once")
	socketType := fs.String("socket-type", "DEALER", "our socket type")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*keys, *serverKey)
	if err != nil {
		return err
	}
	cfg := &zmtp.Config{Mechanism: client, SocketType: *socketType, HandshakeTimeout: 10 * time.Second}

	conns := make([]*zmtp.Conn, *n)
	errs := make([]error, *n)
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conns[i], errs[i] = zmtp.Dial(ctx, *addr, cfg)
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("connection %d of %d: %w", i+1, *n, err)
		}
	}
	fmt.Printf("ready n=%d\n", *n)
	<-ctx.Done()
	return nil
}
