// Command demo runs zmqauth's main job (`make demo`). Where a node can run
// (root, cgroups, the node components of hack/node-deps.sh) it runs on a
// one-node cluster with a real kubelet (internal/nodedemo): it starts the
// node, applies examples/kubernetes and tears the node down, or reuses the
// node `make dev-up` keeps running. Elsewhere it says why in one line and
// runs on the embedded local control plane, with host processes standing in
// for pods (internal/demo), reusing `make dev-up`'s control plane when it
// runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zmqauth/zmqauth/internal/demo"
	"github.com/zmqauth/zmqauth/internal/nodedemo"
	"github.com/zmqauth/zmqauth/internal/nodeenv"
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
	flag.StringVar(&cfg.WorkDir, "workdir", filepath.Join(root, "bin", "demo"), "logs, mounted volumes, kubeconfig (embedded); images and install files (node)")
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "reuse a running embedded control plane instead of starting one (default: make dev-up's, when it runs)")
	flag.IntVar(&cfg.Requests, "requests", 300, "requests sent across the rotation (embedded)")
	embedded := flag.Bool("embedded", false, "run on the embedded control plane even where a node can run")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after this long (the first run on a node builds the pyzmq image)")
	_ = flag.Parse(os.Args[1:])

	// ^C, SIGTERM, or the reader of our output gone (`make demo | head`:
	// a write then raises SIGPIPE, which would otherwise kill the demo
	// before it stops what it started) end the demo, which then cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, cfg, *embedded); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			fmt.Fprintln(os.Stderr, "demo interrupted; what it started is stopped")
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}

// run picks where the demo runs and runs it.
func run(ctx context.Context, cfg demo.Config, embedded bool) error {
	dev := devState(cfg.Root)
	if dev.mode == "starting" && cfg.Kubeconfig == "" && !embedded {
		// Its node would hold the machine's node lock until make dev-down:
		// wait for it rather than for the lock.
		fmt.Fprintf(cfg.Out, "make dev-up is starting a cluster (%s); the demo waits for it and reuses it\n", filepath.Join(cfg.Root, "bin", "dev", "devcluster.log"))
		for dev.mode == "starting" {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			dev = devState(cfg.Root)
		}
	}
	if cfg.Kubeconfig == "" && !embedded {
		switch dev.mode {
		case "node":
			_, err := nodedemo.Run(ctx, nodedemo.Config{Root: cfg.Root, WorkDir: cfg.WorkDir, Binary: cfg.Binary, Kubeconfig: dev.kubeconfig, Out: cfg.Out})
			return err
		case "embedded":
			cfg.Kubeconfig = dev.kubeconfig
		default:
			err := nodeenv.Check(cfg.Root)
			if err == nil {
				_, err := nodedemo.Run(ctx, nodedemo.Config{Root: cfg.Root, WorkDir: cfg.WorkDir, Binary: cfg.Binary, Out: cfg.Out})
				return err
			}
			if !errors.Is(err, nodeenv.ErrCannotRun) {
				return err
			}
			fmt.Fprintf(cfg.Out, "%v; the demo runs on the embedded control plane instead (no kubelet: host processes stand in for pods)\n", err)
		}
	}
	_, err := demo.Run(ctx, cfg)
	return err
}

// dev is what `make dev-up` runs (hack/devcluster): its mode ("node",
// "embedded", "starting" before its kubeconfig is written, empty when
// nothing runs) and kubeconfig.
type dev struct{ mode, kubeconfig string }

// devState reads bin/dev, where hack/devcluster records what it runs while
// its process is alive.
func devState(root string) dev {
	dir := filepath.Join(root, "bin", "dev")
	pidText, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return dev{}
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		return dev{}
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if _, err := os.Stat(kubeconfig); err != nil {
		return dev{mode: "starting"}
	}
	mode, err := os.ReadFile(filepath.Join(dir, "mode"))
	if err != nil {
		// A devcluster from before it wrote its mode ran the embedded
		// control plane.
		return dev{mode: "embedded", kubeconfig: kubeconfig}
	}
	return dev{mode: strings.TrimSpace(string(mode)), kubeconfig: kubeconfig}
}
