// Command benchall is `make bench`: it measures the zmqauth ZMTP engine and
// sidecar side by side with libzmq 4.3 in one run, and prints one Markdown
// table per benchmark, with ratios, to stdout and to a results file.
//
//  1. CURVE handshakes: server CPU time per handshake and handshakes/s of a
//     Go server (zmtp + zmtp/curve) and of a libzmq ROUTER with and without
//     a ZAP handler, under the same Go load generator.
//  2. CURVE throughput through one connection, 64 B and 64 KiB: libzmq
//     PUSH/PULL against the Go engine.
//  3. The sidecar: libzmq CURVE direct against the same libzmq programs
//     talking NULL through an outbound and an inbound sidecar (throughput,
//     REQ/REP round-trip latency), and the inbound sidecar's RSS holding
//     1,000 idle sessions.
//  4. The engine's testing.B micro-benchmarks (go test -bench ./zmtp/...).
//  5. The operator at scale: N CurveClients over 10 namespaces to their
//     servers' allowlists, on a fresh local control plane with the manager
//     as its own process, for each N of -scale-clients; time and the
//     manager's peak RSS.
//
// It builds what it needs into a temporary directory (the C programs of
// bench/c with gcc -O2 -lzmq, bench/cmd/benchpeer, cmd/zmqauth), creates
// throw-away keys there with `zmqauth keygen`, uses 127.0.0.1 only, and
// stops every process it started, also on error and on SIGINT/SIGTERM.
// Every number is the median of -reps runs, the variants of a benchmark
// interleaved so that a change in the machine's load hits all of them.
// It must run from the repository root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	reps     int
	warmup   time.Duration
	duration time.Duration
	hsConns  int
	idle     int
	micro    time.Duration
	out      string
	command  string
	only     string
	keepTemp bool

	scaleClients        string
	scaleTimeout        time.Duration
	scaleProfile        string
	scaleProfileSeconds int
	scaleFloor          bool
	scaleManager        string
	scaleGOMEMLIMIT     string
}

func main() {
	var o options
	flag.IntVar(&o.reps, "reps", 3, "runs of each measurement; the median is reported")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each measurement window")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "measurement window of each run")
	flag.IntVar(&o.hsConns, "hs-conns", 48, "concurrent connections of the handshake load generator")
	flag.IntVar(&o.idle, "idle-sessions", 1000, "idle sessions held through the inbound sidecar for its RSS")
	flag.DurationVar(&o.micro, "micro-benchtime", 200*time.Millisecond, "-benchtime of the go test micro-benchmarks (0: skip them)")
	flag.StringVar(&o.out, "out", "bench/results.md", "file the report is written to (empty: stdout only)")
	flag.StringVar(&o.command, "command", "", "the command line to record in the report (default: this program's)")
	flag.StringVar(&o.only, "only", "", "comma-separated sections to run: handshake, throughput, sidecar, micro, scale (default all)")
	flag.BoolVar(&o.keepTemp, "keep", false, "keep the temporary directory (binaries, logs; keys are always removed)")
	flag.StringVar(&o.scaleClients, "scale-clients", "100,1000,10000", "comma-separated numbers of CurveClients of the operator scale benchmark, each on a fresh control plane")
	flag.DurationVar(&o.scaleTimeout, "scale-timeout", 15*time.Minute, "give up on one scale run after this long")
	flag.StringVar(&o.scaleProfile, "scale-profile", "", "directory receiving CPU profiles of the manager and the API server (first -scale-profile-seconds) and the manager's heap profile (at the end) of each scale run")
	flag.BoolVar(&o.scaleFloor, "scale-floor", true, "also time the largest scale run's creates with no manager running: what the API server alone needs")
	flag.StringVar(&o.scaleManager, "scale-manager", "", "zmqauth binary to run as the manager in the scale runs (default: the one built from this tree), to compare versions")
	flag.StringVar(&o.scaleGOMEMLIMIT, "scale-gomemlimit", "", "GOMEMLIMIT of the manager in the scale runs (default: what config/manager/manager.yaml sets; \"off\": none)")
	flag.IntVar(&o.scaleProfileSeconds, "scale-profile-seconds", 30, "length of the CPU profile taken with -scale-profile")
	flag.Parse()
	if o.command == "" {
		o.command = "go run ./bench/cmd/benchall " + strings.Join(os.Args[1:], " ")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "benchall: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// run prepares the tools and keys, runs the selected sections and writes
// the report. A section that fails is reported as such; the others still
// run, and the error is returned at the end.
func run(ctx context.Context, o options) error {
	if _, err := os.Stat("bench/c"); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	b, err := setup(ctx, o)
	if b != nil {
		defer b.cleanup()
	}
	if err != nil {
		return err
	}
	rep := newReport(ctx, o)

	sections := []struct {
		name string
		run  func(context.Context, *report) error
	}{
		{"handshake", b.handshakes},
		{"throughput", b.throughput},
		{"sidecar", b.sidecar},
		{"micro", b.micro},
		{"scale", b.scale},
	}
	var errs []error
	for _, s := range sections {
		if !o.selected(s.name) {
			continue
		}
		if err := s.run(ctx, rep); err != nil {
			rep.addf("\n**%s: failed:** %v\n", s.name, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
		b.procs.killAll()
		rep.addf("\n_Load average (1, 5, 15 min) after this section: %s._\n", loadAverage())
		if ctx.Err() != nil {
			break
		}
	}
	rep.finish(ctx)
	if o.out != "" && ctx.Err() == nil {
		if err := os.WriteFile(o.out, []byte(rep.String()), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("writing the report: %w", err))
		} else {
			fmt.Fprintf(os.Stderr, "benchall: report written to %s\n", o.out)
		}
	}
	return errors.Join(errs...)
}

// selected reports whether section is to run.
func (o options) selected(section string) bool {
	if o.only == "" {
		return true
	}
	for s := range strings.SplitSeq(o.only, ",") {
		if strings.TrimSpace(s) == section {
			return true
		}
	}
	return false
}
