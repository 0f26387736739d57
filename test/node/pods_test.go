package node_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/internal/node"
	"github.com/zmqauth/zmqauth/internal/promtext"
)

// TestInstallIsHealthy: the manager runs from its image as a Deployment and
// `zmqauth check` is green against the node.
func TestInstallIsHealthy(t *testing.T) {
	e := needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runZmqauth(ctx, e.Kubeconfig, "check")
	if err != nil || !strings.Contains(out, "checks passed") {
		t.Fatalf("zmqauth check: %v\n%s", err, out)
	}
}

// TestInjectedPodsRunUnderRestricted: annotated server and client pods get
// the sidecar as a native sidecar, pass the restricted Pod Security profile
// the API server enforces, and become Ready under the kubelet (startup and
// readiness probes against the mounted keys and allowlist); a pod naming an
// unknown CurveServer is refused with a message naming it.
func TestInjectedPodsRunUnderRestricted(t *testing.T) {
	needNode(t)
	ns := newNamespace(t, "inject")
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556")))

	for _, selector := range []string{"app=echo", "app=caller"} {
		pod := readyPods(t, ns, selector, 1, 2*time.Minute)[0]
		i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == injector.ContainerName })
		if i < 0 {
			t.Fatalf("%s: no %s init container", pod.Name, injector.ContainerName)
		}
		sc := pod.Spec.InitContainers[i]
		if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: the sidecar is not a native sidecar (restartPolicy %v)", pod.Name, sc.RestartPolicy)
		}
		st := pod.Status.InitContainerStatuses
		j := slices.IndexFunc(st, func(s corev1.ContainerStatus) bool { return s.Name == injector.ContainerName })
		if j < 0 || st[j].Started == nil || !*st[j].Started || !st[j].Ready {
			t.Errorf("%s: the sidecar is not started and ready under the kubelet: %+v", pod.Name, st)
		}
		if len(pod.Status.ContainerStatuses) != 1 || !pod.Status.ContainerStatuses[0].Ready {
			t.Errorf("%s: the application is not ready: %+v", pod.Name, pod.Status.ContainerStatuses)
		}
	}

	out, err := kubectl(t, `apiVersion: v1
kind: Pod
metadata: {name: stranger, annotations: {zmqauth.io/server: no-such-server}}
spec:
  `+strings.ReplaceAll(podSpec(zmq4RepServer("tcp://127.0.0.1:15556"), "Never"), "\n      ", "\n  "), "apply", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(out, "no-such-server") {
		t.Fatalf("a pod naming an unknown CurveServer: want a refusal naming it, got err=%v\n%s", err, out)
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), "stranger", metav1.GetOptions{}); err == nil {
		t.Fatal("the refused pod exists")
	}
}

// TestTrafficThroughSidecars: client app -> sidecar -> Service DNS name ->
// sidecar -> server app, for every pair of zmq4 and pyzmq applications; the
// pyzmq server reads the client's namespace/name as User-Id.
func TestTrafficThroughSidecars(t *testing.T) {
	needNode(t)
	ns := newNamespace(t, "traffic")
	apply(t, ns, serverManifests("zmq4-echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		serverManifests("py-echo", 1, pyzmqRepServer("tcp://127.0.0.1:15556")))
	readyPods(t, ns, "app=zmq4-echo", 1, 2*time.Minute)
	readyPods(t, ns, "app=py-echo", 1, 2*time.Minute)

	cases := []struct {
		name, server string
		client       app
		wantUser     bool
	}{
		{"zmq4-to-zmq4", "zmq4-echo", zmq4ReqClient("tcp://127.0.0.1:6556", "--count", "20", "--interval", "20ms", "--timeout", "5s"), false},
		{"zmq4-to-pyzmq", "py-echo", zmq4ReqClient("tcp://127.0.0.1:6556", "--count", "20", "--interval", "20ms", "--timeout", "5s"), true},
		{"pyzmq-to-zmq4", "zmq4-echo", pyzmqReqClient("tcp://127.0.0.1:6556", "--count", "20", "--interval", "20ms", "--timeout", "5s"), false},
		{"pyzmq-to-pyzmq", "py-echo", pyzmqReqClient("tcp://127.0.0.1:6556", "--count", "20", "--interval", "20ms", "--timeout", "5s"), true},
	}
	// The clients' keys first: a new CurveClient is admitted once the
	// server pods' mounted allowlist has its key (the kubelet's sync), and
	// a client started before that waits in its sidecar's handshake; the
	// pyzmq client counts its first request lost when that wait passes its
	// own 5 s timeout (its timer starts at send, before any connection).
	for _, c := range cases {
		apply(t, ns, curveClient(c.name, c.server, ""))
	}
	for _, server := range []string{"zmq4-echo", "py-echo"} {
		pod := readyPods(t, ns, "app="+server, 1, time.Minute)[0]
		waitFor(t, time.Minute, "the server's sidecar to hold both clients' keys", func(context.Context) (bool, error) {
			return promtext.Sum(sidecarMetrics(t, pod), "zmqauth_sidecar_allowlist_keys", nil) == 2, nil
		})
	}
	for _, c := range cases {
		apply(t, ns, clientJob(c.name, c.name, c.client))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := jobDone(t, ns, c.name, 3*time.Minute)
			log := logs(t, ns, pod.Name, "app")
			s := lastStats(t, log)
			if s.Sent != 20 || s.Received != 20 {
				t.Errorf("sent %d, received %d: want 20 and 20; the client's log:\n%s\nits sidecar's log:\n%s", s.Sent, s.Received, log, logs(t, ns, pod.Name, injector.ContainerName))
			}
			if want := ns + "/" + c.name; c.wantUser && !slices.Equal(s.UserIDs, []string{want}) {
				t.Errorf("the pyzmq server read User-Id %v, want [%s]", s.UserIDs, want)
			}
		})
	}
	server := readyPods(t, ns, "app=py-echo", 1, time.Minute)[0]
	if !strings.Contains(logs(t, ns, server.Name, "app"), `"user_id": "`+ns+`/zmq4-to-pyzmq"`) {
		t.Errorf("the pyzmq server did not print the zmq4 client's User-Id:\n%s", logs(t, ns, server.Name, "app"))
	}
}

