package injector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/controllers/injector/servingcert"
	"github.com/zmqauth/zmqauth/zap/sidecar"
)

func curveServer(ns, name string, mode zmqauthv1.ServerMode, ports ...zmqauthv1.ServerPort) *zmqauthv1.CurveServer {
	return &zmqauthv1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       zmqauthv1.CurveServerSpec{SecretName: name + "-keys", Mode: mode, Ports: ports},
	}
}

func curveClient(ns, name string, servers ...zmqauthv1.ServerReference) *zmqauthv1.CurveClient {
	return &zmqauthv1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       zmqauthv1.CurveClientSpec{SecretName: name + "-keys", Servers: servers},
	}
}

func (e *env) getPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{16}$`)

func (e *env) testServerAndClient(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "bus", zmqauthv1.ModeAudit,
		zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555},
		zmqauthv1.ServerPort{Name: "rep", Port: 5556, AppPort: 15556}))
	e.create(t, curveClient(ns, "collector",
		zmqauthv1.ServerReference{Name: "bus", Endpoint: "bus." + ns + ".svc:5555", LocalPort: 6000},
		zmqauthv1.ServerReference{Name: "telemetry", Namespace: "monitoring", Endpoint: "tcp://telemetry.monitoring.svc:7000", LocalPort: 6001},
		zmqauthv1.ServerReference{Name: "direct"})) // the application dials it itself: no route

	inbound := []sidecar.InboundRoute{
		{Name: "pub", Listen: ":5555", App: "127.0.0.1:15555", Keys: injector.ServerKeysDir, Allowlist: injector.ServerAllowlistDir, Mode: "audit"},
		{Name: "rep", Listen: ":5556", App: "127.0.0.1:15556", Keys: injector.ServerKeysDir, Allowlist: injector.ServerAllowlistDir, Mode: "audit"},
	}
	outbound := []sidecar.OutboundRoute{
		{Name: ns + ".bus", Listen: "127.0.0.1:6000", Server: "bus." + ns + ".svc:5555",
			ServerKey: injector.ClientKeysDir + "/server." + ns + ".bus.key", Keys: injector.ClientKeysDir},
		{Name: "monitoring.telemetry", Listen: "127.0.0.1:6001", Server: "tcp://telemetry.monitoring.svc:7000",
			ServerKey: injector.ClientKeysDir + "/server.monitoring.telemetry.key", Keys: injector.ClientKeysDir},
	}
	serverVols := []corev1.Volume{
		{Name: injector.ServerKeysVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "bus-keys", DefaultMode: ptr.To[int32](0o440)}}},
		{Name: injector.ServerAllowlistVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "bus-allowlist"}, DefaultMode: ptr.To[int32](0o444)}}},
	}
	clientVols := []corev1.Volume{
		{Name: injector.ClientKeysVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "collector-keys", DefaultMode: ptr.To[int32](0o440)}}},
	}
	serverMounts := []corev1.VolumeMount{
		{Name: injector.ServerKeysVolume, MountPath: "/var/run/zmqauth/server/keys", ReadOnly: true},
		{Name: injector.ServerAllowlistVolume, MountPath: "/var/run/zmqauth/server/allowlist", ReadOnly: true},
	}
	clientMounts := []corev1.VolumeMount{{Name: injector.ClientKeysVolume, MountPath: "/var/run/zmqauth/client/keys", ReadOnly: true}}
	admin := corev1.ContainerPort{Name: "zmqauth-admin", ContainerPort: 9901, Protocol: corev1.ProtocolTCP}
	serverPorts := []corev1.ContainerPort{
		{Name: "pub", ContainerPort: 5555, Protocol: corev1.ProtocolTCP},
		{Name: "rep", ContainerPort: 5556, Protocol: corev1.ProtocolTCP},
	}

	tests := []struct {
		name        string
		annotations map[string]string
		want        sidecar.Config
		vols        []corev1.Volume
		mounts      []corev1.VolumeMount
		ports       []corev1.ContainerPort
	}{
		{
			name:        "server",
			annotations: map[string]string{zmqauthv1.AnnotationServer: "bus"},
			want:        sidecar.Config{Admin: ":9901", Inbound: inbound},
			vols:        serverVols, mounts: serverMounts, ports: append(serverPorts[:2:2], admin),
		},
		{
			name:        "client",
			annotations: map[string]string{zmqauthv1.AnnotationClient: "collector"},
			want:        sidecar.Config{Admin: ":9901", Outbound: outbound},
			vols:        clientVols, mounts: clientMounts, ports: []corev1.ContainerPort{admin},
		},
		{
			name:        "both",
			annotations: map[string]string{zmqauthv1.AnnotationServer: "bus", zmqauthv1.AnnotationClient: "collector"},
			want:        sidecar.Config{Admin: ":9901", Inbound: inbound, Outbound: outbound},
			vols:        append(serverVols[:2:2], clientVols...), mounts: append(serverMounts[:2:2], clientMounts...),
			ports: append(serverPorts[:2:2], admin),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := appPod(ns, tc.name, tc.annotations)
			e.create(t, sent.DeepCopy())
			got := e.getPod(t, ns, tc.name)

			if n := len(got.Spec.InitContainers); n != 1 {
				t.Fatalf("%d init containers, want the sidecar only", n)
			}
			c := got.Spec.InitContainers[0]
			if c.Name != "zmqauth-sidecar" || c.Image != sidecarImage || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("sidecar name %q image %q pull %q", c.Name, c.Image, c.ImagePullPolicy)
			}
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("sidecar restartPolicy %v, want Always (a native sidecar)", c.RestartPolicy)
			}
			if want := []string{"sidecar", "--config-env", "ZMQAUTH_SIDECAR_CONFIG"}; !reflect.DeepEqual(c.Args, want) {
				t.Errorf("args %q, want %q", c.Args, want)
			}
			if len(c.Env) != 1 || c.Env[0].Name != "ZMQAUTH_SIDECAR_CONFIG" {
				t.Fatalf("env %v, want ZMQAUTH_SIDECAR_CONFIG only", c.Env)
			}
			cfg, err := sidecar.ParseConfig([]byte(c.Env[0].Value))
			if err != nil {
				t.Fatalf("the sidecar would refuse its configuration: %v\n%s", err, c.Env[0].Value)
			}
			// The injector sets no message size limit: every route gets
			// the sidecar's default.
			want := tc.want
			want.Inbound = slices.Clone(want.Inbound)
			want.Outbound = slices.Clone(want.Outbound)
			for i := range want.Inbound {
				want.Inbound[i].MaxMessageSize = sidecar.DefaultMaxMessageSize
			}
			for i := range want.Outbound {
				want.Outbound[i].MaxMessageSize = sidecar.DefaultMaxMessageSize
			}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("routes:\n got %+v\nwant %+v", cfg, want)
			}
			if !equality.Semantic.DeepEqual(c.Ports, tc.ports) {
				t.Errorf("ports %+v, want %+v", c.Ports, tc.ports)
			}
			if !equality.Semantic.DeepEqual(c.VolumeMounts, tc.mounts) {
				t.Errorf("mounts %+v, want %+v", c.VolumeMounts, tc.mounts)
			}
			if !equality.Semantic.DeepEqual(got.Spec.Volumes, tc.vols) {
				t.Errorf("volumes %+v, want %+v", got.Spec.Volumes, tc.vols)
			}
			checkProbe(t, "startup", c.StartupProbe, "/readyz")
			checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
			checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
			wantRes := corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			}
			if !equality.Semantic.DeepEqual(c.Resources, wantRes) {
				t.Errorf("resources %+v, want %+v", c.Resources, wantRes)
			}
			sc := c.SecurityContext
			if sc == nil || !ptr.Deref(sc.RunAsNonRoot, false) || ptr.Deref(sc.RunAsUser, 0) != 65532 || ptr.Deref(sc.RunAsGroup, 0) != 65532 ||
				!ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
				sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("security context %+v", sc)
			}
			psc := got.Spec.SecurityContext
			if psc == nil || ptr.Deref(psc.FSGroup, 0) != 65532 || ptr.Deref(psc.FSGroupChangePolicy, "") != corev1.FSGroupChangeOnRootMismatch {
				t.Errorf("pod security context %+v, want fsGroup 65532 with OnRootMismatch", psc)
			}
			if d := got.Annotations[injector.AnnotationInjected]; !digestRE.MatchString(d) {
				t.Errorf("annotation %s = %q, want sha256:<16 hex>", injector.AnnotationInjected, d)
			}
			if !equality.Semantic.DeepEqual(got.Spec.Containers[0].SecurityContext, sent.Spec.Containers[0].SecurityContext) ||
				len(got.Spec.Containers[0].VolumeMounts) != 0 || len(got.Spec.Containers) != 1 {
				t.Errorf("the application container was changed: %+v", got.Spec.Containers)
			}
		})
	}
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != 9901 {
		t.Errorf("%s probe %+v, want GET %s on 9901", what, p, path)
	}
}

func (e *env) testKeepsFSGroup(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}))
	p := appPod(ns, "own-fsgroup", map[string]string{zmqauthv1.AnnotationServer: "bus"})
	p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
	e.create(t, p)
	got := e.getPod(t, ns, "own-fsgroup")
	if len(got.Spec.InitContainers) != 1 {
		t.Fatal("no sidecar")
	}
	if psc := got.Spec.SecurityContext; ptr.Deref(psc.FSGroup, 0) != 2000 || psc.FSGroupChangePolicy != nil {
		t.Errorf("pod security context %+v, want the pod's own fsGroup 2000 and no change policy", psc)
	}
	cfg, err := sidecar.ParseConfig([]byte(got.Spec.InitContainers[0].Env[0].Value))
	if err != nil || cfg.Inbound[0].Mode != "enforce" {
		t.Errorf("mode of a CurveServer without spec.mode: %+v, %v; want enforce", cfg.Inbound, err)
	}
}

// testTwice: the webhook returns no patch for a pod it injected, and a pod
// created from an injected pod's spec comes out identical.
func (e *env) testTwice(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}))
	e.create(t, curveClient(ns, "collector", zmqauthv1.ServerReference{Name: "bus", Endpoint: "bus:5555", LocalPort: 6000}))
	ann := map[string]string{zmqauthv1.AnnotationServer: "bus", zmqauthv1.AnnotationClient: "collector"}
	e.create(t, appPod(ns, "first", ann))
	first := e.getPod(t, ns, "first")

	raw, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	h := injector.NewHandler(e.opts(), e.client, e.scheme, logr.Discard())
	resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "twice",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtimeRaw(raw),
	}})
	if !resp.Allowed || len(resp.Patches) != 0 || resp.Patch != nil {
		t.Errorf("re-injecting an injected pod: allowed %v, patches %v %s; want allowed and no patch", resp.Allowed, resp.Patches, resp.Patch)
	}

	second := first.DeepCopy()
	second.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "second", Annotations: first.Annotations}
	e.create(t, second)
	got := e.getPod(t, ns, "second")
	if !equality.Semantic.DeepEqual(got.Spec, first.Spec) {
		t.Errorf("pod created from an injected pod differs:\n got %+v\nwant %+v", got.Spec, first.Spec)
	}
	if got.Annotations[injector.AnnotationInjected] != first.Annotations[injector.AnnotationInjected] {
		t.Errorf("digest %q, want %q", got.Annotations[injector.AnnotationInjected], first.Annotations[injector.AnnotationInjected])
	}
}

func (e *env) testUnknown(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}))
	tests := []struct {
		name        string
		annotations map[string]string
		want        string
	}{
		{"server", map[string]string{zmqauthv1.AnnotationServer: "nope"}, fmt.Sprintf(`curveserver "nope" not found in namespace %q`, ns)},
		{"client", map[string]string{zmqauthv1.AnnotationServer: "bus", zmqauthv1.AnnotationClient: "ghost"}, fmt.Sprintf(`curveclient "ghost" not found in namespace %q`, ns)},
		{"empty", map[string]string{zmqauthv1.AnnotationServer: ""}, "annotation zmqauth.io/server is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.client.Create(context.Background(), appPod(ns, "unknown-"+tc.name, tc.annotations))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create: %v; want refused with %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func (e *env) testPortClash(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 6000, AppPort: 16000}))
	e.create(t, curveServer(ns, "admin", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 9901}))
	e.create(t, curveClient(ns, "collector", zmqauthv1.ServerReference{Name: "x", Endpoint: "x:1", LocalPort: 6000}))
	tests := []struct {
		name        string
		annotations map[string]string
		want        string
	}{
		{"listen", map[string]string{zmqauthv1.AnnotationServer: "bus", zmqauthv1.AnnotationClient: "collector"}, "port 6000 is both"},
		{"appPort", map[string]string{zmqauthv1.AnnotationServer: "admin"}, "appPort 9901 is also the sidecar's admin port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.client.Create(context.Background(), appPod(ns, "clash-"+tc.name, tc.annotations))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create: %v; want refused with %q", err, tc.want)
			}
		})
	}
}

func (e *env) testNoRoutes(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.create(t, curveServer(ns, "selfcurve", ""))
	e.create(t, appPod(ns, "selfcurve", map[string]string{zmqauthv1.AnnotationServer: "selfcurve"}))
	if got := e.getPod(t, ns, "selfcurve"); len(got.Spec.InitContainers) != 0 || got.Annotations[injector.AnnotationInjected] != "" {
		t.Errorf("a server without ports got a sidecar: %+v", got.Spec.InitContainers)
	}
}

// untouched creates pod and checks it was stored as sent.
func (e *env) untouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	e.create(t, pod.DeepCopy())
	got := e.getPod(t, pod.Namespace, pod.Name)
	if len(got.Spec.InitContainers) != 0 || got.Spec.SecurityContext != nil && got.Spec.SecurityContext.FSGroup != nil ||
		len(got.Spec.Volumes) != 0 || !reflect.DeepEqual(got.Annotations, pod.Annotations) {
		t.Errorf("pod %s/%s was changed: init %v, volumes %v, security %+v, annotations %v",
			pod.Namespace, pod.Name, got.Spec.InitContainers, got.Spec.Volumes, got.Spec.SecurityContext, got.Annotations)
	}
}

func (e *env) testUnannotated(t *testing.T) {
	ns := e.namespace(t, true, nil)
	e.untouched(t, appPod(ns, "plain", map[string]string{"team": "a"}))
}

// testRestrictedEnforced proves the namespaces of these tests enforce the
// restricted Pod Security Standard, so the injected pods above passed it.
func (e *env) testRestrictedEnforced(t *testing.T) {
	ns := e.namespace(t, true, nil)
	p := appPod(ns, "lax", nil)
	p.Spec.Containers[0].SecurityContext = nil
	if err := e.client.Create(context.Background(), p); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("a pod without a security context: %v; want refused by Pod Security admission", err)
	}
}

func (e *env) testNotOptedIn(t *testing.T) {
	ns := e.namespace(t, false, nil)
	// Would be refused (no such CurveServer) if the webhook saw it.
	e.untouched(t, appPod(ns, "annotated", map[string]string{zmqauthv1.AnnotationServer: "nope"}))
}

// testWebhookDown runs with the manager stopped: only annotated pods in
// opted-in namespaces are blocked.
func (e *env) testWebhookDown(t *testing.T) {
	plain := e.namespace(t, false, nil)
	optedIn := e.namespace(t, true, nil)
	e.create(t, curveServer(optedIn, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}))

	e.untouched(t, appPod(plain, "unrelated", nil))
	e.untouched(t, appPod(plain, "annotated-elsewhere", map[string]string{zmqauthv1.AnnotationServer: "bus"}))
	e.untouched(t, appPod(optedIn, "unannotated", nil))

	err := e.client.Create(context.Background(), appPod(optedIn, "needs-sidecar", map[string]string{zmqauthv1.AnnotationServer: "bus"}))
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Fatalf("annotated pod with the webhook down: %v; want refused (fail closed)", err)
	}
	t.Logf("refused while down: %v", err)
}

// testSelfManagedCert runs a second manager that makes its own serving
// certificate for a webhook configuration reached at https://localhost, and
// checks the API server calls it.
func (e *env) testSelfManagedCert(t *testing.T, cfg *rest.Config) {
	ctx := context.Background()
	system := e.namespace(t, false, nil)
	port := freePort(t)

	// The generated webhook, pointed at localhost and at namespaces
	// labelled for this test only.
	var installed admissionregistrationv1.MutatingWebhookConfiguration
	if err := e.client.Get(ctx, types.NamespacedName{Name: injector.DefaultWebhookConfigurationName}, &installed); err != nil {
		t.Fatal(err)
	}
	wh := installed.Webhooks[0].DeepCopy()
	wh.Name = "inject-certtest.zmqauth.io"
	wh.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To(fmt.Sprintf("https://localhost:%d%s", port, injector.Path))}
	wh.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"zmqauth-test/cert": "yes"}}
	whc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "zmqauth-injector-certtest"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{*wh},
	}
	e.create(t, whc)

	opts := e.opts()
	opts.CertRotation = true
	opts.Namespace = system
	opts.WebhookConfigurationName = whc.Name
	opts.ExtraDNSNames = []string{"localhost"}
	opts.WebhookHost = "127.0.0.1"
	opts.WebhookPort = port
	stop := e.startManager(t, cfg, opts)
	defer stop()

	var secret corev1.Secret
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := e.client.Get(ctx, types.NamespacedName{Namespace: system, Name: injector.DefaultCertSecretName}, &secret); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(whc), whc); err != nil {
			return false, err
		}
		return len(secret.Data[servingcert.KeyCABundle]) > 0 && string(whc.Webhooks[0].ClientConfig.CABundle) == string(secret.Data[servingcert.KeyCABundle]), nil
	})
	if err != nil {
		t.Fatalf("certificate Secret and caBundle: %v", err)
	}
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data[servingcert.KeyCert]) == 0 || len(secret.Data[servingcert.KeyKey]) == 0 {
		t.Fatalf("certificate Secret: type %s, keys %v", secret.Type, keys(secret.Data))
	}

	app := e.namespace(t, false, map[string]string{"zmqauth-test/cert": "yes"})
	e.create(t, curveServer(app, "bus", "", zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}))
	// The server may take a moment to be up; the API server's call fails
	// closed until then.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := e.client.Create(ctx, appPod(app, "via-self-signed", map[string]string{zmqauthv1.AnnotationServer: "bus"}))
		if err != nil {
			t.Logf("not yet: %v", err)
		}
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("pod through the self-certified webhook: %v", err)
	}
	if got := e.getPod(t, app, "via-self-signed"); len(got.Spec.InitContainers) != 1 {
		t.Fatalf("not injected through the self-certified webhook: %+v", got.Spec.InitContainers)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, _ := strconv.Atoi(strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
	return p
}
