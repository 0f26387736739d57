package steps

import (
	"errors"
	"strings"
	"testing"
)

// TestPrinter: steps are numbered in order, a failure names its step and
// wraps the cause, and what a step saw is indented under it.
func TestPrinter(t *testing.T) {
	var out strings.Builder
	p := &Printer{Out: &out}
	cause := errors.New("no reply")
	if err := p.Do("first", func() error { p.SayLines("a\nb\n"); return nil }); err != nil {
		t.Fatal(err)
	}
	err := p.Do("second", func() error { return cause })
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "step 2 (second)") {
		t.Errorf("the failed step's error: %v", err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want := []string{"[ 1] first", "       a", "       b", "     ok (", "[ 2] second", "     FAILED after "}
	if len(lines) != len(want) {
		t.Fatalf("printed %q, want lines starting %q", lines, want)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d: %q, want it to start %q", i+1, lines[i], want[i])
		}
	}
	(&Printer{}).Say("no writer: nothing printed, no panic")
}
