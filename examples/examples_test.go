// Package examples_test runs the example programs of examples/zmq4 and
// examples/pyzmq against each other on loopback, as they run next to the
// sidecar in a pod (the sidecar is not needed for plain ZMTP on 127.0.0.1).
package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/testenv"
)

// python is Debian's python3, which has python3-zmq (the python3 first on
// PATH may not).
const python = "/usr/bin/python3"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// programs builds the zmq4 examples once and returns their directory.
func programs(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "zmqauth-examples-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./examples/zmq4/...")
		cmd.Dir = testenv.RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./examples/zmq4/...: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needPyzmq skips the test when Debian's python3-zmq is missing, unless
// ZMQAUTH_REQUIRE_DEPS=1 (make test installs it).
func needPyzmq(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import zmq").Run(); err != nil {
		if os.Getenv("ZMQAUTH_REQUIRE_DEPS") == "1" {
			t.Fatalf("%s cannot import zmq (%v): apt-get install python3-zmq", python, err)
		}
		t.Skipf("%s cannot import zmq (%v): apt-get install python3-zmq, or set ZMQAUTH_REQUIRE_DEPS=1 to fail", python, err)
	}
}

// freePort returns a loopback TCP endpoint nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// proc is a running example program whose stdout lines are kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	mu   sync.Mutex
	out  []string
}

// start runs argv, killed when the test ends.
func start(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, strings.Join(p.lines(), "\n"), name, stderr.String())
		}
	})
	return p
}

func (p *proc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.out)
}

// wait waits for the program to exit, up to d, and wants status 0.
func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s: %v", p.name, p.err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
	}
}

// stop sends SIGTERM and wants exit status 0 within five seconds.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	p.wait(t, 5*time.Second)
}

// lastJSON decodes the program's last stdout line into v.
func (p *proc) lastJSON(t *testing.T, v any) {
	t.Helper()
	out := p.lines()
	if len(out) == 0 {
		t.Fatalf("%s printed nothing", p.name)
	}
	if err := json.Unmarshal([]byte(out[len(out)-1]), v); err != nil {
		t.Fatalf("%s's last line %q: %v", p.name, out[len(out)-1], err)
	}
}

// waitListening waits until endpoint accepts TCP connections.
func waitListening(t *testing.T, endpoint string) {
	t.Helper()
	addr := strings.TrimPrefix(endpoint, "tcp://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type reqStats struct {
	Sent     int      `json:"sent"`
	Received int      `json:"received"`
	Lost     int      `json:"lost"`
	UserIDs  []string `json:"user_ids"`
}

// TestRequestReply runs each REQ client against each REP server: every
// request answered, each server stopped by SIGTERM with exit status 0.
func TestRequestReply(t *testing.T) {
	const count = 20
	for _, tc := range []struct {
		name           string
		server, client string // "zmq4" or "pyzmq"
	}{
		{"zmq4 server, zmq4 client", "zmq4", "zmq4"},
		{"pyzmq server, zmq4 client", "pyzmq", "zmq4"},
		{"zmq4 server, pyzmq client", "zmq4", "pyzmq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := programs(t)
			if tc.server == "pyzmq" || tc.client == "pyzmq" {
				needPyzmq(t)
			}
			ep := freePort(t)
			root := testenv.RepoRoot(t)
			var server *proc
			if tc.server == "zmq4" {
				server = start(t, "rep-server", filepath.Join(bin, "rep-server"), "--bind", ep)
			} else {
				server = start(t, "rep_server.py", python, filepath.Join(root, "examples/pyzmq/rep_server.py"), "--bind", ep)
			}
			waitListening(t, ep)
			args := []string{"--connect", ep, "--interval", "10ms", "--timeout", "2s", "--count", fmt.Sprint(count)}
			var client *proc
			if tc.client == "zmq4" {
				client = start(t, "req-client", append([]string{filepath.Join(bin, "req-client")}, args...)...)
			} else {
				client = start(t, "req_client.py", append([]string{python, filepath.Join(root, "examples/pyzmq/req_client.py")}, args...)...)
			}
			client.wait(t, 30*time.Second)
			var st reqStats
			client.lastJSON(t, &st)
			want := reqStats{Sent: count, Received: count, UserIDs: []string{}}
			if st.Sent != want.Sent || st.Received != want.Received || st.Lost != 0 || st.UserIDs == nil || len(st.UserIDs) != 0 {
				// No sidecar sets a User-Id here: the list is empty, not null.
				t.Errorf("client's final line %+v, want %+v", st, want)
			}
			server.stop(t)

			if tc.server == "pyzmq" {
				// One request line per request, in order, with the body.
				var bodies []string
				for _, l := range server.lines() {
					var ev struct {
						Event  string  `json:"event"`
						UserID *string `json:"user_id"`
						Body   string  `json:"body"`
					}
					if err := json.Unmarshal([]byte(l), &ev); err != nil {
						t.Fatalf("rep_server.py printed %q: %v", l, err)
					}
					if ev.Event == "request" {
						if ev.UserID != nil {
							t.Errorf("user_id %q without a sidecar, want null", *ev.UserID)
						}
						bodies = append(bodies, ev.Body)
					}
				}
				if len(bodies) != count || bodies[0] != "request 1" || bodies[count-1] != fmt.Sprintf("request %d", count) {
					t.Errorf("rep_server.py saw %d requests %q, want request 1..%d", len(bodies), bodies, count)
				}
			} else {
				var fin struct{ Served int }
				server.lastJSON(t, &fin)
				if fin.Served != count {
					t.Errorf("rep-server served %d, want %d", fin.Served, count)
				}
			}
		})
	}
}

