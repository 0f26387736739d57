package allowlist

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// grantControllerName names the ClusterCurveGrant status controller.
const grantControllerName = "clustercurvegrant"

// GrantReconciler keeps the status of ClusterCurveGrants: how many servers
// and client keys each matches, and whether it is in force at every matched
// server's allowlist (Ready).
type GrantReconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// Indexes memoizes parsed allowlist indexes; SetupWithManager creates
	// one when nil.
	Indexes *IndexCache
	// Metrics are the collectors (shared with ServerReconciler).
	Metrics *Metrics
	// Recorder records an Event when the grant's Ready condition changes
	// status or reason; nil records none.
	Recorder recorder.EventRecorder
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=clustercurvegrants,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=clustercurvegrants/status,verbs=get;patch

// SetupWithManager registers the controller with its watches.
func (r *GrantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Indexes == nil {
		r.Indexes = NewIndexCache()
	}
	if r.Metrics == nil {
		return fmt.Errorf("allowlist: GrantReconciler needs Metrics (NewMetrics)")
	}
	allGrants := handler.EnqueueRequestsFromMapFunc(r.allGrants)
	return ctrl.NewControllerManagedBy(mgr).
		Named(grantControllerName).
		For(&v1alpha1.ClusterCurveGrant{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.CurveServer{}, handler.EnqueueRequestsFromMapFunc(r.grantsOfServerObject),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.grantsOfAllowlist),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				_, ok := o.GetLabels()[secretlayout.LabelAllowlist]
				return ok
			}))).
		Watches(&corev1.Namespace{}, allGrants, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&v1alpha1.CurveClient{}, r.clientHandler()).
		Complete(r)
}

func (r *GrantReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile brings one ClusterCurveGrant's status up to date.
func (r *GrantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues(grantControllerName).Inc()
		}
	}()
	var g v1alpha1.ClusterCurveGrant
	if err := r.Client.Get(ctx, req.NamespacedName, &g); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get ClusterCurveGrant %s: %w", req.Name, err)
	}
	rule := CompileGrant(&g)
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: g.Generation}
	if rule.Err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector
		cond.Message = truncate("the grant admits nothing until its selectors are fixed: " + rule.Err.Error())
		return ctrl.Result{}, r.applyStatus(ctx, &g, 0, 0, cond)
	}

	nsl := NewNamespaceLabels(r.Client)
	var servers v1alpha1.CurveServerList
	if err := r.Client.List(ctx, &servers, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("list CurveServers: %w", err)
	}
	var matched []*v1alpha1.CurveServer
	for i := range servers.Items {
		srv := &servers.Items[i]
		l, err := nsl.Get(ctx, srv.Namespace)
		if err != nil {
			return ctrl.Result{}, err
		}
		if srv.DeletionTimestamp == nil && rule.MatchesServer(srv, l) {
			matched = append(matched, srv)
		}
	}

	type clientKey struct{ identity, key string }
	var keys []clientKey
	err = listClients(ctx, r.Client, rule.clients, func(cc *v1alpha1.CurveClient) {
		if cc.DeletionTimestamp != nil || cc.Status.PublicKey == "" {
			return
		}
		if _, err := keygen.ParsePublicKey(cc.Status.PublicKey); err == nil {
			keys = append(keys, clientKey{filecontract.Identity(cc.Namespace, cc.Name), cc.Status.PublicKey})
		}
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	raw := map[string]bool{}
	for _, k := range rule.Keys {
		if pk, err := keygen.ParsePublicKey(string(k.Key)); err == nil {
			raw[pk.String()] = true
		}
	}

	var pending []string
	for _, srv := range matched {
		var cm corev1.ConfigMap
		key := types.NamespacedName{Namespace: srv.Namespace, Name: secretlayout.AllowlistConfigMapName(srv.Name)}
		var ix *Index
		if err := r.Client.Get(ctx, key, &cm, client.UnsafeDisableDeepCopy); err == nil {
			ix, _ = r.Indexes.Get(&cm)
		} else if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get ConfigMap %s: %w", key, err)
		}
		ok := ix != nil
		for _, k := range keys {
			if !ok {
				break
			}
			_, ok = ix.Lookup(k.identity, k.key)
		}
		for k := range raw {
			if !ok {
				break
			}
			ok = ix.HasKey(k)
		}
		if !ok {
			pending = append(pending, RefKey(srv.Namespace, srv.Name))
		}
	}

	nClients := int32(len(keys) + len(raw))
	switch {
	case len(pending) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonAllowlistPending
		cond.Message = fmt.Sprintf("%d client keys are not yet on the allowlists of %d of %d matched servers: %s",
			nClients, len(pending), len(matched), listSome(pending, 5))
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		cond.Message = fmt.Sprintf("%d client keys are on the allowlists of all %d matched servers", nClients, len(matched))
	}
	return ctrl.Result{}, r.applyStatus(ctx, &g, int32(len(matched)), nClients, cond)
}

