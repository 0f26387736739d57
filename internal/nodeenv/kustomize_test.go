package nodeenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallEditsKustomization: the image and the manager's arguments land
// in config/default's kustomization the way a user's edit would put them.
func TestInstallEditsKustomization(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kustomization.yaml")
	src, err := os.ReadFile(filepath.Join("..", "..", "config", "default", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setImage(path, "zmqauth.local/zmqauth:dev"); err != nil {
		t.Fatal(err)
	}
	if err := addManagerArgs(path, []string{"--rotation-propagation-delay=15s"}); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"newName: zmqauth.local/zmqauth", "newTag: dev", "name: " + ManagerDeployment, "path: /spec/template/spec/containers/0/args/-", "value: --rotation-propagation-delay=15s", "replacements:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the kustomization lacks %q:\n%s", want, out)
		}
	}
	if err := setImage(filepath.Join(dir, "missing.yaml"), "a:b"); err == nil {
		t.Error("setImage of a missing file: no error")
	}
	if err := setImage(path, "untagged"); err == nil || !strings.Contains(err.Error(), "no tag") {
		t.Errorf("setImage of an untagged image: %v, want an error saying it has no tag", err)
	}
}
