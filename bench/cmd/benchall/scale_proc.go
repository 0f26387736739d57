package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/zmqauth/zmqauth/internal/promtext"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// procStat returns the command name, parent pid and CPU time (user +
// system) of a process from /proc/PID/stat.
func procStat(pid int) (comm string, ppid int, cpu time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, err
	}
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	comm = s[open+1 : closing]
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	f := strings.Fields(s[closing+1:])
	if len(f) < 13 {
		return "", 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return comm, ppid, time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuTimes returns the CPU time of the process pid (as "manager") and of
// the children of this process named in names (the control plane that
// envtest started).
func cpuTimes(pid int, names ...string) map[string]time.Duration {
	out := map[string]time.Duration{}
	if pid > 0 {
		if _, _, cpu, err := procStat(pid); err == nil {
			out["manager"] = cpu
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, ppid, cpu, err := procStat(child)
		if err != nil || ppid != self || !slices.Contains(names, comm) {
			continue
		}
		out[comm] += cpu
	}
	return out
}

// cpuSince returns the CPU time each process used between two cpuTimes.
func cpuSince(before, after map[string]time.Duration) map[string]time.Duration {
	out := make(map[string]time.Duration, len(after))
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: parsing %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

// controllerStats is what one controller of the manager did, from its
// metrics.
type controllerStats struct {
	name          string
	reconciles    float64
	seconds       float64 // summed over reconciles
	queueWaitMean float64 // seconds an item waited in the queue, on average
}

// parseMetrics reads a /metrics answer in the text format.
func parseMetrics(resp *http.Response) ([]promtext.Sample, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Request.URL, resp.Status)
	}
	return promtext.Parse(resp.Body)
}

// scrapeControllers reads the manager's controller-runtime metrics.
func scrapeControllers(ctx context.Context, url string) ([]controllerStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	by := map[string]*controllerStats{}
	var waitSum, waitCount = map[string]float64{}, map[string]float64{}
	get := func(name string) *controllerStats {
		if by[name] == nil {
			by[name] = &controllerStats{name: name}
		}
		return by[name]
	}
	samples, err := parseMetrics(resp)
	if err != nil {
		return nil, err
	}
	for _, m := range samples {
		switch m.Name {
		case "controller_runtime_reconcile_total":
			get(m.Labels["controller"]).reconciles += m.Value
		case "controller_runtime_reconcile_time_seconds_sum":
			get(m.Labels["controller"]).seconds += m.Value
		case "workqueue_queue_duration_seconds_sum":
			waitSum[m.Labels["name"]] += m.Value
		case "workqueue_queue_duration_seconds_count":
			waitCount[m.Labels["name"]] += m.Value
		}
	}
	var out []controllerStats
	for name, s := range by {
		if waitCount[name] > 0 {
			s.queueWaitMean = waitSum[name] / waitCount[name]
		}
		if s.reconciles > 0 {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b controllerStats) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// profileCPU fetches a CPU profile of the manager's first seconds into the
// -scale-profile directory; it runs alongside the measurement.
func (b *bench) profileCPU(ctx context.Context, pprofAddr string, n int, seconds int) {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds)
	if err := fetchTo(ctx, url, filepath.Join(b.o.scaleProfile, fmt.Sprintf("cpu-%d.pprof", n))); err != nil {
		status("scale: CPU profile: %v", err)
	}
}

// profileHeap fetches a heap profile of the manager into the
// -scale-profile directory.
func (b *bench) profileHeap(ctx context.Context, pprofAddr string, n int) {
	url := fmt.Sprintf("http://%s/debug/pprof/heap", pprofAddr)
	if err := fetchTo(ctx, url, filepath.Join(b.o.scaleProfile, fmt.Sprintf("heap-%d.pprof", n))); err != nil {
		status("scale: heap profile: %v", err)
	}
}

// fetchTo writes the body of url to path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// apiStat is the API server's work on one verb and resource.
type apiStat struct {
	what     string // "VERB resource[/subresource]"
	requests float64
	seconds  float64 // summed request durations
	conflict float64 // answered 409 Conflict
}

// scrapeAPIServer reads the API server's own request metrics and returns
// its requests by verb and resource, the costliest first (watches left
// out: they last as long as they are open).
func scrapeAPIServer(ctx context.Context, cfg *rest.Config) ([]apiStat, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	by := map[string]*apiStat{}
	samples, err := promtext.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	for _, m := range samples {
		if m.Name != "apiserver_request_duration_seconds_sum" && m.Name != "apiserver_request_duration_seconds_count" &&
			m.Name != "apiserver_request_total" {
			continue
		}
		l := m.Labels
		if l["verb"] == "WATCH" || l["verb"] == "CONNECT" {
			continue
		}
		what := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			what += "/" + l["subresource"]
		}
		if by[what] == nil {
			by[what] = &apiStat{what: what}
		}
		switch {
		case m.Name == "apiserver_request_total":
			if l["code"] == "409" {
				by[what].conflict += m.Value
			}
		case strings.HasSuffix(m.Name, "_sum"):
			by[what].seconds += m.Value
		default:
			by[what].requests += m.Value
		}
	}
	var out []apiStat
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b apiStat) int { return cmp.Compare(b.seconds, a.seconds) })
	return out, nil
}

// profileAPIServer fetches a CPU profile of the API server's first seconds
// into the -scale-profile directory; it runs alongside the measurement.
func (b *bench) profileAPIServer(ctx context.Context, cfg *rest.Config, n int, seconds int) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = time.Duration(seconds)*time.Second + time.Minute
	cs, err := kubernetes.NewForConfig(cfg)
	if err == nil {
		var raw []byte
		raw, err = cs.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(seconds)).DoRaw(ctx)
		if err == nil {
			err = os.WriteFile(filepath.Join(b.o.scaleProfile, fmt.Sprintf("apiserver-cpu-%d.pprof", n)), raw, 0o644)
		}
	}
	if err != nil {
		status("scale: API server CPU profile: %v", err)
	}
}
