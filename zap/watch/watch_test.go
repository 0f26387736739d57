package watch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/zap/watch"
)

// within is how fast a change must be picked up.
const within = time.Second

// reloader records what each reload saw: the content of one file.
type reloader struct {
	path  string
	calls atomic.Int64
	ok    atomic.Int64 // reloads that succeeded
	seen  chan string
	fail  atomic.Bool
}

func newReloader(path string) *reloader {
	return &reloader{path: path, seen: make(chan string, 1000)}
}

func (r *reloader) reload() error {
	r.calls.Add(1)
	data, err := os.ReadFile(r.path)
	if err != nil {
		data = []byte("<" + filepath.Base(r.path) + " absent>")
	}
	r.seen <- string(data)
	if r.fail.Load() {
		return errors.New("reload failed on purpose")
	}
	r.ok.Add(1)
	return nil
}

// await waits until a reload has seen want.
func (r *reloader) await(t *testing.T, want string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(d)
	var last string
	for {
		select {
		case got := <-r.seen:
			if got == want {
				return time.Since(start)
			}
			last = got
		case <-timeout:
			t.Fatalf("no reload saw %q within %v (last seen %q)", want, d, last)
		}
	}
}

// start runs watch.Dir until the test ends and checks that it returns.
func start(t *testing.T, dir string, interval time.Duration, r *reloader, onError func(error)) {
	t.Helper()
	startLogged(t, dir, interval, r, onError, nil)
}

// startLogged is start with the watch's own logs going to logs (text, debug
// level); nil discards them.
func startLogged(t *testing.T, dir string, interval time.Duration, r *reloader, onError func(error), logs *testenv.LogBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Dir(ctx, dir, interval, r.reload, onError, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("watch.Dir did not return after its context ended")
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kubeletSwap updates a directory the way the kubelet's atomic writer
// updates a mounted ConfigMap: new timestamped directory, "..data" swapped
// by rename, visible links fixed, old directory removed.
func kubeletSwap(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	ts := "..2026_01_01_00_00_00." + version
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, ts, name), content)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirPicksUpChanges(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) // before the watch starts
		change func(t *testing.T, dir string)
		want   string // what reload must see afterwards
	}{
		{
			name:   "add",
			change: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "allow.key"), "v1") },
			want:   "v1",
		},
		{
			name:   "change in place",
			setup:  func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "allow.key"), "v1") },
			change: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "allow.key"), "v2") },
			want:   "v2",
		},
		{
			name:  "replace by rename",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "allow.key"), "v1") },
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ".tmp"), "v2")
				if err := os.Rename(filepath.Join(dir, ".tmp"), filepath.Join(dir, "allow.key")); err != nil {
					t.Fatal(err)
				}
			},
			want: "v2",
		},
		{
			name:  "remove",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "allow.key"), "v1") },
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "allow.key")); err != nil {
					t.Fatal(err)
				}
			},
			want: "<allow.key absent>",
		},
		{
			name:   "kubelet ..data swap",
			setup:  func(t *testing.T, dir string) { kubeletSwap(t, dir, "1", map[string]string{"allow.key": "v1"}) },
			change: func(t *testing.T, dir string) { kubeletSwap(t, dir, "2", map[string]string{"allow.key": "v2"}) },
			want:   "v2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			r := newReloader(filepath.Join(dir, "allow.key"))
			// The periodic re-check is far away: events must do the work.
			start(t, dir, time.Hour, r, func(err error) { t.Errorf("onError: %v", err) })
			initial, _ := os.ReadFile(r.path)
			want := string(initial)
			if want == "" {
				want = "<allow.key absent>"
			}
			r.await(t, want, within) // the reload at start
			tt.change(t, dir)
			took := r.await(t, tt.want, within)
			t.Logf("picked up in %v", took)
		})
	}
}

