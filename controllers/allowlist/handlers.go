package allowlist

import (
	"context"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// queue is the work queue handlers add CurveServer requests to.
type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// mapper maps events on other kinds to the CurveServers whose allowlists
// they can change, reading servers and grants (few) from the cache and
// never listing CurveClients (many).
type mapper struct {
	r client.Reader
}

// serverSet collects CurveServer requests.
type serverSet map[types.NamespacedName]struct{}

func (s serverSet) add(namespace, name string) {
	s[types.NamespacedName{Namespace: namespace, Name: name}] = struct{}{}
}

func (s serverSet) enqueue(q queue) {
	for k := range s {
		q.Add(reconcile.Request{NamespacedName: k})
	}
}

// env is what one mapping reads once: servers, compiled grants and
// namespace labels.
type env struct {
	servers []v1alpha1.CurveServer
	grants  []*GrantRule
	nsl     *NamespaceLabels
}

func (m mapper) env(ctx context.Context) (*env, bool) {
	var servers v1alpha1.CurveServerList
	if err := m.r.List(ctx, &servers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, false
	}
	var grants v1alpha1.ClusterCurveGrantList
	if err := m.r.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return nil, false
	}
	e := &env{servers: servers.Items, nsl: NewNamespaceLabels(m.r)}
	for i := range grants.Items {
		e.grants = append(e.grants, CompileGrant(&grants.Items[i]))
	}
	return e, true
}

// serversOfGrant adds the servers a compiled grant matches.
func (e *env) serversOfGrant(ctx context.Context, g *GrantRule, out serverSet) {
	for i := range e.servers {
		srv := &e.servers[i]
		if l, err := e.nsl.Get(ctx, srv.Namespace); err == nil && g.MatchesServer(srv, l) {
			out.add(srv.Namespace, srv.Name)
		}
	}
}

// serversForClient adds the servers whose allowlist could hold cc: those it
// names, those whose own selectors select it, and those of the grants that
// select it.
func (e *env) serversForClient(ctx context.Context, cc *v1alpha1.CurveClient, out serverSet) {
	for _, ref := range ServerRefs(cc) {
		ns, name, _ := strings.Cut(ref, "/")
		out.add(ns, name)
	}
	nsLabels, err := e.nsl.Get(ctx, cc.Namespace)
	if err != nil {
		return
	}
	for i := range e.servers {
		srv := &e.servers[i]
		if sel, err := serverSelection(srv); err == nil && sel.selects(cc, nsLabels) {
			out.add(srv.Namespace, srv.Name)
		}
	}
	for _, g := range e.grants {
		if g.SelectsClient(cc, nsLabels) {
			e.serversOfGrant(ctx, g, out)
		}
	}
}

// clientRelevantChange reports whether an update of a CurveClient can
// change an allowlist: its labels, the servers it names, its current,
// previous or next public key, its rotation time or its deletion.
func clientRelevantChange(old, cur *v1alpha1.CurveClient) bool {
	return !maps.Equal(old.Labels, cur.Labels) ||
		!slices.Equal(ServerRefs(old), ServerRefs(cur)) ||
		old.Status.PublicKey != cur.Status.PublicKey ||
		old.Status.PreviousPublicKey != cur.Status.PreviousPublicKey ||
		old.Status.NextPublicKey != cur.Status.NextPublicKey ||
		!old.Status.LastRotationTime.Equal(cur.Status.LastRotationTime) ||
		old.Spec.SecretName != cur.Spec.SecretName ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil)
}

func (m mapper) clientHandler() handler.EventHandler {
	mapClients := func(ctx context.Context, q queue, ccs ...client.Object) {
		e, ok := m.env(ctx)
		if !ok {
			return
		}
		out := serverSet{}
		for _, o := range ccs {
			if cc, ok := o.(*v1alpha1.CurveClient); ok {
				e.serversForClient(ctx, cc, out)
			}
		}
		out.enqueue(q)
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
		DeleteFunc: func(ctx context.Context, ev event.DeleteEvent, q queue) {
			mapClients(ctx, q, ev.Object)
		},
	}
}

func (m mapper) grantHandler() handler.EventHandler {
	mapGrants := func(ctx context.Context, q queue, gs ...client.Object) {
		e, ok := m.env(ctx)
		if !ok {
			return
		}
		out := serverSet{}
		for _, o := range gs {
			if g, ok := o.(*v1alpha1.ClusterCurveGrant); ok {
				e.serversOfGrant(ctx, CompileGrant(g), out)
			}
		}
		out.enqueue(q)
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

// serversForNamespace adds the servers a change of a namespace's labels
// (from each of labelSets) can affect: the servers in it (grants select
// servers by namespace), the servers whose namespace selector matches, and
// the servers of the grants whose client namespace selector matches.
func (e *env) serversForNamespace(ctx context.Context, name string, out serverSet, labelSets ...labels.Set) {
	for i := range e.servers {
		srv := &e.servers[i]
		if srv.Namespace == name {
			out.add(srv.Namespace, srv.Name)
			continue
		}
		sel, err := serverSelection(srv)
		if err != nil || sel.namespaces == nil {
			continue
		}
		for _, l := range labelSets {
			if sel.couldSelectNamespace(name, l) {
				out.add(srv.Namespace, srv.Name)
				break
			}
		}
	}
	for _, g := range e.grants {
		if g.Err != nil || g.clients.namespaces == nil {
			continue
		}
		for _, l := range labelSets {
			if g.clients.couldSelectNamespace(name, l) {
				e.serversOfGrant(ctx, g, out)
				break
			}
		}
	}
}

func (m mapper) namespaceHandler() handler.EventHandler {
	mapNS := func(ctx context.Context, q queue, name string, sets ...labels.Set) {
		e, ok := m.env(ctx)
		if !ok {
			return
		}
		out := serverSet{}
		e.serversForNamespace(ctx, name, out, sets...)
		out.enqueue(q)
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, ev event.CreateEvent, q queue) {
			mapNS(ctx, q, ev.Object.GetName(), ev.Object.GetLabels())
		},
		UpdateFunc: func(ctx context.Context, ev event.UpdateEvent, q queue) {
			if !maps.Equal(ev.ObjectOld.GetLabels(), ev.ObjectNew.GetLabels()) {
				mapNS(ctx, q, ev.ObjectNew.GetName(), ev.ObjectOld.GetLabels(), ev.ObjectNew.GetLabels())
			}
		},
	}
}
