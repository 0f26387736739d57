// Package image builds the container images zmqauth's pods run, without a
// docker engine or a registry: each is written as a docker-archive tar file
// (what `docker save` writes) that `ctr -n k8s.io images import FILE` loads
// into containerd.
//
// The images:
//
//   - zmqauth (TagZmqauth): what the Dockerfile describes. The binary is
//     built with the Dockerfile's own `go build` line (read from it through
//     internal/dockerfile) on a base layer equivalent to
//     gcr.io/distroless/static:nonroot; USER and ENTRYPOINT come from the
//     Dockerfile's final stage.
//   - pause (TagPause): a static pod sandbox process (hack/images/pause).
//   - examples (TagExamples): the go-zeromq/zmq4 programs of examples/zmq4,
//     each at /usr/local/bin/NAME, on the same base layer.
//   - pyzmq (TagPyzmq): a Debian bookworm root filesystem with python3-zmq
//     (made once per machine with debootstrap and cached) and the programs
//     of examples/pyzmq at /app.
package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The names Build knows, in the order it builds them.
const (
	// Zmqauth names the manager and sidecar image.
	Zmqauth = "zmqauth"
	// Pause names the pod sandbox image.
	Pause = "pause"
	// Examples names the zmq4 example programs image.
	Examples = "examples"
	// Pyzmq names the Debian python3-zmq image.
	Pyzmq = "pyzmq"
)

// The tags the images are written under.
const (
	// TagZmqauth is the zmqauth image's tag.
	TagZmqauth = "zmqauth.local/zmqauth:dev"
	// TagPause is the pause image's tag.
	TagPause = "zmqauth.local/pause:3.10"
	// TagExamples is the zmq4 examples image's tag.
	TagExamples = "zmqauth.local/examples:dev"
	// TagPyzmq is the pyzmq image's tag.
	TagPyzmq = "zmqauth.local/pyzmq:dev"
)

// Names returns the names of the images Build makes, in order.
func Names() []string { return []string{Zmqauth, Pause, Examples, Pyzmq} }

// Tag returns the tag of the image called name.
func Tag(name string) (string, error) {
	switch name {
	case Zmqauth:
		return TagZmqauth, nil
	case Pause:
		return TagPause, nil
	case Examples:
		return TagExamples, nil
	case Pyzmq:
		return TagPyzmq, nil
	}
	return "", fmt.Errorf("image: unknown image %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Options says what Build builds and where.
type Options struct {
	// Root is the repository root (the Dockerfile's build context).
	Root string
	// OutDir receives NAME.tar for each image; it is created if missing.
	OutDir string
	// Only lists the images to build (Names); empty means all of them.
	Only []string
	// CacheDir holds what is built once per machine (the pyzmq root
	// filesystem). Empty means $ZMQAUTH_CACHE, or zmqauth under the user
	// cache directory ($XDG_CACHE_HOME or ~/.cache), as
	// hack/controlplane.sh uses.
	CacheDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Archive is one image Build wrote.
type Archive struct {
	// Name is the image's name (Names), Tag its tag.
	Name, Tag string
	// Path is the docker-archive file.
	Path string
}

// Build builds the images opts selects, writing each to
// opts.OutDir/NAME.tar under its tag, and returns them in the order of
// Names. The Go programs are always rebuilt (the Go build cache makes that
// quick); the pyzmq root filesystem is made once per machine.
func Build(ctx context.Context, opts Options) ([]Archive, error) {
	if opts.Root == "" || opts.OutDir == "" {
		return nil, fmt.Errorf("image: Options.Root and Options.OutDir are required")
	}
	for _, n := range opts.Only {
		if _, err := Tag(n); err != nil {
			return nil, err
		}
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		opts.CacheDir = dir
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	opts.Root = root
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	work, err := os.MkdirTemp("", "zmqauth-images-")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)

	b := &builder{opts: opts, work: work, arch: runtime.GOARCH}
	var out []Archive
	for _, n := range Names() {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, n) {
			continue
		}
		start := time.Now()
		var img v1.Image
		switch n {
		case Zmqauth:
			img, err = b.zmqauth(ctx)
		case Pause:
			img, err = b.pause(ctx)
		case Examples:
			img, err = b.examples(ctx)
		case Pyzmq:
			img, err = b.pyzmq(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		tag, _ := Tag(n)
		file := filepath.Join(opts.OutDir, n+".tar")
		if err := writeArchive(file, tag, img); err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		fmt.Fprintf(opts.Log, "image: %s -> %s (%v)\n", tag, file, time.Since(start).Round(100*time.Millisecond))
		out = append(out, Archive{Name: n, Tag: tag, Path: file})
	}
	return out, nil
}

// DefaultCacheDir returns $ZMQAUTH_CACHE, or zmqauth under $XDG_CACHE_HOME
// or ~/.cache: the cache hack/controlplane.sh uses.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("ZMQAUTH_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "zmqauth"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("image: no cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "zmqauth"), nil
}

// writeArchive writes img under tag to file, through a temporary file so
// that file is whole or absent.
func writeArchive(file, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	tmp := file + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// builder holds what the images of one Build share.
type builder struct {
	opts Options
	work string // temporary directory, removed when Build returns
	arch string // GOARCH of the images: this machine's
	seq  int
	// base is the static base layer, written once per Build and shared
	// by the images on it.
	base v1.Layer
}

// tmp returns a new path in the work directory.
func (b *builder) tmp(base string) string {
	b.seq++
	return filepath.Join(b.work, fmt.Sprintf("%d-%s", b.seq, base))
}

// layer writes t as a layer.
func (b *builder) layer(ctx context.Context, t tree) (v1.Layer, error) {
	file := b.tmp("layer.tar.gz")
	if err := t.writeLayer(ctx, file); err != nil {
		return nil, err
	}
	return layerFromFile(file)
}

func layerFromFile(file string) (v1.Layer, error) {
	l, err := tarball.LayerFromFile(file)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", file, err)
	}
	return l, nil
}

// newImage makes a linux image for b.arch of layers with config cfg.
func (b *builder) newImage(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", b.arch
	cf.Created = v1.Time{Time: time.Unix(epoch, 0).UTC()}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}
