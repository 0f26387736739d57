package distribution

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist/statusapply"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// publishControllerName names the publishing controller.
const publishControllerName = "publish"

// PublishReconciler publishes the public keys of CurveServers with
// spec.publish into ConfigMaps in the selected namespaces.
type PublishReconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// Recorder records events; nil records none.
	Recorder recorder.EventRecorder
	// Metrics are the collectors; required.
	Metrics *Metrics
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers/status,verbs=get;patch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the controller with its watches.
func (r *PublishReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Metrics == nil {
		return fmt.Errorf("distribution: PublishReconciler needs Metrics (NewMetrics)")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(publishControllerName).
		For(&v1alpha1.CurveServer{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return publishRelevantChange(e.ObjectOld, e.ObjectNew)
		}})).
		Watches(&corev1.Namespace{}, r.namespaceHandler()).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if _, ok := o.GetLabels()[LabelPublishedFrom]; !ok {
				return nil
			}
			if srv, ok := publishedFrom(o.GetAnnotations()); ok {
				return []reconcile.Request{{NamespacedName: srv}}
			}
			return nil
		})).
		Complete(r)
}

// publishRelevantChange reports whether a CurveServer update can change what
// is published: spec, public key, deletion, finalizers or the Published
// condition (restored if someone else changed it).
func publishRelevantChange(old, cur client.Object) bool {
	o, ok1 := old.(*v1alpha1.CurveServer)
	c, ok2 := cur.(*v1alpha1.CurveServer)
	if !ok1 || !ok2 {
		return true
	}
	oc := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionPublished)
	cc := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionPublished)
	return o.Generation != c.Generation || o.Status.PublicKey != c.Status.PublicKey ||
		(o.DeletionTimestamp == nil) != (c.DeletionTimestamp == nil) ||
		!slices.Equal(o.Finalizers, c.Finalizers) || (oc == nil) != (cc == nil) ||
		(oc != nil && cc != nil && (oc.Status != cc.Status || oc.Message != cc.Message))
}

func (r *PublishReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile publishes one CurveServer's public key, or removes what was
// published.
func (r *PublishReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if apierrors.IsConflict(err) {
			// A finalizer patch raced another write of the server: start
			// again from a fresh read, without counting an error.
			res, err = ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues(publishControllerName).Inc()
		}
	}()
	var srv v1alpha1.CurveServer
	if err := r.Client.Get(ctx, req.NamespacedName, &srv); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone without our cleanup (finalizer removed by hand): clean up.
			_, err := r.unpublish(ctx, req.NamespacedName, nil)
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, fmt.Errorf("get CurveServer %s: %w", req.NamespacedName, err)
	}
	if srv.DeletionTimestamp != nil || srv.Spec.Publish == nil {
		return ctrl.Result{}, r.withdraw(ctx, &srv)
	}
	if err := r.setFinalizer(ctx, &srv, true); err != nil {
		return ctrl.Result{}, err
	}

	cond := metav1.Condition{Type: v1alpha1.ConditionPublished, ObservedGeneration: srv.Generation}
	sel, err := metav1.LabelSelectorAsSelector(srv.Spec.Publish.NamespaceSelector)
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector
		cond.Message = fmt.Sprintf("spec.publish.namespaceSelector: %v; what was published stays until it is fixed", err)
		return ctrl.Result{}, r.applyCondition(ctx, &srv, &cond)
	}
	var nsList corev1.NamespaceList
	if err := r.Client.List(ctx, &nsList, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list namespaces: %w", err)
	}
	selected := map[string]bool{}
	for _, ns := range nsList.Items {
		if ns.DeletionTimestamp == nil && ns.Status.Phase != corev1.NamespaceTerminating {
			selected[ns.Name] = true
		}
	}

	key, keyErr := keygen.ParsePublicKey(srv.Status.PublicKey)
	var failed []string
	if keyErr == nil {
		data, err := publishedData(&srv, key)
		if err != nil {
			return ctrl.Result{}, err
		}
		for _, ns := range slices.Sorted(maps.Keys(selected)) {
			if err := r.publish(ctx, &srv, ns, data); err != nil {
				failed = append(failed, fmt.Sprintf("%s (%v)", ns, err))
			}
		}
	}
	removed, err := r.unpublish(ctx, req.NamespacedName, selected)
	if err != nil {
		return ctrl.Result{}, err
	}

	switch {
	case keyErr != nil:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonServerKeyPending
		cond.Message = "the server has no keypair yet; its public key is published once it has"
	case len(failed) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonPublishFailed
		cond.Message = truncate(fmt.Sprintf("could not publish to %d of %d namespaces: %s", len(failed), len(selected), strings.Join(failed, "; ")))
		r.event(&srv, corev1.EventTypeWarning, v1alpha1.ReasonPublishFailed, cond.Message)
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		cond.Message = fmt.Sprintf("public key published as ConfigMap %s in %d namespaces", PublishedConfigMapName(srv.Namespace, srv.Name), len(selected))
	}
	if removed > 0 {
		r.event(&srv, corev1.EventTypeNormal, "Unpublished", fmt.Sprintf("removed the public key ConfigMap from %d namespaces no longer selected", removed))
	}
	if err := r.applyCondition(ctx, &srv, &cond); err != nil {
		return ctrl.Result{}, err
	}
	if len(failed) > 0 {
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	return ctrl.Result{}, nil
}

