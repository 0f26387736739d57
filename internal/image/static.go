package image

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zmqauth/zmqauth/internal/dockerfile"
)

// The environment distroless/static sets.
const (
	// DefaultPath is the images' PATH.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// CACertFile is where the images keep the CA bundle (SSL_CERT_FILE).
	CACertFile = "/etc/ssl/certs/ca-certificates.crt"
	// NonrootHome is the home and working directory of the nonroot user.
	NonrootHome = "/home/nonroot"
	// NonrootUID is the uid (and gid) of distroless's nonroot user.
	NonrootUID = 65532
)

const (
	passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`
	group = `root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
`
	nsswitch = `passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
`
	osRelease = `PRETTY_NAME="zmqauth static base (equivalent of gcr.io/distroless/static:nonroot, built by internal/image without docker)"
NAME="zmqauth static base"
ID=zmqauth-static
VERSION_ID="1"
HOME_URL="https://github.com/zmqauth/zmqauth"
`
)

// staticBase returns the layer that stands for gcr.io/distroless/static:nonroot:
// users and groups, nsswitch.conf, os-release, this machine's CA bundle and
// time zone data, /tmp and the nonroot user's home.
func (b *builder) staticBase(ctx context.Context) (tree, error) {
	t := tree{}
	t.dir("/etc", 0o755, 0, 0)
	t.file("/etc/passwd", 0o644, 0, 0, []byte(passwd))
	t.file("/etc/group", 0o644, 0, 0, []byte(group))
	t.file("/etc/nsswitch.conf", 0o644, 0, 0, []byte(nsswitch))
	t.file("/etc/os-release", 0o644, 0, 0, []byte(osRelease))
	if _, err := os.Stat(CACertFile); err != nil {
		return nil, fmt.Errorf("the CA bundle the image copies from this machine: %w", err)
	}
	t.copyFile(CACertFile, 0o644, 0, 0, CACertFile)
	const zoneinfo = "/usr/share/zoneinfo"
	if fi, err := os.Stat(zoneinfo); err == nil && fi.IsDir() {
		if err := t.copyDir(ctx, zoneinfo, zoneinfo); err != nil {
			return nil, fmt.Errorf("copying %s: %w", zoneinfo, err)
		}
	}
	t.dir("/tmp", 0o1777, 0, 0)
	t.dir("/root", 0o700, 0, 0)
	t.dir("/home", 0o755, 0, 0)
	t.dir(NonrootHome, 0o700, NonrootUID, NonrootUID)
	return t, nil
}

// staticConfig is the config of an image on the static base.
func staticConfig(entrypoint []string, user string) v1.Config {
	return v1.Config{
		Entrypoint: entrypoint,
		User:       user,
		WorkingDir: NonrootHome,
		Env:        []string{"PATH=" + DefaultPath, "SSL_CERT_FILE=" + CACertFile},
	}
}

// zmqauth builds the Dockerfile's image: its go build line, run here, and
// its final stage's USER and ENTRYPOINT on the static base.
func (b *builder) zmqauth(ctx context.Context) (v1.Image, error) {
	df, err := dockerfile.Parse(filepath.Join(b.opts.Root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	final := df.Final()
	if final.User == "" {
		return nil, fmt.Errorf("the Dockerfile's final stage has no USER")
	}
	g, err := df.GoBuild("linux", b.arch)
	if err != nil {
		return nil, err
	}
	bin := b.tmp(path.Base(g.Out))
	if err := b.goRun(ctx, g.Env, g.ArgsWithOut(bin)...); err != nil {
		return nil, err
	}
	app := tree{}
	app.copyFile(g.Dest, 0o755, 0, 0, bin)
	return b.onStaticBase(ctx, staticConfig(final.Entrypoint, final.User), app)
}

// onStaticBase makes an image of the static base layer (written once per
// Build) and a layer of app on it.
func (b *builder) onStaticBase(ctx context.Context, cfg v1.Config, app tree) (v1.Image, error) {
	if b.base == nil {
		base, err := b.staticBase(ctx)
		if err != nil {
			return nil, err
		}
		if b.base, err = b.layer(ctx, base); err != nil {
			return nil, err
		}
	}
	appLayer, err := b.layer(ctx, app)
	if err != nil {
		return nil, err
	}
	return b.newImage(cfg, b.base, appLayer)
}

// staticEnv is the environment of the static Go programs' builds.
func (b *builder) staticEnv() map[string]string {
	return map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": b.arch}
}

// pause builds the pod sandbox image: only /pause, run as 65535 like the
// upstream registry.k8s.io/pause.
func (b *builder) pause(ctx context.Context) (v1.Image, error) {
	bin := b.tmp("pause")
	if err := b.goRun(ctx, b.staticEnv(), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./hack/images/pause"); err != nil {
		return nil, err
	}
	t := tree{}
	t.copyFile("/pause", 0o755, 0, 0, bin)
	l, err := b.layer(ctx, t)
	if err != nil {
		return nil, err
	}
	return b.newImage(v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}, l)
}

// examples builds the examples/zmq4 programs into /usr/local/bin on the
// static base.
func (b *builder) examples(ctx context.Context) (v1.Image, error) {
	dir := b.tmp("examples")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if err := b.goRun(ctx, b.staticEnv(), "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/", "./examples/zmq4/..."); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("go build ./examples/zmq4/... made no program")
	}
	t := tree{}
	var names []string
	for _, e := range ents {
		t.copyFile("/usr/local/bin/"+e.Name(), 0o755, 0, 0, filepath.Join(dir, e.Name()))
		names = append(names, e.Name())
	}
	fmt.Fprintf(b.opts.Log, "image: examples: %s\n", strings.Join(names, " "))
	return b.onStaticBase(ctx, staticConfig(nil, fmt.Sprintf("%d:%d", NonrootUID, NonrootUID)), t)
}

// goRun runs the go command in the repository root with env added to this
// process's environment (and GOFLAGS cleared, as in a clean build stage).
func (b *builder) goRun(ctx context.Context, env map[string]string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.opts.Root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	var shown []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
		shown = append(shown, k+"="+env[k])
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			quoted[i] = strconv.Quote(a)
		}
	}
	fmt.Fprintf(b.opts.Log, "image: %s go %s\n", strings.Join(shown, " "), strings.Join(quoted, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