// listSome joins up to n items, saying how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// applyStatus writes the grant's status when it differs.
func (r *GrantReconciler) applyStatus(ctx context.Context, g *v1alpha1.ClusterCurveGrant, servers, clients int32, cond metav1.Condition) error {
	st := g.Status
	if st.MatchedServers == servers && st.MatchedClients == clients && st.ObservedGeneration == g.Generation &&
		statusapply.ConditionUpToDate(st.Conditions, cond) {
		return nil
	}
	old := meta.FindStatusCondition(st.Conditions, cond.Type)
	cond = statusapply.Condition(st.Conditions, cond, r.now())
	if err := statusapply.Apply(ctx, r.Client, "ClusterCurveGrant", g, FieldOwner, map[string]any{
		"matchedServers":     int64(servers),
		"matchedClients":     int64(clients),
		"observedGeneration": g.Generation,
		"conditions":         statusapply.Conditions(cond),
	}); err != nil {
		return err
	}
	if r.Recorder != nil && (old == nil || old.Status != cond.Status || old.Reason != cond.Reason) {
		kind, reason := corev1.EventTypeNormal, cond.Reason
		switch {
		case cond.Status == metav1.ConditionTrue:
			reason = "InForce"
		case cond.Reason == v1alpha1.ReasonInvalidSelector:
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(g, nil, kind, reason, "CheckGrant", "%s", cond.Message)
	}
	return nil
}

// allGrants maps an event to every grant (namespace label changes; grants
// are few).
func (r *GrantReconciler) allGrants(ctx context.Context, _ client.Object) []reconcile.Request {
	var grants v1alpha1.ClusterCurveGrantList
	if err := r.Client.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(grants.Items))
	for i, g := range grants.Items {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: g.Name}}
	}
	return out
}

// grantsOfServer returns the grants that match the server namespace/name.
func (r *GrantReconciler) grantsOfServer(ctx context.Context, namespace, name string) []reconcile.Request {
	var srv v1alpha1.CurveServer
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &srv, client.UnsafeDisableDeepCopy); err != nil {
		// Gone: every grant might have matched it.
		return r.allGrants(ctx, nil)
	}
	var grants v1alpha1.ClusterCurveGrantList
	if err := r.Client.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	l := nsLabelsOf(ctx, r.Client, namespace)
	var out []reconcile.Request
	for i := range grants.Items {
		if CompileGrant(&grants.Items[i]).MatchesServer(&srv, l) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: grants.Items[i].Name}})
		}
	}
	return out
}

func (r *GrantReconciler) grantsOfServerObject(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetDeletionTimestamp() != nil {
		return r.allGrants(ctx, o)
	}
	return r.grantsOfServer(ctx, o.GetNamespace(), o.GetName())
}

func (r *GrantReconciler) grantsOfAllowlist(ctx context.Context, o client.Object) []reconcile.Request {
	return r.grantsOfServer(ctx, o.GetNamespace(), o.GetLabels()[secretlayout.LabelAllowlist])
}

// clientHandler maps a CurveClient change that can change a grant's count
// (labels, public key, creation with a key, deletion) to the grants that
// select the client before or after.
func (r *GrantReconciler) clientHandler() handler.EventHandler {
	mapClients := func(ctx context.Context, q queue, objs ...client.Object) {
		var grants v1alpha1.ClusterCurveGrantList
		if err := r.Client.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil || len(grants.Items) == 0 {
			return
		}
		nsl := NewNamespaceLabels(r.Client)
		for i := range grants.Items {
			rule := CompileGrant(&grants.Items[i])
			for _, o := range objs {
				cc, ok := o.(*v1alpha1.CurveClient)
				if !ok {
					continue
				}
				l, err := nsl.Get(ctx, cc.Namespace)
				if err == nil && rule.SelectsClient(cc, l) {
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: rule.Name}})
					break
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) {
			if cc, ok := ev.Object.(*v1alpha1.CurveClient); ok && cc.Status.PublicKey != "" {
				mapClients(ctx, q, cc)
			}
		},
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			old, ok1 := ev.ObjectOld.(*v1alpha1.CurveClient)
			cur, ok2 := ev.ObjectNew.(*v1alpha1.CurveClient)
			if ok1 && ok2 && clientRelevantChange(old, cur) {
				mapClients(ctx, q, old, cur)
			}
		},
		DeleteFunc: func(ctx context.Context, ev event.DeleteEvent, q queue) { mapClients(ctx, q, ev.Object) },
	}
}
