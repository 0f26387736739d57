package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/demo"
)

// keyState is what a keypair Secret says about its rotation; public keys
// only.
type keyState struct {
	revision     int64
	public, next string
	nextSince    time.Time
	overlapUntil string
}

func (s keyState) String() string {
	staged := "none"
	if s.next != "" {
		staged = s.next + " since " + s.nextSince.Format(time.RFC3339)
	}
	return fmt.Sprintf("revision %d, public key %s, staged %s, overlap until %q", s.revision, s.public, staged, s.overlapUntil)
}

// keyStateOf reads the rotation state of the Secret namespace/name.
func (w *world) keyStateOf(namespace, name string) (keyState, error) {
	sec, err := w.getSecret(namespace, name)
	if err != nil {
		return keyState{}, err
	}
	var st keyState
	if st.revision, err = strconv.ParseInt(sec.Annotations[secretlayout.AnnotationKeyRevision], 10, 64); err != nil {
		return st, fmt.Errorf("Secret %s/%s key revision: %w", namespace, name, err)
	}
	st.public, st.next = string(sec.Data[filecontract.PublicKeyFile]), string(sec.Data[filecontract.NextPublicKeyFile])
	if v := sec.Annotations[secretlayout.AnnotationNextSince]; v != "" {
		if st.nextSince, err = time.Parse(time.RFC3339, v); err != nil {
			return st, fmt.Errorf("Secret %s/%s next-since: %w", namespace, name, err)
		}
	}
	st.overlapUntil = sec.Annotations[secretlayout.AnnotationOverlapUntil]
	return st, nil
}

