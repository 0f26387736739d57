package interop

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/pypeer"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/sidecar"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// reloadInterval keeps the watchers' safety net quick in tests.
const reloadInterval = sidecar.Duration(250 * time.Millisecond)

// The applications are pyzmq peers run by internal/pypeer. These suites'
// own policy on top of it: how long a peer lives, and how long a test waits
// for its answers.
const (
	// peerTimeout bounds a peer process's life, and the wait for the
	// answer to an operation that has no timeout of its own (send).
	peerTimeout = 90 * time.Second
	// answerSlack is how long past an operation's own timeout a peer may
	// take to answer on a loaded machine; later means it is stuck.
	answerSlack = 10 * time.Second
	// recvTimeout is how long recv waits for a message.
	recvTimeout = 10 * time.Second
)

// startPeer starts a pyzmq application configured by o, which lives at
// most peerTimeout and is stopped at cleanup.
func startPeer(t *testing.T, o pypeer.Options) *pypeer.Peer {
	t.Helper()
	o.Timeout = peerTimeout
	return pypeer.Start(t, o)
}

// send makes p send one multi-part message or fails the test.
func send(t *testing.T, p *pypeer.Peer, parts ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	if err := p.Send(ctx, parts...); err != nil {
		t.Fatal(err)
	}
}

// tryRecv receives one message at p within timeout, with the properties
// named in props read from its last part (see pypeer.Peer.RecvLast); it
// returns pypeer.ErrTimeout when nothing arrived.
func tryRecv(p *pypeer.Peer, timeout time.Duration, props ...string) (pypeer.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+answerSlack)
	defer cancel()
	return p.RecvLast(ctx, timeout, props...)
}

// recv receives one message at p within recvTimeout or fails the test.
func recv(t *testing.T, p *pypeer.Peer, props ...string) pypeer.Event {
	t.Helper()
	ev, err := tryRecv(p, recvTimeout, props...)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return ev
}

// waitMonitor waits until p, run with Monitor, has reported more than after
// monitor events named name, or fails the test after limit.
func waitMonitor(t *testing.T, p *pypeer.Peer, name string, after int, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if _, err := p.WaitMonitorAfter(ctx, name, after); err != nil {
		t.Fatalf("no %s monitor event within %v", name, limit)
	}
}

// world is the files of one server and one client identity, as the
// operator would mount them: the server's keypair and allowlist, the
// client's keypair and the server's public key.
type world struct {
	t            *testing.T
	serverKeys   string // server keypair directory
	allowlist    string // the server's allowlist directory
	clientKeys   string // client keypair directory
	serverKeyRef string // the file the client reads the server's public key from

	server, client keygen.KeyPair

	mu      sync.Mutex
	secrets []string
}

// newWorld writes a server and a client identity, the client allowed as
// "team/client".
func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{
		t:          t,
		serverKeys: filepath.Join(dir, "server"),
		allowlist:  filepath.Join(dir, "allowlist"),
		clientKeys: filepath.Join(dir, "client"),
	}
	w.serverKeyRef = filepath.Join(w.clientKeys, "team.server.key")
	for _, d := range []string{w.serverKeys, w.allowlist, w.clientKeys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.server = w.newKeyPair()
	w.client = w.newKeyPair()
	w.writeKeyDir(w.serverKeys, w.server, nil)
	w.writeKeyDir(w.clientKeys, w.client, nil)
	w.writeServerKeyRef(w.server.Public)
	w.allow("team.client", w.client)
	return w
}

// newKeyPair returns a new keypair and remembers its secret, to check that
// no log shows it.
func (w *world) newKeyPair() keygen.KeyPair {
	w.t.Helper()
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.secrets = append(w.secrets, kp.Secret.Z85())
	w.mu.Unlock()
	return kp
}

// assertNoSecret fails when text contains a secret key, without printing
// it.
func (w *world) assertNoSecret(what, text string) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range w.secrets {
		if strings.Contains(text, s) {
			w.t.Errorf("%s contain secret key #%d", what, i)
		}
	}
}

// writeFile replaces path atomically.
func (w *world) writeFile(path string, data []byte, mode os.FileMode) {
	w.t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, mode); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		w.t.Fatal(err)
	}
}

// writeKeyDir writes a keypair directory; previous (server only) becomes
// previous-secret.key, which is removed when previous is nil.
func (w *world) writeKeyDir(dir string, kp keygen.KeyPair, previous *keygen.KeyPair) {
	w.t.Helper()
	prev := filepath.Join(dir, filecontract.PreviousSecretKeyFile)
	if previous != nil {
		w.writeFile(prev, []byte(previous.Secret.Z85()+"\n"), 0o600)
	}
	w.writeFile(filepath.Join(dir, filecontract.SecretKeyFile), []byte(kp.Secret.Z85()+"\n"), 0o600)
	w.writeFile(filepath.Join(dir, filecontract.PublicKeyFile), []byte(kp.Public.String()+"\n"), 0o644)
	if previous == nil {
		_ = os.Remove(prev)
	}
}