func TestDirDebouncesBursts(t *testing.T) {
	dir := t.TempDir()
	r := newReloader(filepath.Join(dir, "allow.key"))
	start(t, dir, time.Hour, r, nil)
	r.await(t, "<allow.key absent>", within)
	const writes = 50
	for i := range writes {
		writeFile(t, filepath.Join(dir, "allow.key"), "burst")
		writeFile(t, filepath.Join(dir, "other"), string(rune('a'+i%26)))
	}
	r.await(t, "burst", within)
	time.Sleep(3 * watch.Debounce)
	if n := r.calls.Load(); n > 1+writes/5 {
		t.Errorf("%d reloads for a burst of %d writes; debouncing should coalesce them", n-1, writes)
	}
}

// TestDirPeriodicCheck covers what events cannot: a directory that does not
// exist when the watch starts, and a reload that failed and must be retried
// though nothing changed.
func TestDirPeriodicCheck(t *testing.T) {
	t.Run("directory created later", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "mount")
		r := newReloader(filepath.Join(dir, "allow.key"))
		var mu sync.Mutex
		var errs []error
		var logs testenv.LogBuffer
		startLogged(t, dir, 100*time.Millisecond, r, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }, &logs)
		r.await(t, "<allow.key absent>", within)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "allow.key"), "late")
		r.await(t, "late", within)
		// Once the directory exists, events work again.
		time.Sleep(300 * time.Millisecond)
		writeFile(t, filepath.Join(dir, "allow.key"), "later")
		r.await(t, "later", within)
		mu.Lock()
		defer mu.Unlock()
		if len(errs) != 0 {
			t.Errorf("onError got %v; a directory that cannot be watched yet is no failed reload", errs)
		}
		if n := strings.Count(logs.String(), "could not set up the file watch"); n != 1 {
			t.Errorf("the missing directory was logged %d times, want once:\n%s", n, logs.String())
		}
	})
	t.Run("failed reload is retried", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "allow.key"), "v1")
		// Every check lists the directories in dir (fingerprint): the
		// opens of this one count the checks, which reload nothing when
		// nothing changed.
		probe := filepath.Join(dir, "probe")
		if err := os.Mkdir(probe, 0o755); err != nil {
			t.Fatal(err)
		}
		checks := testenv.WatchOpens(t, probe)
		r := newReloader(filepath.Join(dir, "allow.key"))
		r.fail.Store(true)
		errc := make(chan error, 100)
		start(t, dir, 100*time.Millisecond, r, func(err error) { errc <- err })
		r.await(t, "v1", within)
		select {
		case err := <-errc:
			if err.Error() != "reload failed on purpose" {
				t.Errorf("onError got %v", err)
			}
		case <-time.After(within):
			t.Fatal("the failed reload was not reported")
		}
		r.fail.Store(false)
		waitFor(t, "the failed reload retried with nothing changed, and succeeding", 3*within, func() bool { return r.ok.Load() > 0 })
		n, c := r.calls.Load(), checks.Count()
		// Checks run one after the other: when the third after the success
		// begins, two have run to their end.
		waitFor(t, "three periodic checks after the success", 3*within, func() bool { return checks.Count() >= c+3 })
		if m := r.calls.Load(); m != n {
			t.Errorf("%d reloads in the checks after a success with nothing changed; the periodic check should be quiet", m-n)
		}
	})
}

func TestDirReturnsOnCancel(t *testing.T) {
	dir := t.TempDir()
	r := newReloader(filepath.Join(dir, "allow.key"))
	// control watches the same directory and goes on running: when it has
	// reloaded for a change, a watch that is still running (events, the
	// debounce) has had the same chance to.
	control := newReloader(filepath.Join(dir, "allow.key"))
	start(t, dir, time.Hour, control, nil)
	control.await(t, "<allow.key absent>", within)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Dir(ctx, dir, time.Hour, r.reload, nil, nil)
	}()
	r.await(t, "<allow.key absent>", within)
	cancel()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatal("watch.Dir did not return within 1s of cancel")
	}
	n := r.calls.Load()
	for _, content := range []string{"after", "after again"} {
		writeFile(t, filepath.Join(dir, "allow.key"), content)
		control.await(t, content, within)
	}
	if r.calls.Load() != n {
		t.Error("reload called after watch.Dir returned")
	}
}

