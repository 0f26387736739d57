package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/controllers/injector/servingcert"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

func kubectl(t *testing.T) string {
	t.Helper()
	k := filepath.Join(testenv.KubeAssets(t), "kubectl")
	if _, err := os.Stat(k); err != nil {
		t.Fatalf("kubectl: %v (hack/controlplane.sh builds it into bin/k8s)", err)
	}
	return k
}

// render runs `kubectl kustomize config/default`, with the named components
// of config/ added through an overlay outside the repository.
func render(t *testing.T, components ...string) []byte {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "config", "default")
	if len(components) > 0 {
		overlay := t.TempDir()
		rel, err := filepath.Rel(overlay, filepath.Join(testenv.RepoRoot(t), "config"))
		if err != nil {
			t.Fatal(err)
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + rel + "/default\ncomponents:\n"
		for _, c := range components {
			k += "- " + rel + "/" + c + "\n"
		}
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		dir = overlay
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

func decodeAll(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		var o unstructured.Unstructured
		if err := dec.Decode(&o.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		if len(o.Object) > 0 {
			out = append(out, &o)
		}
	}
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// cli is one run of the built binary.
type cli struct {
	code   int
	output string
}

func runBinary(t *testing.T, binary string, args ...string) cli {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return cli{0, string(out)}
	case errors.As(err, &exit):
		return cli{exit.ExitCode(), string(out)}
	default:
		t.Fatalf("zmqauth %s: %v", strings.Join(args, " "), err)
		return cli{}
	}
}

// has checks the output contains every want.
func (r cli) has(t *testing.T, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.output, w) {
			t.Errorf("zmqauth check output lacks %q:\n%s", w, r.output)
		}
	}
}

