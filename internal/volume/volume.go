// Package volume projects a Secret's or ConfigMap's data into a directory the
// way the kubelet mounts it into a pod: the files live in a timestamped
// directory and a "..data" symlink is swapped atomically to the new one, with
// one symlink per key pointing through "..data". The demo and the end-to-end
// suite have no kubelet (the local control plane runs no nodes), so they use
// this to give the sidecar exactly the directories it would see in a pod.
package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const dataLink = "..data"

// Project replaces the contents of dir with data, atomically for a reader
// that goes through the "..data" link. Keys that disappear are removed.
func Project(dir string, data map[string][]byte, mode os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	stamp, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.")+"*")
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	for name, value := range data {
		if strings.ContainsRune(name, '/') || strings.HasPrefix(name, "..") {
			return fmt.Errorf("volume: invalid key %q", name)
		}
		if err := os.WriteFile(filepath.Join(stamp, name), value, mode); err != nil {
			return fmt.Errorf("volume: %w", err)
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(stamp), tmpLink); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := os.Rename(tmpLink, filepath.Join(dir, dataLink)); err != nil {
		return fmt.Errorf("volume: swap %s: %w", dataLink, err)
	}
	for name := range data {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
			return fmt.Errorf("volume: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			continue
		}
		if _, keep := data[name]; !keep {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	if old != "" && old != filepath.Base(stamp) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