// TestDirReportsPersistentFailureOnce checks that a source that stays
// broken is retried at every check but reported (and so logged and
// counted by the caller) once per distinct failure: again only when the
// error changes, or when it breaks again after a reload succeeded.
func TestDirReportsPersistentFailureOnce(t *testing.T) {
	const interval = 20 * time.Millisecond
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "allow.key"), "v1")
	var calls, successes atomic.Int64
	var mu sync.Mutex
	failWith := "allow.key: malformed certificate"
	reload := func() error {
		calls.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if failWith == "" {
			successes.Add(1)
			return nil
		}
		return errors.New(failWith)
	}
	setFailure := func(msg string) { mu.Lock(); failWith = msg; mu.Unlock() }

	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var reported atomic.Int64
	onError := func(err error) {
		reported.Add(1)
		log.Error("allowlist not reloaded", "error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Dir(ctx, dir, interval, reload, onError, log)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// retried waits until reload has been called n more times, so that
	// each phase spans many periodic checks.
	retried := func(n int64) {
		t.Helper()
		target := calls.Load() + n
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("reload called %d times; the failed reload is not retried at every check", calls.Load())
			}
			time.Sleep(interval / 2)
		}
	}
	check := func(phase string, want int64, wantLines ...string) {
		t.Helper()
		text := logs.String()
		if got := reported.Load(); got != want {
			t.Errorf("%s: onError called %d times over %d reloads, want %d:\n%s", phase, got, calls.Load(), want, text)
		}
		if n := strings.Count(text, "\n"); n != len(wantLines) {
			t.Errorf("%s: %d log lines, want %d:\n%s", phase, n, len(wantLines), text)
		}
		for _, l := range wantLines {
			if !strings.Contains(text, l) {
				t.Errorf("%s: no log line says %q:\n%s", phase, l, text)
			}
		}
	}

	retried(15)
	check("same failure at every check", 1, "malformed certificate")

	setFailure("allow.key: permission denied")
	retried(15)
	check("the error changed", 2, "malformed certificate", "permission denied")

	setFailure("")
	waitUntil := time.Now().Add(5 * time.Second)
	for successes.Load() == 0 {
		if time.Now().After(waitUntil) {
			t.Fatal("the reload was not retried after the source was fixed")
		}
		time.Sleep(interval / 2)
	}
	check("recovered", 2, "malformed certificate", "permission denied")
	writeFile(t, filepath.Join(dir, "allow.key"), "v2") // a change, so the next check reloads again
	setFailure("allow.key: malformed certificate")
	retried(15)
	if n := strings.Count(logs.String(), "malformed certificate"); n != 2 {
		t.Errorf("the failure that came back after a recovery was logged %d times in all, want 2:\n%s", n, logs.String())
	}
	if got := reported.Load(); got != 3 {
		t.Errorf("onError called %d times in all, want 3 (one per distinct failure)", got)
	}
}

// TestDirWatchSetupFailure checks that a directory that cannot be watched
// is logged once, as the watch's own trouble (polling continues), and is
// never reported as a failed reload.
func TestDirWatchSetupFailure(t *testing.T) {
	const interval = 20 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "not-there")
	r := newReloader(filepath.Join(dir, "allow.key"))
	var logs testenv.LogBuffer
	var mu sync.Mutex
	var errs []error
	startLogged(t, dir, interval, r, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }, &logs)
	r.await(t, "<allow.key absent>", within)
	time.Sleep(15 * interval)

	text := logs.String()
	if n := strings.Count(text, "\n"); n != 1 {
		t.Fatalf("%d log lines over %v, want one:\n%s", n, 15*interval, text)
	}
	for _, want := range []string{"level=WARN", "could not set up the file watch; polling for changes continues", "dir=" + dir, fmt.Sprintf("poll_interval=%v", interval)} {
		if !strings.Contains(text, want) {
			t.Errorf("log %q does not say %q", text, want)
		}
	}
	if strings.Contains(text, "not reloaded") {
		t.Errorf("log %q calls the watch's failure a failed reload", text)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("onError got %v; not being able to watch is no failed reload", errs)
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
