//go:build linux

package testenv

import (
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"
)

// Opens counts how often a path (a file or a directory) is opened, by
// anyone, from inotify's IN_OPEN events: the positive signal that code which
// reads it ran, when what it did with what it read leaves no other trace.
type Opens struct{ n atomic.Int64 }

// WatchOpens starts counting the opens of path until the test ends. It
// skips the test where there is no inotify (see opens_other.go).
func WatchOpens(t testing.TB, path string) *Opens {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, path, syscall.IN_OPEN); err != nil {
		syscall.Close(fd)
		t.Fatalf("inotify watch %s: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	o := &Opens{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64*(syscall.SizeofInotifyEvent+syscall.NAME_MAX+1))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if ev.Mask&syscall.IN_OPEN != 0 {
					o.n.Add(1)
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return o
}

// Count returns the opens seen so far.
func (o *Opens) Count() int64 { return o.n.Load() }
