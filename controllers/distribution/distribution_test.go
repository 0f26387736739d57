package distribution_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	at "github.com/zmqauth/zmqauth/controllers/allowlist/allowlisttest"
	"github.com/zmqauth/zmqauth/controllers/distribution"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// TestDistributionEnvtest runs the distribution controllers, with the keys,
// rotation and allowlist controllers, against a real API server: one
// control plane and manager, namespaces per subtest.
func TestDistributionEnvtest(t *testing.T) {
	env := at.Start(t)
	t.Run("ServerKeyAndAuthorized", func(t *testing.T) { t.Parallel(); testServerKeyAndAuthorized(t, env) })
	t.Run("CrossNamespaceGrant", func(t *testing.T) { t.Parallel(); testCrossNamespaceGrant(t, env) })
	t.Run("Publish", func(t *testing.T) { t.Parallel(); testPublish(t, env) })
	t.Run("PublishLeavesForeignConfigMap", func(t *testing.T) { t.Parallel(); testPublishLeavesForeignConfigMap(t, env) })
	t.Run("NewClientStatusWrittenTwice", func(t *testing.T) { t.Parallel(); testNewClientStatusWrittenTwice(t, env) })
	t.Run("NewClientSecretCompleteAtOnce", func(t *testing.T) { t.Parallel(); testNewClientSecretCompleteAtOnce(t, env) })
}

// testNewClientSecretCompleteAtOnce creates a client of a server that has
// its key: the client's Secret is created with the server's key file in it
// (a pod that mounts it at once has everything) and is not written again.
// Then the client names another server instead: the first server's file,
// written by the keys controller at creation, is removed all the same.
func testNewClientSecretCompleteAtOnce(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "complete", nil)
	bus := at.Server(ns, "bus")
	env.Create(t, bus)
	bus = at.WaitKey(t, env, bus)
	cc := at.Client(ns, "collector", "bus")
	isClientSecret := func(ev watch.Event) bool {
		s, ok := ev.Object.(*corev1.Secret)
		return ok && s.Name == cc.Spec.SecretName
	}
	writes := watchWrites(t, env, &corev1.SecretList{}, ns, func() { env.Create(t, cc) }, isClientSecret, isClientSecret)
	for _, ev := range writes {
		if ev.Type != watch.Added {
			continue
		}
		cert, err := serverKeyFile(ev.Object.(*corev1.Secret), ns, "bus")
		if err != nil || cert.PublicKey.String() != bus.Status.PublicKey {
			t.Errorf("the new Secret has no key file of server bus with its key %s: %v", bus.Status.PublicKey, err)
		}
	}
	if len(writes) != 1 {
		t.Errorf("the client's Secret was written %d times (%s), want once", len(writes), eventTypes(writes))
	}
	ctx := context.Background()
	cc = env.WaitClient(t, ns, cc.Name, "authorized at bus", func(c *v1alpha1.CurveClient) bool { return authorizedAt(c, bus) })

	other := at.Server(ns, "other")
	env.Create(t, other)
	other = at.WaitKey(t, env, other)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cc), cc); err != nil {
			return err
		}
		cc.Spec.Servers = []v1alpha1.ServerReference{{Name: "other"}}
		return env.Client.Update(ctx, cc)
	}); err != nil {
		t.Fatal(err)
	}
	at.Eventually(t, "bus's key file replaced by other's", func(ctx context.Context) (bool, error) {
		s, err := secret(ctx, env, ns, cc.Spec.SecretName)
		if err != nil {
			return false, err
		}
		_, stale := s.Data[filecontract.ServerKeyFileName(ns, "bus")]
		cert, err := serverKeyFile(s, ns, "other")
		kp, kerr := secretlayout.ParseKeyPair(s)
		return !stale && err == nil && cert.PublicKey.String() == other.Status.PublicKey &&
			kerr == nil && kp.Public.String() == cc.Status.PublicKey, nil
	})
}

