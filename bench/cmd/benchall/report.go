package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// report is the Markdown report: printed to stdout as it grows, and kept
// whole for the results file.
type report struct {
	o   options
	buf strings.Builder
}

// newReport starts the report with what the numbers depend on: date,
// machine, versions, command, load and method.
func newReport(ctx context.Context, o options) *report {
	r := &report{o: o}
	r.addf("# zmqauth benchmarks: side by side with libzmq\n\n")
	r.addf("| | |\n| --- | --- |\n")
	r.addf("| date | %s |\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	r.addf("| machine | %d CPUs (`nproc`), %s, %s |\n", runtime.NumCPU(), cpuModel(), memTotal())
	r.addf("| libzmq | %s (C programs: `gcc -O2 ... -lzmq`) |\n", libzmqVersion(ctx))
	r.addf("| Go | %s |\n", output(ctx, "go", "version"))
	r.addf("| command | `%s` |\n", o.command)
	r.addf("| load at start | `%s` |\n", output(ctx, "uptime"))
	r.addf("\nMethod: every number is the median of %d runs; the variants of each benchmark run interleaved "+
		"(A, B, A, B, ...) so that changes in the machine's load hit all of them. A run measures for %s after %s "+
		"of warm-up, over 127.0.0.1. The \"runs\" columns list every run, to show the noise. "+
		"MB/s is 10^6 bytes of payload per second.\n",
		o.reps, o.duration, o.warmup)
	return r
}

// addf appends to the report and prints it.
func (r *report) addf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.buf.WriteString(s)
	fmt.Print(s)
}

// finish records the load at the end.
func (r *report) finish(ctx context.Context) {
	r.addf("\nLoad at the end: `%s`\n", output(ctx, "uptime"))
}

// String returns the whole report.
func (r *report) String() string { return r.buf.String() }

// table appends a Markdown table with aligned columns.
func (r *report) table(header []string, rows [][]string) {
	width := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	line := func(cells []string) string {
		var sb strings.Builder
		sb.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&sb, " %s%s |", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		return sb.String() + "\n"
	}
	var sb strings.Builder
	sb.WriteString("\n" + line(header))
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", max(3, width[i]))
	}
	sb.WriteString(line(sep))
	for _, row := range rows {
		sb.WriteString(line(row))
	}
	r.addf("%s", sb.String())
}

// series holds one metric over the runs of a benchmark variant.
type series []float64

// median returns the median, or 0 when there are no values.
func (s series) median() float64 {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// runs formats every value with f, separated by " / ".
func (s series) runs(f func(float64) string) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = f(v)
	}
	return strings.Join(parts, " / ")
}

// Number formats.

func fInt(v float64) string { return fmt.Sprintf("%.0f", v) }

// fCount formats a rate compactly: 1234567 -> "1.23 M", 12345 -> "12.3 k".
func fCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f k", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fMB(v float64) string { return fmt.Sprintf("%.1f", v/1e6) }

func fUs(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fRatio(v float64) string { return fmt.Sprintf("%.2f×", v) }

// verdict says whether a goal is met.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// sizeName names a message size.
func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// Machine facts.

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name", "unknown CPU")
}

func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal", "")
	var kb int64
	if _, err := fmt.Sscanf(v, "%d kB", &kb); err != nil {
		return "unknown memory"
	}
	return fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name, def string) string {
	f, err := os.Open(path)
	if err != nil {
		return def
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return def
}

// libzmqVersion names the libzmq the C programs link: pkg-config's version
// and, on Debian, the package's.
func libzmqVersion(ctx context.Context) string {
	v := output(ctx, "pkg-config", "--modversion", "libzmq")
	if deb := output(ctx, "dpkg-query", "-W", "-f", "${Version}", "libzmq5"); deb != "" && !strings.Contains(deb, "no packages") {
		v += " (Debian libzmq5 " + deb + ")"
	}
	return v
}

// output runs a command and returns its trimmed output, or "" on failure.
func output(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
