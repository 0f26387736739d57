// Package demo is zmqauth's main job, end to end, on the embedded local
// control plane: it starts a real kube-apiserver and etcd, runs the manager,
// applies the sample manifests, mounts the Secrets and ConfigMaps the operator
// wrote the way the kubelet would, runs real pyzmq applications through
// zmqauth sidecars, and shows an authorized client served with its User-Id,
// an unknown client refused, and a rotation that drops nothing.
//
// `make demo` runs it through hack/demo; the end-to-end suite asserts on the
// Result it returns.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/localcluster"
)

// Config says where everything is.
type Config struct {
	// Root is the repository's top directory.
	Root string
	// Binary is the zmqauth binary (bin/zmqauth).
	Binary string
	// Python is the interpreter with pyzmq (/usr/bin/python3).
	Python string
	// WorkDir receives logs, mounted volumes and the kubeconfig.
	WorkDir string
	// Kubeconfig, when set, names a running local control plane to reuse
	// (`make dev-up`); otherwise the demo starts and stops its own.
	Kubeconfig string
	// Out receives the progress lines.
	Out io.Writer
	// Namespace the samples are applied to.
	Namespace string
	// Requests is how many requests the rotation step sends.
	Requests int
}

// Result is what the demo observed.
type Result struct {
	ServerPublicKey, ClientPublicKey string
	// UserIDs are the identities the server application saw.
	UserIDs []string
	// UnknownClient is "refused" when an unknown CURVE key was turned away.
	UnknownClient string
	// UnknownClientServed reports whether the unknown client got a reply.
	UnknownClientServed bool
	// Sent and Received count the requests across the rotation.
	Sent, Received int
	// ServerRevision and ClientRevision are the key revisions after rotation.
	ServerRevision, ClientRevision int64
}

// env is one run's state.
type env struct {
	cfg   Config
	procs *processes
	kube  client.Client
	kcfg  string
	step  int
	ports ports
	start time.Time
}

func (e *env) say(format string, args ...any) {
	fmt.Fprintf(e.cfg.Out, "       "+format+"\n", args...)
}

// do runs one numbered step and prints its outcome with the time it took.
func (e *env) do(title string, fn func() error) error {
	e.step++
	fmt.Fprintf(e.cfg.Out, "[%2d] %s\n", e.step, title)
	began := time.Now()
	if err := fn(); err != nil {
		fmt.Fprintf(e.cfg.Out, "     FAILED after %s: %v\n", time.Since(began).Round(time.Millisecond), err)
		return fmt.Errorf("step %d (%s): %w", e.step, title, err)
	}
	fmt.Fprintf(e.cfg.Out, "     ok (%s)\n", time.Since(began).Round(time.Millisecond))
	return nil
}

// Run runs the whole demo and stops everything it started before returning.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "demo"
	}
	if cfg.Requests == 0 {
		cfg.Requests = 300
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	e := &env{cfg: cfg, procs: &processes{dir: cfg.WorkDir}, start: time.Now()}
	defer e.procs.stopAll()
	res = &Result{}

	var cluster *localcluster.Cluster
	if err := e.do("local control plane (kube-apiserver + etcd)", func() error {
		if cfg.Kubeconfig != "" {
			e.kcfg = cfg.Kubeconfig
			e.say("reusing the running control plane at %s", cfg.Kubeconfig)
		} else {
			var err error
			cluster, err = localcluster.Start(ctx, localcluster.Options{
				AssetsDir: filepath.Join(cfg.Root, "bin", "k8s"),
				CRDDir:    filepath.Join(cfg.Root, "config", "crd", "bases"),
				StateDir:  cfg.WorkDir,
			})
			if err != nil {
				return err
			}
			e.kcfg = cluster.Kubeconfig
			e.say("kubeconfig: %s", e.kcfg)
		}
		return e.connect()
	}); err != nil {
		return nil, err
	}
	if cluster != nil {
		defer func() {
			// The programs first: an API server with live watches from the
			// manager takes its whole grace period to stop.
			e.procs.stopAll()
			if stopErr := cluster.Stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
	}

	steps := []struct {
		title string
		fn    func(context.Context, *Result) error
	}{
		{"zmqauth manager", e.startManager},
		{"kubectl apply -k config/samples", e.applySamples},
		{"keys generated into Secrets", e.waitKeys},
		{"allowlist built for the server", e.waitAllowlist},
		{"sidecars and the applications", e.startSidecars},
		{"authorized client served", e.authorizedClient},
		{"unknown client refused", e.unknownClient},
		{"rotation of both keys under traffic", e.rotation},
	}
	for _, s := range steps {
		if err := e.do(s.title, func() error { return s.fn(ctx, res) }); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(cfg.Out, "demo passed in %s\n", time.Since(e.start).Round(time.Second))
	return res, nil
}

func (e *env) connect() error {
	rc, err := clientcmd.BuildConfigFromFlags("", e.kcfg)
	if err != nil {
		return fmt.Errorf("demo: kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), zmqauthv1.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("demo: scheme: %w", err)
	}
	e.kube, err = client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("demo: client: %w", err)
	}
	return nil
}