// testNewClientStatusWrittenTwice watches a new client from its creation
// until it is Ready: the keys controller writes its key and KeyReady, the
// distribution controller its authorization and Ready with it, and nothing
// else is written. Status writes are the API server's costliest request
// when thousands of clients arrive; a third write per client (keys
// rewriting Ready after Authorized changed) cost a third more of them.
func testNewClientStatusWrittenTwice(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "writes", nil)
	srv := at.Server(ns, "bus")
	env.Create(t, srv)
	srv = at.WaitKey(t, env, srv)
	modified := func(ev watch.Event) bool { return ev.Type == watch.Modified }
	ready := func(ev watch.Event) bool {
		cc := ev.Object.(*v1alpha1.CurveClient)
		return meta.IsStatusConditionTrue(cc.Status.Conditions, v1alpha1.ConditionReady) && authorizedAt(cc, srv)
	}
	writes := watchWrites(t, env, &v1alpha1.CurveClientList{}, ns, func() { env.Create(t, at.Client(ns, "collector", "bus")) }, modified, ready)
	if len(writes) != 2 {
		var lines []string
		for _, ev := range writes {
			lines = append(lines, conditionSummary(ev.Object.(*v1alpha1.CurveClient)))
		}
		t.Errorf("a new client's status was written %d times, want 2:\n%s", len(writes), strings.Join(lines, "\n"))
	}
}

// watchWrites watches the objects of list's kind in namespace ns while
// create runs and returns the events for which match is true, until 3 s after
// the first one that done accepts too: long enough for writes that should
// not come to show.
func watchWrites(t *testing.T, env *at.Env, list client.ObjectList, ns string, create func(), match, done func(watch.Event) bool) []watch.Event {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), at.Timeout)
	defer cancel()
	w, err := wc.Watch(ctx, list, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	create()
	var got []watch.Event
	var quiet <-chan time.Time
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended; writes so far: %s", eventTypes(got))
			}
			if !match(ev) {
				continue
			}
			got = append(got, ev)
			if quiet == nil && done(ev) {
				quiet = time.After(3 * time.Second)
			}
		case <-quiet:
			return got
		case <-ctx.Done():
			t.Fatalf("not done within %v; writes so far: %s", at.Timeout, eventTypes(got))
		}
	}
}

// eventTypes lists the types of events, for messages.
func eventTypes(evs []watch.Event) string {
	var types []string
	for _, ev := range evs {
		types = append(types, string(ev.Type))
	}
	return strings.Join(types, " ")
}

// conditionSummary lists an object's conditions as type=status, for
// messages.
func conditionSummary(cc *v1alpha1.CurveClient) string {
	var parts []string
	for _, c := range cc.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	return "resourceVersion " + cc.ResourceVersion + ": " + strings.Join(parts, " ")
}

// secret reads a Secret.
func secret(ctx context.Context, env *at.Env, ns, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s)
	return &s, err
}

// serverKeyFile parses the server key file of server srvNS/srvName in a
// client Secret and returns its key.
func serverKeyFile(s *corev1.Secret, srvNS, srvName string) (*keygen.Certificate, error) {
	raw, ok := s.Data[filecontract.ServerKeyFileName(srvNS, srvName)]
	if !ok {
		return nil, fmt.Errorf("no %s", filecontract.ServerKeyFileName(srvNS, srvName))
	}
	return keygen.ParsePublicCertificate(raw)
}

func authorizedAt(cc *v1alpha1.CurveClient, srv *v1alpha1.CurveServer) bool {
	s := at.ServerStatus(cc, srv.Namespace, srv.Name)
	return s != nil && s.Authorized && s.ServerPublicKey == srv.Status.PublicKey && s.Reason == ""
}

