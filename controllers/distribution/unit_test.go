package distribution

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/filecontract"
)

func TestPublishedNames(t *testing.T) {
	long := strings.Repeat("n", 63)
	tests := []struct {
		ns, name, wantLabel string
	}{
		{"mon", "bus", "mon.bus"},
		{long, long, "sha256-"},
	}
	for _, tt := range tests {
		got := PublishedFromLabel(tt.ns, tt.name)
		if !strings.HasPrefix(got, tt.wantLabel) || len(got) > 63 || (tt.wantLabel == "sha256-" && len(got) != 47) {
			t.Errorf("PublishedFromLabel(%q, %q) = %q", tt.ns, tt.name, got)
		}
	}
	if PublishedFromLabel(long, long+"x") == PublishedFromLabel(long+"x", long) {
		t.Errorf("long labels collide")
	}
	if got := PublishedConfigMapName("mon", "bus"); got != "mon.bus.curve-public" {
		t.Errorf("PublishedConfigMapName = %q", got)
	}
	if src, ok := publishedFrom(map[string]string{AnnotationPublishedFrom: "mon/bus"}); !ok || src.Namespace != "mon" || src.Name != "bus" {
		t.Errorf("publishedFrom = %v %v", src, ok)
	}
}

func TestServerFilesEqual(t *testing.T) {
	f := filecontract.ServerKeyFileName
	tests := []struct {
		name string
		data map[string][]byte
		want map[string][]byte
		eq   bool
	}{
		{"both empty, key files ignored", map[string][]byte{"public.key": []byte("x")}, map[string][]byte{}, true},
		{"same", map[string][]byte{f("a", "b"): []byte("1"), "secret.key": []byte("s")}, map[string][]byte{f("a", "b"): []byte("1")}, true},
		{"changed", map[string][]byte{f("a", "b"): []byte("1")}, map[string][]byte{f("a", "b"): []byte("2")}, false},
		{"stale extra", map[string][]byte{f("a", "b"): []byte("1"), f("a", "c"): []byte("1")}, map[string][]byte{f("a", "b"): []byte("1")}, false},
		{"missing", map[string][]byte{}, map[string][]byte{f("a", "b"): []byte("1")}, false},
	}
	for _, tt := range tests {
		if got := serverFilesEqual(tt.data, tt.want); got != tt.eq {
			t.Errorf("%s: serverFilesEqual = %v", tt.name, got)
		}
	}
}

func TestChangedIdentities(t *testing.T) {
	mk := func(entries ...allowlist.IndexEntry) *allowlist.Index {
		b, _ := allowlist.MarshalIndex(entries)
		e, _ := allowlist.ParseIndex(b)
		return &allowlist.Index{Entries: e}
	}
	a1 := allowlist.IndexEntry{Key: "k1", Identity: "ns/a", Grant: "client-ref", File: "ns.a.key"}
	a2 := allowlist.IndexEntry{Key: "k2", Identity: "ns/a", Grant: "client-ref", File: "ns.a.key"}
	b1 := allowlist.IndexEntry{Key: "k3", Identity: "ns/b", Grant: "client-ref", File: "ns.b.key"}
	c1 := allowlist.IndexEntry{Key: "k4", Identity: "ns/c", Grant: "client-ref", File: "ns.c.key"}
	got := changedIdentities(mk(a1, b1), mk(a2, b1, c1))
	slices.Sort(got)
	if !slices.Equal(got, []string{"ns/a", "ns/c"}) {
		t.Errorf("changedIdentities = %v", got)
	}
	got = changedIdentities(mk(a1, b1), mk(a1))
	if !slices.Equal(got, []string{"ns/b"}) {
		t.Errorf("removal: changedIdentities = %v", got)
	}
}

func TestAuthorizedCondition(t *testing.T) {
	cc := &v1alpha1.CurveClient{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	ok := v1alpha1.ServerAuthorization{Namespace: "n", Name: "a", Authorized: true}
	notSel := v1alpha1.ServerAuthorization{Namespace: "n", Name: "b", Reason: v1alpha1.ReasonNotSelected}
	missing := v1alpha1.ServerAuthorization{Namespace: "n", Name: "c", Reason: v1alpha1.ReasonServerNotFound}
	tests := []struct {
		name    string
		entries []v1alpha1.ServerAuthorization
		status  metav1.ConditionStatus
		reason  string
	}{
		{"no servers", nil, metav1.ConditionTrue, v1alpha1.ReasonReconciled},
		{"all", []v1alpha1.ServerAuthorization{ok}, metav1.ConditionTrue, v1alpha1.ReasonReconciled},
		{"first failing reason", []v1alpha1.ServerAuthorization{ok, notSel, missing}, metav1.ConditionFalse, v1alpha1.ReasonNotSelected},
	}
	for _, tt := range tests {
		c := authorizedCondition(cc, tt.entries)
		if c.Status != tt.status || c.Reason != tt.reason || c.ObservedGeneration != 3 || c.Type != v1alpha1.ConditionAuthorized {
			t.Errorf("%s: %+v", tt.name, c)
		}
	}
}