// withdraw removes everything published for srv, then its finalizer and
// its Published condition.
func (r *PublishReconciler) withdraw(ctx context.Context, srv *v1alpha1.CurveServer) error {
	if !controllerutil.ContainsFinalizer(srv, PublishFinalizer) {
		if srv.DeletionTimestamp == nil && meta.FindStatusCondition(srv.Status.Conditions, v1alpha1.ConditionPublished) != nil {
			return r.applyCondition(ctx, srv, nil)
		}
		return nil
	}
	if _, err := r.unpublish(ctx, types.NamespacedName{Namespace: srv.Namespace, Name: srv.Name}, nil); err != nil {
		return err
	}
	if err := r.setFinalizer(ctx, srv, false); err != nil {
		return err
	}
	if srv.DeletionTimestamp == nil {
		return r.applyCondition(ctx, srv, nil)
	}
	return nil
}

// setFinalizer adds or removes PublishFinalizer with an optimistic-locked
// patch, so no other finalizer is lost.
func (r *PublishReconciler) setFinalizer(ctx context.Context, srv *v1alpha1.CurveServer, on bool) error {
	if controllerutil.ContainsFinalizer(srv, PublishFinalizer) == on {
		return nil
	}
	orig := srv.DeepCopy()
	if on {
		controllerutil.AddFinalizer(srv, PublishFinalizer)
	} else {
		controllerutil.RemoveFinalizer(srv, PublishFinalizer)
	}
	if err := r.Client.Patch(ctx, srv, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) && !on {
			return nil
		}
		return fmt.Errorf("set finalizer on CurveServer %s/%s: %w", srv.Namespace, srv.Name, err)
	}
	return nil
}

// publishedData is the content of a published ConfigMap.
func publishedData(srv *v1alpha1.CurveServer, key keygen.PublicKey) (map[string]string, error) {
	cert, err := secretlayout.PublicCertificate(key, map[string]string{
		filecontract.MetadataIdentity: filecontract.Identity(srv.Namespace, srv.Name),
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{filecontract.PublishedCertificateFile: string(cert), filecontract.PublishedPublicKeyFile: key.String()}, nil
}

// publish writes the published ConfigMap of srv into namespace ns when it
// differs.
func (r *PublishReconciler) publish(ctx context.Context, srv *v1alpha1.CurveServer, ns string, data map[string]string) error {
	name := PublishedConfigMapName(srv.Namespace, srv.Name)
	lbl := map[string]string{
		secretlayout.LabelManagedBy: secretlayout.ManagedBy,
		LabelPublishedFrom:          PublishedFromLabel(srv.Namespace, srv.Name),
	}
	ann := map[string]string{AnnotationPublishedFrom: filecontract.Identity(srv.Namespace, srv.Name)}
	var cur corev1.ConfigMap
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cur, client.UnsafeDisableDeepCopy)
	if err == nil && maps.Equal(cur.Data, data) && len(cur.BinaryData) == 0 &&
		cur.Labels[LabelPublishedFrom] == lbl[LabelPublishedFrom] && cur.Labels[secretlayout.LabelManagedBy] == secretlayout.ManagedBy &&
		cur.Annotations[AnnotationPublishedFrom] == ann[AnnotationPublishedFrom] {
		return nil
	}
	switch {
	case apierrors.IsNotFound(err):
		// Create, never apply: a ConfigMap of that name that the cache does
		// not hold (it holds only zmqauth's) is someone else's, and an
		// apply would take it over, and later delete it.
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl, Annotations: ann},
			Data:       data,
		}
		err := r.Client.Create(ctx, cm, client.FieldOwner(FieldOwner))
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ConfigMap %s/%s exists and is not zmqauth's; it is left alone: delete it, or stop selecting namespace %s", ns, name, ns)
		}
		if err != nil {
			return fmt.Errorf("create ConfigMap %s/%s: %w", ns, name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get ConfigMap %s/%s: %w", ns, name, err)
	case cur.Annotations[AnnotationPublishedFrom] != ann[AnnotationPublishedFrom]:
		return fmt.Errorf("ConfigMap %s/%s exists and was not published from this CurveServer; it is left alone: delete it, or stop selecting namespace %s", ns, name, ns)
	}
	ac := corev1ac.ConfigMap(name, ns).WithLabels(lbl).WithAnnotations(ann).WithData(data)
	if err := r.Client.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ConfigMap %s/%s: %w", ns, name, err)
	}
	return nil
}

