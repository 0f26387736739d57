package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys/keystest"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

func TestParseRotateTarget(t *testing.T) {
	tests := []struct {
		arg      string
		wantKind string
		wantErr  string
	}{
		{"csrv/bus", "*v1alpha1.CurveServer", ""},
		{"CurveServer/bus", "*v1alpha1.CurveServer", ""},
		{"curveservers.zmqauth.io/bus", "*v1alpha1.CurveServer", ""},
		{"ccli/app", "*v1alpha1.CurveClient", ""},
		{"curveclient/app", "*v1alpha1.CurveClient", ""},
		{"cs/bus", "", "unknown kind"},
		{"secret/bus", "", "unknown kind"},
		{"bus", "", "want KIND/NAME"},
		{"csrv/", "", "want KIND/NAME"},
		{"csrv/a/b", "", "want KIND/NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			obj, name, err := parseRotateTarget(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprintf("%T", obj) != tt.wantKind || name != tt.arg[strings.Index(tt.arg, "/")+1:] {
				t.Fatalf("got %T %q %v", obj, name, err)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestManagerAndRotate runs `zmqauth manager` against a real API server,
// checks its probes, rotates a CurveServer with `zmqauth rotate` and stops
// the manager as SIGTERM would.
func TestManagerAndRotate(t *testing.T) {
	env := keystest.Start(t)
	kubeconfig := env.Kubeconfig(t)
	probes := freeAddr(t)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mgrOut, mgrErr strings.Builder
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"manager", "--kubeconfig", kubeconfig, "--metrics-bind-address", "0",
			"--health-probe-bind-address", probes, "--zap-log-level", "error",
			"--rotation-propagation-delay", "1s"}, strings.NewReader(""), &mgrOut, &mgrErr)
	}()
	for _, path := range []string{"/healthz", "/readyz"} {
		keystest.Eventually(t, 30*time.Second, "manager "+path, func(ctx context.Context) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+probes+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode == http.StatusOK, nil
		})
	}

	ns := env.Namespace(t)
	srv := &v1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bus"},
		Spec:       v1alpha1.CurveServerSpec{SecretName: "bus-keys"},
	}
	if err := env.Client.Create(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	keystest.Eventually(t, 30*time.Second, "first key", func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "bus"}, srv)
		return err == nil && srv.Status.KeyRevision == 1, err
	})
	oldKey := srv.Status.PublicKey

	r := runCLI(t, "", "rotate", "csrv/bus", "-n", ns, "--kubeconfig", kubeconfig, "--wait", "30s")
	if r.code != 0 {
		t.Fatalf("rotate: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "curveserver/bus in namespace "+ns+": requested a key rotation (zmqauth.io/rotate=") ||
		!strings.Contains(r.stdout, "current key revision 1") || !strings.Contains(r.stdout, "rotated: key revision 2") {
		t.Errorf("rotate output %q", r.stdout)
	}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "bus"}, srv); err != nil {
		t.Fatal(err)
	}
	value := srv.Annotations[v1alpha1.AnnotationRotate]
	if _, err := time.Parse(time.RFC3339Nano, value); err != nil || srv.Status.LastRotationRequest != value {
		t.Errorf("annotation %q, status.lastRotationRequest %q", value, srv.Status.LastRotationRequest)
	}
	if srv.Status.KeyRevision != 2 || srv.Status.PreviousPublicKey != oldKey || srv.Status.PublicKey == oldKey {
		t.Errorf("status after rotate: revision %d previous %q", srv.Status.KeyRevision, srv.Status.PreviousPublicKey)
	}
	secret := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "bus-keys"}, secret); err != nil {
		t.Fatal(err)
	}
	if string(secret.Data[secretlayout.KeyPreviousPublic]) != oldKey || string(secret.Data[secretlayout.KeyPublic]) != srv.Status.PublicKey {
		t.Error("Secret does not hold the rotated keys")
	}
	if !strings.Contains(r.stdout, srv.Status.PublicKey) {
		t.Errorf("rotate output does not show the new public key: %q", r.stdout)
	}

	checkFailure(t, runCLI(t, "", "rotate", "csrv/nope", "-n", ns, "--kubeconfig", kubeconfig), "not found")
	checkFailure(t, runCLI(t, "", "rotate", "pod/bus", "-n", ns, "--kubeconfig", kubeconfig), "unknown kind")

	stop() // what SIGTERM does through main's signal context
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("manager exited %d: %s", code, mgrErr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("manager did not stop after its context was cancelled")
	}
}
