package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	zmqauthv1alpha1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

// crdTestNamespace holds every namespaced object TestCRDValidation creates.
const crdTestNamespace = "crd-validation"

// Z85 public keys from libzmq's CURVE tests: valid, 40 characters.
const (
	validKey      = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	validOtherKey = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
)

// crdEnv is the one control plane TestCRDValidation's subtests share.
type crdEnv struct {
	env    *envtest.Environment
	cfg    *rest.Config
	c      client.Client
	assets string
}

// TestCRDValidation installs the generated CRDs into a real API server and
// checks what a user meets at `kubectl apply`: the samples are accepted,
// defaults are filled in, every invalid manifest is refused with a message
// saying what to fix, and `kubectl get zmqauth`, the short names and the
// printer columns work. One control plane serves all subtests.
func TestCRDValidation(t *testing.T) {
	assets := testenv.KubeAssets(t)
	root := testenv.RepoRoot(t)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest with the zmqauth CRDs: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, zmqauthv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatalf("build scheme: %v", err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	e := &crdEnv{env: env, cfg: cfg, c: c, assets: assets}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: crdTestNamespace}}); err != nil {
		t.Fatalf("create namespace %s: %v", crdTestNamespace, err)
	}

	// Order matters: the samples created first are the objects the status,
	// printer column and kubectl subtests look at.
	t.Run("Samples", func(t *testing.T) { testSamplesApply(ctx, t, e, root) })
	t.Run("Defaults", func(t *testing.T) { testDefaults(ctx, t, e) })
	t.Run("Accepted", func(t *testing.T) { testAccepted(ctx, t, e) })
	t.Run("Refused", func(t *testing.T) { testRefused(ctx, t, e) })
	t.Run("Descriptions", func(t *testing.T) { testDescriptions(ctx, t, e) })
	t.Run("Discovery", func(t *testing.T) { testDiscovery(t, e) })
	t.Run("PrinterColumns", func(t *testing.T) { testPrinterColumns(ctx, t, e) })
	t.Run("Kubectl", func(t *testing.T) { testKubectl(t, e) })
}

// createYAML creates the object a YAML manifest describes, in
// crdTestNamespace unless it is cluster-scoped, as `kubectl create -f` would.
func createYAML(ctx context.Context, c client.Client, manifest string) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		return nil, fmt.Errorf("test manifest is not YAML: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("test manifest is not an object: %w", err)
	}
	if u.GetKind() != "ClusterCurveGrant" {
		u.SetNamespace(crdTestNamespace)
	}
	return u, c.Create(ctx, u)
}

// manifest returns a manifest of kind with the given name and spec, the spec
// written as YAML at column zero.
func manifest(kind, name, spec string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: zmqauth.io/v1alpha1\nkind: %s\nmetadata:\n  name: %s\nspec:\n", kind, name)
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// publishedTestKeys are public keys whose secret keys are printed in
// libzmq's zmq_curve(7) and RFC 7748: fine in tests, never in a sample a
// user applies.
var publishedTestKeys = []string{
	"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
	"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
	"G=]<>I7>&bBC>O5V{aj/4zK}kco8}o(.HIuS*=:#",
}

func testSamplesApply(ctx context.Context, t *testing.T, e *crdEnv, root string) {
	dir := filepath.Join(root, "config", "samples")
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatalf("read samples kustomization: %v", err)
	}
	if err := yaml.Unmarshal(raw, &kustomization); err != nil {
		t.Fatalf("parse samples kustomization: %v", err)
	}
	// Every sample file is in the kustomization, and every kind has one.
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kustomization.Resources, base) {
			t.Errorf("config/samples/%s is not listed in config/samples/kustomization.yaml", base)
		}
	}

	kinds := map[string]bool{}
	for _, name := range kustomization.Resources {
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("read sample: %v", err)
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("parse sample: %v", err)
			}
			kinds[meta.Kind] = true
			for _, k := range publishedTestKeys {
				if strings.Contains(string(doc), k) {
					t.Errorf("sample %s admits %s, a public key whose secret key is published: anyone who applies it lets everybody in under that name", name, k)
				}
			}
			if _, err := createYAML(ctx, e.c, string(doc)); err != nil {
				t.Fatalf("the API server refused sample %s: %v", name, err)
			}
		})
	}
	for _, kind := range []string{"CurveServer", "CurveClient", "ClusterCurveGrant"} {
		if !kinds[kind] {
			t.Errorf("config/samples has no %s", kind)
		}
	}
}

