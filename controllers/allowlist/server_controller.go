package allowlist

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist/statusapply"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

// FieldOwner is the field manager of the allowlist controller: it writes
// the allowlist ConfigMaps (whole), and owns through server-side apply the
// CurveServer status fields authorizedClients and allowlistConfigMap and the
// AllowlistReady condition, and the whole status of ClusterCurveGrants.
const FieldOwner = "zmqauth-allowlist"

// ReasonConfigMapConflict: a ConfigMap with the allowlist's name exists but
// does not belong to the CurveServer; zmqauth leaves it alone.
const ReasonConfigMapConflict = "ConfigMapConflict"

// controllerName names the allowlist controller in metrics and logs.
const controllerName = "allowlist"

// ServerReconciler keeps each CurveServer's allowlist ConfigMap and its
// AllowlistReady status.
type ServerReconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// APIReader reads around the cache; used only to check, before
	// creating an allowlist ConfigMap, that no foreign ConfigMap has its
	// name (the cache holds only zmqauth's own ConfigMaps).
	APIReader client.Reader
	// Recorder records events; nil records none.
	Recorder recorder.EventRecorder
	// Metrics are the collectors; SetupWithManager creates them when nil.
	Metrics *Metrics
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MinWriteInterval is the least time between two writes of one
	// server's allowlist (larger allowlists wait longer, up to 5s): changes
	// that arrive meanwhile are coalesced into the next write, so thousands
	// of new clients cost a few writes of the ConfigMap rather than one
	// each. The first change after a quiet period is written at once. Zero
	// means DefaultMinWriteInterval; negative disables coalescing.
	MinWriteInterval time.Duration

	render renderer
	writes lastWrites
}

// DefaultMinWriteInterval is the default ServerReconciler.MinWriteInterval.
const DefaultMinWriteInterval = time.Second

// Large allowlists are written less often: every writeBytesPerSecond bytes
// of content add a second to the interval, up to maxWriteInterval, since
// the API server's cost of applying a ConfigMap grows with its size (at
// 1,000 clients a server's allowlist is about 500 KB).
const (
	writeBytesPerSecond = 128 << 10
	maxWriteInterval    = 5 * time.Second
)

// writeInterval returns the pause after writing an allowlist of size bytes.
func writeInterval(minimum time.Duration, size int) time.Duration {
	d := time.Duration(size) * time.Second / writeBytesPerSecond
	if d > maxWriteInterval {
		d = maxWriteInterval
	}
	return max(d, minimum)
}

// lastWrites remembers, per server, when its allowlist may next be written
// (monotonic wall time, not the injectable clock: it paces API writes).
type lastWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]time.Time
}

// wait returns how long to wait before server's allowlist may be written.
func (l *lastWrites) wait(server types.NamespacedName) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if next, ok := l.m[server]; ok {
		if d := time.Until(next); d > 0 {
			return d
		}
	}
	return 0
}

// wrote records a write of server's allowlist now, and the pause before
// the next one.
func (l *lastWrites) wrote(server types.NamespacedName, pause time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[types.NamespacedName]time.Time{}
	}
	l.m[server] = time.Now().Add(pause)
}

// forget drops a server that is gone.
func (l *lastWrites) forget(server types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, server)
}