// TestRequestClientSurvivesServerRestart kills the server under the zmq4
// client: the request in flight is counted lost, the client reconnects to
// the restarted server and finishes its count.
func TestRequestClientSurvivesServerRestart(t *testing.T) {
	bin := programs(t)
	ep := freePort(t)
	server := start(t, "rep-server", filepath.Join(bin, "rep-server"), "--bind", ep)
	waitListening(t, ep)
	const count = 60
	client := start(t, "req-client", filepath.Join(bin, "req-client"), "--connect", ep,
		"--interval", "20ms", "--timeout", "500ms", "--count", fmt.Sprint(count))
	time.Sleep(400 * time.Millisecond)
	server.cmd.Process.Kill()
	<-server.done
	time.Sleep(300 * time.Millisecond)
	start(t, "rep-server (restarted)", filepath.Join(bin, "rep-server"), "--bind", ep)
	client.wait(t, 30*time.Second)
	var st reqStats
	client.lastJSON(t, &st)
	t.Logf("req-client across a server restart: %+v", st)
	if st.Sent != count || st.Received+st.Lost != count || st.Lost < 1 || st.Received < count/2 {
		t.Errorf("client's final line %+v: want %d sent, at least one lost while the server was down, the rest received", st, count)
	}
}

// TestPubSubPrefix checks that a subscriber to "metrics." receives only
// the metrics topics, with no gap, and that both exit 0 on SIGTERM.
func TestPubSubPrefix(t *testing.T) {
	bin := programs(t)
	ep := freePort(t)
	pub := start(t, "pub", filepath.Join(bin, "pub"), "--bind", ep, "--interval", "20ms",
		"--topics", "metrics.cpu,audit.login,metrics.mem")
	waitListening(t, ep)
	sub := start(t, "sub", filepath.Join(bin, "sub"), "--connect", ep, "--subscribe", "metrics.")
	all := start(t, "sub (everything)", filepath.Join(bin, "sub"), "--connect", ep)
	time.Sleep(2500 * time.Millisecond)
	sub.stop(t)
	all.stop(t)
	pub.stop(t)

	type subStats struct {
		Received, Gaps, Last int
		Topics               []string
	}
	var got, gotAll subStats
	sub.lastJSON(t, &got)
	all.lastJSON(t, &gotAll)
	t.Logf("sub metrics.: %+v; sub everything: %+v", got, gotAll)
	slices.Sort(got.Topics)
	slices.Sort(gotAll.Topics)
	if got.Received < 20 || got.Gaps != 0 || !slices.Equal(got.Topics, []string{"metrics.cpu", "metrics.mem"}) {
		t.Errorf("sub --subscribe metrics.: %+v, want at least 20 messages, no gap, topics metrics.cpu and metrics.mem only", got)
	}
	if gotAll.Received < 30 || gotAll.Gaps != 0 || !slices.Equal(gotAll.Topics, []string{"audit.login", "metrics.cpu", "metrics.mem"}) {
		t.Errorf("sub (no --subscribe): %+v, want at least 30 messages, no gap, all three topics", gotAll)
	}
	var published struct{ Published int }
	pub.lastJSON(t, &published)
	if published.Published < gotAll.Received {
		t.Errorf("pub says %d published, a subscriber received %d", published.Published, gotAll.Received)
	}
}

// TestSubscriberSurvivesPublisherRestart checks what sub's comment says of
// zmq4 v0.17: after the publisher goes away and comes back, the subscriber
// reconnects by itself and its subscription still applies.
func TestSubscriberSurvivesPublisherRestart(t *testing.T) {
	bin := programs(t)
	ep := freePort(t)
	pub := start(t, "pub", filepath.Join(bin, "pub"), "--bind", ep, "--interval", "20ms")
	waitListening(t, ep)
	sub := start(t, "sub", filepath.Join(bin, "sub"), "--connect", ep, "--subscribe", "audit.")
	time.Sleep(1500 * time.Millisecond)
	pub.stop(t)
	time.Sleep(500 * time.Millisecond)
	// The restarted publisher sends another topic under the same prefix.
	start(t, "pub (restarted)", filepath.Join(bin, "pub"), "--bind", ep, "--interval", "20ms",
		"--topics", "audit.restarted,metrics.cpu")
	time.Sleep(2 * time.Second)
	sub.stop(t)
	var got struct {
		Received, Last int
		Topics         []string
	}
	sub.lastJSON(t, &got)
	t.Logf("sub across a publisher restart: %+v", got)
	if !slices.Equal(got.Topics, []string{"audit.login", "audit.restarted"}) {
		t.Errorf("sub after the publisher restarted: %+v, want topics audit.login (first publisher) then audit.restarted (second), nothing else", got)
	}
}
