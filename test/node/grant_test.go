package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/node"
	"github.com/zmqauth/zmqauth/internal/promtext"
)

// clusterCurveGrant grants the CurveClients of the namespaces labelled
// clientNSLabel (key=value) access to the CurveServers labelled app=server
// in namespace serverNS.
func clusterCurveGrant(name, clientNSLabel, serverNS, server string) string {
	k, v, _ := strings.Cut(clientNSLabel, "=")
	return fmt.Sprintf(`apiVersion: zmqauth.io/v1alpha1
kind: ClusterCurveGrant
metadata: {name: %[1]s}
spec:
  clients:
    namespaceSelector: {matchLabels: {%[2]s: %[3]s}}
  servers:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %[4]s}}
    selector: {matchLabels: {app: %[5]s}}
`, name, k, v, serverNS, server)
}

// TestClusterCurveGrantAdmitsOtherNamespace: a ClusterCurveGrant that
// selects a CurveClient by its namespace's label lets it reach a
// CurveServer in another namespace: its CurveClient is Authorized, the
// server's sidecar loads its key, and the pyzmq server answers it and reads
// its namespace/name as User-Id. Deleting the grant closes the live session
// at the server's sidecar within two kubelet syncs + 1 s; from then on the
// client's new handshakes are refused by the server's sidecar
// (not_in_allowlist: the client's Secret and sidecar still hold the
// server's key, so it does reach the handshake), the client's sidecar
// retries for most of its handshake timeout and then closes the
// application's connection (upstream_error), and the application gets no
// replies; the CurveClient's Authorized condition turns False with reason
// NotSelected.
func TestClusterCurveGrantAdmitsOtherNamespace(t *testing.T) {
	needNode(t)
	c := zmqauthClient(t)
	const nsLabel = "e2e.zmqauth.io/grant=clients"
	srv := newNamespace(t, "grant-server")
	cli := newNamespace(t, "grant-client", nsLabel)
	grant := "e2e-grant-client-to-echo"
	if out, err := kubectl(t, clusterCurveGrant(grant, nsLabel, srv, "echo"), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply ClusterCurveGrant: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &zmqauthv1.ClusterCurveGrant{ObjectMeta: metav1.ObjectMeta{Name: grant}})
	})
	apply(t, srv, serverManifests("echo", 1, pyzmqRepServer("tcp://127.0.0.1:15556")))
	server := readyPods(t, srv, "app=echo", 1, 2*time.Minute)[0]

	// The CurveClient first, so that its pod starts once the server's pod
	// admits it (a req-client refused at its first connection exits).
	apply(t, cli, curveClient("caller", "echo", srv))
	cond := waitAuthorized(t, c, cli, "caller", metav1.ConditionTrue, time.Minute)
	t.Logf("CurveClient %s/caller Authorized=True (%s)", cli, cond.Reason)
	waitFor(t, time.Minute, "the grant's status to count its server and client", func(ctx context.Context) (bool, error) {
		var g zmqauthv1.ClusterCurveGrant
		if err := c.Get(ctx, types.NamespacedName{Name: grant}, &g); err != nil {
			return false, err
		}
		return g.Status.MatchedServers == 1 && g.Status.MatchedClients == 1 &&
			meta.IsStatusConditionTrue(g.Status.Conditions, zmqauthv1.ConditionReady), nil
	})
	waitFor(t, 2*node.DefaultSyncFrequency+30*time.Second, "the server's sidecar to load the granted key", func(context.Context) (bool, error) {
		return sidecarMetric(t, server, mAllowlist, nil) >= 1, nil
	})

	apply(t, cli, clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556", "--timeout", "1s")))
	client := readyPods(t, cli, "app=caller", 1, 2*time.Minute)[0]
	user := cli + "/caller"
	waitFor(t, time.Minute, "replies that the server read as from "+user, func(context.Context) (bool, error) {
		s, _ := lastSummary(logs(t, cli, client.Name, "app"))
		return s.Received > 0 && slices.Contains(s.UserIDs, user), nil
	})
	m := sidecarMetrics(t, server)
	accepted0 := promtext.Sum(m, mHandshakes, map[string]string{"result": "accepted"})
	refused0 := promtext.Sum(m, mHandshakes, map[string]string{"result": "refused"})
	if got := promtext.Sum(m, mSessions, nil); got != 1 {
		t.Errorf("the server's sidecar has %v sessions, want the client's 1", got)
	}
	if got := promtext.Sum(m, mRevoked, nil); got != 0 {
		t.Fatalf("%v sessions revoked before the grant was removed", got)
	}

	began := time.Now()
	if err := c.Delete(context.Background(), &zmqauthv1.ClusterCurveGrant{ObjectMeta: metav1.ObjectMeta{Name: grant}}); err != nil {
		t.Fatalf("delete the ClusterCurveGrant: %v", err)
	}
	waitFor(t, time.Minute, "the server's sidecar to close the session the grant allowed", func(context.Context) (bool, error) {
		return sidecarMetric(t, server, mRevoked, nil) > 0, nil
	})
	revokedAt := time.Now()
	took := revokedAt.Sub(began)
	t.Logf("the granted session closed %s after the ClusterCurveGrant was deleted", took.Round(10*time.Millisecond))
	if limit := 2*node.DefaultSyncFrequency + time.Second; took > limit {
		t.Errorf("the session closed after %s, want within two kubelet syncs + 1 s (%s)", took.Round(10*time.Millisecond), limit)
	}
	relayedIn := sidecarMetric(t, server, mRelayed, map[string]string{"direction": "in"})
	if got := sidecarMetric(t, server, mAllowlist, nil); got != 0 {
		t.Errorf("the server's sidecar holds %v allowlisted keys after the grant went, want 0", got)
	}

	cond = waitAuthorized(t, c, cli, "caller", metav1.ConditionFalse, time.Minute)
	if cond.Reason != zmqauthv1.ReasonNotSelected {
		t.Errorf("the CurveClient's Authorized reason after the grant went: %s (%s), want %s", cond.Reason, cond.Message, zmqauthv1.ReasonNotSelected)
	}
	t.Logf("Authorized=False %s: %s", cond.Reason, cond.Message)

	// The client keeps trying: its sidecar still has the server's key, so
	// each attempt is a CURVE handshake the server's sidecar refuses.
	waitFor(t, time.Minute, "the server's sidecar to refuse the client's new handshakes", func(context.Context) (bool, error) {
		return sidecarMetric(t, server, mHandshakes, map[string]string{"result": "refused", "reason": "not_in_allowlist"}) >= refused0+2, nil
	})
	refusedAt := time.Now()
	m = sidecarMetrics(t, server)
	if got := promtext.Sum(m, mHandshakes, map[string]string{"result": "accepted"}); got != accepted0 {
		t.Errorf("the server's sidecar accepted %v handshakes after the grant went", got-accepted0)
	}
	if got := promtext.Sum(m, mRelayed, map[string]string{"direction": "in"}); got != relayedIn {
		t.Errorf("the server's sidecar relayed %v messages to the application after the session was revoked", got-relayedIn)
	}
	if got := promtext.Sum(m, mSessions, nil); got != 0 {
		t.Errorf("the server's sidecar has %v sessions after the grant went", got)
	}

	// What the client's side shows: the server key is still in its Secret
	// and in force in its sidecar, whose dials fail at the server.
	sec, err := env.Clientset.CoreV1().Secrets(cli).Get(context.Background(), "caller-curve", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filecontract.ServerKeyFileName(srv, "echo")
	_, held := sec.Data[keyFile]
	t.Logf("after the grant went, the client's Secret holds %s: %v", keyFile, held)
	if !held {
		t.Errorf("the client's Secret no longer holds %s; the refusals above came from elsewhere", keyFile)
	}
	// Its sidecar keeps the server key in force (no reload error) and
	// retries the refused handshake for most of its 10 s handshake
	// timeout, then gives up and closes the application's connection.
	client = podNow(t, cli, client.Name)
	waitFor(t, 30*time.Second, "the client's sidecar to give up on the refused server", func(context.Context) (bool, error) {
		return sidecarMetric(t, client, mHandshakes, map[string]string{"result": "failed", "reason": "upstream_error"}) >= 1, nil
	})
	gaveUpAt := time.Now()
	cm := sidecarMetrics(t, client)
	if got := promtext.Sum(cm, mReloadErrs, nil); got != 0 {
		t.Errorf("the client's sidecar counted %v reload errors", got)
	}
	if strings.Contains(sidecarLog(t, client), "server key not reloaded") {
		t.Errorf("the client's sidecar lost its server key:\n%s", sidecarLog(t, client))
	}
	t.Logf("the client's sidecar gave up %s after the refusals began: %v handshakes failed (upstream_error), %v sessions; the server's sidecar refused %v handshakes since the revocation",
		gaveUpAt.Sub(refusedAt).Round(100*time.Millisecond), promtext.Sum(cm, mHandshakes, map[string]string{"result": "failed", "reason": "upstream_error"}),
		promtext.Sum(cm, mSessions, nil), sidecarMetric(t, server, mHandshakes, map[string]string{"result": "refused"})-refused0)

	// What the application does then is the example's own choice:
	// req-client exits when a connection fails at its handshake (zmq4's
	// Dial does not retry that), and the kubelet restarts it. Logged, not
	// asserted.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if p := podNow(t, cli, client.Name); restartCount(t, &p, "app") > 0 {
			t.Logf("the client's application exited %s after its sidecar gave up and was restarted: %s",
				time.Since(gaveUpAt).Round(100*time.Millisecond), lastError(t, cli, client.Name))
			break
		}
	}

	// And what its user sees: no reply after the revocation, in any
	// instance of the application.
	noRepliesAfter(t, cli, client, revokedAt, gaveUpAt)
}

