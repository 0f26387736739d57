// Package rotation rotates the keypairs of CurveServers and CurveClients, on
// schedule (spec.rotation.period) and on request (the zmqauth.io/rotate
// annotation), with an overlap during which the previous key stays valid.
//
// The rotation state lives in the keypair Secret (see secretlayout.State),
// and each step is one atomic, optimistically locked write of it:
//
//	steady ──(a) rotate──▶ overlap ──(b) overlap-until passed──▶ steady
//
// (a) puts a new keypair in public.key, secret.key and the zcert files,
// moves the old key to previous-* (a server keeps its previous secret key, a
// client only its previous public key) and sets the annotations
// key-revision+1, rotated-at, overlap-until and rotation-request. With a
// zero overlap it goes straight to steady. (b) removes previous-* and
// overlap-until. A manager stopped between or during the steps finds the
// state in the Secret and carries on; a write based on a stale read fails
// and is retried, so no rotation happens twice and no key is lost.
//
// This reconciler writes only the Secret (and Events and metrics); the keys
// reconciler mirrors the Secret into the object's status.
package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/keygen"
)

// Event reasons of the rotation reconciler.
const (
	// EventRotated: a new keypair replaced the current one (Normal).
	EventRotated = "Rotated"
	// EventStaged: a next keypair was staged for the switch (Normal).
	EventStaged = "RotationStaged"
	// EventOverlapEnded: the previous key was removed (Normal).
	EventOverlapEnded = v1alpha1.ReasonOverlapEnded
)

// Reconciler rotates the keypairs of one Kind.
type Reconciler struct {
	// Client reads through the manager's cache and writes the Secret.
	Client client.Client
	// Recorder emits Events.
	Recorder events.EventRecorder
	// Clock tells when a rotation or an overlap is due.
	Clock clock.PassiveClock
	// Kind is the kind reconciled.
	Kind keys.Kind
	// Metrics are the rotation collectors.
	Metrics *Metrics
	// PropagationDelay is how long a staged next keypair waits before the
	// switch to it: the time for the kubelet to bring the Secret and the
	// allowlists that name the next key into every pod. Zero switches at
	// once, without staging.
	PropagationDelay time.Duration
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers;curveclients,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler: it runs when the object's spec
// or annotations change (a rotation request) and when its Secret changes,
// and wakes itself when a rotation or an overlap end is due.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("rotation-"+r.controllerKind()).
		For(r.Kind.NewObject(), builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		Complete(r)
}

func (r *Reconciler) controllerKind() string { return strings.ToLower(r.Kind.Name) }

// Reconcile takes the next due rotation step of one object, if any, and
// schedules itself for the next one.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues("rotation-" + r.controllerKind()).Inc()
		}
	}()
	obj := r.Kind.NewObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(r.Kind.Name, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	f := r.Kind.Fields(obj)
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: f.SecretName}, secret); err != nil {
		// Missing: the keys reconciler creates it, and its creation brings
		// us back.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(secret, obj) {
		return ctrl.Result{}, nil
	}
	st, err := secretlayout.ReadState(secret)
	if err != nil {
		// Damaged: the keys reconciler repairs it first; never rotate from
		// a state we cannot read in full.
		log.FromContext(ctx).V(1).Info("keypair Secret not valid yet; leaving it to the keys reconciler", "reason", err.Error())
		return ctrl.Result{}, nil
	}
	period, overlap, scheduled := keys.Schedule(f.Rotation)
	r.Metrics.observe(r.Kind.Name, obj.GetNamespace(), obj.GetName(), st, period, scheduled)
	now := r.Clock.Now()

	next, reason, err := r.nextStep(obj, st, now, period, overlap, scheduled)
	if err != nil {
		return ctrl.Result{}, err
	}
	if next != nil {
		if err := r.Kind.ApplyState(ctx, r.Client, obj, secret.ResourceVersion, *next); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil // stale read: decide again
			}
			return ctrl.Result{}, err
		}
		r.report(obj, secret, st, *next, reason)
		st = *next
		r.Metrics.observe(r.Kind.Name, obj.GetNamespace(), obj.GetName(), st, period, scheduled)
	}
	return ctrl.Result{RequeueAfter: r.wake(st, now, period, scheduled)}, nil
}

