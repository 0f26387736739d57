package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/go-logr/logr"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/localcluster"
	"github.com/zmqauth/zmqauth/keygen"
)

// The operator scale scenario and its goals (the issue's): N CurveClients
// over scaleNamespaces namespaces, one CurveServer in each, and one
// ClusterCurveGrant; at scaleGoalClients, every client on its server's
// allowlist within scaleGoalTime with the manager's peak RSS within
// scaleGoalRSS, and the time growing no faster than N.
const (
	scaleNamespaces  = 10
	scaleGoalClients = 10000
	scaleGoalTime    = 60 * time.Second
	scaleGoalRSS     = 256 << 20
	// Every scaleMonitorEvery-th client is a "monitor": labelled
	// scaleRoleLabel=monitor, it names the server of the next namespace,
	// which admits it only through the grant, and the grant puts it on
	// every server's allowlist.
	scaleMonitorEvery = 100
	scaleRoleLabel    = "bench.zmqauth.io/role"
	scaleNSLabel      = "bench.zmqauth.io/scale"
	scaleServer       = "bus"
	scaleGrant        = "bench-monitors"
	// scaleWorkers create the CurveClients concurrently.
	scaleWorkers = 32
)

// scaleRun is one measurement at one N.
type scaleRun struct {
	n           int
	created     time.Duration // the last CurveClient created
	allowlisted time.Duration // every allowlist exactly as expected
	authorized  time.Duration // every CurveClient reports Authorized=True
	ready       time.Duration // every CurveClient reports Ready=True
	peakRSS     int64         // the manager's VmHWM
	cpu         map[string]time.Duration
	load        string
	reconciles  []controllerStats
	api         []apiStat
}

// scaleMode says what runs besides the driver's creates in one scale run.
type scaleMode int

const (
	// withManager runs the real manager: the benchmark itself.
	withManager scaleMode = iota
	// createsOnly runs nothing else: the floor the API server sets for the
	// creates alone.
	createsOnly
	// minimalWrites has the driver write, right after each CurveClient, the
	// least any operator keeping a keypair Secret and a status per client
	// writes: the client's Secret (as the keys controller makes it) and one
	// status write holding its key and its conditions. No manager runs:
	// nothing else is written or watched, so this is a floor for any
	// implementation of the design on this machine.
	minimalWrites
)

