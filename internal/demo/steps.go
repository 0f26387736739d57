package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/volume"
)

// The sample manifests' names (config/samples).
const (
	serverName   = "telemetry-bus"
	serverSecret = "telemetry-bus-curve"
	clientName   = "collector"
	clientSecret = "collector-curve"
)

func (e *env) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: e.cfg.Namespace, Name: name}
}

// poll calls cond every 200 ms until it returns true, an error, or timeout.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
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

func (e *env) startManager(ctx context.Context, _ *Result) error {
	probe, err := freePort()
	if err != nil {
		return err
	}
	proc, err := e.procs.start(ctx, "manager", e.cfg.Binary, "manager",
		"--kubeconfig", e.kcfg,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", hostPort(probe),
		"--rotation-propagation-delay", "2s")
	if err != nil {
		return err
	}
	e.say("log: %s", proc.log)
	return waitReady(ctx, proc, "http://"+hostPort(probe)+"/readyz")
}

func (e *env) kubectl(ctx context.Context, args ...string) (string, error) {
	kubectl := filepath.Join(e.cfg.Root, "bin", "k8s", "kubectl")
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", e.kcfg}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (e *env) applySamples(ctx context.Context, _ *Result) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Namespace,
		Labels: map[string]string{zmqauthv1.LabelInject: zmqauthv1.InjectEnabled}}}
	if err := e.kube.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace: %w", err)
	}
	out, err := e.kubectl(ctx, "apply", "-n", e.cfg.Namespace, "-k", filepath.Join(e.cfg.Root, "config", "samples"))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		e.say("%s", line)
	}
	return err
}

func (e *env) waitKeys(ctx context.Context, res *Result) error {
	var srv zmqauthv1.CurveServer
	var cli zmqauthv1.CurveClient
	err := poll(ctx, 30*time.Second, "public keys in CurveServer and CurveClient status", func() (bool, error) {
		if err := e.kube.Get(ctx, e.key(serverName), &srv); err != nil {
			return false, err
		}
		if err := e.kube.Get(ctx, e.key(clientName), &cli); err != nil {
			return false, err
		}
		return srv.Status.PublicKey != "" && cli.Status.PublicKey != "", nil
	})
	if err != nil {
		return err
	}
	res.ServerPublicKey, res.ClientPublicKey = srv.Status.PublicKey, cli.Status.PublicKey
	for _, name := range []string{serverSecret, clientSecret} {
		var s corev1.Secret
		if err := e.kube.Get(ctx, e.key(name), &s); err != nil {
			return fmt.Errorf("Secret %s: %w", name, err)
		}
		files := make([]string, 0, len(s.Data))
		for f := range s.Data {
			files = append(files, f)
		}
		slices.Sort(files)
		e.say("Secret %s (type %s): %s", name, s.Type, strings.Join(files, ", "))
	}
	e.say("curveserver/%s public key %s", serverName, res.ServerPublicKey)
	e.say("curveclient/%s  public key %s", clientName, res.ClientPublicKey)
	return nil
}

func (e *env) waitAllowlist(ctx context.Context, res *Result) error {
	var cm corev1.ConfigMap
	err := poll(ctx, 30*time.Second, "the collector's key in the server's allowlist", func() (bool, error) {
		if err := e.kube.Get(ctx, e.key(serverName+"-allowlist"), &cm); err != nil {
			return false, err
		}
		var cli zmqauthv1.CurveClient
		if err := e.kube.Get(ctx, e.key(clientName), &cli); err != nil {
			return false, err
		}
		_, listed := cm.Data[e.cfg.Namespace+"."+clientName+".key"]
		authorized := len(cli.Status.Servers) > 0
		for _, s := range cli.Status.Servers {
			authorized = authorized && s.Authorized
		}
		return listed && authorized, nil
	})
	if err != nil {
		return err
	}
	files := make([]string, 0, len(cm.Data))
	for f := range cm.Data {
		files = append(files, f)
	}
	slices.Sort(files)
	e.say("ConfigMap %s-allowlist: %s", serverName, strings.Join(files, ", "))
	return nil
}

