// Package nodedemo is zmqauth's main job on a one-node cluster with a real
// kubelet (internal/nodeenv): it applies the manifests of
// examples/kubernetes as a user would, and shows the pods running with
// their injected sidecars, the User-Id the pyzmq server read, the webhook
// refusing a pod that names an unknown CurveServer, and a rotation of both
// keys under traffic that loses nothing.
//
// `make demo` runs it through hack/demo where a node can run (it starts and
// tears down its own node, or reuses the node of `make dev-up`); the node
// suite (test/node) runs it on its own node and asserts on the Result.
package nodedemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/zmqauth/zmqauth/internal/nodeenv"
	"github.com/zmqauth/zmqauth/internal/steps"
)

// The example's names (examples/kubernetes).
const (
	// Namespace is the example's namespace.
	Namespace = "zmqauth-example"
	// ServerName is the CurveServer, Service and Deployment of the pyzmq
	// REP server.
	ServerName = "echo"
	// ClientName is the CurveClient and Deployment of the zmq4 REQ client.
	ClientName = "caller"
	// UnknownServer is the CurveServer the refused pod names.
	UnknownServer = "no-such-server"
	// OutsideNamespace holds Outsider, a CurveClient (and a Job of the
	// zmq4 REQ client) naming ServerName with no grant
	// (examples/kubernetes/ungranted).
	OutsideNamespace = "zmqauth-example-outside"
	// Outsider is the ungranted CurveClient and its Job.
	Outsider = "outsider"
)

// Config says where the demo runs.
type Config struct {
	// Root is the repository's top directory.
	Root string
	// WorkDir receives the node's images and install files when the demo
	// starts its own node, and the zmqauth binary when Binary is empty.
	WorkDir string
	// Binary is the zmqauth command line (bin/zmqauth); built into WorkDir
	// when empty.
	Binary string
	// Env, when set, is a running node to run on; the demo does not stop
	// it (it leaves the example's namespaces for the caller to delete).
	Env *nodeenv.Env
	// Kubeconfig, when set and Env is nil, names a running node to reuse
	// (`make dev-up`), reached with Root's bin/k8s/kubectl; the demo leaves
	// the example running on it.
	Kubeconfig string
	// Out receives the numbered steps.
	Out io.Writer
}

// Result is what the demo observed.
type Result struct {
	// Pods maps each Deployment (ServerName, ClientName) to its pod's
	// READY column in `kubectl get pods` ("2/2": the application and the
	// sidecar).
	Pods map[string]string
	// SidecarsNative reports whether every pod runs the sidecar as a
	// native sidecar (an init container with restartPolicy Always) that is
	// started and ready.
	SidecarsNative bool
	// UserID is the User-Id the pyzmq server printed for the client's
	// requests.
	UserID string
	// Refusal is the webhook's message refusing the pod that names
	// UnknownServer; RefusedPodCreated reports whether the pod exists
	// anyway.
	Refusal           string
	RefusedPodCreated bool
	// OutsiderReason is the ungranted CurveClient's Authorized reason
	// (NotSelected); OutsiderSent and OutsiderReceived count its Job's
	// requests and the replies it got.
	OutsiderReason                 string
	OutsiderSent, OutsiderReceived int
	// ServerKeys and ClientKeys are the public keys before and after the
	// rotation; ServerRevision and ClientRevision the key revisions after.
	ServerKeys, ClientKeys         [2]string
	ServerRevision, ClientRevision int64
	// NewKeysInForce reports whether both sidecars logged the new keys in
	// force during the traffic.
	NewKeysInForce bool
	// Sent, Received and Lost count the client's requests from before the
	// rotation until it had opened new connections with the new keys in
	// force; Connections counts the connections it opened meanwhile.
	Sent, Received, Lost, Connections int
	// Took is how long the demo ran, teardown included.
	Took time.Duration
}

// cluster is how the demo reaches the node.
type cluster struct {
	kubectl, kubeconfig string
	config              *rest.Config
	clientset           kubernetes.Interface
}

// run is one demo's state.
type run struct {
	cfg    Config
	c      cluster
	out    *steps.Printer
	binary string
}

