package kubesource_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/zap/kubesource"
)

const wait = 20 * time.Second

// startAPI starts a real kube-apiserver and etcd for the test.
func startAPI(t *testing.T) (*envtest.Environment, kubernetes.Interface) {
	t.Helper()
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
	return env, kubernetes.NewForConfigOrDie(cfg)
}

// reloads records what Run hands to reload, one entry per call.
type reloads struct {
	mu    sync.Mutex
	seen  []string // the "file" data key's value, or the error
	wake  chan struct{}
	obj   *kubesource.Object
	dkey  string
	calls int
}

func (r *reloads) reload() error {
	data, err := r.obj.Data()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err != nil {
		r.seen = append(r.seen, "error: "+err.Error())
	} else {
		r.seen = append(r.seen, string(data[r.dkey]))
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return err
}

// waitFor waits until the last reload saw want (a prefix, for errors).
func (r *reloads) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		last := ""
		if len(r.seen) > 0 {
			last = r.seen[len(r.seen)-1]
		}
		r.mu.Unlock()
		if strings.HasPrefix(last, want) {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("reload never saw %q; saw %q", want, r.seen)
		}
	}
}

func TestObjectFollowsTheAPI(t *testing.T) {
	env, cs := startAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := "default"

	t.Run("SecretCreatedUpdatedDeleted", func(t *testing.T) {
		obj := kubesource.Watch(ctx, cs, kubesource.Ref{Kind: kubesource.Secret, Namespace: ns, Name: "keys"})
		// Absent at first: WaitForData gives up with the object's name.
		_, err := obj.WaitForData(ctx, 500*time.Millisecond)
		if !errors.Is(err, kubesource.ErrNotFound) || !strings.Contains(err.Error(), "secret:default/keys") {
			t.Fatalf("WaitForData before the Secret exists: %v; want not found, naming secret:default/keys", err)
		}
		r := &reloads{wake: make(chan struct{}, 1), obj: obj, dkey: "file"}
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		go obj.Run(runCtx, r.reload, nil)

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"}, Data: map[string][]byte{"file": []byte("one")}}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		data, err := obj.WaitForData(ctx, wait)
		if err != nil || string(data["file"]) != "one" {
			t.Fatalf("WaitForData after create: %q, %v; want one", data["file"], err)
		}
		r.waitFor(t, "one")

		secret.Data["file"] = []byte("two")
		if _, err := cs.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, "two")

		if err := cs.CoreV1().Secrets(ns).Delete(ctx, "keys", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, "error: secret:default/keys: not found")
	})

	t.Run("ConfigMapDataAndBinaryData", func(t *testing.T) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allowlist"},
			Data:       map[string]string{"a.key": "text"},
			BinaryData: map[string][]byte{"b.key": {0, 1}},
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		obj := kubesource.Watch(ctx, cs, kubesource.Ref{Kind: kubesource.ConfigMap, Namespace: ns, Name: "allowlist"})
		data, err := obj.WaitForData(ctx, wait)
		if err != nil {
			t.Fatal(err)
		}
		if string(data["a.key"]) != "text" || string(data["b.key"]) != "\x00\x01" || len(data) != 2 {
			t.Fatalf("ConfigMap data = %q; want a.key=text and b.key=\\x00\\x01", data)
		}
	})

	t.Run("WaitsForADataKey", func(t *testing.T) {
		// A CurveClient's Secret holds its keypair first and its servers'
		// keys a moment later.
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "client"}, Data: map[string][]byte{"public.key": []byte("k")}}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		obj := kubesource.Watch(ctx, cs, kubesource.Ref{Kind: kubesource.Secret, Namespace: ns, Name: "client"})
		_, err := obj.WaitForData(ctx, 500*time.Millisecond, "server.x.y.key")
		if err == nil || !strings.Contains(err.Error(), `secret:default/client has no data key "server.x.y.key"`) {
			t.Fatalf("WaitForData for a key not there: %v; want an error naming the key", err)
		}
		go func() {
			time.Sleep(200 * time.Millisecond)
			secret.Data["server.x.y.key"] = []byte("s")
			_, _ = cs.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{})
		}()
		data, err := obj.WaitForData(ctx, wait, "server.x.y.key")
		if err != nil || string(data["server.x.y.key"]) != "s" {
			t.Fatalf("WaitForData once the key is added: %q, %v", data["server.x.y.key"], err)
		}
	})

	t.Run("NeedsOnlyItsOwnObject", func(t *testing.T) { testOnlyItsOwnObject(ctx, t, env, cs) })
}

// testOnlyItsOwnObject checks the RBAC the README documents: get, list and
// watch on the one named Secret are enough, and a Secret outside that grant
// is reported as forbidden, not as missing.
func testOnlyItsOwnObject(ctx context.Context, t *testing.T, env *envtest.Environment, admin kubernetes.Interface) {
	ns := "default"
	for _, name := range []string{"mine", "theirs"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"file": []byte(name)}}
		if _, err := admin.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sidecar"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{"mine"}, Verbs: []string{"get", "list", "watch"},
		}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sidecar"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "sidecar"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "sidecar"}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: "sidecar"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(user.Config())

	mine := kubesource.Watch(ctx, cs, kubesource.Ref{Kind: kubesource.Secret, Namespace: ns, Name: "mine"})
	if data, err := mine.WaitForData(ctx, wait); err != nil || string(data["file"]) != "mine" {
		t.Fatalf("the granted Secret: %q, %v; want its data", data["file"], err)
	}
	theirs := kubesource.Watch(ctx, cs, kubesource.Ref{Kind: kubesource.Secret, Namespace: ns, Name: "theirs"})
	_, err = theirs.WaitForData(ctx, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("a Secret outside the grant: %v; want an error saying forbidden", err)
	}
}
