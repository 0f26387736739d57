package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/pypeer"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// stream is one pyzmq PUSH application sending count copies of a tagged
// message through the outbound sidecar.
type stream struct {
	tag   string
	count int
	done  chan error
}

// startStream starts a PUSH application connected to endpoint that sends
// count messages tagged tag, interval apart.
func startStream(t *testing.T, endpoint, tag string, count int, interval time.Duration) *stream {
	t.Helper()
	p := startPeer(t, pypeer.Options{Type: "PUSH", Connect: endpoint})
	s := &stream{tag: tag, count: count, done: make(chan error, 1)}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		s.done <- p.Publish(ctx, count, interval, b(tag), b("payload"))
	}()
	return s
}

// canDial reports whether a Go CURVE client with key and server's public
// key completes a handshake with the inbound route at addr.
func canDial(t *testing.T, addr string, key keygen.KeyPair, server keygen.PublicKey) bool {
	t.Helper()
	var cp curve.KeyPair
	cp.Public = curve.PublicKey(key.Public)
	copy(cp.Secret[:], key.Secret.Bytes())
	mech, err := curve.NewClient(curve.ClientConfig{Key: cp, ServerKey: curve.PublicKey(server)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := zmtp.Dial(ctx, addr, &zmtp.Config{Mechanism: mech, SocketType: "PUSH"})
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestSidecarRotationLosesNothing keeps pyzmq applications sending through
// an outbound and an inbound sidecar to a pyzmq PULL application while the
// server key rotates (new key current, old key previous, then the old key
// retired) and the client key rotates (new key allowed and installed), and
// new connections are made at each step. Every message is counted at the
// receiving application: none may be lost, and each arrives with the
// identity of the client key its connection was made with.
func TestSidecarRotationLosesNothing(t *testing.T) {
	w := newWorld(t)
	app := startPeer(t, pypeer.Options{Type: "PULL", Bind: "tcp://127.0.0.1:*"})
	in := w.start(w.inbound(app.Addr()))
	out := w.start(w.outbound(in.endpoint("server")))
	inAddr := in.Addr("server").String()
	route := out.endpoint("client")
	const interval = 5 * time.Millisecond

	var streams []*stream
	// Connection 1 is made with the first server key and client key and
	// lives through every rotation below.
	streams = append(streams, startStream(t, route, "s1-c1", 900, interval))
	time.Sleep(300 * time.Millisecond)

	// Server key rotation, step 1: the new key is current, the old one
	// previous; the client learns the new public key a little later.
	oldServer := w.server
	newServer := w.newKeyPair()
	w.writeKeyDir(w.serverKeys, newServer, &oldServer)
	waitUntil(t, "the inbound route accepts the new server key", 3*time.Second, func() bool {
		return canDial(t, inAddr, w.client, newServer.Public)
	})
	if !canDial(t, inAddr, w.client, oldServer.Public) {
		t.Fatal("the previous server key is refused during the overlap")
	}
	// A connection made now, with the old server key, works.
	streams = append(streams, startStream(t, route, "s1-c1-overlap", 200, interval))
	time.Sleep(200 * time.Millisecond)
	w.writeServerKeyRef(newServer.Public)
	waitUntil(t, "the outbound route uses the new server key", 3*time.Second, func() bool {
		return strings.Contains(out.logs.String(), newServer.Public.String())
	})
	streams = append(streams, startStream(t, route, "s2-c1", 200, interval))

	// Client key rotation: the new key is allowed first, then installed.
	newClient := w.newKeyPair()
	w.allow("team.client-next", newClient)
	waitUntil(t, "the new client key allowed", 3*time.Second, func() bool {
		return canDial(t, inAddr, newClient, newServer.Public)
	})
	w.writeKeyDir(w.clientKeys, newClient, nil)
	waitUntil(t, "the outbound route uses the new client key", 3*time.Second, func() bool {
		return strings.Contains(out.logs.String(), newClient.Public.String())
	})
	streams = append(streams, startStream(t, route, "s2-c2", 200, interval))

	// Server key rotation, step 2: the overlap ends. Established sessions
	// keep their ephemeral keys; new ones use the new key.
	w.writeKeyDir(w.serverKeys, newServer, nil)
	waitUntil(t, "the old server key retired", 3*time.Second, func() bool {
		return !canDial(t, inAddr, w.client, oldServer.Public)
	})
	if len(streams[0].done) != 0 {
		t.Error("the first connection finished before the rotation did; the test no longer proves it survives")
	}
	streams = append(streams, startStream(t, route, "after-overlap", 200, interval))

	for _, s := range streams {
		select {
		case err := <-s.done:
			if err != nil {
				t.Fatalf("stream %s: %v", s.tag, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("stream %s did not finish sending", s.tag)
		}
	}

	// Count everything at the application.
	want := map[string]int{}
	total := 0
	for _, s := range streams {
		want[s.tag] = s.count
		total += s.count
	}
	got := map[string]int{}
	users := map[string]map[string]bool{}
	for n := 0; n < total; n++ {
		ev, err := tryRecv(app, 5*time.Second, "User-Id")
		if err != nil {
			break
		}
		tag := string(ev.Parts[0])
		got[tag]++
		if users[tag] == nil {
			users[tag] = map[string]bool{}
		}
		users[tag][ev.Prop("User-Id")] = true
	}
	for tag, n := range want {
		if got[tag] != n {
			t.Errorf("stream %s: %d of %d messages arrived", tag, got[tag], n)
		}
	}
	if extra, err := tryRecv(app, 200*time.Millisecond); err == nil {
		t.Errorf("an unexpected message arrived: %s", describe(extra.Parts))
	}
	wantUser := map[string]string{
		"s1-c1": "team/client", "s1-c1-overlap": "team/client", "s2-c1": "team/client",
		"s2-c2": "team/client-next", "after-overlap": "team/client-next",
	}
	for tag, u := range wantUser {
		if len(users[tag]) != 1 || !users[tag][u] {
			t.Errorf("stream %s arrived with User-Id %v, want only %q", tag, keys(users[tag]), u)
		}
	}
}

// keys lists a set's members.
func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
