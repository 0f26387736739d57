// Package watch reloads something whenever the files in a directory change:
// a mounted keypair Secret or allowlist ConfigMap.
//
// It watches the directory itself with fsnotify, not the files in it: the
// kubelet updates a mounted Secret or ConfigMap by writing a new timestamped
// directory and atomically swapping the "..data" symlink, which shows up as
// events on the directory, never on the visible files. A periodic re-check
// catches whatever the events miss (lost events, network file systems, a
// directory that did not exist yet or was replaced): it reloads when the
// directory's listing, sizes, times or link targets changed since the last
// reload, or when the last reload failed.
//
// A reload that keeps failing is retried at every check but reported once:
// again only when its error changes or after a reload succeeded in between.
// Trouble with the watch itself (it cannot be set up, say for want of
// inotify instances, or it reports an error) is no failed reload: it is
// logged, since the periodic check carries on without it.
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long Dir waits after an event for more before reloading,
// so a burst of changes (the kubelet's swap is several) costs one reload.
const Debounce = 50 * time.Millisecond

// DefaultInterval is the periodic re-check interval used when Dir is given
// a non-positive one.
const DefaultInterval = 10 * time.Second

// Dir calls reload once at start and then whenever anything in dir changes,
// until ctx ends; then it returns. Calls to reload never overlap. A failed
// reload goes to onError (which may be nil) and is tried again at the next
// change or periodic check; a failure that repeats with the same error is
// reported once, until a reload succeeds or the error changes, so onError
// sees each distinct failure once however long it lasts. interval is the
// period of the safety-net re-check (DefaultInterval if not positive).
// When the directory cannot be watched, or the watch reports an error, Dir
// logs it to log (nil: discarded) and carries on with the periodic check;
// onError never sees it.
func Dir(ctx context.Context, dir string, interval time.Duration, reload func() error, onError func(error), log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if onError == nil {
		onError = func(error) {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &watcher{dir: dir, interval: interval, reload: reload, onError: onError, log: log}
	defer w.close()
	w.ensureWatch()
	w.run()

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	pending := false // debounce is running

	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w.fsw != nil {
			events, errs = w.fsw.Events, w.fsw.Errors
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				w.dropWatch()
				continue
			}
			if ev.Name == filepath.Clean(dir) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The directory itself went away; the re-check re-adds it.
				w.dropWatch()
			}
			if !pending {
				pending = true
				debounce.Reset(Debounce)
			}
		case err, ok := <-errs:
			if !ok {
				w.dropWatch()
				continue
			}
			w.log.Warn("the file watch reported an error; changes are still picked up by polling",
				"dir", dir, "poll_interval", interval, "error", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) && !pending {
				pending = true
				debounce.Reset(Debounce)
			}
		case <-debounce.C:
			pending = false
			w.run()
		case <-ticker.C:
			w.ensureWatch()
			if !pending && (w.failed || w.fingerprint() != w.last) {
				w.run()
			}
		}
	}
}

// watcher is the state of one Dir call.
type watcher struct {
	dir      string
	interval time.Duration
	reload   func() error
	onError  func(error)
	log      *slog.Logger
	fsw      *fsnotify.Watcher
	last     string // fingerprint taken before the last reload
	failed   bool   // the last reload failed
	lastErr  string // the last failed reload's error, reported to onError
	warned   bool   // a failure to watch was logged and not yet cleared
}

// run reloads, fingerprinting the directory first, so a change made while
// reload runs is seen by the next check. A failure is reported unless the
// previous reload failed the same way: a broken source retried at every
// check would otherwise be logged and counted at every check.
func (w *watcher) run() {
	w.last = w.fingerprint()
	err := w.reload()
	if err == nil {
		w.failed, w.lastErr = false, ""
		return
	}
	if msg := err.Error(); !w.failed || msg != w.lastErr {
		w.onError(err)
		w.lastErr = msg
	}
	w.failed = true
}

// ensureWatch starts watching dir if it is not watched yet. When that fails
// (the directory does not exist yet, no inotify instance or watch is left)
// the periodic re-check carries on alone and tries again next time; the
// failure is logged once until a watch is set up.
func (w *watcher) ensureWatch() {
	if w.fsw != nil {
		return
	}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		if err = fsw.Add(w.dir); err != nil {
			fsw.Close()
		}
	}
	if err != nil {
		if !w.warned {
			w.warned = true
			w.log.Warn("could not set up the file watch; polling for changes continues",
				"dir", w.dir, "poll_interval", w.interval, "error", err)
		}
		return
	}
	w.warned = false
	w.fsw = fsw
}

// dropWatch closes the watcher so that the next re-check sets up a new one.
func (w *watcher) dropWatch() {
	if w.fsw != nil {
		w.fsw.Close()
		w.fsw = nil
	}
}

func (w *watcher) close() { w.dropWatch() }

// fingerprint summarises what a reload would see: every entry's name, type,
// size, modification time and mode, and for symlinks their target and what
// it resolves to. One level of subdirectories is included, so a kubelet
// "..data" swap and a change inside the linked directory both show.
func (w *watcher) fingerprint() string {
	h := sha256.New()
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		des, err := os.ReadDir(dir)
		if err != nil {
			fmt.Fprintf(h, "error %s: %v\n", dir, err)
			return
		}
		names := make([]string, 0, len(des))
		for _, de := range des {
			names = append(names, de.Name())
		}
		slices.Sort(names)
		for _, name := range names {
			p := filepath.Join(dir, name)
			fmt.Fprintf(h, "%s\x00", p)
			if lst, err := os.Lstat(p); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				fmt.Fprintf(h, "-> %s\x00", target)
			}
			st, err := os.Stat(p)
			if err != nil {
				fmt.Fprintf(h, "error %v\n", err)
				continue
			}
			fmt.Fprintf(h, "%v %d %d\n", st.Mode(), st.Size(), st.ModTime().UnixNano())
			if st.IsDir() && depth > 0 {
				walk(p, depth-1)
			}
		}
	}
	walk(w.dir, 1)
	return string(h.Sum(nil))
}
