// Package pypeer runs the libzmq reference peer (zmtp/testdata/pypeer.py,
// pyzmq on Debian's libzmq 4.3) from Go tests and talks to it.
//
// Start launches the script with Options turned into its command-line flags,
// under exec.CommandContext with a timeout, and reads its JSON-line output:
// replies to operations are matched by id, every other event (ready,
// monitor, exit) is kept in order so a test can wait for one. The peer is
// stopped at test cleanup. The script's header documents every flag and
// operation; Options mirrors the flags.
//
// It lives in the repository's top internal directory so that the tests of
// zmtp, of zmtp/curve and of test/interop all share this one driver, and it
// does not import zmtp, so the zmtp package's own tests can use it.
//
// The peer's command line carries CURVE secret keys. Nothing this package
// prints or returns shows one: the command line is logged through
// redactedArgs, Options formats itself the same way, and the peer's stderr
// and error messages have every secret-key value cut out (see Peer.Stderr).
package pypeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/testenv"
)

// Options configure the peer's socket; each field is one flag of pypeer.py.
type Options struct {
	// Type is the socket type, e.g. "DEALER". Required.
	Type string
	// Bind is an endpoint to bind, e.g. "tcp://127.0.0.1:*"; the bound
	// endpoint is then Peer.Endpoint. Exactly one of Bind and Connect.
	Bind string
	// Connect is an endpoint to connect to.
	Connect string
	// Identity is the routing id.
	Identity string
	// Subscribe lists topics a SUB socket subscribes to at start.
	Subscribe []string
	// MaxMsgSize sets ZMQ_MAXMSGSIZE when not zero.
	MaxMsgSize int64
	// RouterMandatory sets ZMQ_ROUTER_MANDATORY.
	RouterMandatory bool

	// Mechanism is "NULL" (default), "PLAIN" or "CURVE".
	Mechanism string
	// PlainServer makes the socket the PLAIN server.
	PlainServer bool
	// Username and Password are the PLAIN client's credentials.
	Username, Password string
	// CurveServer makes the socket the CURVE server.
	CurveServer bool
	// CurveSecretKey and CurvePublicKey are our keypair (Z85).
	CurveSecretKey, CurvePublicKey string
	// CurveServerKey is the server's public key, for a CURVE client (Z85).
	CurveServerKey string
	// ZAPDomain sets ZMQ_ZAP_DOMAIN (libzmq runs ZAP for NULL only with one).
	ZAPDomain string

	// ZAP starts a ThreadAuthenticator; the ZAP* rules below imply it.
	ZAP bool
	// ZAPAllow and ZAPDeny are address rules.
	ZAPAllow, ZAPDeny []string
	// ZAPPlain holds the PLAIN users the authenticator accepts.
	ZAPPlain map[string]string
	// ZAPCurveAny accepts any CURVE client key.
	ZAPCurveAny bool
	// ZAPCurveDir accepts the CURVE client certificates in this directory.
	ZAPCurveDir string

	// HeartbeatIvl, HeartbeatTimeout and HeartbeatTTL set the ZMTP 3.1
	// heartbeat options when not zero.
	HeartbeatIvl, HeartbeatTimeout, HeartbeatTTL time.Duration

	// Monitor reports socket monitor events (see Peer.WaitMonitor).
	Monitor bool
	// Timeout bounds the peer's life (default 60 s): the process is killed
	// after it.
	Timeout time.Duration
	// Extra holds further raw flags.
	Extra []string
}

