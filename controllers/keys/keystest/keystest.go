// Package keystest runs the key and rotation controllers against a real
// kube-apiserver and etcd (controller-runtime's envtest) for tests: one
// control plane per test package, one namespace and one manager per test.
package keystest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/rotation"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

// Env is a running control plane with zmqauth's CRDs installed.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is an uncached client, for the test's own reads and writes.
	Client client.Client
	// Scheme knows the built-in kinds and zmqauth's.
	Scheme *runtime.Scheme
	env    *envtest.Environment
	seq    atomic.Int64
}

// Start starts the control plane (skipping the test when it is not built)
// and stops it when t ends.
func Start(t *testing.T) *Env {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: testenv.KubeAssets(t),
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(t), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}
}

// Kubeconfig writes a kubeconfig file for an administrator of the control
// plane and returns its path.
func (e *Env) Kubeconfig(t *testing.T) string {
	t.Helper()
	user, err := e.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("add user: %v", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Namespace creates a fresh namespace for one test.
func (e *Env) Namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), e.seq.Add(1))
	if len(name) > 63 {
		name = fmt.Sprintf("t-%d-%s", e.seq.Load(), name[len(name)-50:])
		name = strings.Trim(name, "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// Manager is a running controller-runtime manager with the keys and
// rotation reconcilers of both kinds.
type Manager struct {
	// Manager is the manager itself.
	ctrl.Manager
	// Registry holds this manager's metrics.
	Registry *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
}

// StartManager starts a manager watching only namespace, with the
// production cache restriction on Secrets, the given clock (nil: real) and
// its own metrics registry. It is stopped when t ends, if not before.
func (e *Env) StartManager(t *testing.T, namespace string, clk clock.PassiveClock) *Manager {
	t.Helper()
	return e.StartManagerWithDelay(t, namespace, clk, 0)
}

// StartManagerWithDelay is StartManager with a rotation propagation delay:
// rotations stage the next key and switch to it after delay.
func (e *Env) StartManagerWithDelay(t *testing.T, namespace string, clk clock.PassiveClock, delay time.Duration) *Manager {
	t.Helper()
	if clk == nil {
		clk = clock.RealClock{}
	}
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:     e.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cacheOpts,
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		// A stopped manager must let go at once for the restart tests.
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
	})
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	reg := prometheus.NewRegistry()
	km, err := keys.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := rotation.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec := mgr.GetEventRecorder(controllers.EventRecorderName)
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		kr := &keys.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Clock: clk, Kind: kind, Metrics: km}
		if err := kr.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
		rr := &rotation.Reconciler{Client: mgr.GetClient(), Recorder: rec, Clock: clk, Kind: kind, Metrics: rm, PropagationDelay: delay}
		if err := rr.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{Manager: mgr, Registry: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	t.Cleanup(func() { m.Stop(t) })
	return m
}

// Stop stops the manager and waits until it has stopped. It may be called
// more than once.
func (m *Manager) Stop(t *testing.T) {
	t.Helper()
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("manager: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("manager did not stop within 30s")
	}
}

// Eventually polls cond every 50ms until it returns true or timeout passes,
// then fails the test with the last error or what.
func Eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		if last != nil {
			t.Fatalf("%s: not within %s: %v", what, timeout, last)
		}
		t.Fatalf("%s: not within %s", what, timeout)
	}
}

// Events returns the events.k8s.io Events about the object namespace/name
// with the given reason.
func (e *Env) Events(ctx context.Context, namespace, name, reason string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := e.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Name == name && ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out, nil
}

// WaitEvent waits for an Event with reason about namespace/name and returns
// it.
func (e *Env) WaitEvent(t *testing.T, namespace, name, reason string) eventsv1.Event {
	t.Helper()
	var got eventsv1.Event
	Eventually(t, 30*time.Second, "Event "+reason+" about "+name, func(ctx context.Context) (bool, error) {
		evs, err := e.Events(ctx, namespace, name, reason)
		if err != nil || len(evs) == 0 {
			return false, err
		}
		got = evs[len(evs)-1]
		return true, nil
	})
	return got
}

// Poke changes a test annotation of obj, so every controller watching it
// reconciles it now (e.g. after a fake clock step).
func (e *Env) Poke(t *testing.T, obj client.Object) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.zmqauth.io/poke":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if err := e.Client.Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatalf("poke %s: %v", obj.GetName(), err)
	}
}
