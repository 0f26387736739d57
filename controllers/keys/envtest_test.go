package keys_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/keys/keystest"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
)

const timeout = 30 * time.Second

// TestKeysEnvtest runs the keys reconcilers against a real API server: one
// control plane, one namespace and manager per subtest.
func TestKeysEnvtest(t *testing.T) {
	env := keystest.Start(t)
	t.Run("Layout", func(t *testing.T) { t.Parallel(); testLayout(t, env) })
	t.Run("RestartKeepsKey", func(t *testing.T) { t.Parallel(); testRestartKeepsKey(t, env) })
	t.Run("Conflict", func(t *testing.T) { t.Parallel(); testConflict(t, env) })
	t.Run("Repair", func(t *testing.T) { t.Parallel(); testRepair(t, env) })
	t.Run("Lost", func(t *testing.T) { t.Parallel(); testLost(t, env) })
	t.Run("ReadySummary", func(t *testing.T) { t.Parallel(); testReadySummary(t, env) })
}

func server(ns, name, secret string) *v1alpha1.CurveServer {
	return &v1alpha1.CurveServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.CurveServerSpec{SecretName: secret},
	}
}

func curveClient(ns, name, secret string) *v1alpha1.CurveClient {
	return &v1alpha1.CurveClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.CurveClientSpec{SecretName: secret},
	}
}

func create(t *testing.T, env *keystest.Env, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func getSecret(ctx context.Context, env *keystest.Env, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s)
	return s, err
}

// waitKey waits until obj's status has KeyReady=True for revision rev (0:
// any) and a public key, and returns the fresh object.
func waitKey[T client.Object](t *testing.T, env *keystest.Env, obj T, kind keys.Kind, rev int64) T {
	t.Helper()
	keystest.Eventually(t, timeout, "KeyReady for "+obj.GetName(), func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		f := kind.Fields(obj)
		c := meta.FindStatusCondition(*f.Conditions, v1alpha1.ConditionKeyReady)
		return c != nil && c.Status == metav1.ConditionTrue && *f.PublicKey != "" &&
			(rev == 0 || *f.KeyRevision == rev) && *f.ObservedGeneration == obj.GetGeneration(), nil
	})
	return obj
}

// checkLayout checks a keypair Secret against the shared layout and the
// object's status, and returns its keypair.
func checkLayout(t *testing.T, secret *corev1.Secret, obj client.Object, kind keys.Kind) keygen.KeyPair {
	t.Helper()
	if secret.Type != secretlayout.SecretType {
		t.Errorf("Secret type %q, want %q", secret.Type, secretlayout.SecretType)
	}
	if secret.Labels[secretlayout.LabelManagedBy] != secretlayout.ManagedBy {
		t.Errorf("Secret labels %v lack %s", secret.Labels, secretlayout.LabelManagedBy)
	}
	ref := metav1.GetControllerOf(secret)
	if ref == nil || ref.UID != obj.GetUID() || ref.Kind != kind.Name || ref.APIVersion != v1alpha1.GroupVersion.String() ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("Secret controller reference %+v, want %s %s uid %s", ref, kind.Name, obj.GetName(), obj.GetUID())
	}
	kp, err := secretlayout.ParseKeyPair(secret)
	if err != nil {
		t.Fatalf("ParseKeyPair: %v", err)
	}
	if len(secret.Data[filecontract.PublicKeyFile]) != 40 || len(secret.Data[filecontract.SecretKeyFile]) != 40 {
		t.Errorf("public.key/secret.key are not bare 40-character Z85")
	}
	pubCert, err := keygen.ParsePublicCertificate(secret.Data[filecontract.CertificateFile])
	if err != nil {
		t.Fatalf("curve.key: %v", err)
	}
	secCert, err := keygen.ParseSecretCertificate(secret.Data[filecontract.SecretCertificateFile])
	if err != nil {
		t.Fatalf("curve.key_secret: %v", err)
	}
	wantName := obj.GetNamespace() + "/" + obj.GetName()
	if pubCert.PublicKey != kp.Public || secCert.PublicKey != kp.Public || !secCert.SecretKey.Equal(kp.Secret) {
		t.Errorf("zcert files do not hold the keypair of public.key/secret.key")
	}
	if pubCert.Metadata["name"] != wantName || secCert.Metadata["name"] != wantName {
		t.Errorf("zcert metadata name %q/%q, want %q", pubCert.Metadata["name"], secCert.Metadata["name"], wantName)
	}
	if got := *kind.Fields(obj).PublicKey; got != kp.Public.String() {
		t.Errorf("status.publicKey %q, Secret public.key %q", got, kp.Public)
	}
	return kp
}