// scale is benchmark 5: the operator. For each N it starts a fresh local
// control plane (internal/localcluster) and the real manager (`zmqauth
// manager` as its own process), creates the scenario and measures until
// every allowlist holds exactly the expected keys.
func (b *bench) scale(ctx context.Context, rep *report) error {
	rep.addf("\n## 5. The operator at scale: N CurveClients to their servers' allowlists\n\n")
	if b.zmqErr != nil && b.zmqauth == "" {
		rep.addf("Skipped: %v.\n", b.zmqErr)
		return nil
	}
	ctrllog.SetLogger(logr.Discard()) // the driver's informers have nothing to say
	ns, err := parseCounts(b.o.scaleClients)
	if err != nil {
		return err
	}
	memLimit, err := b.managerMemoryLimit()
	if err != nil {
		return err
	}
	memNote := fmt.Sprintf("GOMEMLIMIT as `%s` sets it: %s", managerManifest, orNone(memLimit))
	if b.o.scaleGOMEMLIMIT != "" {
		memNote = "GOMEMLIMIT " + orNone(memLimit)
	}
	binary := "`zmqauth manager`"
	if b.o.scaleManager != "" {
		binary = fmt.Sprintf("`%s manager`", b.o.scaleManager)
	}
	rep.addf("A fresh local control plane (kube-apiserver and etcd from `bin/k8s`, `internal/localcluster`) per N, and "+
		"the real manager as its own process (%s with its default flags, webhook off, %s). The driver creates %d "+
		"namespaces, a CurveServer in each, a ClusterCurveGrant, then N CurveClients spread evenly over the namespaces "+
		"(%d workers, client QPS unlimited). Each client names the server of its namespace; every %dth is a *monitor* that "+
		"names the server of the next namespace, which admits it only through the grant, and the grant puts it on "+
		"every server's allowlist. **On allowlists** is the time from the first create until every allowlist "+
		"ConfigMap (watched) holds exactly the expected files; **Authorized** and **Ready** until every CurveClient's "+
		"status says so (its Authorized condition, written by the distribution controller once its key is on the allowlist; "+
		"its Ready condition, written with it and kept true to the detail conditions by the keys controller). Afterwards every allowlist entry is checked "+
		"against its client's Secret (same public key, key revision 1: no key was generated twice). **Peak RSS** is "+
		"the manager's VmHWM. CPU is user + system seconds of each process from the first create until every client "+
		"is Ready. Goals at N = %s: on allowlists ≤ %s, peak RSS ≤ %d MiB, and time "+
		"growing no faster than N.\n",
		binary, memNote, scaleNamespaces, scaleWorkers, scaleMonitorEvery, fThousands(scaleGoalClients), scaleGoalTime, scaleGoalRSS>>20)

	var runs []scaleRun
	var errs []error
	for _, n := range ns {
		status("scale: N=%d", n)
		r, err := b.scaleOnce(ctx, n, withManager)
		if err != nil {
			errs = append(errs, fmt.Errorf("N=%d: %w", n, err))
			rep.addf("\n**N = %d failed:** %v\n", n, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return errors.Join(errs...)
	}

	var rows [][]string
	for i, r := range runs {
		growth := "—"
		if i > 0 && runs[i-1].n > 0 {
			p := runs[i-1]
			growth = fmt.Sprintf("×%.1f for ×%.0f", r.allowlisted.Seconds()/p.allowlisted.Seconds(), float64(r.n)/float64(p.n))
		}
		rows = append(rows, []string{
			fThousands(r.n),
			fSeconds(r.created),
			fSeconds(r.allowlisted),
			fmt.Sprintf("%.0f", float64(r.n)/r.allowlisted.Seconds()),
			fSeconds(r.authorized),
			fSeconds(r.ready),
			fmt.Sprintf("%d", r.peakRSS>>20),
			fSeconds(r.cpu["manager"]),
			fSeconds(r.cpu["kube-apiserver"]),
			fSeconds(r.cpu["etcd"]),
			fmt.Sprintf("%.0f", float64((r.cpu["manager"]+r.cpu["kube-apiserver"]+r.cpu["etcd"]).Milliseconds())/float64(r.n)),
			growth,
			r.load,
		})
	}
	rep.table([]string{"N", "created (s)", "on allowlists (s)", "clients/s", "Authorized (s)", "Ready (s)", "manager peak RSS (MiB)",
		"manager CPU (s)", "apiserver CPU (s)", "etcd CPU (s)", "CPU ms per client (all three)", "time growth", "load avg after (1, 5, 15 min)"}, rows)

	var verdicts []string
	for _, r := range runs {
		if r.n == scaleGoalClients {
			verdicts = append(verdicts,
				fmt.Sprintf("%s clients on allowlists ≤ %s: %s (%s s)", fThousands(r.n), scaleGoalTime, verdict(r.allowlisted <= scaleGoalTime), fSeconds(r.allowlisted)),
				fmt.Sprintf("peak RSS ≤ %d MiB: %s (%d MiB)", scaleGoalRSS>>20, verdict(r.peakRSS <= scaleGoalRSS), r.peakRSS>>20))
		}
	}
	if len(runs) > 1 {
		linear := true
		for i := 1; i < len(runs); i++ {
			p, r := runs[i-1], runs[i]
			if r.allowlisted.Seconds()/p.allowlisted.Seconds() > float64(r.n)/float64(p.n) {
				linear = false
			}
		}
		verdicts = append(verdicts, "time growing no faster than N: "+verdict(linear))
	}
	if len(verdicts) > 0 {
		rep.addf("\nGoals: %s.\n", strings.Join(verdicts, "; "))
	}

	if b.o.scaleFloor {
		largest := runs[len(runs)-1].n
		floors := []struct {
			mode scaleMode
			what string
			// describe reports the run; its text ends before the CPU.
			describe func(f scaleRun) string
		}{
			{createsOnly, "without the manager", func(f scaleRun) string {
				return fmt.Sprintf("The floor, on a fresh control plane with no manager running: the driver alone created "+
					"the %s CurveClients (and the servers and the grant) in %s s", fThousands(f.n), fSeconds(f.created))
			}},
			{minimalWrites, "with the minimal writes, without the manager", func(f scaleRun) string {
				return fmt.Sprintf("The floor of the design, again with no manager: the driver created each CurveClient "+
					"and then wrote what any operator that keeps a keypair Secret and a status per client must write for "+
					"it, the Secret (as the keys controller makes it) and one status write with the key and the "+
					"conditions, %d clients at a time. No allowlist, no Event, no watch, no controller logic: %s clients "+
					"in %s s (%.0f clients/s)", scaleWorkers, fThousands(f.n), fSeconds(f.created), float64(f.n)/f.created.Seconds())
			}},
		}
		for _, fl := range floors {
			status("scale: N=%d %s", largest, fl.what)
			f, err := b.scaleOnce(ctx, largest, fl.mode)
			if err != nil {
				errs = append(errs, fmt.Errorf("N=%d %s: %w", largest, fl.what, err))
				rep.addf("\n**The run at N = %d %s failed:** %v\n", largest, fl.what, err)
				continue
			}
			rep.addf("\n%s, the API server using %s s of CPU and etcd %s s (load average after: %s).\n",
				fl.describe(f), fSeconds(f.cpu["kube-apiserver"]), fSeconds(f.cpu["etcd"]), f.load)
		}
	}

	last := runs[len(runs)-1]
	if len(last.reconciles) > 0 {
		rep.addf("\nWhere the manager's time went at N = %s (its own metrics: reconciles, the time its workers spent "+
			"reconciling, the mean wait of an item in the work queue):\n", fThousands(last.n))
		var crow [][]string
		for _, c := range last.reconciles {
			crow = append(crow, []string{c.name, fmt.Sprintf("%.0f", c.reconciles), fmt.Sprintf("%.1f", c.seconds),
				fmt.Sprintf("%.0f", c.queueWaitMean*1000)})
		}
		rep.table([]string{"controller", "reconciles", "reconcile s", "mean queue wait (ms)"}, crow)
	}
	if len(last.api) > 0 {
		rep.addf("\nThe API server's work at N = %s (its own metrics, every client, watches left out; the costliest "+
			"first):\n", fThousands(last.n))
		var arow [][]string
		for i, a := range last.api {
			if i == 14 {
				break
			}
			arow = append(arow, []string{a.what, fmt.Sprintf("%.0f", a.requests), fmt.Sprintf("%.0f", a.conflict),
				fmt.Sprintf("%.1f", a.seconds), fmt.Sprintf("%.1f", 1000*a.seconds/max(a.requests, 1))})
		}
		rep.table([]string{"request", "count", "of which 409 Conflict", "total s", "mean ms"}, arow)
	}
	return errors.Join(errs...)
}

// scaleOnce measures the scenario with n clients on a fresh control plane.
// Without the manager (modes createsOnly and minimalWrites) it measures only
// the driver's writes: floors this machine sets.
func (b *bench) scaleOnce(ctx context.Context, n int, mode scaleMode) (r scaleRun, err error) {
	r.n = n
	root, err := os.Getwd()
	if err != nil {
		return r, err
	}
	dir := filepath.Join(b.dir, fmt.Sprintf("scale-%d-%d", n, mode))
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	cl, err := localcluster.Start(startCtx, localcluster.Options{
		AssetsDir: filepath.Join(root, "bin", "k8s"),
		CRDDir:    filepath.Join(root, "config", "crd", "bases"),
		StateDir:  dir,
	})
	cancel()
	if err != nil {
		return r, err
	}
	var m *scaleManager
	defer func() {
		if m != nil {
			m.proc.stop()
		}
		if stopErr := cl.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if mode == withManager {
		if m, err = b.startManager(ctx, cl.Kubeconfig, n); err != nil {
			return r, err
		}
	}

	cfg := rest.CopyConfig(cl.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: the driver must not be the bottleneck
	cfg.Timeout = time.Minute
	sc := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(sc), v1alpha1.AddToScheme(sc)); err != nil {
		return r, err
	}
	kube, err := client.New(cfg, client.Options{Scheme: sc})
	if err != nil {
		return r, fmt.Errorf("client: %w", err)
	}
	w, err := newScaleWatch(ctx, cfg, sc, n)
	if err != nil {
		return r, err
	}
	defer w.stop()

	runCtx, cancelRun := context.WithTimeout(ctx, b.o.scaleTimeout)
	defer cancelRun()
	for i := range scaleNamespaces {
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNamespace(i), Labels: map[string]string{scaleNSLabel: "true"}}}
		if err := kube.Create(runCtx, nsObj); err != nil {
			return r, fmt.Errorf("create namespace: %w", err)
		}
	}

	mgrPID := 0
	if m != nil {
		mgrPID = m.proc.pid()
	}
	cpuBefore := cpuTimes(mgrPID, "kube-apiserver", "etcd")
	var profiling sync.WaitGroup
	defer profiling.Wait()
	if m != nil && m.pprof != "" {
		profiling.Go(func() { b.profileCPU(ctx, m.pprof, n, b.o.scaleProfileSeconds) })
		profiling.Go(func() { b.profileAPIServer(ctx, cl.Config, n, b.o.scaleProfileSeconds) })
	}
	start := time.Now()
	w.begin(start)
	if err := createScenario(runCtx, kube, n, w, mode == minimalWrites); err != nil {
		return r, err
	}
	r.created = time.Since(start)
	status("scale: N=%d created in %s", n, r.created.Round(time.Millisecond))
	if m == nil {
		r.cpu = cpuSince(cpuBefore, cpuTimes(mgrPID, "kube-apiserver", "etcd"))
		r.load = loadAverage()
		return r, nil
	}

	if err := w.wait(runCtx, m.proc); err != nil {
		return r, err
	}
	r.allowlisted, r.authorized, r.ready = w.result()
	r.cpu = cpuSince(cpuBefore, cpuTimes(mgrPID, "kube-apiserver", "etcd"))
	r.load = loadAverage()
	if r.peakRSS, err = peakRSS(mgrPID); err != nil {
		return r, err
	}
	if stats, err := scrapeControllers(ctx, "http://"+m.metrics+"/metrics"); err == nil {
		r.reconciles = stats
	} else {
		status("scale: manager metrics: %v", err)
	}
	if stats, err := scrapeAPIServer(ctx, cfg); err == nil {
		r.api = stats
	} else {
		status("scale: %v", err)
	}
	if m.pprof != "" {
		b.profileHeap(ctx, m.pprof, n)
	}
	status("scale: N=%d on allowlists after %s, Authorized after %s, Ready after %s, manager peak RSS %d MiB; checking every entry",
		n, r.allowlisted.Round(time.Millisecond), r.authorized.Round(time.Millisecond), r.ready.Round(time.Millisecond), r.peakRSS>>20)
	if err := verifyScale(ctx, kube, n); err != nil {
		return r, fmt.Errorf("after the run: %w", err)
	}
	return r, nil
}

// scaleManager is a running `zmqauth manager` and its addresses.
type scaleManager struct {
	proc    *proc
	metrics string // host:port of /metrics
	pprof   string // host:port of /debug/pprof; empty without -scale-profile
}

// startManager runs `zmqauth manager` against the kubeconfig as it is
// deployed (its flags' defaults, the Deployment's GOMEMLIMIT), except for
// the webhook (no --sidecar-image: no injector) and leader election, and
// waits until it is ready.
func (b *bench) startManager(ctx context.Context, kubeconfig string, n int) (*scaleManager, error) {
	probe := freePort()
	m := &scaleManager{metrics: freePort()}
	if probe == "" || m.metrics == "" {
		return nil, fmt.Errorf("no free port on 127.0.0.1")
	}
	args := []string{b.zmqauth, "manager", "--kubeconfig", kubeconfig,
		"--metrics-bind-address", m.metrics, "--health-probe-bind-address", probe}
	if b.o.scaleProfile != "" {
		if m.pprof = freePort(); m.pprof == "" {
			return nil, fmt.Errorf("no free port on 127.0.0.1")
		}
		args = append(args, "--pprof-bind-address", m.pprof)
	}
	if b.o.scaleManager != "" {
		args[0] = b.o.scaleManager
	}
	env := []string{"GOMEMLIMIT="} // unset: the Go default
	if limit, err := b.managerMemoryLimit(); err != nil {
		return nil, err
	} else if limit != "" {
		env = []string{"GOMEMLIMIT=" + limit}
	}
	var err error
	if m.proc, err = b.procs.startEnv(fmt.Sprintf("manager-%d", n), env, args...); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, m.proc, "http://"+probe+"/readyz", time.Minute); err != nil {
		m.proc.stop()
		return nil, err
	}
	return m, nil
}

