package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// runHSServer is the Go counterpart of bench/c/zmq_hs_server.c: a CURVE
// server (ROUTER) that counts completed handshakes and, after a warm-up,
// measures its own CPU time (all threads) per handshake over a window.
func runHSServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hs-server", flag.ContinueOnError)
	keys := fs.String("keys", "", "server keypair directory")
	allowlist := fs.String("allowlist", "", "allowlist directory (public certificates)")
	warmup := fs.Duration("warmup", time.Second, "time before the measurement starts")
	duration := fs.Duration("duration", 2*time.Second, "measurement window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := newServer(*keys, *allowlist)
	if err != nil {
		return err
	}
	cfg := &zmtp.Config{Mechanism: srv, SocketType: "ROUTER"}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	fmt.Printf("ready tcp://%s\n", ln.Addr())

	var handshakes, failures atomic.Uint64
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := zmtp.NewConn(ctx, nc, cfg)
				if err != nil {
					failures.Add(1)
					return
				}
				handshakes.Add(1)
				// Serve the session as a server would: read until the
				// client goes away.
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				var buf []byte
				for {
					f, err := c.ReadFrame(buf)
					if err != nil {
						break
					}
					buf = f.Payload[:0]
				}
				c.Close()
			}()
		}
	}()

	if err := sleep(ctx, *warmup); err != nil {
		return err
	}
	t0, c0, h0 := time.Now(), cpuTime(), handshakes.Load()
	if err := sleep(ctx, *duration); err != nil {
		return err
	}
	wall, cpu, n := time.Since(t0), cpuTime()-c0, handshakes.Load()-h0
	fmt.Printf("result handshakes=%d cpu_us=%d wall_us=%d failures=%d\n",
		n, cpu.Microseconds(), wall.Microseconds(), failures.Load())
	ln.Close()
	cancel()
	return nil
}

// runHSLoad dials, handshakes and closes as fast as it can from many
// goroutines, until it is interrupted or -max passes; it reports its first
// failure and its totals on stderr.
func runHSLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hs-load", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	keys := fs.String("keys", "", "client keypair directory")
	serverKey := fs.String("server-key", "", "file holding the server's public key")
	conns := fs.Int("conns", 48, "concurrent connections")
	socketType := fs.String("socket-type", "DEALER", "our socket type")
	maxTime := fs.Duration("max", time.Minute, "stop after this long in any case")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*keys, *serverKey)
	if err != nil {
		return err
	}
	cfg := &zmtp.Config{Mechanism: client, SocketType: *socketType, HandshakeTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, *maxTime)
	defer cancel()

	var ok, failed atomic.Uint64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := zmtp.Dial(ctx, *addr, cfg)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					failed.Add(1)
					firstErr.Do(func() { fmt.Fprintf(os.Stderr, "hs-load: first failure: %v\n", err) })
					_ = sleep(ctx, 10*time.Millisecond)
					continue
				}
				ok.Add(1)
				c.Close()
			}
		}()
	}
	wg.Wait()
	// Failures are expected when the server stops at the end of a run; the
	// totals go to stderr, the log the driver quotes when a run fails.
	fmt.Fprintf(os.Stderr, "hs-load: handshakes=%d failures=%d\n", ok.Load(), failed.Load())
	return nil
}

// cpuTime is the user and system CPU time of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
}