func (r *ServerReconciler) minWriteInterval() time.Duration {
	switch {
	case r.MinWriteInterval == 0:
		return DefaultMinWriteInterval
	case r.MinWriteInterval < 0:
		return 0
	}
	return r.MinWriteInterval
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers/status,verbs=get;patch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers/finalizers,verbs=update
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=clustercurvegrants,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the field index on CurveClient spec.servers,
// the metrics, and the controller with its watches.
func (r *ServerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Metrics == nil {
		return fmt.Errorf("allowlist: ServerReconciler needs Metrics (NewMetrics)")
	}
	if err := IndexServerRefs(context.Background(), mgr.GetFieldIndexer(), ServerRefIndex); err != nil {
		return fmt.Errorf("allowlist: %w", err)
	}
	m := mapper{r: r.Client}
	return ctrl.NewControllerManagedBy(mgr).
		Named(controllerName).
		For(&v1alpha1.CurveServer{}).
		Owns(&corev1.ConfigMap{}).
		Watches(&v1alpha1.CurveClient{}, m.clientHandler()).
		Watches(&v1alpha1.ClusterCurveGrant{}, m.grantHandler()).
		Watches(&corev1.Namespace{}, m.namespaceHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

// maxConcurrentReconciles is how many servers' allowlists are computed and
// written at once. Each reconcile writes only its own server's ConfigMap and
// status (the renders and write times they keep are per server, behind a
// lock), and the work queue never hands one server to two workers. Writing
// a large allowlist waits for the API server for most of a second, so with
// two workers ten servers of 1,000 clients queued behind each other.
const maxConcurrentReconciles = 4

func (r *ServerReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile brings one CurveServer's allowlist ConfigMap and status up to
// date.
func (r *ServerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues(controllerName).Inc()
		}
	}()
	var srv v1alpha1.CurveServer
	if err := r.Client.Get(ctx, req.NamespacedName, &srv); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get CurveServer %s: %w", req.NamespacedName, err)
	}
	if srv.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the ConfigMap goes with its owner
	}
	if d := r.writes.wait(req.NamespacedName); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	nsl := NewNamespaceLabels(r.Client)
	pol, err := CompilePolicy(ctx, r.Client, nsl, &srv)
	if err != nil {
		return ctrl.Result{}, err
	}
	g, err := r.gather(ctx, &srv, pol, nsl)
	if err != nil {
		return ctrl.Result{}, err
	}
	c, err := r.render.render(req.NamespacedName, g.files)
	if err != nil {
		return ctrl.Result{}, err
	}
	c.withMode(string(serverMode(&srv)))

	cmName := secretlayout.AllowlistConfigMapName(srv.Name)
	cond := metav1.Condition{Type: v1alpha1.ConditionAllowlistReady, ObservedGeneration: srv.Generation}
	inForce := c
	switch {
	case c.size > MaxDataSize:
		inForce = nil
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonAllowlistTooLarge
		cond.Message = fmt.Sprintf("the allowlist of %d keys needs %d bytes, more than a ConfigMap holds (%d); the last allowlist that fitted stays in force", c.keys, c.size, MaxDataSize)
		r.event(&srv, corev1.EventTypeWarning, v1alpha1.ReasonAllowlistTooLarge, cond.Message)
	default:
		written, conflict, err := r.applyConfigMap(ctx, &srv, cmName, c)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			// Written by someone else since the cache saw it: start again
			// from a fresh read.
			log.FromContext(ctx).V(1).Info("retrying after a concurrent change", "reason", err.Error())
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		switch {
		case conflict:
			inForce = nil
			cond.Status, cond.Reason = metav1.ConditionFalse, ReasonConfigMapConflict
			cond.Message = fmt.Sprintf("ConfigMap %s exists and is not this CurveServer's allowlist; zmqauth leaves it alone: delete or rename it", cmName)
		case len(pol.Problems)+len(g.problems) > 0:
			cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector
			cond.Message = truncate(fmt.Sprintf("allowlist holds %d keys for %d identities, but these parts of the spec admit nothing: %v", c.keys, c.identities, append(pol.Problems, g.problems...)))
		default:
			cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
			cond.Message = fmt.Sprintf("allowlist holds %d keys for %d identities", c.keys, c.identities)
		}
		if written {
			if iv := r.minWriteInterval(); iv > 0 {
				r.writes.wrote(req.NamespacedName, writeInterval(iv, c.size))
			}
			log.FromContext(ctx).V(1).Info("allowlist written", "keys", c.keys, "identities", c.identities, "bytes", c.size)
			// One constant note, so the event recorder folds repeated
			// updates into a series; the counts are in the status.
			r.event(&srv, corev1.EventTypeNormal, "AllowlistUpdated", fmt.Sprintf("allowlist ConfigMap %s updated", cmName))
		}
	}

	identities := int64(srv.Status.AuthorizedClients)
	if inForce != nil {
		identities = int64(inForce.identities)
		r.Metrics.AllowlistSize.WithLabelValues(srv.Namespace, srv.Name).Set(float64(inForce.keys))
	}
	if err := r.applyStatus(ctx, &srv, cmName, identities, cond); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// applyConfigMap writes the allowlist ConfigMap when its content differs
// from c. It reports whether it wrote, and conflict when a ConfigMap of that
// name belongs to someone else.
//
// The write replaces the whole ConfigMap data (an update on the version read,
// or a create), so a file someone else added is removed: the allowlist holds
// exactly what c holds. It is not a server-side apply, which would keep the
// fields of other managers and cost the API server about three times the CPU
// per write of a 1,000-key allowlist (measured: 121 ms against 37 ms).
func (r *ServerReconciler) applyConfigMap(ctx context.Context, srv *v1alpha1.CurveServer, name string, c *content) (written, conflict bool, err error) {
	key := types.NamespacedName{Namespace: srv.Namespace, Name: name}
	var cur corev1.ConfigMap
	err = r.Client.Get(ctx, key, &cur, client.UnsafeDisableDeepCopy)
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		// Not in the cache, which holds only zmqauth-labelled ConfigMaps:
		// absent, someone else's, or ours with the label removed.
		err = r.APIReader.Get(ctx, key, &cur)
		if apierrors.IsNotFound(err) {
			return r.createConfigMap(ctx, srv, name, c)
		}
		if err != nil {
			return false, false, fmt.Errorf("get ConfigMap %s: %w", key, err)
		}
	default:
		return false, false, fmt.Errorf("get ConfigMap %s: %w", key, err)
	}
	if !metav1.IsControlledBy(&cur, srv) {
		return false, true, nil
	}
	if configMapUpToDate(&cur, srv, c) {
		return false, false, nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: *cur.ObjectMeta.DeepCopy(), Data: c.data}
	cm.ManagedFields = nil // the API server keeps and updates its own
	cm.Labels = maps.Clone(cm.Labels)
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	maps.Copy(cm.Labels, allowlistLabels(srv))
	// resourceVersion makes it an update of the version read: if the cache
	// was behind, the API server refuses with a Conflict and the reconcile
	// starts again from a fresh read.
	if err := r.Client.Update(ctx, cm, client.FieldOwner(FieldOwner)); err != nil {
		return false, false, fmt.Errorf("update ConfigMap %s: %w", key, err)
	}
	return true, false, nil
}

