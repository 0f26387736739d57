// Package integration holds tests that need a real kube-apiserver and etcd
// (controller-runtime's envtest, with binaries built by hack/controlplane.sh).
package integration

import (
	"bytes"
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/zmqauth/zmqauth/internal/testenv"
)

// TestControlPlaneStoresASecret proves the control plane the operator's tests
// stand on is real: an API server backed by etcd accepts a Secret and returns
// it unchanged.
func TestControlPlaneStoresASecret(t *testing.T) {
	env := &envtest.Environment{BinaryAssetsDirectory: testenv.KubeAssets(t)}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Type:       "zmqauth.io/curve",
		Data:       map[string][]byte{"public.key": []byte("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")},
	}
	if err := c.Create(ctx, want); err != nil {
		t.Fatalf("create Secret: %v", err)
	}
	var got corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "smoke"}, &got); err != nil {
		t.Fatalf("read Secret back: %v", err)
	}
	if got.Type != want.Type || !bytes.Equal(got.Data["public.key"], want.Data["public.key"]) {
		t.Fatalf("Secret read back as type %q data %q, want type %q data %q",
			got.Type, got.Data["public.key"], want.Type, want.Data["public.key"])
	}
	if got.UID == "" || got.ResourceVersion == "" {
		t.Fatalf("Secret has no UID/resourceVersion: not stored by a real API server")
	}
}
