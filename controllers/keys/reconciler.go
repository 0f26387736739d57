package keys

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// Event reasons of the keys reconciler.
const (
	// EventKeyGenerated: the first keypair was generated (Normal).
	EventKeyGenerated = v1alpha1.ReasonKeyGenerated
	// EventKeyLost: the keypair Secret or its secret key was gone or
	// invalid, so a new keypair replaced it (Warning).
	EventKeyLost = "KeyLost"
	// EventSecretRepaired: files of the keypair Secret were rewritten from
	// its intact secret key; the key is unchanged (Warning).
	EventSecretRepaired = "SecretRepaired"
	// EventSecretAdopted: an existing Secret controlled by the object was
	// taken into management (label added) unchanged (Normal).
	EventSecretAdopted = "SecretAdopted"
	// EventSecretConflict: the named Secret belongs to someone else (Warning).
	EventSecretConflict = v1alpha1.ReasonSecretConflict
)

// conflictRecheck is how often a Secret conflict is looked at again: the
// foreign Secret is not in the cache, so its deletion is not seen.
const conflictRecheck = time.Minute

// Reconciler keeps the keypair Secret of every object of one Kind (create
// once, adopt, repair, replace when lost) and is the only writer of the
// key fields of its status (publicKey, previousPublicKey, keyRevision,
// lastRotationTime, nextRotationTime, lastRotationRequest) and of the
// KeyReady and Rotating conditions, all mirrored from the Secret, and it
// keeps the Ready condition true to the others (see SetupWithManager).
// Rotation itself is the rotation package's: it writes only the Secret.
type Reconciler struct {
	// Client reads through the manager's cache, which holds only Secrets
	// labeled zmqauth.io/managed-by=zmqauth.
	Client client.Client
	// APIReader reads from the API server: a Secret the cache does not hold.
	APIReader client.Reader
	// Recorder emits Events.
	Recorder events.EventRecorder
	// Clock stamps new keys.
	Clock clock.PassiveClock
	// Kind is the kind reconciled.
	Kind Kind
	// Metrics counts errors.
	Metrics *Metrics
	// SecretExtras, when set, returns data entries that another controller
	// keeps in the object's Secret (a CurveClient's server key files),
	// written once when the Secret is created so that its first version is
	// complete. That controller owns them afterwards; the key state written
	// here never includes them.
	SecretExtras func(ctx context.Context, c client.Reader, obj client.Object) (map[string][]byte, error)
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers;curveclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers/status;curveclients/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// maxConcurrentReconciles is how many objects of one kind the reconciler
// works on at once. Each object has its own Secret and the work queue
// never hands one object to two workers, so reconciles of different
// objects share nothing; a reconcile mostly waits for the API server (read,
// create the Secret, write the status), so workers beyond the CPUs still
// add throughput when thousands of objects arrive at once.
const maxConcurrentReconciles = 16

// SetupWithManager registers the reconciler: it runs on changes of the
// object's spec, of the Secrets it controls, and of the detail conditions
// other controllers write (AllowlistReady, Published, Authorized), since it
// keeps Ready true to them. (The distribution controller writes a
// CurveClient's Ready along with Authorized, computed by Ready below, to
// save a write; a Ready that disagrees with the conditions, whoever wrote
// it, is rewritten here.)
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("keys-"+strings.ToLower(r.Kind.Name)).
		For(r.Kind.NewObject(), builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, r.readyStale()))).
		Owns(&corev1.Secret{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

// readyStale passes an update after which the Ready condition no longer
// sums up the detail conditions, e.g. because the allowlist controller set
// AllowlistReady. After our own status write it matches, so this cannot
// loop.
func (r *Reconciler) readyStale() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		f := r.Kind.Fields(e.ObjectNew)
		want := Ready(*f.Conditions, f.ReadyFrom, e.ObjectNew.GetGeneration())
		have := findCondition(*f.Conditions, v1alpha1.ConditionReady)
		return have == nil || have.Status != want.Status || have.Reason != want.Reason || have.Message != want.Message
	}}
}

// outcome is what ensuring the Secret found: the key state when there is a
// valid one, and the KeyReady condition.
type outcome struct {
	state        *secretlayout.State
	keyReady     metav1.Condition
	requeueAfter time.Duration
}

