package node_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/internal/node"
	"github.com/zmqauth/zmqauth/internal/nodeenv"
	"github.com/zmqauth/zmqauth/internal/promtext"
)

// trafficPair starts a zmq4 REP server and a zmq4 REQ client Deployment
// that sends every 50 ms and opens a new connection (a new CURVE session)
// every 20 requests, and returns the two pods once replies flow.
func trafficPair(t *testing.T, ns string) (server, client corev1.Pod) {
	t.Helper()
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556",
			"--interval", "50ms", "--timeout", "5s", "--reconnect-every", "20")))
	server = readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]
	client = readyPods(t, ns, "app=caller", 1, 2*time.Minute)[0]
	waitFor(t, time.Minute, "the client's first replies", func(context.Context) (bool, error) {
		s, _ := lastSummary(logs(t, ns, client.Name, "app"))
		return s.Received > 0, nil
	})
	return server, client
}

// served is what the server pod's sidecar has done so far: sessions
// accepted and requests relayed to the application. Read from its metrics
// at the pod's address, it needs no API server.
func served(t *testing.T, server corev1.Pod) (accepted, relayed float64) {
	m := sidecarMetrics(t, server)
	return promtext.Sum(m, "zmqauth_sidecar_handshakes_total", map[string]string{"result": "accepted"}),
		promtext.Sum(m, "zmqauth_sidecar_relayed_messages_total", map[string]string{"direction": "in"})
}

// waitServing waits until the server's sidecar has accepted two more
// sessions and relayed twenty more requests than it had.
func waitServing(t *testing.T, server corev1.Pod, what string) {
	t.Helper()
	a0, r0 := served(t, server)
	waitFor(t, time.Minute, what, func(context.Context) (bool, error) {
		a, r := served(t, server)
		return a >= a0+2 && r >= r0+20, nil
	})
}

// noneLost checks the client's summary: every request answered.
func noneLost(t *testing.T, ns string, client corev1.Pod, across string) {
	t.Helper()
	s := lastStats(t, logs(t, ns, client.Name, "app"))
	t.Logf("across %s: %d requests sent over %d connections, %d answered, %d lost", across, s.Sent, s.Connections, s.Received, s.Lost)
	if s.Lost != 0 || s.Received < s.Sent-1 {
		t.Errorf("across %s the client lost %d of %d requests, want none", across, s.Lost, s.Sent)
	}
}

