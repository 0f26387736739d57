package distribution

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/allowlist/statusapply"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// FieldOwner is the server-side apply field manager of the distribution
// controllers: it owns the server.*.key entries of CurveClient Secrets,
// CurveClient status.servers, the Authorized condition (and Ready with it),
// the published ConfigMaps and the CurveServer Published condition.
const FieldOwner = "zmqauth-distribution"

// ServerRefIndex is the field index, on CurveClients, of the servers they
// name ("<namespace>/<name>"), registered by ClientReconciler.
const ServerRefIndex = "zmqauth.io/distribution.server-refs"

// clientControllerName names the client distribution controller.
const clientControllerName = "distribution"

// ClientReconciler writes each CurveClient's server keys into its Secret
// and its authorization status.
type ClientReconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// Indexes memoizes parsed allowlist indexes; created when nil.
	Indexes *allowlist.IndexCache
	// Metrics are the collectors; required.
	Metrics *Metrics
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=zmqauth.io,resources=curveclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveclients/status,verbs=get;patch
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers,verbs=get;list;watch
// +kubebuilder:rbac:groups=zmqauth.io,resources=clustercurvegrants,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the field index and the controller.
func (r *ClientReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Indexes == nil {
		r.Indexes = allowlist.NewIndexCache()
	}
	if r.Metrics == nil {
		return fmt.Errorf("distribution: ClientReconciler needs Metrics (NewMetrics)")
	}
	if err := allowlist.IndexServerRefs(context.Background(), mgr.GetFieldIndexer(), ServerRefIndex); err != nil {
		return fmt.Errorf("distribution: %w", err)
	}
	m := clientMapper{r: r.Client, indexes: r.Indexes}
	return ctrl.NewControllerManagedBy(mgr).
		Named(clientControllerName).
		For(&v1alpha1.CurveClient{}).
		Watches(&corev1.Secret{},
			handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &v1alpha1.CurveClient{}, handler.OnlyControllerOwner()),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return serverFilesChanged(e.ObjectOld, e.ObjectNew)
			}})).
		Watches(&v1alpha1.CurveServer{}, m.serverHandler()).
		Watches(&corev1.ConfigMap{}, m.allowlistHandler()).
		Watches(&v1alpha1.ClusterCurveGrant{}, m.grantHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

// maxConcurrentReconciles is how many CurveClients the distribution
// controller works on at once. A reconcile writes only its own client's
// Secret and status, and the work queue never hands one client to two
// workers; reconciles mostly wait for the API server, so thousands of new
// clients need more workers than CPUs.
const maxConcurrentReconciles = 16

func (r *ClientReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// serverView is what one reconcile learns about a server the client names.
type serverView struct {
	ns, name string
	srv      *v1alpha1.CurveServer // nil: not found
	key      *keygen.PublicKey     // nil: no key yet
	cert     []byte                // the key's public certificate
}

// Reconcile brings one CurveClient's server key files and authorization
// status up to date.
func (r *ClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	defer func() {
		if err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues(clientControllerName).Inc()
		}
	}()
	var cc v1alpha1.CurveClient
	if err := r.Client.Get(ctx, req.NamespacedName, &cc); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get CurveClient %s: %w", req.NamespacedName, err)
	}
	if cc.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}

	views, err := readServers(ctx, r.Client, &cc)
	if err != nil {
		return ctrl.Result{}, err
	}
	written, err := r.writeServerKeys(ctx, &cc, views)
	if err != nil {
		return ctrl.Result{}, err
	}
	entries, err := r.authorizations(ctx, &cc, views, written)
	if err != nil {
		return ctrl.Result{}, err
	}
	if d := r.pendingGrace(&cc, entries); d == noWrite {
		return ctrl.Result{}, nil
	} else if d > 0 {
		// Only waiting for the allowlist controller, which coalesces
		// writes for a moment: report the outcome rather than the wait.
		return ctrl.Result{RequeueAfter: d}, nil
	}
	return ctrl.Result{}, r.applyStatus(ctx, &cc, entries)
}

