// Package testenv finds the real external parts the tests run against: the
// pyzmq/libzmq reference peer and the envtest control plane; and the small
// probes several packages' tests share (WatchOpens).
//
// When a part is missing a test is skipped, unless ZMQAUTH_REQUIRE_DEPS=1 is
// set (as `make test` does after installing everything), in which case the
// test fails: on a machine where the install succeeded nothing is skipped.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Python is the interpreter that owns Debian's python3-zmq. The python3 first
// on PATH may be another interpreter without it.
const Python = "/usr/bin/python3"

var (
	pyzmqOnce sync.Once
	pyzmqErr  error
)

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("ZMQAUTH_REQUIRE_DEPS") == "1" {
		t.Fatalf("%s is missing; `make deps` installs it", what)
	}
	t.Skipf("%s is missing; `make deps` installs it (set ZMQAUTH_REQUIRE_DEPS=1 to fail instead)", what)
}

// PyZMQ returns the path of a Python interpreter that imports zmq, or skips
// (fails under ZMQAUTH_REQUIRE_DEPS=1) when there is none.
func PyZMQ(t testing.TB) string {
	t.Helper()
	pyzmqOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pyzmqErr = exec.CommandContext(ctx, Python, "-c", "import zmq, zmq.auth").Run()
	})
	if pyzmqErr != nil {
		missing(t, "pyzmq for "+Python+" (Debian package python3-zmq)")
	}
	return Python
}

// RepoRoot returns the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// KubeAssets returns the directory holding kube-apiserver, etcd and kubectl
// for envtest (KUBEBUILDER_ASSETS, else bin/k8s), or skips (fails under
// ZMQAUTH_REQUIRE_DEPS=1) when they are not built.
func KubeAssets(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "bin", "k8s")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing(t, "the envtest control plane ("+filepath.Join(dir, name)+"; hack/controlplane.sh builds it)")
		}
	}
	return dir
}