func testServerKeyAndAuthorized(t *testing.T, env *at.Env) {
	ns := env.Namespace(t, "dist", nil)
	srv := at.Server(ns, "bus")
	env.Create(t, srv)
	cc := at.Client(ns, "collector", "bus")
	env.Create(t, cc)
	cc2 := at.Client(ns, "reader", "bus", "ghost")
	env.Create(t, cc2)

	srv = at.WaitKey(t, env, srv)
	cc = env.WaitClient(t, ns, cc.Name, "authorized at bus", func(c *v1alpha1.CurveClient) bool {
		return c.Status.PublicKey != "" && authorizedAt(c, srv) &&
			at.ConditionIs(c.Status.Conditions, v1alpha1.ConditionAuthorized, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})
	// The keys controller's status is intact next to ours.
	if !at.ConditionIs(cc.Status.Conditions, v1alpha1.ConditionKeyReady, metav1.ConditionTrue, "") || cc.Status.KeyRevision != 1 {
		t.Errorf("keys controller status clobbered: revision %d, conditions %+v", cc.Status.KeyRevision, cc.Status.Conditions)
	}

	ctx := context.Background()
	s, err := secret(ctx, env, ns, cc.Spec.SecretName)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := serverKeyFile(s, ns, "bus")
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKey.String() != srv.Status.PublicKey || cert.Metadata[filecontract.MetadataIdentity] != ns+"/bus" {
		t.Errorf("server key file holds %s (identity %q), want %s (%s/bus)", cert.PublicKey, cert.Metadata["identity"], srv.Status.PublicKey, ns)
	}
	kp, err := secretlayout.ParseKeyPair(s)
	if err != nil || kp.Public.String() != cc.Status.PublicKey {
		t.Errorf("client key files damaged next to the server key: %v (public %s, status %s)", err, kp.Public, cc.Status.PublicKey)
	}

	// The client's key is on the server's allowlist.
	cm := env.WaitAllowlist(t, ns, "bus", "holds collector", func(cm *corev1.ConfigMap) bool {
		_, ok := cm.Data[filecontract.ClientKeyFileName(ns, cc.Name)]
		return ok
	})
	c, err := keygen.ParsePublicCertificate([]byte(cm.Data[filecontract.ClientKeyFileName(ns, cc.Name)]))
	if err != nil || c.PublicKey.String() != cc.Status.PublicKey || c.Metadata["identity"] != ns+"/collector" || c.Metadata["grant"] != allowlist.GrantClientRef {
		t.Errorf("allowlist file: %v, key %v, metadata %v", err, c, c.Metadata)
	}

	// A server that does not exist yet: ServerNotFound, then authorized
	// once it exists.
	env.WaitClient(t, ns, cc2.Name, "ServerNotFound for ghost", func(c *v1alpha1.CurveClient) bool {
		g := at.ServerStatus(c, ns, "ghost")
		return g != nil && !g.Authorized && g.Reason == v1alpha1.ReasonServerNotFound && strings.Contains(g.Message, "does not exist") &&
			at.ConditionIs(c.Status.Conditions, v1alpha1.ConditionAuthorized, metav1.ConditionFalse, v1alpha1.ReasonServerNotFound)
	})
	ghost := at.Server(ns, "ghost")
	env.Create(t, ghost)
	ghost = at.WaitKey(t, env, ghost)
	cc2 = env.WaitClient(t, ns, cc2.Name, "authorized at both", func(c *v1alpha1.CurveClient) bool {
		return authorizedAt(c, srv) && authorizedAt(c, ghost) &&
			at.ConditionIs(c.Status.Conditions, v1alpha1.ConditionAuthorized, metav1.ConditionTrue, "")
	})
	at.Eventually(t, "both server key files", func(ctx context.Context) (bool, error) {
		s, err := secret(ctx, env, ns, cc2.Spec.SecretName)
		if err != nil {
			return false, err
		}
		a, err1 := serverKeyFile(s, ns, "bus")
		b, err2 := serverKeyFile(s, ns, "ghost")
		return err1 == nil && err2 == nil && a.PublicKey.String() == srv.Status.PublicKey && b.PublicKey.String() == ghost.Status.PublicKey, nil
	})

	// Naming fewer servers removes the file and the status entry.
	// The controllers write its status meanwhile: retry on a stale read.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cc2), cc2); err != nil {
			return err
		}
		cc2.Spec.Servers = cc2.Spec.Servers[:1]
		return env.Client.Update(ctx, cc2)
	}); err != nil {
		t.Fatal(err)
	}
	at.Eventually(t, "ghost's key file gone", func(ctx context.Context) (bool, error) {
		s, err := secret(ctx, env, ns, cc2.Spec.SecretName)
		if err != nil {
			return false, err
		}
		_, stale := s.Data[filecontract.ServerKeyFileName(ns, "ghost")]
		_, kept := s.Data[filecontract.ServerKeyFileName(ns, "bus")]
		_, keyKept := s.Data[filecontract.SecretKeyFile]
		return !stale && kept && keyKept, nil
	})
	env.WaitClient(t, ns, cc2.Name, "only bus in status", func(c *v1alpha1.CurveClient) bool {
		return len(c.Status.Servers) == 1 && authorizedAt(c, srv)
	})

	// A server rotation reaches the client: the new key in its Secret and
	// status.
	old := srv.Status.PublicKey
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"r1"}}}`, v1alpha1.AnnotationRotate)
	if err := env.Client.Patch(ctx, srv, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	srv = env.WaitServer(t, ns, "bus", "rotated", func(s *v1alpha1.CurveServer) bool {
		return s.Status.PublicKey != old && s.Status.PublicKey != ""
	})
	env.WaitClient(t, ns, cc.Name, "given the new server key", func(c *v1alpha1.CurveClient) bool { return authorizedAt(c, srv) })
	at.Eventually(t, "new server key file", func(ctx context.Context) (bool, error) {
		s, err := secret(ctx, env, ns, cc.Spec.SecretName)
		if err != nil {
			return false, err
		}
		c, err := serverKeyFile(s, ns, "bus")
		return err == nil && c.PublicKey.String() == srv.Status.PublicKey, err
	})
}

func testCrossNamespaceGrant(t *testing.T, env *at.Env) {
	label := env.Name("grant")
	srvNS := env.Namespace(t, "srv", nil)
	cliNS := env.Namespace(t, "cli", map[string]string{label: "yes"})
	srv := at.Server(srvNS, "bus")
	env.Create(t, srv)
	cc := at.Client(cliNS, "probe", srvNS+"/bus")
	env.Create(t, cc)
	srv = at.WaitKey(t, env, srv)

	cc = env.WaitClient(t, cliNS, "probe", "NotSelected", func(c *v1alpha1.CurveClient) bool {
		s := at.ServerStatus(c, srvNS, "bus")
		return c.Status.PublicKey != "" && s != nil && !s.Authorized && s.Reason == v1alpha1.ReasonNotSelected &&
			s.ServerPublicKey == srv.Status.PublicKey &&
			at.ConditionIs(c.Status.Conditions, v1alpha1.ConditionAuthorized, metav1.ConditionFalse, v1alpha1.ReasonNotSelected)
	})
	msg := at.ServerStatus(cc, srvNS, "bus").Message
	for _, want := range []string{"another namespace", "ClusterCurveGrant", srvNS + "/bus"} {
		if !strings.Contains(msg, want) {
			t.Errorf("NotSelected message %q does not mention %q", msg, want)
		}
	}
	cm := env.WaitAllowlist(t, srvNS, "bus", "written", func(*corev1.ConfigMap) bool { return true })
	if _, ok := cm.Data[filecontract.ClientKeyFileName(cliNS, "probe")]; ok {
		t.Fatalf("a client in another namespace got in without a grant")
	}
	// The client still gets the server's public key: it is public.
	at.Eventually(t, "server key file", func(ctx context.Context) (bool, error) {
		s, err := secret(ctx, env, cliNS, cc.Spec.SecretName)
		if err != nil {
			return false, err
		}
		c, err := serverKeyFile(s, srvNS, "bus")
		return err == nil && c.PublicKey.String() == srv.Status.PublicKey, err
	})

	grant := &v1alpha1.ClusterCurveGrant{
		ObjectMeta: metav1.ObjectMeta{Name: env.Name("probes")},
		Spec: v1alpha1.ClusterCurveGrantSpec{
			Clients: v1alpha1.GrantClients{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "yes"}}},
			Servers: v1alpha1.GrantServers{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": srvNS}}},
		},
	}
	env.Create(t, grant)
	t.Cleanup(func() { env.Delete(t, grant) })
	cm = env.WaitAllowlist(t, srvNS, "bus", "holds probe", func(cm *corev1.ConfigMap) bool {
		_, ok := cm.Data[filecontract.ClientKeyFileName(cliNS, "probe")]
		return ok
	})
	c, err := keygen.ParsePublicCertificate([]byte(cm.Data[filecontract.ClientKeyFileName(cliNS, "probe")]))
	if err != nil || c.PublicKey.String() != cc.Status.PublicKey || c.Metadata["grant"] != allowlist.ClusterGrant(grant.Name) {
		t.Errorf("allowlist file: %v, metadata %v", err, c)
	}
	var index []allowlist.IndexEntry
	if err := json.Unmarshal([]byte(cm.Data[filecontract.IndexFile]), &index); err != nil {
		t.Fatal(err)
	}
	if len(index) != 1 || index[0].Identity != cliNS+"/probe" || index[0].Grant != allowlist.ClusterGrant(grant.Name) ||
		index[0].Key != cc.Status.PublicKey || index[0].File != filecontract.ClientKeyFileName(cliNS, "probe") {
		t.Errorf("index.json = %+v", index)
	}
	env.WaitClient(t, cliNS, "probe", "authorized", func(c *v1alpha1.CurveClient) bool { return authorizedAt(c, srv) })
	at.Eventually(t, "grant status", func(ctx context.Context) (bool, error) {
		var g v1alpha1.ClusterCurveGrant
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(grant), &g); err != nil {
			return false, err
		}
		return g.Status.MatchedServers == 1 && g.Status.MatchedClients == 1 &&
			at.ConditionIs(g.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, ""), nil
	})

	// Withdrawing the grant takes the client out again.
	env.Delete(t, grant)
	env.WaitAllowlist(t, srvNS, "bus", "probe removed", func(cm *corev1.ConfigMap) bool {
		_, ok := cm.Data[filecontract.ClientKeyFileName(cliNS, "probe")]
		return !ok
	})
	env.WaitClient(t, cliNS, "probe", "NotSelected again", func(c *v1alpha1.CurveClient) bool {
		s := at.ServerStatus(c, srvNS, "bus")
		return s != nil && s.Reason == v1alpha1.ReasonNotSelected
	})
}

func published(ctx context.Context, env *at.Env, ns string, srv *v1alpha1.CurveServer) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: distribution.PublishedConfigMapName(srv.Namespace, srv.Name)}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return &cm, err
}

// waitPublished waits until the server's key is published in ns (want) or
// not.
func waitPublished(t *testing.T, env *at.Env, ns string, srv *v1alpha1.CurveServer, want bool) {
	t.Helper()
	at.Eventually(t, fmt.Sprintf("published in %s = %v", ns, want), func(ctx context.Context) (bool, error) {
		cm, err := published(ctx, env, ns, srv)
		if err != nil || cm == nil {
			return !want && err == nil, err
		}
		if !want {
			return false, nil
		}
		c, err := keygen.ParsePublicCertificate([]byte(cm.Data[filecontract.PublishedCertificateFile]))
		if err != nil {
			return false, err
		}
		return cm.Data[filecontract.PublishedPublicKeyFile] == srv.Status.PublicKey && c.PublicKey.String() == srv.Status.PublicKey &&
			cm.Labels[distribution.LabelPublishedFrom] == srv.Namespace+"."+srv.Name, nil
	})
}

func setNamespaceLabel(t *testing.T, env *at.Env, ns, key string, value *string) {
	t.Helper()
	v := "null"
	if value != nil {
		v = fmt.Sprintf("%q", *value)
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, key, v)
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func testPublish(t *testing.T, env *at.Env) {
	label := env.Name("pub")
	yes := "yes"
	srvNS := env.Namespace(t, "pubsrv", nil)
	ns1 := env.Namespace(t, "pub1", map[string]string{label: yes})
	ns2 := env.Namespace(t, "pub2", nil)
	srv := at.Server(srvNS, "bus")
	srv.Spec.Publish = &v1alpha1.PublishSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: yes}}}
	env.Create(t, srv)
	srv = at.WaitKey(t, env, srv)

	waitPublished(t, env, ns1, srv, true)
	srv = env.WaitServer(t, srvNS, "bus", "Published and finalizer", func(s *v1alpha1.CurveServer) bool {
		return controllerutil.ContainsFinalizer(s, distribution.PublishFinalizer) &&
			at.ConditionIs(s.Status.Conditions, v1alpha1.ConditionPublished, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})
	waitPublished(t, env, ns2, srv, false)

	setNamespaceLabel(t, env, ns2, label, &yes)
	waitPublished(t, env, ns2, srv, true)
	setNamespaceLabel(t, env, ns1, label, nil)
	waitPublished(t, env, ns1, srv, false)

	// Unsetting publish withdraws everything, finalizer and condition too.
	ctx := context.Background()
	patch := []byte(`{"spec":{"publish":null}}`)
	if err := env.Client.Patch(ctx, srv, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, env, ns2, srv, false)
	env.WaitServer(t, srvNS, "bus", "no finalizer, no Published", func(s *v1alpha1.CurveServer) bool {
		return !controllerutil.ContainsFinalizer(s, distribution.PublishFinalizer) &&
			meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionPublished) == nil &&
			at.ConditionIs(s.Status.Conditions, v1alpha1.ConditionKeyReady, metav1.ConditionTrue, "")
	})

	// Publishing again, then deleting the server, removes the ConfigMaps
	// before the server goes.
	patch = []byte(fmt.Sprintf(`{"spec":{"publish":{"namespaceSelector":{"matchLabels":{%q:"yes"}}}}}`, label))
	if err := env.Client.Patch(ctx, srv, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, env, ns2, srv, true)
	env.WaitServer(t, srvNS, "bus", "finalizer back", func(s *v1alpha1.CurveServer) bool {
		return controllerutil.ContainsFinalizer(s, distribution.PublishFinalizer)
	})
	env.Delete(t, srv)
	waitPublished(t, env, ns2, srv, false)
	at.Eventually(t, "server gone", func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(srv), &v1alpha1.CurveServer{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

// testPublishLeavesForeignConfigMap: a ConfigMap of the published name that
// zmqauth did not write is neither overwritten nor, once the namespace is no
// longer selected, deleted; the server's Published condition says why.
func testPublishLeavesForeignConfigMap(t *testing.T, env *at.Env) {
	label := env.Name("pubf")
	yes := "yes"
	srvNS := env.Namespace(t, "pubfsrv", nil)
	ns := env.Namespace(t, "pubf1", map[string]string{label: yes})
	foreign := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: distribution.PublishedConfigMapName(srvNS, "bus")},
		Data:       map[string]string{"foo": "bar"},
	}
	env.Create(t, foreign)
	srv := at.Server(srvNS, "bus")
	srv.Spec.Publish = &v1alpha1.PublishSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: yes}}}
	env.Create(t, srv)
	at.WaitKey(t, env, srv)
	env.WaitServer(t, srvNS, "bus", "Published False naming the foreign ConfigMap", func(s *v1alpha1.CurveServer) bool {
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionPublished)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonPublishFailed &&
			strings.Contains(c.Message, "is not zmqauth's")
	})
	setNamespaceLabel(t, env, ns, label, nil)
	env.WaitServer(t, srvNS, "bus", "Published True once nothing is selected", func(s *v1alpha1.CurveServer) bool {
		return at.ConditionIs(s.Status.Conditions, v1alpha1.ConditionPublished, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	})
	var got corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(foreign), &got); err != nil {
		t.Fatalf("the foreign ConfigMap is gone: %v", err)
	}
	if !maps.Equal(got.Data, foreign.Data) || got.Labels[distribution.LabelPublishedFrom] != "" {
		t.Errorf("the foreign ConfigMap was changed: data %v, labels %v", got.Data, got.Labels)
	}
}