// PendingGrace is how long after a client's key was made
// (status.lastRotationTime) a status that only says AllowlistPending is not
// written: the allowlist normally catches up within it, and skipping the
// transient state saves one status write per new or rotated client. The
// allowlist controller holds back writes of a large allowlist for up to 5 s
// to coalesce changes, so the grace is twice that; at 5 s, half of 10,000
// new clients had their status written twice. A client without a key gets
// no status.servers at all until it has one.
const PendingGrace = 10 * time.Second

// noWrite is pendingGrace's answer when no status is to be written.
const noWrite = time.Duration(-1)

// pendingGrace returns how long to hold back a status whose only failing
// entries are AllowlistPending, 0 to write it now, or noWrite to write
// nothing (the client has no key yet).
func (r *ClientReconciler) pendingGrace(cc *v1alpha1.CurveClient, entries []v1alpha1.ServerAuthorization) time.Duration {
	pending := false
	for _, e := range entries {
		switch {
		case e.Authorized:
		case e.Reason == v1alpha1.ReasonAllowlistPending:
			pending = true
		default:
			return 0
		}
	}
	if !pending {
		return 0
	}
	if cc.Status.PublicKey == "" {
		// Without a key there is nothing to authorize yet; KeyReady,
		// written by the keys controller, says why. The key's arrival
		// wakes this reconciler.
		return noWrite
	}
	t := cc.Status.LastRotationTime
	if t == nil {
		return 0
	}
	age := r.now().Sub(t.Time)
	if age < 0 || age >= PendingGrace {
		return 0
	}
	return PendingGrace - age
}

// readServers reads every server cc names, once each, in spec order.
func readServers(ctx context.Context, c client.Reader, cc *v1alpha1.CurveClient) ([]serverView, error) {
	refs := allowlist.ServerRefs(cc)
	views := make([]serverView, 0, len(refs))
	for _, ref := range refs {
		ns, name, _ := strings.Cut(ref, "/")
		v := serverView{ns: ns, name: name}
		var srv v1alpha1.CurveServer
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &srv)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("get CurveServer %s: %w", ref, err)
		case srv.DeletionTimestamp != nil:
			// A server being deleted is as good as gone.
		default:
			v.srv = &srv
			if k, err := keygen.ParsePublicKey(srv.Status.PublicKey); err == nil {
				cert, err := secretlayout.PublicCertificate(k, map[string]string{
					filecontract.MetadataIdentity: filecontract.Identity(ns, name),
				})
				if err != nil {
					return nil, err
				}
				v.key, v.cert = &k, cert
			}
		}
		views = append(views, v)
	}
	return views, nil
}

// serverFiles returns the server key files a client Secret should hold:
// one per named server that has a key.
func serverFiles(views []serverView) map[string][]byte {
	want := map[string][]byte{}
	for _, v := range views {
		if v.key != nil {
			want[filecontract.ServerKeyFileName(v.ns, v.name)] = v.cert
		}
	}
	return want
}

// ServerKeyFiles returns the server key files the Secret of obj, a
// CurveClient, should hold now, read through c (nothing for any other
// kind). The keys controller writes them into a client's new Secret
// (keys.Reconciler.SecretExtras), so that its first version is complete: a
// pod that mounts it at once finds its server's key, and nothing has to be
// written again. This controller keeps them current afterwards.
func ServerKeyFiles(ctx context.Context, c client.Reader, obj client.Object) (map[string][]byte, error) {
	cc, ok := obj.(*v1alpha1.CurveClient)
	if !ok {
		return nil, nil
	}
	views, err := readServers(ctx, c, cc)
	if err != nil {
		return nil, err
	}
	return serverFiles(views), nil
}

