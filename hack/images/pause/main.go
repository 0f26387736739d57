// Command pause is the pod sandbox process of zmqauth's local node: PID 1
// of every pod, holding its namespaces. It waits for SIGINT or SIGTERM and
// reaps the zombies reparented to it meanwhile, as registry.k8s.io/pause
// does. It is static Go (CGO_ENABLED=0), so its image needs no libc.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (zmqauth, Go)")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	reap()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "pause: shutting down")
			return
		case <-chld:
			reap()
		}
	}
}

// reap collects every exited child without blocking. Signals coalesce, so
// one SIGCHLD may stand for several children: loop until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
