package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/internal/nodedemo"
)

// TestDemoOnNode runs `make demo`'s steps on the suite's node: the
// manifests of examples/kubernetes run as pods with their sidecars (2/2 in
// kubectl), the pyzmq server reads the client's namespace/name, the webhook
// refuses a pod naming an unknown CurveServer, a client of another namespace
// with no grant is told NotSelected and gets no reply, and both keys rotate
// under traffic with every request answered.
func TestDemoOnNode(t *testing.T) {
	e := needNode(t)
	t.Cleanup(func() {
		for _, ns := range []string{nodedemo.Namespace, nodedemo.OutsideNamespace} {
			_ = e.Clientset.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := nodedemo.Run(ctx, nodedemo.Config{
		Root:    root,
		WorkDir: filepath.Join(root, "bin", "node-e2e"),
		Env:     e,
		Out:     &out,
	})
	if testing.Verbose() {
		os.Stderr.WriteString(out.String())
	}
	if err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, out.String())
	}
	for _, app := range []string{nodedemo.ServerName, nodedemo.ClientName} {
		if res.Pods[app] != "2/2" {
			t.Errorf("kubectl shows the %s pod READY %q, want 2/2 (application and sidecar)", app, res.Pods[app])
		}
	}
	if !res.SidecarsNative {
		t.Error("the sidecars are not started, ready native sidecars")
	}
	if want := nodedemo.Namespace + "/" + nodedemo.ClientName; res.UserID != want {
		t.Errorf("the pyzmq server read User-Id %q, want %q", res.UserID, want)
	}
	if !strings.Contains(res.Refusal, "denied") || !strings.Contains(res.Refusal, nodedemo.UnknownServer) || res.RefusedPodCreated {
		t.Errorf("the pod naming %s: refusal %q, created %v; want a webhook denial naming it and no pod", nodedemo.UnknownServer, res.Refusal, res.RefusedPodCreated)
	}
	if res.OutsiderReason != "NotSelected" || res.OutsiderReceived != 0 {
		t.Errorf("the ungranted client: Authorized reason %q, %d requests sent, %d answered; want NotSelected and no reply",
			res.OutsiderReason, res.OutsiderSent, res.OutsiderReceived)
	}
	if res.ServerRevision < 2 || res.ClientRevision < 2 || res.ServerKeys[0] == res.ServerKeys[1] || res.ClientKeys[0] == res.ClientKeys[1] {
		t.Errorf("keys after the rotation: server %v revision %d, client %v revision %d; want both new, revision 2 or more",
			res.ServerKeys, res.ServerRevision, res.ClientKeys, res.ClientRevision)
	}
	if !res.NewKeysInForce {
		t.Error("the sidecars did not log the new keys in force")
	}
	if res.Sent == 0 || res.Sent != res.Received || res.Lost != 0 || res.Connections < 2 {
		t.Errorf("across the rotation: sent %d, received %d, lost %d over %d connections; want every request answered over new connections",
			res.Sent, res.Received, res.Lost, res.Connections)
	}
	t.Logf("demo steps on the node took %s", res.Took.Round(time.Second))
}
