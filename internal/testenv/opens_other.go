//go:build !linux

package testenv

import "testing"

// Opens counts the opens of a path; only Linux (inotify) has them.
type Opens struct{}

// WatchOpens skips the test: counting opens needs inotify (Linux).
func WatchOpens(t testing.TB, path string) *Opens {
	t.Skip("counting opens needs inotify (Linux)")
	return nil
}

// Count returns 0.
func (o *Opens) Count() int64 { return 0 }
