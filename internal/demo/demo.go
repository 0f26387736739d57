// Package demo is zmqauth's main job, end to end, on the embedded local
// control plane: it starts a real kube-apiserver and etcd, runs the manager,
// applies the sample manifests, mounts the Secrets and ConfigMaps the operator
// wrote the way the kubelet would, runs real pyzmq applications through
// zmqauth sidecars, and shows an authorized client served with its User-Id,
// an unknown client refused, and a rotation that drops nothing.
//
// `make demo` runs it through hack/demo; the end-to-end suite asserts on the
// Result it returns, and builds its other scenarios from the same parts: a
// Rig (the control plane, the manager, kubelet-style volumes, sidecars and
// the pyzmq applications of hack/demo/apps.py, Streams among them).
package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/zmqauth/zmqauth/internal/steps"
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
	*Rig
	cfg   Config
	out   *steps.Printer
	ports ports
	start time.Time
}

// Run runs the whole demo and stops everything it started before returning.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "demo"
	}
	if cfg.Requests == 0 {
		cfg.Requests = 300
	}
	e := &env{cfg: cfg, out: &steps.Printer{Out: cfg.Out}, start: time.Now()}
	res = &Result{}

	if err := e.out.Do("local control plane (kube-apiserver + etcd)", func() error {
		rig, err := StartRig(ctx, RigConfig{
			Root: cfg.Root, Binary: cfg.Binary, Python: cfg.Python, WorkDir: cfg.WorkDir, Kubeconfig: cfg.Kubeconfig,
		})
		if err != nil {
			return err
		}
		e.Rig = rig
		if cfg.Kubeconfig != "" {
			e.out.Say("reusing the running control plane at %s", cfg.Kubeconfig)
		} else {
			e.out.Say("kubeconfig: %s", rig.Kubeconfig)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	defer func() {
		if closeErr := e.Close(); closeErr != nil && err == nil {
			err = closeErr
		}
	}()

	plan := []struct {
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
	for _, s := range plan {
		if err := e.out.Do(s.title, func() error { return s.fn(ctx, res) }); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(cfg.Out, "demo passed in %s\n", time.Since(e.start).Round(time.Second))
	return res, nil
}
