package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/zmqauth/zmqauth/internal/dockerfile"
	images "github.com/zmqauth/zmqauth/internal/image"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

var (
	imagesOnce sync.Once
	imagesDir  string
	archives   map[string]images.Archive
	imagesErr  error
)

// builtImages builds the images internal/image makes (once per run): the
// Go ones always, pyzmq when its root filesystem is cached on this machine
// or ZMQAUTH_REQUIRE_DEPS=1 (then it is made: debootstrap, as root).
func builtImages(t *testing.T) map[string]images.Archive {
	t.Helper()
	imagesOnce.Do(func() {
		only := []string{images.Zmqauth, images.Pause, images.Examples}
		cache, err := images.DefaultCacheDir()
		if err != nil {
			imagesErr = err
			return
		}
		if _, err := os.Stat(images.PyzmqRootfsCache(cache, runtime.GOARCH)); err == nil || os.Getenv("ZMQAUTH_REQUIRE_DEPS") == "1" {
			only = append(only, images.Pyzmq)
		}
		imagesDir, imagesErr = os.MkdirTemp("", "zmqauth-images-test-")
		if imagesErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		var as []images.Archive
		as, imagesErr = images.Build(ctx, images.Options{Root: testenv.RepoRoot(t), OutDir: imagesDir, Only: only, CacheDir: cache})
		archives = map[string]images.Archive{}
		for _, a := range as {
			archives[a.Name] = a
		}
	})
	if imagesErr != nil {
		t.Fatalf("building the images: %v", imagesErr)
	}
	return archives
}

// entry is one file of an image, as its layer's tar has it.
type entry struct {
	hdr  *tar.Header
	data []byte // regular files up to 64 MiB
}

// readImage reads the archive back as containerd would and returns its
// config and its files, later layers over earlier ones. It checks that
// each layer lists every entry's parent directory before it.
func readImage(t *testing.T, a images.Archive) (*v1.ConfigFile, map[string]entry) {
	t.Helper()
	tag, err := name.NewTag(a.Tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(a.Path, &tag)
	if err != nil {
		t.Fatalf("reading %s back: %v", a.Path, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		t.Errorf("%d layers, %d diff IDs in the config", len(layers), len(cf.RootFS.DiffIDs))
	}
	files := map[string]entry{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		dirs := map[string]bool{".": true}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			p := path.Clean("/" + hdr.Name)
			rel := strings.TrimPrefix(p, "/")
			if parent := path.Dir(rel); !dirs[parent] {
				t.Errorf("layer %d: %s comes without its parent directory", i, hdr.Name)
				dirs[parent] = true // once
			}
			if hdr.Typeflag == tar.TypeDir {
				dirs[rel] = true
			}
			e := entry{hdr: hdr}
			if hdr.Typeflag == tar.TypeReg && hdr.Size <= 64<<20 {
				if e.data, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			}
			files[p] = e
		}
		rc.Close()
	}
	return cf, files
}

// wantEntry checks one file's type, mode and owner.
func wantEntry(t *testing.T, files map[string]entry, p string, typ byte, mode int64, uid, gid int) entry {
	t.Helper()
	e, ok := files[p]
	if !ok {
		t.Errorf("%s is missing", p)
		return entry{hdr: &tar.Header{}}
	}
	if e.hdr.Typeflag != typ || e.hdr.Mode&0o7777 != mode || e.hdr.Uid != uid || e.hdr.Gid != gid {
		t.Errorf("%s: type %q mode %#o owner %d:%d, want type %q mode %#o owner %d:%d",
			p, e.hdr.Typeflag, e.hdr.Mode&0o7777, e.hdr.Uid, e.hdr.Gid, typ, mode, uid, gid)
	}
	return e
}

// extract writes a file of the image to a temporary executable.
func extract(t *testing.T, e entry, name string) string {
	t.Helper()
	if e.data == nil {
		t.Fatalf("%s has no content", name)
	}
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, e.data, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// wantStatic checks that file is an ELF with no interpreter nor shared
// library: it runs without libc.
func wantStatic(t *testing.T, file string) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: it needs a dynamic loader", filepath.Base(file))
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("%s needs shared libraries %v (%v)", filepath.Base(file), libs, err)
	}
}

