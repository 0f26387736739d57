package rotation_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/keys/keystest"
	"github.com/zmqauth/zmqauth/controllers/rotation"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

const timeout = 30 * time.Second

// TestRotationEnvtest runs the keys and rotation reconcilers against a real
// API server: one control plane, one namespace and manager per subtest.
func TestRotationEnvtest(t *testing.T) {
	// Before any manager starts: their controllers log through it.
	ctrl.SetLogger(logr.New(reconcileSink{log: reconciles}))
	env := keystest.Start(t)
	t.Run("Requested", func(t *testing.T) { t.Parallel(); testRequested(t, env) })
	t.Run("ZeroOverlap", func(t *testing.T) { t.Parallel(); testZeroOverlap(t, env) })
	t.Run("RestartBetweenSteps", func(t *testing.T) { t.Parallel(); testRestartBetweenSteps(t, env) })
	t.Run("Scheduled", func(t *testing.T) { t.Parallel(); testScheduled(t, env) })
	t.Run("Staged", func(t *testing.T) { t.Parallel(); testStaged(t, env) })
}

// reconciles records when each reconcile of the managers began and ended,
// from controller-runtime's own log lines: the positive signal that a
// reconciler looked at an object after some point, which a test waits for
// before it checks that nothing was done.
var reconciles = &reconcileLog{}

type reconcileLog struct {
	mu      sync.Mutex
	entries []reconcileEntry
}

// reconcileEntry is the beginning (done false) or the successful end of
// one reconcile.
type reconcileEntry struct {
	controller, object, id string
	done                   bool
}

// mark returns the point after which waitReconciled looks.
func (l *reconcileLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// waitReconciled waits until controller has begun a reconcile of key after
// since (a mark) and finished it without an error.
func (l *reconcileLog) waitReconciled(t *testing.T, controller string, key types.NamespacedName, since int) {
	t.Helper()
	keystest.Eventually(t, timeout, controller+" reconciles "+key.String(), func(context.Context) (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		begun := map[string]bool{}
		for _, e := range l.entries[since:] {
			switch {
			case e.controller != controller || e.object != key.String():
			case !e.done:
				begun[e.id] = true
			case begun[e.id]:
				return true, nil
			}
		}
		return false, nil
	})
}

// reconcileSink is a logr sink that keeps only controller-runtime's
// "Reconciling" and "Reconcile done"/"Reconcile successful" lines (V(5)).
type reconcileSink struct {
	log *reconcileLog
	kv  []any
}

func (s reconcileSink) Init(logr.RuntimeInfo)        {}
func (s reconcileSink) Enabled(int) bool             { return true }
func (s reconcileSink) Error(error, string, ...any)  {}
func (s reconcileSink) WithName(string) logr.LogSink { return s }
func (s reconcileSink) WithValues(kv ...any) logr.LogSink {
	return reconcileSink{log: s.log, kv: append(s.kv[:len(s.kv):len(s.kv)], kv...)}
}

func (s reconcileSink) Info(_ int, msg string, kv ...any) {
	var e reconcileEntry
	switch {
	case msg == "Reconciling":
	case msg == "Reconcile successful" || strings.HasPrefix(msg, "Reconcile done"):
		e.done = true
	default:
		return
	}
	var ns, name string
	all := append(s.kv[:len(s.kv):len(s.kv)], kv...)
	for i := 0; i+1 < len(all); i += 2 {
		v := fmt.Sprint(all[i+1])
		switch all[i] {
		case "controller":
			e.controller = v
		case "namespace":
			ns = v
		case "name":
			name = v
		case "reconcileID":
			e.id = v
		}
	}
	e.object = types.NamespacedName{Namespace: ns, Name: name}.String()
	s.log.mu.Lock()
	s.log.entries = append(s.log.entries, e)
	s.log.mu.Unlock()
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func newObject(kind keys.Kind, ns, name string, period, overlap time.Duration) client.Object {
	rot := &v1alpha1.RotationSpec{Period: dur(period), Overlap: dur(overlap)}
	if kind.Name == "CurveClient" {
		return &v1alpha1.CurveClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1alpha1.CurveClientSpec{SecretName: name + "-keys", Rotation: rot},
		}
	}
	return &v1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.CurveServerSpec{SecretName: name + "-keys", Rotation: rot},
	}
}