// Args returns the command-line flags for o.
func (o Options) Args() []string {
	var a []string
	add := func(flag string, v string) {
		if v != "" {
			a = append(a, flag+"="+v)
		}
	}
	on := func(flag string, b bool) {
		if b {
			a = append(a, flag)
		}
	}
	ms := func(flag string, d time.Duration) {
		if d > 0 {
			a = append(a, flag+"="+strconv.FormatInt(d.Milliseconds(), 10))
		}
	}
	add("--type", o.Type)
	add("--bind", o.Bind)
	add("--connect", o.Connect)
	add("--identity", o.Identity)
	for _, s := range o.Subscribe {
		a = append(a, "--subscribe="+s)
	}
	if o.MaxMsgSize != 0 {
		a = append(a, "--maxmsgsize="+strconv.FormatInt(o.MaxMsgSize, 10))
	}
	on("--router-mandatory", o.RouterMandatory)
	add("--mechanism", o.Mechanism)
	on("--plain-server", o.PlainServer)
	add("--username", o.Username)
	add("--password", o.Password)
	on("--curve-server", o.CurveServer)
	add("--curve-secret-key", o.CurveSecretKey)
	add("--curve-public-key", o.CurvePublicKey)
	add("--curve-server-key", o.CurveServerKey)
	add("--zap-domain", o.ZAPDomain)
	on("--zap", o.ZAP)
	for _, s := range o.ZAPAllow {
		a = append(a, "--zap-allow="+s)
	}
	for _, s := range o.ZAPDeny {
		a = append(a, "--zap-deny="+s)
	}
	users := make([]string, 0, len(o.ZAPPlain))
	for u := range o.ZAPPlain {
		users = append(users, u)
	}
	sort.Strings(users) // deterministic order for readable logs
	for _, u := range users {
		a = append(a, "--zap-plain="+u+":"+o.ZAPPlain[u])
	}
	on("--zap-curve-any", o.ZAPCurveAny)
	add("--zap-curve-dir", o.ZAPCurveDir)
	ms("--heartbeat-ivl", o.HeartbeatIvl)
	ms("--heartbeat-timeout", o.HeartbeatTimeout)
	ms("--heartbeat-ttl", o.HeartbeatTTL)
	on("--monitor", o.Monitor)
	if o.Timeout > 0 {
		a = append(a, "--timeout="+strconv.FormatFloat(o.Timeout.Seconds(), 'f', -1, 64))
	}
	return append(a, o.Extra...)
}

// Event is one JSON line the peer printed.
type Event struct {
	// Event is the kind: ready, monitor, sent, recv, timeout, echoed, ok,
	// error, exit.
	Event string `json:"event"`
	// ID is the id of the operation this answers (0 for unsolicited events).
	ID int `json:"id"`
	// Endpoint is the bound or connected endpoint (ready) or the monitor
	// event's address.
	Endpoint string `json:"endpoint"`
	// Name is the monitor event's name without EVENT_, e.g.
	// "HANDSHAKE_FAILED_AUTH".
	Name string `json:"name"`
	// Value is the monitor event's value.
	Value *int64 `json:"value"`
	// Parts are the received message's frames.
	Parts [][]byte `json:"parts"`
	// Props are the message properties asked for (nil when absent).
	Props map[string]*string `json:"props"`
	// Count is the number of messages sent or echoed.
	Count int `json:"count"`
	// Error is the failure of an operation.
	Error string `json:"error"`
}

// Peer is a running pypeer.py.
type Peer struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	stderr bytes.Buffer

	wmu    sync.Mutex // serializes stdin writes and id allocation
	nextID int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new event
	events  []Event       // unsolicited events, in order
	replies map[int]Event
	exited  bool

	endpoint string
	waitErr  chan error

	// secrets are the secret-key values on the command line, cut out of
	// everything the peer prints (see redact).
	secrets []string
}

// Script returns the path of pypeer.py, which stays with the zmtp tests'
// other test data in zmtp/testdata.
func Script(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "zmtp", "testdata", "pypeer.py")
}

// Start launches the peer and waits until its socket is bound or connecting.
// It skips the test when pyzmq is missing (fails under
// ZMQAUTH_REQUIRE_DEPS=1). The peer is stopped at cleanup; its stderr is
// logged when the test failed.
func Start(t testing.TB, o Options) *Peer {
	t.Helper()
	python := testenv.PyZMQ(t)
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout+5*time.Second)
	args := o.Args()
	cmd := exec.CommandContext(ctx, python, append([]string{Script(t)}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	p := &Peer{t: t, cmd: cmd, cancel: cancel, changed: make(chan struct{}), replies: map[int]Event{}, waitErr: make(chan error, 1),
		secrets: secretValues(args)}
	cmd.Stderr = &lockedWriter{w: &p.stderr, mu: &p.mu}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("pypeer: start: %v", err)
	}
	go p.readLoop(stdout)
	t.Cleanup(func() {
		_ = p.Close()
		if t.Failed() {
			t.Logf("pypeer %v stderr:\n%s", redactedArgs(args), p.Stderr())
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	ev, err := p.WaitEvent(wctx, func(e Event) bool { return e.Event == "ready" })
	if err != nil {
		t.Fatalf("pypeer did not become ready: %v\nstderr:\n%s", err, p.Stderr())
	}
	p.endpoint = ev.Endpoint
	return p
}

// lockedWriter collects stderr under the peer's lock.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

// Write implements io.Writer under the peer's lock.
func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *Peer) readLoop(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = Event{Event: "error", Error: "pypeer: bad output line: " + sc.Text()}
		}
		// Redacted once here, so that no event this package returns
		// carries a secret key the peer echoed.
		ev.Error = p.redact(ev.Error)
		p.mu.Lock()
		if ev.ID != 0 {
			p.replies[ev.ID] = ev
		} else {
			p.events = append(p.events, ev)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	p.waitErr <- p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Endpoint is the endpoint the peer bound or connected to, e.g.
// "tcp://127.0.0.1:40123".
func (p *Peer) Endpoint() string { return p.endpoint }

// Addr is Endpoint without its "tcp://" prefix.
func (p *Peer) Addr() string { return strings.TrimPrefix(p.endpoint, "tcp://") }

// Stderr returns what the peer wrote to stderr so far, with every secret
// key of its command line cut out (Python's argparse, for one, repeats a
// flag it rejects).
func (p *Peer) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.redact(p.stderr.String())
}

// Events returns the unsolicited events so far (ready, monitor, exit).
func (p *Peer) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// WaitEvent waits for an unsolicited event matching match, looking at every
// event since the start.
func (p *Peer) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	seen := 0
	for {
		p.mu.Lock()
		evs := p.events[seen:]
		seen = len(p.events)
		changed, exited := p.changed, p.exited
		p.mu.Unlock()
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
		}
		if exited {
			return Event{}, errors.New("pypeer: exited")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("pypeer: waiting for an event: %w", ctx.Err())
		}
	}
}

