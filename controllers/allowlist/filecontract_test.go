package allowlist_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/distribution"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/volume"
	"github.com/zmqauth/zmqauth/keygen"
	zapallowlist "github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
)

// TestFileContract renders what the controllers write (a keypair Secret by
// keys.Kind.NewSecret with distribution's server key files, an allowlist
// ConfigMap by the allowlist controller's render), projects it into a
// directory as the kubelet mounts it, and loads it with the sidecar's
// loaders: the sidecar must see the keys, mode and entries the controllers
// meant (docs/architecture.md, section 5). Failures name keys by their
// public half only.
func TestFileContract(t *testing.T) {
	pair := func() keygen.KeyPair {
		kp, err := keygen.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	srvCur, srvPrev, srvNext := pair(), pair(), pair()
	cliCur, cliPrev, cliNext := pair(), pair(), pair()
	other := pair()

	server := &v1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "bus", UID: "srv-uid"},
		Spec:       v1alpha1.CurveServerSpec{SecretName: "bus-keys"},
		Status:     v1alpha1.CurveServerStatus{PublicKey: srvCur.Public.String()},
	}
	client := &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ingest", UID: "cli-uid"},
		Spec: v1alpha1.CurveClientSpec{SecretName: "ingest-keys",
			Servers: []v1alpha1.ServerReference{{Name: "bus", Namespace: "monitoring"}}},
		Status: v1alpha1.CurveClientStatus{PublicKey: cliCur.Public.String(),
			PreviousPublicKey: cliPrev.Public.String(), NextPublicKey: cliNext.Public.String()},
	}
	plain := &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "reader"},
		Status:     v1alpha1.CurveClientStatus{PublicKey: other.Public.String()},
	}

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(server).Build()

	type want struct {
		server   *keyfiles.ServerKeys // for a server's Secret
		client   *keygen.KeyPair      // for a client's Secret
		srvFiles map[string]keygen.PublicKey
		mode     string
		entries  map[string]entry // allowlist: file name to what it means
	}
	tests := []struct {
		name string
		data func(t *testing.T) map[string][]byte
		want want
	}{
		{
			name: "server keypair, previous and next",
			data: func(t *testing.T) map[string][]byte {
				s, err := keys.ServerKind().NewSecret(server, secretlayout.State{
					Current: srvCur, Previous: &srvPrev, Next: &srvNext, Revision: 2,
					RotatedAt: now, OverlapUntil: now.Add(time.Hour), NextSince: now,
				})
				if err != nil {
					t.Fatal(err)
				}
				return s.Data
			},
			want: want{server: &keyfiles.ServerKeys{Current: srvCur, Previous: &srvPrev, Next: &srvNext}},
		},
		{
			name: "client keypair with previous public key, next key and server key",
			data: func(t *testing.T) map[string][]byte {
				s, err := keys.ClientKind().NewSecret(client, secretlayout.State{
					Current: cliCur, Previous: &keygen.KeyPair{Public: cliPrev.Public}, Next: &cliNext,
					Revision: 3, RotatedAt: now, OverlapUntil: now.Add(time.Hour), NextSince: now,
				})
				if err != nil {
					t.Fatal(err)
				}
				extra, err := distribution.ServerKeyFiles(context.Background(), kube, client)
				if err != nil {
					t.Fatal(err)
				}
				if len(extra) != 1 {
					t.Fatalf("distribution.ServerKeyFiles gave %d files, want 1", len(extra))
				}
				for k, v := range extra {
					s.Data[k] = v
				}
				return s.Data
			},
			want: want{client: &cliCur, srvFiles: map[string]keygen.PublicKey{
				filecontract.ServerKeyFileName("monitoring", "bus"): srvCur.Public}},
		},
		{
			name: "allowlist enforce, client with previous and next key",
			data: allowlistData(t, server, "", client, plain),
			want: want{mode: "enforce", entries: map[string]entry{
				filecontract.ClientKeyFileName("team-a", "ingest"):         {cliCur.Public, "team-a/ingest", false},
				filecontract.PreviousClientKeyFileName("team-a", "ingest"): {cliPrev.Public, "team-a/ingest", true},
				filecontract.NextClientKeyFileName("team-a", "ingest"):     {cliNext.Public, "team-a/ingest", false},
				filecontract.ClientKeyFileName("team-b", "reader"):         {other.Public, "team-b/reader", false},
			}},
		},
		{
			name: "allowlist audit, nobody granted",
			data: allowlistData(t, server, v1alpha1.ModeAudit),
			want: want{mode: "audit", entries: map[string]entry{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mount")
			var mode os.FileMode = filecontract.KeypairFileMode
			if tt.want.entries != nil {
				mode = filecontract.AllowlistFileMode
			}
			if err := volume.Project(dir, tt.data(t), mode); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want.server != nil:
				got, err := keyfiles.LoadServerKeys(dir)
				if err != nil {
					t.Fatal(err)
				}
				samePair(t, "current", &got.Current, &tt.want.server.Current)
				samePair(t, "previous", got.Previous, tt.want.server.Previous)
				samePair(t, "next", got.Next, tt.want.server.Next)
			case tt.want.client != nil:
				got, err := keyfiles.LoadClientKeys(dir)
				if err != nil {
					t.Fatal(err)
				}
				samePair(t, "current", &got, tt.want.client)
				for file, key := range tt.want.srvFiles {
					got, err := keyfiles.ReadPublicKey(filepath.Join(dir, file))
					if err != nil {
						t.Fatal(err)
					}
					if got != key {
						t.Errorf("%s holds %s, want %s", file, got, key)
					}
				}
			default:
				al, err := zapallowlist.LoadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				if al.Mode() != tt.want.mode {
					t.Errorf("Mode() = %q, want %q", al.Mode(), tt.want.mode)
				}
				if !al.Declared() {
					t.Error("the operator's allowlist is not Declared (no index file seen)")
				}
				got := map[string]entry{}
				for _, e := range al.Entries() {
					got[filepath.Base(e.Source)] = entry{e.Key, e.Identity, e.Previous()}
				}
				if len(got) != len(tt.want.entries) {
					t.Errorf("sidecar sees %d entries %v, want %d %v", len(got), got, len(tt.want.entries), tt.want.entries)
				}
				for file, w := range tt.want.entries {
					if g, ok := got[file]; !ok || g != w {
						t.Errorf("%s: sidecar sees %+v (present %v), want %+v", file, g, ok, w)
					}
				}
			}
		})
	}
}

