package allowlist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	at "github.com/zmqauth/zmqauth/controllers/allowlist/allowlisttest"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	zapallowlist "github.com/zmqauth/zmqauth/zap/allowlist"
)

// TestAllowlistEnvtest runs the allowlist controllers, with the keys,
// rotation and distribution controllers, against a real API server: one
// control plane and manager, namespaces per subtest.
func TestAllowlistEnvtest(t *testing.T) {
	env := at.Start(t)
	t.Run("SelectorsAndRawKeys", func(t *testing.T) { t.Parallel(); testSelectorsAndRawKeys(t, env) })
	t.Run("ClientRotationOverlap", func(t *testing.T) { t.Parallel(); testClientRotationOverlap(t, env) })
	t.Run("LeakedKeyReplacedAtOnce", func(t *testing.T) { t.Parallel(); testLeakedKeyReplacedAtOnce(t, env) })
	t.Run("InvalidGrantSelector", func(t *testing.T) { t.Parallel(); testInvalidGrantSelector(t, env) })
	t.Run("PyZMQ", func(t *testing.T) { t.Parallel(); testPyZMQ(t, env) })
	t.Run("EditedByHand", func(t *testing.T) { t.Parallel(); testEditedByHand(t, env) })
	t.Run("ModeFollowsSpec", func(t *testing.T) { t.Parallel(); testModeFollowsSpec(t, env) })
}

// testEditedByHand: the allowlist ConfigMap holds exactly what the
// controller computes. A file added by someone else is removed, and an
// allowlist whose labels were removed (so the manager's cache no longer
// holds it) gets them back, with its data.
func testEditedByHand(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "edit", nil)
	env.Create(t, at.Server(ns, "bus"))
	env.Create(t, at.Client(ns, "app", "bus"))
	app := filecontract.ClientKeyFileName(ns, "app")
	cm := env.WaitAllowlist(t, ns, "bus", "app", func(cm *corev1.ConfigMap) bool { return has(cm, app) && len(cm.Data) == 3 })
	want := cm.Data[app]

	ctx := context.Background()
	intruder := filecontract.ClientKeyFileName(ns, "intruder")
	patch := fmt.Appendf(nil, `{"data":{%q:%q}}`, intruder, want)
	if err := env.Client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	env.WaitAllowlist(t, ns, "bus", "the added file removed", func(cm *corev1.ConfigMap) bool {
		return hasNone(cm, intruder) && cm.Data[app] == want && len(cm.Data) == 3
	})

	patch = []byte(`{"metadata":{"labels":null},"data":{"` + app + `":null}}`)
	if err := env.Client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	env.WaitAllowlist(t, ns, "bus", "labels and data restored", func(cm *corev1.ConfigMap) bool {
		return cm.Labels[secretlayout.LabelAllowlist] == "bus" && cm.Labels[secretlayout.LabelManagedBy] == secretlayout.ManagedBy &&
			cm.Data[app] == want && len(cm.Data) == 3
	})
}

// testModeFollowsSpec: the allowlist carries the server's mode (enforce
// when unset), and a changed spec.mode changes it, so running sidecars,
// which reload it with the keys, switch from audit to enforce.
func testModeFollowsSpec(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "mode", nil)
	srv := at.Server(ns, "bus")
	env.Create(t, srv)
	// What the sidecar reads from the ConfigMap (zap/allowlist), not only
	// its data key: the two packages name the file each on its own.
	sidecarMode := func(cm *corev1.ConfigMap) string {
		data := make(map[string][]byte, len(cm.Data))
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		al, err := zapallowlist.FromData(data)
		if err != nil || !al.Declared() {
			return ""
		}
		return al.Mode()
	}
	env.WaitAllowlist(t, ns, "bus", "mode enforce by default", func(cm *corev1.ConfigMap) bool {
		return sidecarMode(cm) == string(v1alpha1.ModeEnforce)
	})
	patch := []byte(`{"spec":{"mode":"audit"}}`)
	if err := env.Client.Patch(context.Background(), srv, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	env.WaitAllowlist(t, ns, "bus", "mode audit", func(cm *corev1.ConfigMap) bool {
		return sidecarMode(cm) == string(v1alpha1.ModeAudit)
	})
}

