package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/filecontract"
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

func (e *env) startManager(ctx context.Context, _ *Result) error {
	proc, err := e.StartManager(ctx, ManagerOptions{})
	if proc != nil {
		e.out.Say("log: %s", proc.Log)
	}
	return err
}

func (e *env) applySamples(ctx context.Context, _ *Result) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Namespace,
		Labels: map[string]string{zmqauthv1.LabelInject: zmqauthv1.InjectEnabled}}}
	if err := e.Kube.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace: %w", err)
	}
	out, err := e.Kubectl(ctx, "apply", "-n", e.cfg.Namespace, "-k", filepath.Join(e.cfg.Root, "config", "samples"))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		e.out.Say("%s", line)
	}
	return err
}

func (e *env) waitKeys(ctx context.Context, res *Result) error {
	var srv zmqauthv1.CurveServer
	var cli zmqauthv1.CurveClient
	err := Poll(ctx, 30*time.Second, "public keys in CurveServer and CurveClient status", func() (bool, error) {
		if err := e.Kube.Get(ctx, e.key(serverName), &srv); err != nil {
			return false, err
		}
		if err := e.Kube.Get(ctx, e.key(clientName), &cli); err != nil {
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
		if err := e.Kube.Get(ctx, e.key(name), &s); err != nil {
			return fmt.Errorf("Secret %s: %w", name, err)
		}
		files := make([]string, 0, len(s.Data))
		for f := range s.Data {
			files = append(files, f)
		}
		slices.Sort(files)
		e.out.Say("Secret %s (type %s): %s", name, s.Type, strings.Join(files, ", "))
	}
	e.out.Say("curveserver/%s public key %s", serverName, res.ServerPublicKey)
	e.out.Say("curveclient/%s  public key %s", clientName, res.ClientPublicKey)
	return nil
}

func (e *env) waitAllowlist(ctx context.Context, res *Result) error {
	var cm corev1.ConfigMap
	err := Poll(ctx, 30*time.Second, "the collector's key in the server's allowlist", func() (bool, error) {
		if err := e.Kube.Get(ctx, e.key(serverName+"-allowlist"), &cm); err != nil {
			return false, err
		}
		var cli zmqauthv1.CurveClient
		if err := e.Kube.Get(ctx, e.key(clientName), &cli); err != nil {
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
	e.out.Say("ConfigMap %s-allowlist: %s", serverName, strings.Join(files, ", "))
	return nil
}

// ports the demo's programs listen on.
type ports struct{ app, inbound, outbound, inAdmin, outAdmin string }

func (e *env) startSidecars(ctx context.Context, _ *Result) error {
	dirs := map[string]string{
		"server-keys":      filepath.Join(e.cfg.WorkDir, "server", "keys"),
		"server-allowlist": filepath.Join(e.cfg.WorkDir, "server", "allowlist"),
		"client-keys":      filepath.Join(e.cfg.WorkDir, "client", "keys"),
	}
	// The three volumes two pods would have, server side first, like a
	// kubelet that happens to sync the server pod first.
	ns := e.cfg.Namespace
	e.Mount(ctx,
		Mount{Kind: SecretVolume, Namespace: ns, Name: serverSecret, Dir: dirs["server-keys"]},
		Mount{Kind: ConfigMapVolume, Namespace: ns, Name: serverName + "-allowlist", Dir: dirs["server-allowlist"]},
		Mount{Kind: SecretVolume, Namespace: ns, Name: clientSecret, Dir: dirs["client-keys"]})
	serverKeyFile := filepath.Join(dirs["client-keys"], filecontract.ServerKeyFileName(ns, serverName))
	if err := WaitFiles(ctx, 15*time.Second, filepath.Join(dirs["server-keys"], filecontract.SecretKeyFile), serverKeyFile,
		filepath.Join(dirs["server-allowlist"], filecontract.ClientKeyFileName(ns, clientName))); err != nil {
		return err
	}
	in, err := e.StartInbound(ctx, "server", dirs["server-keys"], dirs["server-allowlist"])
	if err != nil {
		return err
	}
	out, err := e.StartOutbound(ctx, "client", in.Addr, serverKeyFile, dirs["client-keys"])
	if err != nil {
		return err
	}
	e.ports = ports{app: in.App, inbound: in.Addr, outbound: out.Addr, inAdmin: in.Admin, outAdmin: out.Admin}
	e.out.Say("server app (pyzmq REP, no CURVE code) on %s", in.App)
	e.out.Say("inbound sidecar  %s (CURVE) -> %s (NULL), logs %s", in.Addr, in.App, in.Sidecar.Log)
	e.out.Say("outbound sidecar %s (NULL) -> %s (CURVE), logs %s", out.Addr, in.Addr, out.Sidecar.Log)
	return nil
}

func (e *env) runClient(ctx context.Context, args ...string) (ClientSummary, error) {
	return e.RunClient(ctx, e.ports.outbound, args...)
}

func (e *env) authorizedClient(ctx context.Context, res *Result) error {
	sum, err := e.runClient(ctx, "--count", "5")
	if err != nil {
		return err
	}
	res.UserIDs = sum.UserIDs
	e.out.Say("pyzmq REQ client (no CURVE code) -> outbound sidecar: %d sent, %d answered", sum.Sent, sum.Received)
	e.out.Say("the server application read User-Id %q on every request", strings.Join(sum.UserIDs, ","))
	want := e.cfg.Namespace + "/" + clientName
	if sum.Received != sum.Sent || len(sum.UserIDs) != 1 || sum.UserIDs[0] != want {
		return fmt.Errorf("want every request answered with User-Id %q, got %+v", want, sum)
	}
	return nil
}

func (e *env) unknownClient(ctx context.Context, res *Result) error {
	probe, err := e.Probe(ctx, e.ports.inbound, res.ServerPublicKey)
	if err != nil {
		return err
	}
	res.UnknownClient, res.UnknownClientServed = probe.Result, probe.Served
	e.out.Say("a pyzmq CURVE client with a fresh key, straight to the inbound sidecar: %s (libzmq monitor), served: %v", probe.Result, probe.Served)
	if probe.Result != "refused" || probe.Served {
		return fmt.Errorf("the unknown client was not refused: %+v", probe)
	}
	return nil
}

func (e *env) rotation(ctx context.Context, res *Result) error {
	type outcome struct {
		sum ClientSummary
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		sum, err := e.runClient(ctx, "--count", fmt.Sprint(e.cfg.Requests), "--interval-ms", "20", "--reconnect-every", "20")
		done <- outcome{sum, err}
	}()
	e.out.Say("client sends %d requests, a new connection every 20, while both keys rotate", e.cfg.Requests)
	time.Sleep(time.Second)
	for _, target := range []struct{ kind, name string }{{"curveserver", serverName}, {"curveclient", clientName}} {
		out, err := e.Rotate(ctx, e.cfg.Namespace, target.kind+"/"+target.name)
		if err != nil {
			return err
		}
		e.out.Say("%s", strings.TrimSpace(out))
	}
	var srv zmqauthv1.CurveServer
	var cli zmqauthv1.CurveClient
	if err := Poll(ctx, 30*time.Second, "key revision 2 on both", func() (bool, error) {
		if err := e.Kube.Get(ctx, e.key(serverName), &srv); err != nil {
			return false, err
		}
		if err := e.Kube.Get(ctx, e.key(clientName), &cli); err != nil {
			return false, err
		}
		return srv.Status.KeyRevision >= 2 && cli.Status.KeyRevision >= 2, nil
	}); err != nil {
		return err
	}
	res.ServerRevision, res.ClientRevision = srv.Status.KeyRevision, cli.Status.KeyRevision
	e.out.Say("curveserver key revision %d, new public key %s (previous %s kept for the overlap)",
		srv.Status.KeyRevision, srv.Status.PublicKey, srv.Status.PreviousPublicKey)
	e.out.Say("curveclient key revision %d, new public key %s", cli.Status.KeyRevision, cli.Status.PublicKey)
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
	e.out.Say("across the rotation: %d requests sent, %d answered, %d lost", o.sum.Sent, o.sum.Received, o.sum.Lost)
	if o.sum.Sent != o.sum.Received || o.sum.Sent != e.cfg.Requests {
		return fmt.Errorf("messages were lost across the rotation: %+v", o.sum)
	}
	return nil
}