// unpublish deletes the published ConfigMaps of server outside the keep
// namespaces (all when keep is nil) and returns how many it deleted.
func (r *PublishReconciler) unpublish(ctx context.Context, server types.NamespacedName, keep map[string]bool) (int, error) {
	var list corev1.ConfigMapList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{LabelPublishedFrom: PublishedFromLabel(server.Namespace, server.Name)}); err != nil {
		return 0, fmt.Errorf("list published ConfigMaps: %w", err)
	}
	n := 0
	for i := range list.Items {
		cm := &list.Items[i]
		if src, ok := publishedFrom(cm.Annotations); !ok || src != server || keep[cm.Namespace] {
			continue
		}
		if err := r.Client.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return n, fmt.Errorf("delete ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		n++
	}
	return n, nil
}

// applyCondition writes the Published condition when it differs; nil
// removes it.
func (r *PublishReconciler) applyCondition(ctx context.Context, srv *v1alpha1.CurveServer, cond *metav1.Condition) error {
	if cond == nil {
		return statusapply.Apply(ctx, r.Client, "CurveServer", srv, FieldOwner, map[string]any{})
	}
	if statusapply.ConditionUpToDate(srv.Status.Conditions, *cond) {
		return nil
	}
	c := statusapply.Condition(srv.Status.Conditions, *cond, r.now())
	return statusapply.Apply(ctx, r.Client, "CurveServer", srv, FieldOwner, map[string]any{
		"conditions": statusapply.Conditions(c),
	})
}

// namespaceHandler maps a namespace's creation or label change to the
// servers whose publish selector matches its old or new labels.
func (r *PublishReconciler) namespaceHandler() handler.EventHandler {
	mapNS := func(ctx context.Context, q queue, sets ...labels.Set) {
		var servers v1alpha1.CurveServerList
		if err := r.Client.List(ctx, &servers, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		for i := range servers.Items {
			srv := &servers.Items[i]
			if srv.Spec.Publish == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(srv.Spec.Publish.NamespaceSelector)
			if err != nil {
				continue
			}
			for _, l := range sets {
				if sel.Matches(l) {
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: srv.Namespace, Name: srv.Name}})
					break
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) { mapNS(ctx, q, ev.Object.GetLabels()) },
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			if !maps.Equal(ev.ObjectOld.GetLabels(), ev.ObjectNew.GetLabels()) {
				mapNS(ctx, q, ev.ObjectOld.GetLabels(), ev.ObjectNew.GetLabels())
			}
		},
	}
}

// event records an event on srv when a recorder is set.
func (r *PublishReconciler) event(srv *v1alpha1.CurveServer, kind, reason, msg string) {
	if r.Recorder != nil {
		// Regarding the server without its resourceVersion, so repeated
		// events fold into one series instead of one Event each.
		ref := &v1alpha1.CurveServer{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: srv.Name, UID: srv.UID}}
		r.Recorder.Eventf(ref, nil, kind, reason, "Publish", "%s", msg)
	}
}

// truncate bounds a condition message.
func truncate(s string) string {
	const max = 2000
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
