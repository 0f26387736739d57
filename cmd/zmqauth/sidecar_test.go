package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/keygen"
)

// sidecarFiles writes a server keypair directory, a client keypair
// directory and an allowlist directory, and returns their paths and the
// secret keys written.
type sidecarFiles struct {
	serverKeys, clientKeys, allowlist, serverPublic string
	secrets                                         []string
}

func newSidecarFiles(t *testing.T) sidecarFiles {
	t.Helper()
	dir := t.TempDir()
	f := sidecarFiles{
		serverKeys: filepath.Join(dir, "server"),
		clientKeys: filepath.Join(dir, "client"),
		allowlist:  filepath.Join(dir, "allow"),
	}
	for _, d := range []string{f.serverKeys, f.clientKeys, f.allowlist} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []string{f.serverKeys, f.clientKeys} {
		kp, err := keygen.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, kp.Secret.Z85())
		writeTestFile(t, filepath.Join(d, "secret.key"), kp.Secret.Z85()+"\n")
		writeTestFile(t, filepath.Join(d, "public.key"), kp.Public.String()+"\n")
		if i == 0 {
			f.serverPublic = kp.Public.String()
		} else {
			cert, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, nil).MarshalPublic()
			if err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, filepath.Join(f.allowlist, "team.client.key"), string(cert))
		}
	}
	return f
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSidecarBadUsage(t *testing.T) {
	f := newSidecarFiles(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	badKeys := filepath.Join(t.TempDir(), "bad")
	if err := os.MkdirAll(badKeys, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(badKeys, "secret.key"), "tooshort\n")
	badConfig := filepath.Join(t.TempDir(), "sidecar.yaml")
	writeTestFile(t, badConfig, "inbound:\n  - listen: 127.0.0.1:0\n    aap: 127.0.0.1:1\n")

	in := func(extra ...string) []string {
		return append([]string{"sidecar", "inbound", "--listen", "127.0.0.1:0", "--app", "127.0.0.1:1"}, extra...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no route", []string{"sidecar"}, "--config"},
		{"unknown flag", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--bogus"), "unknown flag: --bogus"},
		{"missing flags", []string{"sidecar", "inbound", "--listen", "127.0.0.1:0"}, `required flag(s) "allowlist", "app", "keys" not set`},
		{"stray argument", append(in("--keys", f.serverKeys, "--allowlist", f.allowlist), "extra"), "extra"},
		{"bad mode", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--mode", "lenient"), "unknown mode"},
		{"bad address", []string{"sidecar", "inbound", "--listen", "localhost", "--app", "127.0.0.1:1", "--keys", f.serverKeys, "--allowlist", f.allowlist}, "missing port"},
		{"app port out of range", []string{"sidecar", "inbound", "--listen", "127.0.0.1:0", "--app", "127.0.0.1:99999", "--keys", f.serverKeys, "--allowlist", f.allowlist}, `sidecar: route inbound: app: address "127.0.0.1:99999": port "99999": want a number from 1 to 65535`},
		{"outbound server port not a number", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "collector:abc", "--keys", f.clientKeys, "--server-key", f.serverPublic}, `sidecar: route outbound: server: address "collector:abc": port "abc"`},
		{"missing key directory", in("--keys", filepath.Join(f.serverKeys, "nope"), "--allowlist", f.allowlist), "secret.key"},
		{"malformed key file", in("--keys", badKeys, "--allowlist", f.allowlist), "malformed"},
		{"address in use", []string{"sidecar", "inbound", "--listen", taken.Addr().String(), "--app", "127.0.0.1:1", "--keys", f.serverKeys, "--allowlist", f.allowlist}, "cannot listen"},
		{"admin address in use", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--admin", taken.Addr().String()), "admin"},
		{"zero max message size", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--max-message-size", "0"), "--max-message-size 0: want a positive number of bytes"},
		{"outbound negative max message size", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "127.0.0.1:1", "--keys", f.clientKeys, "--server-key", f.serverPublic, "--max-message-size", "-1"}, "--max-message-size -1: want a positive number of bytes"},
		{"max message size near the int64 maximum", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--max-message-size", "9223372036854775000"), "--max-message-size 9223372036854775000: at most 1073741824 bytes (1 GiB)"},
		{"outbound max message size over 1 GiB", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "127.0.0.1:1", "--keys", f.clientKeys, "--server-key", f.serverPublic, "--max-message-size", "1073741825"}, "--max-message-size 1073741825: at most 1073741824 bytes"},
		{"bad log level", in("--keys", f.serverKeys, "--allowlist", f.allowlist, "--log-level", "loud"), "--log-level"},
		{"outbound missing server key", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "127.0.0.1:1", "--keys", f.clientKeys}, `"server-key" not set`},
		{"outbound malformed server key", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "127.0.0.1:1", "--keys", f.clientKeys, "--server-key", "nonsense"}, "server key"},
		{"outbound server key file missing", []string{"sidecar", "outbound", "--listen", "127.0.0.1:0", "--server", "127.0.0.1:1", "--keys", f.clientKeys, "--server-key", filepath.Join(f.clientKeys, "server.key")}, "server key"},
		{"config file missing", []string{"sidecar", "--config", filepath.Join(t.TempDir(), "none.yaml")}, "reading config"},
		{"config field misspelt", []string{"sidecar", "--config", badConfig}, "aap"},
		{"config env not set", []string{"sidecar", "--config-env", "ZMQAUTH_TEST_UNSET_CONFIG"}, "ZMQAUTH_TEST_UNSET_CONFIG: the variable is not set"},
		{"config env misspelt", []string{"sidecar", "--config-env", "ZMQAUTH_TEST_BAD_CONFIG"}, "aap"},
		{"config and config env", []string{"sidecar", "--config", badConfig, "--config-env", "ZMQAUTH_TEST_BAD_CONFIG"}, "not both"},
	}
	t.Setenv("ZMQAUTH_TEST_BAD_CONFIG", "inbound:\n  - listen: 127.0.0.1:0\n    aap: 127.0.0.1:1\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", tt.args...)
			checkFailure(t, r, tt.want)
			for _, s := range f.secrets {
				noSecret(t, r.stderr, s)
			}
		})
	}
}

