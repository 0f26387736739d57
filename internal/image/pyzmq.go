package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The Debian root filesystem of the pyzmq image.
const (
	// DebianSuite is the Debian release debootstrap installs.
	DebianSuite = "bookworm"
	// DebianMirror is the mirror it installs from (the one apt uses here).
	DebianMirror = "http://deb.debian.org/debian"
	// rootfsRecipe names the way the cached root filesystem is made:
	// change it when pyzmqRootfs changes, so that caches are remade.
	rootfsRecipe = "v1"
	// debootstrapInclude are the packages debootstrap adds to minbase.
	// debootstrap does not resolve virtual packages: python3-zmq depends
	// on python3-cffi-backend-api-min/-max, which python3-cffi-backend
	// provides, so it is named too.
	debootstrapInclude = "python3-zmq,python3-cffi-backend"
)

// PyzmqRootfsCache returns the cached pyzmq root filesystem layer under
// cacheDir, for GOARCH arch (it may not exist yet).
func PyzmqRootfsCache(cacheDir, arch string) string {
	return filepath.Join(cacheDir, fmt.Sprintf("pyzmq-%s-%s-minbase-%s.tar.gz", DebianSuite, arch, rootfsRecipe))
}

// pyzmq builds the image of a Debian root filesystem with python3-zmq and
// the examples/pyzmq programs at /app.
func (b *builder) pyzmq(ctx context.Context) (v1.Image, error) {
	rootfs, err := b.pyzmqRootfs(ctx)
	if err != nil {
		return nil, err
	}
	base, err := layerFromFile(rootfs)
	if err != nil {
		return nil, err
	}
	progs, err := filepath.Glob(filepath.Join(b.opts.Root, "examples", "pyzmq", "*.py"))
	if err != nil {
		return nil, err
	}
	if len(progs) == 0 {
		return nil, errors.New("no examples/pyzmq/*.py")
	}
	t := tree{}
	for _, p := range progs {
		t.copyFile("/app/"+filepath.Base(p), 0o755, 0, 0, p)
	}
	app, err := b.layer(ctx, t)
	if err != nil {
		return nil, err
	}
	return b.newImage(v1.Config{
		Entrypoint: []string{"/usr/bin/python3"},
		Cmd:        []string{"/app/rep_server.py"},
		User:       fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
		WorkingDir: "/app",
		Env:        []string{"PATH=" + DefaultPath, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"},
	}, base, app)
}

// pyzmqRootfs returns the cached root filesystem layer, making it first if
// this machine has none: debootstrap into a temporary directory in the
// cache, trimmed, written as a layer and renamed into place only when
// whole, all under a lock so that concurrent builds make it once.
func (b *builder) pyzmqRootfs(ctx context.Context) (string, error) {
	dest := PyzmqRootfsCache(b.opts.CacheDir, b.arch)
	if _, err := os.Stat(dest); err == nil {
		fmt.Fprintf(b.opts.Log, "image: pyzmq: using the cached root filesystem %s\n", dest)
		return dest, nil
	}
	if err := os.MkdirAll(b.opts.CacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(b.opts.CacheDir, "pyzmq.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(dest); err == nil { // made while we waited
		return dest, nil
	}
	// Leftovers of runs that died; we hold the lock, so none is live.
	stale, _ := filepath.Glob(filepath.Join(b.opts.CacheDir, ".pyzmq-tmp-*"))
	for _, s := range stale {
		if err := removeTree(s); err != nil {
			return "", err
		}
	}
	if os.Geteuid() != 0 {
		return "", errors.New("making the pyzmq root filesystem needs root (debootstrap); run once as root or use -only to skip pyzmq")
	}
	debootstrap, err := b.ensureDebootstrap(ctx)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(b.opts.CacheDir, ".pyzmq-tmp-")
	if err != nil {
		return "", err
	}
	defer removeTree(tmp)
	dir := filepath.Join(tmp, "rootfs")

	start := time.Now()
	args := []string{"--variant=minbase", "--include=" + debootstrapInclude, DebianSuite, dir, DebianMirror}
	fmt.Fprintf(b.opts.Log, "image: pyzmq: debootstrap %s (once per machine, a few minutes)\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, debootstrap, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	cmd.WaitDelay = 10 * time.Second
	var tail lastLines
	cmd.Stdout, cmd.Stderr = &tail, &tail
	err = cmd.Run()
	// debootstrap mounts /proc (and more in some containers) in the target;
	// it unmounts them on exit, but not when killed.
	if uerr := unmountUnder(tmp); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		// debootstrap's own log says why; it goes with tmp.
		var logTail lastLines
		if b, rerr := os.ReadFile(filepath.Join(dir, "debootstrap", "debootstrap.log")); rerr == nil {
			logTail.Write(b)
		}
		return "", fmt.Errorf("debootstrap: %w\n%s\ndebootstrap.log:\n%s", err, tail.String(), logTail.String())
	}
	fmt.Fprintf(b.opts.Log, "image: pyzmq: debootstrap took %v\n", time.Since(start).Round(time.Second))
	if err := trimRootfs(dir); err != nil {
		return "", fmt.Errorf("trimming the root filesystem: %w", err)
	}
	if err := addNonroot(dir); err != nil {
		return "", err
	}
	layer := filepath.Join(tmp, "rootfs.tar.gz")
	if err := tarRootfs(ctx, dir, layer); err != nil {
		return "", err
	}
	if err := os.Rename(layer, dest); err != nil {
		return "", err
	}
	fi, _ := os.Stat(dest)
	fmt.Fprintf(b.opts.Log, "image: pyzmq: root filesystem cached as %s (%d MB compressed), %v in all\n", dest, fi.Size()>>20, time.Since(start).Round(time.Second))
	return dest, nil
}

// ensureDebootstrap returns debootstrap's path, installing it with apt-get
// if missing (updating the package lists only if the first install fails).
func (b *builder) ensureDebootstrap(ctx context.Context) (string, error) {
	find := func() (string, error) {
		if p, err := exec.LookPath("debootstrap"); err == nil {
			return p, nil
		}
		for _, p := range []string{"/usr/sbin/debootstrap", "/sbin/debootstrap"} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", errors.New("debootstrap not found")
	}
	if p, err := find(); err == nil {
		return p, nil
	}
	apt := func(args ...string) error {
		fmt.Fprintf(b.opts.Log, "image: apt-get %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := apt("install", "-y", "debootstrap"); err != nil {
		if err := apt("update"); err != nil {
			return "", err
		}
		if err := apt("install", "-y", "debootstrap"); err != nil {
			return "", err
		}
	}
	return find()
}

// trimRootfs removes what a container does not need: documentation (but
// the copyright files), manual pages, locales, apt's lists and caches, logs
// and backup files; and empties the host files debootstrap copied in.
func trimRootfs(dir string) error {
	emptyDirs := []string{
		"usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
		"var/lib/apt/lists", "var/cache/apt", "var/cache/debconf", "var/log", "tmp", "var/tmp",
	}
	for _, d := range emptyDirs {
		ents, err := os.ReadDir(filepath.Join(dir, d))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if d == "var/lib/apt/lists" && e.Name() == "partial" || d == "var/cache/apt" && e.Name() == "archives" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, d, e.Name())); err != nil {
				return err
			}
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "var/cache/apt/archives/*.deb"))
	olds, _ := filepath.Glob(filepath.Join(dir, "var/lib/dpkg/*-old"))
	for _, f := range slices.Concat(debs, olds) {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	// Documentation: keep each package's copyright file.
	docs := filepath.Join(dir, "usr/share/doc")
	pkgs, err := os.ReadDir(docs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, p := range pkgs {
		pdir := filepath.Join(docs, p.Name())
		if !p.IsDir() {
			continue
		}
		files, err := os.ReadDir(pdir)
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Name() != "copyright" {
				if err := os.RemoveAll(filepath.Join(pdir, f.Name())); err != nil {
					return err
				}
			}
		}
	}
	// The runtime mounts its own; debootstrap copied this machine's.
	for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// addNonroot adds distroless's nonroot user (65532) and its home, which the
// image runs as.
func addNonroot(dir string) error {
	add := func(file, line string) error {
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = io.WriteString(f, line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	if err := add("etc/passwd", fmt.Sprintf("nonroot:x:%d:%d:nonroot:%s:/usr/sbin/nologin\n", NonrootUID, NonrootUID, NonrootHome)); err != nil {
		return fmt.Errorf("adding the nonroot user: %w", err)
	}
	if err := add("etc/group", fmt.Sprintf("nonroot:x:%d:\n", NonrootUID)); err != nil {
		return fmt.Errorf("adding the nonroot group: %w", err)
	}
	home := filepath.Join(dir, NonrootHome)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	return os.Chown(home, NonrootUID, NonrootUID)
}

// lockFile takes an exclusive flock on file, waiting for it as long as ctx
// allows; the returned function releases it.
func lockFile(ctx context.Context, file string) (func(), error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", file, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (another build makes the pyzmq root filesystem): %w", file, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a blank).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount below dir.
func unmountUnder(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	mps, err := mountsUnder(abs)
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmounting %s: %w", mp, err)
		}
	}
	if left, err := mountsUnder(abs); err != nil || len(left) > 0 {
		return fmt.Errorf("still mounted under %s: %v (%v)", abs, left, err)
	}
	return nil
}

// removeTree removes dir after detaching the mounts debootstrap may have
// left in it, and refuses if any remains: removing through a bind mount of
// /dev would remove this machine's files.
func removeTree(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	return os.RemoveAll(dir)
}

// lastLines keeps the last lines written to it, for error messages.
type lastLines struct{ lines []string }

func (l *lastLines) Write(p []byte) (int, error) {
	for _, s := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.lines = append(l.lines, s)
	}
	if len(l.lines) > 30 {
		l.lines = l.lines[len(l.lines)-30:]
	}
	return len(p), nil
}

func (l *lastLines) String() string { return strings.Join(l.lines, "\n") }
