package allowlist

import (
	"bytes"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

func mustPair(t *testing.T) keygen.KeyPair {
	t.Helper()
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestRenderDeterministicAndReused(t *testing.T) {
	a, b := mustPair(t), mustPair(t)
	files := map[string]fileSpec{
		"ns.a.key":                            {key: a.Public, identity: "ns/a", grant: GrantClientRef},
		"ns.a.previous.key":                   {key: b.Public, identity: "ns/a", grant: GrantClientRef, until: "2030-01-01T00:00:00Z"},
		filecontract.RawKeyFileName(b.Public): {key: b.Public, identity: "laptop", grant: GrantServerPublicKeys},
	}
	srv := types.NamespacedName{Namespace: "ns", Name: "bus"}
	var r1, r2 renderer
	c1, err := r1.render(srv, files)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r2.render(srv, files)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c1.data {
		if c2.data[k] != v {
			t.Errorf("%s differs between two renders", k)
		}
	}
	if c1.keys != 3 || c1.identities != 2 {
		t.Errorf("keys %d identities %d, want 3 and 2", c1.keys, c1.identities)
	}
	// Unchanged inputs reuse the previous render; changed ones re-render.
	before := r1.last[srv]["ns.a.key"].content
	files["ns.a.key"] = fileSpec{key: a.Public, identity: "ns/a", grant: GrantServerSelector}
	c3, err := r1.render(srv, files)
	if err != nil {
		t.Fatal(err)
	}
	if c3.data["ns.a.key"] == before {
		t.Errorf("changed grant not re-rendered")
	}
	cert, err := keygen.ParsePublicCertificate([]byte(c3.data["ns.a.key"]))
	if err != nil || cert.PublicKey != a.Public || cert.Metadata["grant"] != GrantServerSelector || cert.Metadata["identity"] != "ns/a" {
		t.Errorf("rendered certificate %v %v", cert, err)
	}
	entries, err := ParseIndex([]byte(c3.data[filecontract.IndexFile]))
	if err != nil || len(entries) != 3 {
		t.Fatalf("index: %v %v", entries, err)
	}
	ix := newIndex(entries)
	if e, ok := ix.Lookup("ns/a", b.Public.String()); !ok || e.Until != "2030-01-01T00:00:00Z" || e.File != "ns.a.previous.key" {
		t.Errorf("Lookup previous = %+v %v", e, ok)
	}
	if _, ok := ix.Lookup("ns/other", a.Public.String()); ok {
		t.Errorf("Lookup matched another identity")
	}
	if !bytes.Contains([]byte(c3.data[filecontract.IndexFile]), []byte(`"identity":"laptop"`)) {
		t.Errorf("index lacks the raw key's identity")
	}
	for k := range c3.data {
		if bytes.Contains([]byte(c3.data[k]), []byte("secret-key")) {
			t.Errorf("%s holds a secret key", k)
		}
	}
}

func TestMarshalIndexEmpty(t *testing.T) {
	b, err := MarshalIndex(nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseIndex(b)
	if err != nil || len(entries) != 0 {
		t.Errorf("empty index round trip: %q -> %v %v", b, entries, err)
	}
}

func TestWriteInterval(t *testing.T) {
	tests := []struct {
		min  time.Duration
		size int
		want time.Duration
	}{
		{time.Second, 10 << 10, time.Second},
		{time.Second, 256 << 10, 2 * time.Second},
		{time.Second, 10 << 20, 5 * time.Second},
		{10 * time.Second, 10 << 20, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := writeInterval(tt.min, tt.size); got != tt.want {
			t.Errorf("writeInterval(%v, %d) = %v, want %v", tt.min, tt.size, got, tt.want)
		}
	}
}