// createScenario creates the servers, the grant and the n clients.
func createScenario(ctx context.Context, kube client.Client, n int, w *scaleWatch, minimal bool) error {
	for i := range scaleNamespaces {
		srv := &v1alpha1.CurveServer{
			ObjectMeta: metav1.ObjectMeta{Namespace: scaleNamespace(i), Name: scaleServer},
			Spec:       v1alpha1.CurveServerSpec{SecretName: scaleServer + "-keys"},
		}
		if err := kube.Create(ctx, srv); err != nil {
			return fmt.Errorf("create CurveServer: %w", err)
		}
	}
	nsSel := &metav1.LabelSelector{MatchLabels: map[string]string{scaleNSLabel: "true"}}
	grant := &v1alpha1.ClusterCurveGrant{
		ObjectMeta: metav1.ObjectMeta{Name: scaleGrant},
		Spec: v1alpha1.ClusterCurveGrantSpec{
			Clients: v1alpha1.GrantClients{
				NamespaceSelector: nsSel,
				Selector:          &metav1.LabelSelector{MatchLabels: map[string]string{scaleRoleLabel: "monitor"}},
			},
			Servers: v1alpha1.GrantServers{NamespaceSelector: nsSel},
		},
	}
	if err := kube.Create(ctx, grant); err != nil {
		return fmt.Errorf("create ClusterCurveGrant: %w", err)
	}
	return createClients(ctx, kube, n, w, minimal)
}