// noRepliesAfter checks that the req-client of pod got no reply after
// since, reading the summary lines it printed up to until, in its current
// instance and, when the kubelet restarted it, the previous one.
func noRepliesAfter(t *testing.T, ns string, pod corev1.Pod, since, until time.Time) {
	t.Helper()
	waitFor(t, 30*time.Second, "the client's summary lines past the refusals", func(context.Context) (bool, error) {
		p := podNow(t, ns, pod.Name)
		if st, _ := containerStatus(&p, "app"); st.State.Running == nil {
			return true, nil // exited: its log is complete
		}
		s := reqSummaries(t, ns, pod.Name)
		return len(s) > 0 && s[len(s)-1].at.After(until), nil
	})
	p := podNow(t, ns, pod.Name)
	n := restartCount(t, &p, "app")
	instances := [][]timedStats{reqSummaries(t, ns, pod.Name)}
	if n > 0 {
		t.Logf("the client's application was restarted %d times; its previous instance is checked too", n)
		var prev []timedStats
		for _, l := range timedLogs(t, ns, pod.Name, "app", true) {
			if s, ok := lastSummary(l.text); ok {
				prev = append(prev, timedStats{l.at, s})
			}
		}
		instances = append(instances, prev)
	}
	for _, lines := range instances {
		base, seen := 0, false
		for _, l := range lines {
			if !l.at.After(since) {
				continue
			}
			if !seen {
				base, seen = l.Received, true
				continue
			}
			if l.Received != base {
				t.Errorf("the client got %d replies after the revocation (summary at %s: %+v)", l.Received-base, l.at.Format(time.RFC3339Nano), l.clientStats)
				return
			}
		}
	}
	cur := instances[0]
	t.Logf("the client's last summary: %+v", cur[len(cur)-1].clientStats)
}
