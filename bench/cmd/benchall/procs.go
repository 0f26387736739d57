package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts the benchmark's processes and is the one place that stops
// them: each runs in its own process group, dies with the driver
// (Pdeathsig), and killAll ends those still running.
type procs struct {
	logDir string

	mu      sync.Mutex
	seq     int
	running map[*proc]struct{}
}

// proc is one started process. Its standard output is read line by line
// (the "ready ..." and "result ..." protocol); its standard error goes to
// a log file, quoted when something fails.
type proc struct {
	name    string
	cmd     *exec.Cmd
	lines   chan string
	logPath string
	done    chan struct{}
	waitErr error
}

func newProcs(logDir string) *procs {
	return &procs{logDir: logDir, running: make(map[*proc]struct{})}
}

// start runs argv[0] with the rest of argv as arguments.
func (ps *procs) start(name string, argv ...string) (*proc, error) {
	return ps.startEnv(name, nil, argv...)
}

// startEnv is start with env (NAME=value) added to this process's
// environment.
func (ps *procs) startEnv(name string, env []string, argv ...string) (*proc, error) {
	ps.mu.Lock()
	ps.seq++
	logPath := filepath.Join(ps.logDir, fmt.Sprintf("%03d-%s.log", ps.seq, name))
	ps.mu.Unlock()
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 64), logPath: logPath, done: make(chan struct{})}
	ps.mu.Lock()
	ps.running[p] = struct{}{}
	ps.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.waitErr = cmd.Wait()
		logFile.Close()
		ps.mu.Lock()
		delete(ps.running, p)
		ps.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// expect returns the rest of the first output line that starts with
// prefix followed by a space, skipping other lines. It fails when the
// process ends first, after timeout, or when ctx ends.
func (p *proc) expect(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited (%v) before printing %q%s", p.name, p.waitErr, prefix, p.logTail())
			}
			if rest, found := strings.CutPrefix(line, prefix+" "); found {
				return rest, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s printed no %q within %s%s", p.name, prefix, timeout, p.logTail())
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s: %w", p.name, context.Cause(ctx))
		}
	}
}

// logTail returns the end of the process's standard error, for an error
// message.
func (p *proc) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil || len(data) == 0 {
		return ""
	}
	s := strings.TrimSpace(string(data))
	if lines := strings.Split(s, "\n"); len(lines) > 5 {
		s = strings.Join(lines[len(lines)-5:], "\n")
	}
	return "; its stderr ends with:\n" + s
}

// stop ends the process group: SIGTERM, then SIGKILL after two seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// killAll stops every process still running.
func (ps *procs) killAll() {
	ps.mu.Lock()
	var all []*proc
	for p := range ps.running {
		all = append(all, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// parseResult parses "k=v k=v ..." with numeric values.
func parseResult(s string) (map[string]float64, error) {
	m := make(map[string]float64)
	for _, field := range strings.Fields(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return nil, fmt.Errorf("malformed result field %q", field)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("result field %q: %w", field, err)
		}
		m[k] = f
	}
	if len(m) == 0 {
		return nil, errors.New("empty result")
	}
	return m, nil
}

// memory is a process's resident memory, from /proc/PID/status.
type memory struct {
	rss  int64 // VmRSS: every resident page mapped
	anon int64 // RssAnon: heap, stacks and other anonymous memory
	file int64 // RssFile: resident pages of mapped files (the binary)
}

// readMemory reads a process's resident memory in bytes.
func readMemory(pid int) (memory, error) {
	var m memory
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("reading memory: %w", err)
	}
	fields := map[string]*int64{"VmRSS": &m.rss, "RssAnon": &m.anon, "RssFile": &m.file}
	found := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return m, fmt.Errorf("parsing %s %q: %w", name, rest, err)
		}
		*dst = kb << 10
		found++
	}
	if found != len(fields) {
		return m, fmt.Errorf("VmRSS, RssAnon or RssFile missing from /proc/%d/status", pid)
	}
	return m, nil
}
