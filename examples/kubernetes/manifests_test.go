// Package kubernetes_test holds the manifests of examples/kubernetes to what
// `make demo` and a user applying them rely on: every document decodes
// strictly into its API type, the images are those internal/image builds
// (used with imagePullPolicy IfNotPresent: the node has no registry), the
// pods' annotations name the CurveServer and CurveClient declared next to
// them, and the ports line up from the client application to the server
// application. The node suite (test/node, TestDemoOnNode) applies them.
package kubernetes_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/internal/image"
)

// manifests is what the example's files declare.
type manifests struct {
	namespaces  []corev1.Namespace
	servers     []zmqauthv1.CurveServer
	clients     []zmqauthv1.CurveClient
	services    []corev1.Service
	deployments []appsv1.Deployment
	jobs        []batchv1.Job
	pods        []corev1.Pod
}

// load decodes every document of the YAML files in dir, strictly (an
// unknown or misspelt field fails).
func load(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var m manifests
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var target any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 Namespace":
				m.namespaces = append(m.namespaces, corev1.Namespace{})
				target = &m.namespaces[len(m.namespaces)-1]
			case "zmqauth.io/v1alpha1 CurveServer":
				m.servers = append(m.servers, zmqauthv1.CurveServer{})
				target = &m.servers[len(m.servers)-1]
			case "zmqauth.io/v1alpha1 CurveClient":
				m.clients = append(m.clients, zmqauthv1.CurveClient{})
				target = &m.clients[len(m.clients)-1]
			case "v1 Service":
				m.services = append(m.services, corev1.Service{})
				target = &m.services[len(m.services)-1]
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, appsv1.Deployment{})
				target = &m.deployments[len(m.deployments)-1]
			case "batch/v1 Job":
				m.jobs = append(m.jobs, batchv1.Job{})
				target = &m.jobs[len(m.jobs)-1]
			case "v1 Pod":
				m.pods = append(m.pods, corev1.Pod{})
				target = &m.pods[len(m.pods)-1]
			default:
				t.Fatalf("%s document %d: unexpected %s %s", f, i, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, meta.Kind, err)
			}
		}
	}
	return m
}

// checkPod holds a pod template to the restricted profile's settings and
// the images the node has.
func checkPod(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: want runAsNonRoot and the RuntimeDefault seccomp profile (Pod Security restricted)", what)
	}
	for _, c := range spec.Containers {
		if c.Image != image.TagExamples && c.Image != image.TagPyzmq {
			t.Errorf("%s container %s: image %q, want %s or %s (internal/image)", what, c.Name, c.Image, image.TagExamples, image.TagPyzmq)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s container %s: imagePullPolicy %q, want IfNotPresent (the images are imported, there is no registry)", what, c.Name, c.ImagePullPolicy)
		}
		csc := c.SecurityContext
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation || csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s container %s: want allowPrivilegeEscalation false and all capabilities dropped (Pod Security restricted)", what, c.Name)
		}
	}
}

// flag returns the value after name in a command line.
func flag(cmd []string, name string) string {
	i := slices.Index(cmd, name)
	if i < 0 || i+1 == len(cmd) {
		return ""
	}
	return cmd[i+1]
}