// Run runs the demo. With neither Config.Env nor Config.Kubeconfig it
// starts a node (nodeenv.Start) and tears it down before returning, also on
// failure or when ctx ends.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	began := time.Now()
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	r := &run{cfg: cfg, out: &steps.Printer{Out: cfg.Out}, binary: cfg.Binary}
	res = &Result{Pods: map[string]string{}}
	switch {
	case cfg.Env != nil:
		r.c = cluster{kubectl: cfg.Env.Node.Kubectl, kubeconfig: cfg.Env.Kubeconfig, config: cfg.Env.Config, clientset: cfg.Env.Clientset}
	case cfg.Kubeconfig != "":
		if err := r.out.Do("reusing the one-node cluster of `make dev-up`", func() error {
			c, err := connect(filepath.Join(cfg.Root, "bin", "k8s", "kubectl"), cfg.Kubeconfig)
			r.c = c
			r.out.Say("KUBECONFIG=%s", cfg.Kubeconfig)
			return err
		}); err != nil {
			return res, err
		}
	default:
		var env *nodeenv.Env
		if err := r.out.Do("one-node cluster: images built and imported, node started, zmqauth installed (kubectl apply -k config/default)", func() error {
			var err error
			env, err = nodeenv.Start(ctx, nodeenv.Options{Root: cfg.Root, WorkDir: cfg.WorkDir, Log: &indented{w: cfg.Out}})
			if err != nil {
				return err
			}
			r.c = cluster{kubectl: env.Node.Kubectl, kubeconfig: env.Kubeconfig, config: env.Config, clientset: env.Clientset}
			return nil
		}); err != nil {
			return res, err
		}
		defer func() {
			if err != nil {
				logs := filepath.Join(cfg.WorkDir, "logs")
				if saveErr := env.SaveLogs(logs); saveErr == nil {
					fmt.Fprintf(cfg.Out, "the node's logs are in %s\n", logs)
				}
			}
			stopErr := r.out.Do("node torn down (processes, mounts, network namespaces, cgroups, iptables, the bridge)", func() error {
				return env.Stop(context.WithoutCancel(ctx))
			})
			err = errors.Join(err, stopErr)
			res.Took = time.Since(began)
			if err == nil {
				fmt.Fprintf(cfg.Out, "demo passed in %s\n", res.Took.Round(time.Second))
			}
		}()
	}

	plan := []struct {
		title string
		fn    func(context.Context, *Result) error
	}{
		{"kubectl apply -f examples/kubernetes/", r.apply},
		{"pods Ready under the kubelet, each with the injected sidecar", r.podsReady},
		{"the pyzmq server read the client's identity as User-Id", r.userID},
		{"a pod naming an unknown CurveServer is refused by the webhook", r.refusal},
		{"a client from another namespace, not granted, gets no reply", r.ungranted},
		{"rotation of both keys under traffic (zmqauth rotate)", r.rotation},
	}
	for _, s := range plan {
		if err := r.out.Do(s.title, func() error { return s.fn(ctx, res) }); err != nil {
			return res, err
		}
	}
	res.Took = time.Since(began)
	switch {
	case cfg.Env != nil:
		fmt.Fprintf(cfg.Out, "demo passed in %s\n", res.Took.Round(time.Second))
	case cfg.Kubeconfig != "":
		fmt.Fprintf(cfg.Out, "demo passed in %s; the example keeps running: kubectl -n %s get pods\n", res.Took.Round(time.Second), Namespace)
	}
	return res, nil
}

// connect reaches a running node through its kubeconfig.
func connect(kubectl, kubeconfig string) (cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return cluster{}, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return cluster{}, err
	}
	return cluster{kubectl: kubectl, kubeconfig: kubeconfig, config: cfg, clientset: cs}, nil
}

// kubectl runs kubectl against the node and returns its combined output.
func (r *run) kubectl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.c.kubectl, append([]string{"--kubeconfig", r.c.kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// zmqauth runs the zmqauth command line against the node, building it
// first when Config.Binary is empty.
func (r *run) zmqauth(ctx context.Context, args ...string) (string, error) {
	if r.binary == "" {
		bin := filepath.Join(r.cfg.WorkDir, "zmqauth")
		if out, err := exec.CommandContext(ctx, "go", "build", "-C", r.cfg.Root, "-o", bin, "./cmd/zmqauth").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/zmqauth: %w\n%s", err, out)
		}
		r.binary = bin
	}
	cmd := exec.CommandContext(ctx, r.binary, append(args, "--kubeconfig", r.c.kubeconfig)...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// indented writes each line it is given indented under the current step.
type indented struct {
	w       io.Writer
	partial []byte
}

func (i *indented) Write(p []byte) (int, error) {
	i.partial = append(i.partial, p...)
	for {
		n := strings.IndexByte(string(i.partial), '\n')
		if n < 0 {
			return len(p), nil
		}
		if _, err := fmt.Fprintf(i.w, "       %s\n", i.partial[:n]); err != nil {
			return 0, err
		}
		i.partial = i.partial[n+1:]
	}
}
