package allowlist

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func testClient(ns, name string, lbl map[string]string, servers ...v1alpha1.ServerReference) *v1alpha1.CurveClient {
	return &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       v1alpha1.CurveClientSpec{Servers: servers},
	}
}

// policyFor compiles a policy without an API server: the server's own
// rules and the given grants (already known to match it).
func policyFor(t *testing.T, srv *v1alpha1.CurveServer, grants ...*v1alpha1.ClusterCurveGrant) *Policy {
	t.Helper()
	own, err := serverSelection(srv)
	p := &Policy{server: types.NamespacedName{Namespace: srv.Namespace, Name: srv.Name}, own: own}
	if err != nil {
		p.Problems = append(p.Problems, err.Error())
	}
	for _, g := range grants {
		p.grants = append(p.grants, CompileGrant(g))
	}
	return p
}

func TestPolicyAdmit(t *testing.T) {
	srv := func(clients *v1alpha1.ServerClients) *v1alpha1.CurveServer {
		return &v1alpha1.CurveServer{ObjectMeta: metav1.ObjectMeta{Namespace: "srv", Name: "bus"}, Spec: v1alpha1.CurveServerSpec{Clients: clients}}
	}
	grant := func(name string, c v1alpha1.GrantClients) *v1alpha1.ClusterCurveGrant {
		return &v1alpha1.ClusterCurveGrant{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ClusterCurveGrantSpec{Clients: c, Servers: v1alpha1.GrantServers{Selector: &metav1.LabelSelector{}}}}
	}
	ref := v1alpha1.ServerReference{Name: "bus"}
	xref := v1alpha1.ServerReference{Namespace: "srv", Name: "bus"}
	team := labels.Set{"team": "a"}
	tests := []struct {
		name      string
		srv       *v1alpha1.CurveServer
		grants    []*v1alpha1.ClusterCurveGrant
		cc        *v1alpha1.CurveClient
		nsLabels  labels.Set
		wantGrant string
	}{
		{"same namespace ref", srv(nil), nil, testClient("srv", "c", nil, ref), nil, GrantClientRef},
		{"same namespace, explicit namespace", srv(nil), nil, testClient("srv", "c", nil, xref), nil, GrantClientRef},
		{"other namespace ref alone", srv(nil), nil, testClient("other", "c", nil, xref), nil, ""},
		{"ref to another server", srv(nil), nil, testClient("srv", "c", nil, v1alpha1.ServerReference{Name: "db"}), nil, ""},
		{"selector, same namespace", srv(&v1alpha1.ServerClients{Selector: sel("role", "w")}), nil,
			testClient("srv", "c", map[string]string{"role": "w"}), nil, GrantServerSelector},
		{"selector alone stays in the namespace", srv(&v1alpha1.ServerClients{Selector: sel("role", "w")}), nil,
			testClient("other", "c", map[string]string{"role": "w"}, xref), nil, ""},
		{"namespace selector alone", srv(&v1alpha1.ServerClients{NamespaceSelector: sel("team", "a")}), nil,
			testClient("other", "c", nil, xref), team, GrantServerSelector},
		{"both selectors, label mismatch", srv(&v1alpha1.ServerClients{NamespaceSelector: sel("team", "a"), Selector: sel("role", "w")}), nil,
			testClient("other", "c", nil, xref), team, ""},
		{"both selectors match", srv(&v1alpha1.ServerClients{NamespaceSelector: sel("team", "a"), Selector: sel("role", "w")}), nil,
			testClient("other", "c", map[string]string{"role": "w"}), team, GrantServerSelector},
		{"ref wins over selector", srv(&v1alpha1.ServerClients{Selector: sel("role", "w")}), nil,
			testClient("srv", "c", map[string]string{"role": "w"}, ref), nil, GrantClientRef},
		{"grant by namespace", srv(nil), []*v1alpha1.ClusterCurveGrant{grant("g", v1alpha1.GrantClients{NamespaceSelector: sel("team", "a")})},
			testClient("other", "c", nil, xref), team, ClusterGrant("g")},
		{"grant namespace mismatch", srv(nil), []*v1alpha1.ClusterCurveGrant{grant("g", v1alpha1.GrantClients{NamespaceSelector: sel("team", "b")})},
			testClient("other", "c", nil, xref), team, ""},
		{"first grant by name", srv(nil), []*v1alpha1.ClusterCurveGrant{
			grant("a", v1alpha1.GrantClients{Selector: &metav1.LabelSelector{}}),
			grant("b", v1alpha1.GrantClients{Selector: &metav1.LabelSelector{}})},
			testClient("other", "c", nil), nil, ClusterGrant("a")},
		{"raw-keys-only grant selects no CurveClient", srv(nil), []*v1alpha1.ClusterCurveGrant{
			grant("k", v1alpha1.GrantClients{PublicKeys: []v1alpha1.NamedPublicKey{{Name: "x", Key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}}})},
			testClient("other", "c", nil, xref), nil, ""},
		{"invalid grant selector admits nothing", srv(nil), []*v1alpha1.ClusterCurveGrant{grant("bad", v1alpha1.GrantClients{
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpIn}}}})},
			testClient("other", "c", nil, xref), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policyFor(t, tt.srv, tt.grants...)
			got, ok := p.Admit(tt.cc, tt.nsLabels)
			if got != tt.wantGrant || ok != (tt.wantGrant != "") {
				t.Errorf("Admit = %q, %v; want %q", got, ok, tt.wantGrant)
			}
			if !ok && tt.cc.Namespace != "srv" {
				if msg := p.Explain(tt.cc); !strings.Contains(msg, "another namespace") || !strings.Contains(msg, "ClusterCurveGrant") {
					t.Errorf("Explain = %q", msg)
				}
			}
		})
	}
}

