package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/demo"
	"github.com/zmqauth/zmqauth/zap/metrics"
)

// TestAPIServerOutageCostsNothing stops kube-apiserver (etcd keeps
// running) for 10 s while an application sends through the sidecars on one
// connection, then starts it again: the session carries on throughout with
// every request answered and no reconnection, the keypair Secrets come out
// unchanged, and the manager, still running, serves a CurveClient created
// after the restart.
func TestAPIServerOutageCostsNothing(t *testing.T) {
	const outage = 10 * time.Second
	w := newWorld(t, 3*time.Minute, demo.ManagerOptions{})
	const ns = "outage"
	w.busAndCollector(ns)
	srv := w.startServerPod(ns, "bus")
	cli := w.startClientPod(ns, "collector", srv)
	stream := w.stream("collector-app", cli, demo.StreamOptions{}, 20)
	accepted := map[string]string{"result": metrics.ResultAccepted}
	handshakes := w.metric(srv.Admin, handshakesMetric, accepted)

	secretNames := []string{"bus-curve", "collector-curve"}
	secretsBefore := map[string]map[string][]byte{}
	for _, name := range secretNames {
		s, err := w.getSecret(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		secretsBefore[name] = s.Data
		t.Logf("Secret %s before: revision %s, public key %s", name,
			s.Annotations[secretlayout.AnnotationKeyRevision], s.Data[filecontract.PublicKeyFile])
	}

	began := time.Now()
	if err := w.rig.Cluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Logf("kube-apiserver stopped in %s", stopped.Sub(began).Round(time.Millisecond))
	if _, err := w.getSecret(ns, "bus-curve"); err == nil {
		t.Fatal("the API server still answers after it was stopped")
	}
	mid := stream.Last().Received
	select {
	case <-time.After(time.Until(stopped.Add(outage))):
	case <-w.ctx.Done():
		t.Fatal(w.ctx.Err())
	}
	during := stream.Last()
	if during.Received <= mid {
		t.Errorf("no request answered during the API server outage: %v", during)
	}
	if err := w.rig.Cluster.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("kube-apiserver down for %s, serving again", restarted.Sub(stopped).Round(time.Millisecond))

	// The manager reconnects by itself and serves a new client.
	w.client(ns, "newcomer", ns, "bus")
	newcomer := w.waitAuthorized(ns, "newcomer", 60*time.Second)
	t.Logf("CurveClient newcomer created after the restart: key %s, authorized %s after the restart",
		newcomer.Status.PublicKey, time.Since(restarted).Round(time.Millisecond))
	if done, err := w.manager.Exited(); done {
		t.Errorf("the manager exited during the outage: %v", err)
	}

	at := stream.Last().Received
	if _, err := stream.WaitFor(w.ctx, "20 more answered requests", func(e demo.StreamEvent) bool {
		return e.Received >= at+20
	}); err != nil {
		t.Fatal(err)
	}
	if v := w.metric(srv.Admin, sessionsMetric, nil); v != 1 {
		t.Errorf("inbound sidecar reports %v active sessions, want 1", v)
	}
	if v := w.metric(srv.Admin, handshakesMetric, accepted); v != handshakes {
		t.Errorf("inbound sidecar accepted %v handshakes during the test, want none beyond the first %v", v-handshakes, handshakes)
	}
	sum := w.stopStream(stream)
	t.Logf("application: %v", sum)
	if sum.Received != sum.Sent || sum.Connected != 1 || sum.Disconnected != 0 || sum.HandshakeFailed != 0 {
		t.Errorf("across the outage: %v; want every request answered on the one connection", sum)
	}

	for _, name := range secretNames {
		s, err := w.getSecret(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Secret %s after: revision %s, public key %s", name,
			s.Annotations[secretlayout.AnnotationKeyRevision], s.Data[filecontract.PublicKeyFile])
		if changed := changedKeys(secretsBefore[name], s.Data); len(changed) > 0 {
			t.Errorf("Secret %s changed across the outage: %v", name, changed)
		}
		if rev := s.Annotations[secretlayout.AnnotationKeyRevision]; rev != "1" {
			t.Errorf("Secret %s key revision %s, want 1", name, rev)
		}
	}
}

// changedKeys names the data keys whose values differ between a and b
// (never the values: some are secret keys).
func changedKeys(a, b map[string][]byte) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
