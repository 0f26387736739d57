package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/internal/image"
	"github.com/zmqauth/zmqauth/internal/promtext"
)

// The example applications' images and their programs (examples/).
func examplesImage() string { return env.Tags[image.Examples] }
func pyzmqImage() string    { return env.Tags[image.Pyzmq] }

// app is how a test runs one of the example programs in a container.
type app struct {
	image   string
	command []string
}

func zmq4RepServer(bind string) app {
	return app{examplesImage(), []string{"/usr/local/bin/rep-server", "--bind", bind}}
}

func pyzmqRepServer(bind string) app {
	return app{pyzmqImage(), []string{"/usr/bin/python3", "/app/rep_server.py", "--bind", bind}}
}

func zmq4ReqClient(connect string, extra ...string) app {
	return app{examplesImage(), append([]string{"/usr/local/bin/req-client", "--connect", connect}, extra...)}
}

func pyzmqReqClient(connect string, extra ...string) app {
	return app{pyzmqImage(), append([]string{"/usr/bin/python3", "/app/req_client.py", "--connect", connect}, extra...)}
}

// podSpec is the pod template of an application under the restricted Pod
// Security profile; the injector adds the sidecar.
func podSpec(a app, restart string) string {
	cmd, _ := json.Marshal(a.command)
	return fmt.Sprintf(`restartPolicy: %s
      terminationGracePeriodSeconds: 2
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: app
        image: %s
        imagePullPolicy: Never
        command: %s
        env:
        - {name: PYTHONDONTWRITEBYTECODE, value: "1"}
        - {name: PYTHONUNBUFFERED, value: "1"}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}`, restart, a.image, cmd)
}

// serverManifests is a CurveServer NAME with one REP port (5556 -> app
// 15556), its Service, and a Deployment of replicas pods serving as it.
func serverManifests(name string, replicas int, a app) string {
	return fmt.Sprintf(`apiVersion: zmqauth.io/v1alpha1
kind: CurveServer
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  secretName: %[1]s-curve
  ports:
  - {name: rep, port: 5556, appPort: 15556}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports:
  - {name: rep, port: 5556, targetPort: 5556}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s}
      annotations: {zmqauth.io/server: %[1]s}
    spec:
      %[3]s
`, name, replicas, podSpec(a, "Always"))
}

// curveClient is a CurveClient NAME of the server SERVER (in serverNS, or
// the client's own namespace when empty) at its Service, reached by the
// application at 127.0.0.1:6556.
func curveClient(name, server, serverNS string) string {
	endpoint := "tcp://" + server + ":5556"
	nsField := ""
	if serverNS != "" {
		endpoint = "tcp://" + server + "." + serverNS + ":5556"
		nsField = "namespace: " + serverNS + ", "
	}
	return fmt.Sprintf(`apiVersion: zmqauth.io/v1alpha1
kind: CurveClient
metadata: {name: %[1]s}
spec:
  secretName: %[1]s-curve
  servers:
  - {%[2]sname: %[3]s, endpoint: "%[4]s", localPort: 6556}
`, name, nsField, server, endpoint)
}

// clientJob is a Job whose pod connects as the CurveClient CLIENT and runs
// the application to its end.
func clientJob(name, client string, a app) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: %[1]s}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {job: %[1]s}
      annotations: {zmqauth.io/client: %[2]s}
    spec:
      %[3]s
`, name, client, podSpec(a, "Never"))
}

// clientDeployment is a Deployment of replicas pods that connect as the
// CurveClient CLIENT and run the application until stopped.
func clientDeployment(name, client string, replicas int, a app) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s}
      annotations: {zmqauth.io/client: %[2]s}
    spec:
      %[4]s
`, name, client, replicas, podSpec(a, "Always"))
}

// newNamespace creates a namespace opted in to injection whose Pod Security
// admission enforces restricted, and deletes it when the test ends.
func newNamespace(t *testing.T, name string, labels ...string) string {
	t.Helper()
	ctx := context.Background()
	l := map[string]string{
		"zmqauth.io/inject":                  "enabled",
		"pod-security.kubernetes.io/enforce": "restricted",
	}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	_, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dir := filepath.Join(root, "bin", "node-e2e", "logs", "pods")
			if err := env.SavePodLogs(dir, name); err != nil {
				t.Logf("saving the pod logs of %s: %v", name, err)
			} else {
				t.Logf("the pod logs of namespace %s are in %s", name, dir)
			}
		}
		_ = env.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// kubectl runs kubectl against the node and returns its output.
func kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Node.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply applies manifests to namespace ns as a user would, failing the test
// if kubectl refuses them.
func apply(t *testing.T, ns, manifests string) {
	t.Helper()
	if out, err := kubectl(t, manifests, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// waitFor polls cond every 250 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readyPods waits for n Ready pods matching selector and returns them.
func readyPods(t *testing.T, ns, selector string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	waitFor(t, timeout, fmt.Sprintf("%d Ready pods %s in %s", n, selector, ns), func(ctx context.Context) (bool, error) {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		ready = ready[:0]
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready = append(ready, p)
			}
		}
		return len(ready) == n, nil
	})
	return ready
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// jobDone waits for the Job to complete and returns its pod.
func jobDone(t *testing.T, ns, job string, timeout time.Duration) corev1.Pod {
	t.Helper()
	pod, ok := jobEnded(t, ns, job, timeout)
	if !ok {
		t.Fatalf("Job %s/%s failed; its pod's log:\n%s", ns, job, logs(t, ns, pod.Name, "app"))
	}
	return pod
}

// jobEnded waits for the Job to complete or fail, and returns its pod and
// whether it completed.
func jobEnded(t *testing.T, ns, job string, timeout time.Duration) (corev1.Pod, bool) {
	t.Helper()
	completed := false
	waitFor(t, timeout, "Job "+ns+"/"+job+" to complete", func(ctx context.Context) (bool, error) {
		j, err := env.Clientset.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true, nil
			}
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				completed = true
				return true, nil
			}
		}
		return false, nil
	})
	pods, err := env.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "job=" + job})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of Job %s: %v (%d)", job, err, len(pods.Items))
	}
	return pods.Items[0], completed
}

// logs returns a container's log through the API server (which asks the
// kubelet), as `kubectl logs` does.
func logs(t *testing.T, ns, pod, container string) string {
	t.Helper()
	return podLog(t, ns, pod, corev1.PodLogOptions{Container: container})
}

// podLog returns what the API server gives for a pod's log with opts.
func podLog(t *testing.T, ns, pod string, opts corev1.PodLogOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, err := env.Clientset.CoreV1().Pods(ns).GetLogs(pod, &opts).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s/%s %s: %v", ns, pod, opts.Container, err)
	}
	return string(data)
}

// jsonLines decodes each line of a log that is a JSON object.
func jsonLines(log string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// clientStats is the req-client's summary line.
type clientStats struct {
	Sent     int `json:"sent"`
	Received int `json:"received"`
	Lost     int `json:"lost"`
	// Connections counts the sockets the zmq4 client opened.
	Connections int      `json:"connections"`
	UserIDs     []string `json:"user_ids"`
}

// lastStats is the last summary line a req-client printed, failing the
// test when there is none.
func lastStats(t *testing.T, log string) clientStats {
	t.Helper()
	s, ok := lastSummary(log)
	if !ok {
		t.Fatalf("no summary line in the client's log:\n%s", log)
	}
	return s
}

// lastSummary is the last summary line a req-client printed, if any.
func lastSummary(log string) (clientStats, bool) {
	var last clientStats
	found := false
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var s clientStats
		if strings.Contains(sc.Text(), `"sent"`) && json.Unmarshal(sc.Bytes(), &s) == nil {
			last, found = s, true
		}
	}
	return last, found
}

// sidecarMetrics reads the injected sidecar's /metrics at the pod's
// address: the test runs on the node, which reaches every pod.
func sidecarMetrics(t *testing.T, pod corev1.Pod) []promtext.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pod.Status.PodIP+":9901/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sidecar metrics of %s: %v", pod.Name, err)
	}
	defer resp.Body.Close()
	m, err := promtext.Parse(resp.Body)
	if err != nil {
		t.Fatalf("sidecar metrics of %s: %v", pod.Name, err)
	}
	return m
}

// runZmqauth runs the zmqauth command line (built from this checkout) with
// the node's kubeconfig.
func runZmqauth(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	bin := filepath.Join(root, "bin", "node-e2e", "zmqauth")
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", root, "-o", bin, "./cmd/zmqauth").CombinedOutput(); err != nil {
		return string(out), fmt.Errorf("go build: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