// testDefaults creates objects from the Go types with everything optional
// left out, as a controller or a Go user would, and checks the defaults the
// API server fills in.
func testDefaults(ctx context.Context, t *testing.T, e *crdEnv) {
	srv := &zmqauthv1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: crdTestNamespace},
		Spec:       zmqauthv1alpha1.CurveServerSpec{SecretName: "minimal-curve"},
	}
	if err := e.c.Create(ctx, srv); err != nil {
		t.Fatalf("create a CurveServer with only secretName: %v", err)
	}
	cli := &zmqauthv1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: crdTestNamespace},
		Spec:       zmqauthv1alpha1.CurveClientSpec{SecretName: "minimal-client-curve"},
	}
	if err := e.c.Create(ctx, cli); err != nil {
		t.Fatalf("create a CurveClient with only secretName: %v", err)
	}

	var gotSrv zmqauthv1alpha1.CurveServer
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: crdTestNamespace, Name: "minimal"}, &gotSrv); err != nil {
		t.Fatal(err)
	}
	var gotCli zmqauthv1alpha1.CurveClient
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: crdTestNamespace, Name: "minimal"}, &gotCli); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		rotation *zmqauthv1alpha1.RotationSpec
	}{
		{"CurveServer", gotSrv.Spec.Rotation},
		{"CurveClient", gotCli.Spec.Rotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rotation
			if r == nil || r.Period == nil || r.Overlap == nil {
				t.Fatalf("spec.rotation = %+v, want period and overlap defaulted", r)
			}
			wantPeriod := mustDuration(t, zmqauthv1alpha1.DefaultRotationPeriod)
			wantOverlap := mustDuration(t, zmqauthv1alpha1.DefaultRotationOverlap)
			if r.Period.Duration != wantPeriod || r.Overlap.Duration != wantOverlap {
				t.Errorf("spec.rotation defaulted to {period: %v, overlap: %v}, want the documented {%v, %v}",
					r.Period.Duration, r.Overlap.Duration, wantPeriod, wantOverlap)
			}
		})
	}
	if gotSrv.Spec.Mode != zmqauthv1alpha1.ModeEnforce {
		t.Errorf("CurveServer spec.mode defaulted to %q, want %q", gotSrv.Spec.Mode, zmqauthv1alpha1.ModeEnforce)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("parse duration %q: %v", s, err)
	}
	return d
}

