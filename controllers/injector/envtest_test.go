package injector_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

const (
	timeout      = 30 * time.Second
	sidecarImage = "registry.example/zmqauth:test"
)

// env is the control plane shared by the subtests of TestInjector.
type env struct {
	env    *envtest.Environment
	client client.Client
	scheme *runtime.Scheme
	nsSeq  atomic.Int32
	base   injector.Options
}

// opts returns the injector options of the main manager.
func (e *env) opts() injector.Options { return e.base }

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }

// TestInjector runs the injector webhook behind a real API server: envtest
// installs config/webhook (the generated configuration, with its selectors,
// matchConditions and failure policy) pointed at a manager in this process.
func TestInjector(t *testing.T) {
	logs := &testWriter{t: t}
	t.Cleanup(func() { logs.done.Store(true) }) // runs last
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logs)))
	root := testenv.RepoRoot(t)
	e := &env{env: &envtest.Environment{
		BinaryAssetsDirectory: testenv.KubeAssets(t),
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}},
	}}
	cfg, err := e.env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := e.env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	e.scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, zmqauthv1.AddToScheme} {
		if err := add(e.scheme); err != nil {
			t.Fatal(err)
		}
	}
	if e.client, err = client.New(cfg, client.Options{Scheme: e.scheme}); err != nil {
		t.Fatal(err)
	}

	wio := e.env.WebhookInstallOptions
	opts := injector.DefaultOptions()
	opts.SidecarImage = sidecarImage
	opts.CertRotation = false // envtest made the certificate and caBundle
	opts.CertDir = wio.LocalServingCertDir
	opts.WebhookHost = wio.LocalServingHost
	opts.WebhookPort = wio.LocalServingPort
	e.base = opts
	stop := e.startManager(t, cfg, opts)
	waitServing(t, net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)))

	t.Run("RestrictedIsEnforced", e.testRestrictedEnforced)
	t.Run("ServerAndClient", e.testServerAndClient)
	t.Run("KeepsThePodsFSGroup", e.testKeepsFSGroup)
	t.Run("InjectedTwiceIsUnchanged", e.testTwice)
	t.Run("UnknownNamesAreRefused", e.testUnknown)
	t.Run("PortClashIsRefused", e.testPortClash)
	t.Run("ConflictIsRefused", e.testConflict)
	t.Run("NoRoutesNoSidecar", e.testNoRoutes)
	t.Run("UnannotatedPodUntouched", e.testUnannotated)
	t.Run("NamespaceNotOptedIn", e.testNotOptedIn)
	t.Run("SelfManagedCertificate", func(t *testing.T) { e.testSelfManagedCert(t, cfg) })
	t.Run("WebhookDown", func(t *testing.T) { stop(); e.testWebhookDown(t) })
}

// startManager runs a manager with the injector; the returned function
// stops it and waits until it has stopped.
func (e *env) startManager(t *testing.T, cfg *rest.Config, opts injector.Options) func() {
	t.Helper()
	inj, err := injector.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 e.scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          inj.WebhookServer(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := inj.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var stopped atomic.Bool
	stop := func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// namespace creates a namespace for one test; optedIn labels it
// zmqauth.io/inject=enabled. Every namespace enforces the restricted Pod
// Security Standard, so injected pods are checked against it.
func (e *env) namespace(t *testing.T, optedIn bool, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("inj-%d", e.nsSeq.Add(1))
	l := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	if optedIn {
		l[zmqauthv1.LabelInject] = zmqauthv1.InjectEnabled
	}
	for k, v := range labels {
		l[k] = v
	}
	ctx := context.Background()
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager runs here: create the default ServiceAccount
	// pods refer to.
	if err := e.client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "default"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

func (e *env) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := e.client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// appPod is a pod the restricted Pod Security Standard admits.
func appPod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/app:1",
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To[int64](1000),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
		},
	}
}

func waitServing(t *testing.T, addr string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, nil
		}
		return true, c.Close()
	})
	if err != nil {
		t.Fatalf("webhook server at %s not serving: %v", addr, err)
	}
}

// testWriter sends logs to the test log until the test is over.
type testWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
