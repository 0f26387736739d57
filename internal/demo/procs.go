package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Process is one program a Rig started, with its output in a log file.
type Process struct {
	// Name is the label the program was started with.
	Name string
	// Log is the file receiving its output (stderr only when its stdout
	// is read by the caller, as for a Stream).
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Processes starts programs and stops every one of them at the end.
type Processes struct {
	// Dir receives the programs' log files, DIR/<label>.log.
	Dir  string
	mu   sync.Mutex
	list []*Process
}

// Start runs name with args, logging to DIR/<label>.log. The process is
// sent SIGTERM when ctx ends, and stopped by StopAll at the latest.
func (p *Processes) Start(ctx context.Context, label, name string, args ...string) (*Process, error) {
	return p.start(ctx, label, name, args, nil)
}

// start runs name with args, its stderr (and its stdout, unless pipes says
// otherwise) in DIR/<label>.log. pipes, if set, are the child's stdin and
// stdout ends of pipes the caller reads and writes; they are closed in this
// process once the child has them.
func (p *Processes) start(ctx context.Context, label, name string, args []string, pipes *childPipes) (*Process, error) {
	logPath := filepath.Join(p.Dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if pipes != nil {
		cmd.Stdin, cmd.Stdout = pipes.stdin, pipes.stdout
		defer pipes.stdin.Close()
		defer pipes.stdout.Close()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("demo: start %s: %w", label, err)
	}
	proc := &Process{Name: label, cmd: cmd, Log: logPath, done: make(chan struct{})}
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

// childPipes are the child's ends of its stdin and stdout pipes. They are
// *os.File, so exec hands them to the child as they are and Wait never
// closes the parent's ends under a reader.
type childPipes struct{ stdin, stdout *os.File }

// Stop ends the process: SIGTERM, then SIGKILL to its process group after a
// grace period.
func (proc *Process) Stop(grace time.Duration) {
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

// Kill ends the process and its process group at once with SIGKILL, as a
// crash would, and waits for it.
func (proc *Process) Kill() {
	select {
	case <-proc.done:
		return
	default:
	}
	_ = syscall.Kill(-proc.cmd.Process.Pid, syscall.SIGKILL)
	<-proc.done
}

// Exited reports whether the process has ended, and how.
func (proc *Process) Exited() (bool, error) {
	select {
	case <-proc.done:
		return true, proc.err
	default:
		return false, nil
	}
}

// StopAll stops every process, newest first.
func (p *Processes) StopAll() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop(5 * time.Second)
	}
}

// Logs returns every process's log file, oldest first.
func (p *Processes) Logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	logs := make([]string, 0, len(p.list))
	for _, proc := range p.list {
		logs = append(logs, proc.Log)
	}
	return logs
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// HostPort returns "127.0.0.1:port".
func HostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// WaitReady polls url until it answers 200, the process exits, or ctx ends.
func WaitReady(ctx context.Context, proc *Process, url string) error {
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		if done, err := proc.Exited(); done {
			return fmt.Errorf("demo: %s exited before it was ready (%v); see %s", proc.Name, err, proc.Log)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
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
			return fmt.Errorf("demo: %s not ready at %s (last: %s); see %s: %w", proc.Name, url, last, proc.Log, errors.Join(ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
