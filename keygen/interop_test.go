package keygen_test

// Interop with the reference implementation: pyzmq on Debian's libzmq. The
// tests skip when pyzmq is missing and fail then under ZMQAUTH_REQUIRE_DEPS=1
// (testenv.PyZMQ). Keys travel between Go and Python only through files and
// pipes and are compared in Go; a mismatch is reported by index or name,
// never by printing a secret key.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
)

// pythonTimeout bounds every Python process.
const pythonTimeout = 60 * time.Second

// runPython runs testdata/script with args and stdin and returns its stdout.
// Its stderr is shown only on failure (the scripts never print keys there).
func runPython(t *testing.T, py, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pythonTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %v)", err, pythonTimeout)
		}
		t.Fatalf("%s: %v\nstderr:\n%s", script, err, stderr.String())
	}
	return stdout.Bytes()
}

// pyCert is what pyzmq's load_certificate returned for one file.
type pyCert struct {
	Path   string  `json:"path"`
	Public *string `json:"public"`
	Secret *string `json:"secret"`
}

// writeCert generates a keypair and writes it with our writer.
func writeCert(t *testing.T, dir, name string, metadata map[string]string) *keygen.Certificate {
	t.Helper()
	pair, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := keygen.NewCertificate(pair, metadata)
	if _, _, err := keygen.WriteCertificateFiles(dir, name, c, keygen.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// (a) Certificates from our writer load with zmq.auth.load_certificate() and
// carry a real libzmq CURVE connection, with pyzmq's ZAP handler taking the
// allowlist from a directory of our public certificates.
func TestInteropPyZMQUsesOurCertificates(t *testing.T) {
	py := testenv.PyZMQ(t)
	dir := t.TempDir()
	certs, allow := filepath.Join(dir, "certs"), filepath.Join(dir, "allow")
	for _, d := range []string{certs, allow} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	server := writeCert(t, certs, "server", map[string]string{"name": "server", "namespace": "prod"})
	client := writeCert(t, certs, "client", map[string]string{"owner": "team a", "note": `say "hi" # not a comment`})
	intruder := writeCert(t, certs, "intruder", nil)
	clientPublic, err := client.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	// The allowlist directory holds public certificates only, as the
	// operator's ConfigMap does.
	if err := os.WriteFile(filepath.Join(allow, "prod.client.key"), clientPublic, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("load_certificate", func(t *testing.T) {
		want := map[string]*keygen.Certificate{}
		var paths []string
		for name, c := range map[string]*keygen.Certificate{"server": server, "client": client, "intruder": intruder} {
			for _, suffix := range []string{keygen.PublicSuffix, keygen.SecretSuffix} {
				p := filepath.Join(certs, name+suffix)
				paths = append(paths, p)
				want[p] = c
			}
		}
		var got []pyCert
		if err := json.Unmarshal(runPython(t, py, "zcert_pyzmq.py", nil, append([]string{"load"}, paths...)...), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(paths) {
			t.Fatalf("pyzmq loaded %d files, want %d", len(got), len(paths))
		}
		for _, g := range got {
			c, name := want[g.Path], filepath.Base(g.Path)
			if g.Public == nil || *g.Public != c.PublicKey.String() {
				t.Errorf("%s: pyzmq read a different public key", name)
			}
			isSecret := strings.HasSuffix(g.Path, keygen.SecretSuffix)
			switch {
			case isSecret && (g.Secret == nil || *g.Secret != c.SecretKey.Z85()):
				t.Errorf("%s: pyzmq read a different secret key", name)
			case !isSecret && g.Secret != nil:
				t.Errorf("%s: pyzmq found a secret key in a public certificate", name)
			}
		}
	})

	t.Run("CURVE REQ/REP", func(t *testing.T) {
		out := runPython(t, py, "curve_reqrep.py", nil,
			filepath.Join(certs, "server.key_secret"), filepath.Join(certs, "client.key_secret"),
			filepath.Join(certs, "server.key"), allow, filepath.Join(certs, "intruder.key_secret"))
		var res struct {
			Request         string `json:"request"`
			Reply           string `json:"reply"`
			UserID          string `json:"user_id"`
			IntruderServed  bool   `json:"intruder_served"`
			IntruderReplied bool   `json:"intruder_replied"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		if res.Request != "ping" || res.Reply != "pong" {
			t.Errorf("round trip carried %q / %q, want ping / pong", res.Request, res.Reply)
		}
		// pyzmq's authenticator names the client by its Z85 public key.
		if res.UserID != client.PublicKey.String() {
			t.Errorf("server saw User-Id %q, want the client's public key %s", res.UserID, client.PublicKey)
		}
		if res.IntruderServed || res.IntruderReplied {
			t.Errorf("a client missing from the allowlist got through (served %v, replied %v)", res.IntruderServed, res.IntruderReplied)
		}
	})
}

// (b) Certificates from zmq.auth.create_certificates() load with our reader
// and give the keys pyzmq itself reads from them.
func TestInteropWeReadPyZMQCertificates(t *testing.T) {
	py := testenv.PyZMQ(t)
	tests := []struct {
		name     string
		metadata map[string]string
	}{
		{"no metadata", nil},
		{"metadata", map[string]string{"name": "srv", "owner": "team a", "url": "tcp://x:5555"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"create", dir, "srv"}
			for k, v := range tt.metadata {
				args = append(args, k+"="+v)
			}
			var res struct {
				PublicFile pyCert `json:"public_file"`
				SecretFile pyCert `json:"secret_file"`
			}
			if err := json.Unmarshal(runPython(t, py, "zcert_pyzmq.py", nil, args...), &res); err != nil {
				t.Fatal(err)
			}
			if res.PublicFile.Path != filepath.Join(dir, "srv.key") || res.SecretFile.Path != filepath.Join(dir, "srv.key_secret") {
				t.Fatalf("pyzmq wrote %s and %s", res.PublicFile.Path, res.SecretFile.Path)
			}
			if res.PublicFile.Public == nil || res.SecretFile.Public == nil || res.SecretFile.Secret == nil {
				t.Fatal("pyzmq could not read its own certificates")
			}

			pub, err := keygen.ReadPublicCertificate(res.PublicFile.Path)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := keygen.ReadSecretCertificate(res.SecretFile.Path)
			if err != nil {
				t.Fatal(err)
			}
			if pub.PublicKey.String() != *res.PublicFile.Public || sec.PublicKey.String() != *res.SecretFile.Public {
				t.Error("we read a different public key than pyzmq")
			}
			if sec.SecretKey.Z85() != *res.SecretFile.Secret {
				t.Error("we read a different secret key than pyzmq")
			}
			// pyzmq puts metadata in the secret file only, unquoted.
			want := tt.metadata
			if want == nil {
				want = map[string]string{}
			}
			if !maps.Equal(sec.Metadata, want) {
				t.Errorf("secret file metadata %v, want %v", sec.Metadata, want)
			}
			if len(pub.Metadata) != 0 {
				t.Errorf("public file metadata %v, want none", pub.Metadata)
			}
			// pyzmq's secret file is refused where a public one belongs.
			if _, err := keygen.ReadPublicCertificate(res.SecretFile.Path); !errors.Is(err, keygen.ErrSecretInPublic) {
				t.Errorf("ReadPublicCertificate(pyzmq secret file): %v, want ErrSecretInPublic", err)
			}
		})
	}
}

// (c) zmq.curve_public (libzmq's zmq_curve_public) agrees with our derivation
// for 1,000 random secret keys and a few chosen ones, in one Python process.
func TestInteropCurvePublic(t *testing.T) {
	py := testenv.PyZMQ(t)
	var seed [32]byte
	copy(seed[:], "zmqauth keygen interop seed v1..")
	rng := rand.NewChaCha8(seed)
	var secrets []keygen.SecretKey
	for _, fill := range []byte{0x00, 0xff, 0x01, 0x80, 0x7f} {
		s, err := keygen.SecretKeyFromBytes(bytes.Repeat([]byte{fill}, keygen.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	for len(secrets) < 1000+5 {
		pair, err := keygen.GenerateKeyPair(rng)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, pair.Secret)
	}
	var stdin bytes.Buffer
	for _, s := range secrets {
		stdin.WriteString(s.Z85())
		stdin.WriteByte('\n')
	}
	lines := strings.Split(strings.TrimSpace(string(runPython(t, py, "curve_public.py", stdin.Bytes()))), "\n")
	if len(lines) != len(secrets) {
		t.Fatalf("libzmq returned %d public keys for %d secret keys", len(lines), len(secrets))
	}
	mismatches := 0
	for i, s := range secrets {
		ours, err := keygen.PublicFromSecret(s)
		if err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
		if lines[i] != ours.String() {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("secret %d: libzmq derives %s, we derive %s", i, lines[i], ours)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d public keys differ", mismatches, len(secrets))
	}
}
