package e2e

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/demo"
	"github.com/zmqauth/zmqauth/zap/metrics"
)

// TestClusterGrantLetsOtherNamespaceIn runs a client whose CurveServer is
// in another namespace and selected by nothing: its status says
// NotSelected and its application is refused. A ClusterCurveGrant that
// selects the client's namespace then lets it in: the same sidecar serves a
// new application, which the server sees as the client's identity.
func TestClusterGrantLetsOtherNamespaceIn(t *testing.T) {
	w := newWorld(t, 2*time.Minute, demo.ManagerOptions{})
	const srvNS, cliNS = "telemetry", "analytics"
	w.namespace(srvNS, nil)
	w.namespace(cliNS, map[string]string{"team": "analytics"})
	w.server(srvNS, "bus")
	w.client(cliNS, "collector", srvNS, "bus")
	w.waitServerKey(srvNS, "bus")

	// Refused, and the status says why.
	w.poll(30*time.Second, "the client's status to say NotSelected", func() (bool, error) {
		cc, err := w.getClient(cliNS, "collector")
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(cc.Status.Conditions, zmqauthv1.ConditionAuthorized)
		return cc.Status.PublicKey != "" && c != nil && c.Status == metav1.ConditionFalse &&
			c.Reason == zmqauthv1.ReasonNotSelected && len(cc.Status.Servers) == 1, nil
	})
	cc, err := w.getClient(cliNS, "collector")
	if err != nil {
		t.Fatal(err)
	}
	entry := cc.Status.Servers[0]
	if entry.Authorized || entry.Reason != zmqauthv1.ReasonNotSelected || entry.Message == "" {
		t.Errorf("status.servers[0] = %+v, want not authorized, reason NotSelected with a message", entry)
	}
	t.Logf("before the grant: Authorized=False (NotSelected): %s", entry.Message)
	if ready := meta.FindStatusCondition(cc.Status.Conditions, zmqauthv1.ConditionReady); ready == nil || ready.Status != metav1.ConditionFalse {
		t.Errorf("Ready condition %+v, want False", ready)
	}

	srv := w.startServerPod(srvNS, "bus")
	cli := w.startClientPod(cliNS, "collector", srv)
	refused := map[string]string{"result": metrics.ResultRefused, "reason": metrics.ReasonNotInAllowlist}
	got, err := w.rig.RunClient(w.ctx, cli.Addr, "--count", "1", "--timeout-ms", "1500")
	if err != nil {
		t.Fatal(err)
	}
	if got.Received != 0 {
		t.Fatalf("the unselected client was served before any grant: %+v", got)
	}
	if v := w.metric(srv.Admin, handshakesMetric, refused); v < 1 {
		t.Errorf("inbound sidecar counted %v handshakes refused as not_in_allowlist, want at least 1", v)
	}

	grant := &zmqauthv1.ClusterCurveGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "analytics-reads-telemetry"},
		Spec: zmqauthv1.ClusterCurveGrantSpec{
			Clients: zmqauthv1.GrantClients{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}}},
			Servers: zmqauthv1.GrantServers{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "telemetry"}}},
		},
	}
	granted := time.Now()
	if err := w.rig.Kube.Create(w.ctx, grant); err != nil {
		t.Fatalf("create ClusterCurveGrant: %v", err)
	}
	cc = w.waitAuthorized(cliNS, "collector", 30*time.Second)
	if e := cc.Status.Servers[0]; !e.Authorized || e.Reason != "" {
		t.Errorf("after the grant status.servers[0] = %+v, want authorized with no reason", e)
	}
	// The sidecar admits the key once its mounted allowlist has it; a new
	// application is then served, as the client's identity.
	var served demo.ClientSummary
	w.poll(30*time.Second, "a new application through the client's sidecar served", func() (bool, error) {
		var err error
		served, err = w.rig.RunClient(w.ctx, cli.Addr, "--count", "3", "--timeout-ms", "1500")
		return served.Received == 3, err
	})
	t.Logf("served %s after the grant was created: %+v", time.Since(granted).Round(time.Millisecond), served)
	if want := cliNS + "/collector"; len(served.UserIDs) != 1 || served.UserIDs[0] != want {
		t.Errorf("the server application saw User-Id %v, want [%s]", served.UserIDs, want)
	}
	w.poll(30*time.Second, "the grant's status Ready", func() (bool, error) {
		var g zmqauthv1.ClusterCurveGrant
		if err := w.rig.Kube.Get(w.ctx, clientKey("", grant.Name), &g); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(g.Status.Conditions, zmqauthv1.ConditionReady) &&
			g.Status.MatchedServers == 1 && g.Status.MatchedClients == 1, nil
	})
}