func TestCompileGrantErrors(t *testing.T) {
	tests := []struct {
		name    string
		spec    v1alpha1.ClusterCurveGrantSpec
		wantErr string
	}{
		{"valid", v1alpha1.ClusterCurveGrantSpec{Clients: v1alpha1.GrantClients{Selector: sel("a", "b")}, Servers: v1alpha1.GrantServers{Selector: sel()}}, ""},
		{"no server selector", v1alpha1.ClusterCurveGrantSpec{Clients: v1alpha1.GrantClients{Selector: sel("a", "b")}}, "spec.servers"},
		{"bad client namespace selector", v1alpha1.ClusterCurveGrantSpec{
			Clients: v1alpha1.GrantClients{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}},
			Servers: v1alpha1.GrantServers{Selector: sel()}}, "spec.clients.namespaceSelector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := CompileGrant(&v1alpha1.ClusterCurveGrant{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Spec: tt.spec})
			switch {
			case tt.wantErr == "" && g.Err != nil:
				t.Errorf("unexpected error %v", g.Err)
			case tt.wantErr != "" && (g.Err == nil || !strings.Contains(g.Err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one mentioning %s", g.Err, tt.wantErr)
			}
			srv := &v1alpha1.CurveServer{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "s"}}
			if tt.wantErr != "" && g.MatchesServer(srv, nil) {
				t.Errorf("an invalid grant matches a server")
			}
		})
	}
}

func TestServerRefs(t *testing.T) {
	cc := testClient("app", "c", nil,
		v1alpha1.ServerReference{Name: "bus", LocalPort: 1},
		v1alpha1.ServerReference{Name: "bus", LocalPort: 2},
		v1alpha1.ServerReference{Namespace: "mon", Name: "bus"},
		v1alpha1.ServerReference{Namespace: "app", Name: "bus"})
	got := ServerRefs(cc)
	if strings.Join(got, ",") != "app/bus,mon/bus" {
		t.Errorf("ServerRefs = %v", got)
	}
	if !NamesServer(cc, "mon", "bus") || NamesServer(cc, "mon", "db") {
		t.Errorf("NamesServer wrong")
	}
}
