// Package e2e runs zmqauth end to end: the real binary (manager, sidecars,
// rotate) on the embedded control plane, with pyzmq applications.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/demo"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

// TestDemoScenario is `make demo` as assertions: keys created, the
// authorized client served with its User-Id, an unknown client refused, and
// a rotation of both keys under traffic that loses nothing.
func TestDemoScenario(t *testing.T) {
	python := testenv.PyZMQ(t)
	testenv.KubeAssets(t)
	root := testenv.RepoRoot(t)
	bin := zmqauthBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress strings.Builder
	work := t.TempDir()
	res, err := demo.Run(ctx, demo.Config{
		Root: root, Binary: bin, Python: python, WorkDir: work, Out: &progress, Requests: 200,
	})
	t.Log("\n" + progress.String())
	if err != nil {
		for _, log := range []string{"manager.log", "server-sidecar.log", "client-sidecar.log", "server-app.log"} {
			if b, rerr := os.ReadFile(filepath.Join(work, log)); rerr == nil {
				t.Logf("%s:\n%s", log, b)
			}
		}
		t.Fatalf("demo: %v", err)
	}
	if len(res.UserIDs) != 1 || res.UserIDs[0] != "demo/collector" {
		t.Errorf("server application saw User-Id %v, want [demo/collector]", res.UserIDs)
	}
	if res.UnknownClient != "refused" || res.UnknownClientServed {
		t.Errorf("unknown client: %q, served %v; want refused and not served", res.UnknownClient, res.UnknownClientServed)
	}
	if res.Sent != 200 || res.Received != res.Sent {
		t.Errorf("across the rotation %d sent, %d received; want 200 and 200", res.Sent, res.Received)
	}
	if res.ServerRevision < 2 || res.ClientRevision < 2 {
		t.Errorf("key revisions after rotation: server %d, client %d; want both ≥ 2", res.ServerRevision, res.ClientRevision)
	}
}