// TestZmqauthImageIsTheDockerfiles reads the zmqauth archive back and holds
// it to the Dockerfile: the binary was built with its go build line (the
// binary's build information records the environment and flags), the
// config has its final stage's USER and ENTRYPOINT, and the base has what
// distroless/static:nonroot gives.
func TestZmqauthImageIsTheDockerfiles(t *testing.T) {
	a := builtImages(t)[images.Zmqauth]
	if a.Tag != "zmqauth.local/zmqauth:dev" || filepath.Base(a.Path) != "zmqauth.tar" {
		t.Errorf("archive %+v, want zmqauth.local/zmqauth:dev in zmqauth.tar", a)
	}
	df, err := dockerfile.Parse(filepath.Join(testenv.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	final := df.Final()
	cf, files := readImage(t, a)

	c := cf.Config
	if !slices.Equal(c.Entrypoint, final.Entrypoint) || c.User != final.User {
		t.Errorf("config entrypoint %q user %q, the Dockerfile says %q and %q", c.Entrypoint, c.User, final.Entrypoint, final.User)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if c.WorkingDir != "/home/nonroot" {
		t.Errorf("working directory %q, want /home/nonroot (distroless nonroot)", c.WorkingDir)
	}
	for _, want := range []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("env %q lacks %s", c.Env, want)
		}
	}

	// The binary: where the final stage's COPY puts it, root's, static,
	// built with the Dockerfile's line, and it runs.
	g, err := df.GoBuild("linux", runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	bin := extract(t, wantEntry(t, files, g.Dest, tar.TypeReg, 0o755, 0, 0), "zmqauth")
	wantStatic(t, bin)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("the binary's build information: %v", err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if bi.Path != "github.com/zmqauth/zmqauth/cmd/zmqauth" {
		t.Errorf("the binary is %s, want cmd/zmqauth", bi.Path)
	}
	for k, v := range g.Env {
		if settings[k] != v {
			t.Errorf("the binary was built with %s=%q, the Dockerfile's line sets %q", k, settings[k], v)
		}
	}
	args := g.Args[1:] // after "build"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-trimpath":
			if settings["-trimpath"] != "true" {
				t.Error("the Dockerfile builds with -trimpath, the binary was not")
			}
		case a == "-ldflags" && i+1 < len(args):
			// go does not record -ldflags with -trimpath (go.dev/issue/52372):
			// check their effect instead.
			wantLdflags(t, bin, args[i+1])
			i++
		case a == "-o":
			i++
		case strings.HasPrefix(a, "-"):
			t.Errorf("the Dockerfile's go build has flag %s, which this test does not check yet", a)
		}
	}
	runHelp(t, bin, []string{"sidecar"})

	// What distroless/static:nonroot gives.
	passwd := wantEntry(t, files, "/etc/passwd", tar.TypeReg, 0o644, 0, 0)
	for _, line := range []string{"root:x:0:0:", "nobody:x:65534:65534:", "nonroot:x:65532:65532:nonroot:/home/nonroot:"} {
		if !bytes.Contains(passwd.data, []byte("\n"+line)) && !bytes.HasPrefix(passwd.data, []byte(line)) {
			t.Errorf("/etc/passwd lacks %s:\n%s", line, passwd.data)
		}
	}
	group := wantEntry(t, files, "/etc/group", tar.TypeReg, 0o644, 0, 0)
	for _, line := range []string{"root:x:0:", "nobody:x:65534:", "nonroot:x:65532:"} {
		if !bytes.Contains(group.data, []byte(line)) {
			t.Errorf("/etc/group lacks %s", line)
		}
	}
	if ns := wantEntry(t, files, "/etc/nsswitch.conf", tar.TypeReg, 0o644, 0, 0); !bytes.Contains(ns.data, []byte("hosts:")) {
		t.Errorf("/etc/nsswitch.conf has no hosts line:\n%s", ns.data)
	}
	if osr := wantEntry(t, files, "/etc/os-release", tar.TypeReg, 0o644, 0, 0); !bytes.Contains(osr.data, []byte("PRETTY_NAME=")) {
		t.Errorf("/etc/os-release has no PRETTY_NAME:\n%s", osr.data)
	}
	ca := wantEntry(t, files, "/etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, 0, 0)
	if host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err != nil || !bytes.Equal(ca.data, host) {
		t.Errorf("the image's CA bundle differs from this machine's (%v)", err)
	}
	if _, err := os.Stat("/usr/share/zoneinfo/UTC"); err == nil {
		wantEntry(t, files, "/usr/share/zoneinfo", tar.TypeDir, 0o755, 0, 0)
		if _, ok := files["/usr/share/zoneinfo/UTC"]; !ok {
			t.Error("/usr/share/zoneinfo/UTC is missing: the host's tzdata was not copied")
		}
	}
	wantEntry(t, files, "/tmp", tar.TypeDir, 0o1777, 0, 0)
	wantEntry(t, files, "/home/nonroot", tar.TypeDir, 0o700, 65532, 65532)
	// What the older tests assume of the base is there.
	for _, p := range distrolessStatic {
		if _, ok := files[p]; !ok {
			t.Errorf("%s (distroless/static) is missing", p)
		}
	}
}

// TestPauseImage checks the sandbox image: /pause alone, static, user
// 65535, and it exits 0 on SIGTERM.
func TestPauseImage(t *testing.T) {
	a := builtImages(t)[images.Pause]
	if a.Tag != "zmqauth.local/pause:3.10" {
		t.Errorf("tag %s", a.Tag)
	}
	cf, files := readImage(t, a)
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" {
		t.Errorf("entrypoint %q user %q, want [/pause] 65535:65535", cf.Config.Entrypoint, cf.Config.User)
	}
	bin := extract(t, wantEntry(t, files, "/pause", tar.TypeReg, 0o755, 0, 0), "pause")
	wantStatic(t, bin)

	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause on SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("pause did not exit on SIGTERM")
	}
}