func TestExampleManifests(t *testing.T) {
	m := load(t, ".")
	if len(m.namespaces) != 1 || len(m.servers) != 1 || len(m.clients) != 1 || len(m.services) != 1 || len(m.deployments) != 2 || len(m.pods) != 0 {
		t.Fatalf("want one Namespace, CurveServer, CurveClient and Service and two Deployments, got %d, %d, %d, %d, %d (and %d pods)",
			len(m.namespaces), len(m.servers), len(m.clients), len(m.services), len(m.deployments), len(m.pods))
	}
	ns := m.namespaces[0]
	if ns.Labels[zmqauthv1.LabelInject] != zmqauthv1.InjectEnabled || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s labels %v: want %s=%s and Pod Security restricted enforced", ns.Name, ns.Labels, zmqauthv1.LabelInject, zmqauthv1.InjectEnabled)
	}
	// `kubectl apply -f examples/kubernetes/` takes the files in name order:
	// the namespace's file sorts first.
	files, _ := filepath.Glob("*.yaml")
	if !strings.Contains(mustRead(t, files[0]), "kind: Namespace") {
		t.Errorf("%s sorts first but does not declare the namespace", files[0])
	}

	server, client, svc := m.servers[0], m.clients[0], m.services[0]
	for _, obj := range []struct{ kind, name, ns string }{
		{"CurveServer", server.Name, server.Namespace}, {"CurveClient", client.Name, client.Namespace}, {"Service", svc.Name, svc.Namespace},
		{"Deployment", m.deployments[0].Name, m.deployments[0].Namespace}, {"Deployment", m.deployments[1].Name, m.deployments[1].Namespace},
	} {
		if obj.ns != ns.Name {
			t.Errorf("%s %s is in namespace %q, want %s (applied without -n)", obj.kind, obj.name, obj.ns, ns.Name)
		}
	}
	if len(server.Spec.Ports) != 1 || len(client.Spec.Servers) != 1 || len(svc.Spec.Ports) != 1 {
		t.Fatalf("want one port on the server, the client and the Service")
	}
	port, dest := server.Spec.Ports[0], client.Spec.Servers[0]
	if dest.Name != server.Name || dest.Endpoint != fmt.Sprintf("tcp://%s:%d", svc.Name, svc.Spec.Ports[0].Port) {
		t.Errorf("the CurveClient names %s at %s, want CurveServer %s at its Service tcp://%s:%d", dest.Name, dest.Endpoint, server.Name, svc.Name, svc.Spec.Ports[0].Port)
	}
	if svc.Spec.Ports[0].TargetPort.IntValue() != int(port.Port) {
		t.Errorf("the Service targets %s, want the sidecar's CURVE port %d", svc.Spec.Ports[0].TargetPort.String(), port.Port)
	}

	for _, d := range m.deployments {
		tpl := d.Spec.Template
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(tpl.Labels)) {
			t.Errorf("Deployment %s: its selector does not match its pods (%v)", d.Name, err)
		}
		checkPod(t, "Deployment "+d.Name, tpl.Spec)
		cmd := tpl.Spec.Containers[0].Command
		switch {
		case tpl.Annotations[zmqauthv1.AnnotationServer] != "":
			if got := tpl.Annotations[zmqauthv1.AnnotationServer]; got != server.Name {
				t.Errorf("Deployment %s serves as CurveServer %q, want %s", d.Name, got, server.Name)
			}
			if !svcSelects(svc, tpl.Labels) {
				t.Errorf("Service %s does not select the server's pods", svc.Name)
			}
			if got, want := flag(cmd, "--bind"), fmt.Sprintf("tcp://127.0.0.1:%d", port.AppPort); got != want {
				t.Errorf("the server application binds %q, want the appPort %s", got, want)
			}
		case tpl.Annotations[zmqauthv1.AnnotationClient] != "":
			if got := tpl.Annotations[zmqauthv1.AnnotationClient]; got != client.Name {
				t.Errorf("Deployment %s connects as CurveClient %q, want %s", d.Name, got, client.Name)
			}
			if got, want := flag(cmd, "--connect"), fmt.Sprintf("tcp://127.0.0.1:%d", dest.LocalPort); got != want {
				t.Errorf("the client application connects to %q, want the localPort %s", got, want)
			}
		default:
			t.Errorf("Deployment %s has no zmqauth annotation", d.Name)
		}
	}

	refused := load(t, "refused")
	if len(refused.pods) != 1 {
		t.Fatalf("refused/: want one Pod, got %d", len(refused.pods))
	}
	p := refused.pods[0]
	checkPod(t, "refused pod "+p.Name, p.Spec)
	if got := p.Annotations[zmqauthv1.AnnotationServer]; got == "" || got == server.Name || p.Namespace != ns.Name {
		t.Errorf("the refused pod names CurveServer %q in %q; want one that does not exist, in %s", got, p.Namespace, ns.Name)
	}
}

// TestUngrantedManifests: the outsider is a CurveClient of another
// namespace that names the example's server at its Service, with no grant,
// and a Job whose pod connects as it.
func TestUngrantedManifests(t *testing.T) {
	example := load(t, ".")
	m := load(t, "ungranted")
	if len(m.namespaces) != 1 || len(m.clients) != 1 || len(m.jobs) != 1 || len(m.servers)+len(m.services)+len(m.deployments)+len(m.pods) != 0 {
		t.Fatalf("ungranted/: want one Namespace, CurveClient and Job")
	}
	ns, client, job := m.namespaces[0], m.clients[0], m.jobs[0]
	server, svc := example.servers[0], example.services[0]
	if ns.Name == example.namespaces[0].Name || client.Namespace != ns.Name || job.Namespace != ns.Name {
		t.Errorf("the outsider's objects are in %q and %q, want both in its own namespace %s, not the example's", client.Namespace, job.Namespace, ns.Name)
	}
	if ns.Labels[zmqauthv1.LabelInject] != zmqauthv1.InjectEnabled {
		t.Errorf("namespace %s is not opted in to injection", ns.Name)
	}
	if len(client.Spec.Servers) != 1 {
		t.Fatalf("the outsider names %d servers, want 1", len(client.Spec.Servers))
	}
	dest := client.Spec.Servers[0]
	if dest.Name != server.Name || dest.Namespace != server.Namespace || dest.Endpoint != fmt.Sprintf("tcp://%s.%s:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port) {
		t.Errorf("the outsider names %s/%s at %s, want %s/%s at its Service", dest.Namespace, dest.Name, dest.Endpoint, server.Namespace, server.Name)
	}
	if server.Spec.Clients != nil && server.Spec.Clients.NamespaceSelector != nil {
		t.Errorf("CurveServer %s admits clients of other namespaces: the outsider must have no grant", server.Name)
	}
	tpl := job.Spec.Template
	checkPod(t, "Job "+job.Name, tpl.Spec)
	if got := tpl.Annotations[zmqauthv1.AnnotationClient]; got != client.Name {
		t.Errorf("the Job's pod connects as CurveClient %q, want %s", got, client.Name)
	}
	if got, want := flag(tpl.Spec.Containers[0].Command, "--connect"), fmt.Sprintf("tcp://127.0.0.1:%d", dest.LocalPort); got != want {
		t.Errorf("the outsider's application connects to %q, want the localPort %s", got, want)
	}
	if flag(tpl.Spec.Containers[0].Command, "--count") == "" {
		t.Error("the outsider's req-client has no --count: the Job would never end")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func svcSelects(svc corev1.Service, labels map[string]string) bool {
	for k, v := range svc.Spec.Selector {
		if labels[k] != v {
			return false
		}
	}
	return len(svc.Spec.Selector) > 0
}
