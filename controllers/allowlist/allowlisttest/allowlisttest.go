// Package allowlisttest runs zmqauth's key, rotation, allowlist and
// distribution controllers together in one manager against a real
// kube-apiserver and etcd (controller-runtime's envtest), for the tests of
// the allowlist and distribution packages: one control plane and one
// cluster-wide manager per test package, one or more namespaces per test.
package allowlisttest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/distribution"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/keys/keystest"
	"github.com/zmqauth/zmqauth/controllers/rotation"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

// Timeout bounds every wait for the controllers.
const Timeout = 30 * time.Second

// PropagationDelay is how long a rotation stages the next key before
// switching to it in these tests: long enough to observe the staged key on
// allowlists, short enough to keep the tests quick.
const PropagationDelay = 3 * time.Second

// Env is a control plane with one manager running every controller the
// allowlist and distribution packages need.
type Env struct {
	*keystest.Env
	// Registry holds the manager's metrics.
	Registry *prometheus.Registry
	seq      atomic.Int64
	id       string
}

// Start starts the control plane and the manager (keys and rotation
// controllers of both kinds, allowlist, ClusterCurveGrant, distribution and
// publish controllers, the production cache options), stopped when t ends.
func Start(t *testing.T) *Env {
	t.Helper()
	if os.Getenv("ZMQAUTH_TEST_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr)))
	}
	kenv := keystest.Start(t)
	mgr, err := ctrl.NewManager(kenv.Config, ctrl.Options{
		Scheme:                  kenv.Scheme,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		Cache:                   controllers.CacheOptions(),
		Controller:              config.Controller{SkipNameValidation: ptr.To(true)},
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
	})
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	reg := prometheus.NewRegistry()
	rec := mgr.GetEventRecorder(controllers.EventRecorderName)
	km, err := keys.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := rotation.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		kr := &keys.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Clock: clock.RealClock{}, Kind: kind, Metrics: km, SecretExtras: distribution.ServerKeyFiles}
		if err := kr.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
		rr := &rotation.Reconciler{Client: mgr.GetClient(), Recorder: rec, Clock: clock.RealClock{}, Kind: kind, Metrics: rm, PropagationDelay: PropagationDelay}
		if err := rr.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	if err := allowlist.Setup(mgr, reg, rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := distribution.Setup(mgr, reg, rec, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("manager did not stop within 30s")
		}
	})
	e := &Env{Env: kenv, Registry: reg, id: fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000)}
	t.Cleanup(func() { e.logErrors(t) })
	return e
}

// logErrors logs the reconcile errors counted while the tests ran.
func (e *Env) logErrors(t *testing.T) {
	mfs, err := e.Registry.Gather()
	if err != nil {
		t.Errorf("gather metrics: %v", err)
		return
	}
	for _, mf := range mfs {
		if mf.GetName() != "zmqauth_reconcile_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				t.Logf("reconcile errors of controller %s: %v", l.GetValue(), m.GetCounter().GetValue())
			}
		}
	}
}

// Name returns a name unique in this environment, from prefix.
func (e *Env) Name(prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, e.id, e.seq.Add(1))
}

// Namespace creates a fresh namespace with the given labels.
func (e *Env) Namespace(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	name := e.Name(strings.ToLower(prefix))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// Create creates obj, failing the test on error.
func (e *Env) Create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := e.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// Delete deletes obj, failing the test on an error other than NotFound.
func (e *Env) Delete(t *testing.T, obj client.Object) {
	t.Helper()
	if err := client.IgnoreNotFound(e.Client.Delete(context.Background(), obj)); err != nil {
		t.Fatalf("delete %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// Server returns a CurveServer with Secret "<name>-keys".
func Server(ns, name string) *v1alpha1.CurveServer {
	return &v1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.CurveServerSpec{SecretName: name + "-keys"},
	}
}

// Client returns a CurveClient with Secret "<name>-keys" naming servers
// ("name" or "namespace/name").
func Client(ns, name string, servers ...string) *v1alpha1.CurveClient {
	cc := &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.CurveClientSpec{SecretName: name + "-keys"},
	}
	for _, s := range servers {
		ref := v1alpha1.ServerReference{Name: s}
		if sns, sname, ok := strings.Cut(s, "/"); ok {
			ref = v1alpha1.ServerReference{Namespace: sns, Name: sname}
		}
		cc.Spec.Servers = append(cc.Spec.Servers, ref)
	}
	return cc
}

// Eventually polls cond until it holds or Timeout passes.
func Eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	keystest.Eventually(t, Timeout, what, cond)
}

// WaitKey waits until a CurveServer or CurveClient has a public key and
// returns the fresh object.
func WaitKey[T client.Object](t *testing.T, e *Env, obj T) T {
	t.Helper()
	Eventually(t, "public key of "+obj.GetName(), func(ctx context.Context) (bool, error) {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		switch o := any(obj).(type) {
		case *v1alpha1.CurveServer:
			return o.Status.PublicKey != "", nil
		case *v1alpha1.CurveClient:
			return o.Status.PublicKey != "", nil
		}
		return false, fmt.Errorf("unexpected kind %T", obj)
	})
	return obj
}

// Allowlist returns the allowlist ConfigMap of the server ns/name, or nil.
func (e *Env) Allowlist(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: secretlayout.AllowlistConfigMapName(name)}, &cm)
	if err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return &cm, nil
}

// WaitAllowlist waits until the allowlist of the server ns/name satisfies
// cond and returns it.
func (e *Env) WaitAllowlist(t *testing.T, ns, name, what string, cond func(cm *corev1.ConfigMap) bool) *corev1.ConfigMap {
	t.Helper()
	var got *corev1.ConfigMap
	Eventually(t, "allowlist of "+ns+"/"+name+": "+what, func(ctx context.Context) (bool, error) {
		cm, err := e.Allowlist(ctx, ns, name)
		if err != nil || cm == nil {
			return false, err
		}
		got = cm
		return cond(cm), nil
	})
	return got
}

// WaitClient waits until a CurveClient satisfies cond and returns it.
func (e *Env) WaitClient(t *testing.T, ns, name, what string, cond func(cc *v1alpha1.CurveClient) bool) *v1alpha1.CurveClient {
	t.Helper()
	var cc v1alpha1.CurveClient
	Eventually(t, "CurveClient "+ns+"/"+name+": "+what, func(ctx context.Context) (bool, error) {
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cc); err != nil {
			return false, err
		}
		return cond(&cc), nil
	})
	return &cc
}

// WaitServer waits until a CurveServer satisfies cond and returns it.
func (e *Env) WaitServer(t *testing.T, ns, name, what string, cond func(srv *v1alpha1.CurveServer) bool) *v1alpha1.CurveServer {
	t.Helper()
	var srv v1alpha1.CurveServer
	Eventually(t, "CurveServer "+ns+"/"+name+": "+what, func(ctx context.Context) (bool, error) {
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &srv); err != nil {
			return false, err
		}
		return cond(&srv), nil
	})
	return &srv
}

// ConditionIs reports whether conds holds a condition of type t with the
// given status (and reason, when not empty).
func ConditionIs(conds []metav1.Condition, t string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(conds, t)
	return c != nil && c.Status == status && (reason == "" || c.Reason == reason)
}

// ServerStatus returns the status.servers entry of a client for the server
// ns/name, or nil.
func ServerStatus(cc *v1alpha1.CurveClient, ns, name string) *v1alpha1.ServerAuthorization {
	for i := range cc.Status.Servers {
		if s := &cc.Status.Servers[i]; s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}
