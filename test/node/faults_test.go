package node_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/controllers/injector"
)

// reqOutage is what a req-client's summary lines show of a fault at a
// moment: requests lost since, and when replies came again.
type reqOutage struct {
	lost      int
	resumedIn time.Duration // from the fault to the first summary with a new reply after the loss
	recovered bool          // five replies or more after that one
}

// reqOutageSince reads the summary lines of a req-client around a fault at
// since: the loss is the first line after since whose lost count rose,
// resumption the first line after it with a new reply.
func reqOutageSince(lines []timedStats, since time.Time) reqOutage {
	var o reqOutage
	if len(lines) == 0 {
		return o
	}
	b := 0
	for i, l := range lines {
		if !l.at.After(since) {
			b = i
		}
	}
	ref := -1
	for i := b + 1; i < len(lines); i++ {
		if lines[i].Lost > lines[b].Lost {
			ref = i
			break
		}
	}
	last := lines[len(lines)-1]
	o.lost = last.Lost - lines[b].Lost
	if ref < 0 {
		// Nothing lost (yet): recovered once replies kept coming for a
		// while after the fault.
		o.recovered = last.Received >= lines[b].Received+20
		return o
	}
	for i := ref + 1; i < len(lines); i++ {
		if lines[i].Received > lines[ref].Received {
			o.resumedIn = lines[i].at.Sub(since)
			o.recovered = last.Received >= lines[i].Received+5
			break
		}
	}
	return o
}

// subOutage is what a sub's summary lines show of a fault at a moment.
type subOutage struct {
	missed    int           // messages the publisher sent that never arrived
	resumedIn time.Duration // from the fault to the first summary counting the gap
	recovered bool          // twenty messages or more received after that one
}

func subOutageSince(lines []subStats, since time.Time) subOutage {
	var o subOutage
	if len(lines) == 0 {
		return o
	}
	b := 0
	for i, l := range lines {
		if !l.at.After(since) {
			b = i
		}
	}
	last := lines[len(lines)-1]
	o.missed = last.Gaps - lines[b].Gaps
	if o.missed == 0 {
		o.recovered = last.Received >= lines[b].Received+80
	}
	for i := b + 1; i < len(lines); i++ {
		if lines[i].Gaps > lines[b].Gaps {
			o.resumedIn = lines[i].at.Sub(since)
			o.recovered = last.Received >= lines[i].Received+20
			break
		}
	}
	return o
}

// faultApps is a REQ/REP pair and a PUB/SUB pair in one namespace, each
// client in its own pod, all under traffic.
type faultApps struct {
	ns                             string
	echo, ticker, caller, listener corev1.Pod
}

const pubInterval = 50 * time.Millisecond // two topics: 40 messages a second

func startFaultApps(t *testing.T, ns string) faultApps {
	t.Helper()
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		serverManifests("ticker", 1, zmq4Pub("tcp://127.0.0.1:15556", "--interval", pubInterval.String()))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		curveClient("listener", "ticker", "")+"---\n"+
		clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556", "--timeout", "1s"))+"---\n"+
		clientDeployment("listener", "listener", 1, zmq4Sub("tcp://127.0.0.1:6556")))
	a := faultApps{ns: ns}
	a.echo = readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]
	a.ticker = readyPods(t, ns, "app=ticker", 1, 2*time.Minute)[0]
	a.caller = readyPods(t, ns, "app=caller", 1, 2*time.Minute)[0]
	a.listener = readyPods(t, ns, "app=listener", 1, 2*time.Minute)[0]
	waitFor(t, time.Minute, "replies and published messages in the clients", func(context.Context) (bool, error) {
		r := reqSummaries(t, ns, a.caller.Name)
		s := subSummaries(t, ns, a.listener.Name)
		return len(r) > 0 && r[len(r)-1].Received > 0 && len(s) > 0 && s[len(s)-1].Received > 0, nil
	})
	return a
}

// recover waits until the REQ client and the subscriber show that a fault
// at since has passed, and returns what they lost.
func (a faultApps) recover(t *testing.T, since time.Time) (reqOutage, subOutage) {
	t.Helper()
	var r reqOutage
	var s subOutage
	waitFor(t, time.Minute, "the REQ and SUB clients to get messages again after the fault", func(context.Context) (bool, error) {
		for _, p := range []corev1.Pod{a.caller, a.listener} {
			now := podNow(t, a.ns, p.Name)
			if n := restartCount(t, &now, "app"); n > 0 {
				t.Fatalf("%s: the application restarted (%d) after the fault; it exited with: %s", p.Name, n, lastError(t, a.ns, p.Name))
			}
		}
		r = reqOutageSince(reqSummaries(t, a.ns, a.caller.Name), since)
		s = subOutageSince(subSummaries(t, a.ns, a.listener.Name), since)
		return r.recovered && s.recovered, nil
	})
	return r, s
}

// noAppRestarts checks that no application container of the four pods was
// restarted.
func (a faultApps) noAppRestarts(t *testing.T) {
	t.Helper()
	for _, p := range []corev1.Pod{a.echo, a.ticker, a.caller, a.listener} {
		now := podNow(t, a.ns, p.Name)
		if n := restartCount(t, &now, "app"); n != 0 {
			t.Errorf("%s: the application was restarted %d times", p.Name, n)
		}
	}
}