// WaitMonitor waits for the monitor event name (e.g.
// "HANDSHAKE_SUCCEEDED"); the peer must run with Monitor set.
func (p *Peer) WaitMonitor(ctx context.Context, name string) (Event, error) {
	return p.WaitEvent(ctx, func(e Event) bool { return e.Event == "monitor" && e.Name == name })
}

// WaitMonitorAfter waits for the monitor event name after the first after
// of them, i.e. for its (after+1)th occurrence since the start. With
// MonitorCount it waits for the next one when earlier ones may already have
// arrived: n := p.MonitorCount("DISCONNECTED"); ...; p.WaitMonitorAfter(ctx,
// "DISCONNECTED", n). WaitMonitor is WaitMonitorAfter with after 0.
func (p *Peer) WaitMonitorAfter(ctx context.Context, name string, after int) (Event, error) {
	seen := 0
	// WaitEvent calls match once per event, in order.
	return p.WaitEvent(ctx, func(e Event) bool {
		if e.Event != "monitor" || e.Name != name {
			return false
		}
		seen++
		return seen > after
	})
}

// MonitorCount returns how many monitor events named name arrived so far.
func (p *Peer) MonitorCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.events {
		if e.Event == "monitor" && e.Name == name {
			n++
		}
	}
	return n
}

// MonitorNames returns the names of the monitor events so far.
func (p *Peer) MonitorNames() []string {
	var names []string
	for _, e := range p.Events() {
		if e.Event == "monitor" {
			names = append(names, e.Name)
		}
	}
	return names
}

// Do sends one operation and waits for its reply. An "error" reply is
// returned as an error.
func (p *Peer) Do(ctx context.Context, op map[string]any) (Event, error) {
	p.wmu.Lock()
	p.nextID++
	id := p.nextID
	op["id"] = id
	line, err := json.Marshal(op)
	if err == nil && p.stdin == nil {
		err = errors.New("peer closed")
	}
	if err == nil {
		_, err = p.stdin.Write(append(line, '\n'))
	}
	p.wmu.Unlock()
	if err != nil {
		return Event{}, fmt.Errorf("pypeer: sending %v: %w", op["op"], err)
	}
	for {
		p.mu.Lock()
		ev, ok := p.replies[id]
		changed, exited := p.changed, p.exited
		p.mu.Unlock()
		if ok {
			if ev.Event == "error" {
				return ev, fmt.Errorf("pypeer: %v: %s", op["op"], ev.Error)
			}
			return ev, nil
		}
		if exited {
			return Event{}, fmt.Errorf("pypeer: exited before answering %v; stderr:\n%s", op["op"], p.Stderr())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("pypeer: waiting for %v: %w", op["op"], ctx.Err())
		}
	}
}

// Send sends one multi-part message.
func (p *Peer) Send(ctx context.Context, parts ...[]byte) error {
	_, err := p.Do(ctx, map[string]any{"op": "send", "parts": parts})
	return err
}

// Publish sends the same message repeat times, interval apart, on any
// socket type: for a PUB, which drops messages until a subscription has
// arrived, or for a steady stream of traffic.
func (p *Peer) Publish(ctx context.Context, repeat int, interval time.Duration, parts ...[]byte) error {
	_, err := p.Do(ctx, map[string]any{"op": "send", "parts": parts, "repeat": repeat, "interval_ms": interval.Milliseconds()})
	return err
}

