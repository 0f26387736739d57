package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/internal/promtext"
)

// Sidecar metric names the tests read.
const (
	mHandshakes = "zmqauth_sidecar_handshakes_total"
	mSessions   = "zmqauth_sidecar_sessions_active"
	mRevoked    = "zmqauth_sidecar_sessions_revoked_total"
	mAllowlist  = "zmqauth_sidecar_allowlist_keys"
	mRelayed    = "zmqauth_sidecar_relayed_messages_total"
	mReloadErrs = "zmqauth_sidecar_reload_errors_total"
)

// zmq4Pub and zmq4Sub run examples/zmq4's pub and sub programs.
func zmq4Pub(bind string, extra ...string) app {
	return app{examplesImage(), append([]string{"/usr/local/bin/pub", "--bind", bind}, extra...)}
}

func zmq4Sub(connect string, extra ...string) app {
	return app{examplesImage(), append([]string{"/usr/local/bin/sub", "--connect", connect}, extra...)}
}

// zmqauthClient is a controller-runtime client of the node's API server
// that knows zmqauth's kinds.
func zmqauthClient(t *testing.T) client.Client {
	t.Helper()
	crlog.SetLogger(logr.Discard())
	s := runtime.NewScheme()
	if err := zmqauthv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatalf("client of the node's API server: %v", err)
	}
	return c
}

// authorizedCondition returns the CurveClient's Authorized condition, nil
// while it has none.
func authorizedCondition(ctx context.Context, c client.Client, ns, name string) (*metav1.Condition, error) {
	var cc zmqauthv1.CurveClient
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cc); err != nil {
		return nil, err
	}
	return meta.FindStatusCondition(cc.Status.Conditions, zmqauthv1.ConditionAuthorized), nil
}

// waitAuthorized waits until the CurveClient's Authorized condition has
// status want and returns it.
func waitAuthorized(t *testing.T, c client.Client, ns, name string, want metav1.ConditionStatus, timeout time.Duration) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	waitFor(t, timeout, fmt.Sprintf("CurveClient %s/%s Authorized=%s", ns, name, want), func(ctx context.Context) (bool, error) {
		cond, err := authorizedCondition(ctx, c, ns, name)
		if err != nil || cond == nil {
			return false, err
		}
		got = *cond
		return cond.Status == want, nil
	})
	return got
}

// timedLine is one line of a container's log with the time the kubelet
// recorded for it.
type timedLine struct {
	at   time.Time
	text string
}

// timedLogs returns a container's log lines with their timestamps (the
// current instance, or the previous one when previous is set).
func timedLogs(t *testing.T, ns, pod, container string, previous bool) []timedLine {
	t.Helper()
	data := podLog(t, ns, pod, corev1.PodLogOptions{Container: container, Timestamps: true, Previous: previous})
	var out []timedLine
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		ts, text, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		out = append(out, timedLine{at, text})
	}
	return out
}

// timedStats is a req-client summary line and when it was printed.
type timedStats struct {
	at time.Time
	clientStats
}

// reqSummaries are the req-client summary lines of a container's current
// instance, in order.
func reqSummaries(t *testing.T, ns, pod string) []timedStats {
	t.Helper()
	var out []timedStats
	for _, l := range timedLogs(t, ns, pod, "app", false) {
		var s clientStats
		if strings.Contains(l.text, `"sent"`) && json.Unmarshal([]byte(l.text), &s) == nil {
			out = append(out, timedStats{l.at, s})
		}
	}
	return out
}

// tailSummary is the last req-client summary line among a container's last
// lines (cheaper than the whole log for many pods).
func tailSummary(t *testing.T, ns, pod string) (clientStats, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, err := env.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "app", TailLines: ptr.To[int64](20)}).DoRaw(ctx)
	if err != nil {
		return clientStats{}, false
	}
	return lastSummary(string(data))
}

