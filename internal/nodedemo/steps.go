package nodedemo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/zmqauth/zmqauth/controllers/injector"
)

// poll calls cond every 250 ms until it holds, fails, or timeout passes;
// the error then says what was awaited and the last error cond saw.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w (last error: %v)", what, err, last)
	}
	return nil
}

func (r *run) apply(ctx context.Context, _ *Result) error {
	nss := r.c.clientset.CoreV1().Namespaces()
	for _, ns := range []string{Namespace, OutsideNamespace} {
		if _, err := nss.Get(ctx, ns, metav1.GetOptions{}); err != nil {
			continue
		}
		r.out.Say("deleting namespace %s, left by an earlier run", ns)
		if err := nss.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
		if err := poll(ctx, 2*time.Minute, "namespace "+ns+" to be gone", func(ctx context.Context) (bool, error) {
			_, err := nss.Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		}); err != nil {
			return err
		}
	}
	out, err := r.kubectl(ctx, "apply", "-f", filepath.Join(r.cfg.Root, "examples", "kubernetes"))
	r.out.SayLines(out)
	if err != nil {
		return fmt.Errorf("kubectl apply: %w", err)
	}
	return nil
}

// readyPod waits for the one Ready pod of the Deployment app and returns
// it.
func (r *run) readyPod(ctx context.Context, app string, timeout time.Duration) (corev1.Pod, error) {
	var pod corev1.Pod
	err := poll(ctx, timeout, "a Ready pod of Deployment "+app, func(ctx context.Context) (bool, error) {
		pods, err := r.c.clientset.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				pod = p
				return true, nil
			}
		}
		return false, nil
	})
	return pod, err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nativeSidecarReady reports whether the pod runs the injected sidecar as
// a native sidecar that the kubelet started and found ready.
func nativeSidecarReady(p *corev1.Pod) bool {
	i := slices.IndexFunc(p.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == injector.ContainerName })
	if i < 0 {
		return false
	}
	if rp := p.Spec.InitContainers[i].RestartPolicy; rp == nil || *rp != corev1.ContainerRestartPolicyAlways {
		return false
	}
	j := slices.IndexFunc(p.Status.InitContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == injector.ContainerName })
	if j < 0 {
		return false
	}
	s := p.Status.InitContainerStatuses[j]
	return s.Started != nil && *s.Started && s.Ready
}

func (r *run) podsReady(ctx context.Context, res *Result) error {
	res.SidecarsNative = true
	var names []string
	for _, app := range []string{ServerName, ClientName} {
		pod, err := r.readyPod(ctx, app, 3*time.Minute)
		if err != nil {
			return err
		}
		names = append(names, pod.Name)
		res.SidecarsNative = res.SidecarsNative && nativeSidecarReady(&pod)
	}
	out, err := r.kubectl(ctx, "get", "pods", "-n", Namespace)
	r.out.SayLines("$ kubectl -n " + Namespace + " get pods\n" + out)
	if err != nil {
		return fmt.Errorf("kubectl get pods: %w", err)
	}
	for i, app := range []string{ServerName, ClientName} {
		res.Pods[app] = readyColumn(out, names[i])
	}
	if !res.SidecarsNative {
		return fmt.Errorf("a pod lacks the sidecar as a started, ready native sidecar (init container %s with restartPolicy Always)", injector.ContainerName)
	}
	out, err = r.kubectl(ctx, "get", "curveservers,curveclients", "-n", Namespace)
	r.out.SayLines("$ kubectl -n " + Namespace + " get curveservers,curveclients\n" + out)
	if err != nil {
		return fmt.Errorf("kubectl get curveservers,curveclients: %w", err)
	}
	for app, ready := range res.Pods {
		if ready != "2/2" {
			return fmt.Errorf("kubectl shows pod of %s READY %q, want 2/2 (the application and its sidecar)", app, ready)
		}
	}
	return nil
}

// readyColumn is the READY column of pod's row in `kubectl get pods`.
func readyColumn(table, pod string) string {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == pod {
			return f[1]
		}
	}
	return ""
}

// podLog returns the last tail lines (all when 0) of a container's log,
// through the API server as `kubectl logs` reads it.
func (r *run) podLog(ctx context.Context, pod, container string, tail int64) (string, error) {
	return r.podLogIn(ctx, Namespace, pod, container, tail)
}

