package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/localcluster"
	"github.com/zmqauth/zmqauth/internal/volume"
)

// RigConfig says where the parts of a Rig are.
type RigConfig struct {
	// Root is the repository's top directory.
	Root string
	// Binary is the zmqauth binary (bin/zmqauth).
	Binary string
	// Python is the interpreter with pyzmq (/usr/bin/python3).
	Python string
	// WorkDir receives logs, mounted volumes and the kubeconfig.
	WorkDir string
	// Kubeconfig, when set, names a running local control plane to reuse
	// (`make dev-up`); otherwise StartRig starts one and Close stops it.
	Kubeconfig string
}

// Rig is what the demo and the end-to-end suite run on: the local control
// plane, a client of it, and the programs (manager, sidecars, pyzmq
// applications) started against it, with the volumes a kubelet would mount
// for them kept in sync with the API.
type Rig struct {
	RigConfig
	// Cluster is the control plane StartRig started; nil when it reused
	// one.
	Cluster *localcluster.Cluster
	// Kube reaches the API server as a cluster admin.
	Kube client.Client
	// Procs are the programs started, stopped by Close.
	Procs *Processes

	closing chan struct{}
	loops   sync.WaitGroup
	once    sync.Once
}

// StartRig starts the local control plane (or connects to the one named by
// cfg.Kubeconfig) and returns the Rig; the caller must Close it.
func StartRig(ctx context.Context, cfg RigConfig) (*Rig, error) {
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	r := &Rig{RigConfig: cfg, Procs: &Processes{Dir: cfg.WorkDir}, closing: make(chan struct{})}
	if cfg.Kubeconfig == "" {
		c, err := localcluster.Start(ctx, localcluster.Options{
			AssetsDir: filepath.Join(cfg.Root, "bin", "k8s"),
			CRDDir:    filepath.Join(cfg.Root, "config", "crd", "bases"),
			StateDir:  cfg.WorkDir,
		})
		if err != nil {
			return nil, err
		}
		r.Cluster, r.Kubeconfig = c, c.Kubeconfig
	}
	if err := r.connect(); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

func (r *Rig) connect() error {
	rc, err := clientcmd.BuildConfigFromFlags("", r.Kubeconfig)
	if err != nil {
		return fmt.Errorf("demo: kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), zmqauthv1.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("demo: scheme: %w", err)
	}
	r.Kube, err = client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("demo: client: %w", err)
	}
	return nil
}

// Close stops the volume loops and every program, then the control plane
// if the Rig started it. It may be called more than once.
func (r *Rig) Close() error {
	var err error
	r.once.Do(func() {
		close(r.closing)
		r.loops.Wait()
		// The programs first: an API server with live watches from the
		// manager takes its whole grace period to stop.
		r.Procs.StopAll()
		if r.Cluster != nil {
			err = r.Cluster.Stop()
		}
	})
	return err
}

// Poll calls cond every 200 ms until it returns true, an error, or timeout.
func Poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("timed out waiting for %s (last error: %w)", what, lastErr)
			}
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ManagerOptions configures StartManager.
type ManagerOptions struct {
	// Label names the log file (default "manager"); give each restart its
	// own.
	Label string
	// PropagationDelay is --rotation-propagation-delay (default 2s).
	PropagationDelay time.Duration
}

// StartManager runs `zmqauth manager` against the Rig's cluster and waits
// until it is ready.
func (r *Rig) StartManager(ctx context.Context, opts ManagerOptions) (*Process, error) {
	if opts.Label == "" {
		opts.Label = "manager"
	}
	if opts.PropagationDelay == 0 {
		opts.PropagationDelay = 2 * time.Second
	}
	probe, err := FreePort()
	if err != nil {
		return nil, err
	}
	proc, err := r.Procs.Start(ctx, opts.Label, r.Binary, "manager",
		"--kubeconfig", r.Kubeconfig,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", HostPort(probe),
		"--rotation-propagation-delay", opts.PropagationDelay.String())
	if err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, proc, "http://"+HostPort(probe)+"/readyz"); err != nil {
		return proc, err
	}
	return proc, nil
}

