// Package steps prints a demo's progress the way `make demo` shows it: each
// step numbered with its title, then "ok" or "FAILED" with the time it took,
// and indented lines saying what the step saw. The embedded demo
// (internal/demo) and the demo on a node (internal/nodedemo) both print
// through it, so their output reads the same.
package steps

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Printer numbers and prints steps on Out (nothing when Out is nil).
type Printer struct {
	Out io.Writer
	n   int
}

func (p *Printer) out() io.Writer {
	if p.Out == nil {
		return io.Discard
	}
	return p.Out
}

// Say prints one indented line under the current step.
func (p *Printer) Say(format string, args ...any) {
	fmt.Fprintf(p.out(), "       "+format+"\n", args...)
}

// SayLines prints text indented, one line at a time.
func (p *Printer) SayLines(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		p.Say("%s", line)
	}
}

// Do runs one numbered step and prints its outcome with the time it took;
// a failure is returned wrapped with the step's number and title.
func (p *Printer) Do(title string, fn func() error) error {
	p.n++
	fmt.Fprintf(p.out(), "[%2d] %s\n", p.n, title)
	began := time.Now()
	if err := fn(); err != nil {
		fmt.Fprintf(p.out(), "     FAILED after %s: %v\n", time.Since(began).Round(time.Millisecond), err)
		return fmt.Errorf("step %d (%s): %w", p.n, title, err)
	}
	fmt.Fprintf(p.out(), "     ok (%s)\n", time.Since(began).Round(time.Millisecond))
	return nil
}
