//go:build !linux

package sidecar

import "testing"

// opens counts the opens of a path; only Linux (inotify) has them.
type opens struct{}

func watchOpens(t *testing.T, path string) *opens {
	t.Skip("counting opens needs inotify (Linux)")
	return nil
}

func (o *opens) count() int64 { return 0 }
