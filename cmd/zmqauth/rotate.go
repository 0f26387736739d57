package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// rotateOptions are the flags of `zmqauth rotate`.
type rotateOptions struct {
	namespace  string
	kubeconfig string
	wait       time.Duration
}

func newRotateCommand() *cobra.Command {
	var o rotateOptions
	cmd := &cobra.Command{
		Use:   "rotate KIND/NAME",
		Short: "Ask the operator to rotate a CurveServer's or CurveClient's keypair now",
		Long: `Request an immediate key rotation of a CurveServer or CurveClient.

It sets the zmqauth.io/rotate annotation to the current time; the operator
answers each new value with exactly one rotation (recorded in
status.lastRotationRequest), keeping the previous key valid for the object's
rotation overlap. KIND is curveserver (csrv) or curveclient (ccli).

The operator first stages the next keypair, so that peers learn it, and
switches to it after its --rotation-propagation-delay (2m unless the manager sets another). With
--wait, wait for both: say when the rotation is staged, then print the new
key once it is current.`,
		Example: `  zmqauth rotate csrv/telemetry-bus -n monitoring
  zmqauth rotate curveclient/collector --wait 3m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace of the object (default: the kubeconfig context's)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then in-cluster")
	f.DurationVar(&o.wait, "wait", 0, "wait this long for the rotation to be done (0: do not wait)")
	return cmd
}

// parseRotateTarget turns KIND/NAME into an empty object of that kind.
func parseRotateTarget(arg string) (client.Object, string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, "", fmt.Errorf("want KIND/NAME (e.g. csrv/telemetry-bus), got %q", arg)
	}
	switch strings.ToLower(kind) {
	case "curveserver", "curveservers", "csrv", "curveserver.zmqauth.io", "curveservers.zmqauth.io":
		return &v1alpha1.CurveServer{}, name, nil
	case "curveclient", "curveclients", "ccli", "curveclient.zmqauth.io", "curveclients.zmqauth.io":
		return &v1alpha1.CurveClient{}, name, nil
	}
	return nil, "", fmt.Errorf("unknown kind %q: use curveserver (csrv) or curveclient (ccli)", kind)
}

// rotationStatus returns the status fields rotate reports.
func rotationStatus(obj client.Object) (kind, request, publicKey string, revision int64) {
	switch o := obj.(type) {
	case *v1alpha1.CurveServer:
		return "curveserver", o.Status.LastRotationRequest, o.Status.PublicKey, o.Status.KeyRevision
	case *v1alpha1.CurveClient:
		return "curveclient", o.Status.LastRotationRequest, o.Status.PublicKey, o.Status.KeyRevision
	}
	return "", "", "", 0
}

func (o *rotateOptions) run(cmd *cobra.Command, arg string) error {
	obj, name, err := parseRotateTarget(arg)
	if err != nil {
		return err
	}
	cc := kubeClientConfig(o.kubeconfig)
	ns := o.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("load cluster connection: %w", err)
	}
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	ctx := cmd.Context()
	key := types.NamespacedName{Namespace: ns, Name: name}
	if err := c.Get(ctx, key, obj); err != nil {
		return fmt.Errorf("get %s: %w", arg, err)
	}
	kind, _, _, revision := rotationStatus(obj)
	before := revision

	value := time.Now().UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{v1alpha1.AnnotationRotate: value},
	}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate %s: %w", arg, err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s/%s in namespace %s: requested a key rotation (%s=%s); current key revision %d\n",
		kind, name, ns, v1alpha1.AnnotationRotate, value, revision)
	if o.wait <= 0 {
		return nil
	}
	return o.waitAnswered(ctx, c, key, obj, value, before, out)
}

// waitAnswered waits until the object's status says the request was
// answered and the key revision moved past before (a staged rotation answers
// the request first and switches keys after the propagation delay), and
// prints the new key.
func (o *rotateOptions) waitAnswered(ctx context.Context, c client.Client, key types.NamespacedName, obj client.Object, value string, before int64, out interface{ Write([]byte) (int, error) }) error {
	staged := false
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, o.wait, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, obj); err != nil {
			return false, err
		}
		kind, request, _, revision := rotationStatus(obj)
		if request == value && !staged && revision <= before {
			staged = true
			fmt.Fprintf(out, "%s/%s: rotation staged; the switch to the new key follows the manager's --rotation-propagation-delay (2m unless the manager sets another)\n", kind, key.Name)
		}
		return request == value && revision > before, nil
	})
	switch {
	case err != nil && staged:
		return fmt.Errorf("rotation staged but not switched within %s; it switches after the manager's --rotation-propagation-delay (2m unless the manager sets another), wait longer to see it: %w", o.wait, err)
	case err != nil:
		return fmt.Errorf("rotation request not answered within %s (is the manager running?): %w", o.wait, err)
	}
	kind, _, publicKey, revision := rotationStatus(obj)
	fmt.Fprintf(out, "%s/%s rotated: key revision %d, public key %s\n", kind, key.Name, revision, publicKey)
	return nil
}