// scaleNamespace names the i-th namespace of the scenario.
func scaleNamespace(i int) string { return fmt.Sprintf("scale-%d", i) }

// scaleClient describes the i-th CurveClient of the scenario: its namespace
// and name, whether it is a monitor, and the namespace of the server it
// names.
func scaleClient(i int) (ns, name string, monitor bool, serverNS string) {
	k := i % scaleNamespaces
	ns, name = scaleNamespace(k), fmt.Sprintf("c%05d", i)
	monitor = i%scaleMonitorEvery == scaleMonitorEvery-1
	serverNS = ns
	if monitor {
		serverNS = scaleNamespace((k + 1) % scaleNamespaces)
	}
	return ns, name, monitor, serverNS
}

// expectedAllowlists returns, per server namespace, the data keys its
// allowlist must hold besides index.json: the clients of its namespace
// that name it, and every monitor.
func expectedAllowlists(n int) map[string]map[string]bool {
	want := make(map[string]map[string]bool, scaleNamespaces)
	for i := range scaleNamespaces {
		want[scaleNamespace(i)] = map[string]bool{}
	}
	for i := range n {
		ns, name, monitor, _ := scaleClient(i)
		file := filecontract.ClientKeyFileName(ns, name)
		if monitor {
			for _, files := range want {
				files[file] = true
			}
			continue
		}
		want[ns][file] = true
	}
	return want
}

