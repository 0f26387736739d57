package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// process is one program the demo started, with its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// processes starts programs and stops every one of them at the end.
type processes struct {
	dir  string
	mu   sync.Mutex
	list []*process
}

// start runs name with args, logging to DIR/<label>.log.
func (p *processes) start(ctx context.Context, label, name string, args ...string) (*process, error) {
	logPath := filepath.Join(p.dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("demo: start %s: %w", label, err)
	}
	proc := &process{name: label, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		f.Close()
		close(proc.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, proc)
	p.mu.Unlock()
	return proc, nil
}

// stop ends one process: SIGTERM, then SIGKILL after a grace period.
func (proc *process) stop(grace time.Duration) {
	select {
	case <-proc.done:
		return
	default:
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.done:
	case <-time.After(grace):
		_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL)
		<-proc.done
	}
}

// kill ends one process at once, as a crash would.
func (proc *process) kill() {
	_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL)
	<-proc.done
}

// exited reports whether the process has ended, and how.
func (proc *process) exited() (bool, error) {
	select {
	case <-proc.done:
		return true, proc.err
	default:
		return false, nil
	}
}

// stopAll stops every process, newest first.
func (p *processes) stopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitReady polls url until it answers 200, the process exits, or ctx ends.
func waitReady(ctx context.Context, proc *process, url string) error {
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		if done, err := proc.exited(); done {
			return fmt.Errorf("demo: %s exited before it was ready (%v); see %s", proc.name, err, proc.log)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %s not ready at %s (last: %s); see %s: %w", proc.name, url, last, proc.log, errors.Join(ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