// snapshot is what a test looks at: the Secret's key state and the status.
type snapshot struct {
	secret *corev1.Secret
	state  secretlayout.State
	obj    client.Object
	f      keys.Fields
}

func (s snapshot) cond(t string) *metav1.Condition {
	return meta.FindStatusCondition(*s.f.Conditions, t)
}

func read(ctx context.Context, env *keystest.Env, kind keys.Kind, key types.NamespacedName) (snapshot, error) {
	obj := kind.NewObject()
	if err := env.Client.Get(ctx, key, obj); err != nil {
		return snapshot{}, err
	}
	f := kind.Fields(obj)
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: f.SecretName}, secret); err != nil {
		return snapshot{}, err
	}
	st, err := secretlayout.ReadState(secret)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{secret: secret, state: st, obj: obj, f: f}, nil
}

// waitFor waits until the Secret and the status (mirrored from it) satisfy
// cond, and returns that snapshot.
func waitFor(t *testing.T, env *keystest.Env, kind keys.Kind, key types.NamespacedName, what string, cond func(s snapshot) bool) snapshot {
	t.Helper()
	var got snapshot
	keystest.Eventually(t, timeout, what, func(ctx context.Context) (bool, error) {
		s, err := read(ctx, env, kind, key)
		if err != nil {
			return false, err
		}
		got = s
		// The status must describe the Secret as it is now.
		synced := *s.f.PublicKey == s.state.Current.Public.String() && *s.f.KeyRevision == s.state.Revision
		return synced && cond(s), nil
	})
	return got
}

func requestRotation(t *testing.T, env *keystest.Env, obj client.Object, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationRotate, value)
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func testRequested(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	mgr := env.StartManager(t, ns, nil)
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		t.Run(kind.Name, func(t *testing.T) {
			const overlap = 3 * time.Second
			obj := newObject(kind, ns, strings.ToLower(kind.Name), 5*time.Minute, overlap)
			if err := env.Client.Create(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKeyFromObject(obj)
			first := waitFor(t, env, kind, key, "first key", func(s snapshot) bool { return s.state.Revision == 1 })

			requestRotation(t, env, obj, "2026-01-01T00:00:00Z")
			rotated := waitFor(t, env, kind, key, "rotation with overlap", func(s snapshot) bool {
				c := s.cond(v1alpha1.ConditionRotating)
				return s.state.Revision == 2 && c != nil && c.Status == metav1.ConditionTrue
			})
			st := rotated.state
			old := first.state.Current
			if st.Current.Public == old.Public || st.Previous == nil || st.Previous.Public != old.Public {
				t.Fatal("the old key is not the previous key")
			}
			prevSecret, hasPrevSecret := rotated.secret.Data[filecontract.PreviousSecretKeyFile]
			if kind.KeepPreviousSecret {
				if string(prevSecret) != old.Secret.Z85() {
					t.Error("server: previous-secret.key is not the old secret key")
				}
			} else if hasPrevSecret {
				t.Error("client: previous-secret.key written; a client keeps only its previous public key")
			}
			if got := *rotated.f.PreviousPublicKey; got != old.Public.String() {
				t.Errorf("status.previousPublicKey %q, want the old key", got)
			}
			if got := *rotated.f.LastRotationRequest; got != "2026-01-01T00:00:00Z" {
				t.Errorf("status.lastRotationRequest %q", got)
			}
			if c := rotated.cond(v1alpha1.ConditionRotating); c.Reason != v1alpha1.ReasonRotationRequested {
				t.Errorf("Rotating reason %q", c.Reason)
			}
			if d := st.OverlapUntil.Sub(st.RotatedAt); d != overlap {
				t.Errorf("overlap-until - rotated-at = %v, want %v", d, overlap)
			}
			ev := env.WaitEvent(t, ns, obj.GetName(), rotation.EventRotated)
			if !strings.Contains(ev.Note, st.Current.Public.String()) || strings.Contains(ev.Note, st.Current.Secret.Z85()) {
				t.Errorf("Rotated event note %q", ev.Note)
			}

			ended := waitFor(t, env, kind, key, "end of overlap", func(s snapshot) bool {
				c := s.cond(v1alpha1.ConditionRotating)
				return !s.state.InOverlap() && c != nil && c.Status == metav1.ConditionFalse
			})
			if ended.state.Current.Public != st.Current.Public || ended.state.Revision != 2 {
				t.Fatal("ending the overlap changed the key")
			}
			for _, k := range []string{filecontract.PreviousPublicKeyFile, filecontract.PreviousSecretKeyFile} {
				if _, ok := ended.secret.Data[k]; ok {
					t.Errorf("%s still in the Secret after the overlap", k)
				}
			}
			if _, ok := ended.secret.Annotations[secretlayout.AnnotationOverlapUntil]; ok {
				t.Error("overlap-until annotation still set")
			}
			if *ended.f.PreviousPublicKey != "" || ended.cond(v1alpha1.ConditionRotating).Reason != v1alpha1.ReasonOverlapEnded {
				t.Errorf("status after overlap: previousPublicKey %q, Rotating %+v", *ended.f.PreviousPublicKey, ended.cond(v1alpha1.ConditionRotating))
			}
			env.WaitEvent(t, ns, obj.GetName(), rotation.EventOverlapEnded)

			// The annotation stays in place: it was answered, so a reconcile
			// that reads it again (the poke makes one; the cache holds the
			// Secret after the overlap, which the status mirrors) does not
			// rotate again.
			since := reconciles.mark()
			env.Poke(t, obj)
			reconciles.waitReconciled(t, "rotation-"+strings.ToLower(kind.Name), key, since)
			again, err := read(context.Background(), env, kind, key)
			if err != nil {
				t.Fatal(err)
			}
			if again.state.Revision != 2 {
				t.Fatalf("revision %d after a poke: the answered request rotated again", again.state.Revision)
			}
			if n := counter(t, mgr.Registry, "zmqauth_rotations_total", map[string]string{"kind": kind.Name}); n != 1 {
				t.Fatalf("zmqauth_rotations_total %v after one request, want 1", n)
			}
		})
	}
}

