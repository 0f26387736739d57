package volume

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProjectSwapsContent(t *testing.T) {
	dir := t.TempDir()
	steps := []map[string][]byte{
		{"a.key": []byte("one"), "b.key": []byte("two")},
		{"a.key": []byte("uno")},
		{},
	}
	for i, data := range steps {
		if err := Project(dir, data, 0o600); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		visible := 0
		for _, e := range entries {
			if e.Name()[0] != '.' {
				visible++
			}
		}
		if visible != len(data) {
			t.Fatalf("step %d: %d visible files, want %d", i, visible, len(data))
		}
		for name, want := range data {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != string(want) {
				t.Fatalf("step %d: %s = %q, %v; want %q", i, name, got, err, want)
			}
		}
	}
	stamps, _ := filepath.Glob(filepath.Join(dir, "..20*"))
	if len(stamps) != 1 {
		t.Fatalf("old data directories left behind: %v", stamps)
	}
}

func TestProjectRefusesPathKeys(t *testing.T) {
	if err := Project(t.TempDir(), map[string][]byte{"../escape": nil}, 0o600); err == nil {
		t.Fatal("a key with a path separator was accepted")
	}
}