// Reconcile ensures the keypair Secret of one object and mirrors it into
// the object's status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues("keys-" + strings.ToLower(r.Kind.Name)).Inc()
		}
	}()
	obj := r.Kind.NewObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil // the Secret goes with it (owner reference)
	}
	before := obj.DeepCopyObject().(client.Object)
	out, err := r.ensure(ctx, obj)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Another writer got there first, or the Secret vanished while we
		// looked: start again from a fresh read.
		log.FromContext(ctx).V(1).Info("retrying after a concurrent change", "reason", err.Error())
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	r.setStatus(obj, out)
	if !equality.Semantic.DeepEqual(before, obj) {
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, obj, patch); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
			}
			if apierrors.IsNotFound(err) {
				return ctrl.Result{}, nil // deleted meanwhile
			}
			return ctrl.Result{}, fmt.Errorf("update %s status: %w", r.Kind.Name, err)
		}
	}
	return ctrl.Result{RequeueAfter: out.requeueAfter}, nil
}

// ensure makes the keypair Secret exist and hold a valid key state.
func (r *Reconciler) ensure(ctx context.Context, obj client.Object) (outcome, error) {
	key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: r.Kind.Fields(obj).SecretName}
	secret := &corev1.Secret{}
	err := r.Client.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		st, created, err := r.create(ctx, obj)
		if err != nil {
			return outcome{}, err
		}
		if created {
			return ready(r.Kind.Fields(obj).SecretName, st), nil
		}
		// A Secret of that name exists that the cache does not hold: not
		// ours, or ours without the label (or just created and not yet
		// seen). Look at it on the API server.
		if err := r.APIReader.Get(ctx, key, secret); err != nil {
			return outcome{}, fmt.Errorf("read existing Secret %s: %w", key, err)
		}
	case err != nil:
		return outcome{}, fmt.Errorf("read Secret %s: %w", key, err)
	}
	if !metav1.IsControlledBy(secret, obj) || secret.Type != secretlayout.SecretType {
		return r.conflict(obj, secret), nil
	}
	return r.check(ctx, obj, secret)
}

// create generates a keypair and creates the Secret. created is false when
// a Secret of that name already exists; nothing was written then.
func (r *Reconciler) create(ctx context.Context, obj client.Object) (secretlayout.State, bool, error) {
	f := r.Kind.Fields(obj)
	lost := *f.KeyRevision > 0
	reason := v1alpha1.ReasonKeyGenerated
	if lost {
		reason = v1alpha1.ReasonSecretInvalid
	}
	st, err := r.newState(obj, *f.KeyRevision+1, reason)
	if err != nil {
		return st, false, err
	}
	secret, err := r.Kind.NewSecret(obj, st)
	if err != nil {
		return st, false, err
	}
	if r.SecretExtras != nil {
		extras, err := r.SecretExtras(ctx, r.Client, obj)
		if err != nil {
			return st, false, err
		}
		for k, v := range extras {
			if _, taken := secret.Data[k]; !taken {
				secret.Data[k] = v
			}
		}
	}
	if err := r.Client.Create(ctx, secret, client.FieldOwner(FieldOwner)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return st, false, nil
		}
		return st, false, fmt.Errorf("create Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	if lost {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeWarning, EventKeyLost, "ReplaceKey",
			"Secret %s does not exist (deleted, or spec.secretName changed): the previous keypair is lost; generated a new keypair (revision %d, public key %s). Peers that hold the old key must pick up the new one.",
			secret.Name, st.Revision, st.Current.Public)
	} else {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventKeyGenerated, "GenerateKey",
			"generated keypair revision %d in Secret %s (public key %s)", st.Revision, secret.Name, st.Current.Public)
	}
	return st, true, nil
}