// TestManagerKilledMidRotationFinishesIt rotates a server's and a client's
// keys while an application sends through the sidecars on a new connection
// every 20 requests, and SIGKILLs the manager twice: once while the next
// keys are staged (left down past the moment the switch was due), once
// right after the switch, during the overlap. Each restarted manager
// carries on from the state in the Secrets: both keys rotate exactly once,
// to the keys that were staged before the first kill, the client is given
// the new server key, and every request is answered.
func TestManagerKilledMidRotationFinishesIt(t *testing.T) {
	const delay = 5 * time.Second
	w := newWorld(t, 3*time.Minute, demo.ManagerOptions{PropagationDelay: delay})
	const ns = "rotate"
	w.busAndCollector(ns)
	srv := w.startServerPod(ns, "bus")
	cli := w.startClientPod(ns, "collector", srv)
	stream := w.stream("collector-app", cli, demo.StreamOptions{ReconnectEvery: 20}, 20)

	secrets := []types.NamespacedName{{Namespace: ns, Name: "bus-curve"}, {Namespace: ns, Name: "collector-curve"}}
	states := func() []keyState {
		t.Helper()
		out := make([]keyState, len(secrets))
		for i, s := range secrets {
			var err error
			if out[i], err = w.keyStateOf(s.Namespace, s.Name); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	before := states()
	// Every revision the Secrets go through, as far as polling sees them.
	maxRevision := make([]int64, len(secrets))
	observe := func(sts []keyState) {
		for i, st := range sts {
			maxRevision[i] = max(maxRevision[i], st.revision)
		}
	}

	// One rotation requested with `zmqauth rotate`, the other with the
	// annotation.
	if out, err := w.rig.Rotate(w.ctx, ns, "curveserver/bus"); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	if _, err := w.rig.Kubectl(w.ctx, "annotate", "-n", ns, "curveclient/collector",
		zmqauthv1.AnnotationRotate+"=e2e-"+strconv.FormatInt(time.Now().UnixNano(), 10), "--overwrite"); err != nil {
		t.Fatal(err)
	}

	// 1. Staged: kill the manager, and leave it down past the switch.
	var staged []keyState
	w.poll(15*time.Second, "both next keys staged", func() (bool, error) {
		staged = states()
		observe(staged)
		for _, st := range staged {
			if st.next == "" {
				return false, nil
			}
		}
		return true, nil
	})
	w.manager.Kill()
	t.Logf("manager killed with the rotation staged: server %v; client %v", staged[0], staged[1])
	due := staged[0].nextSince
	if staged[1].nextSince.After(due) {
		due = staged[1].nextSince
	}
	select {
	case <-time.After(time.Until(due.Add(delay + time.Second))):
	case <-w.ctx.Done():
		t.Fatal(w.ctx.Err())
	}
	for i, st := range states() {
		if st.revision != before[i].revision || st.next != staged[i].next {
			t.Fatalf("Secret %s changed while the manager was down (%v); the kill came too late to test anything", secrets[i], st)
		}
	}
	w.restartManager()

	// 2. Switched, in the overlap: kill it again at once.
	var switched []keyState
	w.poll(30*time.Second, "both keys switched", func() (bool, error) {
		switched = states()
		observe(switched)
		for i, st := range switched {
			if st.revision == before[i].revision || st.overlapUntil == "" {
				return false, nil
			}
		}
		return true, nil
	})
	w.manager.Kill()
	t.Logf("manager killed in the overlap: server %v; client %v", switched[0], switched[1])
	for i, st := range switched {
		if st.public != staged[i].next {
			t.Errorf("Secret %s switched to %s, not to the key staged before the restart (%s)", secrets[i], st.public, staged[i].next)
		}
		if st.next != "" {
			t.Errorf("Secret %s still stages a next key after the switch: %v", secrets[i], st)
		}
	}
	w.restartManager()

	// The restarted manager finishes the rotation: statuses, the client's
	// copy of the new server key, the allowlist.
	newServer, newClient := switched[0].public, switched[1].public
	w.poll(30*time.Second, "the rotation reflected in statuses and distributed", func() (bool, error) {
		observe(states())
		s, err := w.getServer(ns, "bus")
		if err != nil {
			return false, err
		}
		c, err := w.getClient(ns, "collector")
		if err != nil {
			return false, err
		}
		return s.Status.PublicKey == newServer && c.Status.PublicKey == newClient &&
			len(c.Status.Servers) == 1 && c.Status.Servers[0].ServerPublicKey == newServer &&
			c.Status.Servers[0].Authorized, nil
	})
	// The pods' volumes follow; then new connections are made on the new
	// keys, for a few reconnect cycles.
	w.poll(15*time.Second, "the new keys in the pods' mounted volumes", func() (bool, error) {
		serverKeys, err1 := os.ReadFile(filepath.Join(srv.keys, filecontract.PublicKeyFile))
		clientKeys, err2 := os.ReadFile(filepath.Join(cli.keys, filecontract.PublicKeyFile))
		serverCert, err3 := os.ReadFile(filepath.Join(cli.keys, filecontract.ServerKeyFileName(ns, "bus")))
		if err := errors.Join(err1, err2, err3); err != nil {
			return false, err
		}
		return string(serverKeys) == newServer && string(clientKeys) == newClient &&
			strings.Contains(string(serverCert), newServer), nil
	})
	at := stream.Last().Received
	if _, err := stream.WaitFor(w.ctx, "60 more answered requests", func(e demo.StreamEvent) bool {
		return e.Received >= at+60
	}); err != nil {
		t.Fatal(err)
	}
	sum := w.stopStream(stream)
	t.Logf("application: %v", sum)
	if sum.Sent == 0 || sum.Received != sum.Sent || sum.HandshakeFailed != 0 {
		t.Errorf("across the rotation and two manager kills: %v; want every request answered", sum)
	}

	// Exactly one rotation each, whatever the restarts saw.
	after := states()
	observe(after)
	for i, st := range after {
		if want := before[i].revision + 1; st.revision != want || maxRevision[i] != want {
			t.Errorf("Secret %s: revision %d (highest seen %d), want exactly %d", secrets[i], st.revision, maxRevision[i], want)
		}
		if st.public != staged[i].next {
			t.Errorf("Secret %s: public key %s, want the staged %s", secrets[i], st.public, staged[i].next)
		}
	}
	srvObj, err := w.getServer(ns, "bus")
	if err != nil {
		t.Fatal(err)
	}
	cliObj, err := w.getClient(ns, "collector")
	if err != nil {
		t.Fatal(err)
	}
	if srvObj.Status.KeyRevision != after[0].revision || cliObj.Status.KeyRevision != after[1].revision {
		t.Errorf("status.keyRevision: server %d, client %d; want %d and %d as in their Secrets",
			srvObj.Status.KeyRevision, cliObj.Status.KeyRevision, after[0].revision, after[1].revision)
	}
}
