// Command demo runs zmqauth's main job on the embedded local control plane
// (`make demo`): see package internal/demo for what it shows.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zmqauth/zmqauth/internal/demo"
)

func main() {
	root, _ := os.Getwd()
	cfg := demo.Config{Out: os.Stdout}
	// Our own flag set: controller-runtime registers --kubeconfig on the
	// global one.
	flag := flag.NewFlagSet("demo", flag.ExitOnError)
	flag.StringVar(&cfg.Root, "root", root, "repository root")
	flag.StringVar(&cfg.Binary, "binary", filepath.Join(root, "bin", "zmqauth"), "the zmqauth binary")
	flag.StringVar(&cfg.Python, "python", "/usr/bin/python3", "Python with pyzmq (Debian's python3-zmq)")
	flag.StringVar(&cfg.WorkDir, "workdir", filepath.Join(root, "bin", "demo"), "logs, mounted volumes, kubeconfig")
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "reuse a running local control plane (make dev-up) instead of starting one")
	flag.IntVar(&cfg.Requests, "requests", 300, "requests sent across the rotation")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	_ = flag.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if _, err := demo.Run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}