func testZeroOverlap(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	env.StartManager(t, ns, nil)
	kind := keys.ServerKind()
	obj := newObject(kind, ns, "zero", 5*time.Minute, 0)
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(obj)
	first := waitFor(t, env, kind, key, "first key", func(s snapshot) bool { return s.state.Revision == 1 })
	requestRotation(t, env, obj, "now")
	got := waitFor(t, env, kind, key, "rotation", func(s snapshot) bool { return s.state.Revision == 2 })
	if got.state.InOverlap() || got.state.Current.Public == first.state.Current.Public {
		t.Fatal("a zero overlap must switch keys at once")
	}
	if c := got.cond(v1alpha1.ConditionRotating); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Rotating %+v", c)
	}
}

// testRestartBetweenSteps stops the manager right after step (a) is
// written and checks that a new manager finishes the rotation: exactly one
// revision more, the old key kept as previous until the overlap ends.
func testRestartBetweenSteps(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		t.Run(kind.Name, func(t *testing.T) {
			const overlap = 5 * time.Second
			mgr := env.StartManager(t, ns, nil)
			obj := newObject(kind, ns, "restart-"+strings.ToLower(kind.Name), 5*time.Minute, overlap)
			if err := env.Client.Create(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKeyFromObject(obj)
			first := waitFor(t, env, kind, key, "first key", func(s snapshot) bool { return s.state.Revision == 1 })
			old := first.state.Current.Public

			requestRotation(t, env, obj, "r1")
			var rotated snapshot
			keystest.Eventually(t, timeout, "step (a) written", func(ctx context.Context) (bool, error) {
				s, err := read(ctx, env, kind, key)
				rotated = s
				return err == nil && s.state.Revision == 2, err
			})
			mgr.Stop(t) // right after the rotation write, before status or step (b)
			if !rotated.state.InOverlap() || rotated.state.Previous.Public != old {
				t.Fatal("step (a) did not keep the old key as previous")
			}

			mgr2 := env.StartManager(t, ns, nil)
			deadline := rotated.state.OverlapUntil
			for time.Now().Before(deadline.Add(-500 * time.Millisecond)) {
				s, err := read(context.Background(), env, kind, key)
				if err != nil {
					t.Fatal(err)
				}
				if s.state.Revision != 2 || s.state.Current.Public != rotated.state.Current.Public {
					t.Fatalf("revision %d after the restart: rotated again", s.state.Revision)
				}
				if !s.state.InOverlap() || s.state.Previous.Public != old {
					t.Fatal("the previous key was dropped before the overlap ended")
				}
				time.Sleep(200 * time.Millisecond)
			}
			ended := waitFor(t, env, kind, key, "end of overlap after restart", func(s snapshot) bool {
				return !s.state.InOverlap() && *s.f.LastRotationRequest == "r1"
			})
			if ended.state.Revision != 2 || ended.state.Current.Public != rotated.state.Current.Public {
				t.Fatalf("after the overlap: revision %d", ended.state.Revision)
			}
			if n := counter(t, mgr2.Registry, "zmqauth_rotations_total", map[string]string{"kind": kind.Name}); n != 0 {
				t.Fatalf("the restarted manager rotated %v times", n)
			}
			mgr2.Stop(t)
		})
	}
}

