package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zmqauth/zmqauth/internal/promtext"
)

// Goals of the sidecar benchmarks (the issue's).
const (
	sidecarThrGoalSmall = 0.7      // at 64 B, sidecars ÷ direct
	sidecarThrGoalLarge = 1.0      // at 64 KiB
	sidecarAddedP50Goal = 60.0     // µs added at p50
	sidecarRSSGoal      = 64 << 20 // bytes with the idle sessions
	latencySize         = 64       // bytes per REQ/REP message
)

// sidecar is benchmark 3: libzmq CURVE end to end against the same libzmq
// programs talking NULL through an outbound and an inbound sidecar, and the
// inbound sidecar's memory with many idle sessions.
func (b *bench) sidecar(ctx context.Context, rep *report) error {
	rep.addf("\n## 3. The sidecar: libzmq CURVE direct vs libzmq NULL through two sidecars\n\n")
	if b.zmqErr != nil {
		rep.addf("Skipped: %v.\n", b.zmqErr)
		return nil
	}
	rep.addf("Direct: the libzmq programs of `bench/c` with CURVE (client → server). Through the sidecars: the same " +
		"programs with NULL, client → `zmqauth sidecar outbound` → (CURVE) → `zmqauth sidecar inbound` → server, " +
		"with key files made by `zmqauth keygen` and an allowlist directory holding the client's certificate. " +
		"Each run starts fresh processes, sidecars included.\n")

	// Throughput.
	direct := &thrVariant{name: "libzmq CURVE direct", run: b.libzmqCurveThr}
	relayed := &thrVariant{name: "libzmq NULL via sidecars", run: func(ctx context.Context, size int) (map[string]float64, error) {
		pull := []string{b.c["zmq_thr"], "pull", "tcp://127.0.0.1:*", fmt.Sprint(size), secs(b.o.warmup), secs(b.o.duration)}
		return b.viaSidecars(ctx, "thr", pull, func(endpoint string) []string {
			return []string{b.c["zmq_thr"], "push", endpoint, fmt.Sprint(size)}
		}, true)
	}}
	copied := &thrVariant{name: "libzmq NULL via two minimal C relays", run: func(ctx context.Context, size int) (map[string]float64, error) {
		pull := []string{b.c["zmq_thr"], "pull", "tcp://127.0.0.1:*", fmt.Sprint(size), secs(b.o.warmup), secs(b.o.duration)}
		return b.viaProxies(ctx, "thr-relay", func(to string) []string { return []string{b.c["tcp_relay"], to} }, pull,
			func(endpoint string) []string { return []string{b.c["zmq_thr"], "push", endpoint, fmt.Sprint(size)} }, true)
	}}
	if err := b.measureThr(ctx, "sidecar throughput", []*thrVariant{direct, relayed, copied}); err != nil {
		return err
	}
	rep.addf("\n### Throughput (PUSH → PULL, one connection)\n\n**Ratio** is through the sidecars ÷ direct, in messages/s. "+
		"Goals: ≥ %.1f× at 64 B, ≥ %.1f× at 64 KiB. For information, the last two columns put two minimal C relays "+
		"(`bench/c/tcp_relay.c`: blocking read() and write(), no framing, no crypto) where the sidecars are: the most "+
		"any pair of relays passes on this machine, where the two applications and the two relays share its CPUs.\n",
		sidecarThrGoalSmall, sidecarThrGoalLarge)
	var rows [][]string
	var verdicts []string
	for _, size := range sizes {
		d, s, c := direct.msgs[size], relayed.msgs[size], copied.msgs[size]
		ratio := s.median() / d.median()
		goal := sidecarThrGoalLarge
		if size < 1024 {
			goal = sidecarThrGoalSmall
		}
		rows = append(rows, []string{sizeName(size),
			fCount(d.median()), fMB(direct.bytes[size].median()), d.runs(fCount),
			fCount(s.median()), fMB(relayed.bytes[size].median()), s.runs(fCount),
			fRatio(ratio), fCount(c.median()), fRatio(c.median() / d.median())})
		verdicts = append(verdicts, fmt.Sprintf("%s ≥ %.1f×: %s (%.2f×)", sizeName(size), goal, verdict(ratio >= goal), ratio))
	}
	rep.table([]string{"size", "direct msgs/s", "MB/s", "runs", "via sidecars msgs/s", "MB/s", "runs", "ratio",
		"via C relays msgs/s", "C relays ÷ direct"}, rows)
	rep.addf("\nGoals: %s.\n", strings.Join(verdicts, "; "))

	// Latency.
	type latVariant struct {
		name     string
		run      func(ctx context.Context) (map[string]float64, error)
		p50, p99 series
	}
	lats := []*latVariant{
		{name: "libzmq CURVE direct", run: func(ctx context.Context) (map[string]float64, error) {
			return b.pair(ctx, "lat-direct", []string{b.c["zmq_lat"], "rep", "tcp://127.0.0.1:*", b.serverKeys},
				func(endpoint string) []string {
					return []string{b.c["zmq_lat"], "req", endpoint, fmt.Sprint(latencySize), secs(b.o.warmup),
						secs(b.o.duration), b.clientKeys, b.serverPub}
				}, false)
		}},
		{name: "libzmq NULL via sidecars", run: func(ctx context.Context) (map[string]float64, error) {
			return b.viaSidecars(ctx, "lat", []string{b.c["zmq_lat"], "rep", "tcp://127.0.0.1:*"},
				func(endpoint string) []string {
					return []string{b.c["zmq_lat"], "req", endpoint, fmt.Sprint(latencySize), secs(b.o.warmup), secs(b.o.duration)}
				}, false)
		}},
		{name: "libzmq NULL via two io.Copy Go proxies (for information)", run: func(ctx context.Context) (map[string]float64, error) {
			return b.viaProxies(ctx, "lat-proxy", func(to string) []string { return []string{b.benchpeer, "proxy", "-to", to} },
				[]string{b.c["zmq_lat"], "rep", "tcp://127.0.0.1:*"},
				func(endpoint string) []string {
					return []string{b.c["zmq_lat"], "req", endpoint, fmt.Sprint(latencySize), secs(b.o.warmup), secs(b.o.duration)}
				}, false)
		}},
		{name: "libzmq NULL via two minimal C relays (for information)", run: func(ctx context.Context) (map[string]float64, error) {
			return b.viaProxies(ctx, "lat-relay", func(to string) []string { return []string{b.c["tcp_relay"], to} },
				[]string{b.c["zmq_lat"], "rep", "tcp://127.0.0.1:*"},
				func(endpoint string) []string {
					return []string{b.c["zmq_lat"], "req", endpoint, fmt.Sprint(latencySize), secs(b.o.warmup), secs(b.o.duration)}
				}, false)
		}},
	}
	for i := range b.o.reps {
		for _, v := range lats {
			status("sidecar latency: %s, run %d/%d", v.name, i+1, b.o.reps)
			res, err := v.run(ctx)
			if err != nil {
				return fmt.Errorf("latency, %s: %w", v.name, err)
			}
			v.p50 = append(v.p50, res["p50_us"])
			v.p99 = append(v.p99, res["p99_us"])
		}
	}
	added := lats[1].p50.median() - lats[0].p50.median()
	rep.addf("\n### Round-trip latency (REQ → REP → REQ, %d B, one request at a time)\n\n"+
		"Every round trip of the window is recorded by the REQ side; the percentiles are of those. "+
		"**Added** is the sidecars' p50 minus direct p50 (two more hops each way: app → outbound → inbound → app). "+
		"The last two rows put two processes that only copy bytes where the sidecars are, no ZMTP, no crypto: "+
		"Go programs doing io.Copy (the least any Go relay costs here), and C programs (`bench/c/tcp_relay.c`) "+
		"with two threads per connection blocking in read() and write() (the least any relay costs here). "+
		"Goal: ≤ %.0f µs added at p50.\n", latencySize, sidecarAddedP50Goal)
	rows = nil
	for i, v := range lats {
		add := "—"
		if i > 0 {
			add = fUs(v.p50.median() - lats[0].p50.median())
		}
		rows = append(rows, []string{v.name, fUs(v.p50.median()), v.p50.runs(fUs), fUs(v.p99.median()), v.p99.runs(fUs), add})
	}
	rep.table([]string{"path", "p50 µs", "runs", "p99 µs", "runs", "added at p50 µs"}, rows)
	rep.addf("\nGoal (≤ %.0f µs added at p50): %s (%s µs).\n", sidecarAddedP50Goal, verdict(added <= sidecarAddedP50Goal), fUs(added))

	// Memory with idle sessions.
	var before, after, anon, file, perSession series
	var sessions []string
	for i := range b.o.reps {
		status("sidecar memory: %d idle sessions, run %d/%d", b.o.idle, i+1, b.o.reps)
		m, err := b.idleRSS(ctx)
		if err != nil {
			return fmt.Errorf("idle sessions: %w", err)
		}
		before = append(before, float64(m.before.rss))
		after = append(after, float64(m.after.rss))
		anon = append(anon, float64(m.after.anon))
		file = append(file, float64(m.after.file))
		perSession = append(perSession, float64(m.after.anon-m.before.anon)/float64(b.o.idle))
		sessions = append(sessions, m.sessions)
	}
	rep.addf("\n### Inbound sidecar memory with %d idle sessions\n\n"+
		"One Go program (our CURVE client) opens %d connections through one inbound sidecar to a libzmq REP "+
		"server (NULL) and holds them silent. The sidecar's memory (/proc/PID/status) is read when it is ready "+
		"with no session, and 2 s after the last session is up. VmRSS = RssAnon (heap, stacks) + RssFile (pages "+
		"of the 'zmqauth' binary, which also holds the manager, shared with other processes mapping it). "+
		"Per session: growth of RssAnon ÷ sessions. Goal: VmRSS ≤ %d MiB.\n",
		b.o.idle, b.o.idle, sidecarRSSGoal>>20)
	kib := func(v float64) string { return fmt.Sprintf("%.1f", v/1024) }
	mibs := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	rows = [][]string{{fmt.Sprint(b.o.idle), strings.Join(sessions, " / "), mibs(before.median()),
		mibs(after.median()), after.runs(mibs), mibs(anon.median()), mibs(file.median()), kib(perSession.median())}}
	rep.table([]string{"sessions", "sessions_active (metric)", "VmRSS idle MiB", "VmRSS with sessions MiB", "runs",
		"RssAnon MiB", "RssFile MiB", "KiB per session"}, rows)
	rep.addf("\nGoal (VmRSS ≤ %d MiB with %d sessions): %s (%s MiB).\n", sidecarRSSGoal>>20, b.o.idle,
		verdict(after.median() <= sidecarRSSGoal), mibs(after.median()))
	return nil
}