// podLogIn is podLog for a pod of namespace ns.
func (r *run) podLogIn(ctx context.Context, ns, pod, container string, tail int64) (string, error) {
	opts := &corev1.PodLogOptions{Container: container}
	if tail > 0 {
		opts.TailLines = &tail
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := r.c.clientset.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s %s: %w", pod, container, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("logs of %s %s: %w", pod, container, err)
	}
	return string(data), nil
}

// serverRequest is a line the pyzmq server prints per request.
type serverRequest struct {
	Event  string  `json:"event"`
	UserID *string `json:"user_id"`
	Body   string  `json:"body"`
}

func (r *run) userID(ctx context.Context, res *Result) error {
	server, err := r.readyPod(ctx, ServerName, time.Minute)
	if err != nil {
		return err
	}
	var line string
	if err := poll(ctx, time.Minute, "a request in the pyzmq server's log", func(ctx context.Context) (bool, error) {
		log, err := r.podLog(ctx, server.Name, "app", 20)
		if err != nil {
			return false, err
		}
		sc := bufio.NewScanner(strings.NewReader(log))
		for sc.Scan() {
			var req serverRequest
			if json.Unmarshal(sc.Bytes(), &req) == nil && req.Event == "request" {
				line = sc.Text()
				if req.UserID != nil {
					res.UserID = *req.UserID
				}
			}
		}
		return line != "", nil
	}); err != nil {
		return err
	}
	r.out.Say("$ kubectl -n %s logs deploy/%s -c app | tail -1", Namespace, ServerName)
	r.out.Say("%s", line)
	want := Namespace + "/" + ClientName
	if res.UserID != want {
		return fmt.Errorf("the server read User-Id %q, want %q (the CurveClient's namespace/name)", res.UserID, want)
	}
	client, err := r.readyPod(ctx, ClientName, time.Minute)
	if err != nil {
		return err
	}
	if log, err := r.podLog(ctx, client.Name, "app", 5); err == nil {
		if s, ok := lastSummary(log, false); ok {
			r.out.Say("$ kubectl -n %s logs deploy/%s -c app | tail -1", Namespace, ClientName)
			r.out.Say("%s", s.line)
		}
	}
	return nil
}

func (r *run) refusal(ctx context.Context, res *Result) error {
	out, err := r.kubectl(ctx, "apply", "-f", filepath.Join(r.cfg.Root, "examples", "kubernetes", "refused"))
	r.out.Say("$ kubectl apply -f examples/kubernetes/refused/")
	r.out.SayLines(out)
	if err == nil {
		return fmt.Errorf("kubectl applied a pod naming the unknown CurveServer %s", UnknownServer)
	}
	res.Refusal = strings.TrimSpace(out)
	_, getErr := r.c.clientset.CoreV1().Pods(Namespace).Get(ctx, "stranger", metav1.GetOptions{})
	res.RefusedPodCreated = getErr == nil
	switch {
	case !strings.Contains(res.Refusal, UnknownServer):
		return fmt.Errorf("the refusal does not name the unknown CurveServer %s", UnknownServer)
	case res.RefusedPodCreated:
		return fmt.Errorf("the refused pod exists")
	}
	return nil
}

