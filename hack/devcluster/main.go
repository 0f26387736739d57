// Command devcluster keeps the embedded local control plane running
// (`make dev-up`) until it is interrupted (`make dev-down`), so `make demo`
// and manual experiments can reuse it. It writes the admin kubeconfig to
// bin/dev/kubeconfig.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zmqauth/zmqauth/internal/localcluster"
)

func main() {
	root, _ := os.Getwd()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := localcluster.Start(startCtx, localcluster.Options{
		AssetsDir: filepath.Join(root, "bin", "k8s"),
		CRDDir:    filepath.Join(root, "config", "crd", "bases"),
		StateDir:  filepath.Join(root, "bin", "dev"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("local control plane up; export KUBECONFIG=%s\n", c.Kubeconfig)
	<-ctx.Done()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = os.Remove(c.Kubeconfig)
}