func dataKeys(s *corev1.Secret) []string {
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func testLayout(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	env.StartManager(t, ns, nil)
	tests := []struct {
		name string
		obj  client.Object
		kind keys.Kind
	}{
		{"server", server(ns, "bus", "bus-keys"), keys.ServerKind()},
		{"client", curveClient(ns, "collector", "collector-keys"), keys.ClientKind()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create(t, env, tt.obj)
			obj := waitKey(t, env, tt.obj, tt.kind, 1)
			f := tt.kind.Fields(obj)
			secret, err := getSecret(context.Background(), env, ns, f.SecretName)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, secret, obj, tt.kind)
			want := []string{"curve.key", "curve.key_secret", "public.key", "secret.key"}
			if got := dataKeys(secret); !slices.Equal(got, want) {
				t.Errorf("Secret data keys %v, want %v", got, want)
			}
			if *f.KeyRevision != 1 || *f.PreviousPublicKey != "" {
				t.Errorf("status keyRevision %d previousPublicKey %q", *f.KeyRevision, *f.PreviousPublicKey)
			}
			// The CRD defaults rotation to 720h/24h.
			last, next := *f.LastRotationTime, *f.NextRotationTime
			if last == nil || next == nil || next.Sub(last.Time) != 720*time.Hour {
				t.Errorf("lastRotationTime %v nextRotationTime %v, want 720h apart", last, next)
			}
			if secret.Annotations[secretlayout.AnnotationKeyRevision] != "1" {
				t.Errorf("revision annotation %q", secret.Annotations[secretlayout.AnnotationKeyRevision])
			}
			rot := meta.FindStatusCondition(*f.Conditions, v1alpha1.ConditionRotating)
			if rot == nil || rot.Status != metav1.ConditionFalse {
				t.Errorf("Rotating condition %+v, want False", rot)
			}
			ready := meta.FindStatusCondition(*f.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status == metav1.ConditionFalse {
				t.Errorf("Ready condition %+v: nothing has failed", ready)
			}
			ev := env.WaitEvent(t, ns, obj.GetName(), keys.EventKeyGenerated)
			if ev.Type != corev1.EventTypeNormal {
				t.Errorf("KeyGenerated event type %s", ev.Type)
			}
		})
	}
}