// TestExamplesImage checks the zmq4 examples are in the image, static.
func TestExamplesImage(t *testing.T) {
	a := builtImages(t)[images.Examples]
	cf, files := readImage(t, a)
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	for _, p := range []string{"rep-server", "req-client", "pub", "sub"} {
		e := wantEntry(t, files, "/usr/local/bin/"+p, tar.TypeReg, 0o755, 0, 0)
		if e.data != nil {
			wantStatic(t, extract(t, e, p))
		}
	}
	wantEntry(t, files, "/home/nonroot", tar.TypeDir, 0o700, 65532, 65532)
}

// TestPyzmqImage checks the Debian image: python3-zmq and libzmq in it, the
// example programs at /app, the trimmed directories empty, no device file;
// as root it runs the image's python3 in a chroot of it and imports zmq.
func TestPyzmqImage(t *testing.T) {
	a, ok := builtImages(t)[images.Pyzmq]
	if !ok {
		t.Skip("the pyzmq root filesystem is not cached on this machine (making it takes debootstrap, as root): " +
			"run `go run ./hack/images -out DIR -only pyzmq` once, or set ZMQAUTH_REQUIRE_DEPS=1")
	}
	cf, files := readImage(t, a)
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/bin/python3"}) || cf.Config.User != "65532:65532" {
		t.Errorf("entrypoint %q user %q, want [/usr/bin/python3] 65532:65532", cf.Config.Entrypoint, cf.Config.User)
	}
	wantEntry(t, files, "/app/rep_server.py", tar.TypeReg, 0o755, 0, 0)
	wantEntry(t, files, "/app/req_client.py", tar.TypeReg, 0o755, 0, 0)
	wantEntry(t, files, "/home/nonroot", tar.TypeDir, 0o700, 65532, 65532)
	if _, ok := files["/usr/lib/python3/dist-packages/zmq/__init__.py"]; !ok {
		t.Error("python3-zmq is not installed")
	}
	var libzmq, trimmed bool
	for p, e := range files {
		if strings.Contains(p, "/libzmq.so.5") {
			libzmq = true
		}
		for _, dir := range []string{"/usr/share/man/", "/usr/share/locale/", "/var/lib/apt/lists/", "/var/cache/apt/archives/"} {
			if strings.HasPrefix(p, dir) && e.hdr.Typeflag != tar.TypeDir {
				trimmed = true
			}
		}
		if strings.HasPrefix(p, "/usr/share/doc/") && e.hdr.Typeflag == tar.TypeReg && path.Base(p) != "copyright" {
			trimmed = true
		}
		if e.hdr.Typeflag == tar.TypeChar || e.hdr.Typeflag == tar.TypeBlock {
			t.Errorf("device file %s in the image", p)
		}
	}
	if !libzmq {
		t.Error("libzmq.so.5 is not in the image")
	}
	if trimmed {
		t.Error("documentation, manual pages, locales or apt lists were left in the image")
	}
	if !bytes.Contains(files["/etc/passwd"].data, []byte("nonroot:x:65532:65532:")) {
		t.Error("/etc/passwd lacks the nonroot user")
	}

	if os.Geteuid() != 0 {
		t.Log("not root: not running the image's python3 in a chroot")
		return
	}
	root := t.TempDir()
	for p, e := range files {
		dst := filepath.Join(root, p)
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, e.data, os.FileMode(e.hdr.Mode&0o777)); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Symlink(e.hdr.Linkname, dst)
		case tar.TypeLink:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, files[path.Clean("/"+e.hdr.Linkname)].data, os.FileMode(e.hdr.Mode&0o777)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chroot", root, "/usr/bin/python3", "-c", "import zmq; print(zmq.zmq_version())").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "4.3") {
		t.Errorf("python3 in the image: import zmq: %v: %s", err, out)
	}
}

// wantLdflags checks the effect of each linker flag of ldflags on file.
func wantLdflags(t *testing.T, file, ldflags string) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, fl := range strings.Fields(ldflags) {
		switch fl {
		case "-s":
			if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
				t.Errorf("the image's binary has a symbol table (%v); the Dockerfile links with -s", err)
			}
		case "-w":
			for _, s := range f.Sections {
				if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
					t.Errorf("the image's binary has DWARF section %s; the Dockerfile links with -w", s.Name)
				}
			}
		default:
			t.Errorf("the Dockerfile links with %s, which this test does not check yet", fl)
		}
	}
}