// TestUngrantedClientRefused: a CurveClient that names a server in another
// namespace, with no grant, is told why (NotSelected), and its sidecar's
// handshakes are refused by the server's sidecar (the client holds the
// server's public key, which is public: the allowlist is what admits), so
// its application's requests get no answer.
func TestUngrantedClientRefused(t *testing.T) {
	needNode(t)
	srv := newNamespace(t, "refuse-server")
	cli := newNamespace(t, "refuse-client")
	apply(t, srv, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556")))
	server := readyPods(t, srv, "app=echo", 1, 2*time.Minute)[0]
	apply(t, cli, curveClient("outsider", "echo", srv)+"---\n"+
		clientJob("outsider", "outsider", zmq4ReqClient("tcp://127.0.0.1:6556", "--count", "3", "--timeout", "1s")))
	pod, _ := jobEnded(t, cli, "outsider", 3*time.Minute)
	if s := lastStats(t, logs(t, cli, pod.Name, "app")); s.Received != 0 {
		t.Errorf("an ungranted client got %d replies", s.Received)
	}
	cc, err := kubectl(t, "", "get", "-n", cli, "curveclient", "outsider", "-o", "jsonpath={.status.conditions[?(@.type=='Authorized')].reason}")
	if err != nil || strings.TrimSpace(cc) != "NotSelected" {
		t.Errorf("the ungranted CurveClient's Authorized reason: %q (%v), want NotSelected", cc, err)
	}
	waitFor(t, time.Minute, "the server's sidecar to refuse the ungranted client's handshakes", func(context.Context) (bool, error) {
		return promtext.Sum(sidecarMetrics(t, server), "zmqauth_sidecar_handshakes_total", map[string]string{"result": "refused", "reason": "not_in_allowlist"}) > 0, nil
	})
	if accepted := promtext.Sum(sidecarMetrics(t, server), "zmqauth_sidecar_handshakes_total", map[string]string{"result": "accepted"}); accepted != 0 {
		t.Errorf("the server's sidecar accepted %v handshakes; nobody was granted", accepted)
	}
}

// TestRevocationClosesLiveSessions: deleting a CurveClient closes its live
// sessions on the server's pod once the kubelet has synced the allowlist
// ConfigMap into the pod (syncFrequency, node.DefaultSyncFrequency here).
// The kubelet resyncs a pod after syncFrequency plus up to half of it again
// (its worker jitter), so the bound is two syncs + 1 s; one run measured
// 8.07 s with a 5 s sync.
func TestRevocationClosesLiveSessions(t *testing.T) {
	needNode(t)
	ns := newNamespace(t, "revoke")
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556", "--timeout", "1s")))
	server := readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]
	client := readyPods(t, ns, "app=caller", 1, 2*time.Minute)[0]
	waitFor(t, time.Minute, "the client's first replies", func(context.Context) (bool, error) {
		s, _ := lastSummary(logs(t, ns, client.Name, "app"))
		return s.Received > 0, nil
	})
	revoked := func() float64 {
		return promtext.Sum(sidecarMetrics(t, server), "zmqauth_sidecar_sessions_revoked_total", nil)
	}
	if r := revoked(); r != 0 {
		t.Fatalf("%v sessions revoked before the revocation", r)
	}
	began := time.Now()
	if out, err := kubectl(t, "", "delete", "-n", ns, "curveclient", "caller"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	limit := 2*node.DefaultSyncFrequency + time.Second
	waitFor(t, 2*time.Minute, "the server's sidecar to close the revoked session", func(context.Context) (bool, error) {
		return revoked() > 0, nil
	})
	took := time.Since(began)
	t.Logf("revoked session closed %s after the CurveClient was deleted (kubelet syncFrequency %s; with the default 1m sync it waits for that sync instead)", took.Round(10*time.Millisecond), node.DefaultSyncFrequency)
	if took > limit {
		t.Errorf("the revoked session closed after %s, want within two kubelet syncs + 1 s (%s)", took.Round(10*time.Millisecond), limit)
	}
}