// Kubectl runs kubectl against the Rig's cluster and returns its output.
func (r *Rig) Kubectl(ctx context.Context, args ...string) (string, error) {
	kubectl := filepath.Join(r.Root, "bin", "k8s", "kubectl")
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", r.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Rotate runs `zmqauth rotate TARGET -n NAMESPACE` (TARGET is
// kind/name) and returns its output.
func (r *Rig) Rotate(ctx context.Context, namespace, target string) (string, error) {
	out, err := exec.CommandContext(ctx, r.Binary, "rotate", target, "-n", namespace, "--kubeconfig", r.Kubeconfig).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("zmqauth rotate %s: %w: %s", target, err, out)
	}
	return string(out), nil
}

// Mount kinds.
const (
	SecretVolume    = "Secret"
	ConfigMapVolume = "ConfigMap"
)

// Mount is one volume a pod would have: a Secret or ConfigMap projected
// into Dir the way the kubelet does it (package volume).
type Mount struct {
	// Kind is SecretVolume or ConfigMapVolume.
	Kind string
	// Namespace and Name name the object.
	Namespace, Name string
	// Dir is the mount point.
	Dir string
}

// Mount keeps the volumes in sync with the API until ctx ends or the Rig
// closes, in the order given, every 250 ms, as a kubelet syncing those pods
// would. It returns at once. A volume whose object cannot be read (it is
// gone, or the API server is down) keeps its last contents, as in a pod.
func (r *Rig) Mount(ctx context.Context, mounts ...Mount) {
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		seen := map[string]string{}
		for {
			for _, m := range mounts {
				r.sync(ctx, m, seen)
			}
			select {
			case <-ctx.Done():
				return
			case <-r.closing:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

// sync projects one volume if its object changed since seen says.
func (r *Rig) sync(ctx context.Context, m Mount, seen map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := client.ObjectKey{Namespace: m.Namespace, Name: m.Name}
	var data map[string][]byte
	var version string
	switch m.Kind {
	case SecretVolume:
		var s corev1.Secret
		if err := r.Kube.Get(ctx, key, &s); err != nil {
			return
		}
		data, version = s.Data, s.ResourceVersion
	case ConfigMapVolume:
		var cm corev1.ConfigMap
		if err := r.Kube.Get(ctx, key, &cm); err != nil {
			return
		}
		data = map[string][]byte{}
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		version = cm.ResourceVersion
	default:
		return
	}
	if seen[m.Dir] == version {
		return
	}
	if err := volume.Project(m.Dir, data, 0o600); err == nil {
		seen[m.Dir] = version
	}
}

// WaitFiles waits until every file exists.
func WaitFiles(ctx context.Context, timeout time.Duration, files ...string) error {
	return Poll(ctx, timeout, "files "+strings.Join(files, ", "), func() (bool, error) {
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// Inbound is a server pod: a pyzmq REP application (hack/demo/apps.py
// rep-server, no CURVE code) behind `zmqauth sidecar inbound`.
type Inbound struct {
	// Addr is where the sidecar accepts CURVE connections.
	Addr string
	// Admin serves the sidecar's /readyz and /metrics.
	Admin string
	// App is the application's NULL address.
	App string
	// Sidecar and AppProc are the two programs.
	Sidecar, AppProc *Process
}

// StartInbound starts the application and the inbound sidecar with its
// keys and allowlist from the mounted directories, and waits until the
// sidecar is ready. label prefixes the log files.
func (r *Rig) StartInbound(ctx context.Context, label, keysDir, allowlistDir string) (*Inbound, error) {
	var app, listen, admin int
	for _, port := range []*int{&app, &listen, &admin} {
		var err error
		if *port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	in := &Inbound{Addr: HostPort(listen), Admin: HostPort(admin), App: HostPort(app)}
	var err error
	in.AppProc, err = r.Procs.Start(ctx, label+"-app", r.Python, r.apps(), "rep-server", "--bind", "tcp://"+in.App)
	if err != nil {
		return nil, err
	}
	in.Sidecar, err = r.Procs.Start(ctx, label+"-sidecar", r.Binary, "sidecar", "inbound",
		"--listen", in.Addr, "--app", in.App,
		"--keys", keysDir, "--allowlist", allowlistDir, "--admin", in.Admin)
	if err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, in.Sidecar, "http://"+in.Admin+"/readyz"); err != nil {
		return nil, err
	}
	return in, nil
}

// Outbound is a client pod's `zmqauth sidecar outbound`: the application
// connects to Addr with no CURVE code.
type Outbound struct {
	// Addr is where the sidecar accepts the application's NULL
	// connections.
	Addr string
	// Admin serves the sidecar's /readyz and /metrics.
	Admin string
	// Sidecar is the program.
	Sidecar *Process
}

// StartOutbound starts an outbound sidecar that relays to serverAddr with
// the keys in keysDir and the server key file serverKey, and waits until it
// is ready.
func (r *Rig) StartOutbound(ctx context.Context, label, serverAddr, serverKey, keysDir string) (*Outbound, error) {
	var listen, admin int
	for _, port := range []*int{&listen, &admin} {
		var err error
		if *port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	out := &Outbound{Addr: HostPort(listen), Admin: HostPort(admin)}
	var err error
	out.Sidecar, err = r.Procs.Start(ctx, label+"-sidecar", r.Binary, "sidecar", "outbound",
		"--listen", out.Addr, "--server", serverAddr,
		"--server-key", serverKey, "--keys", keysDir, "--admin", out.Admin)
	if err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, out.Sidecar, "http://"+out.Admin+"/readyz"); err != nil {
		return nil, err
	}
	return out, nil
}

// apps is the demo's pyzmq programs.
func (r *Rig) apps() string { return filepath.Join(r.Root, "hack", "demo", "apps.py") }

// ClientSummary is apps.py req-client's last line.
type ClientSummary struct {
	Sent, Received, Lost int
	// UserIDs are the identities the server application saw.
	UserIDs []string `json:"user_ids"`
}

// RunClient runs apps.py req-client against addr (an outbound sidecar)
// with extra args (--count N, --interval-ms, --reconnect-every,
// --timeout-ms) and returns its summary. It gives up after two minutes.
func (r *Rig) RunClient(ctx context.Context, addr string, args ...string) (ClientSummary, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Python, append([]string{r.apps(), "req-client", "--connect", "tcp://" + addr}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return ClientSummary{}, fmt.Errorf("req-client: %w", err)
	}
	var sum ClientSummary
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var ev struct{ Event string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "done" {
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				return sum, fmt.Errorf("req-client summary: %w", err)
			}
			return sum, nil
		}
	}
	return sum, fmt.Errorf("req-client printed no summary: %q", out)
}

// ProbeResult is apps.py curve-probe's answer.
type ProbeResult struct {
	// Result is "accepted", "refused" or "no-answer" (libzmq's monitor).
	Result string
	// Served reports whether a request got a reply.
	Served bool
	// Status is the handshake failure's detail, when refused.
	Status any
}

// Probe connects to addr (an inbound sidecar) with CURVE, a brand-new
// keypair and serverKey, and reports whether it was let in.
func (r *Rig) Probe(ctx context.Context, addr, serverKey string) (ProbeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.Python, r.apps(), "curve-probe",
		"--connect", "tcp://"+addr, "--server-key", serverKey).Output()
	if err != nil {
		return ProbeResult{}, fmt.Errorf("curve-probe: %w", err)
	}
	var probe ProbeResult
	if err := json.Unmarshal(out, &probe); err != nil {
		return probe, fmt.Errorf("curve-probe output %q: %w", out, err)
	}
	return probe, nil
}