// testAccepted covers the edges of each rule from the valid side, so a rule
// that is too strict fails here.
func testAccepted(ctx context.Context, t *testing.T, e *crdEnv) {
	tests := []struct {
		name     string
		manifest string
	}{
		{"server at the minimum period with no overlap", manifest("CurveServer", "min-period", `
secretName: min-period-curve
rotation: {period: 5m, overlap: 0s}`)},
		{"server with compound durations", manifest("CurveServer", "compound", `
secretName: compound
rotation: {period: 1h30m, overlap: 1h29m59.5s}`)},
		{"server with a long name and a dotted secret name", manifest("CurveServer", "a0123456789abcdef0123456789abcdef", `
secretName: keys.for.a0123456789abcdef`)},
		{"server in audit mode, clients by selectors and every port edge", manifest("CurveServer", "audit", `
secretName: audit-curve
mode: audit
clients:
  selector: {matchLabels: {app: collector}}
  namespaceSelector: {}
  publicKeys:
  - {name: laptop.alice, key: "`+validKey+`"}
  - {name: site-b, key: "`+validOtherKey+`"}
ports:
- {name: pub, port: 1, appPort: 65534}
- {name: zmq-rep, port: 65535, appPort: 2}
- {name: x1, port: 5555, appPort: 15555}
- {name: x2, port: 5556, appPort: 15555}`)},
		{"server publishing to every namespace", manifest("CurveServer", "publish-all", `
secretName: publish-all
publish: {namespaceSelector: {}}`)},
		{"client with every endpoint form", manifest("CurveClient", "endpoints", `
secretName: endpoints-curve
servers:
- {name: bus, endpoint: "tcp://bus:5555", localPort: 6001}
- {name: bus, endpoint: "bus.monitoring.svc.cluster.local.:1", localPort: 6002}
- {name: bus, namespace: monitoring, endpoint: "10.0.0.7:65535", localPort: 6003}
- {name: bus, endpoint: "tcp://[fd00::7]:5555", localPort: 6004}
- {name: bus, endpoint: "Bus.Example.COM:60000", localPort: 6005}`)},
		{"client whose application does CURVE itself", manifest("CurveClient", "library", `
secretName: library-curve
servers:
- {name: bus}
- {name: bus, namespace: other}`)},
		{"grant of raw keys to every server", manifest("ClusterCurveGrant", "everywhere", `
clients:
  publicKeys: [{name: ops, key: "`+validKey+`"}]
servers:
  selector: {}`)},
		{"grant by namespace on both sides", manifest("ClusterCurveGrant", "by-namespace", `
clients: {namespaceSelector: {matchLabels: {team: a}}}
servers: {namespaceSelector: {matchLabels: {team: b}}}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := createYAML(ctx, e.c, tc.manifest); err != nil {
				t.Fatalf("refused a valid manifest: %v\n%s", err, tc.manifest)
			}
		})
	}
}

// testRefused checks that every invalid manifest is refused as Invalid and
// that the error names the field and says what to fix.
func testRefused(ctx context.Context, t *testing.T, e *crdEnv) {
	server := func(spec string) string { return manifest("CurveServer", "bad", spec) }
	client := func(spec string) string { return manifest("CurveClient", "bad", spec) }
	grant := func(spec string) string { return manifest("ClusterCurveGrant", "bad", spec) }
	tests := []struct {
		name     string
		manifest string
		want     []string // every one must appear in the error
	}{
		// Z85 keys.
		{"key of 39 characters", server(`
secretName: s
clients: {publicKeys: [{name: k, key: "` + validKey[1:] + `"}]}`),
			[]string{"spec.clients.publicKeys[0].key", "key must be a 40-character Z85 CURVE public key (ZeroMQ RFC 32)"}},
		{"key with a character outside Z85", server(`
secretName: s
clients: {publicKeys: [{name: k, key: "` + "~" + validKey[1:] + `"}]}`),
			[]string{"spec.clients.publicKeys[0].key", "key must be a 40-character Z85 CURVE public key"}},
		{"key with a trailing newline", server(`
secretName: s
clients: {publicKeys: [{name: k, key: "` + validKey + `\n"}]}`),
			[]string{"spec.clients.publicKeys[0].key", "no quotes, spaces or newline"}},
		{"key in a grant", grant(`
clients: {publicKeys: [{name: k, key: "not-a-key"}]}
servers: {selector: {}}`),
			[]string{"spec.clients.publicKeys[0].key", "key must be a 40-character Z85 CURVE public key"}},
		{"duplicate public key names", server(`
secretName: s
clients: {publicKeys: [{name: k, key: "` + validKey + `"}, {name: k, key: "` + validOtherKey + `"}]}`),
			[]string{"spec.clients.publicKeys[1]", "Duplicate value"}},
		{"public key name not DNS-1123", server(`
secretName: s
clients: {publicKeys: [{name: Alice_Laptop, key: "` + validKey + `"}]}`),
			[]string{"spec.clients.publicKeys[0].name", "name must be a DNS-1123 subdomain"}},

		// Rotation.
		{"overlap equal to period", server(`
secretName: s
rotation: {period: 1h, overlap: 60m}`),
			[]string{"spec.rotation.overlap", "overlap must be shorter than period"}},
		{"overlap longer than period", client(`
secretName: s
rotation: {period: 10m, overlap: 1h}`),
			[]string{"spec.rotation.overlap", "overlap must be shorter than period"}},
		{"short period with the default overlap", server(`
secretName: s
rotation: {period: 12h}`),
			[]string{"spec.rotation.overlap", "overlap must be shorter than period", "overlap defaults to 24h"}},
		{"period below the minimum", server(`
secretName: s
rotation: {period: 4m59s, overlap: 1m}`),
			[]string{"spec.rotation.period", "period must be at least 5m", "zmqauth.io/rotate"}},
		{"period in days", client(`
secretName: s
rotation: {period: 30d}`),
			[]string{"spec.rotation.period", "period must be a duration such as 720h, 90m or 1h30m"}},
		{"period too long for a Go duration", server(`
secretName: s
rotation: {period: 9999999999h}`),
			[]string{"spec.rotation.period"}},
		{"overlap too long for a Go duration", server(`
secretName: s
rotation: {period: 720h, overlap: 9999999999h}`),
			[]string{"spec.rotation"}},
		{"negative overlap", server(`
secretName: s
rotation: {period: 1h, overlap: -1m}`),
			[]string{"spec.rotation.overlap", "overlap must be a duration such as 24h"}},

		// Ports.
		{"appPort equal to port", server(`
secretName: s
ports: [{name: pub, port: 5555, appPort: 5555}]`),
			[]string{"spec.ports[0].appPort", "appPort must differ from port"}},
		{"appPort equal to another entry's port", server(`
secretName: s
ports: [{name: pub, port: 5555, appPort: 5556}, {name: rep, port: 5556, appPort: 15556}]`),
			[]string{"spec.ports", "an appPort must not be the port of another entry"}},
		{"duplicate ports", server(`
secretName: s
ports: [{name: pub, port: 5555, appPort: 15555}, {name: rep, port: 5555, appPort: 15556}]`),
			[]string{"spec.ports[1]", "Duplicate value", `"port":5555`}},
		{"duplicate port names", server(`
secretName: s
ports: [{name: pub, port: 5555, appPort: 15555}, {name: pub, port: 5556, appPort: 15556}]`),
			[]string{"spec.ports", "port names must be unique"}},
		{"port name with an underscore", server(`
secretName: s
ports: [{name: zmq_pub, port: 5555, appPort: 15555}]`),
			[]string{"spec.ports[0].name", "port name must be an IANA service name"}},
		{"port name without a letter", server(`
secretName: s
ports: [{name: "5555", port: 5555, appPort: 15555}]`),
			[]string{"spec.ports[0].name", "with at least one letter"}},
		{"port name too long", server(`
secretName: s
ports: [{name: telemetry-publisher, port: 5555, appPort: 15555}]`),
			[]string{"spec.ports[0].name", "Too long"}},
		{"port 0", server(`
secretName: s
ports: [{name: pub, port: 0, appPort: 15555}]`),
			[]string{"spec.ports[0].port", "should be greater than or equal to 1"}},
		{"appPort above 65535", server(`
secretName: s
ports: [{name: pub, port: 5555, appPort: 65536}]`),
			[]string{"spec.ports[0].appPort", "should be less than or equal to 65535"}},

		// Mode.
		{"unknown mode", server(`
secretName: s
mode: strict`),
			[]string{"spec.mode", `Unsupported value: "strict"`, `"enforce"`, `"audit"`}},
		{"mode in the wrong case", server(`
secretName: s
mode: Enforce`),
			[]string{"spec.mode", `Unsupported value: "Enforce"`}},

		// Names.
		{"missing secretName", server(`
mode: enforce`),
			[]string{"spec.secretName", "Required value"}},
		{"secretName not DNS-1123", server(`
secretName: Telemetry_Keys`),
			[]string{"spec.secretName", "secretName must be a valid Secret name (DNS-1123 subdomain)"}},
		{"client secretName not DNS-1123", client(`
secretName: -keys`),
			[]string{"spec.secretName", "secretName must be a valid Secret name"}},
		{"server name not a DNS-1123 label", manifest("CurveServer", "telemetry.bus", `
secretName: s`),
			[]string{"a CurveServer name must be a DNS-1123 label"}},
		{"client name not a DNS-1123 label", manifest("CurveClient", "collector.a", `
secretName: s`),
			[]string{"a CurveClient name must be a DNS-1123 label"}},
		{"server reference not a DNS-1123 label", client(`
secretName: s
servers: [{name: Telemetry_Bus}]`),
			[]string{"spec.servers[0].name", "name must be the name of a CurveServer"}},
		{"server namespace not a DNS-1123 label", client(`
secretName: s
servers: [{name: bus, namespace: Monitoring}]`),
			[]string{"spec.servers[0].namespace", "namespace must be a namespace name"}},

		// Client routes.
		{"endpoint without a port", client(`
secretName: s
servers: [{name: bus, endpoint: telemetry-bus, localPort: 6000}]`),
			[]string{"spec.servers[0].endpoint", "endpoint must be host:port or tcp://host:port"}},
		{"endpoint with a port above 65535", client(`
secretName: s
servers: [{name: bus, endpoint: "tcp://telemetry-bus:70000", localPort: 6000}]`),
			[]string{"spec.servers[0].endpoint", "with a port from 1 to 65535"}},
		{"endpoint with another transport", client(`
secretName: s
servers: [{name: bus, endpoint: "ipc://telemetry-bus:5555", localPort: 6000}]`),
			[]string{"spec.servers[0].endpoint", "endpoint must be host:port"}},
		{"endpoint with a bind wildcard", client(`
secretName: s
servers: [{name: bus, endpoint: "tcp://*:5555", localPort: 6000}]`),
			[]string{"spec.servers[0].endpoint", "endpoint must be host:port"}},
		{"endpoint with an unbracketed IPv6 address", client(`
secretName: s
servers: [{name: bus, endpoint: "fd00::7:5555", localPort: 6000}]`),
			[]string{"spec.servers[0].endpoint", "endpoint must be host:port"}},
		{"endpoint without localPort", client(`
secretName: s
servers: [{name: bus, endpoint: "bus:5555"}]`),
			[]string{"spec.servers[0]", "endpoint and localPort go together"}},
		{"localPort without endpoint", client(`
secretName: s
servers: [{name: bus, localPort: 6000}]`),
			[]string{"spec.servers[0]", "endpoint and localPort go together"}},
		{"duplicate localPort", client(`
secretName: s
servers: [{name: bus, endpoint: "bus:5555", localPort: 6000}, {name: other, endpoint: "other:5555", localPort: 6000}]`),
			[]string{"spec.servers", "localPort must be unique across servers"}},

		// Grants.
		{"grant selecting no clients", grant(`
clients: {}
servers: {selector: {}}`),
			[]string{"spec.clients", "clients must set namespaceSelector, selector or publicKeys", "selector: {}"}},
		{"grant with an empty key list", grant(`
clients: {publicKeys: []}
servers: {selector: {}}`),
			[]string{"spec.clients", "clients must set namespaceSelector, selector or publicKeys"}},
		{"grant selecting no servers", grant(`
clients: {selector: {}}
servers: {}`),
			[]string{"spec.servers", "servers must set namespaceSelector, selector or both"}},
		{"grant without servers", grant(`
clients: {selector: {}}`),
			[]string{"spec.servers", "Required value"}},

		// Publishing.
		{"publish without a namespace selector", server(`
secretName: s
publish: {}`),
			[]string{"spec.publish.namespaceSelector", "Required value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := createYAML(ctx, e.c, tc.manifest)
			if err == nil {
				// Out of the way, so the next case is not refused as a duplicate.
				if err := e.c.Delete(ctx, obj); err != nil {
					t.Errorf("delete the wrongly accepted object: %v", err)
				}
				t.Fatalf("the API server accepted an invalid manifest:\n%s", tc.manifest)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want an Invalid error from validation", err)
			}
			t.Logf("refused as a user sees it: %v", err)
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// testDescriptions checks that every field in every served schema is
// documented, since that text is what `kubectl explain` shows users.
func testDescriptions(ctx context.Context, t *testing.T, e *crdEnv) {
	for _, name := range []string{"curveservers.zmqauth.io", "curveclients.zmqauth.io", "clustercurvegrants.zmqauth.io"} {
		t.Run(name, func(t *testing.T) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := e.c.Get(ctx, types.NamespacedName{Name: name}, &crd); err != nil {
				t.Fatalf("read CRD: %v", err)
			}
			if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" || crd.Spec.Versions[0].Schema == nil {
				t.Fatalf("CRD versions = %+v, want only v1alpha1 with a schema", crd.Spec.Versions)
			}
			var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
			walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
				for field, sub := range s.Properties {
					p := path + "." + field
					if path == "" && field == "metadata" {
						continue // ObjectMeta: documented by Kubernetes itself
					}
					if strings.TrimSpace(sub.Description) == "" {
						t.Errorf("%s has no description", p)
					}
					walk(p, &sub)
				}
				if s.Items != nil && s.Items.Schema != nil {
					walk(path+"[]", s.Items.Schema)
				}
			}
			walk("", crd.Spec.Versions[0].Schema.OpenAPIV3Schema)
		})
	}
}

// testDiscovery checks what kubectl learns from discovery: the category
// behind `kubectl get zmqauth`, the short names, and that no other served
// resource claims them.
func testDiscovery(t *testing.T, e *crdEnv) {
	dc, err := discovery.NewDiscoveryClientForConfig(e.cfg)
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	inCategory := map[string]metav1.APIResource{}
	shortNameOwners := map[string][]string{}
	for _, list := range lists {
		for _, r := range list.APIResources {
			if slices.Contains(r.Categories, "zmqauth") {
				inCategory[list.GroupVersion+"/"+r.Name] = r
			}
			for _, s := range r.ShortNames {
				shortNameOwners[s] = append(shortNameOwners[s], list.GroupVersion+"/"+r.Name)
			}
		}
	}

	tests := []struct {
		resource   string
		kind       string
		shortName  string
		namespaced bool
	}{
		{"curveservers", "CurveServer", "csrv", true},
		{"curveclients", "CurveClient", "ccli", true},
		{"clustercurvegrants", "ClusterCurveGrant", "ccg", false},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			key := "zmqauth.io/v1alpha1/" + tc.resource
			r, ok := inCategory[key]
			if !ok {
				t.Fatalf("%s is not in the zmqauth category, so `kubectl get zmqauth` would not list it", key)
			}
			if r.Kind != tc.kind || r.Namespaced != tc.namespaced {
				t.Errorf("%s: kind %q namespaced %v, want %q namespaced %v", key, r.Kind, r.Namespaced, tc.kind, tc.namespaced)
			}
			if !slices.Equal(r.ShortNames, []string{tc.shortName}) {
				t.Errorf("%s short names %v, want [%s]", key, r.ShortNames, tc.shortName)
			}
			if owners := shortNameOwners[tc.shortName]; len(owners) != 1 {
				t.Errorf("short name %q is claimed by %v; it must be unique", tc.shortName, owners)
			}
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") {
				t.Errorf("%s verbs %v lack list/watch", key, r.Verbs)
			}
		})
	}
	if len(inCategory) != len(tests) {
		t.Errorf("the zmqauth category holds %d resources, want %d: %v", len(inCategory), len(tests), inCategory)
	}
}

// testPrinterColumns writes a status like the controllers will and reads
// the objects back as the Table kubectl prints.
func testPrinterColumns(ctx context.Context, t *testing.T, e *crdEnv) {
	next := metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ready := []metav1.Condition{{
		Type: zmqauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: zmqauthv1alpha1.ReasonReconciled, Message: "keys and allowlist in place",
		LastTransitionTime: metav1.Now(),
	}}

	var srv zmqauthv1alpha1.CurveServer
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: crdTestNamespace, Name: "telemetry-bus"}, &srv); err != nil {
		t.Fatalf("read sample CurveServer: %v", err)
	}
	srv.Status = zmqauthv1alpha1.CurveServerStatus{
		PublicKey: validKey, KeyRevision: 3, NextRotationTime: &next, AuthorizedClients: 2,
		AllowlistConfigMap: "telemetry-bus-allowlist", ObservedGeneration: srv.Generation, Conditions: ready,
	}
	if err := e.c.Status().Update(ctx, &srv); err != nil {
		t.Fatalf("update CurveServer status: %v", err)
	}

	var cli zmqauthv1alpha1.CurveClient
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: crdTestNamespace, Name: "collector"}, &cli); err != nil {
		t.Fatalf("read sample CurveClient: %v", err)
	}
	cli.Status = zmqauthv1alpha1.CurveClientStatus{
		PublicKey: validOtherKey, KeyRevision: 1, NextRotationTime: &next, ObservedGeneration: cli.Generation,
		Servers: []zmqauthv1alpha1.ServerAuthorization{
			{Name: "telemetry-bus", Namespace: crdTestNamespace, Authorized: true, ServerPublicKey: validKey},
			{Name: "other", Namespace: "elsewhere", Reason: zmqauthv1alpha1.ReasonNotSelected, Message: "not selected"},
		},
		Conditions: ready,
	}
	if err := e.c.Status().Update(ctx, &cli); err != nil {
		t.Fatalf("update CurveClient status: %v", err)
	}

	var grant zmqauthv1alpha1.ClusterCurveGrant
	if err := e.c.Get(ctx, types.NamespacedName{Name: "monitoring-reads-telemetry"}, &grant); err != nil {
		t.Fatalf("read sample ClusterCurveGrant: %v", err)
	}
	grant.Status = zmqauthv1alpha1.ClusterCurveGrantStatus{MatchedServers: 1, MatchedClients: 4, ObservedGeneration: grant.Generation, Conditions: ready}
	if err := e.c.Status().Update(ctx, &grant); err != nil {
		t.Fatalf("update ClusterCurveGrant status: %v", err)
	}

	type column struct {
		name     string
		priority int32
		cell     string
	}
	tests := []struct {
		path    string
		object  string
		columns []column
	}{
		{"/apis/zmqauth.io/v1alpha1/namespaces/" + crdTestNamespace + "/curveservers", "telemetry-bus", []column{
			{"Name", 0, "telemetry-bus"}, {"Ready", 0, "True"}, {"Public Key", 0, validKey}, {"Revision", 0, "3"},
			{"Next Rotation", 0, "2030-01-02T03:04:05Z"}, {"Clients", 0, "2"}, {"Mode", 1, "enforce"},
			{"Secret", 1, "telemetry-bus-curve"}, {"Age", 0, ""},
		}},
		{"/apis/zmqauth.io/v1alpha1/namespaces/" + crdTestNamespace + "/curveclients", "collector", []column{
			{"Name", 0, "collector"}, {"Ready", 0, "True"}, {"Public Key", 0, validOtherKey}, {"Revision", 0, "1"},
			{"Next Rotation", 0, "2030-01-02T03:04:05Z"}, {"Secret", 1, "collector-curve"}, {"Age", 0, ""},
		}},
		{"/apis/zmqauth.io/v1alpha1/clustercurvegrants", "monitoring-reads-telemetry", []column{
			{"Name", 0, "monitoring-reads-telemetry"}, {"Servers", 0, "1"}, {"Clients", 0, "4"},
			{"Ready", 1, "True"}, {"Age", 0, ""},
		}},
	}
	hc, err := rest.HTTPClientFor(e.cfg)
	if err != nil {
		t.Fatalf("HTTP client: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			table := getTable(ctx, t, hc, strings.TrimSuffix(e.cfg.Host, "/")+tc.path+"?fieldSelector=metadata.name%3D"+tc.object)
			var names []string
			for _, c := range table.ColumnDefinitions {
				names = append(names, c.Name)
			}
			if len(table.ColumnDefinitions) != len(tc.columns) {
				t.Fatalf("columns %q, want %d columns", names, len(tc.columns))
			}
			if len(table.Rows) != 1 {
				t.Fatalf("table has %d rows, want 1", len(table.Rows))
			}
			row := table.Rows[0].Cells
			for i, want := range tc.columns {
				got := table.ColumnDefinitions[i]
				if got.Name != want.name || got.Priority != want.priority {
					t.Errorf("column %d is %q priority %d, want %q priority %d (all: %q)", i, got.Name, got.Priority, want.name, want.priority, names)
					continue
				}
				if want.cell == "" {
					continue // Age: depends on the clock
				}
				if cell := fmt.Sprint(row[i]); cell != want.cell {
					t.Errorf("column %q shows %q, want %q", want.name, cell, want.cell)
				}
			}
		})
	}
}

// getTable GETs url as the Table `kubectl get` asks for.
func getTable(ctx context.Context, t *testing.T, hc *http.Client, url string) metav1.Table {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decode Table: %v\n%s", err, body)
	}
	return table
}

// testKubectl runs the commands a user types, with the kubectl built next
// to the control plane.
func testKubectl(t *testing.T, e *crdEnv) {
	path := filepath.Join(e.assets, "kubectl")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no kubectl in %s (hack/controlplane.sh builds it); discovery was checked above", e.assets)
	}
	kubectl := e.env.ControlPlane.KubeCtl()
	kubectl.Path = path
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"category lists all three kinds", []string{"get", "zmqauth", "--all-namespaces", "-o", "name"}, []string{
			"curveserver.zmqauth.io/telemetry-bus", "curveclient.zmqauth.io/collector",
			"clustercurvegrant.zmqauth.io/monitoring-reads-telemetry",
		}},
		{"short name csrv with printer columns", []string{"get", "csrv", "-n", crdTestNamespace, "telemetry-bus"}, []string{
			"READY", "PUBLIC KEY", "REVISION", "NEXT ROTATION", "CLIENTS", "AGE", validKey,
		}},
		{"short name ccli", []string{"get", "ccli", "-n", crdTestNamespace, "collector", "-o", "wide"}, []string{
			"PUBLIC KEY", "SECRET", "collector-curve",
		}},
		{"short name ccg", []string{"get", "ccg", "monitoring-reads-telemetry"}, []string{"SERVERS", "CLIENTS"}},
		{"explain shows the field documentation", []string{"explain", "curveservers.spec.rotation.overlap"}, []string{
			"Overlap is how long",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := kubectl.Run(append([]string{"--request-timeout=30s"}, tc.args...)...)
			out, _ := io.ReadAll(stdout)
			if err != nil {
				errOut, _ := io.ReadAll(stderr)
				t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(tc.args, " "), err, out, errOut)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("kubectl %s does not print %q:\n%s", strings.Join(tc.args, " "), want, out)
				}
			}
		})
	}
}
