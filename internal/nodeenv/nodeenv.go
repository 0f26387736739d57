// Package nodeenv is zmqauth installed on a one-node cluster the way a user
// installs it: the images built here (internal/image) and imported into the
// node's containerd, then `kubectl apply --server-side -k config/default`
// with the image set by kustomize, the manager running as a Deployment from
// its image and its webhook reached through its Service. The end-to-end
// suite on the node (test/node), `make dev-up` and `make demo` run on it.
package nodeenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/zmqauth/zmqauth/internal/image"
	"github.com/zmqauth/zmqauth/internal/node"
)

// Where the manager runs (config/default).
const (
	// ManagerNamespace is the manager's namespace.
	ManagerNamespace = "zmqauth-system"
	// ManagerDeployment is the manager's Deployment.
	ManagerDeployment = "zmqauth-manager"
	// releaseImage is config/default's image name, which the install
	// replaces with the image built here (as `kustomize edit set image`
	// does).
	releaseImage = "ghcr.io/zmqauth/zmqauth"
)

// ErrCannotRun wraps the reason a node cannot run on this machine
// (node.Check): callers fall back or skip on it, and fail on other errors.
var ErrCannotRun = errors.New("a node cannot run here")

// Options configures Start.
type Options struct {
	// Root is the repository's top directory.
	Root string
	// WorkDir receives the image archives and the kustomization the
	// install applies.
	WorkDir string
	// SyncFrequency is the kubelet's; node.DefaultSyncFrequency if zero.
	SyncFrequency time.Duration
	// ManagerArgs are appended to the manager container's arguments, with a
	// kustomize patch as a user would add one. The install always adds
	// --rotation-propagation-delay=PropagationDelay(SyncFrequency) first,
	// so a later value here overrides it.
	ManagerArgs []string
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Env is a running node with zmqauth installed.
type Env struct {
	*node.Node
	opts Options
	// Tags maps each image's name (internal/image) to its tag.
	Tags map[string]string
}

// Check reports why a node cannot run here, wrapping ErrCannotRun.
func Check(root string) error {
	if err := node.Check(filepath.Join(root, "bin", "k8s")); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotRun, err)
	}
	return nil
}

// Start builds the images, starts the node with them and installs zmqauth,
// returning once the manager's replicas are available. The caller must Stop
// the Env; on error Start has stopped what it started.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if err := Check(opts.Root); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.SyncFrequency == 0 {
		opts.SyncFrequency = node.DefaultSyncFrequency
	}
	archives, err := image.Build(ctx, image.Options{Root: opts.Root, OutDir: filepath.Join(opts.WorkDir, "images"), Log: opts.Log})
	if err != nil {
		return nil, err
	}
	e := &Env{opts: opts, Tags: map[string]string{}}
	var paths []string
	for _, a := range archives {
		e.Tags[a.Name] = a.Tag
		paths = append(paths, a.Path)
	}
	n, err := node.Start(ctx, node.Options{
		Binaries:      filepath.Join(opts.Root, "bin", "k8s"),
		Images:        paths,
		SandboxImage:  e.Tags[image.Pause],
		SyncFrequency: opts.SyncFrequency,
		Log:           opts.Log,
	})
	if err != nil {
		return nil, err
	}
	e.Node = n
	began := time.Now()
	if err := e.install(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("installing zmqauth: %w", err), e.Stop(context.WithoutCancel(ctx)))
	}
	fmt.Fprintf(opts.Log, "zmqauth installed from %s, manager available (%s)\n", e.Tags[image.Zmqauth], time.Since(began).Round(time.Millisecond))
	return e, nil
}

// PropagationDelay is the manager's --rotation-propagation-delay that
// matches a kubelet syncing every sync: the kubelet resyncs a pod after up
// to one and a half periods (its worker jitter) and its watch-based
// Secret and ConfigMap caches add no TTL, so three periods leave a full
// period to spare. The default 2m is the same reasoning for the default
// 1-minute sync.
func PropagationDelay(sync time.Duration) time.Duration { return 3 * sync }

// Stop stops the node and removes everything it left.
func (e *Env) Stop(ctx context.Context) error {
	if e.Node == nil {
		return nil
	}
	return e.Node.Stop(ctx)
}

// install copies config/ and sets the image in config/default's
// kustomization exactly as `kustomize edit set image` would (there is no
// kustomize binary here: kubectl has kustomize built in but no `edit`),
// then applies it and waits for the manager.
func (e *Env) install(ctx context.Context) error {
	config := filepath.Join(e.opts.WorkDir, "config")
	if err := os.RemoveAll(config); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(e.opts.Root, "config"), config); err != nil {
		return err
	}
	kustomization := filepath.Join(config, "default", "kustomization.yaml")
	if err := setImage(kustomization, e.Tags[image.Zmqauth]); err != nil {
		return err
	}
	args := append([]string{"--rotation-propagation-delay=" + PropagationDelay(e.opts.SyncFrequency).String()}, e.opts.ManagerArgs...)
	if err := addManagerArgs(kustomization, args); err != nil {
		return err
	}
	if out, err := e.Kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(config, "default")); err != nil {
		return fmt.Errorf("kubectl apply -k config/default: %w\n%s", err, out)
	}
	return e.WaitManagerAvailable(ctx, 3*time.Minute)
}

// WaitManagerAvailable waits until every replica of the manager's
// Deployment is updated and available.
func (e *Env) WaitManagerAvailable(ctx context.Context, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := e.Clientset.AppsV1().Deployments(ManagerNamespace).Get(ctx, ManagerDeployment, metav1.GetOptions{})
		last = err
		return err == nil && deploymentAvailable(d), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the manager Deployment to be available: %w (last error: %v)", err, last)
	}
	return nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want
}

// Kubectl runs the node's kubectl with its admin kubeconfig and returns its
// combined output.
func (e *Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.Node.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addManagerArgs adds a JSON patch to the kustomization that appends args
// to the manager container's arguments.
func addManagerArgs(path string, args []string) error {
	var ops []map[string]any
	for _, a := range args {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": a})
	}
	patch, err := yaml.Marshal(ops)
	if err != nil {
		return err
	}
	return editKustomization(path, func(k map[string]any) error {
		patches, _ := k["patches"].([]any)
		k["patches"] = append(patches, map[string]any{
			"target": map[string]any{"kind": "Deployment", "name": ManagerDeployment},
			"patch":  string(patch),
		})
		return nil
	})
}

// editKustomization rewrites the kustomization at path with edit.
func editKustomization(path string, edit func(map[string]any) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := edit(k); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// setImage sets config/default's image to tag (NAME:TAG) in the
// kustomization's images list.
func setImage(path, tag string) error {
	name, newTag, ok := strings.Cut(tag, ":")
	if !ok {
		return fmt.Errorf("image %q has no tag", tag)
	}
	return editKustomization(path, func(k map[string]any) error {
		images, _ := k["images"].([]any)
		for _, img := range images {
			if m, _ := img.(map[string]any); m != nil && m["name"] == "zmqauth" {
				m["newName"], m["newTag"] = name, newTag
				return nil
			}
		}
		return fmt.Errorf("no images entry named zmqauth (the release image %s)", releaseImage)
	})
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
