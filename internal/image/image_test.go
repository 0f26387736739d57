package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// readLayer returns the headers of a gzip layer tar, in order.
func readLayer(t *testing.T, file string) []*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestTreeAddsParentsBeforeChildren(t *testing.T) {
	tr := tree{}
	tr.file("/usr/local/bin/x", 0o755, 0, 0, []byte("x"))
	tr.dir("/home/nonroot", 0o700, 65532, 65532)
	tr.symlink("/usr/local/bin/y", "x")
	file := filepath.Join(t.TempDir(), "l.tar.gz")
	if err := tr.writeLayer(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range readLayer(t, file) {
		names = append(names, h.Name)
		switch h.Name {
		case "home/nonroot/":
			if h.Uid != 65532 || h.Mode != 0o700 {
				t.Errorf("home/nonroot/: owner %d mode %#o", h.Uid, h.Mode)
			}
		case "usr/", "usr/local/", "home/":
			if h.Typeflag != tar.TypeDir || h.Uid != 0 || h.Mode != 0o755 {
				t.Errorf("%s: made-up parent type %q owner %d mode %#o, want a root 0755 directory", h.Name, h.Typeflag, h.Uid, h.Mode)
			}
		case "usr/local/bin/y":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "x" {
				t.Errorf("y: %q -> %q", h.Typeflag, h.Linkname)
			}
		}
	}
	want := []string{"home/", "home/nonroot/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/x", "usr/local/bin/y"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
}

// TestTarRootfs checks the root filesystem layer keeps modes, owners,
// symbolic and hard links, and leaves device files out.
func TestTarRootfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown and mknod")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/su"), []byte("su"), 0o755))
	must(syscall.Chmod(filepath.Join(dir, "usr/bin/su"), 0o4755))
	must(os.Link(filepath.Join(dir, "usr/bin/su"), filepath.Join(dir, "usr/bin/su2")))
	must(os.Symlink("su", filepath.Join(dir, "usr/bin/link")))
	must(os.Mkdir(filepath.Join(dir, "home"), 0o700))
	must(os.Chown(filepath.Join(dir, "home"), 65532, 65533))
	must(os.Mkdir(filepath.Join(dir, "dev"), 0o755))
	must(syscall.Mknod(filepath.Join(dir, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3))

	file := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	must(tarRootfs(context.Background(), dir, file))
	got := map[string]*tar.Header{}
	for _, h := range readLayer(t, file) {
		got[h.Name] = h
	}
	for _, tc := range []struct {
		name     string
		typ      byte
		mode     int64
		uid, gid int
		link     string
	}{
		{"usr/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/bin/su", tar.TypeReg, 0o4755, 0, 0, ""},
		{"usr/bin/su2", tar.TypeLink, 0o4755, 0, 0, "usr/bin/su"},
		{"usr/bin/link", tar.TypeSymlink, 0o777, 0, 0, "su"},
		{"home/", tar.TypeDir, 0o700, 65532, 65533, ""},
		{"dev/", tar.TypeDir, 0o755, 0, 0, ""},
	} {
		h, ok := got[tc.name]
		if !ok {
			t.Errorf("%s missing", tc.name)
			continue
		}
		if h.Typeflag != tc.typ || h.Mode&0o7777 != tc.mode || h.Uid != tc.uid || h.Gid != tc.gid || h.Linkname != tc.link {
			t.Errorf("%s: type %q mode %#o owner %d:%d link %q, want %q %#o %d:%d %q",
				tc.name, h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, h.Linkname, tc.typ, tc.mode, tc.uid, tc.gid, tc.link)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: names %q/%q from this machine's users", tc.name, h.Uname, h.Gname)
		}
	}
	if _, ok := got["dev/null"]; ok {
		t.Error("the device file dev/null is in the layer")
	}
}

// TestRemoveTreeUnmountsFirst checks that a leftover directory with a mount
// in it (as a killed debootstrap leaves /proc) is unmounted, not removed
// through.
func TestRemoveTreeUnmountsFirst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	stale := filepath.Join(dir, ".pyzmq-tmp-1", "rootfs", "proc")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", stale, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(stale, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(stale, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if mps, err := mountsUnder(dir); err != nil || len(mps) != 1 || mps[0] != stale {
		t.Fatalf("mountsUnder: %q %v, want [%s]", mps, err, stale)
	}
	if err := removeTree(filepath.Join(dir, ".pyzmq-tmp-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".pyzmq-tmp-1")); !os.IsNotExist(err) {
		t.Errorf("the stale directory is still there: %v", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`/a/b`, "/a/b"},
		{`/a\040b`, "/a b"},
		{`/x\011y\134z`, "/x\ty\\z"},
	} {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTagsAndOptions(t *testing.T) {
	for _, n := range Names() {
		tag, err := Tag(n)
		if err != nil || !strings.HasPrefix(tag, "zmqauth.local/"+n+":") {
			t.Errorf("Tag(%s) = %q, %v", n, tag, err)
		}
	}
	if _, err := Tag("nope"); err == nil {
		t.Error("Tag(nope): no error")
	}
	if _, err := Build(context.Background(), Options{Root: ".", OutDir: t.TempDir(), Only: []string{"nope"}}); err == nil {
		t.Error("Build with an unknown image: no error")
	}
	if _, err := Build(context.Background(), Options{OutDir: t.TempDir()}); err == nil {
		t.Error("Build without Root: no error")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("ZMQAUTH_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if d, _ := DefaultCacheDir(); d != "/x/zmqauth" {
		t.Errorf("with XDG_CACHE_HOME=/x: %s", d)
	}
	t.Setenv("ZMQAUTH_CACHE", "/c")
	if d, _ := DefaultCacheDir(); d != "/c" {
		t.Errorf("with ZMQAUTH_CACHE=/c: %s", d)
	}
}