// nextStep returns the key state to write now, or nil when nothing is due,
// and the reason: OverlapEnded, RotationRequested or RotationScheduled.
func (r *Reconciler) nextStep(obj client.Object, st secretlayout.State, now time.Time, period, overlap time.Duration, scheduled bool) (*secretlayout.State, string, error) {
	// (b) The overlap is over: drop the previous key.
	if st.InOverlap() && !now.Before(st.OverlapUntil) {
		next := st
		next.Previous, next.OverlapUntil = nil, time.Time{}
		return &next, v1alpha1.ReasonOverlapEnded, nil
	}
	// (a2) A staged keypair has had time to reach every peer: switch to it.
	if st.Next != nil {
		if now.Before(st.NextSince.Add(r.PropagationDelay)) {
			return nil, "", nil
		}
		next := promote(st, *st.Next, now, overlap, r.Kind.KeepPreviousSecret)
		return &next, st.RotationReason, nil
	}
	// (a1) A rotation is requested or due.
	request := obj.GetAnnotations()[v1alpha1.AnnotationRotate]
	var reason string
	switch {
	case request != "" && request != st.RotationRequest:
		reason = v1alpha1.ReasonRotationRequested
	case scheduled && !now.Before(st.RotatedAt.Add(period)):
		reason = v1alpha1.ReasonRotationScheduled
	default:
		return nil, "", nil
	}
	var next secretlayout.State
	var err error
	if r.PropagationDelay > 0 {
		next, err = stage(st, now)
	} else {
		next, err = rotate(st, now, overlap, r.Kind.KeepPreviousSecret)
	}
	if err != nil {
		return nil, "", err
	}
	next.RotationRequest = request
	next.RotationReason = reason
	return &next, reason, nil
}

// stage returns st with a new keypair staged as Next at now: peers learn it
// (a server's sidecar accepts it, allowlists admit a client's) before the
// switch to it, PropagationDelay later.
func stage(st secretlayout.State, now time.Time) (secretlayout.State, error) {
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return st, fmt.Errorf("generate keypair: %w", err)
	}
	next := st
	next.Next = &kp
	// Stored with one-second resolution: round up, so the switch never
	// comes before the full propagation delay.
	next.NextSince = now.UTC().Add(time.Second - 1).Truncate(time.Second)
	return next, nil
}

// rotate returns st after one rotation at now to a new keypair.
func rotate(st secretlayout.State, now time.Time, overlap time.Duration, keepPreviousSecret bool) (secretlayout.State, error) {
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return st, fmt.Errorf("generate keypair: %w", err)
	}
	return promote(st, kp, now, overlap, keepPreviousSecret), nil
}

// promote returns st after switching at now to kp, one revision up, the old
// key kept as previous until now+overlap (none with a zero overlap).
func promote(st secretlayout.State, kp keygen.KeyPair, now time.Time, overlap time.Duration, keepPreviousSecret bool) secretlayout.State {
	at := now.UTC().Truncate(time.Second)
	next := secretlayout.State{
		Current:         kp,
		Revision:        st.Revision + 1,
		RotatedAt:       at,
		RotationRequest: st.RotationRequest,
		RotationReason:  st.RotationReason,
	}
	if overlap > 0 {
		prev := st.Current
		if !keepPreviousSecret {
			prev = keygen.KeyPair{Public: st.Current.Public}
		}
		next.Previous = &prev
		next.OverlapUntil = at.Add(overlap)
	}
	return next
}

// report emits the Event and counts the rotation of a step just written.
func (r *Reconciler) report(obj client.Object, secret *corev1.Secret, before, after secretlayout.State, reason string) {
	if reason == v1alpha1.ReasonOverlapEnded {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventOverlapEnded, "EndOverlap",
			"overlap ended: the previous key %s is no longer accepted; only revision %d (public key %s) is",
			before.Previous.Public, after.Revision, after.Current.Public)
		return
	}
	if after.Next != nil {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventStaged, "StageRotation",
			"staged next key %s (%s); peers learn it now and the switch to it follows at %s",
			after.Next.Public, reason, after.NextSince.Add(r.PropagationDelay).Format(time.RFC3339))
		return
	}
	r.Metrics.Rotations.WithLabelValues(r.Kind.Name).Inc()
	until := "not kept (zero overlap)"
	if after.Previous != nil {
		until = "accepted until " + after.OverlapUntil.Format(time.RFC3339)
	}
	r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventRotated, "Rotate",
		"rotated to key revision %d (%s): new public key %s; previous key %s %s",
		after.Revision, reason, after.Current.Public, before.Current.Public, until)
}

// wake returns how long until the next step is due (0: nothing scheduled).
func (r *Reconciler) wake(st secretlayout.State, now time.Time, period time.Duration, scheduled bool) time.Duration {
	var due []time.Time
	if st.InOverlap() {
		due = append(due, st.OverlapUntil)
	}
	switch {
	case st.Next != nil:
		// The rotation the period asked for is under way: its next step
		// is the switch, and the period counts again from there. (The
		// overdue period end would otherwise wake this every 100 ms for
		// the whole propagation delay.)
		due = append(due, st.NextSince.Add(r.PropagationDelay))
	case scheduled:
		due = append(due, st.RotatedAt.Add(period))
	}
	var after time.Duration
	for _, t := range due {
		d := t.Sub(now)
		if d <= 0 {
			d = 100 * time.Millisecond
		}
		if after == 0 || d < after {
			after = d
		}
	}
	return after
}
