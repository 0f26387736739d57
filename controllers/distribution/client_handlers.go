package distribution

import (
	"context"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

// queue is the work queue handlers add requests to.
type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// clientMapper maps events on servers, allowlists and grants to the
// CurveClients they concern, through the field index on spec.servers.
type clientMapper struct {
	r       client.Reader
	indexes *allowlist.IndexCache
}

// enqueueReferrers adds every CurveClient that names the server
// namespace/name.
func (m clientMapper) enqueueReferrers(ctx context.Context, q queue, namespace, name string) {
	var list v1alpha1.CurveClientList
	if err := m.r.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{ServerRefIndex: allowlist.RefKey(namespace, name)}); err != nil {
		return
	}
	for i := range list.Items {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}})
	}
}

// serverHandler maps a CurveServer's creation, deletion, new public key,
// spec or label change to the clients that name it.
func (m clientMapper) serverHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) {
			m.enqueueReferrers(ctx, q, ev.Object.GetNamespace(), ev.Object.GetName())
		},
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			old, ok1 := ev.ObjectOld.(*v1alpha1.CurveServer)
			cur, ok2 := ev.ObjectNew.(*v1alpha1.CurveServer)
			if !ok1 || !ok2 {
				return
			}
			if old.Status.PublicKey != cur.Status.PublicKey || old.Generation != cur.Generation ||
				!maps.Equal(old.Labels, cur.Labels) || (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) {
				m.enqueueReferrers(ctx, q, cur.Namespace, cur.Name)
			}
		},
		DeleteFunc: func(ctx context.Context, ev event.DeleteEvent, q queue) {
			m.enqueueReferrers(ctx, q, ev.Object.GetNamespace(), ev.Object.GetName())
		},
	}
}

// allowlistServer returns the server an allowlist ConfigMap belongs to.
func allowlistServer(o client.Object) (string, bool) {
	name, ok := o.GetLabels()[secretlayout.LabelAllowlist]
	return name, ok && name != ""
}

// allowlistHandler maps an allowlist ConfigMap change to the CurveClients
// whose entries changed (a diff of the old and new index), and its creation
// or deletion to every client naming its server.
func (m clientMapper) allowlistHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) {
			if srv, ok := allowlistServer(ev.Object); ok {
				m.enqueueReferrers(ctx, q, ev.Object.GetNamespace(), srv)
			}
		},
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			old, ok1 := ev.ObjectOld.(*corev1.ConfigMap)
			cur, ok2 := ev.ObjectNew.(*corev1.ConfigMap)
			srv, ok := allowlistServer(cur)
			if !ok1 || !ok2 || !ok {
				return
			}
			oldIx, err1 := m.indexes.Get(old)
			curIx, err2 := m.indexes.Get(cur)
			if err1 != nil || err2 != nil {
				m.enqueueReferrers(ctx, q, cur.Namespace, srv)
				return
			}
			for _, id := range changedIdentities(oldIx, curIx) {
				if ns, name, ok := strings.Cut(id, "/"); ok {
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
				}
			}
		},
		DeleteFunc: func(ctx context.Context, ev event.DeleteEvent, q queue) {
			if srv, ok := allowlistServer(ev.Object); ok {
				m.indexes.Forget(ev.Object.GetNamespace(), ev.Object.GetName())
				m.enqueueReferrers(ctx, q, ev.Object.GetNamespace(), srv)
			}
		},
	}
}

// changedIdentities returns the identities whose set of (key, grant)
// entries differs between two indexes.
func changedIdentities(old, cur *allowlist.Index) []string {
	type kg struct{ key, grant string }
	collect := func(ix *allowlist.Index) map[string]map[kg]bool {
		out := map[string]map[kg]bool{}
		if ix == nil {
			return out
		}
		for _, e := range ix.Entries {
			if out[e.Identity] == nil {
				out[e.Identity] = map[kg]bool{}
			}
			out[e.Identity][kg{e.Key, e.Grant}] = true
		}
		return out
	}
	a, b := collect(old), collect(cur)
	var ids []string
	for id, s := range a {
		if !maps.Equal(s, b[id]) {
			ids = append(ids, id)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// grantHandler maps a ClusterCurveGrant change to the clients naming the
// servers it matches (before or after), whose NotSelected or
// AllowlistPending reason may change.
func (m clientMapper) grantHandler() handler.EventHandler {
	mapGrants := func(ctx context.Context, q queue, objs ...client.Object) {
		var servers v1alpha1.CurveServerList
		if err := m.r.List(ctx, &servers, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		nsl := allowlist.NewNamespaceLabels(m.r)
		for i := range servers.Items {
			srv := &servers.Items[i]
			l, err := nsl.Get(ctx, srv.Namespace)
			if err != nil {
				continue
			}
			for _, o := range objs {
				if g, ok := o.(*v1alpha1.ClusterCurveGrant); ok && allowlist.CompileGrant(g).MatchesServer(srv, l) {
					m.enqueueReferrers(ctx, q, srv.Namespace, srv.Name)
					break
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) { mapGrants(ctx, q, ev.Object) },
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			if ev.ObjectOld.GetGeneration() != ev.ObjectNew.GetGeneration() {
				mapGrants(ctx, q, ev.ObjectOld, ev.ObjectNew)
			}
		},
		DeleteFunc: func(ctx context.Context, ev event.DeleteEvent, q queue) { mapGrants(ctx, q, ev.Object) },
	}
}