func (r *run) ungranted(ctx context.Context, res *Result) error {
	out, err := r.kubectl(ctx, "apply", "-f", filepath.Join(r.cfg.Root, "examples", "kubernetes", "ungranted"))
	r.out.Say("$ kubectl apply -f examples/kubernetes/ungranted/")
	r.out.SayLines(out)
	if err != nil {
		return fmt.Errorf("kubectl apply: %w", err)
	}
	jobs := r.c.clientset.BatchV1().Jobs(OutsideNamespace)
	if err := poll(ctx, 2*time.Minute, "Job "+OutsideNamespace+"/"+Outsider+" to end", func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, Outsider, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	pods, err := r.c.clientset.CoreV1().Pods(OutsideNamespace).List(ctx, metav1.ListOptions{LabelSelector: "job=" + Outsider})
	if err != nil || len(pods.Items) != 1 {
		return fmt.Errorf("the pod of Job %s: %v (%d pods)", Outsider, err, len(pods.Items))
	}
	log, err := r.podLogIn(ctx, OutsideNamespace, pods.Items[0].Name, "app", 5)
	if err != nil {
		return err
	}
	r.out.Say("$ kubectl -n %s logs job/%s -c app | tail -2", OutsideNamespace, Outsider)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	r.out.SayLines(strings.Join(lines[max(0, len(lines)-2):], "\n"))
	s, ok := lastSummary(log, false)
	if !ok {
		return fmt.Errorf("no summary line in the outsider's log:\n%s", log)
	}
	res.OutsiderSent, res.OutsiderReceived = s.Sent, s.Received
	reason, err := r.kubectl(ctx, "get", "-n", OutsideNamespace, "curveclient", Outsider, "-o",
		`jsonpath={.status.conditions[?(@.type=="Authorized")].reason}: {.status.conditions[?(@.type=="Authorized")].message}`)
	if err != nil {
		return fmt.Errorf("kubectl get curveclient %s: %w: %s", Outsider, err, reason)
	}
	res.OutsiderReason, _, _ = strings.Cut(reason, ":")
	r.out.Say("curveclient/%s Authorized: %s", Outsider, reason)
	r.out.Say("zmqauth gives a client it does not admit no key for the server: its sidecar closes the application's connection")
	switch {
	case res.OutsiderReceived != 0:
		return fmt.Errorf("the ungranted client got %d replies", res.OutsiderReceived)
	case res.OutsiderReason != "NotSelected":
		return fmt.Errorf("the ungranted CurveClient's Authorized reason is %q, want NotSelected", res.OutsiderReason)
	}
	return nil
}

// summary is the req-client's line of counts.
type summary struct {
	Sent        int      `json:"sent"`
	Received    int      `json:"received"`
	Lost        int      `json:"lost"`
	Connections int      `json:"connections"`
	UserIDs     []string `json:"user_ids"`
	line        string
}

// settled reports whether no request was in flight when the line was
// printed: every request sent was answered or counted lost.
func (s summary) settled() bool { return s.Sent == s.Received+s.Lost }

// lastSummary is the last summary line in log, or the last settled one.
func lastSummary(log string, settled bool) (summary, bool) {
	var last summary
	found := false
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var s summary
		if !strings.Contains(sc.Text(), `"sent"`) || json.Unmarshal(sc.Bytes(), &s) != nil {
			continue
		}
		if !settled || s.settled() {
			s.line = sc.Text()
			last, found = s, true
		}
	}
	return last, found
}

// clientSummary waits for the client's latest settled summary line that
// satisfies ok.
func (r *run) clientSummary(ctx context.Context, pod string, timeout time.Duration, what string, ok func(summary) bool) (summary, error) {
	var s summary
	err := poll(ctx, timeout, what, func(ctx context.Context) (bool, error) {
		log, err := r.podLog(ctx, pod, "app", 30)
		if err != nil {
			return false, err
		}
		var found bool
		s, found = lastSummary(log, true)
		return found && ok(s), nil
	})
	return s, err
}

// keyStatus reads a CurveServer's or CurveClient's public key and key
// revision.
func (r *run) keyStatus(ctx context.Context, kind, name string) (string, int64, error) {
	out, err := r.kubectl(ctx, "get", "-n", Namespace, kind, name, "-o", "jsonpath={.status.publicKey} {.status.keyRevision}")
	if err != nil {
		return "", 0, fmt.Errorf("kubectl get %s %s: %w: %s", kind, name, err, out)
	}
	var key string
	var rev int64
	if _, err := fmt.Sscan(out, &key, &rev); err != nil {
		return "", 0, fmt.Errorf("%s %s status %q: %w", kind, name, out, err)
	}
	return key, rev, nil
}