// subStats is examples/zmq4/sub's summary line.
type subStats struct {
	at       time.Time
	Received int      `json:"received"`
	Gaps     int      `json:"gaps"`
	Last     int      `json:"last"`
	Topics   []string `json:"topics"`
}

// subSummaries are the sub's summary lines of its container's current
// instance, in order.
func subSummaries(t *testing.T, ns, pod string) []subStats {
	t.Helper()
	var out []subStats
	for _, l := range timedLogs(t, ns, pod, "app", false) {
		var s subStats
		if strings.Contains(l.text, `"gaps"`) && json.Unmarshal([]byte(l.text), &s) == nil {
			s.at = l.at
			out = append(out, s)
		}
	}
	return out
}

// podNow reads a pod.
func podNow(t *testing.T, ns, name string) corev1.Pod {
	t.Helper()
	p, err := env.Clientset.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return *p
}

// containerStatus returns the status of a pod's container or init
// container (the injected sidecar is one) by name.
func containerStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		if i := slices.IndexFunc(list, func(s corev1.ContainerStatus) bool { return s.Name == name }); i >= 0 {
			return list[i], true
		}
	}
	return corev1.ContainerStatus{}, false
}

// restartCount is how often the kubelet restarted a pod's container.
func restartCount(t *testing.T, p *corev1.Pod, name string) int32 {
	t.Helper()
	s, ok := containerStatus(p, name)
	if !ok {
		t.Fatalf("pod %s has no container %s", p.Name, name)
	}
	return s.RestartCount
}

// containerdSocket is the node's containerd socket.
func containerdSocket(t *testing.T) string {
	t.Helper()
	sock := env.ContainerdSocket()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the node's containerd socket: %v", err)
	}
	return sock
}

// killContainer kills a running container's process with SIGKILL through
// containerd, as an OOM kill or a crash would end it, and returns when ctr
// has sent the signal.
func killContainer(t *testing.T, p *corev1.Pod, name string) {
	t.Helper()
	s, ok := containerStatus(p, name)
	if !ok || s.State.Running == nil {
		t.Fatalf("pod %s: container %s is not running: %+v", p.Name, name, s.State)
	}
	id, ok := strings.CutPrefix(s.ContainerID, "containerd://")
	if !ok {
		t.Fatalf("pod %s: container %s has ID %q, not a containerd one", p.Name, name, s.ContainerID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", "--address", containerdSocket(t), "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr tasks kill %s (%s of %s): %v\n%s", id, name, p.Name, err, out)
	}
}

// waitRestarted waits until the pod's container was restarted to the
// count want and is ready again, and returns the pod.
func waitRestarted(t *testing.T, ns, pod, container string, want int32, timeout time.Duration) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	waitFor(t, timeout, fmt.Sprintf("%s of %s/%s restarted (%d) and ready", container, ns, pod, want), func(ctx context.Context) (bool, error) {
		got, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		p = *got
		s, ok := containerStatus(got, container)
		return ok && s.RestartCount >= want && s.Ready && podReady(got), nil
	})
	return p
}

// sidecarMetric sums a sidecar's samples named name carrying labels.
func sidecarMetric(t *testing.T, pod corev1.Pod, name string, labels map[string]string) float64 {
	t.Helper()
	return promtext.Sum(sidecarMetrics(t, pod), name, labels)
}

// sidecarLog is the injected sidecar's log of its current instance.
func sidecarLog(t *testing.T, p corev1.Pod) string {
	t.Helper()
	return logs(t, p.Namespace, p.Name, injector.ContainerName)
}

// lastError is the last line of the previous instance of pod's application
// that is not a summary: why it exited.
func lastError(t *testing.T, ns, pod string) string {
	t.Helper()
	lines := timedLogs(t, ns, pod, "app", true)
	for i := len(lines) - 1; i >= 0; i-- {
		if _, ok := lastSummary(lines[i].text); !ok {
			return lines[i].text
		}
	}
	return ""
}