// createConfigMap creates the allowlist ConfigMap of srv holding c.
func (r *ServerReconciler) createConfigMap(ctx context.Context, srv *v1alpha1.CurveServer, name string, c *content) (written, conflict bool, err error) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: srv.Namespace, Labels: allowlistLabels(srv),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(srv, v1alpha1.GroupVersion.WithKind("CurveServer"))},
		},
		Data: c.data,
	}
	if err := r.Client.Create(ctx, cm, client.FieldOwner(FieldOwner)); err != nil {
		// AlreadyExists: created meanwhile; the retry reads it.
		return false, false, fmt.Errorf("create ConfigMap %s/%s: %w", srv.Namespace, name, err)
	}
	return true, false, nil
}

// allowlistLabels are the labels of srv's allowlist ConfigMap.
func allowlistLabels(srv *v1alpha1.CurveServer) map[string]string {
	return map[string]string{
		secretlayout.LabelManagedBy: secretlayout.ManagedBy,
		secretlayout.LabelAllowlist: srv.Name,
	}
}

// configMapUpToDate reports whether cur already holds c, with its labels.
func configMapUpToDate(cur *corev1.ConfigMap, srv *v1alpha1.CurveServer, c *content) bool {
	if cur.Labels[secretlayout.LabelManagedBy] != secretlayout.ManagedBy || cur.Labels[secretlayout.LabelAllowlist] != srv.Name {
		return false
	}
	if len(cur.Data) != len(c.data) || len(cur.BinaryData) != 0 {
		return false
	}
	for k, v := range c.data {
		if got, ok := cur.Data[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// applyStatus writes the allowlist controller's CurveServer status fields
// when they differ.
func (r *ServerReconciler) applyStatus(ctx context.Context, srv *v1alpha1.CurveServer, cmName string, identities int64, cond metav1.Condition) error {
	st := srv.Status
	if int64(st.AuthorizedClients) == identities && st.AllowlistConfigMap == cmName && statusapply.ConditionUpToDate(st.Conditions, cond) {
		return nil
	}
	cond = statusapply.Condition(st.Conditions, cond, r.now())
	return statusapply.Apply(ctx, r.Client, "CurveServer", srv, FieldOwner, map[string]any{
		"authorizedClients":  identities,
		"allowlistConfigMap": cmName,
		"conditions":         statusapply.Conditions(cond),
	})
}

// forget drops what is kept for a server that is gone.
func (r *ServerReconciler) forget(server types.NamespacedName) {
	r.render.forget(server)
	r.writes.forget(server)
	r.Metrics.AllowlistSize.DeleteLabelValues(server.Namespace, server.Name)
}

// event records an event on srv when a recorder is set. Messages hold
// public keys at most, never secrets.
func (r *ServerReconciler) event(srv *v1alpha1.CurveServer, kind, reason, msg string) {
	if r.Recorder != nil {
		// Regarding the server without its resourceVersion, so repeated
		// events fold into one series instead of one Event each.
		ref := &v1alpha1.CurveServer{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: srv.Name, UID: srv.UID}}
		r.Recorder.Eventf(ref, nil, kind, reason, "UpdateAllowlist", "%s", msg)
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

// serverMode is the mode srv's allowlist carries: spec.mode, enforce by
// default.
func serverMode(srv *v1alpha1.CurveServer) v1alpha1.ServerMode {
	if srv.Spec.Mode == "" {
		return v1alpha1.ModeEnforce
	}
	return srv.Spec.Mode
}
