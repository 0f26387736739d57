package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/demo"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

// edgeKey is the sample CurveServer's raw client key (config/samples): a
// server admitting it never has an empty allowlist, so its sidecar is
// ready before any CurveClient is admitted.
const edgeKey = "Rhb8b}HD&>3((%3Me#OG!%F@jTw>%Z:^CyAhqaS9"

var (
	// binDir holds the zmqauth binary, built once for the whole package.
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; nothing here needs it.
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "zmqauth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// zmqauthBinary builds cmd/zmqauth on first use and returns its path.
func zmqauthBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "zmqauth")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zmqauth")
		build.Dir = testenv.RepoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build zmqauth: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// world is one test's local control plane, its zmqauth manager and the
// ZeroMQ programs it runs, all stopped when the test ends.
type world struct {
	t       *testing.T
	ctx     context.Context
	rig     *demo.Rig
	manager *demo.Process
	// managerOpts start the manager, and any restart of it.
	managerOpts demo.ManagerOptions
	restarts    int
}

// newWorld skips unless pyzmq and the control plane are there, then starts
// the control plane and the manager. Everything the test does is bounded
// by timeout.
func newWorld(t *testing.T, timeout time.Duration, opts demo.ManagerOptions) *world {
	t.Helper()
	python := testenv.PyZMQ(t)
	testenv.KubeAssets(t)
	bin := zmqauthBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	work := t.TempDir()
	rig, err := demo.StartRig(ctx, demo.RigConfig{
		Root: testenv.RepoRoot(t), Binary: bin, Python: python, WorkDir: work,
	})
	if err != nil {
		t.Fatalf("start the local control plane: %v", err)
	}
	w := &world{t: t, ctx: ctx, rig: rig, managerOpts: opts}
	t.Cleanup(func() {
		if t.Failed() {
			w.attachLogs()
		}
		if err := rig.Close(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	w.manager, err = rig.StartManager(ctx, opts)
	if err != nil {
		t.Fatalf("start the manager: %v", err)
	}
	return w
}

// attachLogs logs the end of every program's log: the manager's, the
// sidecars' and the applications' (none of them ever prints a secret
// key).
func (w *world) attachLogs() {
	const tail = 6000
	for _, path := range w.rig.Procs.Logs() {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(b) > tail {
			b = append([]byte("…"), b[len(b)-tail:]...)
		}
		w.t.Logf("%s:\n%s", filepath.Base(path), b)
	}
}

// restartManager starts the manager again after it was killed.
func (w *world) restartManager() {
	w.t.Helper()
	w.restarts++
	opts := w.managerOpts
	opts.Label = "manager-restart-" + strconv.Itoa(w.restarts)
	var err error
	if w.manager, err = w.rig.StartManager(w.ctx, opts); err != nil {
		w.t.Fatalf("restart the manager: %v", err)
	}
}

// poll fails the test unless cond holds within timeout.
func (w *world) poll(timeout time.Duration, what string, cond func() (bool, error)) {
	w.t.Helper()
	if err := demo.Poll(w.ctx, timeout, what, cond); err != nil {
		w.t.Fatal(err)
	}
}

// namespace creates a namespace with labels.
func (w *world) namespace(name string, labels map[string]string) {
	w.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := w.rig.Kube.Create(w.ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		w.t.Fatalf("create namespace %s: %v", name, err)
	}
}

// server creates a CurveServer labelled app=telemetry that admits, besides
// the CurveClients naming it, the sample's raw edge key.
func (w *world) server(namespace, name string) *zmqauthv1.CurveServer {
	w.t.Helper()
	srv := &zmqauthv1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": "telemetry"}},
		Spec: zmqauthv1.CurveServerSpec{
			SecretName: name + "-curve",
			Clients: &zmqauthv1.ServerClients{
				PublicKeys: []zmqauthv1.NamedPublicKey{{Name: "edge-collector", Key: edgeKey}},
			},
		},
	}
	if err := w.rig.Kube.Create(w.ctx, srv); err != nil {
		w.t.Fatalf("create CurveServer %s/%s: %v", namespace, name, err)
	}
	return srv
}

// client creates a CurveClient in namespace that connects to the server
// serverNS/serverName.
func (w *world) client(namespace, name, serverNS, serverName string) *zmqauthv1.CurveClient {
	w.t.Helper()
	cc := &zmqauthv1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": "collector"}},
		Spec: zmqauthv1.CurveClientSpec{
			SecretName: name + "-curve",
			Servers:    []zmqauthv1.ServerReference{{Name: serverName, Namespace: serverNS}},
		},
	}
	if err := w.rig.Kube.Create(w.ctx, cc); err != nil {
		w.t.Fatalf("create CurveClient %s/%s: %v", namespace, name, err)
	}
	return cc
}

// getServer reads a CurveServer.
func (w *world) getServer(namespace, name string) (*zmqauthv1.CurveServer, error) {
	var srv zmqauthv1.CurveServer
	err := w.rig.Kube.Get(w.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &srv)
	return &srv, err
}

// getClient reads a CurveClient.
func (w *world) getClient(namespace, name string) (*zmqauthv1.CurveClient, error) {
	var cc zmqauthv1.CurveClient
	err := w.rig.Kube.Get(w.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cc)
	return &cc, err
}

// getSecret reads a Secret.
func (w *world) getSecret(namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := w.rig.Kube.Get(w.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	return &s, err
}

// getAllowlist reads a server's allowlist ConfigMap.
func (w *world) getAllowlist(namespace, server string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := w.rig.Kube.Get(w.ctx, client.ObjectKey{Namespace: namespace, Name: secretlayout.AllowlistConfigMapName(server)}, &cm)
	return &cm, err
}

// waitServerKey waits for a CurveServer's public key and returns it.
func (w *world) waitServerKey(namespace, name string) string {
	w.t.Helper()
	var key string
	w.poll(30*time.Second, "a key for CurveServer "+namespace+"/"+name, func() (bool, error) {
		srv, err := w.getServer(namespace, name)
		if err != nil {
			return false, err
		}
		key = srv.Status.PublicKey
		return key != "", nil
	})
	return key
}

// waitAuthorized waits until a CurveClient has a key and every server it
// names reports it authorized, and returns the client.
func (w *world) waitAuthorized(namespace, name string, timeout time.Duration) *zmqauthv1.CurveClient {
	w.t.Helper()
	var cc *zmqauthv1.CurveClient
	w.poll(timeout, "CurveClient "+namespace+"/"+name+" authorized at its servers", func() (bool, error) {
		var err error
		if cc, err = w.getClient(namespace, name); err != nil {
			return false, err
		}
		return cc.Status.PublicKey != "" && meta.IsStatusConditionTrue(cc.Status.Conditions, zmqauthv1.ConditionAuthorized), nil
	})
	return cc
}

// busAndCollector creates, in a new namespace ns, the CurveServer "bus"
// and the CurveClient "collector" that names it, the pair most tests start
// from, and waits until the client is authorized at the server.
func (w *world) busAndCollector(ns string) {
	w.t.Helper()
	w.namespace(ns, nil)
	w.server(ns, "bus")
	w.client(ns, "collector", ns, "bus")
	w.waitServerKey(ns, "bus")
	w.waitAuthorized(ns, "collector", 30*time.Second)
}

// serverPod is a server's pod: its mounted keypair and allowlist, and the
// pyzmq application behind the inbound sidecar.
type serverPod struct {
	namespace, name string
	keys, allowlist string
	*demo.Inbound
}

// startServerPod mounts the server's Secret and allowlist as the kubelet
// would and starts the application and the inbound sidecar.
func (w *world) startServerPod(namespace, name string) *serverPod {
	w.t.Helper()
	dir := filepath.Join(w.rig.WorkDir, namespace+"."+name)
	p := &serverPod{namespace: namespace, name: name,
		keys: filepath.Join(dir, "keys"), allowlist: filepath.Join(dir, "allowlist")}
	w.rig.Mount(w.ctx,
		demo.Mount{Kind: demo.SecretVolume, Namespace: namespace, Name: name + "-curve", Dir: p.keys},
		demo.Mount{Kind: demo.ConfigMapVolume, Namespace: namespace, Name: secretlayout.AllowlistConfigMapName(name), Dir: p.allowlist})
	if err := demo.WaitFiles(w.ctx, 30*time.Second, filepath.Join(p.keys, filecontract.SecretKeyFile),
		filepath.Join(p.allowlist, filecontract.IndexFile)); err != nil {
		w.t.Fatalf("server %s/%s volumes: %v", namespace, name, err)
	}
	var err error
	if p.Inbound, err = w.rig.StartInbound(w.ctx, namespace+"."+name, p.keys, p.allowlist); err != nil {
		w.t.Fatalf("server %s/%s: %v", namespace, name, err)
	}
	return p
}

// clientPod is a client's pod: its mounted keypair Secret and the outbound
// sidecar to one server.
type clientPod struct {
	namespace, name string
	keys            string
	*demo.Outbound
}

// startClientPod mounts the client's Secret as the kubelet would and starts
// its outbound sidecar to srv.
func (w *world) startClientPod(namespace, name string, srv *serverPod) *clientPod {
	w.t.Helper()
	p := &clientPod{namespace: namespace, name: name, keys: filepath.Join(w.rig.WorkDir, namespace+"."+name, "keys")}
	w.rig.Mount(w.ctx, demo.Mount{Kind: demo.SecretVolume, Namespace: namespace, Name: name + "-curve", Dir: p.keys})
	serverKey := filepath.Join(p.keys, filecontract.ServerKeyFileName(srv.namespace, srv.name))
	if err := demo.WaitFiles(w.ctx, 30*time.Second, filepath.Join(p.keys, filecontract.SecretKeyFile), serverKey); err != nil {
		w.t.Fatalf("client %s/%s volume: %v", namespace, name, err)
	}
	var err error
	if p.Outbound, err = w.rig.StartOutbound(w.ctx, namespace+"."+name, srv.Addr, serverKey, p.keys); err != nil {
		w.t.Fatalf("client %s/%s: %v", namespace, name, err)
	}
	return p
}

// metric reads one of a sidecar's metrics (summed over the series whose
// labels include labels).
func (w *world) metric(admin, name string, labels map[string]string) float64 {
	w.t.Helper()
	v, err := demo.Metric(w.ctx, admin, name, labels)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// stream starts a pyzmq REQ application sending through the client pod and
// waits until n requests were answered.
func (w *world) stream(label string, c *clientPod, opts demo.StreamOptions, n int) *demo.Stream {
	w.t.Helper()
	s, err := w.rig.StartStream(w.ctx, label, c.Addr, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	if _, err := s.WaitFor(ctx, fmt.Sprintf("%d answered requests", n), func(e demo.StreamEvent) bool {
		return e.Received >= n
	}); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// stopStream stops a stream and returns its summary.
func (w *world) stopStream(s *demo.Stream) demo.StreamEvent {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	sum, err := s.Stop(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return sum
}

// clientKey names an object for the API client.
func clientKey(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}