// writeServerKeys applies the server key files to the client's Secret. It
// returns false, writing nothing, while the Secret does not exist or is not
// controlled by the client; the Secret's creation wakes the reconciler.
func (r *ClientReconciler) writeServerKeys(ctx context.Context, cc *v1alpha1.CurveClient, views []serverView) (bool, error) {
	var sec corev1.Secret
	key := types.NamespacedName{Namespace: cc.Namespace, Name: cc.Spec.SecretName}
	if err := r.Client.Get(ctx, key, &sec, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get Secret %s: %w", key, err)
	}
	if !metav1.IsControlledBy(&sec, cc) || sec.DeletionTimestamp != nil {
		return false, nil
	}
	want := serverFiles(views)
	if serverFilesEqual(sec.Data, want) {
		return true, nil
	}
	// The UID makes the apply a precondition on this very Secret: if it was
	// deleted meanwhile, the API server refuses rather than creating a
	// Secret that holds only server keys.
	ac := corev1ac.Secret(sec.Name, sec.Namespace).WithUID(sec.UID).WithData(want)
	if err := r.Client.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return false, nil // gone or replaced: its events bring us back
		}
		return false, fmt.Errorf("apply server keys to Secret %s: %w", key, err)
	}
	// The apply leaves files another field manager also owns: the keys
	// controller's, written when it created the Secret (ServerKeyFiles), or
	// someone's edit. Remove those explicitly.
	var stale []string
	for k := range ac.Data {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, filecontract.ServerKeyFilePrefix) {
			stale = append(stale, k)
		}
	}
	if err := keys.RemoveSecretEntries(ctx, r.Client, ac, stale, nil, FieldOwner); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// The current files are in; the newer version's event brings
			// the stale ones back to this reconciler.
			return true, nil
		}
		return false, fmt.Errorf("remove stale server keys: %w", err)
	}
	return true, nil
}

// serverFilesEqual reports whether data holds exactly the server key files
// in want.
func serverFilesEqual(data, want map[string][]byte) bool {
	n := 0
	for k, v := range data {
		if !strings.HasPrefix(k, filecontract.ServerKeyFilePrefix) {
			continue
		}
		n++
		if w, ok := want[k]; !ok || !bytes.Equal(w, v) {
			return false
		}
	}
	return n == len(want)
}

// serverFilesChanged reports whether an update changed a Secret's server
// key files (so someone else's change to them is undone).
func serverFilesChanged(old, cur client.Object) bool {
	o, ok1 := old.(*corev1.Secret)
	c, ok2 := cur.(*corev1.Secret)
	if !ok1 || !ok2 {
		return true
	}
	want := map[string][]byte{}
	for k, v := range o.Data {
		if strings.HasPrefix(k, filecontract.ServerKeyFilePrefix) {
			want[k] = v
		}
	}
	return !serverFilesEqual(c.Data, want)
}

// authorizations computes status.servers.
func (r *ClientReconciler) authorizations(ctx context.Context, cc *v1alpha1.CurveClient, views []serverView, keysWritten bool) ([]v1alpha1.ServerAuthorization, error) {
	identity := filecontract.Identity(cc.Namespace, cc.Name)
	nsl := allowlist.NewNamespaceLabels(r.Client)
	out := make([]v1alpha1.ServerAuthorization, 0, len(views))
	for _, v := range views {
		a := v1alpha1.ServerAuthorization{Name: v.name, Namespace: v.ns}
		ref := allowlist.RefKey(v.ns, v.name)
		switch {
		case v.srv == nil:
			a.Reason = v1alpha1.ReasonServerNotFound
			a.Message = fmt.Sprintf("CurveServer %s does not exist: create it, or correct spec.servers", ref)
		case v.key == nil:
			a.Reason = v1alpha1.ReasonServerKeyPending
			a.Message = fmt.Sprintf("CurveServer %s has no keypair yet", ref)
		default:
			if keysWritten {
				a.ServerPublicKey = v.key.String()
			}
			ok, reason, msg, err := r.authorized(ctx, cc, identity, v.srv, nsl)
			if err != nil {
				return nil, err
			}
			a.Authorized, a.Reason, a.Message = ok, reason, msg
		}
		out = append(out, a)
	}
	return out, nil
}