// createClients creates the n CurveClients with scaleWorkers workers; with
// minimal set, each worker also writes each client's Secret and status
// (writeMinimal).
func createClients(ctx context.Context, kube client.Client, n int, w *scaleWatch, minimal bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range scaleWorkers {
		wg.Go(func() {
			for i := range work {
				ns, name, monitor, serverNS := scaleClient(i)
				cc := &v1alpha1.CurveClient{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
					Spec: v1alpha1.CurveClientSpec{
						SecretName: name + "-keys",
						Servers:    []v1alpha1.ServerReference{{Name: scaleServer, Namespace: serverNS}},
					},
				}
				if monitor {
					cc.Labels = map[string]string{scaleRoleLabel: "monitor"}
				}
				if err := kube.Create(ctx, cc); err != nil {
					cancel(fmt.Errorf("create CurveClient %s/%s: %w", ns, name, err))
					return
				}
				if minimal {
					if err := writeMinimal(ctx, kube, cc); err != nil {
						cancel(fmt.Errorf("CurveClient %s/%s: %w", ns, name, err))
						return
					}
				}
				w.created.Add(1)
			}
		})
	}
	func() {
		defer close(work)
		for i := range n {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// writeMinimal writes what any operator of this design writes for a new
// client: its keypair Secret, made as the keys controller makes it, and one
// status write with the key and the conditions it ends with.
func writeMinimal(ctx context.Context, kube client.Client, cc *v1alpha1.CurveClient) error {
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	st := secretlayout.State{Current: kp, Revision: 1, RotatedAt: now, RotationReason: v1alpha1.ReasonKeyGenerated}
	secret, err := keys.ClientKind().NewSecret(cc, st)
	if err != nil {
		return err
	}
	if err := kube.Create(ctx, secret); err != nil {
		return fmt.Errorf("create Secret: %w", err)
	}
	before := cc.DeepCopy()
	cc.Status.PublicKey = kp.Public.String()
	cc.Status.KeyRevision = 1
	cc.Status.LastRotationTime = &metav1.Time{Time: now}
	cc.Status.ObservedGeneration = cc.Generation
	for _, ref := range cc.Spec.Servers {
		cc.Status.Servers = append(cc.Status.Servers, v1alpha1.ServerAuthorization{Name: ref.Name, Namespace: ref.Namespace, Authorized: true})
	}
	for _, t := range []string{v1alpha1.ConditionKeyReady, v1alpha1.ConditionRotating, v1alpha1.ConditionAuthorized, v1alpha1.ConditionReady} {
		status := metav1.ConditionTrue
		if t == v1alpha1.ConditionRotating {
			status = metav1.ConditionFalse
		}
		meta.SetStatusCondition(&cc.Status.Conditions, metav1.Condition{Type: t, Status: status,
			Reason: v1alpha1.ReasonReconciled, Message: "written by the benchmark's minimal-writes floor", ObservedGeneration: cc.Generation})
	}
	if err := kube.Status().Patch(ctx, cc, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// scaleWatch follows the allowlist ConfigMaps and the CurveClients through
// an informer cache and records when every allowlist is exact and when
// every client reports Authorized.
type scaleWatch struct {
	n      int
	want   map[string]map[string]bool
	cache  cache.Cache
	cancel context.CancelFunc
	done   chan struct{}

	created atomic.Int64

	mu          sync.Mutex
	start       time.Time
	exact       map[string]bool // per server namespace
	entries     map[string]int  // allowlist files per server namespace
	authorized  map[string]bool // per client namespace/name
	ready       map[string]bool // per client namespace/name
	nAuthorized int
	nReady      int
	allowlisted time.Duration
	allAuth     time.Duration
	allReady    time.Duration
	complete    chan struct{}
}

// newScaleWatch starts the informers and waits for their first list.
func newScaleWatch(ctx context.Context, cfg *rest.Config, sc *runtime.Scheme, n int) (*scaleWatch, error) {
	hasAllowlist, err := labels.NewRequirement(secretlayout.LabelAllowlist, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: sc, ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Label: labels.NewSelector().Add(*hasAllowlist)},
	}})
	if err != nil {
		return nil, fmt.Errorf("watch cache: %w", err)
	}
	w := &scaleWatch{
		n: n, want: expectedAllowlists(n), cache: c, done: make(chan struct{}),
		exact: map[string]bool{}, entries: map[string]int{}, authorized: map[string]bool{}, ready: map[string]bool{},
		complete: make(chan struct{}),
	}
	cmInf, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		return nil, fmt.Errorf("ConfigMap informer: %w", err)
	}
	ccInf, err := c.GetInformer(ctx, &v1alpha1.CurveClient{})
	if err != nil {
		return nil, fmt.Errorf("CurveClient informer: %w", err)
	}
	onCM := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			w.allowlist(cm)
		}
	}
	onCC := func(obj any) {
		if cc, ok := obj.(*v1alpha1.CurveClient); ok {
			w.client(cc)
		}
	}
	if _, err := cmInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: onCM, UpdateFunc: func(_, o any) { onCM(o) },
	}); err != nil {
		return nil, err
	}
	if _, err := ccInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: onCC, UpdateFunc: func(_, o any) { onCC(o) },
	}); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	go func() {
		defer close(w.done)
		_ = c.Start(cctx)
	}()
	if !c.WaitForCacheSync(ctx) {
		w.stop()
		return nil, errors.New("watch cache did not sync")
	}
	return w, nil
}

