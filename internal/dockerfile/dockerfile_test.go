package dockerfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func write(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGoBuild(t *testing.T) {
	const good = `# comment
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags "-s -w" -o /out/app ./cmd/app
FROM scratch
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
`
	for _, tc := range []struct {
		name, text string
		wantErr    bool
	}{
		{"good", good, false},
		{"unknown instruction", good + "EXPOSE 80\n", true},
		{"shell operator", "FROM a AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /out/app . && true\nFROM b\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n", true},
		{"no entrypoint copy", "FROM a AS build\nCOPY . .\nRUN go build -o /out/app .\nFROM b\nENTRYPOINT [\"/app\"]\n", true},
		{"shell-form entrypoint", "FROM a\nENTRYPOINT /app\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df, err := Parse(write(t, tc.text))
			var g *GoBuild
			if err == nil {
				g, err = df.GoBuild("linux", "arm64")
			}
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Env["CGO_ENABLED"] != "0" || g.Env["GOOS"] != "linux" || g.Env["GOARCH"] != "arm64" {
				t.Errorf("env %v", g.Env)
			}
			want := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", "/out/app", "./cmd/app"}
			if !slices.Equal(g.Args, want) || g.Dest != "/app" || g.Out != "/out/app" {
				t.Errorf("args %q dest %s out %s, want %q /app /out/app", g.Args, g.Dest, g.Out, want)
			}
			if got := g.ArgsWithOut("/tmp/x"); got[5] != "/tmp/x" || g.Args[5] != "/out/app" {
				t.Errorf("ArgsWithOut: %q (Args %q)", got, g.Args)
			}
			if f := df.Final(); f.User != "65532:65532" || !slices.Equal(f.Entrypoint, []string{"/app"}) {
				t.Errorf("final stage user %q entrypoint %q", f.User, f.Entrypoint)
			}
		})
	}
}