// TestManagerOutage: the manager's pod deleted under traffic leaves the
// sidecars serving (new sessions too); while no manager replica is ready a
// new annotated pod is refused by the API server (the webhook fails closed)
// and an unannotated pod in the same namespace is admitted.
func TestManagerOutage(t *testing.T) {
	e := needNode(t)
	ns := newNamespace(t, "manager-outage")
	server, client := trafficPair(t, ns)
	ctx := context.Background()
	managers := func() []corev1.Pod {
		pods, err := e.Clientset.CoreV1().Pods(nodeenv.ManagerNamespace).List(ctx, metav1.ListOptions{LabelSelector: "control-plane=zmqauth-manager"})
		if err != nil {
			t.Fatalf("list the manager's pods: %v", err)
		}
		return pods.Items
	}
	defer func() {
		if err := e.WaitManagerAvailable(ctx, 3*time.Minute); err != nil {
			t.Fatalf("the manager did not come back: %v", err)
		}
		waitInjecting(t, ns) // later tests need the webhook
	}()

	// The pod deleted: its Deployment replaces it; the sidecars serve on.
	old := managers()
	began := time.Now()
	for _, p := range old {
		if err := e.Clientset.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete the manager's pod: %v", err)
		}
	}
	waitServing(t, server, "the sidecars to keep serving with the manager's pod deleted")
	if err := e.WaitManagerAvailable(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("the manager's pod deleted: a new replica ready %s later", time.Since(began).Round(100*time.Millisecond))
	waitServing(t, server, "the sidecars to serve on with the new manager")
	noneLost(t, ns, client, "the manager pod's replacement")

	// No manager replica at all: annotated pods are refused, others not.
	scale := func(replicas int) {
		t.Helper()
		if out, err := kubectl(t, "", "scale", "-n", nodeenv.ManagerNamespace, "deployment/"+nodeenv.ManagerDeployment, "--replicas", strconv.Itoa(replicas)); err != nil {
			t.Fatalf("kubectl scale: %v\n%s", err, out)
		}
	}
	scale(0)
	defer scale(1)
	waitFor(t, 2*time.Minute, "no manager pod left", func(context.Context) (bool, error) {
		return len(managers()) == 0, nil
	})
	annotated := `apiVersion: v1
kind: Pod
metadata: {name: NAME, annotations: {zmqauth.io/client: caller}}
spec:
  ` + strings.ReplaceAll(podSpec(zmq4ReqClient("tcp://127.0.0.1:6556"), "Never"), "\n      ", "\n  ")
	out, err := kubectl(t, strings.Replace(annotated, "NAME", "refused-while-down", 1), "apply", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(out, "inject.zmqauth.io") {
		t.Errorf("an annotated pod with no manager ready: want a refusal naming the webhook inject.zmqauth.io, got err=%v\n%s", err, out)
	} else {
		t.Logf("refused while no manager is ready: %s", strings.TrimSpace(out))
	}
	plain := strings.Replace(strings.Replace(annotated, "NAME", "plain-while-down", 1), ", annotations: {zmqauth.io/client: caller}", "", 1)
	if out, err := kubectl(t, plain, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Errorf("an unannotated pod with no manager ready was refused: %v\n%s", err, out)
	}
	waitServing(t, server, "the sidecars to keep serving with no manager at all")
	noneLost(t, ns, client, "the manager's absence")
	scale(1)
	if err := e.WaitManagerAvailable(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitInjecting(t, ns)
	if out, err := kubectl(t, strings.Replace(annotated, "NAME", "admitted-when-back", 1), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Errorf("an annotated pod once the manager is back: %v\n%s", err, out)
	}
}

// waitInjecting waits until the webhook admits an annotated pod (a
// server-side dry run, which runs admission and stores nothing). A manager
// replica Ready is not yet a webhook reached: kube-proxy programs the
// Service's new endpoint a moment later, and until then pods are refused
// ("connection refused"), as they would be for a user. It logs the lag.
func waitInjecting(t *testing.T, ns string) {
	t.Helper()
	pod := `apiVersion: v1
kind: Pod
metadata: {name: webhook-probe, annotations: {zmqauth.io/server: echo}}
spec:
  ` + strings.ReplaceAll(podSpec(zmq4RepServer("tcp://127.0.0.1:15556"), "Never"), "\n      ", "\n  ")
	began := time.Now()
	var last string
	waitFor(t, time.Minute, "the webhook to admit an annotated pod", func(context.Context) (bool, error) {
		out, err := kubectl(t, pod, "apply", "--dry-run=server", "-n", ns, "-f", "-")
		if err != nil {
			last = out
		}
		return err == nil, nil
	})
	if lag := time.Since(began); lag > time.Second {
		t.Logf("the webhook admitted pods %s after the manager was available (until then: %s)", lag.Round(100*time.Millisecond), strings.TrimSpace(last))
	}
}

// TestAPIServerOutage: with the kube-apiserver stopped the sidecars keep
// serving on the keys and allowlists they hold, new sessions included; once
// it is back, nothing was lost and the operator works again (a new client
// is admitted).
func TestAPIServerOutage(t *testing.T) {
	e := needNode(t)
	ns := newNamespace(t, "apiserver-outage")
	server, client := trafficPair(t, ns)
	ctx := context.Background()

	if err := e.StopAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		if err := e.StartAPIServer(ctx); err != nil {
			t.Fatalf("restart the kube-apiserver: %v", err)
		}
	}
	defer func() {
		restart()
		// The manager may have lost its leader lease while the API server
		// was away; later tests need it.
		if err := e.WaitManagerAvailable(ctx, 3*time.Minute); err != nil {
			t.Fatalf("the manager after the API server's restart: %v", err)
		}
		waitInjecting(t, ns)
	}()
	if _, err := e.Clientset.Discovery().ServerVersion(); err == nil {
		t.Fatal("the API server still answers after StopAPIServer")
	}
	// Down for two kubelet syncs at least, so the kubelet's own sync of
	// the pods' mounted keys and allowlist runs without an API server too.
	for time.Since(began) < 2*node.DefaultSyncFrequency {
		waitServing(t, server, "the sidecars to keep serving with the API server down")
	}
	down := time.Since(began)
	restart()
	t.Logf("the kube-apiserver was down %s; the sidecars served new sessions and requests throughout", down.Round(100*time.Millisecond))
	if err := e.WaitManagerAvailable(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	noneLost(t, ns, client, "the API server's restart")
	waitInjecting(t, ns)

	// The operator works again: a new client is keyed, allowlisted and served.
	apply(t, ns, curveClient("late", "echo", "")+"---\n"+
		clientJob("late", "late", zmq4ReqClient("tcp://127.0.0.1:6556", "--count", "5", "--interval", "20ms", "--timeout", "5s")))
	pod := jobDone(t, ns, "late", 3*time.Minute)
	if s := lastStats(t, logs(t, ns, pod.Name, "app")); s.Received != 5 {
		t.Errorf("a client created after the outage: %+v, want 5 of 5 answered", s)
	}
}