// ErrTimeout is returned by Recv and Echo when nothing arrived in time.
var ErrTimeout = errors.New("pypeer: timed out")

// Recv receives one message within timeout, with the message properties
// named in props (e.g. "User-Id", "Socket-Type") as read from its first
// part.
func (p *Peer) Recv(ctx context.Context, timeout time.Duration, props ...string) (Event, error) {
	return p.recv(ctx, timeout, 0, props)
}

// RecvLast is Recv reading the properties from the message's last part
// instead: a ROUTER's first part is the routing id it made itself, which
// carries no metadata, while every part of a message that came off the
// wire carries the connection's.
func (p *Peer) RecvLast(ctx context.Context, timeout time.Duration, props ...string) (Event, error) {
	return p.recv(ctx, timeout, -1, props)
}

// recv receives one message, reading props from part propsPart (-1 is the
// last).
func (p *Peer) recv(ctx context.Context, timeout time.Duration, propsPart int, props []string) (Event, error) {
	if props == nil {
		props = []string{}
	}
	op := map[string]any{"op": "recv", "timeout_ms": timeout.Milliseconds(), "props": props}
	if propsPart != 0 {
		op["props_part"] = propsPart
	}
	ev, err := p.Do(ctx, op)
	if err == nil && ev.Event == "timeout" {
		return ev, ErrTimeout
	}
	return ev, err
}

// Prop returns the received message's property name, "" when the peer
// reported it absent or it was not asked for.
func (e Event) Prop(name string) string {
	if v := e.Props[name]; v != nil {
		return *v
	}
	return ""
}

// Echo receives and sends back count messages, each within timeout.
func (p *Peer) Echo(ctx context.Context, count int, timeout time.Duration) error {
	ev, err := p.Do(ctx, map[string]any{"op": "echo", "count": count, "timeout_ms": timeout.Milliseconds()})
	if err == nil && ev.Event == "timeout" {
		return fmt.Errorf("%w after echoing %d of %d", ErrTimeout, ev.Count, count)
	}
	return err
}

// Subscribe adds a subscription (SUB, XSUB).
func (p *Peer) Subscribe(ctx context.Context, topic []byte) error {
	_, err := p.Do(ctx, map[string]any{"op": "subscribe", "topic": topic})
	return err
}

// Close asks the peer to quit and waits for it, killing it after a few
// seconds. It is idempotent.
func (p *Peer) Close() error {
	p.wmu.Lock()
	if p.stdin != nil {
		_, _ = p.stdin.Write([]byte("{\"op\":\"quit\"}\n"))
		_ = p.stdin.Close()
		p.stdin = nil
	} else {
		p.wmu.Unlock()
		return nil
	}
	p.wmu.Unlock()
	var err error
	select {
	case err = <-p.waitErr:
	case <-time.After(5 * time.Second):
		p.cancel()
		err = <-p.waitErr
	}
	p.cancel()
	return err
}

// isSecretFlag reports whether the flag --name=value carries a secret key
// (--curve-secret-key, or any such flag passed through Options.Extra).
func isSecretFlag(name string) bool { return strings.Contains(name, "secret") }

// redactedArgs returns args with the value of every secret-key flag
// replaced, and those values cut out of the other flags too (a key passed
// again through Options.Extra), so a failing test never prints a secret
// key. It is the only form in which this package prints the command line.
func redactedArgs(args []string) []string {
	secrets := secretValues(args)
	out := make([]string, len(args))
	for i, a := range args {
		if name, _, ok := strings.Cut(a, "="); ok && isSecretFlag(name) {
			a = name + "=[redacted]"
		}
		out[i] = redactValues(a, secrets)
	}
	return out
}

// secretValues returns the values of the secret-key flags in args.
func secretValues(args []string) []string {
	var out []string
	for _, a := range args {
		if name, v, ok := strings.Cut(a, "="); ok && isSecretFlag(name) && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// redact cuts the peer's secret keys out of s, the text of its stderr or of
// an error it reported.
func (p *Peer) redact(s string) string { return redactValues(s, p.secrets) }

// redactValues replaces every occurrence of each of secrets in s.
func redactValues(s string, secrets []string) string {
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "[redacted]")
	}
	return s
}

// Format prints o as its command line with the secret keys redacted, for
// every verb (%v, %+v, %#v, %s), so a test that prints its Options shows no
// secret key.
func (o Options) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, strings.Join(redactedArgs(o.Args()), " "))
}