// begin sets the start of the measurement.
func (w *scaleWatch) begin(t time.Time) {
	w.mu.Lock()
	w.start = t
	w.mu.Unlock()
}

// allowlist records the state of one allowlist ConfigMap.
func (w *scaleWatch) allowlist(cm *corev1.ConfigMap) {
	if cm.Name != secretlayout.AllowlistConfigMapName(scaleServer) {
		return
	}
	want, ok := w.want[cm.Namespace]
	if !ok {
		return
	}
	exact := len(cm.Data) == len(want)+2
	if _, ok := cm.Data[filecontract.IndexFile]; !ok {
		exact = false
	}
	files := 0
	for k := range cm.Data {
		if k == filecontract.IndexFile || k == filecontract.ModeFile {
			continue
		}
		files++
		if !want[k] {
			exact = false
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.entries[cm.Namespace] = files
	w.exact[cm.Namespace] = exact
	if w.allowlisted == 0 && !w.start.IsZero() {
		all := true
		for ns := range w.want {
			all = all && w.exact[ns]
		}
		if all {
			w.allowlisted = time.Since(w.start)
			w.checkComplete()
		}
	}
}

// client records whether one CurveClient reports Authorized and Ready.
func (w *scaleWatch) client(cc *v1alpha1.CurveClient) {
	key := cc.Namespace + "/" + cc.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	count(w.authorized, &w.nAuthorized, key, meta.IsStatusConditionTrue(cc.Status.Conditions, v1alpha1.ConditionAuthorized))
	count(w.ready, &w.nReady, key, meta.IsStatusConditionTrue(cc.Status.Conditions, v1alpha1.ConditionReady))
	if w.start.IsZero() {
		return
	}
	if w.allAuth == 0 && w.nAuthorized == w.n {
		w.allAuth = time.Since(w.start)
		w.checkComplete()
	}
	if w.allReady == 0 && w.nReady == w.n {
		w.allReady = time.Since(w.start)
		w.checkComplete()
	}
}

// count records in m whether key holds, keeping n the number that do.
func count(m map[string]bool, n *int, key string, ok bool) {
	if m[key] == ok {
		return
	}
	m[key] = ok
	if ok {
		*n++
	} else {
		*n--
	}
}

// checkComplete closes complete once every time is known. w.mu is held.
func (w *scaleWatch) checkComplete() {
	if w.allowlisted > 0 && w.allAuth > 0 && w.allReady > 0 {
		close(w.complete)
	}
}

// wait waits until both times are known, reporting progress; it fails
// when ctx ends or the manager exits.
func (w *scaleWatch) wait(ctx context.Context, mgr *proc) error {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-w.complete:
			return nil
		case <-mgr.done:
			return fmt.Errorf("the manager exited (%v)%s", mgr.waitErr, mgr.logTail())
		case <-ctx.Done():
			return fmt.Errorf("waiting for the allowlists: %s: %w", w.progress(), context.Cause(ctx))
		case <-tick.C:
			status("scale: %s", w.progress())
		}
	}
}

