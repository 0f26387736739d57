package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zmtp"
)

// kubeSetup is a namespace's worth of zmqauth objects in a real API server:
// a server keypair Secret, its allowlist ConfigMap and a client keypair
// Secret holding the server's public key, as the operator writes them.
type kubeSetup struct {
	cs     kubernetes.Interface
	ns     string
	sec    *secrets
	server keygen.KeyPair
	client keygen.KeyPair
}

func (k *kubeSetup) keySecret(kp keygen.KeyPair, previous *keygen.KeyPair) map[string][]byte {
	data := map[string][]byte{"public.key": []byte(kp.Public.String()), "secret.key": []byte(kp.Secret.Z85())}
	if previous != nil {
		data["previous-public.key"] = []byte(previous.Public.String())
		data["previous-secret.key"] = []byte(previous.Secret.Z85())
	}
	return data
}

func (k *kubeSetup) apply(t *testing.T, obj any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var err error
	switch o := obj.(type) {
	case *corev1.Secret:
		o.Namespace = k.ns
		if _, err = k.cs.CoreV1().Secrets(k.ns).Update(ctx, o, metav1.UpdateOptions{}); err != nil {
			_, err = k.cs.CoreV1().Secrets(k.ns).Create(ctx, o, metav1.CreateOptions{})
		}
	case *corev1.ConfigMap:
		o.Namespace = k.ns
		if _, err = k.cs.CoreV1().ConfigMaps(k.ns).Update(ctx, o, metav1.UpdateOptions{}); err != nil {
			_, err = k.cs.CoreV1().ConfigMaps(k.ns).Create(ctx, o, metav1.CreateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (k *kubeSetup) allowlist(t *testing.T, entries map[string]keygen.KeyPair) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bus-allowlist"}, Data: map[string]string{}}
	for name, kp := range entries {
		data, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, nil).MarshalPublic()
		if err != nil {
			t.Fatal(err)
		}
		cm.Data[name+".key"] = string(data)
	}
	return cm
}

// TestKubernetesSources runs an outbound and an inbound sidecar whose keys,
// server key and allowlist come from the Kubernetes API (a real API server),
// and changes them there: a revoked client's live session is closed within
// 1 s, a server key rotation reaches both sides, and a deleted Secret keeps
// the last good keys.
func TestKubernetesSources(t *testing.T) {
	env := &envtest.Environment{BinaryAssetsDirectory: testenv.KubeAssets(t)}
	restCfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k := &kubeSetup{cs: kubernetes.NewForConfigOrDie(restCfg), ns: "default", sec: &secrets{}}
	k.server, k.client = newKeyPair(t, k.sec), newKeyPair(t, k.sec)
	clientSecret := func(serverKey keygen.PublicKey) *corev1.Secret {
		data := k.keySecret(k.client, nil)
		data["server.default.bus.key"] = []byte(serverKey.String() + "\n")
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "c1-keys"}, Data: data}
	}
	k.apply(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bus-keys"}, Data: k.keySecret(k.server, nil)})
	k.apply(t, clientSecret(k.server.Public))
	k.apply(t, k.allowlist(t, map[string]keygen.KeyPair{"default.c1": k.client}))
	opts := Options{Kube: k.cs, Namespace: k.ns}

	// Two routes with the same sources (one watch each object): "bus" in
	// front of a REP application for the outbound sidecar's requests, and
	// "pull" in front of a PULL application for direct CURVE clients.
	app, pull := startApp(t, "REP"), startApp(t, "PULL")
	in := startSidecarWith(t, Config{
		Inbound: []InboundRoute{
			{Name: "bus", Listen: "127.0.0.1:0", App: app.addr, Keys: "secret:bus-keys", Allowlist: "configmap:default/bus-allowlist"},
			{Name: "pull", Listen: "127.0.0.1:0", App: pull.addr, Keys: "secret:default/bus-keys", Allowlist: "configmap:bus-allowlist"},
		},
	}, opts, k.sec)
	pullAddr := in.Addr("pull").String()
	out := startSidecarWith(t, Config{
		Outbound: []OutboundRoute{{
			Name: "to-bus", Listen: "127.0.0.1:0", Server: in.Addr("bus").String(),
			ServerKey: "secret:c1-keys#server.default.bus.key", Keys: "secret:default/c1-keys",
		}},
	}, opts, k.sec)
	outAddr := out.Addr("to-bus").String()

	request := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, err := zmtp.Dial(ctx, outAddr, &zmtp.Config{Mechanism: zmtp.NewNullClient(), SocketType: "REQ"})
		if err != nil {
			return "", err
		}
		defer req.Close()
		if err := req.WriteMessage([]byte{}, []byte("ping")); err != nil {
			return "", err
		}
		var rep *zmtp.Conn
		select {
		case rep = <-app.conns:
		case <-ctx.Done():
			return "", errors.New("the request never reached the application")
		}
		defer rep.Close()
		user, _ := rep.Peer().Metadata.Get(zmtp.PropUserID)
		m, err := rep.ReadMessage()
		if err != nil {
			return "", err
		}
		if err := rep.WriteMessage(m...); err != nil {
			return "", err
		}
		if _, err := req.ReadMessage(); err != nil {
			return "", err
		}
		return string(user), nil
	}
	if user, err := request(); err != nil || user != "default/c1" {
		t.Fatalf("request through the sidecars: User-Id %q, %v; want default/c1", user, err)
	}

	t.Run("RevokedInTheConfigMap", func(t *testing.T) {
		live, err := dialCurve(t, pullAddr, k.client, k.server.Public)
		if err != nil {
			t.Fatal(err)
		}
		<-pull.conns
		closed := closedAt(live)
		k.apply(t, k.allowlist(t, nil))
		removed := time.Now()
		expectClosedWithinSecond(t, closed, removed, "the revoked session")
		if _, err := dialCurve(t, pullAddr, k.client, k.server.Public); err == nil {
			t.Error("a revoked client got in")
		}
		k.apply(t, k.allowlist(t, map[string]keygen.KeyPair{"default.c1": k.client}))
		waitFor(t, "the client admitted again", 2*time.Second, func() bool {
			c, err := dialCurve(t, pullAddr, k.client, k.server.Public)
			if err == nil {
				_ = c.Close()
				<-pull.conns
			}
			return err == nil
		})
	})

	t.Run("ServerKeyRotation", func(t *testing.T) {
		old := k.server
		k.server = newKeyPair(t, k.sec)
		k.apply(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bus-keys"}, Data: k.keySecret(k.server, &old)})
		k.apply(t, clientSecret(k.server.Public))
		// Once the old key is gone, only the new one works: the outbound
		// side must have loaded it.
		waitFor(t, "the new server key accepted", 2*time.Second, func() bool {
			c, err := dialCurve(t, pullAddr, k.client, k.server.Public)
			if err == nil {
				_ = c.Close()
				<-pull.conns
			}
			return err == nil
		})
		k.apply(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bus-keys"}, Data: k.keySecret(k.server, nil)})
		waitFor(t, "the old server key refused", 2*time.Second, func() bool {
			c, err := dialCurve(t, pullAddr, k.client, old.Public)
			if err == nil {
				_ = c.Close()
				<-pull.conns
			}
			return err != nil
		})
		if user, err := request(); err != nil || user != "default/c1" {
			t.Fatalf("request after the rotation: User-Id %q, %v", user, err)
		}
	})

	t.Run("DeletedSecretKeepsLastGood", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := k.cs.CoreV1().Secrets(k.ns).Delete(ctx, "bus-keys", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deletion counted as a reload error", 2*time.Second, func() bool {
			return metricValue(t, in.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "keys:bus"}) >= 1 &&
				metricValue(t, in.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "keys:pull"}) >= 1
		})
		if user, err := request(); err != nil || user != "default/c1" {
			t.Fatalf("request with the Secret deleted: User-Id %q, %v; want the last good keys in force", user, err)
		}
		if !strings.Contains(in.logs.String(), "secret:default/bus-keys: not found") {
			t.Errorf("the logs do not say the Secret is gone:\n%s", in.logs.String())
		}
	})

	t.Run("OpenFailures", func(t *testing.T) {
		tests := []struct {
			name string
			opts Options
			want string
		}{
			{name: "missing Secret", opts: opts, want: "secret:default/nope: not found"},
			{name: "no cluster connection", opts: Options{}, want: "needs a cluster connection"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cfg := Config{SourceTimeout: Duration(500 * time.Millisecond), Inbound: []InboundRoute{{
					Listen: "127.0.0.1:0", App: app.addr, Keys: "secret:nope", Allowlist: "configmap:bus-allowlist",
				}}}
				s, err := Open(context.Background(), cfg, tt.opts)
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Open: %v; want an error containing %q", err, tt.want)
				}
			})
		}
	})
}
