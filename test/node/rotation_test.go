package node_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/internal/node"
	"github.com/zmqauth/zmqauth/internal/nodeenv"
)

// TestRotationUnderTraffic: both keys rotate (`zmqauth rotate` on the
// CurveServer and the CurveClient) while a zmq4 REQ client keeps sending
// through its sidecar to a pyzmq REP server, opening a new connection (a
// new CURVE session) every 20 requests. The new keys reach the pods only
// through the kubelet's updates of the mounted Secrets; no request is lost,
// the server keeps reading the client's User-Id, and new sessions after the
// rotation are made with the new keys. It reports the time from the request
// to every pod's sidecar holding the new keys.
func TestRotationUnderTraffic(t *testing.T) {
	e := needNode(t)
	ns := newNamespace(t, "rotate")
	apply(t, ns, serverManifests("echo", 1, pyzmqRepServer("tcp://127.0.0.1:15556"))+"---\n"+
		curveClient("caller", "echo", "")+"---\n"+
		clientDeployment("caller", "caller", 1, zmq4ReqClient("tcp://127.0.0.1:6556",
			"--interval", "50ms", "--timeout", "5s", "--reconnect-every", "20")))
	server := readyPods(t, ns, "app=echo", 1, 2*time.Minute)[0]
	client := readyPods(t, ns, "app=caller", 1, 2*time.Minute)[0]
	waitFor(t, time.Minute, "the client's first replies", func(context.Context) (bool, error) {
		s, _ := lastSummary(logs(t, ns, client.Name, "app"))
		return s.Received > 0, nil
	})
	oldServer, oldClient := statusKey(t, ns, "curveserver/echo"), statusKey(t, ns, "curveclient/caller")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	for _, target := range []string{"curveserver/echo", "curveclient/caller"} {
		if out, err := runZmqauth(ctx, e.Kubeconfig, "rotate", target, "-n", ns); err != nil {
			t.Fatalf("zmqauth rotate %s: %v\n%s", target, err, out)
		}
	}

	var newServer, newClient string
	var switched time.Duration
	waitFor(t, 2*time.Minute, "both keys switched in the CRs' status", func(context.Context) (bool, error) {
		newServer, newClient = statusKey(t, ns, "curveserver/echo"), statusKey(t, ns, "curveclient/caller")
		switched = time.Since(began)
		return newServer != oldServer && newClient != oldClient, nil
	})
	var onNewKeys time.Duration
	waitFor(t, 2*time.Minute, "every sidecar holding the new keys", func(context.Context) (bool, error) {
		srv := logs(t, ns, server.Name, injector.ContainerName)
		cli := logs(t, ns, client.Name, injector.ContainerName)
		onNewKeys = time.Since(began)
		return lastLogAttr(srv, "server keys in force", "public_key") == newServer &&
			lastLogAttr(cli, "client keys in force", "public_key") == newClient &&
			lastLogAttr(cli, "server key in force", "server_key") == newServer, nil
	})
	t.Logf("rotation of both keys: switched in status %s after the request, every pod's sidecar on the new keys %s after it "+
		"(kubelet syncFrequency %s, manager --rotation-propagation-delay %s; with the kubelet's default 1m sync and the default 2m delay, expect 2 to 3.5 minutes)",
		switched.Round(100*time.Millisecond), onNewKeys.Round(100*time.Millisecond), node.DefaultSyncFrequency, nodeenv.PropagationDelay(node.DefaultSyncFrequency))

	// Sessions opened from now on carry the new keys: wait for two more
	// connections, each answered.
	at, _ := lastSummary(logs(t, ns, client.Name, "app"))
	var last clientStats
	waitFor(t, time.Minute, "two new connections on the new keys", func(context.Context) (bool, error) {
		last, _ = lastSummary(logs(t, ns, client.Name, "app"))
		return last.Connections >= at.Connections+2 && last.Received >= at.Received+20, nil
	})
	if last.Lost != 0 || last.Received < last.Sent-1 {
		t.Errorf("across the rotation the client sent %d requests over %d connections, received %d, lost %d: want none lost\nthe client's sidecar:\n%s",
			last.Sent, last.Connections, last.Received, last.Lost, logs(t, ns, client.Name, injector.ContainerName))
	}
	if want := ns + "/caller"; len(last.UserIDs) != 1 || last.UserIDs[0] != want {
		t.Errorf("the server read User-Id %v across the rotation, want [%s]", last.UserIDs, want)
	}
	t.Logf("across the rotation: %d requests sent over %d connections, %d answered, %d lost", last.Sent, last.Connections, last.Received, last.Lost)
}

// statusKey is the public key in a CR's status (kind/name in ns).
func statusKey(t *testing.T, ns, object string) string {
	t.Helper()
	out, err := kubectl(t, "", "get", "-n", ns, object, "-o", "jsonpath={.status.publicKey}")
	if err != nil {
		t.Fatalf("kubectl get %s: %v\n%s", object, err, out)
	}
	return strings.TrimSpace(out)
}

// logAttr matches one attribute of a log/slog text line: key=value or
// key="quoted value".
var logAttr = regexp.MustCompile(` ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)`)

// lastLogAttr is the value of attr in the last line of a sidecar's text log
// whose message is msg, or "" if there is none.
func lastLogAttr(log, msg, attr string) string {
	value := ""
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg="+strconv.Quote(msg)) {
			continue
		}
		for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
			if m[1] != attr {
				continue
			}
			value = m[2]
			if u, err := strconv.Unquote(value); err == nil {
				value = u
			}
		}
	}
	return value
}
