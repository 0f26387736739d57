package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// hsGoal is the goal: our server spends at most 1/1.5 of libzmq's
// (with ZAP) CPU time per handshake.
const hsGoal = 1.5

// hsVariant is one CURVE server under the handshake load.
type hsVariant struct {
	name  string
	argv  func(b *bench) []string
	perHS series // server CPU µs per handshake
	rate  series // handshakes per second
}

// handshakes is benchmark 1: CURVE handshakes per second of server CPU.
// The same Go load generator (our CURVE client, -hs-conns goroutines each
// dialling, handshaking and closing in a loop, in its own process) runs
// against each server; each server counts its completed handshakes and
// measures its own CPU time (getrusage, all threads) over the window.
func (b *bench) handshakes(ctx context.Context, rep *report) error {
	variants := []*hsVariant{
		{name: "libzmq ROUTER + ZAP handler (answers 200)", argv: func(b *bench) []string {
			return []string{b.c["zmq_hs_server"], "tcp://127.0.0.1:*", b.serverKeys, "zap", secs(b.hsWarmup()), secs(b.o.duration)}
		}},
		{name: "zmqauth Go server + allowlist lookup", argv: func(b *bench) []string {
			return []string{b.benchpeer, "hs-server", "-keys", b.serverKeys, "-allowlist", b.allowlist,
				"-warmup", b.hsWarmup().String(), "-duration", b.o.duration.String()}
		}},
		{name: "libzmq ROUTER, no ZAP (accepts all; for information)", argv: func(b *bench) []string {
			return []string{b.c["zmq_hs_server"], "tcp://127.0.0.1:*", b.serverKeys, "nozap", secs(b.hsWarmup()), secs(b.o.duration)}
		}},
	}
	for i := range b.o.reps {
		for _, v := range variants {
			status("handshakes: %s, run %d/%d", v.name, i+1, b.o.reps)
			res, err := b.hsRun(ctx, v)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			v.perHS = append(v.perHS, res["cpu_us"]/res["handshakes"])
			v.rate = append(v.rate, res["handshakes"]/(res["wall_us"]/1e6))
		}
	}

	rep.addf("\n## 1. CURVE handshakes: server CPU per handshake\n\n")
	rep.addf("The same load generator (a separate Go process, our CURVE client, %d connections each dialling, "+
		"handshaking and closing in a loop) against each server, measured for %s after %s from the server's start. **µs/handshake** is the server process's CPU time "+
		"(user + system, every thread, from getrusage) divided by the handshakes it completed (libzmq: monitor "+
		"HANDSHAKE_SUCCEEDED events; Go: NewConn returning). **Ratio** is libzmq-with-ZAP's µs/handshake divided by "+
		"this server's: above 1 means less CPU than libzmq. Goal: Go server ≥ %.1f×. Handshakes/s depends on the "+
		"load generator and on whatever else runs on the machine; CPU per handshake is the number to compare.\n",
		b.o.hsConns, b.o.duration, b.hsWarmup(), hsGoal)
	base := variants[0].perHS.median()
	var rows [][]string
	for _, v := range variants {
		ratio := base / v.perHS.median()
		rows = append(rows, []string{v.name, fUs(v.perHS.median()), v.perHS.runs(fUs), fCount(v.rate.median()), fRatio(ratio)})
	}
	rep.table([]string{"server", "µs CPU/handshake", "runs", "handshakes/s", "ratio (vs libzmq + ZAP)"}, rows)
	ours := base / variants[1].perHS.median()
	rep.addf("\nGoal (Go server ≥ %.1f× libzmq + ZAP in CPU per handshake): %s (%.2f×).\n", hsGoal, verdict(ours >= hsGoal), ours)
	return nil
}

// hsWarmup is the handshake servers' warm-up: at least a second, since it
// starts with the server, before the load generator has started and
// ramped up.
func (b *bench) hsWarmup() time.Duration { return max(b.o.warmup, time.Second) }

// hsRun runs one server under the load generator and returns its result.
func (b *bench) hsRun(ctx context.Context, v *hsVariant) (map[string]float64, error) {
	name := strings.Fields(v.name)[0] + "-hs-server"
	srv, err := b.procs.start(name, v.argv(b)...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	addr, err := srv.expect(ctx, "ready", 10*time.Second)
	if err != nil {
		return nil, err
	}
	load, err := b.procs.start("hs-load", b.benchpeer, "hs-load", "-addr", addr, "-keys", b.clientKeys,
		"-server-key", b.serverPub, "-conns", fmt.Sprint(b.o.hsConns), "-max", "2m")
	if err != nil {
		return nil, err
	}
	defer load.stop()
	line, err := srv.expect(ctx, "result", b.hsWarmup()+b.o.duration+30*time.Second)
	if err != nil {
		return nil, err
	}
	res, err := parseResult(line)
	if err != nil {
		return nil, err
	}
	if res["handshakes"] <= 0 {
		load.stop()
		return nil, fmt.Errorf("no handshake completed (%s)%s", line, load.logTail())
	}
	return res, nil
}
