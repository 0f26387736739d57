package allowlist

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// Grants: what admitted a key, as recorded in allowlist files and index.json.
const (
	// GrantClientRef: a CurveClient in the server's namespace names the
	// server in spec.servers.
	GrantClientRef = "client-ref"
	// GrantServerSelector: the server's spec.clients selectors select the
	// CurveClient.
	GrantServerSelector = "server-selector"
	// GrantServerPublicKeys: the key is in the server's
	// spec.clients.publicKeys.
	GrantServerPublicKeys = "server-publickeys"
	// GrantClusterPrefix starts the grant of a ClusterCurveGrant:
	// "clustercurvegrant/<name>".
	GrantClusterPrefix = "clustercurvegrant/"
)

// ClusterGrant returns the grant recorded for the ClusterCurveGrant name.
func ClusterGrant(name string) string { return GrantClusterPrefix + name }

// selection selects CurveClients by namespace and labels.
type selection struct {
	// active is false for a selection that selects no CurveClient.
	active bool
	// onlyNamespace, when set, restricts the selection to one namespace.
	onlyNamespace string
	// namespaces selects namespaces by labels; nil selects every namespace.
	namespaces labels.Selector
	// clients selects CurveClients by labels; nil selects every one.
	clients labels.Selector
}

// selects reports whether the selection holds cc, whose namespace has the
// labels nsLabels.
func (s selection) selects(cc *v1alpha1.CurveClient, nsLabels labels.Set) bool {
	if !s.active {
		return false
	}
	if s.onlyNamespace != "" && cc.Namespace != s.onlyNamespace {
		return false
	}
	if s.namespaces != nil && !s.namespaces.Matches(nsLabels) {
		return false
	}
	return s.clients == nil || s.clients.Matches(labels.Set(cc.Labels))
}

// couldSelectNamespace reports whether the selection's namespace part
// matches a namespace with the given name and labels.
func (s selection) couldSelectNamespace(name string, nsLabels labels.Set) bool {
	if !s.active || (s.onlyNamespace != "" && s.onlyNamespace != name) {
		return false
	}
	return s.namespaces == nil || s.namespaces.Matches(nsLabels)
}

// parseSelector parses an optional label selector: nil stays nil (the
// caller decides what omitted means).
func parseSelector(field string, sel *metav1.LabelSelector) (labels.Selector, error) {
	if sel == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return s, nil
}

// serverSelection compiles a CurveServer's spec.clients selectors, which
// combine as in a NetworkPolicy peer.
func serverSelection(srv *v1alpha1.CurveServer) (selection, error) {
	c := srv.Spec.Clients
	if c == nil || (c.Selector == nil && c.NamespaceSelector == nil) {
		return selection{}, nil
	}
	sel, err := parseSelector("spec.clients.selector", c.Selector)
	if err != nil {
		return selection{}, err
	}
	nsSel, err := parseSelector("spec.clients.namespaceSelector", c.NamespaceSelector)
	if err != nil {
		return selection{}, err
	}
	s := selection{active: true, namespaces: nsSel, clients: sel}
	if nsSel == nil {
		s.onlyNamespace = srv.Namespace
	}
	return s, nil
}

// GrantRule is a compiled ClusterCurveGrant.
type GrantRule struct {
	// Name is the grant's name.
	Name string
	// Keys are the grant's raw public keys.
	Keys []v1alpha1.NamedPublicKey
	// Err is the first invalid selector; a grant with one matches nothing.
	Err error

	serverNamespaces labels.Selector // nil: every namespace
	servers          labels.Selector // nil: every server
	clients          selection
}

// CompileGrant compiles a ClusterCurveGrant's selectors. A grant with an
// invalid selector, or with no server selector at all, matches no server
// (fail closed); Err says why.
func CompileGrant(g *v1alpha1.ClusterCurveGrant) *GrantRule {
	r := &GrantRule{Name: g.Name, Keys: g.Spec.Clients.PublicKeys}
	var errs []error
	var err error
	if r.serverNamespaces, err = parseSelector("spec.servers.namespaceSelector", g.Spec.Servers.NamespaceSelector); err != nil {
		errs = append(errs, err)
	}
	if r.servers, err = parseSelector("spec.servers.selector", g.Spec.Servers.Selector); err != nil {
		errs = append(errs, err)
	}
	if g.Spec.Servers.NamespaceSelector == nil && g.Spec.Servers.Selector == nil {
		errs = append(errs, fmt.Errorf("spec.servers: neither namespaceSelector nor selector is set"))
	}
	c := g.Spec.Clients
	if c.NamespaceSelector != nil || c.Selector != nil {
		r.clients.active = true
		if r.clients.namespaces, err = parseSelector("spec.clients.namespaceSelector", c.NamespaceSelector); err != nil {
			errs = append(errs, err)
		}
		if r.clients.clients, err = parseSelector("spec.clients.selector", c.Selector); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		r.Err = joinErrors(errs)
	}
	return r
}