func testScheduled(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	clk := clocktesting.NewFakeClock(time.Now())
	mgr := env.StartManager(t, ns, clk)
	const period, overlap = 10 * time.Minute, 2 * time.Minute
	kinds := []keys.Kind{keys.ServerKind(), keys.ClientKind()}
	objs := map[string]client.Object{}
	first := map[string]snapshot{}
	for _, kind := range kinds {
		obj := newObject(kind, ns, "sched-"+strings.ToLower(kind.Name), period, overlap)
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		objs[kind.Name] = obj
		first[kind.Name] = waitFor(t, env, kind, client.ObjectKeyFromObject(obj), "first key", func(s snapshot) bool { return s.state.Revision == 1 })
		s := first[kind.Name]
		if next := *s.f.NextRotationTime; next == nil || !next.Time.Equal(s.state.RotatedAt.Add(period)) {
			t.Fatalf("nextRotationTime %v, want rotated-at + %v", next, period)
		}
	}

	// A minute before the period ends: a reconcile that begins after the
	// step (the poke makes one) reads the stepped clock and must not rotate.
	clk.Step(period - time.Minute)
	since := reconciles.mark()
	for _, kind := range kinds {
		env.Poke(t, objs[kind.Name])
	}
	for _, kind := range kinds {
		key := client.ObjectKeyFromObject(objs[kind.Name])
		reconciles.waitReconciled(t, "rotation-"+strings.ToLower(kind.Name), key, since)
		s, err := read(context.Background(), env, kind, key)
		if err != nil {
			t.Fatal(err)
		}
		if s.state.Revision != 1 {
			t.Fatalf("%s rotated before its period ended", kind.Name)
		}
	}

	clk.Step(time.Minute + time.Second)
	for _, kind := range kinds {
		obj := objs[kind.Name]
		env.Poke(t, obj)
		s := waitFor(t, env, kind, client.ObjectKeyFromObject(obj), "scheduled rotation", func(s snapshot) bool {
			c := s.cond(v1alpha1.ConditionRotating)
			return s.state.Revision == 2 && c != nil && c.Status == metav1.ConditionTrue
		})
		if c := s.cond(v1alpha1.ConditionRotating); c.Reason != v1alpha1.ReasonRotationScheduled {
			t.Errorf("%s: Rotating reason %q", kind.Name, c.Reason)
		}
		if s.state.Previous.Public != first[kind.Name].state.Current.Public {
			t.Errorf("%s: previous key is not the first key", kind.Name)
		}
		if !s.state.RotatedAt.Equal(clk.Now().UTC().Truncate(time.Second)) {
			t.Errorf("%s: rotated-at %v, fake now %v", kind.Name, s.state.RotatedAt, clk.Now())
		}
		if next := *s.f.NextRotationTime; next == nil || !next.Time.Equal(s.state.RotatedAt.Add(period)) {
			t.Errorf("%s: nextRotationTime %v", kind.Name, next)
		}
		labels := map[string]string{"kind": kind.Name, "namespace": ns, "name": obj.GetName()}
		if got := gauge(t, mgr.Registry, "zmqauth_key_revision", labels); got != 2 {
			t.Errorf("%s: zmqauth_key_revision %v", kind.Name, got)
		}
		if got := gauge(t, mgr.Registry, "zmqauth_key_next_rotation_timestamp_seconds", labels); got != float64(s.state.RotatedAt.Add(period).Unix()) {
			t.Errorf("%s: next rotation gauge %v", kind.Name, got)
		}
		if got := counter(t, mgr.Registry, "zmqauth_rotations_total", map[string]string{"kind": kind.Name}); got != 1 {
			t.Errorf("%s: zmqauth_rotations_total %v", kind.Name, got)
		}
	}

	clk.Step(overlap)
	for _, kind := range kinds {
		obj := objs[kind.Name]
		env.Poke(t, obj)
		waitFor(t, env, kind, client.ObjectKeyFromObject(obj), "overlap end", func(s snapshot) bool {
			return s.state.Revision == 2 && !s.state.InOverlap() && *s.f.PreviousPublicKey == ""
		})
	}
}