func testRestartKeepsKey(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	mgr := env.StartManager(t, ns, nil)
	srv := server(ns, "bus", "bus-keys")
	cli := curveClient(ns, "app", "app-keys")
	create(t, env, srv)
	create(t, env, cli)
	srv = waitKey(t, env, srv, keys.ServerKind(), 1)
	cli = waitKey(t, env, cli, keys.ClientKind(), 1)
	ctx := context.Background()
	before := map[string]*corev1.Secret{}
	for _, name := range []string{"bus-keys", "app-keys"} {
		s, err := getSecret(ctx, env, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = s
	}
	mgr.Stop(t)

	mgr2 := env.StartManager(t, ns, nil)
	// The positive signal that the new manager has looked at both objects
	// and their Secrets: two spec changes in a row, each answered by the
	// keys reconciler in the status (observedGeneration, written after it
	// has dealt with the Secret) and by the rotation reconciler in its
	// next-rotation gauge. An object is never reconciled twice at once, so
	// when the second change shows, the reconciles of the first (and the
	// new manager's first look before them) are over.
	for _, period := range []time.Duration{48 * time.Hour, 49 * time.Hour} {
		for _, o := range []struct {
			obj  client.Object
			kind keys.Kind
		}{{srv, keys.ServerKind()}, {cli, keys.ClientKind()}} {
			setRotation(t, env, o.obj, period)
			waitReconciled(t, env, mgr2, o.obj, o.kind, period)
		}
	}
	for name, old := range before {
		s, err := getSecret(ctx, env, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		if s.ResourceVersion != old.ResourceVersion {
			t.Errorf("Secret %s was rewritten by the restarted manager", name)
		}
		for _, k := range filecontract.KeyPairFiles {
			if string(s.Data[k]) != string(old.Data[k]) {
				t.Errorf("Secret %s: %s changed across the restart", name, k)
			}
		}
	}
	for _, o := range []struct {
		obj    client.Object
		kind   keys.Kind
		secret string
	}{{srv, keys.ServerKind(), "bus-keys"}, {cli, keys.ClientKind(), "app-keys"}} {
		f := o.kind.Fields(o.obj)
		if *f.KeyRevision != 1 || *f.PublicKey != string(before[o.secret].Data["public.key"]) {
			t.Errorf("%s status after restart: revision %d key %s", o.kind.Name, *f.KeyRevision, *f.PublicKey)
		}
	}
}

// setRotation sets obj's rotation period (a spec change: a new generation).
func setRotation(t *testing.T, env *keystest.Env, obj client.Object, period time.Duration) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"rotation":{"period":%q,"overlap":"1h0m0s"}}}`, period)
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatalf("set the rotation period of %s: %v", obj.GetName(), err)
	}
}

// waitReconciled waits until both reconcilers of mgr have read obj's
// current generation, whose rotation period is period: the keys reconciler
// has written it to the status (observedGeneration, nextRotationTime) and
// the rotation reconciler to its next-rotation gauge. obj is refreshed.
func waitReconciled(t *testing.T, env *keystest.Env, mgr *keystest.Manager, obj client.Object, kind keys.Kind, period time.Duration) {
	t.Helper()
	keystest.Eventually(t, timeout, "both reconcilers read the new spec of "+obj.GetName(), func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		f := kind.Fields(obj)
		last, next := *f.LastRotationTime, *f.NextRotationTime
		if *f.ObservedGeneration != obj.GetGeneration() || last == nil || next == nil || next.Sub(last.Time) != period {
			return false, nil
		}
		labels := map[string]string{"kind": kind.Name, "namespace": obj.GetNamespace(), "name": obj.GetName()}
		v, _, err := testenv.MetricValue(mgr.Registry, "zmqauth_key_next_rotation_timestamp_seconds", labels)
		return err == nil && v == float64(next.Unix()), err
	})
}

func testConflict(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	mgr := env.StartManager(t, ns, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		secret *corev1.Secret
	}{
		{"unlabeled Opaque Secret", &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns},
			Data:       map[string][]byte{"password": []byte("hunter2")},
		}},
		{"labeled curve Secret without owner", &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "handmade", Namespace: ns,
				Labels: map[string]string{secretlayout.LabelManagedBy: secretlayout.ManagedBy}},
			Type: secretlayout.SecretType,
			Data: map[string][]byte{"public.key": []byte("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := env.Client.Create(ctx, tt.secret); err != nil {
				t.Fatal(err)
			}
			orig := tt.secret.DeepCopy()
			srv := server(ns, fmt.Sprintf("srv%d", i), tt.secret.Name)
			create(t, env, srv)
			keystest.Eventually(t, timeout, "SecretConflict condition", func(ctx context.Context) (bool, error) {
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(srv), srv); err != nil {
					return false, err
				}
				c := meta.FindStatusCondition(srv.Status.Conditions, v1alpha1.ConditionKeyReady)
				r := meta.FindStatusCondition(srv.Status.Conditions, v1alpha1.ConditionReady)
				return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonSecretConflict &&
					r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonSecretConflict, nil
			})
			ev := env.WaitEvent(t, ns, srv.Name, keys.EventSecretConflict)
			if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, tt.secret.Name) {
				t.Errorf("conflict event %s %q", ev.Type, ev.Note)
			}
			// A spec change makes the reconciler look again, with the
			// conflict already reported; its answer in the status (the new
			// generation observed, the conflict still there) is written
			// after it has dealt with the Secret.
			setRotation(t, env, srv, 48*time.Hour)
			keystest.Eventually(t, timeout, "the conflict seen again at the new generation", func(ctx context.Context) (bool, error) {
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(srv), srv); err != nil {
					return false, err
				}
				c := meta.FindStatusCondition(srv.Status.Conditions, v1alpha1.ConditionKeyReady)
				return srv.Generation > 1 && srv.Status.ObservedGeneration == srv.Generation &&
					c != nil && c.Reason == v1alpha1.ReasonSecretConflict && c.ObservedGeneration == srv.Generation, nil
			})
			got, err := getSecret(ctx, env, ns, tt.secret.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got.ResourceVersion != orig.ResourceVersion || len(got.OwnerReferences) != 0 {
				t.Errorf("the user's Secret was modified")
			}
			if srv.Status.PublicKey != "" {
				t.Errorf("status.publicKey %q set from a Secret zmqauth does not own", srv.Status.PublicKey)
			}
		})
	}
	// The manager's cache holds only zmqauth's Secrets.
	err := mgr.GetCache().Get(ctx, types.NamespacedName{Namespace: ns, Name: "mine"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("cache Get of an unlabeled Secret: %v, want NotFound", err)
	}
}

func testRepair(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	env.StartManager(t, ns, nil)
	ctx := context.Background()
	other, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		kind    keys.Kind
		edit    func(d map[string][]byte)
		touched []string
		from    string // the data key the repair used
	}{
		{"server: curve.key deleted and public.key changed", keys.ServerKind(), func(d map[string][]byte) {
			delete(d, filecontract.CertificateFile)
			d[filecontract.PublicKeyFile] = []byte(other.Public.String())
		}, []string{"curve.key", "public.key"}, filecontract.SecretKeyFile},
		{"server: curve.key_secret garbage", keys.ServerKind(), func(d map[string][]byte) {
			d[filecontract.SecretCertificateFile] = []byte("#   junk\n")
		}, []string{"curve.key_secret"}, filecontract.SecretKeyFile},
		{"client: public.key deleted", keys.ClientKind(), func(d map[string][]byte) {
			delete(d, filecontract.PublicKeyFile)
		}, []string{"public.key"}, filecontract.SecretKeyFile},
		// secret.key lost, curve.key_secret intact: the key is not lost.
		{"server: secret.key deleted", keys.ServerKind(), func(d map[string][]byte) {
			delete(d, filecontract.SecretKeyFile)
		}, []string{"secret.key"}, filecontract.SecretCertificateFile},
		{"server: secret.key damaged", keys.ServerKind(), func(d map[string][]byte) {
			d[filecontract.SecretKeyFile] = []byte("not a key")
		}, []string{"secret.key"}, filecontract.SecretCertificateFile},
		// Only the status still says which key is in use.
		{"server: secret.key and public.key deleted", keys.ServerKind(), func(d map[string][]byte) {
			delete(d, filecontract.SecretKeyFile)
			delete(d, filecontract.PublicKeyFile)
		}, []string{"public.key", "secret.key"}, filecontract.SecretCertificateFile},
		{"client: secret.key deleted", keys.ClientKind(), func(d map[string][]byte) {
			delete(d, filecontract.SecretKeyFile)
		}, []string{"secret.key"}, filecontract.SecretCertificateFile},
		// secret.key holds another valid key; the certificate and the
		// status still hold the key in use: secret.key is the edit.
		{"server: secret.key replaced by another key", keys.ServerKind(), func(d map[string][]byte) {
			d[filecontract.SecretKeyFile] = []byte(other.Secret.Z85())
		}, []string{"secret.key"}, filecontract.SecretCertificateFile},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secretName := fmt.Sprintf("keys-%d", i)
			var obj client.Object = server(ns, fmt.Sprintf("obj%d", i), secretName)
			if tt.kind.Name == "CurveClient" {
				obj = curveClient(ns, fmt.Sprintf("obj%d", i), secretName)
			}
			create(t, env, obj)
			obj = waitKey(t, env, obj, tt.kind, 1)
			s, err := getSecret(ctx, env, ns, secretName)
			if err != nil {
				t.Fatal(err)
			}
			want := checkLayout(t, s, obj, tt.kind)
			tt.edit(s.Data)
			// As `kubectl edit` would: a whole-object update by another manager.
			if err := env.Client.Update(ctx, s, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
			keystest.Eventually(t, timeout, "Secret repaired", func(ctx context.Context) (bool, error) {
				s, err = getSecret(ctx, env, ns, secretName)
				if err != nil {
					return false, err
				}
				_, err := secretlayout.ParseKeyPair(s)
				return err == nil, nil
			})
			if kp, _ := secretlayout.ParseKeyPair(s); kp.Public != want.Public || !kp.Secret.Equal(want.Secret) {
				t.Fatalf("repair changed the key (revision annotation %q)", s.Annotations[secretlayout.AnnotationKeyRevision])
			}
			if rev := s.Annotations[secretlayout.AnnotationKeyRevision]; rev != "1" {
				t.Errorf("revision annotation %q after a repair, want 1", rev)
			}
			obj = waitKey(t, env, obj, tt.kind, 1)
			got := checkLayout(t, s, obj, tt.kind)
			if got.Public != want.Public || !got.Secret.Equal(want.Secret) {
				t.Fatal("repair changed the key")
			}
			ev := env.WaitEvent(t, ns, obj.GetName(), keys.EventSecretRepaired)
			if ev.Type != corev1.EventTypeWarning {
				t.Errorf("repair event type %s", ev.Type)
			}
			for _, k := range tt.touched {
				if !strings.Contains(ev.Note, k) {
					t.Errorf("repair event %q does not name %s", ev.Note, k)
				}
			}
			if !strings.Contains(ev.Note, "from its intact "+tt.from+";") {
				t.Errorf("repair event %q does not say it repaired from %s", ev.Note, tt.from)
			}
			if lost, err := env.Events(ctx, ns, obj.GetName(), keys.EventKeyLost); err != nil || len(lost) != 0 {
				t.Errorf("KeyLost events %d (%v) for a key that was repaired", len(lost), err)
			}
			if strings.Contains(ev.Note, want.Secret.Z85()) {
				t.Fatal("repair event contains the secret key")
			}
		})
	}
}

func testLost(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	env.StartManager(t, ns, nil)
	ctx := context.Background()
	tests := []struct {
		name string
		kind keys.Kind
		lose func(t *testing.T, s *corev1.Secret)
	}{
		{"server: Secret deleted", keys.ServerKind(), func(t *testing.T, s *corev1.Secret) {
			if err := env.Client.Delete(ctx, s); err != nil {
				t.Fatal(err)
			}
		}},
		{"client: Secret deleted", keys.ClientKind(), func(t *testing.T, s *corev1.Secret) {
			if err := env.Client.Delete(ctx, s); err != nil {
				t.Fatal(err)
			}
		}},
		{"server: secret.key and curve.key_secret removed", keys.ServerKind(), func(t *testing.T, s *corev1.Secret) {
			delete(s.Data, filecontract.SecretKeyFile)
			delete(s.Data, filecontract.SecretCertificateFile)
			if err := env.Client.Update(ctx, s, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
		}},
		{"server: secret.key invalid, curve.key_secret of another keypair", keys.ServerKind(), func(t *testing.T, s *corev1.Secret) {
			// An intact certificate that does not hold the key in use
			// (neither public.key's nor the status's) is no source.
			other, err := keygen.GenerateKeyPair(nil)
			if err != nil {
				t.Fatal(err)
			}
			data, err := secretlayout.KeyPairData(other, "elsewhere/other")
			if err != nil {
				t.Fatal(err)
			}
			s.Data[filecontract.SecretKeyFile] = []byte("not a key")
			s.Data[filecontract.SecretCertificateFile] = data[filecontract.SecretCertificateFile]
			if err := env.Client.Update(ctx, s, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secretName := fmt.Sprintf("keys-%d", i)
			var obj client.Object = server(ns, fmt.Sprintf("obj%d", i), secretName)
			if tt.kind.Name == "CurveClient" {
				obj = curveClient(ns, fmt.Sprintf("obj%d", i), secretName)
			}
			create(t, env, obj)
			obj = waitKey(t, env, obj, tt.kind, 1)
			s, err := getSecret(ctx, env, ns, secretName)
			if err != nil {
				t.Fatal(err)
			}
			old := checkLayout(t, s, obj, tt.kind)
			tt.lose(t, s)
			obj = waitKey(t, env, obj, tt.kind, 2)
			s, err = getSecret(ctx, env, ns, secretName)
			if err != nil {
				t.Fatal(err)
			}
			got := checkLayout(t, s, obj, tt.kind)
			if got.Public == old.Public {
				t.Fatal("the key was not replaced")
			}
			if s.Annotations[secretlayout.AnnotationKeyRevision] != "2" {
				t.Errorf("revision annotation %q, want 2", s.Annotations[secretlayout.AnnotationKeyRevision])
			}
			ev := env.WaitEvent(t, ns, obj.GetName(), keys.EventKeyLost)
			if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, got.Public.String()) {
				t.Errorf("KeyLost event %s %q", ev.Type, ev.Note)
			}
		})
	}
}

// applyCondition sets one status condition as another controller does:
// server-side apply on the status subresource with its own field owner.
func applyCondition(t *testing.T, env *keystest.Env, obj client.Object, kind string, c metav1.Condition) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": c.Type, "status": string(c.Status), "reason": c.Reason, "message": c.Message,
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}},
	}}
	err := env.Client.Status().Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner("test-other-controller"), client.ForceOwnership)
	if err != nil {
		t.Fatalf("apply %s condition: %v", c.Type, err)
	}
}

// testReadySummary checks that Ready sums up the detail conditions other
// controllers write, and follows them when they change.
func testReadySummary(t *testing.T, env *keystest.Env) {
	ns := env.Namespace(t)
	env.StartManager(t, ns, nil)
	tests := []struct {
		name, detail string
		obj          client.Object
		kind         keys.Kind
	}{
		{"server", v1alpha1.ConditionAllowlistReady, server(ns, "bus", "bus-keys"), keys.ServerKind()},
		{"client", v1alpha1.ConditionAuthorized, curveClient(ns, "app", "app-keys"), keys.ClientKind()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create(t, env, tt.obj)
			obj := waitKey(t, env, tt.obj, tt.kind, 1)
			waitReady := func(status metav1.ConditionStatus, reason string) {
				t.Helper()
				keystest.Eventually(t, timeout, fmt.Sprintf("Ready=%s/%s", status, reason), func(ctx context.Context) (bool, error) {
					if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
						return false, err
					}
					c := meta.FindStatusCondition(*tt.kind.Fields(obj).Conditions, v1alpha1.ConditionReady)
					return c != nil && c.Status == status && c.Reason == reason, nil
				})
			}
			waitReady(metav1.ConditionUnknown, keys.ReasonPending)
			applyCondition(t, env, obj, tt.kind.Name, metav1.Condition{Type: tt.detail, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, Message: "ok"})
			waitReady(metav1.ConditionTrue, v1alpha1.ReasonReconciled)
			applyCondition(t, env, obj, tt.kind.Name, metav1.Condition{Type: tt.detail, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonAllowlistTooLarge, Message: "too big"})
			waitReady(metav1.ConditionFalse, v1alpha1.ReasonAllowlistTooLarge)
			for _, c := range []string{v1alpha1.ConditionKeyReady, v1alpha1.ConditionRotating, tt.detail} {
				if meta.FindStatusCondition(*tt.kind.Fields(obj).Conditions, c) == nil {
					t.Errorf("condition %s lost", c)
				}
			}
		})
	}
}