// TestSidecarKilledRecovers: when the sidecar process of the server pods,
// then of the client pods, is killed (SIGKILL through containerd, as a
// crash or an OOM kill would end it), the kubelet restarts it as a native
// sidecar, and the REQ/REP and PUB/SUB applications get messages again
// without being restarted themselves. It logs what each lost.
func TestSidecarKilledRecovers(t *testing.T) {
	needNode(t)
	a := startFaultApps(t, newNamespace(t, "sidecar-kill"))
	for _, side := range []struct {
		name    string
		victims []*corev1.Pod
	}{
		{"server", []*corev1.Pod{&a.echo, &a.ticker}},
		{"client", []*corev1.Pod{&a.caller, &a.listener}},
	} {
		t.Run(side.name, func(t *testing.T) {
			counts := map[string]int32{}
			for _, p := range side.victims {
				*p = podNow(t, a.ns, p.Name)
				counts[p.Name] = restartCount(t, p, injector.ContainerName)
			}
			killedAt := time.Now()
			for _, p := range side.victims {
				killContainer(t, p, injector.ContainerName)
			}
			for _, p := range side.victims {
				*p = waitRestarted(t, a.ns, p.Name, injector.ContainerName, counts[p.Name]+1, time.Minute)
				t.Logf("%s: sidecar restarted and Ready %s after the kill", p.Name, time.Since(killedAt).Round(100*time.Millisecond))
			}
			r, s := a.recover(t, killedAt)
			t.Logf("%s sidecars killed: REQ lost %d requests, first reply again %s after the kill; SUB missed %d messages (%s at 2 topics every %s), resumed %s after the kill",
				side.name, r.lost, r.resumedIn.Round(100*time.Millisecond), s.missed,
				(time.Duration(s.missed/2) * pubInterval).Round(10*time.Millisecond), pubInterval, s.resumedIn.Round(100*time.Millisecond))
			a.noAppRestarts(t)
			for _, p := range side.victims {
				now := podNow(t, a.ns, p.Name)
				if got := restartCount(t, &now, injector.ContainerName); got != counts[p.Name]+1 {
					t.Errorf("%s: the sidecar restarted %d times, want once", p.Name, got-counts[p.Name])
				}
			}
		})
	}
}

// TestServerPodDeletedClientsReconnect: deleting the server's pod under
// traffic, its Deployment's replacement comes up with a new address and
// the zmq4 and pyzmq REQ clients, still in their first pods and processes,
// reach it through the Service and get replies again. It logs the gaps.
func TestServerPodDeletedClientsReconnect(t *testing.T) {
	needNode(t)
	ns := newNamespace(t, "server-delete")
	apply(t, ns, serverManifests("echo", 1, zmq4RepServer("tcp://127.0.0.1:15556"))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		clientDeployment("zmq4-caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556", "--timeout", "1s"))+"---\n"+
		clientDeployment("py-caller", "caller", 1, pyzmqReqClient("tcp://127.0.0.1:6556", "--timeout", "1s")))
	old := readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]
	clients := []corev1.Pod{
		readyPods(t, ns, "app=zmq4-caller", 1, 2*time.Minute)[0],
		readyPods(t, ns, "app=py-caller", 1, 2*time.Minute)[0],
	}
	waitFor(t, time.Minute, "replies in both clients", func(context.Context) (bool, error) {
		for _, c := range clients {
			if s := reqSummaries(t, ns, c.Name); len(s) == 0 || s[len(s)-1].Received == 0 {
				return false, nil
			}
		}
		return true, nil
	})

	deletedAt := time.Now()
	if err := env.Clientset.CoreV1().Pods(ns).Delete(context.Background(), old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the server's pod: %v", err)
	}
	var replacement corev1.Pod
	waitFor(t, 2*time.Minute, "the server's replacement pod to be Ready", func(ctx context.Context) (bool, error) {
		pods, err := env.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Name != old.Name && p.DeletionTimestamp == nil && podReady(&p) {
				replacement = p
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("replacement %s (%s, was %s) Ready %s after the delete", replacement.Name, replacement.Status.PodIP, old.Status.PodIP, time.Since(deletedAt).Round(100*time.Millisecond))

	// Each connect of the clients' sidecars is bounded (zap/relay's
	// connectTimeout): one made while the Service still sends new
	// connections to the deleted pod's silent address is retried against
	// the replacement within the handshake window, so neither application
	// sees its connection fail.
	for _, c := range clients {
		var o reqOutage
		waitFor(t, time.Minute, c.Name+" to get replies again", func(context.Context) (bool, error) {
			now := podNow(t, ns, c.Name)
			if n := restartCount(t, &now, "app"); n != 0 {
				t.Fatalf("%s: the application restarted (%d) after the server pod was deleted; it exited with: %s\nits sidecar's log:\n%s", c.Name, n, lastError(t, ns, c.Name), sidecarLog(t, now))
			}
			o = reqOutageSince(reqSummaries(t, ns, c.Name), deletedAt)
			return o.recovered, nil
		})
		t.Logf("%s: lost %d requests, first reply again %s after the server pod was deleted", c.Name, o.lost, o.resumedIn.Round(100*time.Millisecond))
	}
	if got := sidecarMetric(t, replacement, mSessions, nil); got != float64(len(clients)) {
		t.Errorf("the replacement's sidecar has %v sessions, want %d", got, len(clients))
	}
	for _, c := range clients {
		now := podNow(t, ns, c.Name)
		if now.UID != c.UID {
			t.Errorf("the client pod %s was replaced", c.Name)
		}
		for _, name := range []string{"app", injector.ContainerName} {
			if n := restartCount(t, &now, name); n != 0 {
				t.Errorf("%s: %s restarted %d times", c.Name, name, n)
			}
		}
	}
}