// entry parses one allowlist file and checks its key and metadata.
func checkEntry(t *testing.T, cm *corev1.ConfigMap, file, key, identity, grant string) {
	t.Helper()
	raw, ok := cm.Data[file]
	if !ok {
		t.Errorf("allowlist has no %s (files: %v)", file, keysOf(cm.Data))
		return
	}
	c, err := keygen.ParsePublicCertificate([]byte(raw))
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	if c.PublicKey.String() != key || c.Metadata[filecontract.MetadataIdentity] != identity || c.Metadata[filecontract.MetadataGrant] != grant {
		t.Errorf("%s holds %s %v, want %s identity=%s grant=%s", file, c.PublicKey, c.Metadata, key, identity, grant)
	}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func index(t *testing.T, cm *corev1.ConfigMap) map[string]allowlist.IndexEntry {
	t.Helper()
	entries, err := allowlist.ParseIndex([]byte(cm.Data[filecontract.IndexFile]))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]allowlist.IndexEntry{}
	for _, e := range entries {
		out[e.File] = e
	}
	return out
}

func has(cm *corev1.ConfigMap, files ...string) bool {
	for _, f := range files {
		if _, ok := cm.Data[f]; !ok {
			return false
		}
	}
	return true
}

func hasNone(cm *corev1.ConfigMap, files ...string) bool {
	for _, f := range files {
		if _, ok := cm.Data[f]; ok {
			return false
		}
	}
	return true
}