// joinErrors joins errors into one message.
func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// MatchesServer reports whether the grant applies to srv, whose namespace
// has the labels nsLabels.
func (g *GrantRule) MatchesServer(srv *v1alpha1.CurveServer, nsLabels labels.Set) bool {
	if g.Err != nil {
		return false
	}
	if g.serverNamespaces != nil && !g.serverNamespaces.Matches(nsLabels) {
		return false
	}
	return g.servers == nil || g.servers.Matches(labels.Set(srv.Labels))
}

// SelectsClient reports whether the grant selects cc, whose namespace has
// the labels nsLabels.
func (g *GrantRule) SelectsClient(cc *v1alpha1.CurveClient, nsLabels labels.Set) bool {
	return g.Err == nil && g.clients.selects(cc, nsLabels)
}

// Policy is a CurveServer's admission rules, compiled: its own selectors and
// raw keys, and the ClusterCurveGrants that match it.
type Policy struct {
	server  types.NamespacedName
	own     selection
	ownKeys []v1alpha1.NamedPublicKey
	grants  []*GrantRule
	// Problems lists the invalid selectors of the server; each selects
	// nothing.
	Problems []string
}

// NamespaceLabels returns the labels of namespaces through a reader,
// memoized for the life of the value (one reconcile). A namespace that does
// not exist has no labels.
type NamespaceLabels struct {
	r    client.Reader
	memo map[string]labels.Set
}

// NewNamespaceLabels returns a NamespaceLabels reading through r.
func NewNamespaceLabels(r client.Reader) *NamespaceLabels {
	return &NamespaceLabels{r: r, memo: map[string]labels.Set{}}
}

// Get returns the labels of the namespace name.
func (n *NamespaceLabels) Get(ctx context.Context, name string) (labels.Set, error) {
	if l, ok := n.memo[name]; ok {
		return l, nil
	}
	var ns corev1.Namespace
	if err := n.r.Get(ctx, types.NamespacedName{Name: name}, &ns); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get namespace %s: %w", name, err)
		}
	}
	l := labels.Set(ns.Labels)
	n.memo[name] = l
	return l, nil
}

// CompilePolicy compiles the admission rules of srv, listing the
// ClusterCurveGrants through r. Invalid selectors do not fail it: they
// select nothing and are listed in Problems (the server's) or in the grant's
// own status.
func CompilePolicy(ctx context.Context, r client.Reader, ns *NamespaceLabels, srv *v1alpha1.CurveServer) (*Policy, error) {
	p := &Policy{server: types.NamespacedName{Namespace: srv.Namespace, Name: srv.Name}}
	own, err := serverSelection(srv)
	if err != nil {
		p.Problems = append(p.Problems, err.Error())
	}
	p.own = own
	if srv.Spec.Clients != nil {
		p.ownKeys = srv.Spec.Clients.PublicKeys
	}
	srvNS, err := ns.Get(ctx, srv.Namespace)
	if err != nil {
		return nil, err
	}
	var grants v1alpha1.ClusterCurveGrantList
	if err := r.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ClusterCurveGrants: %w", err)
	}
	for i := range grants.Items {
		g := CompileGrant(&grants.Items[i])
		if g.MatchesServer(srv, srvNS) {
			p.grants = append(p.grants, g)
		}
	}
	slices.SortFunc(p.grants, func(a, b *GrantRule) int { return strings.Compare(a.Name, b.Name) })
	return p, nil
}

// Grants returns the names of the ClusterCurveGrants that match the server.
func (p *Policy) Grants() []string {
	out := make([]string, len(p.grants))
	for i, g := range p.grants {
		out[i] = g.Name
	}
	return out
}

// Admit says whether the server admits the CurveClient cc, whose namespace
// has the labels nsLabels, and by which grant (the first in the order
// client-ref, server-selector, ClusterCurveGrants by name).
func (p *Policy) Admit(cc *v1alpha1.CurveClient, nsLabels labels.Set) (grant string, ok bool) {
	if cc.Namespace == p.server.Namespace && NamesServer(cc, p.server.Namespace, p.server.Name) {
		return GrantClientRef, true
	}
	if p.own.selects(cc, nsLabels) {
		return GrantServerSelector, true
	}
	for _, g := range p.grants {
		if g.SelectsClient(cc, nsLabels) {
			return ClusterGrant(g.Name), true
		}
	}
	return "", false
}

// Explain says, for a human, why the server does not admit cc, and what to
// do about it.
func (p *Policy) Explain(cc *v1alpha1.CurveClient) string {
	srv := RefKey(p.server.Namespace, p.server.Name)
	if cc.Namespace == p.server.Namespace {
		return fmt.Sprintf("CurveServer %s does not admit this client although it is in the same namespace", srv)
	}
	what := "no ClusterCurveGrant matches the server"
	if n := len(p.grants); n > 0 {
		what = fmt.Sprintf("none of the %d ClusterCurveGrants that match the server (%s) selects it", n, strings.Join(p.Grants(), ", "))
	}
	return fmt.Sprintf("CurveServer %s is in another namespace (%s); a client in namespace %s that names it is admitted only when the server's spec.clients or a ClusterCurveGrant selects it: the server's spec.clients does not, and %s. Select this client in the server's spec.clients, or create a ClusterCurveGrant whose clients select it",
		srv, p.server.Namespace, cc.Namespace, what)
}
