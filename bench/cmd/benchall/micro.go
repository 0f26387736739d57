package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// microPackages hold the engine's testing.B micro-benchmarks.
const microPackages = "./zmtp/..."

// micro runs the engine's own micro-benchmarks with a short -benchtime
// and includes their output verbatim.
func (b *bench) micro(ctx context.Context, rep *report) error {
	if b.o.micro <= 0 {
		return nil
	}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1",
		"-benchtime", b.o.micro.String(), microPackages}
	status("micro-benchmarks: go %s", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	rep.addf("\n## 4. Engine micro-benchmarks (`go %s`)\n\n", strings.Join(args, " "))
	rep.addf("In-process, no libzmq: per-operation cost of the frame hot path and of the CURVE handshake " +
		"and message boxes; see the benchmarks' doc comments in `zmtp/` and `zmtp/curve/`.\n\n")
	rep.addf("```\n%s\n```\n", strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("go test -bench: %w", err)
	}
	return nil
}