// metric returns the value of the series of name with exactly labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	v, ok, err := testenv.MetricValue(reg, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v, ok
}

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metric(t, reg, name, labels)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	}
	return v
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metric(t, reg, name, labels)
	return v
}

// testStaged: with a propagation delay, a requested rotation first stages the
// next key (a client publishes it in status.nextPublicKey so allowlists admit
// it), keeps using the current key, and switches only after the delay.
func testStaged(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	const delay = 3 * time.Second
	env.StartManagerWithDelay(t, ns, nil, delay)
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		t.Run(kind.Name, func(t *testing.T) {
			obj := newObject(kind, ns, "staged-"+strings.ToLower(kind.Name), 5*time.Minute, time.Minute)
			if err := env.Client.Create(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKeyFromObject(obj)
			first := waitFor(t, env, kind, key, "first key", func(s snapshot) bool { return s.state.Revision == 1 })

			requested := time.Now()
			requestRotation(t, env, obj, "staged-1")
			staged := waitFor(t, env, kind, key, "staged next key", func(s snapshot) bool { return s.state.Next != nil })
			if staged.state.Revision != 1 || staged.state.Current.Public != first.state.Current.Public {
				t.Fatal("staging changed the current key")
			}
			next := staged.state.Next.Public
			if string(staged.secret.Data[filecontract.NextPublicKeyFile]) != next.String() {
				t.Error("next-public.key does not hold the staged key")
			}
			if f := staged.f; f.NextPublicKey != nil {
				keystest.Eventually(t, timeout, "status.nextPublicKey", func(ctx context.Context) (bool, error) {
					s, err := read(ctx, env, kind, key)
					return err == nil && *s.f.NextPublicKey == next.String(), err
				})
			}

			switched := waitFor(t, env, kind, key, "switch to the staged key", func(s snapshot) bool { return s.state.Revision == 2 })
			if waited := time.Since(requested); waited < delay {
				t.Errorf("switched after %s, before the %s propagation delay", waited, delay)
			}
			if switched.state.Current.Public != next {
				t.Error("the switch did not use the staged key")
			}
			if switched.state.Next != nil || switched.secret.Data[filecontract.NextPublicKeyFile] != nil {
				t.Error("the staged key is still staged after the switch")
			}
			if switched.state.Previous == nil || switched.state.Previous.Public != first.state.Current.Public {
				t.Error("the old key is not kept as previous")
			}
			if f := switched.f; f.NextPublicKey != nil && *f.NextPublicKey != "" {
				keystest.Eventually(t, timeout, "status.nextPublicKey cleared", func(ctx context.Context) (bool, error) {
					s, err := read(ctx, env, kind, key)
					return err == nil && *s.f.NextPublicKey == "", err
				})
			}
		})
	}
}
