// Command images builds zmqauth's container images without docker, as
// docker-archive tar files for `ctr -n k8s.io images import FILE`:
//
//	go run ./hack/images -out DIR [-only zmqauth,pause,examples,pyzmq]
//
// It writes DIR/NAME.tar for each image and prints "TAG FILE" lines. See
// internal/image for what each image holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zmqauth/zmqauth/internal/image"
)

func main() {
	out := flag.String("out", "", "directory to write NAME.tar into (required)")
	only := flag.String("only", "", "comma-separated images to build ("+strings.Join(image.Names(), ",")+"); all if empty")
	root := flag.String("root", ".", "repository root (the Dockerfile's build context)")
	cache := flag.String("cache", "", "cache directory for the pyzmq root filesystem (default $ZMQAUTH_CACHE or ~/.cache/zmqauth)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := image.Options{Root: *root, OutDir: *out, CacheDir: *cache, Log: os.Stderr}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	archives, err := image.Build(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	for _, a := range archives {
		p, err := filepath.Abs(a.Path)
		if err != nil {
			p = a.Path
		}
		fmt.Println(a.Tag, p)
	}
}