func (r *run) rotation(ctx context.Context, res *Result) error {
	server, err := r.readyPod(ctx, ServerName, time.Minute)
	if err != nil {
		return err
	}
	client, err := r.readyPod(ctx, ClientName, time.Minute)
	if err != nil {
		return err
	}
	var serverRev, clientRev int64
	if res.ServerKeys[0], serverRev, err = r.keyStatus(ctx, "curveserver", ServerName); err != nil {
		return err
	}
	if res.ClientKeys[0], clientRev, err = r.keyStatus(ctx, "curveclient", ClientName); err != nil {
		return err
	}
	before, err := r.clientSummary(ctx, client.Name, 30*time.Second, "the client's counts", func(summary) bool { return true })
	if err != nil {
		return err
	}
	r.out.Say("before: %s", before.line)

	// Both rotations at once, as an operator rotating a pair would; each
	// waits for its switch, which follows the manager's
	// --rotation-propagation-delay.
	r.out.Say("$ zmqauth rotate curveserver/%s -n %s --wait 2m  &  zmqauth rotate curveclient/%s -n %s --wait 2m", ServerName, Namespace, ClientName, Namespace)
	targets := []string{"curveserver/" + ServerName, "curveclient/" + ClientName}
	outs := make([]string, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = r.zmqauth(ctx, "rotate", target, "-n", Namespace, "--wait", "2m")
		}()
	}
	wg.Wait()
	for i := range targets {
		r.out.SayLines(outs[i])
		if errs[i] != nil {
			return fmt.Errorf("zmqauth rotate %s: %w", targets[i], errs[i])
		}
	}
	if res.ServerKeys[1], res.ServerRevision, err = r.keyStatus(ctx, "curveserver", ServerName); err != nil {
		return err
	}
	if res.ClientKeys[1], res.ClientRevision, err = r.keyStatus(ctx, "curveclient", ClientName); err != nil {
		return err
	}
	if res.ServerRevision <= serverRev || res.ClientRevision <= clientRev || res.ServerKeys[1] == res.ServerKeys[0] || res.ClientKeys[1] == res.ClientKeys[0] {
		return fmt.Errorf("the keys did not change: server %v revision %d -> %d, client %v revision %d -> %d",
			res.ServerKeys, serverRev, res.ServerRevision, res.ClientKeys, clientRev, res.ClientRevision)
	}

	// The kubelet updates the mounted Secrets on its next sync of each pod;
	// each sidecar logs the keys it puts in force.
	switched := time.Now()
	wants := []struct {
		pod, msg, key string
	}{
		{server.Name, "server keys in force", res.ServerKeys[1]},
		{client.Name, "client keys in force", res.ClientKeys[1]},
		{client.Name, "server key in force", res.ServerKeys[1]},
	}
	for _, w := range wants {
		var line string
		if err := poll(ctx, time.Minute, fmt.Sprintf("%q with the new key in the sidecar log of %s", w.msg, w.pod), func(ctx context.Context) (bool, error) {
			log, err := r.podLog(ctx, w.pod, injector.ContainerName, 0)
			if err != nil {
				return false, err
			}
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, w.msg) && strings.Contains(l, w.key) {
					line = l
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			return err
		}
		r.out.Say("%s sidecar: %s", w.pod, strings.TrimSpace(line))
	}
	r.out.Say("both sidecars hold the new keys %s after the switch (the kubelet's sync of the mounted Secrets)", time.Since(switched).Round(100*time.Millisecond))
	res.NewKeysInForce = true

	// New connections from now on make CURVE sessions with the new keys on
	// both sides.
	mid, err := r.clientSummary(ctx, client.Name, 30*time.Second, "the client's counts", func(summary) bool { return true })
	if err != nil {
		return err
	}
	after, err := r.clientSummary(ctx, client.Name, time.Minute, "two new connections with the new keys", func(s summary) bool {
		return s.Connections >= mid.Connections+2
	})
	if err != nil {
		return err
	}
	r.out.Say("after:  %s", after.line)
	res.Sent, res.Received, res.Lost = after.Sent-before.Sent, after.Received-before.Received, after.Lost-before.Lost
	res.Connections = after.Connections - before.Connections
	r.out.Say("across the rotation: %d requests sent, %d answered, %d lost, over %d new connections", res.Sent, res.Received, res.Lost, res.Connections)
	if res.Lost != 0 || res.Sent != res.Received || res.Sent == 0 {
		return fmt.Errorf("requests were lost across the rotation: sent %d, received %d, lost %d", res.Sent, res.Received, res.Lost)
	}
	return nil
}