// writeKeyDirAt creates dir and writes kp there as a keypair directory.
func (w *world) writeKeyDirAt(dir string, kp keygen.KeyPair) {
	w.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	w.writeKeyDir(dir, kp, nil)
}

// writeServerKeyRef gives the client the server's public key (as the
// operator copies it: a zcert public certificate named by the server).
func (w *world) writeServerKeyRef(k keygen.PublicKey) {
	w.t.Helper()
	data, err := keygen.NewCertificate(keygen.KeyPair{Public: k}, nil).MarshalPublic()
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeFile(w.serverKeyRef, data, 0o644)
}

// allow adds kp's public certificate to the allowlist as NAME.key.
func (w *world) allow(name string, kp keygen.KeyPair) {
	w.t.Helper()
	data, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, nil).MarshalPublic()
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeFile(filepath.Join(w.allowlist, name+".key"), data, 0o644)
}

// disallow removes NAME.key from the allowlist.
func (w *world) disallow(name string) {
	w.t.Helper()
	if err := os.Remove(filepath.Join(w.allowlist, name+".key")); err != nil {
		w.t.Fatal(err)
	}
}

// inbound returns the config of an inbound sidecar in front of app.
func (w *world) inbound(app string) sidecar.Config {
	return sidecar.Config{
		Admin:          "127.0.0.1:0",
		ReloadInterval: reloadInterval,
		Inbound: []sidecar.InboundRoute{{
			Name: "server", Listen: "127.0.0.1:0", App: app, Keys: w.serverKeys, Allowlist: w.allowlist,
		}},
	}
}

// outbound returns the config of an outbound sidecar to server.
func (w *world) outbound(server string) sidecar.Config {
	return sidecar.Config{
		Admin:          "127.0.0.1:0",
		ReloadInterval: reloadInterval,
		Outbound: []sidecar.OutboundRoute{{
			Name: "client", Listen: "127.0.0.1:0", Server: server, ServerKey: w.serverKeyRef, Keys: w.clientKeys,
		}},
	}
}

// runningSidecar is a sidecar run in-process by a test.
type runningSidecar struct {
	*sidecar.Sidecar
	logs *testenv.LogBuffer
}

// start opens and runs a sidecar until cleanup, then checks that it
// stopped and that its logs hold no secret key.
func (w *world) start(cfg sidecar.Config) *runningSidecar {
	w.t.Helper()
	logs := &testenv.LogBuffer{}
	s, err := sidecar.Open(context.Background(), cfg, sidecar.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		w.t.Fatalf("sidecar: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				w.t.Errorf("sidecar: %v", err)
			}
		case <-time.After(15 * time.Second):
			w.t.Error("sidecar did not stop")
		}
		w.assertNoSecret("sidecar logs", logs.String())
		if w.t.Failed() {
			w.t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	return &runningSidecar{Sidecar: s, logs: logs}
}

// addr returns the address of route name as a tcp:// endpoint.
func (s *runningSidecar) endpoint(name string) string {
	return "tcp://" + s.Addr(name).String()
}

// metric returns the value of a metric with the given labels (0 when
// absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			} else {
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

var (
	framingOnce sync.Once
	framingErr  string
)

// requireLibzmqCurve fails the test with the reason when a Go CURVE client
// cannot deliver a message to a pyzmq CURVE server: every test where
// libzmq speaks CURVE to the sidecar depends on the zmtp engine framing
// MESSAGE as libzmq does (zmtp/curve's TestInteropOurClientLibzmqServer
// checks that engine property on its own).
func requireLibzmqCurve(t *testing.T) {
	t.Helper()
	framingOnce.Do(func() {
		w := newWorld(t)
		server := startPeer(t, pypeer.Options{Type: "PULL", Bind: "tcp://127.0.0.1:*", Mechanism: "CURVE", CurveServer: true,
			CurveSecretKey: w.server.Secret.Z85(), CurvePublicKey: w.server.Public.String(), ZAPCurveAny: true})
		var cp curve.KeyPair
		cp.Public = curve.PublicKey(w.client.Public)
		copy(cp.Secret[:], w.client.Secret.Bytes())
		mech, err := curve.NewClient(curve.ClientConfig{Key: cp, ServerKey: curve.PublicKey(w.server.Public)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := zmtp.Dial(ctx, server.Addr(), &zmtp.Config{Mechanism: mech, SocketType: "PUSH"})
		if err != nil {
			framingErr = "a Go CURVE client cannot complete a handshake with pyzmq: " + err.Error()
			return
		}
		defer c.Close()
		if err := c.WriteMessage([]byte("probe")); err != nil {
			framingErr = "writing to pyzmq over CURVE: " + err.Error()
			return
		}
		if _, err := tryRecv(server, 2*time.Second); err != nil {
			framingErr = "pyzmq dropped a CURVE message from the zmtp engine: the engine frames MESSAGE " +
				"differently from libzmq 4.3 (see zmtp/curve TestInteropOurClientLibzmqServer); " +
				"every libzmq CURVE peer of the sidecar is affected"
		}
	})
	if framingErr != "" {
		t.Fatal(framingErr)
	}
}
