package allowlist_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
)

// runPython runs a Python script with the pyzmq interpreter and decodes the
// JSON it prints into out.
func runPython(t *testing.T, script string, out any, args ...string) {
	t.Helper()
	py := testenv.PyZMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\nstderr:\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("python output %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
}

const createCertificatesPy = `
import json, os, sys, zmq.auth
keys, public = sys.argv[1], sys.argv[2]
out = {}
for name in sys.argv[3:]:
    pub_file, sec_file = zmq.auth.create_certificates(keys, name, metadata={"name": name})
    os.rename(pub_file, os.path.join(public, os.path.basename(pub_file)))
    pub, _ = zmq.auth.load_certificate(sec_file)
    out[name] = pub.decode()
print(json.dumps(out))
`

// TestLoadDirReadsPyZMQCertificates loads the public certificate files that
// pyzmq's zmq.auth.create_certificates writes, moved into an allowlist
// directory as pyzmq's own examples (ironhouse) do.
func TestLoadDirReadsPyZMQCertificates(t *testing.T) {
	keys, public := t.TempDir(), t.TempDir()
	var made map[string]string
	runPython(t, createCertificatesPy, &made, keys, public, "client", "team-a.frontend", "team-b.worker.v2")

	// pyzmq writes metadata only into the secret certificate, so a name
	// that is not namespace.name gets the key itself as its identity.
	wantIdentity := map[string]string{
		"client":           made["client"],
		"team-a.frontend":  "team-a/frontend",
		"team-b.worker.v2": "team-b/worker.v2",
	}
	got, err := allowlist.LoadDir(public)
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != len(made) {
		t.Fatalf("loaded %d keys, pyzmq made %d: %v", got.Len(), len(made), got.Entries())
	}
	for name, z := range made {
		k, err := keygen.ParsePublicKey(z)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := got.Lookup(k[:])
		if !ok {
			t.Errorf("%s (%s): not allowed", name, z)
			continue
		}
		if e.Identity != wantIdentity[name] || e.Source != filepath.Join(public, name+".key") {
			t.Errorf("%s: identity %q from %s, want %q from %s.key", name, e.Identity, e.Source, wantIdentity[name], name)
		}
	}

	// The directory pyzmq created its certificates in holds the secret
	// certificates too: it is no allowlist.
	if _, err := allowlist.LoadDir(keys); err == nil {
		t.Error("a directory of pyzmq secret certificates loaded as an allowlist")
	}
}

// The server authenticates with a ThreadAuthenticator reading the allowlist
// directory, then each named client connects and reports what it saw.
const curveServerPy = `
import json, os, sys, zmq, zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

allow, secrets = sys.argv[1], sys.argv[2]
ctx = zmq.Context()
auth = ThreadAuthenticator(ctx)
auth.start()
auth.configure_curve(domain="*", location=allow)

spub, ssec = zmq.auth.load_certificate(os.path.join(secrets, "server.key_secret"))
srv = ctx.socket(zmq.ROUTER)
srv.linger = 0
srv.curve_secretkey, srv.curve_publickey, srv.curve_server = ssec, spub, True
srv.bind("tcp://127.0.0.1:*")
endpoint = srv.getsockopt_string(zmq.LAST_ENDPOINT)

result = {"allowed": sorted(k.decode() for k in zmq.auth.load_certificates(allow))}
events = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
for name in sys.argv[3:]:
    cpub, csec = zmq.auth.load_certificate(os.path.join(secrets, name + ".key_secret"))
    c = ctx.socket(zmq.DEALER)
    c.linger = 0
    c.curve_secretkey, c.curve_publickey, c.curve_serverkey = csec, cpub, spub
    mon = c.get_monitor_socket(events)
    c.connect(endpoint)
    outcome = "timeout"
    if mon.poll(10000):
        ev = recv_monitor_message(mon)
        if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            outcome = "connected"
        elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            outcome = "refused %d" % ev["value"]
        else:
            outcome = "failed %d" % ev["event"]
    if outcome == "connected":
        c.send(name.encode())
        if srv.poll(10000):
            frames = srv.recv_multipart(copy=False)
            outcome = "served %s as %s" % (frames[1].bytes.decode(), frames[1].get("User-Id"))
        else:
            outcome = "connected but nothing arrived"
    result[name] = outcome
    c.disable_monitor()
    mon.close()
    c.close()
auth.stop()
srv.close()
ctx.term()
print(json.dumps(result))
`

// TestPyZMQAcceptsOurAllowlist writes an allowlist directory with keygen's
// writer, the way the operator fills the ConfigMap, and has pyzmq's
// ThreadAuthenticator enforce it: a listed client is served, an unlisted one
// is refused. LoadDir reads the same directory to the same set.
func TestPyZMQAcceptsOurAllowlist(t *testing.T) {
	allow, secrets := t.TempDir(), t.TempDir()
	pairs := map[string]keygen.KeyPair{}
	for _, name := range []string{"server", "listed", "raw", "unlisted"} {
		p := newPair(t)
		pairs[name] = p
		if _, _, err := keygen.WriteCertificateFiles(secrets, name, keygen.NewCertificate(p, nil), keygen.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	write(t, allow, map[string]string{
		"team-a.listed.key":    publicCert(t, pairs["listed"], map[string]string{"name": "listed"}),
		"raw-9c1f2b.key":       publicCert(t, pairs["raw"], map[string]string{"name": "external gateway"}),
		filecontract.IndexFile: `{"entries": []}`,
		".keep":                "",
		"team-z.server.note":   "not a certificate",
	})

	var got map[string]any
	runPython(t, curveServerPy, &got, allow, secrets, "listed", "raw", "unlisted")

	for name, want := range map[string]string{
		"listed":   "served listed as " + pairs["listed"].Public.String(),
		"raw":      "served raw as " + pairs["raw"].Public.String(),
		"unlisted": "refused 400",
	} {
		if got[name] != want {
			t.Errorf("pyzmq client %s: %v, want %q", name, got[name], want)
		}
	}

	ours, err := allowlist.LoadDir(allow)
	if err != nil {
		t.Fatal(err)
	}
	var oursZ85 []string
	for _, e := range ours.Entries() {
		oursZ85 = append(oursZ85, e.Key.String())
	}
	theirs, _ := got["allowed"].([]any)
	var theirsZ85 []string
	for _, k := range theirs {
		theirsZ85 = append(theirsZ85, k.(string))
	}
	slices.Sort(oursZ85)
	slices.Sort(theirsZ85)
	if !slices.Equal(oursZ85, theirsZ85) || len(oursZ85) != 2 {
		t.Errorf("LoadDir allows %v, pyzmq's load_certificates %v", oursZ85, theirsZ85)
	}
	raw, unlisted := pairs["raw"].Public, pairs["unlisted"].Public
	if e, ok := ours.Lookup(raw[:]); !ok || e.Identity != "external gateway" {
		t.Errorf("raw key entry %v, %v; want identity from metadata", e, ok)
	}
	if _, ok := ours.Lookup(unlisted[:]); ok {
		t.Error("LoadDir allows the unlisted key")
	}
	if _, err := os.Stat(filepath.Join(allow, "team-a.listed.key_secret")); err == nil {
		t.Fatal("test wrote a secret into the allowlist")
	}
}