// TestSidecarHelperProcess is not a test: run as a subprocess by
// TestSidecarSignals, it is the zmqauth binary.
func TestSidecarHelperProcess(t *testing.T) {
	if os.Getenv("ZMQAUTH_SIDECAR_HELPER") != "1" {
		t.Skip("helper process for TestSidecarSignals")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"zmqauth"}, args...)
	main()
}

// startSidecarProcess starts this test binary as `zmqauth ARGS...` (see
// TestSidecarHelperProcess) and returns it with its standard error.
func startSidecarProcess(ctx context.Context, t *testing.T, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestSidecarHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "ZMQAUTH_SIDECAR_HELPER=1")
	cmd.WaitDelay = 5 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// TestSidecarSignals runs the command as a process: it serves, reports
// ready, and exits 0 on SIGTERM and on SIGINT.
func TestSidecarSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newSidecarFiles(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd, stderr := startSidecarProcess(ctx, t, "sidecar", "inbound", "--listen", "tcp://127.0.0.1:0", "--app", "127.0.0.1:1",
				"--keys", f.serverKeys, "--allowlist", f.allowlist, "--admin", "127.0.0.1:0")
			logs := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					logs <- sc.Text()
				}
				close(logs)
			}()
			var all []string
			adminRe := regexp.MustCompile(`admin=(\S+)`)
			var admin string
			for admin == "" {
				select {
				case line, ok := <-logs:
					if !ok {
						t.Fatalf("sidecar exited before running: %s", strings.Join(all, "\n"))
					}
					all = append(all, line)
					if strings.Contains(line, "sidecar running") {
						if m := adminRe.FindStringSubmatch(line); m != nil {
							admin = m[1]
						}
					}
				case <-ctx.Done():
					t.Fatal("sidecar did not start")
				}
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/readyz = %d %q", resp.StatusCode, body)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for line := range logs {
				all = append(all, line)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after %v: %v\n%s", sig, err, strings.Join(all, "\n"))
			}
			text := strings.Join(all, "\n")
			if !strings.Contains(text, "sidecar stopped") {
				t.Errorf("no clean shutdown logged:\n%s", text)
			}
			for _, s := range f.secrets {
				noSecret(t, text, s)
			}
		})
	}
}

// TestSidecarLogsWatchTrouble runs the command as a process with an
// allowlist directory that does not exist yet: that it cannot be watched
// is logged once, in the sidecar's own log format, as the watch's trouble
// (polling continues), apart from the allowlist not being loaded.
func TestSidecarLogsWatchTrouble(t *testing.T) {
	f := newSidecarFiles(t)
	missing := filepath.Join(t.TempDir(), "allowlist-not-mounted-yet")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, stderr := startSidecarProcess(ctx, t, "sidecar", "inbound", "--listen", "127.0.0.1:0", "--app", "127.0.0.1:1",
		"--keys", f.serverKeys, "--allowlist", missing, "--log-format", "json")
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	var all []string
	sc := bufio.NewScanner(stderr)
	var line map[string]any
	for line == nil && sc.Scan() {
		all = append(all, sc.Text())
		if strings.Contains(sc.Text(), "could not set up the file watch") {
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("the watch's log line is not in the sidecar's JSON format: %v: %s", err, sc.Text())
			}
		}
	}
	if line == nil {
		t.Fatalf("no log line says the allowlist directory could not be watched:\n%s", strings.Join(all, "\n"))
	}
	if line["level"] != "WARN" || line["dir"] != missing || !strings.Contains(line["msg"].(string), "polling for changes continues") {
		t.Errorf("watch log line %v: want level WARN, dir %s, and that polling continues", line, missing)
	}
}