// progress describes how far the run is.
func (w *scaleWatch) progress() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, want, exact := 0, 0, 0
	for ns, f := range w.want {
		want += len(f)
		files += w.entries[ns]
		if w.exact[ns] {
			exact++
		}
	}
	return fmt.Sprintf("after %s: %d of %d clients created, %d of %d allowlist entries, %d of %d allowlists exact, %d clients Authorized, %d Ready",
		time.Since(w.start).Round(time.Second), w.created.Load(), w.n, files, want, exact, len(w.want), w.nAuthorized, w.nReady)
}

// result returns the three times.
func (w *scaleWatch) result() (allowlisted, authorized, ready time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.allowlisted, w.allAuth, w.allReady
}

// stop ends the informers.
func (w *scaleWatch) stop() {
	w.cancel()
	<-w.done
}

// verifyScale checks, after the run, every allowlist entry against the
// client's Secret: the same public key, in the file and in index.json, and
// key revision 1 everywhere (no key was generated twice).
func verifyScale(ctx context.Context, kube client.Client, n int) error {
	keys := make(map[string]string, n) // namespace/name of client -> public key
	for i := range scaleNamespaces {
		ns := scaleNamespace(i)
		var secrets corev1.SecretList
		if err := kube.List(ctx, &secrets, client.InNamespace(ns),
			client.MatchingLabels{secretlayout.LabelManagedBy: secretlayout.ManagedBy}); err != nil {
			return fmt.Errorf("list Secrets: %w", err)
		}
		for _, s := range secrets.Items {
			if rev := s.Annotations[secretlayout.AnnotationKeyRevision]; rev != "1" {
				return fmt.Errorf("Secret %s/%s has key revision %q, want 1", ns, s.Name, rev)
			}
			name, ok := strings.CutSuffix(s.Name, "-keys")
			if !ok {
				return fmt.Errorf("unexpected managed Secret %s/%s", ns, s.Name)
			}
			keys[filecontract.Identity(ns, name)] = strings.TrimSpace(string(s.Data[filecontract.PublicKeyFile]))
		}
		var clients v1alpha1.CurveClientList
		if err := kube.List(ctx, &clients, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("list CurveClients: %w", err)
		}
		for _, cc := range clients.Items {
			id := filecontract.Identity(ns, cc.Name)
			if cc.Status.KeyRevision != 1 || cc.Status.PublicKey == "" || cc.Status.PublicKey != keys[id] {
				return fmt.Errorf("CurveClient %s: status key revision %d, public key %q, Secret's %q",
					id, cc.Status.KeyRevision, cc.Status.PublicKey, keys[id])
			}

		}
	}
	want := expectedAllowlists(n)
	for ns, files := range want {
		var cm corev1.ConfigMap
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretlayout.AllowlistConfigMapName(scaleServer)}, &cm); err != nil {
			return fmt.Errorf("get allowlist: %w", err)
		}
		index, err := allowlist.ParseIndex([]byte(cm.Data[filecontract.IndexFile]))
		if err != nil {
			return fmt.Errorf("allowlist %s: %w", ns, err)
		}
		if len(index) != len(files) || len(cm.Data) != len(files)+2 { // the files, index.json and mode
			return fmt.Errorf("allowlist %s: %d index entries and %d data keys, want %d", ns, len(index), len(cm.Data), len(files))
		}
		for _, e := range index {
			cns, cname, _ := strings.Cut(e.Identity, "/")
			if !files[e.File] || e.File != filecontract.ClientKeyFileName(cns, cname) {
				return fmt.Errorf("allowlist %s: unexpected entry %s for %s", ns, e.File, e.Identity)
			}
			if e.Key != keys[e.Identity] {
				return fmt.Errorf("allowlist %s: %s holds key %s, the client's Secret %s", ns, e.Identity, e.Key, keys[e.Identity])
			}
			cert, err := keygen.ParsePublicCertificate([]byte(cm.Data[e.File]))
			if err != nil {
				return fmt.Errorf("allowlist %s: %s: %w", ns, e.File, err)
			}
			if cert.PublicKey.String() != e.Key {
				return fmt.Errorf("allowlist %s: %s holds key %s, its index entry %s", ns, e.File, cert.PublicKey, e.Key)
			}
		}
	}
	return nil
}