// authorized decides whether srv's allowlist holds cc's current key and,
// when not, why.
func (r *ClientReconciler) authorized(ctx context.Context, cc *v1alpha1.CurveClient, identity string, srv *v1alpha1.CurveServer, nsl *allowlist.NamespaceLabels) (bool, string, string, error) {
	ref := allowlist.RefKey(srv.Namespace, srv.Name)
	cmName := secretlayout.AllowlistConfigMapName(srv.Name)
	if cc.Status.PublicKey != "" {
		var cm corev1.ConfigMap
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: srv.Namespace, Name: cmName}, &cm, client.UnsafeDisableDeepCopy)
		switch {
		case err == nil:
			if ix, err := r.Indexes.Get(&cm); err == nil {
				if _, ok := ix.Lookup(identity, cc.Status.PublicKey); ok {
					return true, "", "", nil
				}
			}
		case !apierrors.IsNotFound(err):
			return false, "", "", fmt.Errorf("get ConfigMap %s/%s: %w", srv.Namespace, cmName, err)
		}
	}
	pol, err := allowlist.CompilePolicy(ctx, r.Client, nsl, srv)
	if err != nil {
		return false, "", "", err
	}
	nsLabels, err := nsl.Get(ctx, cc.Namespace)
	if err != nil {
		return false, "", "", err
	}
	grant, ok := pol.Admit(cc, nsLabels)
	switch {
	case !ok:
		return false, v1alpha1.ReasonNotSelected, pol.Explain(cc), nil
	case cc.Status.PublicKey == "":
		return false, v1alpha1.ReasonAllowlistPending, fmt.Sprintf("CurveServer %s admits this client (%s), which has no keypair yet", ref, grant), nil
	default:
		return false, v1alpha1.ReasonAllowlistPending, fmt.Sprintf("CurveServer %s admits this client (%s); its allowlist ConfigMap %s does not hold the client's current key yet", ref, grant, cmName), nil
	}
}

// authorizedCondition sums status.servers up.
func authorizedCondition(cc *v1alpha1.CurveClient, entries []v1alpha1.ServerAuthorization) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionAuthorized, ObservedGeneration: cc.Generation}
	var failing []string
	reason := ""
	for _, e := range entries {
		if !e.Authorized {
			if reason == "" {
				reason = e.Reason
			}
			failing = append(failing, fmt.Sprintf("%s/%s (%s)", e.Namespace, e.Name, e.Reason))
		}
	}
	switch {
	case len(entries) == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1alpha1.ReasonReconciled, "spec.servers names no server"
	case len(failing) == 0:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		c.Message = fmt.Sprintf("admitted by all %d servers", len(entries))
	default:
		c.Status, c.Reason = metav1.ConditionFalse, reason
		if len(failing) > 5 {
			failing = append(failing[:5], fmt.Sprintf("and %d more", len(failing)-5))
		}
		c.Message = fmt.Sprintf("not admitted by %d of %d servers: %s; status.servers says why", len(entries)-countAuthorized(entries), len(entries), strings.Join(failing, ", "))
	}
	return c
}

func countAuthorized(entries []v1alpha1.ServerAuthorization) int {
	n := 0
	for _, e := range entries {
		if e.Authorized {
			n++
		}
	}
	return n
}

// applyStatus writes status.servers and the Authorized condition when they
// differ, together with the Ready condition they imply.
//
// Ready belongs to the keys controller, which sums every detail condition
// up with keys.Ready. Writing it here too, computed by the same function
// from the same conditions, spares each new client the third status write
// (keys noticing that Authorized changed and rewriting Ready), the costliest
// request of the API server at scale. The keys controller still rewrites
// Ready whenever it disagrees with the conditions, so the two cannot drift.
func (r *ClientReconciler) applyStatus(ctx context.Context, cc *v1alpha1.CurveClient, entries []v1alpha1.ServerAuthorization) error {
	cond := authorizedCondition(cc, entries)
	if slices.Equal(cc.Status.Servers, entries) && statusapply.ConditionUpToDate(cc.Status.Conditions, cond) {
		return nil
	}
	now := r.now()
	conds := slices.Clone(cc.Status.Conditions)
	meta.SetStatusCondition(&conds, cond)
	ready := keys.Ready(conds, keys.ClientKind().Fields(cc).ReadyFrom, cc.Generation)
	ready = statusapply.Condition(cc.Status.Conditions, ready, now)
	servers := make([]any, len(entries))
	for i, e := range entries {
		m := map[string]any{"name": e.Name, "namespace": e.Namespace, "authorized": e.Authorized}
		if e.ServerPublicKey != "" {
			m["serverPublicKey"] = e.ServerPublicKey
		}
		if e.Reason != "" {
			m["reason"] = e.Reason
		}
		if e.Message != "" {
			m["message"] = e.Message
		}
		servers[i] = m
	}
	cond = statusapply.Condition(cc.Status.Conditions, cond, now)
	return statusapply.Apply(ctx, r.Client, "CurveClient", cc, FieldOwner, map[string]any{
		"servers":    servers,
		"conditions": statusapply.Conditions(cond, ready),
	})
}
