package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// checkEvery is how many messages pass between two looks at the clock, as
// in bench/c/zmq_thr.c.
const checkEvery = 256

// runThrPull is the Go counterpart of "zmq_thr pull": a CURVE server (PULL)
// that accepts one connection and, from its first message on, skips a
// warm-up and counts the messages of a measurement window.
func runThrPull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("thr-pull", flag.ContinueOnError)
	keys := fs.String("keys", "", "server keypair directory")
	size := fs.Int("size", 64, "message size in bytes")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "traffic skipped before the measurement")
	duration := fs.Duration("duration", 2*time.Second, "measurement window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := newServer(*keys, "")
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	fmt.Printf("ready tcp://%s\n", ln.Addr())
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	nc, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	c, err := zmtp.NewConn(ctx, nc, &zmtp.Config{Mechanism: srv, SocketType: "PULL"})
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer c.Close()
	stopConn := context.AfterFunc(ctx, func() { c.Close() })
	defer stopConn()

	buf := make([]byte, 0, *size)
	var start, t0, deadline time.Time
	var n, msgs, bytes uint64
	for {
		f, err := c.ReadFrame(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		buf = f.Payload[:0]
		if f.Flags&zmtp.FlagCommand != 0 {
			continue
		}
		if len(f.Payload) != *size {
			return fmt.Errorf("received %d bytes, want %d", len(f.Payload), *size)
		}
		n++
		if !t0.IsZero() {
			msgs++
			bytes += uint64(len(f.Payload))
		}
		if n%checkEvery != 1 {
			continue
		}
		now := time.Now()
		switch {
		case start.IsZero():
			start = now
		case t0.IsZero() && now.Sub(start) >= *warmup:
			t0, deadline = now, now.Add(*duration)
		case !t0.IsZero() && !now.Before(deadline):
			fmt.Printf("result msgs=%d bytes=%d secs=%.6f\n", msgs, bytes, now.Sub(t0).Seconds())
			return nil
		}
	}
}

// runThrPush is the Go counterpart of "zmq_thr push": a CURVE client (PUSH)
// that sends messages until it is interrupted. Frames are buffered and the
// connection's 64 KiB write buffer goes out whenever it fills, the batching
// libzmq does by itself; Flush is only needed when the stream pauses, which
// it never does here.
func runThrPush(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("thr-push", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	keys := fs.String("keys", "", "client keypair directory")
	serverKey := fs.String("server-key", "", "file holding the server's public key")
	size := fs.Int("size", 64, "message size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*keys, *serverKey)
	if err != nil {
		return err
	}
	c, err := zmtp.Dial(ctx, *addr, &zmtp.Config{Mechanism: client, SocketType: "PUSH"})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	payload := make([]byte, *size)
	for {
		if err := c.WriteFrame(0, payload); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write: %w", err)
		}
	}
}