// parseCounts parses a comma-separated list of client counts.
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-scale-clients: %q is not a positive count", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("-scale-clients: no count given")
	}
	return out, nil
}

// fSeconds formats a duration in seconds.
func fSeconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	return fmt.Sprintf("%.1f", d.Seconds())
}

// fThousands formats a count with thousands separators: 10000 -> "10,000".
func fThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// managerManifest is the manager's Deployment.
const managerManifest = "config/manager/manager.yaml"

// managerMemoryLimit returns the GOMEMLIMIT of the manager in the scale
// runs: -scale-gomemlimit, else the Deployment's; "" for none.
func (b *bench) managerMemoryLimit() (string, error) {
	switch b.o.scaleGOMEMLIMIT {
	case "":
		return deployedMemoryLimit()
	case "off":
		return "", nil
	}
	return b.o.scaleGOMEMLIMIT, nil
}

// orNone returns s, or "none" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// deployedMemoryLimit returns the GOMEMLIMIT the manager's Deployment gives
// its container, "" when it sets none as a plain value.
func deployedMemoryLimit() (string, error) {
	data, err := os.ReadFile(managerManifest)
	if err != nil {
		return "", fmt.Errorf("reading the manager's Deployment: %w", err)
	}
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			return "", fmt.Errorf("%s: %w", managerManifest, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if c.Name == "manager" && e.Name == "GOMEMLIMIT" {
					return e.Value, nil
				}
			}
		}
	}
	return "", nil
}