// TestInstall applies the rendered config/default to a real API server and
// runs `zmqauth check` (the binary built as the Dockerfile builds it) before,
// after, and with a healthy installation simulated (no kubelet runs here).
func TestInstall(t *testing.T) {
	im := buildImage(t)
	env := &envtest.Environment{BinaryAssetsDirectory: testenv.KubeAssets(t)}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func() cli { return runBinary(t, im.binary, "check", "--kubeconfig", kubeconfig) }

	t.Run("NothingInstalled", func(t *testing.T) {
		r := check()
		if r.code == 0 {
			t.Errorf("check passed on an empty cluster:\n%s", r.output)
		}
		r.has(t, "× CRD curveservers.zmqauth.io is installed and established", "CRD curveservers.zmqauth.io is not installed",
			"hint: install zmqauth: kubectl apply --server-side -k config/default", "× manager Deployment zmqauth-system/zmqauth-manager is available",
			"checks failed")
	})

	t.Run("Apply", func(t *testing.T) {
		manifests := render(t)
		for _, dryRun := range []bool{true, false} {
			args := []string{"--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager", "zmqauth-test", "-f", "-"}
			if dryRun {
				// The Namespace does not exist yet in a dry run: apply
				// the cluster-scoped objects only.
				args = append(args, "--dry-run=server")
			}
			in := manifests
			if dryRun {
				in = clusterScoped(t, manifests)
			}
			cmd := exec.Command(kubectl(t), args...)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl apply (dry run %v): %v\n%s", dryRun, err, out)
			}
			t.Logf("kubectl apply (dry run %v):\n%s", dryRun, out)
		}
		var d appsv1.Deployment
		if err := c.Get(ctx, types.NamespacedName{Namespace: "zmqauth-system", Name: "zmqauth-manager"}, &d); err != nil {
			t.Fatal(err)
		}
		var whc admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, types.NamespacedName{Name: injector.DefaultWebhookConfigurationName}, &whc); err != nil {
			t.Fatal(err)
		}
		wh := whc.Webhooks[0]
		if ptr.Deref(wh.FailurePolicy, "") != admissionregistrationv1.Fail || len(wh.MatchConditions) != 1 || wh.NamespaceSelector == nil ||
			wh.ClientConfig.Service == nil || wh.ClientConfig.Service.Name != injector.DefaultServiceName || wh.ClientConfig.Service.Namespace != "zmqauth-system" {
			t.Errorf("webhook as applied: %+v", wh)
		}
	})

	t.Run("InstalledNotRunning", func(t *testing.T) {
		waitFor(t, "CRDs established", func(ctx context.Context) (bool, error) {
			var list apiextensionsv1.CustomResourceDefinitionList
			if err := c.List(ctx, &list); err != nil {
				return false, err
			}
			n := 0
			for _, crd := range list.Items {
				for _, cond := range crd.Status.Conditions {
					if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
						n++
					}
				}
			}
			return n == 3, nil
		})
		r := check()
		if r.code == 0 {
			t.Errorf("check passed without a running manager:\n%s", r.output)
		}
		r.has(t,
			"√ CRD curveservers.zmqauth.io is installed and established",
			"√ CRD curveclients.zmqauth.io is installed and established",
			"√ CRD clustercurvegrants.zmqauth.io is installed and established",
			"× manager Deployment zmqauth-system/zmqauth-manager is available",
			"hint: kubectl -n zmqauth-system describe deployment zmqauth-manager",
			"× webhook configuration zmqauth-injector has a caBundle",
			"× webhook Service zmqauth-system/zmqauth-webhook-service has ready endpoints",
			"× webhook serving certificate is valid, trusted and not near expiry")
		t.Logf("zmqauth check:\n%s", r.output)
	})

	t.Run("Healthy", func(t *testing.T) {
		simulateRunning(t, c)
		rot, err := servingcert.New(c, c, logr.Discard(), servingcert.Options{
			Namespace: "zmqauth-system", SecretName: injector.DefaultCertSecretName,
			DNSNames:              []string{"zmqauth-webhook-service.zmqauth-system.svc", "zmqauth-webhook-service.zmqauth-system.svc.cluster.local"},
			WebhookConfigurations: []string{injector.DefaultWebhookConfigurationName},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rot.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		r := check()
		if r.code != 0 {
			t.Errorf("check failed on a healthy installation (exit %d):\n%s", r.code, r.output)
		}
		r.has(t, "√ manager Deployment zmqauth-system/zmqauth-manager is available (2/2 replicas ready)",
			"√ webhook serving certificate is valid, trusted and not near expiry (expires in 89 days)", "all 7 checks passed")
		t.Logf("zmqauth check:\n%s", r.output)
	})

	t.Run("CertificateNearExpiry", func(t *testing.T) {
		rot, err := servingcert.New(c, c, logr.Discard(), servingcert.Options{
			Namespace: "zmqauth-system", SecretName: injector.DefaultCertSecretName,
			DNSNames:              []string{"zmqauth-webhook-service.zmqauth-system.svc"},
			WebhookConfigurations: []string{injector.DefaultWebhookConfigurationName},
			// Issued 88 days ago: expires in 2 days.
			Now: func() time.Time { return time.Now().Add(-88 * 24 * time.Hour) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rot.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		r := check()
		if r.code == 0 {
			t.Errorf("check passed with a certificate expiring in 2 days:\n%s", r.output)
		}
		r.has(t, "× webhook serving certificate is valid, trusted and not near expiry", "certificate expires in", "renewal is failing")
	})
}

// clusterScoped keeps the cluster-scoped objects of the manifests.
func clusterScoped(t *testing.T, manifests []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, o := range decodeAll(t, manifests) {
		if o.GetNamespace() != "" {
			continue
		}
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		out.WriteString("\n")
	}
	return out.Bytes()
}

// simulateRunning does what the kubelet and controllers would for a healthy
// manager: the Deployment available and the webhook Service's endpoints.
func simulateRunning(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	var d appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: "zmqauth-system", Name: "zmqauth-manager"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if err := c.Status().Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "zmqauth-system", Name: injector.DefaultServiceName + "-x1",
			Labels: map[string]string{discoveryv1.LabelServiceName: injector.DefaultServiceName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.0.0.8"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](9443), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := c.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatal(fmt.Errorf("waiting for %s: %w", what, err))
	}
}
