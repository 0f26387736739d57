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

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys/keystest"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
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

// waitReadyz polls http://addr/readyz until it answers 200 or timeout
// passes, and returns the last failure.
func waitReadyz(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz %d: %s", resp.StatusCode, body)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestManagerRateLimitFlags: a client-side rate without a burst is refused
// before the manager connects anywhere.
func TestManagerRateLimitFlags(t *testing.T) {
	var out, errOut strings.Builder
	code := run(context.Background(), []string{"manager", "--kubeconfig", "/nonexistent",
		"--kube-api-qps", "50", "--kube-api-burst", "0"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--kube-api-burst 0") {
		t.Fatalf("exit %d, stderr %q; want 1 and a --kube-api-burst error", code, errOut.String())
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
			"--rotation-propagation-delay", "1s", "--leader-elect", "--leader-election-namespace", "default"}, strings.NewReader(""), &mgrOut, &mgrErr)
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

	// Outside a cluster the Lease's namespace must be given; the manager
	// then leads through it.
	keystest.Eventually(t, 30*time.Second, "leader election Lease", func(ctx context.Context) (bool, error) {
		lease := &coordinationv1.Lease{}
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: leaderElectionID}, lease)
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", err
	})

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
		!strings.Contains(r.stdout, "current key revision 1") || !strings.Contains(r.stdout, "curveserver/bus: rotation staged") ||
		!strings.Contains(r.stdout, "rotated: key revision 2") {
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
	if string(secret.Data[filecontract.PreviousPublicKeyFile]) != oldKey || string(secret.Data[filecontract.PublicKeyFile]) != srv.Status.PublicKey {
		t.Error("Secret does not hold the rotated keys")
	}
	if !strings.Contains(r.stdout, srv.Status.PublicKey) {
		t.Errorf("rotate output does not show the new public key: %q", r.stdout)
	}

	checkFailure(t, runCLI(t, "", "rotate", "csrv/nope", "-n", ns, "--kubeconfig", kubeconfig), "not found")
	checkFailure(t, runCLI(t, "", "rotate", "pod/bus", "-n", ns, "--kubeconfig", kubeconfig), "unknown kind")

	// Sidecars reading what the manager wrote straight from the API: the
	// server's keypair Secret and allowlist ConfigMap, and a client's
	// keypair Secret with the server's public key in it.
	reader := &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
		Spec:       v1alpha1.CurveClientSpec{SecretName: "reader-keys", Servers: []v1alpha1.ServerReference{{Name: "bus"}}},
	}
	if err := env.Client.Create(context.Background(), reader); err != nil {
		t.Fatal(err)
	}
	inboundAdmin, outboundAdmin := freeAddr(t), freeAddr(t)
	var inLog, outLog testenv.LogBuffer
	sidecarsDone := make(chan int, 2)
	go func() {
		sidecarsDone <- run(ctx, []string{"sidecar", "inbound", "--kubeconfig", kubeconfig,
			"--listen", freeAddr(t), "--app", freeAddr(t), "--admin", inboundAdmin,
			"--keys", "secret:" + ns + "/bus-keys", "--allowlist", "configmap:" + ns + "/bus-allowlist"}, strings.NewReader(""), io.Discard, &inLog)
	}()
	go func() {
		sidecarsDone <- run(ctx, []string{"sidecar", "outbound", "--kubeconfig", kubeconfig,
			"--listen", freeAddr(t), "--server", freeAddr(t), "--admin", outboundAdmin, "--keys", "secret:" + ns + "/reader-keys",
			"--server-key", "secret:" + ns + "/reader-keys#" + filecontract.ServerKeyFileName(ns, "bus")}, strings.NewReader(""), io.Discard, &outLog)
	}()
	// The inbound side is ready once the allowlist holds the reader's key.
	for _, admin := range []string{inboundAdmin, outboundAdmin} {
		if err := waitReadyz(ctx, admin, 30*time.Second); err != nil {
			t.Fatalf("sidecar %s: %v\ninbound logs:\n%s\noutbound logs:\n%s", admin, err, inLog.String(), outLog.String())
		}
	}
	// slog quotes a key that holds '=' or spaces; Z85 has no '"' or '\\'.
	if !strings.Contains(inLog.String(), "server keys in force") || !strings.Contains(inLog.String(), srv.Status.PublicKey) {
		t.Errorf("the inbound sidecar did not load the server's current key from the API; logs:\n%s", inLog.String())
	}
	if !strings.Contains(outLog.String(), "server key in force") || !strings.Contains(outLog.String(), srv.Status.PublicKey) {
		t.Errorf("the outbound sidecar did not load the server's key from the client's Secret; logs:\n%s", outLog.String())
	}

	stop() // what SIGTERM does through main's signal context
	for range 2 {
		select {
		case code := <-sidecarsDone:
			if code != 0 {
				t.Errorf("a sidecar exited %d; logs:\n%s\n%s", code, inLog.String(), outLog.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a sidecar did not stop after its context was cancelled")
		}
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("manager exited %d: %s", code, mgrErr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("manager did not stop after its context was cancelled")
	}
}