// check validates an existing Secret controlled by obj and writes it back
// when it is damaged: repaired from secret.key when that is intact, else
// from curve.key_secret when that is intact and holds the key in use;
// replaced with a new keypair only when neither holds it.
func (r *Reconciler) check(ctx context.Context, obj client.Object, secret *corev1.Secret) (outcome, error) {
	f := r.Kind.Fields(obj)
	source := filecontract.SecretKeyFile
	kp, keyErr := secretlayout.ParseSecretKeyData(secret)
	switch inUse := *f.PublicKey; {
	case keyErr != nil:
		var ok bool
		if kp, ok = r.keyFromCertificate(obj, secret); !ok {
			return r.replace(ctx, obj, secret, keyErr)
		}
		source = filecontract.SecretCertificateFile
	case inUse != "" && kp.Public.String() != inUse:
		// secret.key holds a valid key, but not the one in use. When the
		// certificate still holds that one, secret.key is the edit: repair
		// it rather than switch keys behind everyone's back. (A rotation
		// rewrites all entries at once, so they agree with each other.)
		if cert, ok := r.keyFromCertificate(obj, secret); ok && cert.Public.String() == inUse {
			kp, source = cert, filecontract.SecretCertificateFile
		}
	}
	st := r.repairState(obj, secret, kp)
	data, err := st.Data(identity(obj))
	if err != nil {
		return outcome{}, err
	}
	dataKeys, anns, label := diff(secret, data, st.Annotations())
	if len(dataKeys) == 0 && len(anns) == 0 && !label {
		return ready(f.SecretName, st), nil
	}
	if err := r.Kind.ApplyState(ctx, r.Client, obj, secret.ResourceVersion, st); err != nil {
		return outcome{}, err
	}
	if len(dataKeys) == 0 && len(anns) == 0 {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventSecretAdopted, "AdoptSecret",
			"took Secret %s (keypair revision %d, public key %s) into management", secret.Name, st.Revision, st.Current.Public)
	} else {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeWarning, EventSecretRepaired, "RepairSecret",
			"Secret %s was edited: rewrote %s from its intact %s; the key is unchanged (revision %d, public key %s)",
			secret.Name, strings.Join(append(dataKeys, anns...), ", "), source, st.Revision, st.Current.Public)
	}
	return ready(f.SecretName, st), nil
}

// keyFromCertificate returns the keypair of a Secret's curve.key_secret when
// secret.key is unusable: the certificate must parse (its secret key derives
// its public key) and hold the key in use, i.e. its public key is the
// Secret's public.key or the status's publicKey. A certificate that holds
// some other keypair is not trusted: the key is then lost.
func (r *Reconciler) keyFromCertificate(obj client.Object, secret *corev1.Secret) (keygen.KeyPair, bool) {
	raw, ok := secret.Data[filecontract.SecretCertificateFile]
	if !ok {
		return keygen.KeyPair{}, false
	}
	c, err := keygen.ParseSecretCertificate(raw)
	if err != nil {
		return keygen.KeyPair{}, false
	}
	kp := c.KeyPair()
	if pk, err := keygen.ParsePublicKey(string(secret.Data[filecontract.PublicKeyFile])); err == nil && pk == kp.Public {
		return kp, true
	}
	if status := *r.Kind.Fields(obj).PublicKey; status != "" && status == kp.Public.String() {
		return kp, true
	}
	return keygen.KeyPair{}, false
}

// replace writes a new keypair into a Secret whose secret key is missing or
// invalid in both secret.key and curve.key_secret: there is nothing to
// repair from.
func (r *Reconciler) replace(ctx context.Context, obj client.Object, secret *corev1.Secret, keyErr error) (outcome, error) {
	f := r.Kind.Fields(obj)
	prev := *f.KeyRevision
	if rev, err := secretlayout.Revision(secret); err == nil {
		prev = max(prev, rev)
	}
	// A Secret we control that never held a key (created empty, e.g. by a
	// writer of other entries) gets its first key, not a replacement.
	first := prev == 0 && !hasAny(secret, managedData)
	reason := v1alpha1.ReasonSecretInvalid
	if first {
		reason = v1alpha1.ReasonKeyGenerated
	}
	st, err := r.newState(obj, prev+1, reason)
	if err != nil {
		return outcome{}, err
	}
	if err := r.Kind.ApplyState(ctx, r.Client, obj, secret.ResourceVersion, st); err != nil {
		return outcome{}, err
	}
	if first {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, EventKeyGenerated, "GenerateKey",
			"generated keypair revision %d in Secret %s (public key %s)", st.Revision, secret.Name, st.Current.Public)
	} else {
		r.Recorder.Eventf(obj, secret, corev1.EventTypeWarning, EventKeyLost, "ReplaceKey",
			"the secret key in Secret %s is lost (%v); generated a new keypair (revision %d, public key %s). Peers that hold the old key must pick up the new one.",
			secret.Name, keyErr, st.Revision, st.Current.Public)
	}
	return ready(f.SecretName, st), nil
}

