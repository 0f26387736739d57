package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

// Published test keys (libzmq's zmq_curve(7) example).
const (
	srvPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	srvSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

// result is one in-process run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// checkFailure asserts a failed run: exit 1, nothing on stdout, one line on
// stderr that starts with "zmqauth: " and says want.
func checkFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit code %d, want 1 (stdout %q)", r.code, r.stdout)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "zmqauth: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q is not one line starting with \"zmqauth: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
}

// noSecret fails when text shows any 8-character run of secret.
func noSecret(t *testing.T, text, secret string) {
	t.Helper()
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+8]) {
			t.Errorf("output shows part of a secret key")
			return
		}
	}
}

// curveKeygenLayout is libzmq's curve_keygen output: a paragraph, then each
// key under its "== CURVE ... KEY ==" line after a blank line.
var curveKeygenLayout = regexp.MustCompile(`^(?:[^\n]+\n)+\n== CURVE PUBLIC KEY ==\n(\S{40})\n\n== CURVE SECRET KEY ==\n(\S{40})\n$`)

func TestKeygenPrint(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := runCLI(t, "", "keygen")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		m := curveKeygenLayout.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("output is not in curve_keygen's layout:\n%s", strings.Split(r.stdout, "==")[0])
		}
		public, err := keygen.ParsePublicKey(m[1])
		if err != nil {
			t.Fatal(err)
		}
		secret, err := keygen.ParseSecretKey(m[2])
		if err != nil {
			t.Fatal(err)
		}
		if derived, err := keygen.PublicFromSecret(secret); err != nil || derived != public {
			t.Fatal("printed public key does not belong to the printed secret key")
		}
		if seen[m[1]] {
			t.Fatal("the same keypair twice")
		}
		seen[m[1]] = true
	}
}

func TestKeygenWriteFiles(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		metadata map[string]string
	}{
		{"plain", []string{"--name", "srv"}, map[string]string{}},
		{"metadata", []string{"--name", "srv", "--metadata", "owner=team a", "--metadata", "namespace=prod", "--metadata", "empty="}, map[string]string{"owner": "team a", "namespace": "prod", "empty": ""}},
		{"value with equals", []string{"--name", "srv", "--metadata", "expr=a=b"}, map[string]string{"expr": "a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := runCLI(t, "", append([]string{"keygen", "--dir", dir}, tt.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			pubPath, secPath := filepath.Join(dir, "srv.key"), filepath.Join(dir, "srv.key_secret")
			pub, err := keygen.ReadPublicCertificate(pubPath)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := keygen.ReadSecretCertificate(secPath)
			if err != nil {
				t.Fatal(err)
			}
			if pub.PublicKey != sec.PublicKey {
				t.Error("the two files hold different public keys")
			}
			for _, c := range []*keygen.Certificate{pub, sec} {
				if len(c.Metadata) != len(tt.metadata) {
					t.Errorf("metadata %v, want %v", c.Metadata, tt.metadata)
				}
				for k, v := range tt.metadata {
					if c.Metadata[k] != v {
						t.Errorf("metadata %s = %q, want %q", k, c.Metadata[k], v)
					}
				}
			}
			if st, _ := os.Stat(secPath); st.Mode().Perm() != 0o600 {
				t.Errorf("secret file mode %v", st.Mode().Perm())
			}
			if st, _ := os.Stat(pubPath); st.Mode().Perm() != 0o644 {
				t.Errorf("public file mode %v", st.Mode().Perm())
			}
			// stdout tells the public key and the paths, never the secret.
			if !strings.Contains(r.stdout, pub.PublicKey.String()) || !strings.Contains(r.stdout, secPath) {
				t.Errorf("stdout %q lacks the public key or the paths", r.stdout)
			}
			noSecret(t, r.stdout, sec.SecretKey.Z85())
		})
	}
}

func TestKeygenOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		force    bool
		wantErr  string
	}{
		{"public exists", []string{"srv.key"}, false, "srv.key: file already exists; nothing written (--force overwrites)"},
		{"secret exists", []string{"srv.key_secret"}, false, "srv.key_secret: file already exists"},
		{"both exist", []string{"srv.key", "srv.key_secret"}, false, "already exists"},
		{"both exist, forced", []string{"srv.key", "srv.key_secret"}, true, ""},
		{"one exists, forced", []string{"srv.key"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.existing {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"keygen", "--name", "srv", "--dir", dir}
			if tt.force {
				args = append(args, "--force")
			}
			r := runCLI(t, "", args...)
			entries, _ := os.ReadDir(dir)
			if tt.wantErr != "" {
				checkFailure(t, r, tt.wantErr)
				if len(entries) != len(tt.existing) {
					t.Errorf("directory holds %d files, want the %d it had", len(entries), len(tt.existing))
				}
				for _, name := range tt.existing {
					if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "old" {
						t.Errorf("%s was changed", name)
					}
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if len(entries) != 2 {
				t.Errorf("directory holds %d files, want 2", len(entries))
			}
			if _, err := keygen.ReadSecretCertificate(filepath.Join(dir, "srv.key_secret")); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestKeygenPublicFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret, _ := keygen.ParseSecretKey(srvSecret)
	public, _ := keygen.ParsePublicKey(srvPublic)
	cert := keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, nil)
	secData, err := cert.MarshalSecret()
	if err != nil {
		t.Fatal(err)
	}
	pubData, _ := cert.MarshalPublic()
	rawKey := write("secret.key", srvSecret, 0o600)
	rawKeyNL := write("secret-nl.key", "  "+srvSecret+"\n", 0o600)
	secCert := write("srv.key_secret", string(secData), 0o600)
	pubCert := write("srv.key", string(pubData), 0o644)
	badCert := write("bad.key_secret", strings.Replace(string(secData), srvPublic, "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", 1), 0o600)
	junk := write("junk", "not a key\n", 0o600)

	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string // "" for success
	}{
		{"key argument", []string{"--public-from", srvSecret}, "", ""},
		{"raw key file", []string{"--public-from", rawKey}, "", ""},
		{"raw key file with white space", []string{"--public-from", rawKeyNL}, "", ""},
		{"secret certificate", []string{"--public-from", secCert}, "", ""},
		{"stdin key", []string{"--public-from", "-"}, srvSecret + "\n", ""},
		{"stdin certificate", []string{"--public-from", "-"}, string(secData), ""},
		{"public certificate", []string{"--public-from", pubCert}, "", "srv.key: keygen: secret certificate: missing secret-key"},
		{"mismatched certificate", []string{"--public-from", badCert}, "", "secret-key does not belong to public-key"},
		{"junk file", []string{"--public-from", junk}, "", "junk: keygen: secret certificate: line 1: malformed line"},
		{"directory", []string{"--public-from", dir}, "", "not a readable file, and not a secret key"},
		{"truncated key", []string{"--public-from", srvSecret[:39]}, "", "not a readable file, and not a secret key: keygen: secret key: wrong length (want 40 Z85 characters, got 39)"},
		{"padded key", []string{"--public-from", srvSecret + "="}, "", "got 41"},
		{"wrong alphabet", []string{"--public-from", srvSecret[:17] + "~" + srvSecret[18:]}, "", "invalid character at position 17"},
		{"empty", []string{"--public-from", ""}, "", "--public-from: empty value"},
		{"empty stdin", []string{"--public-from", "-"}, "", "standard input: keygen: secret certificate: missing curve section"},
		{"with --name", []string{"--public-from", srvSecret, "--name", "x"}, "", "--public-from cannot be combined with --name"},
		{"with --force", []string{"--public-from", srvSecret, "--force"}, "", "--public-from cannot be combined with --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, append([]string{"keygen"}, tt.args...)...)
			noSecret(t, r.stdout+r.stderr, srvSecret)
			if tt.wantErr != "" {
				checkFailure(t, r, tt.wantErr)
				return
			}
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if r.stdout != srvPublic+"\n" {
				t.Errorf("stdout %q, want the public key", r.stdout)
			}
		})
	}
}

func TestKeygenBadUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"positional argument", []string{"keygen", "extra"}, `unknown command "extra"`},
		{"unknown flag", []string{"keygen", "--bogus"}, "unknown flag: --bogus"},
		{"dir without name", []string{"keygen", "--dir", "."}, "--dir needs --name"},
		{"force without name", []string{"keygen", "--force"}, "--force needs --name"},
		{"metadata without name", []string{"keygen", "--metadata", "a=b"}, "--metadata needs --name"},
		{"empty name", []string{"keygen", "--name", ""}, "--name is empty"},
		{"name with slash", []string{"keygen", "--name", "a/b"}, `invalid certificate name "a/b"`},
		{"name dot-dot", []string{"keygen", "--name", ".."}, "invalid certificate name"},
		{"missing dir", []string{"keygen", "--name", "x", "--dir", "/nonexistent/zmqauth"}, "no such file or directory"},
		{"metadata without equals", []string{"keygen", "--name", "x", "--metadata", "owner"}, `--metadata "owner": want NAME=VALUE`},
		{"metadata bad name", []string{"keygen", "--name", "x", "--metadata", "a b=c"}, `--metadata "a b": invalid metadata: a name is not valid`},
		{"metadata reserved name", []string{"keygen", "--name", "x", "--metadata", "secret-key=c"}, "pyzmq would read it as a key"},
		{"metadata newline", []string{"keygen", "--name", "x", "--metadata", "a=b\nc"}, "control character"},
		{"metadata twice", []string{"keygen", "--name", "x", "--metadata", "a=1", "--metadata", "a=2"}, "--metadata a given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // --dir defaults to "."
			r := runCLI(t, "", tt.args...)
			checkFailure(t, r, tt.wantErr)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed run wrote %d files", len(entries))
			}
		})
	}
}