// entry is what an allowlist file means to the sidecar.
type entry struct {
	key      keygen.PublicKey
	identity string
	previous bool
}

// allowlistData renders server's allowlist ConfigMap data admitting clients
// (as the allowlist controller does) in mode ("" for the default).
func allowlistData(t *testing.T, server *v1alpha1.CurveServer, mode v1alpha1.ServerMode, clients ...*v1alpha1.CurveClient) func(*testing.T) map[string][]byte {
	return func(t *testing.T) map[string][]byte {
		srv := server.DeepCopy()
		srv.Spec.Mode = mode
		data, err := allowlist.RenderAllowlist(srv, clients, allowlist.GrantClientRef)
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string][]byte, len(data))
		for k, v := range data {
			out[k] = []byte(v)
		}
		return out
	}
}

// samePair compares keypairs by public key and, without printing it, by
// secret key.
func samePair(t *testing.T, what string, got, want *keygen.KeyPair) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s keypair: sidecar has one: %v, want one: %v", what, got != nil, want != nil)
	case got.Public != want.Public:
		t.Errorf("%s public key = %s, want %s", what, got.Public, want.Public)
	case !got.Secret.Equal(want.Secret):
		t.Errorf("%s secret key differs from the one the controller wrote (public %s)", what, want.Public)
	}
}