// repairState is the key state a Secret with an intact secret key should
// hold: the same keypair, its bookkeeping from the annotations (else from
// the status that mirrored them), and the previous key while it is intact.
func (r *Reconciler) repairState(obj client.Object, secret *corev1.Secret, kp keygen.KeyPair) secretlayout.State {
	f := r.Kind.Fields(obj)
	ann := secret.Annotations
	st := secretlayout.State{Current: kp, RotationReason: ann[secretlayout.AnnotationRotationReason]}
	if rev, err := secretlayout.Revision(secret); err == nil {
		st.Revision = rev
	} else {
		st.Revision = max(*f.KeyRevision, 1)
	}
	if t, err := time.Parse(time.RFC3339, ann[secretlayout.AnnotationRotatedAt]); err == nil {
		st.RotatedAt = t.UTC()
	} else if *f.LastRotationTime != nil {
		st.RotatedAt = (*f.LastRotationTime).UTC().Truncate(time.Second)
	} else {
		st.RotatedAt = r.now()
	}
	if v, ok := ann[secretlayout.AnnotationRotationRequest]; ok {
		st.RotationRequest = v
	} else {
		st.RotationRequest = *f.LastRotationRequest
	}
	// A staged next keypair survives a repair when it is intact; a damaged
	// one is dropped and the rotation stages a new one.
	if next, err := secretlayout.ParseNext(secret); err == nil && next != nil {
		if since, err := time.Parse(time.RFC3339, ann[secretlayout.AnnotationNextSince]); err == nil {
			st.Next, st.NextSince = next, since.UTC()
		}
	}
	pub, pair, err := secretlayout.ParsePrevious(secret)
	until, uerr := time.Parse(time.RFC3339, ann[secretlayout.AnnotationOverlapUntil])
	if err != nil || pub == nil || uerr != nil {
		return st // no overlap, or a damaged one that cannot be trusted: end it
	}
	switch {
	case !r.Kind.KeepPreviousSecret:
		st.Previous = &keygen.KeyPair{Public: *pub}
	case pair != nil:
		st.Previous = pair
	default:
		return st // a server's previous public key without its secret is useless
	}
	st.OverlapUntil = until.UTC()
	return st
}

// newState returns a fresh keypair at the given revision, stamped now. It
// answers any pending rotation request: a new key is what it asks for.
func (r *Reconciler) newState(obj client.Object, revision int64, reason string) (secretlayout.State, error) {
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return secretlayout.State{}, fmt.Errorf("generate keypair: %w", err)
	}
	return secretlayout.State{
		Current:         kp,
		Revision:        revision,
		RotatedAt:       r.now(),
		RotationRequest: obj.GetAnnotations()[v1alpha1.AnnotationRotate],
		RotationReason:  reason,
	}, nil
}

func (r *Reconciler) now() time.Time { return r.Clock.Now().UTC().Truncate(time.Second) }

// conflict is the outcome for a Secret of the configured name that obj does
// not control: it is left untouched.
func (r *Reconciler) conflict(obj client.Object, secret *corev1.Secret) outcome {
	msg := fmt.Sprintf("Secret %s exists and is not managed by this %s; zmqauth leaves it alone. Delete it or choose another spec.secretName.",
		secret.Name, r.Kind.Name)
	if metav1.IsControlledBy(secret, obj) {
		msg = fmt.Sprintf("Secret %s has type %q, not %s, and a Secret's type cannot change; delete it and zmqauth creates a new keypair.",
			secret.Name, secret.Type, secretlayout.SecretType)
	}
	conds := *r.Kind.Fields(obj).Conditions
	if c := findCondition(conds, v1alpha1.ConditionKeyReady); c == nil || c.Reason != v1alpha1.ReasonSecretConflict {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, EventSecretConflict, "CheckSecret", "%s", msg)
	}
	return outcome{
		keyReady: metav1.Condition{
			Type: v1alpha1.ConditionKeyReady, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonSecretConflict, Message: msg,
		},
		requeueAfter: conflictRecheck,
	}
}

// ready is the outcome for a valid key state.
func ready(secretName string, st secretlayout.State) outcome {
	return outcome{
		state: &st,
		keyReady: metav1.Condition{
			Type: v1alpha1.ConditionKeyReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled,
			Message: fmt.Sprintf("keypair revision %d is in Secret %s", st.Revision, secretName),
		},
	}
}

// hasAny reports whether a Secret holds any of the data keys.
func hasAny(secret *corev1.Secret, keys []string) bool {
	for _, k := range keys {
		if _, ok := secret.Data[k]; ok {
			return true
		}
	}
	return false
}
