package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/internal/node"
)

// TestTwentyClientPods: one server pod serves twenty client pods at once
// (fifteen zmq4 and five pyzmq REQ clients of one CurveClient): all twenty
// become Ready on the one 2-CPU node (the injected sidecar requests 10m
// CPU and 32Mi), each gets replies and, once it has, loses none, and the
// server's sidecar holds twenty sessions.
func TestTwentyClientPods(t *testing.T) {
	needNode(t)
	ns := newNamespace(t, "twenty")
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556")))
	server := readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]

	const zmq4Pods, pyzmqPods = 15, 5
	began := time.Now()
	apply(t, ns, curveClient("callers", "echo", "")+"---\n"+
		clientDeployment("zmq4-callers", "callers", zmq4Pods, zmq4ReqClient("tcp://127.0.0.1:6556", "--interval", "250ms", "--timeout", "2s"))+"---\n"+
		clientDeployment("py-callers", "callers", pyzmqPods, pyzmqReqClient("tcp://127.0.0.1:6556", "--interval", "250ms", "--timeout", "2s")))
	const n = zmq4Pods + pyzmqPods
	pods := readyPods(t, ns, "app in (zmq4-callers,py-callers)", n, 3*time.Minute)
	ready := time.Since(began)

	served := map[string]clientStats{}
	waitFor(t, 2*time.Minute, fmt.Sprintf("replies in all %d client pods", n), func(context.Context) (bool, error) {
		for _, p := range pods {
			if _, ok := served[p.Name]; ok {
				continue
			}
			if s, ok := tailSummary(t, ns, p.Name); ok && s.Received > 0 {
				served[p.Name] = s
			}
		}
		return len(served) == n, nil
	})
	t.Logf("%d client pods Ready %s and all served %s after they were applied", n, ready.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))

	waitFor(t, time.Minute, fmt.Sprintf("%d sessions at the server's sidecar", n), func(context.Context) (bool, error) {
		return sidecarMetric(t, server, mSessions, nil) == n, nil
	})

	// After warm-up (a pyzmq client may lose its first request: the known
	// defect TestTrafficThroughSidecars describes), every pod gets ten more
	// replies and loses nothing.
	base := map[string]clientStats{}
	for _, p := range pods {
		s, ok := tailSummary(t, ns, p.Name)
		if !ok {
			t.Fatalf("%s printed no summary", p.Name)
		}
		base[p.Name] = s
	}
	waitFor(t, time.Minute, "ten more replies in every client pod", func(context.Context) (bool, error) {
		for _, p := range pods {
			if s, ok := tailSummary(t, ns, p.Name); !ok || s.Received < base[p.Name].Received+10 {
				return false, nil
			}
		}
		return true, nil
	})
	lostTotal := 0
	for _, p := range pods {
		s, _ := tailSummary(t, ns, p.Name)
		lostTotal += base[p.Name].Lost
		if s.Lost != base[p.Name].Lost {
			t.Errorf("%s lost %d requests after warm-up: %+v (at warm-up %+v)", p.Name, s.Lost-base[p.Name].Lost, s, base[p.Name])
		}
		if now := podNow(t, ns, p.Name); restartCount(t, &now, "app") != 0 {
			got := restartCount(t, &now, "app")
			t.Errorf("%s: the application restarted %d times", p.Name, got)
		}
	}
	if got := sidecarMetric(t, server, mSessions, nil); got != n {
		t.Errorf("the server's sidecar has %v sessions, want %d", got, n)
	}
	t.Logf("requests lost during warm-up, all pods: %d", lostTotal)

	// What the node holds: the requests of every pod on it against its
	// allocatable CPU and memory.
	nd, err := env.Clientset.CoreV1().Nodes().Get(context.Background(), node.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := env.Clientset.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node.NodeName})
	if err != nil {
		t.Fatal(err)
	}
	cpu, mem, running := resource.Quantity{}, resource.Quantity{}, 0
	for _, p := range all.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		running++
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			cpu.Add(c.Resources.Requests[corev1.ResourceCPU])
			mem.Add(c.Resources.Requests[corev1.ResourceMemory])
		}
	}
	t.Logf("running pods on the node: %d, requesting %s CPU and %s memory of %s and %s allocatable",
		running, cpu.String(), mem.String(), nd.Status.Allocatable.Cpu(), nd.Status.Allocatable.Memory())
}
