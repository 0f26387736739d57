// Package node_test is the end-to-end suite on a real node: zmqauth
// installed from its image with `kubectl apply -k config/default` on a
// one-node cluster (internal/nodeenv), and pods with the injected sidecar
// run by a kubelet, in namespaces whose Pod Security admission enforces
// `restricted`. It runs when ZMQAUTH_NODE_E2E=1 (`make test-node`, part of
// `make test`) on a machine where a node can run (root, cgroups), and says
// why it skips elsewhere.
package node_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/nodeenv"
)

// env is the node every test runs on; nil when the suite is skipped.
var env *nodeenv.Env

// skipReason says why env is nil.
var skipReason string

// root is the repository's top directory.
var root string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root = filepath.Join(wd, "..", "..")
	switch {
	case os.Getenv("ZMQAUTH_NODE_E2E") != "1":
		skipReason = "the node suite runs with ZMQAUTH_NODE_E2E=1 (make test-node, part of make test)"
		return m.Run()
	case testing.Short():
		skipReason = "-short"
		return m.Run()
	}
	if err := nodeenv.Check(root); err != nil {
		skipReason = err.Error()
		fmt.Fprintf(os.Stderr, "node suite skipped: %v\n", err)
		return m.Run()
	}

	// ^C or a CI timeout still tears the node down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	work := filepath.Join(root, "bin", "node-e2e")
	env, err = nodeenv.Start(startCtx, nodeenv.Options{Root: root, WorkDir: work, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "node suite: %v\n", err)
		if errors.Is(err, nodeenv.ErrCannotRun) {
			skipReason = err.Error()
			return m.Run()
		}
		return 1
	}
	code := m.Run()
	if code != 0 {
		logs := filepath.Join(work, "logs")
		if err := env.SaveLogs(logs); err == nil {
			fmt.Fprintf(os.Stderr, "node suite failed: the node's logs are in %s\n", logs)
		}
	}
	if err := env.Stop(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "node suite: teardown: %v\n", err)
		return 1
	}
	return code
}

// needNode skips the test when the suite does not run here.
func needNode(t *testing.T) *nodeenv.Env {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	return env
}