// gauge returns the value of zmqauth_allowlist_size for a server.
func gauge(t *testing.T, env *at.Env, ns, name string) float64 {
	t.Helper()
	mfs, err := env.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zmqauth_allowlist_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsAre(m, ns, name) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func labelsAre(m *dto.Metric, ns, name string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	return got["namespace"] == ns && got["name"] == name
}

func testSelectorsAndRawKeys(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "sel", nil)
	laptop, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := at.Server(ns, "bus")
	srv.Spec.Clients = &v1alpha1.ServerClients{
		Selector:   &metav1.LabelSelector{MatchLabels: map[string]string{"role": "worker"}},
		PublicKeys: []v1alpha1.NamedPublicKey{{Name: "alice-laptop", Key: v1alpha1.Z85PublicKey(laptop.Public.String())}},
	}
	env.Create(t, srv)
	worker := at.Client(ns, "worker")
	worker.Labels = map[string]string{"role": "worker"}
	env.Create(t, worker)
	other := at.Client(ns, "other")
	env.Create(t, other)
	ref := at.Client(ns, "ref", "bus")
	env.Create(t, ref)
	worker, other, ref = at.WaitKey(t, env, worker), at.WaitKey(t, env, other), at.WaitKey(t, env, ref)

	wf, rf, of := filecontract.ClientKeyFileName(ns, "worker"), filecontract.ClientKeyFileName(ns, "ref"), filecontract.ClientKeyFileName(ns, "other")
	raw := filecontract.RawKeyFileName(laptop.Public)
	cm := env.WaitAllowlist(t, ns, "bus", "worker, ref and the laptop", func(cm *corev1.ConfigMap) bool {
		return has(cm, wf, rf, raw) && len(cm.Data) == 5
	})
	checkEntry(t, cm, wf, worker.Status.PublicKey, ns+"/worker", allowlist.GrantServerSelector)
	checkEntry(t, cm, rf, ref.Status.PublicKey, ns+"/ref", allowlist.GrantClientRef)
	checkEntry(t, cm, raw, laptop.Public.String(), "alice-laptop", allowlist.GrantServerPublicKeys)
	if _, ok := cm.Data[of]; ok {
		t.Errorf("a client nothing admits is on the allowlist")
	}
	ix := index(t, cm)
	if e := ix[raw]; len(ix) != 3 || e.Identity != "alice-laptop" || e.Key != laptop.Public.String() || e.Grant != allowlist.GrantServerPublicKeys {
		t.Errorf("index.json = %+v", ix)
	}
	if ref := metav1.GetControllerOf(cm); ref == nil || ref.Kind != "CurveServer" || ref.Name != "bus" ||
		cm.Labels[secretlayout.LabelAllowlist] != "bus" || cm.Labels[secretlayout.LabelManagedBy] != secretlayout.ManagedBy {
		t.Errorf("allowlist owner %+v labels %v", ref, cm.Labels)
	}
	// The sidecar's loader accepts it, with the same identities.
	al, err := zapallowlist.FromData(toBytes(cm.Data))
	if err != nil || al.Len() != 3 {
		t.Fatalf("zap/allowlist.FromData: %v (len %d)", err, al.Len())
	}
	if e, ok := al.Lookup(mustKey(t, worker.Status.PublicKey)); !ok || e.Identity != ns+"/worker" {
		t.Errorf("sidecar sees worker as %+v", e)
	}
	env.WaitServer(t, ns, "bus", "status", func(s *v1alpha1.CurveServer) bool {
		return s.Status.AuthorizedClients == 3 && s.Status.AllowlistConfigMap == "bus-allowlist" &&
			at.ConditionIs(s.Status.Conditions, v1alpha1.ConditionAllowlistReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled) &&
			at.ConditionIs(s.Status.Conditions, v1alpha1.ConditionKeyReady, metav1.ConditionTrue, "")
	})
	if g := gauge(t, env, ns, "bus"); g != 3 {
		t.Errorf("zmqauth_allowlist_size = %v, want 3", g)
	}

	// Deleting a client removes its key; so does a label that no longer
	// matches.
	env.Delete(t, ref)
	env.WaitAllowlist(t, ns, "bus", "ref removed", func(cm *corev1.ConfigMap) bool { return hasNone(cm, rf) && has(cm, wf) })
	patch := []byte(`{"metadata":{"labels":{"role":null}}}`)
	if err := env.Client.Patch(context.Background(), worker, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	env.WaitAllowlist(t, ns, "bus", "worker removed", func(cm *corev1.ConfigMap) bool { return hasNone(cm, rf, wf) && has(cm, raw) })
	env.WaitServer(t, ns, "bus", "one identity", func(s *v1alpha1.CurveServer) bool { return s.Status.AuthorizedClients == 1 })
}

func toBytes(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := keygen.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k[:]
}

// clientOnAllowlist creates, in a new namespace, the CurveServer "bus" and
// the CurveClient "c" that names it, and waits until the allowlist holds
// the client's key. It returns the namespace and the client with its key.
func clientOnAllowlist(t *testing.T, env *at.Env, prefix string) (string, *v1alpha1.CurveClient) {
	t.Helper()
	ns := env.Namespace(t, prefix, nil)
	env.Create(t, at.Server(ns, "bus"))
	cc := at.Client(ns, "c", "bus")
	env.Create(t, cc)
	cc = at.WaitKey(t, env, cc)
	file := filecontract.ClientKeyFileName(ns, "c")
	env.WaitAllowlist(t, ns, "bus", "the client's key", func(cm *corev1.ConfigMap) bool {
		return strings.Contains(cm.Data[file], cc.Status.PublicKey)
	})
	return ns, cc
}

func testClientRotationOverlap(t *testing.T, env *at.Env) {
	ns, cc := clientOnAllowlist(t, env, "rot")
	cur, prev := filecontract.ClientKeyFileName(ns, "c"), filecontract.PreviousClientKeyFileName(ns, "c")

	old := cc.Status.PublicKey
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"r1"}}}`, v1alpha1.AnnotationRotate)
	if err := env.Client.Patch(context.Background(), cc, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	// The next key is staged first: admitted before the client uses it.
	next := filecontract.NextClientKeyFileName(ns, "c")
	staged := env.WaitClient(t, ns, "c", "next key staged", func(c *v1alpha1.CurveClient) bool {
		return c.Status.NextPublicKey != "" && c.Status.PublicKey == old
	})
	cm := env.WaitAllowlist(t, ns, "bus", "current and next key", func(cm *corev1.ConfigMap) bool { return has(cm, cur, next) })
	checkEntry(t, cm, next, staged.Status.NextPublicKey, ns+"/c", allowlist.GrantClientRef)
	checkEntry(t, cm, cur, old, ns+"/c", allowlist.GrantClientRef)

	cc = env.WaitClient(t, ns, "c", "rotated", func(c *v1alpha1.CurveClient) bool {
		return c.Status.PublicKey != old && c.Status.PreviousPublicKey == old
	})
	if cc.Status.PublicKey != staged.Status.NextPublicKey {
		t.Errorf("switched to %s, not to the staged key %s", cc.Status.PublicKey, staged.Status.NextPublicKey)
	}
	cm = env.WaitAllowlist(t, ns, "bus", "current and previous key", func(cm *corev1.ConfigMap) bool {
		return has(cm, cur, prev) && hasNone(cm, next) && strings.Contains(cm.Data[cur], cc.Status.PublicKey)
	})
	checkEntry(t, cm, cur, cc.Status.PublicKey, ns+"/c", allowlist.GrantClientRef)
	checkEntry(t, cm, prev, old, ns+"/c", allowlist.GrantClientRef)
	ix := index(t, cm)
	until, err := time.Parse(time.RFC3339, ix[prev].Until)
	if err != nil || ix[cur].Until != "" {
		t.Errorf("index until: previous %q (%v), current %q", ix[prev].Until, err, ix[cur].Until)
	} else if d := time.Until(until); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("previous key admitted until %s, want about 24h from now (default overlap)", until)
	}
	env.WaitServer(t, ns, "bus", "one identity, two keys", func(s *v1alpha1.CurveServer) bool { return s.Status.AuthorizedClients == 1 })
	env.WaitClient(t, ns, "c", "authorized with the new key", func(c *v1alpha1.CurveClient) bool {
		s := at.ServerStatus(c, ns, "bus")
		return s != nil && s.Authorized
	})
}

// testLeakedKeyReplacedAtOnce deletes a client's keypair Secret, as the
// README tells a user whose key leaked: a new keypair replaces it and the
// allowlist holds the new key and nothing of the old one, with no overlap.
func testLeakedKeyReplacedAtOnce(t *testing.T, env *at.Env) {
	ns, cc := clientOnAllowlist(t, env, "leak")
	leaked := cc.Status.PublicKey
	file := filecontract.ClientKeyFileName(ns, "c")

	env.Delete(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cc.Spec.SecretName}})
	cc = env.WaitClient(t, ns, "c", "a new key", func(c *v1alpha1.CurveClient) bool {
		return c.Status.PublicKey != "" && c.Status.PublicKey != leaked
	})
	if cc.Status.PreviousPublicKey == leaked || cc.Status.KeyRevision != 2 {
		t.Errorf("after the Secret's deletion: previous key %q, revision %d; want the leaked key gone and revision 2",
			cc.Status.PreviousPublicKey, cc.Status.KeyRevision)
	}
	cm := env.WaitAllowlist(t, ns, "bus", "only the new key", func(cm *corev1.ConfigMap) bool {
		return strings.Contains(cm.Data[file], cc.Status.PublicKey)
	})
	for name, data := range cm.Data {
		if strings.Contains(data, leaked) {
			t.Errorf("allowlist entry %s still holds the leaked key", name)
		}
	}
}

func testInvalidGrantSelector(t *testing.T, env *at.Env) {
	g := &v1alpha1.ClusterCurveGrant{
		ObjectMeta: metav1.ObjectMeta{Name: env.Name("broken")},
		Spec: v1alpha1.ClusterCurveGrantSpec{
			Clients: v1alpha1.GrantClients{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "team", Operator: metav1.LabelSelectorOpIn},
			}}},
			Servers: v1alpha1.GrantServers{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"none": env.Name("x")}}},
		},
	}
	env.Create(t, g)
	t.Cleanup(func() { env.Delete(t, g) })
	at.Eventually(t, "InvalidSelector", func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
			return false, err
		}
		c := findCond(g.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonInvalidSelector &&
			strings.Contains(c.Message, "spec.clients.selector") && g.Status.MatchedServers == 0 && g.Status.ObservedGeneration == g.Generation, nil
	})
	// A cluster-scoped object's Events are in the default namespace.
	at.Eventually(t, "a Warning Event InvalidSelector about the grant", func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return false, err
		}
		for _, ev := range list.Items {
			if ev.Regarding.Kind == "ClusterCurveGrant" && ev.Regarding.Name == g.Name && ev.Reason == v1alpha1.ReasonInvalidSelector &&
				ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Note, "spec.clients.selector") {
				return true, nil
			}
		}
		return false, nil
	})
}

func findCond(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

func testPyZMQ(t *testing.T, env *at.Env) {
	py := testenv.PyZMQ(t)
	ns := env.Namespace(t, "pyzmq", nil)
	env.Create(t, at.Server(ns, "bus"))
	listed := at.Client(ns, "listed", "bus")
	env.Create(t, listed)
	unlisted := at.Client(ns, "unlisted") // a CurveClient nothing admits
	env.Create(t, unlisted)
	listed, unlisted = at.WaitKey(t, env, listed), at.WaitKey(t, env, unlisted)
	cm := env.WaitAllowlist(t, ns, "bus", "listed", func(cm *corev1.ConfigMap) bool {
		return has(cm, filecontract.ClientKeyFileName(ns, "listed"))
	})
	listed = env.WaitClient(t, ns, "listed", "authorized", func(c *v1alpha1.CurveClient) bool {
		s := at.ServerStatus(c, ns, "bus")
		return s != nil && s.Authorized && s.ServerPublicKey != ""
	})

	ctx := context.Background()
	read := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow")
	if err := os.Mkdir(allow, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range cm.Data { // as the kubelet mounts the ConfigMap
		if err := os.WriteFile(filepath.Join(allow, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvSecret := write("server.key_secret", read("bus-keys").Data[filecontract.SecretCertificateFile])
	listedSecret := read(listed.Spec.SecretName)
	srvPublic := write("server.key", listedSecret.Data[filecontract.ServerKeyFileName(ns, "bus")])
	listedKey := write("listed.key_secret", listedSecret.Data[filecontract.SecretCertificateFile])
	unlistedKey := write("unlisted.key_secret", read(unlisted.Spec.SecretName).Data[filecontract.SecretCertificateFile])

	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(pctx, py, filepath.Join("testdata", "allowlist_curve.py"), srvSecret, srvPublic, allow, listedKey, unlistedKey)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyzmq: %v\n%s", err, stderr.String())
	}
	var res struct {
		Allowed         int    `json:"allowed"`
		Request         string `json:"request"`
		Reply           string `json:"reply"`
		UserID          string `json:"user_id"`
		UnlistedServed  bool   `json:"unlisted_served"`
		UnlistedReplied bool   `json:"unlisted_replied"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if res.Allowed != 1 || res.Request != "ping" || res.Reply != "pong" || res.UserID != listed.Status.PublicKey {
		t.Errorf("pyzmq: %+v, want 1 allowed key, ping/pong, User-Id %s", res, listed.Status.PublicKey)
	}
	if res.UnlistedServed || res.UnlistedReplied {
		t.Errorf("a client missing from the allowlist got through (served %v, replied %v)", res.UnlistedServed, res.UnlistedReplied)
	}
}
