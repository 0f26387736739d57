// Command devcluster keeps a cluster running in the background for manual
// experiments and `make demo` (`make dev-up`, `make dev-down`):
//
//	devcluster up     start `devcluster serve` in the background, wait until it is up
//	devcluster down   stop it and wait until everything it started is gone
//	devcluster serve  run until SIGTERM or SIGINT
//
// Where a node can run (internal/nodeenv: root, cgroups, the node
// components) serve starts a one-node cluster with a real kubelet and
// zmqauth installed from its image; elsewhere it says why in one line and
// starts the embedded local control plane (kube-apiserver and etcd, no
// kubelet). It records in bin/dev: pid (written by up), mode ("node" or
// "embedded"), kubeconfig (written last, when the cluster is up; a
// cluster-admin credential, mode 0600) and devcluster.log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zmqauth/zmqauth/internal/localcluster"
	"github.com/zmqauth/zmqauth/internal/nodeenv"
)

// state is bin/dev.
type state struct{ dir string }

func (s state) path(name string) string { return filepath.Join(s.dir, name) }

// running returns the pid of the live serve process, or 0.
func (s state) running() int {
	data, err := os.ReadFile(s.path("pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

func (s state) mode() string {
	data, _ := os.ReadFile(s.path("mode"))
	return strings.TrimSpace(string(data))
}

// clear removes what a serve process recorded.
func (s state) clear() {
	for _, name := range []string{"pid", "mode", "kubeconfig"} {
		_ = os.Remove(s.path(name))
	}
}

func main() {
	root, _ := os.Getwd()
	fs := flag.NewFlagSet("devcluster", flag.ExitOnError)
	fs.StringVar(&root, "root", root, "repository root")
	embedded := fs.Bool("embedded", false, "start the embedded control plane even where a node can run")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: devcluster [-root DIR] [-embedded] up|down|serve")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	st := state{dir: filepath.Join(root, "bin", "dev")}
	var err error
	switch fs.Arg(0) {
	case "up":
		err = up(st, *embedded)
	case "down":
		err = down(st)
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = serve(ctx, st, root, *embedded)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

// banner says how to use the running cluster.
func banner(st state) string {
	kc := st.path("kubeconfig")
	if st.mode() == "node" {
		return fmt.Sprintf("one-node cluster up (pods run under a kubelet; zmqauth installed): export KUBECONFIG=%s\n"+
			"  then: kubectl apply -f examples/kubernetes/   (kubectl: bin/k8s/kubectl; make dev-down tears the node down)", kc)
	}
	return fmt.Sprintf("local control plane up (no kubelet: pods are not run): export KUBECONFIG=%s", kc)
}

// up starts serve in the background, in a session of its own so that it
// outlives the make that ran up, and follows its log until the cluster is
// up or serve fails.
func up(st state, embedded bool) error {
	if st.running() != 0 {
		fmt.Println("already up: " + banner(st))
		return nil
	}
	st.clear()
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := st.path("devcluster.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	args := []string{"-root", filepath.Dir(filepath.Dir(st.dir))}
	if embedded {
		args = append(args, "-embedded")
	}
	cmd := exec.Command(self, append(args, "serve")...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	if err := os.WriteFile(st.path("pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	follow, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer follow.Close()
	deadline := time.After(20 * time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		_, _ = io.Copy(os.Stdout, follow)
		if _, err := os.Stat(st.path("kubeconfig")); err == nil {
			fmt.Println(banner(st))
			return nil
		}
		select {
		case err := <-exited:
			_, _ = io.Copy(os.Stdout, follow)
			st.clear()
			return fmt.Errorf("the cluster did not come up (%v); its log: %s", err, logPath)
		case <-deadline:
			return fmt.Errorf("the cluster is not up after 20 minutes; its log: %s (make dev-down stops it)", logPath)
		case <-tick.C:
		}
	}
}

// down stops serve and waits until it has torn everything down.
func down(st state) error {
	pid := st.running()
	if pid == 0 {
		st.clear()
		return nil
	}
	mode := st.mode()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop devcluster (pid %d): %w", pid, err)
	}
	began := time.Now()
	for syscall.Kill(pid, 0) == nil {
		if time.Since(began) > 3*time.Minute {
			return fmt.Errorf("devcluster (pid %d) still runs 3 minutes after SIGTERM; see %s", pid, st.path("devcluster.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	st.clear()
	if mode == "node" {
		fmt.Printf("one-node cluster torn down (%s)\n", time.Since(began).Round(100*time.Millisecond))
	} else {
		fmt.Println("local control plane stopped")
	}
	return nil
}

// serve runs the cluster until ctx ends, then stops it.
func serve(ctx context.Context, st state, root string, embedded bool) error {
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return err
	}
	if !embedded {
		err := nodeenv.Check(root)
		if err == nil {
			return serveNode(ctx, st, root)
		}
		if !errors.Is(err, nodeenv.ErrCannotRun) {
			return err
		}
		fmt.Printf("%v; starting the embedded control plane instead (no kubelet: pods are not run)\n", err)
	}
	// localcluster writes its kubeconfig into StateDir last: the mode goes
	// first, so that a reader who sees the kubeconfig sees the mode.
	if err := os.WriteFile(st.path("mode"), []byte("embedded\n"), 0o644); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := localcluster.Start(startCtx, localcluster.Options{
		AssetsDir: filepath.Join(root, "bin", "k8s"),
		CRDDir:    filepath.Join(root, "config", "crd", "bases"),
		StateDir:  st.dir,
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	err = c.Stop()
	_ = os.Remove(c.Kubeconfig)
	return err
}

// serveNode runs a node with zmqauth installed until ctx ends, then tears
// it down completely.
func serveNode(ctx context.Context, st state, root string) (err error) {
	startCtx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	env, err := nodeenv.Start(startCtx, nodeenv.Options{Root: root, WorkDir: filepath.Join(st.dir, "node"), Log: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("tearing the node down")
		stopCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err = errors.Join(err, env.Stop(stopCtx))
		_ = os.Remove(st.path("kubeconfig"))
		if err == nil {
			fmt.Println("node torn down")
		}
	}()
	if err := os.WriteFile(st.path("mode"), []byte("node\n"), 0o644); err != nil {
		return err
	}
	if err := copyFile(env.Kubeconfig, st.path("kubeconfig")); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// copyFile copies a kubeconfig (a credential: mode 0600), renaming it into
// place so that a reader never sees half of it.
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
