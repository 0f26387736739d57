package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/zmqauth/zmqauth/controllers/injector"
	"github.com/zmqauth/zmqauth/internal/dockerfile"
	"github.com/zmqauth/zmqauth/internal/testenv"
)

// image is the image the Dockerfile describes, built here without docker.
type image struct {
	df     *dockerfile.Dockerfile
	goArgs []string          // the Dockerfile's go build line, as run
	goEnv  map[string]string // its environment assignments
	binary string            // the built binary on this machine
	layout map[string]string // image path -> local file (the final stage's COPYs)
}

// distrolessStatic lists what gcr.io/distroless/static:nonroot provides that
// a Deployment might reference.
var distrolessStatic = []string{
	"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl/certs/ca-certificates.crt",
	"/usr/share/zoneinfo", "/tmp", "/home/nonroot",
}

const distroless = "gcr.io/distroless/static:nonroot"

var (
	buildOnce sync.Once
	built     *image
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard()) // envtest logs nothing these tests read
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if imagesDir != "" {
		os.RemoveAll(imagesDir)
	}
	os.Exit(code)
}

// buildImage builds the binary exactly as the Dockerfile's build line does
// (once per test run) and returns the image layout.
func buildImage(t *testing.T) *image {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = doBuild(testenv.RepoRoot(t)) })
	if buildErr != nil {
		t.Fatalf("building as the Dockerfile does: %v", buildErr)
	}
	return built
}

func doBuild(root string) (*image, error) {
	df, err := dockerfile.Parse(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	// BuildKit sets TARGETOS/TARGETARCH to the target platform; build for
	// this machine so the binary can be run here.
	g, err := df.GoBuild(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	buildDir, err = os.MkdirTemp("", "zmqauth-image-")
	if err != nil {
		return nil, err
	}
	im := &image{df: df, goEnv: g.Env, layout: map[string]string{}}
	im.binary = filepath.Join(buildDir, filepath.FromSlash(g.Out))
	im.goArgs = g.ArgsWithOut(im.binary)[1:] // after "build"
	im.layout[g.Dest] = im.binary

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, im.goArgs...)...)
	cmd.Dir = root // WORKDIR holds the repository (COPY . .)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	for k, v := range im.goEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New("go build " + strings.Join(im.goArgs, " ") + ": " + err.Error() + ": " + string(b))
	}
	return im, nil
}

func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	start := time.Now()
	im := buildImage(t)
	t.Logf("built in %v: %s go build %s", time.Since(start).Round(time.Second), im.goEnv, strings.Join(im.goArgs, " "))

	if im.goEnv["CGO_ENABLED"] != "0" {
		t.Errorf("the build line sets CGO_ENABLED=%q, want 0", im.goEnv["CGO_ENABLED"])
	}
	if !slices.Contains(im.goArgs, "-trimpath") {
		t.Error("the build line lacks -trimpath")
	}
	if i := slices.Index(im.goArgs, "-ldflags"); i < 0 || im.goArgs[i+1] != "-s -w" {
		t.Errorf("the build line's -ldflags: want \"-s -w\" in %q", im.goArgs)
	}

	f, err := elf.Open(im.binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader, which distroless/static lacks")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("the binary needs shared libraries %v (%v); distroless/static has none", libs, err)
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		t.Errorf("the binary has a symbol table (err %v): -ldflags \"-s -w\" did not apply", err)
	}
	data, err := os.ReadFile(im.binary)
	if err != nil {
		t.Fatal(err)
	}
	if root := testenv.RepoRoot(t); bytes.Contains(data, []byte(root+"/")) {
		t.Errorf("the binary contains the build directory %s: -trimpath did not apply", root)
	}
}

// TestImageRunsTheDeployment checks that what the manifests ask of the image
// exists in the layout the Dockerfile describes: the entrypoint, the paths
// in the manager's args, the user, and the subcommands and flags of the
// manager and of the injected sidecar.
func TestImageRunsTheDeployment(t *testing.T) {
	im := buildImage(t)
	final := im.df.Final()
	if final.From != distroless {
		t.Errorf("final stage FROM %s, want %s (the layout below assumes it)", final.From, distroless)
	}
	if !slices.Equal(final.Entrypoint, []string{"/zmqauth"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/zmqauth\"]", final.Entrypoint)
	}
	if final.User != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532 (distroless nonroot)", final.User)
	}
	inImage := func(p string) bool {
		if _, ok := im.layout[p]; ok {
			return true
		}
		return slices.ContainsFunc(distrolessStatic, func(b string) bool { return p == b || strings.HasPrefix(p, b+"/") })
	}

	for _, variant := range []struct {
		name       string
		components []string
	}{{"default", nil}, {"certmanager", []string{"certmanager"}}} {
		t.Run(variant.name, func(t *testing.T) {
			d := renderedDeployment(t, variant.components...)
			var uid int64 = -1
			if psc := d.Spec.Template.Spec.SecurityContext; psc != nil {
				uid = ptr.Deref(psc.RunAsUser, uid)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				u := uid
				if c.SecurityContext != nil {
					u = ptr.Deref(c.SecurityContext.RunAsUser, uid)
				}
				if u != 65532 {
					t.Errorf("container %s runs as uid %d, the image's USER is 65532", c.Name, u)
				}
				argv := slices.Clone(c.Command)
				if len(argv) == 0 {
					argv = slices.Clone(final.Entrypoint)
				}
				if !inImage(argv[0]) {
					t.Errorf("container %s runs %s, which is not in the image", c.Name, argv[0])
				}
				args := expandK8s(c.Args, c.Env)
				for _, p := range absPaths(args) {
					mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
						return p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")
					})
					if !mounted && !inImage(p) {
						t.Errorf("container %s: arg path %s is neither in the image nor mounted", c.Name, p)
					}
				}
				// The binary accepts the subcommand and every flag.
				runHelp(t, im.layout[argv[0]], append(argv[1:], args...))
			}
		})
	}

	t.Run("sidecar", func(t *testing.T) {
		// The injected container's args (controllers/injector asserts them
		// on real pods): the same image, its own subcommand.
		runHelp(t, im.layout["/zmqauth"], []string{"sidecar", "--config-env", injector.ConfigEnv})
	})
}

// runHelp runs the binary with args and --help: cobra parses every flag
// first, so an unknown subcommand or flag fails.
func runHelp(t *testing.T, binary string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("zmqauth %s does not run: %v\n%s", strings.Join(args, " "), err, firstLines(string(out), 3))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// expandK8s expands $(VAR) in args from env values, as the kubelet does.
func expandK8s(args []string, env []corev1.EnvVar) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for _, e := range env {
			a = strings.ReplaceAll(a, "$("+e.Name+")", e.Value)
		}
		out[i] = a
	}
	return out
}

// absPaths returns the absolute paths among args: whole args or flag values.
func absPaths(args []string) []string {
	var out []string
	for _, a := range args {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v
		}
		if strings.HasPrefix(a, "/") {
			out = append(out, a)
		}
	}
	return out
}

// renderedDeployment renders config/default (with components) and returns
// the manager Deployment.
func renderedDeployment(t *testing.T, components ...string) *appsv1.Deployment {
	t.Helper()
	for _, o := range decodeAll(t, render(t, components...)) {
		if o.GetKind() == "Deployment" && o.GetName() == "zmqauth-manager" {
			var d appsv1.Deployment
			fromUnstructured(t, o, &d)
			return &d
		}
	}
	t.Fatal("no Deployment zmqauth-manager in the rendered manifests")
	return nil
}