// pair starts a server that prints "ready ENDPOINT", then a client given
// that endpoint, and returns the result line of the server
// (resultFromServer) or of the client.
func (b *bench) pair(ctx context.Context, name string, server []string, client func(endpoint string) []string, resultFromServer bool) (map[string]float64, error) {
	srv, endpoint, err := b.startReady(ctx, name+"-server", server...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	return b.clientResult(ctx, name, srv, endpoint, client, resultFromServer)
}

// startReady starts a program that prints "ready ADDRESS" once it serves
// and returns it with that address; on failure nothing is left running.
func (b *bench) startReady(ctx context.Context, name string, argv ...string) (*proc, string, error) {
	p, err := b.procs.start(name, argv...)
	if err != nil {
		return nil, "", err
	}
	addr, err := p.expect(ctx, "ready", 10*time.Second)
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

// clientResult starts the client and waits for the result.
func (b *bench) clientResult(ctx context.Context, name string, srv *proc, endpoint string, client func(endpoint string) []string, resultFromServer bool) (map[string]float64, error) {
	cl, err := b.procs.start(name+"-client", client(endpoint)...)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	from, other := cl, srv
	if resultFromServer {
		from, other = srv, cl
	}
	line, err := from.expect(ctx, "result", b.o.warmup+b.o.duration+30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, other.logTail())
	}
	return parseResult(line)
}

// viaSidecars is pair with an inbound and an outbound sidecar between the
// client and the server.
func (b *bench) viaSidecars(ctx context.Context, name string, server []string, client func(endpoint string) []string, resultFromServer bool) (map[string]float64, error) {
	srv, endpoint, err := b.startReady(ctx, name+"-app-server", server...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	in, err := b.startInbound(ctx, strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return nil, err
	}
	defer in.proc.stop()
	out, err := b.startOutbound(ctx, in.listen)
	if err != nil {
		return nil, err
	}
	defer out.proc.stop()
	return b.clientResult(ctx, name+"-app", srv, "tcp://"+out.listen, client, resultFromServer)
}

// viaProxies is pair with two plain TCP relays where viaSidecars puts the
// sidecars, and NULL end to end. relay returns the command line of a relay
// to host:port, which prints "ready HOST:PORT" when it listens.
func (b *bench) viaProxies(ctx context.Context, name string, relay func(to string) []string, server []string, client func(endpoint string) []string, resultFromServer bool) (map[string]float64, error) {
	srv, endpoint, err := b.startReady(ctx, name+"-app-server", server...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	next := strings.TrimPrefix(endpoint, "tcp://")
	for _, hop := range []string{"server-side", "client-side"} {
		p, addr, err := b.startReady(ctx, name+"-"+hop+"-proxy", relay(next)...)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		next = strings.TrimSpace(addr)
	}
	return b.clientResult(ctx, name+"-app", srv, "tcp://"+next, client, resultFromServer)
}

// sidecarProc is a running sidecar route.
type sidecarProc struct {
	proc   *proc
	listen string // host:port it accepts connections on
	admin  string // host:port of /metrics, /readyz
}

// startInbound starts `zmqauth sidecar inbound` in front of app and waits
// until it is ready.
func (b *bench) startInbound(ctx context.Context, app string) (*sidecarProc, error) {
	listen, admin := freePort(), freePort()
	if listen == "" || admin == "" {
		return nil, fmt.Errorf("no free port on 127.0.0.1")
	}
	p, err := b.procs.start("sidecar-inbound", b.zmqauth, "sidecar", "inbound", "--listen", listen, "--app", app,
		"--keys", b.serverKeys, "--allowlist", b.allowlist, "--admin", admin, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	s := &sidecarProc{proc: p, listen: listen, admin: admin}
	if err := s.waitReady(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// startOutbound starts `zmqauth sidecar outbound` towards server and waits
// until it is ready.
func (b *bench) startOutbound(ctx context.Context, server string) (*sidecarProc, error) {
	listen, admin := freePort(), freePort()
	if listen == "" || admin == "" {
		return nil, fmt.Errorf("no free port on 127.0.0.1")
	}
	p, err := b.procs.start("sidecar-outbound", b.zmqauth, "sidecar", "outbound", "--listen", listen, "--server", server,
		"--server-key", b.serverPub, "--keys", b.clientKeys, "--admin", admin, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	s := &sidecarProc{proc: p, listen: listen, admin: admin}
	if err := s.waitReady(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200, for at most 15 s.
func (s *sidecarProc) waitReady(ctx context.Context) error {
	return waitHTTP(ctx, s.proc, "http://"+s.admin+"/readyz", 15*time.Second)
}

// waitHTTP polls url until it answers 200, the process exits, or timeout;
// the error says what it answered last.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v)%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready (last: %s): %w%s", p.name, url, last, ctx.Err(), p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// metric returns the sum of a metric's samples from /metrics, as text.
func (s *sidecarProc) metric(ctx context.Context, name string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.admin+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	samples, err := parseMetrics(resp)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(samples, func(m promtext.Sample) bool { return m.Name == name }) {
		return "n/a", nil
	}
	sum := promtext.Sum(samples, name, nil)
	return fmt.Sprintf("%.0f", sum), nil
}

// rssResult is the inbound sidecar's memory before and with the sessions.
type rssResult struct {
	before, after memory
	sessions      string // the sessions_active metric with the sessions
}

// idleRSS measures the inbound sidecar's memory with no session and with
// -idle-sessions idle ones.
func (b *bench) idleRSS(ctx context.Context) (rssResult, error) {
	var r rssResult
	app, err := b.procs.start("rss-app-server", b.c["zmq_lat"], "rep", "tcp://127.0.0.1:*")
	if err != nil {
		return r, err
	}
	defer app.stop()
	endpoint, err := app.expect(ctx, "ready", 10*time.Second)
	if err != nil {
		return r, err
	}
	in, err := b.startInbound(ctx, strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return r, err
	}
	defer in.proc.stop()
	if err := sleepCtx(ctx, time.Second); err != nil {
		return r, err
	}
	if r.before, err = readMemory(in.proc.pid()); err != nil {
		return r, err
	}
	idle, err := b.procs.start("idle-clients", b.benchpeer, "idle", "-addr", in.listen, "-n", fmt.Sprint(b.o.idle),
		"-keys", b.clientKeys, "-server-key", b.serverPub, "-socket-type", "DEALER")
	if err != nil {
		return r, err
	}
	defer idle.stop()
	if _, err := idle.expect(ctx, "ready", 2*time.Minute); err != nil {
		return r, fmt.Errorf("%w%s", err, in.proc.logTail())
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return r, err
	}
	if r.after, err = readMemory(in.proc.pid()); err != nil {
		return r, err
	}
	if r.sessions, err = in.metric(ctx, "zmqauth_sidecar_sessions_active"); err != nil {
		return r, err
	}
	return r, nil
}

// freePort returns a 127.0.0.1 address whose port was free a moment ago,
// or "" when none could be found.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
