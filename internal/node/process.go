package node

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// component is one of the node's programs, its output in LOGS/NAME.log.
type component struct {
	name string
	path string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (n *Node) startComponent(name, bin string, args ...string) (*component, error) {
	c := &component{name: name, path: bin, args: args, log: filepath.Join(n.layout.logs(), name+".log")}
	if err := c.start(); err != nil {
		return nil, err
	}
	n.components[name] = c
	return c, nil
}

func (c *component) start() error {
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	defer f.Close()
	cmd := exec.Command(c.path, c.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// A process group of its own: a signal to the test process's group
	// (^C) leaves the order of the shutdown to Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return nil
}

// running reports whether the process is still there; if not, why not,
// with the end of its log.
func (c *component) running() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); the end of %s:\n%s", c.name, c.err, c.log, tail(c.log, 15))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to grace, then SIGKILL.
func (c *component) stop(grace time.Duration) {
	if c.cmd == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
