package injector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
	keyctrl "github.com/zmqauth/zmqauth/controllers/keys"
)

// reconcileKeys runs the real keys reconciler once for obj, so its status
// holds what the keys controller reports (no manager runs it here).
func (e *env) reconcileKeys(t *testing.T, obj client.Object, kind keyctrl.Kind) {
	t.Helper()
	m, err := keyctrl.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := &keyctrl.Reconciler{
		Client: e.client, APIReader: e.client, Recorder: events.NewFakeRecorder(10),
		Clock: clock.RealClock{}, Kind: kind, Metrics: m,
	}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)}); err != nil {
		t.Fatalf("keys reconcile of %s: %v", obj.GetName(), err)
	}
	if err := e.client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
}

// setCondition writes one status condition as its controller would.
func (e *env) setCondition(t *testing.T, srv *zmqauthv1.CurveServer, c metav1.Condition) {
	t.Helper()
	c.ObservedGeneration = srv.Generation
	c.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
	meta.SetStatusCondition(&srv.Status.Conditions, c)
	if err := e.client.Status().Update(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
}

// testConflict: a pod is refused when its CurveServer or CurveClient says
// that the Secret or allowlist ConfigMap the sidecar would mount belongs to
// someone else, and injected when its object is merely not ready yet.
func (e *env) testConflict(t *testing.T) {
	ns := e.namespace(t, true, nil)
	ctx := context.Background()
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "someone-elses"},
		Data:       map[string][]byte{"secret.key": []byte("not zmqauth's")},
	}
	e.create(t, foreign)
	port := zmqauthv1.ServerPort{Name: "pub", Port: 5555, AppPort: 15555}

	srv := curveServer(ns, "taken", "", port)
	srv.Spec.SecretName = foreign.Name
	e.create(t, srv)
	e.reconcileKeys(t, srv, keyctrl.ServerKind())
	keyReady := meta.FindStatusCondition(srv.Status.Conditions, zmqauthv1.ConditionKeyReady)
	if keyReady == nil || keyReady.Status != metav1.ConditionFalse || keyReady.Reason != zmqauthv1.ReasonSecretConflict {
		t.Fatalf("KeyReady of a CurveServer on a foreign Secret: %+v, want False/SecretConflict", keyReady)
	}

	cli := curveClient(ns, "borrower", zmqauthv1.ServerReference{Name: "x", Endpoint: "x:1", LocalPort: 6000})
	cli.Spec.SecretName = foreign.Name
	e.create(t, cli)
	e.reconcileKeys(t, cli, keyctrl.ClientKind())
	cliReady := meta.FindStatusCondition(cli.Status.Conditions, zmqauthv1.ConditionKeyReady)
	if cliReady == nil || cliReady.Status != metav1.ConditionFalse || cliReady.Reason != zmqauthv1.ReasonSecretConflict {
		t.Fatalf("KeyReady of a CurveClient on a foreign Secret: %+v, want False/SecretConflict", cliReady)
	}

	// A server whose keys are fine but whose allowlist ConfigMap is taken.
	cm := curveServer(ns, "cm-taken", "", port)
	e.create(t, cm)
	const cmMsg = "ConfigMap cm-taken-allowlist exists and is not this CurveServer's allowlist; zmqauth leaves it alone: delete or rename it"
	e.setCondition(t, cm, metav1.Condition{Type: zmqauthv1.ConditionAllowlistReady, Status: metav1.ConditionFalse,
		Reason: allowlist.ReasonConfigMapConflict, Message: cmMsg})

	refused := []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		{"server key conflict", map[string]string{zmqauthv1.AnnotationServer: srv.Name},
			[]string{`curveserver "taken"`, "KeyReady", keyReady.Message}},
		{"client key conflict", map[string]string{zmqauthv1.AnnotationClient: cli.Name},
			[]string{`curveclient "borrower"`, "KeyReady", cliReady.Message}},
		{"allowlist conflict", map[string]string{zmqauthv1.AnnotationServer: cm.Name},
			[]string{`curveserver "cm-taken"`, "AllowlistReady", cmMsg}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := e.client.Create(ctx, appPod(ns, fmt.Sprintf("refused-%d", i), tc.annotations))
			if err == nil {
				t.Fatal("created: a pod would mount someone else's Secret or ConfigMap")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
		})
	}

	// Not ready yet is no conflict: a pending key, an Unknown condition and
	// an allowlist that is too large (the last one that fitted stays in
	// force) are all injected.
	pending := curveServer(ns, "pending", "", port)
	e.create(t, pending)
	e.setCondition(t, pending, metav1.Condition{Type: zmqauthv1.ConditionKeyReady, Status: metav1.ConditionUnknown,
		Reason: "Pending", Message: "waiting"})
	big := curveServer(ns, "big", "", port)
	e.create(t, big)
	e.setCondition(t, big, metav1.Condition{Type: zmqauthv1.ConditionAllowlistReady, Status: metav1.ConditionFalse,
		Reason: zmqauthv1.ReasonAllowlistTooLarge, Message: "too large"})
	for _, name := range []string{pending.Name, big.Name} {
		pod := appPod(ns, "ok-"+name, map[string]string{zmqauthv1.AnnotationServer: name})
		if err := e.client.Create(ctx, pod); err != nil {
			t.Fatalf("pod for curveserver %q refused: %v", name, err)
		}
		if got := e.getPod(t, ns, pod.Name); len(got.Spec.InitContainers) != 1 {
			t.Errorf("pod for curveserver %q not injected", name)
		}
	}
}