// mountLoop keeps the three volumes a pod would have in sync with the API,
// server side first, like a kubelet that happens to sync the server pod first.
func (e *env) mountLoop(ctx context.Context, dirs map[string]string) {
	seen := map[string]string{}
	sync := func(kind, name, dir string) {
		var data map[string][]byte
		var version string
		switch kind {
		case "Secret":
			var s corev1.Secret
			if err := e.kube.Get(ctx, e.key(name), &s); err != nil {
				return
			}
			data, version = s.Data, s.ResourceVersion
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := e.kube.Get(ctx, e.key(name), &cm); err != nil {
				return
			}
			data = map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			version = cm.ResourceVersion
		}
		if seen[dir] == version {
			return
		}
		if err := volume.Project(dir, data, 0o600); err == nil {
			seen[dir] = version
		}
	}
	for {
		sync("Secret", serverSecret, dirs["server-keys"])
		sync("ConfigMap", serverName+"-allowlist", dirs["server-allowlist"])
		sync("Secret", clientSecret, dirs["client-keys"])
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ports the demo's programs listen on.
type ports struct{ app, inbound, outbound, inAdmin, outAdmin int }

func (e *env) startSidecars(ctx context.Context, _ *Result) error {
	dirs := map[string]string{
		"server-keys":      filepath.Join(e.cfg.WorkDir, "server", "keys"),
		"server-allowlist": filepath.Join(e.cfg.WorkDir, "server", "allowlist"),
		"client-keys":      filepath.Join(e.cfg.WorkDir, "client", "keys"),
	}
	go e.mountLoop(ctx, dirs)
	serverKeyFile := filepath.Join(dirs["client-keys"], "server."+e.cfg.Namespace+"."+serverName+".key")
	if err := poll(ctx, 15*time.Second, "mounted volumes", func() (bool, error) {
		for _, f := range []string{filepath.Join(dirs["server-keys"], "secret.key"), serverKeyFile,
			filepath.Join(dirs["server-allowlist"], e.cfg.Namespace+"."+clientName+".key")} {
			if _, err := os.Stat(f); err != nil {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	var p ports
	for _, port := range []*int{&p.app, &p.inbound, &p.outbound, &p.inAdmin, &p.outAdmin} {
		var err error
		if *port, err = freePort(); err != nil {
			return err
		}
	}
	e.ports = p
	app := filepath.Join(e.cfg.Root, "hack", "demo", "apps.py")
	if _, err := e.procs.start(ctx, "server-app", e.cfg.Python, app, "rep-server", "--bind", "tcp://"+hostPort(p.app)); err != nil {
		return err
	}
	in, err := e.procs.start(ctx, "sidecar-inbound", e.cfg.Binary, "sidecar", "inbound",
		"--listen", hostPort(p.inbound), "--app", hostPort(p.app),
		"--keys", dirs["server-keys"], "--allowlist", dirs["server-allowlist"], "--admin", hostPort(p.inAdmin))
	if err != nil {
		return err
	}
	out, err := e.procs.start(ctx, "sidecar-outbound", e.cfg.Binary, "sidecar", "outbound",
		"--listen", hostPort(p.outbound), "--server", hostPort(p.inbound),
		"--server-key", serverKeyFile, "--keys", dirs["client-keys"], "--admin", hostPort(p.outAdmin))
	if err != nil {
		return err
	}
	for _, w := range []struct {
		proc *process
		port int
	}{{in, p.inAdmin}, {out, p.outAdmin}} {
		if err := waitReady(ctx, w.proc, fmt.Sprintf("http://%s/readyz", hostPort(w.port))); err != nil {
			return err
		}
	}
	e.say("server app (pyzmq REP, no CURVE code) on %s", hostPort(p.app))
	e.say("inbound sidecar  %s (CURVE) -> %s (NULL), logs %s", hostPort(p.inbound), hostPort(p.app), in.log)
	e.say("outbound sidecar %s (NULL) -> %s (CURVE), logs %s", hostPort(p.outbound), hostPort(p.inbound), out.log)
	return nil
}

// clientSummary is apps.py req-client's last line.
type clientSummary struct {
	Sent, Received, Lost int
	UserIDs              []string `json:"user_ids"`
}

func (e *env) runClient(ctx context.Context, args ...string) (clientSummary, error) {
	app := filepath.Join(e.cfg.Root, "hack", "demo", "apps.py")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Python, append([]string{app, "req-client", "--connect", "tcp://" + hostPort(e.ports.outbound)}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return clientSummary{}, fmt.Errorf("req-client: %w", err)
	}
	var sum clientSummary
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var ev struct{ Event string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "done" {
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				return sum, fmt.Errorf("req-client summary: %w", err)
			}
		}
	}
	return sum, nil
}

func (e *env) authorizedClient(ctx context.Context, res *Result) error {
	sum, err := e.runClient(ctx, "--count", "5")
	if err != nil {
		return err
	}
	res.UserIDs = sum.UserIDs
	e.say("pyzmq REQ client (no CURVE code) -> outbound sidecar: %d sent, %d answered", sum.Sent, sum.Received)
	e.say("the server application read User-Id %q on every request", strings.Join(sum.UserIDs, ","))
	want := e.cfg.Namespace + "/" + clientName
	if sum.Received != sum.Sent || len(sum.UserIDs) != 1 || sum.UserIDs[0] != want {
		return fmt.Errorf("want every request answered with User-Id %q, got %+v", want, sum)
	}
	return nil
}

func (e *env) unknownClient(ctx context.Context, res *Result) error {
	app := filepath.Join(e.cfg.Root, "hack", "demo", "apps.py")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.cfg.Python, app, "curve-probe",
		"--connect", "tcp://"+hostPort(e.ports.inbound), "--server-key", res.ServerPublicKey).Output()
	if err != nil {
		return fmt.Errorf("curve-probe: %w", err)
	}
	var probe struct {
		Result string
		Served bool
		Status any
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		return fmt.Errorf("curve-probe output %q: %w", out, err)
	}
	res.UnknownClient, res.UnknownClientServed = probe.Result, probe.Served
	e.say("a pyzmq CURVE client with a fresh key, straight to the inbound sidecar: %s (libzmq monitor), served: %v", probe.Result, probe.Served)
	if probe.Result != "refused" || probe.Served {
		return fmt.Errorf("the unknown client was not refused: %+v", probe)
	}
	return nil
}

func (e *env) rotation(ctx context.Context, res *Result) error {
	type outcome struct {
		sum clientSummary
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		sum, err := e.runClient(ctx, "--count", fmt.Sprint(e.cfg.Requests), "--interval-ms", "20", "--reconnect-every", "20")
		done <- outcome{sum, err}
	}()
	e.say("client sends %d requests, a new connection every 20, while both keys rotate", e.cfg.Requests)
	time.Sleep(time.Second)
	for _, target := range []struct{ kind, name string }{{"curveserver", serverName}, {"curveclient", clientName}} {
		out, err := e.kubectlRotate(ctx, target.kind+"/"+target.name)
		if err != nil {
			return err
		}
		e.say("%s", strings.TrimSpace(out))
	}
	var srv zmqauthv1.CurveServer
	var cli zmqauthv1.CurveClient
	if err := poll(ctx, 30*time.Second, "key revision 2 on both", func() (bool, error) {
		if err := e.kube.Get(ctx, e.key(serverName), &srv); err != nil {
			return false, err
		}
		if err := e.kube.Get(ctx, e.key(clientName), &cli); err != nil {
			return false, err
		}
		return srv.Status.KeyRevision >= 2 && cli.Status.KeyRevision >= 2, nil
	}); err != nil {
		return err
	}
	res.ServerRevision, res.ClientRevision = srv.Status.KeyRevision, cli.Status.KeyRevision
	e.say("curveserver key revision %d, new public key %s (previous %s kept for the overlap)",
		srv.Status.KeyRevision, srv.Status.PublicKey, srv.Status.PreviousPublicKey)
	e.say("curveclient key revision %d, new public key %s", cli.Status.KeyRevision, cli.Status.PublicKey)
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if o.err != nil {
		return o.err
	}
	res.Sent, res.Received = o.sum.Sent, o.sum.Received
	e.say("across the rotation: %d requests sent, %d answered, %d lost", o.sum.Sent, o.sum.Received, o.sum.Lost)
	if o.sum.Sent != o.sum.Received || o.sum.Sent != e.cfg.Requests {
		return fmt.Errorf("messages were lost across the rotation: %+v", o.sum)
	}
	return nil
}

func (e *env) kubectlRotate(ctx context.Context, target string) (string, error) {
	out, err := exec.CommandContext(ctx, e.cfg.Binary, "rotate", target, "-n", e.cfg.Namespace, "--kubeconfig", e.kcfg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("zmqauth rotate %s: %w: %s", target, err, out)
	}
	return string(out), nil
}
