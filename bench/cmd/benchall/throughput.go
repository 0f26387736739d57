package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// sizes are the message sizes of the throughput benchmarks.
var sizes = []int{64, 64 << 10}

// thrVariant is one way of moving messages from a PUSH to a PULL.
type thrVariant struct {
	name string
	// run measures one run at size and returns the receiver's result
	// (msgs, bytes, secs).
	run func(ctx context.Context, size int) (map[string]float64, error)

	msgs, bytes map[int]series // per size: messages/s and bytes/s
}

// measureThr runs every variant at every size -reps times, interleaved.
func (b *bench) measureThr(ctx context.Context, what string, variants []*thrVariant) error {
	for _, v := range variants {
		v.msgs, v.bytes = make(map[int]series), make(map[int]series)
	}
	for i := range b.o.reps {
		for _, size := range sizes {
			for _, v := range variants {
				status("%s: %s, %s, run %d/%d", what, v.name, sizeName(size), i+1, b.o.reps)
				res, err := v.run(ctx, size)
				if err != nil {
					return fmt.Errorf("%s at %s: %w", v.name, sizeName(size), err)
				}
				if res["msgs"] <= 0 || res["secs"] <= 0 {
					return fmt.Errorf("%s at %s: nothing measured", v.name, sizeName(size))
				}
				v.msgs[size] = append(v.msgs[size], res["msgs"]/res["secs"])
				v.bytes[size] = append(v.bytes[size], res["bytes"]/res["secs"])
			}
		}
	}
	return nil
}

// pushPull starts a receiver, which prints "ready ENDPOINT", then a sender
// given that endpoint, and returns the receiver's result. Both are
// stopped before it returns.
func (b *bench) pushPull(ctx context.Context, name string, pull []string, push func(endpoint string) []string) (map[string]float64, error) {
	receiver, err := b.procs.start(name+"-pull", pull...)
	if err != nil {
		return nil, err
	}
	defer receiver.stop()
	endpoint, err := receiver.expect(ctx, "ready", 10*time.Second)
	if err != nil {
		return nil, err
	}
	sender, err := b.procs.start(name+"-push", push(endpoint)...)
	if err != nil {
		return nil, err
	}
	defer sender.stop()
	line, err := receiver.expect(ctx, "result", b.o.warmup+b.o.duration+30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, sender.logTail())
	}
	return parseResult(line)
}

// libzmqCurveThr is libzmq CURVE PUSH -> PULL, two processes.
func (b *bench) libzmqCurveThr(ctx context.Context, size int) (map[string]float64, error) {
	pull := []string{b.c["zmq_thr"], "pull", "tcp://127.0.0.1:*", fmt.Sprint(size),
		secs(b.o.warmup), secs(b.o.duration), b.serverKeys}
	return b.pushPull(ctx, "libzmq", pull, func(endpoint string) []string {
		return []string{b.c["zmq_thr"], "push", endpoint, fmt.Sprint(size), b.clientKeys, b.serverPub}
	})
}

// throughput is benchmark 2: CURVE messages through one connection.
func (b *bench) throughput(ctx context.Context, rep *report) error {
	libzmq := &thrVariant{name: "libzmq", run: b.libzmqCurveThr}
	ours := &thrVariant{name: "zmqauth", run: func(ctx context.Context, size int) (map[string]float64, error) {
		pull := []string{b.benchpeer, "thr-pull", "-keys", b.serverKeys, "-size", fmt.Sprint(size),
			"-warmup", b.o.warmup.String(), "-duration", b.o.duration.String()}
		return b.pushPull(ctx, "zmqauth", pull, func(endpoint string) []string {
			return []string{b.benchpeer, "thr-push", "-addr", strings.TrimPrefix(endpoint, "tcp://"),
				"-keys", b.clientKeys, "-server-key", b.serverPub, "-size", fmt.Sprint(size)}
		})
	}}
	if err := b.measureThr(ctx, "throughput", []*thrVariant{libzmq, ours}); err != nil {
		return err
	}

	rep.addf("\n## 2. CURVE throughput through one connection\n\n")
	rep.addf("PUSH (CURVE client) → PULL (CURVE server), one TCP connection, each side its own process. libzmq: " +
		"`bench/c/zmq_thr.c`, default options (one I/O thread). zmqauth: `bench/cmd/benchpeer` thr-push/thr-pull, " +
		"one `zmtp.Conn` per side, frames written back to back and sent as the 64 KiB write buffer fills, read " +
		"with a reused buffer. The receiver counts. **Ratio** is zmqauth ÷ libzmq in messages/s. Goal ≥ 1.0×.\n")
	var rows [][]string
	var verdicts []string
	for _, size := range sizes {
		l, o := libzmq.msgs[size], ours.msgs[size]
		ratio := o.median() / l.median()
		rows = append(rows, []string{sizeName(size),
			fCount(l.median()), fMB(libzmq.bytes[size].median()), l.runs(fCount),
			fCount(o.median()), fMB(ours.bytes[size].median()), o.runs(fCount),
			fRatio(ratio)})
		verdicts = append(verdicts, fmt.Sprintf("%s %s (%.2f×)", sizeName(size), verdict(ratio >= 1.0), ratio))
	}
	rep.table([]string{"size", "libzmq msgs/s", "MB/s", "runs", "zmqauth msgs/s", "MB/s", "runs", "ratio"}, rows)
	rep.addf("\nGoal (≥ 1.0× libzmq): %s.\n", strings.Join(verdicts, "; "))
	return nil
}

// secs formats a duration in seconds for the C programs.
func secs(d time.Duration) string { return fmt.Sprintf("%g", d.Seconds()) }
