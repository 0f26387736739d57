package keyfiles_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
)

func newPair(t *testing.T) keygen.KeyPair {
	t.Helper()
	p, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// assertNoSecret fails when text contains any 8-character run of a secret
// key's Z85 text. It never prints the secret.
func assertNoSecret(t *testing.T, what, text string, secrets ...keygen.SecretKey) {
	t.Helper()
	for i, s := range secrets {
		z := s.Z85()
		for j := 0; j+8 <= len(z); j++ {
			if strings.Contains(text, z[j:j+8]) {
				t.Errorf("%s contains part of secret key #%d (at offset %d of the key); text withheld", what, i, j)
				return
			}
		}
	}
}

func TestLoadServerKeys(t *testing.T) {
	cur, prev, other := newPair(t), newPair(t), newPair(t)
	secrets := []keygen.SecretKey{cur.Secret, prev.Secret, other.Secret}
	// corrupt replaces one character of a key with one outside the Z85 alphabet.
	corrupt := func(s string) string { return s[:17] + "~" + s[18:] }

	tests := []struct {
		name      string
		files     map[string]string
		wantErr   error  // errors.Is target; nil for success
		errFile   string // file the error must name
		wantPrev  bool
		wantPrevK keygen.PublicKey
	}{
		{name: "current only", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85()}},
		{name: "one trailing newline", files: map[string]string{
			"public.key": cur.Public.String() + "\n", "secret.key": cur.Secret.Z85() + "\n"}},
		{name: "CRLF newline", files: map[string]string{
			"public.key": cur.Public.String() + "\r\n", "secret.key": cur.Secret.Z85() + "\r\n"}},
		{name: "public derived when absent", files: map[string]string{
			"secret.key": cur.Secret.Z85()}},
		{name: "zcert files alongside are ignored", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"curve.key": "not read", "curve.key_secret": "not read"}},
		{name: "overlap", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-public.key": prev.Public.String(), "previous-secret.key": prev.Secret.Z85()},
			wantPrev: true, wantPrevK: prev.Public},
		{name: "overlap without previous public", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-secret.key": prev.Secret.Z85() + "\n"},
			wantPrev: true, wantPrevK: prev.Public},
		{name: "previous equal to current is dropped", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-secret.key": cur.Secret.Z85()}},

		{name: "missing secret", files: map[string]string{
			"public.key": cur.Public.String()},
			wantErr: keyfiles.ErrMissing, errFile: "secret.key"},
		{name: "empty dir", files: map[string]string{},
			wantErr: keyfiles.ErrMissing, errFile: "secret.key"},
		{name: "mismatched pair", files: map[string]string{
			"public.key": other.Public.String(), "secret.key": cur.Secret.Z85()},
			wantErr: keyfiles.ErrMismatch, errFile: "public.key"},
		{name: "secret key written to public.key", files: map[string]string{
			"public.key": other.Secret.Z85(), "secret.key": cur.Secret.Z85()},
			wantErr: keyfiles.ErrMismatch, errFile: "public.key"},
		{name: "malformed secret", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": corrupt(cur.Secret.Z85())},
			wantErr: keyfiles.ErrMalformed, errFile: "secret.key"},
		{name: "two trailing newlines", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85() + "\n\n"},
			wantErr: keyfiles.ErrMalformed, errFile: "secret.key"},
		{name: "leading space", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": " " + cur.Secret.Z85()},
			wantErr: keyfiles.ErrMalformed, errFile: "secret.key"},
		{name: "secret as a zcert file", files: map[string]string{
			"secret.key": "curve\n    secret-key = \"" + cur.Secret.Z85() + "\"\n"},
			wantErr: keyfiles.ErrMalformed, errFile: "secret.key"},
		{name: "malformed previous secret", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-secret.key": corrupt(prev.Secret.Z85())},
			wantErr: keyfiles.ErrMalformed, errFile: "previous-secret.key"},
		{name: "truncated previous secret", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-secret.key": prev.Secret.Z85()[:39]},
			wantErr: keyfiles.ErrMalformed, errFile: "previous-secret.key"},
		{name: "mismatched previous pair", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-public.key": other.Public.String(), "previous-secret.key": prev.Secret.Z85()},
			wantErr: keyfiles.ErrMismatch, errFile: "previous-public.key"},
		{name: "previous public without previous secret", files: map[string]string{
			"public.key": cur.Public.String(), "secret.key": cur.Secret.Z85(),
			"previous-public.key": prev.Public.String()},
			wantErr: keyfiles.ErrMissing, errFile: "previous-public.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			data := map[string][]byte{}
			for k, v := range tt.files {
				data[k] = []byte(v)
			}
			for _, load := range []struct {
				name string
				fn   func() (keyfiles.ServerKeys, error)
			}{
				{"dir", func() (keyfiles.ServerKeys, error) { return keyfiles.LoadServerKeys(dir) }},
				{"data", func() (keyfiles.ServerKeys, error) { return keyfiles.ServerKeysFromData(data) }},
			} {
				keys, err := load.fn()
				if tt.wantErr != nil {
					if err == nil {
						t.Fatalf("%s: loaded, want an error wrapping %q", load.name, tt.wantErr)
					}
					assertNoSecret(t, load.name+" error", err.Error(), secrets...)
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("%s: error %q does not wrap %q", load.name, err, tt.wantErr)
					}
					if !strings.Contains(err.Error(), tt.errFile) {
						t.Errorf("%s: error %q does not name %s", load.name, err, tt.errFile)
					}
					if !strings.HasPrefix(tt.errFile, "previous") && strings.Contains(err.Error(), "previous") {
						t.Errorf("%s: error %q blames a previous-* file", load.name, err)
					}
					continue
				}
				if err != nil {
					assertNoSecret(t, "error", err.Error(), secrets...)
					t.Fatalf("%s: %v", load.name, err)
				}
				if keys.Current.Public != cur.Public || !keys.Current.Secret.Equal(cur.Secret) {
					t.Errorf("%s: current public key %s, want %s (or the secret differs)", load.name, keys.Current.Public, cur.Public)
				}
				if (keys.Previous != nil) != tt.wantPrev {
					t.Fatalf("%s: previous keypair present = %v, want %v", load.name, keys.Previous != nil, tt.wantPrev)
				}
				if tt.wantPrev {
					if keys.Previous.Public != tt.wantPrevK || !keys.Previous.Secret.Equal(prev.Secret) {
						t.Errorf("%s: previous public key %s, want %s", load.name, keys.Previous.Public, tt.wantPrevK)
					}
					if got := keys.Pairs(); len(got) != 2 || got[0].Public != cur.Public || got[1].Public != prev.Public {
						t.Errorf("%s: Pairs() is not [current, previous]", load.name)
					}
				} else if got := keys.Pairs(); len(got) != 1 {
					t.Errorf("%s: Pairs() has %d pairs, want 1", load.name, len(got))
				}
			}
		})
	}
}

func TestLoadClientKeys(t *testing.T) {
	p, other := newPair(t), newPair(t)
	tests := []struct {
		name    string
		files   map[string]string
		wantErr error
	}{
		{"good", map[string]string{"public.key": p.Public.String() + "\n", "secret.key": p.Secret.Z85() + "\n",
			// A server's public key, named by the server, sits alongside.
			"default.my-server": other.Public.String()}, nil},
		{"missing secret", map[string]string{"public.key": p.Public.String()}, keyfiles.ErrMissing},
		{"mismatch", map[string]string{"public.key": other.Public.String(), "secret.key": p.Secret.Z85()}, keyfiles.ErrMismatch},
		{"previous files are not read", map[string]string{"public.key": p.Public.String(), "secret.key": p.Secret.Z85(),
			"previous-secret.key": "junk"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			got, err := keyfiles.LoadClientKeys(dir)
			if err != nil {
				assertNoSecret(t, "error", err.Error(), p.Secret, other.Secret)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (got.Public != p.Public || !got.Secret.Equal(p.Secret)) {
				t.Errorf("public key %s, want %s (or the secret differs)", got.Public, p.Public)
			}
		})
	}
}

func TestReadPublicKey(t *testing.T) {
	server, other := newPair(t), newPair(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"default.my-server": server.Public.String() + "\n",
		"crlf":              server.Public.String() + "\r\n",
		"public.key":        server.Public.String(),
		"secret.key":        other.Secret.Z85(),
		"garbage":           "hello\n",
		"bad-z85":           server.Public.String()[:10] + "~" + server.Public.String()[11:],
	})
	cert := keygen.NewCertificate(server, map[string]string{"name": "my-server"})
	pub, sec, err := keygen.WriteCertificateFiles(dir, "server", cert, keygen.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A secret certificate renamed to look public.
	secretData, err := os.ReadFile(sec)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"disguised.key": string(secretData)})

	missing := filepath.Join(dir, "no-such-server")
	tests := []struct {
		name    string
		arg     string
		wantErr error // nil: want server.Public
		mention string
	}{
		{name: "Z85 literal", arg: server.Public.String()},
		{name: "key file with newline", arg: filepath.Join(dir, "default.my-server")},
		{name: "key file with CRLF", arg: filepath.Join(dir, "crlf")},
		{name: "public.key", arg: filepath.Join(dir, "public.key")},
		{name: "zcert public certificate", arg: pub},
		{name: "secret.key refused", arg: filepath.Join(dir, "secret.key"), wantErr: keyfiles.ErrSecretFile, mention: "secret.key"},
		{name: "zcert secret certificate refused", arg: sec, wantErr: keyfiles.ErrSecretFile, mention: "server.key_secret"},
		{name: "secret certificate renamed .key refused", arg: filepath.Join(dir, "disguised.key"), wantErr: keyfiles.ErrSecretFile, mention: "disguised.key"},
		{name: "garbage file", arg: filepath.Join(dir, "garbage"), wantErr: keygen.ErrMissingCurve, mention: "garbage"},
		{name: "bad Z85 file", arg: filepath.Join(dir, "bad-z85"), wantErr: keyfiles.ErrMalformed, mention: "position 10"},
		{name: "missing file", arg: missing, wantErr: os.ErrNotExist, mention: missing},
		{name: "directory", arg: dir, wantErr: nil, mention: "not a regular file"},
		{name: "secret key literal is not echoed", arg: other.Secret.Z85()[:20] + "~" + other.Secret.Z85()[21:], wantErr: keyfiles.ErrMalformed, mention: "position 20"},
		{name: "empty", arg: "", wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyfiles.ReadPublicKey(tt.arg)
			if tt.wantErr == nil && tt.mention == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != server.Public {
					t.Fatalf("got %s, want %s", got, server.Public)
				}
				return
			}
			if err == nil {
				t.Fatalf("read %s, want an error", got)
			}
			assertNoSecret(t, "error", err.Error(), other.Secret, server.Secret)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q does not wrap %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

// TestPublicKeyFromData checks a server key read from a Secret or ConfigMap
// (data key to content) with the rules of ReadPublicKey's file case.
func TestPublicKeyFromData(t *testing.T) {
	server, other := newPair(t), newPair(t)
	cert := keygen.NewCertificate(server, map[string]string{"name": "my-server"})
	dir := t.TempDir()
	pub, sec, err := keygen.WriteCertificateFiles(dir, "server", cert, keygen.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pubData, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	secData, err := os.ReadFile(sec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		data      []byte
		wantErr   error // nil: want server.Public
	}{
		{name: "key file", key: "server.monitoring.collector.key", data: []byte(server.Public.String() + "\n")},
		{name: "zcert public certificate", key: "collector.key", data: pubData},
		{name: "secret.key refused by name", key: "secret.key", data: []byte(other.Secret.Z85()), wantErr: keyfiles.ErrSecretFile},
		{name: "secret certificate refused by content", key: "collector.key", data: secData, wantErr: keyfiles.ErrSecretFile},
		{name: "oversized", key: "big.key", data: make([]byte, keygen.MaxCertificateSize+1), wantErr: keyfiles.ErrMalformed},
		{name: "garbage", key: "x.key", data: []byte("hello\n"), wantErr: keygen.ErrMissingCurve},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyfiles.PublicKeyFromData(tt.key, tt.data)
			if tt.wantErr == nil {
				if err != nil || got != server.Public {
					t.Fatalf("got %s, %v; want %s", got, err, server.Public)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %v; want one wrapping %q that names %s", err, tt.wantErr, tt.key)
			}
			assertNoSecret(t, "error", err.Error(), other.Secret, server.Secret)
		})
	}
}

func TestParseKeyFile(t *testing.T) {
	p := newPair(t)
	z := p.Public.String()
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"bare", z, true},
		{"newline", z + "\n", true},
		{"crlf", z + "\r\n", true},
		{"two newlines", z + "\n\n", false},
		{"carriage return only", z + "\r", false},
		{"trailing space", z + " ", false},
		{"short", z[:39], false},
		{"empty", "", false},
		{"newline inside", z[:20] + "\n" + z[21:] + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyfiles.ParseKeyFile([]byte(tt.data))
			if tt.ok != (err == nil) {
				t.Fatalf("error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && got != p.Public {
				t.Fatalf("got %s, want %s", got, p.Public)
			}
			if !tt.ok && !errors.Is(err, keyfiles.ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			sk, serr := keyfiles.ParseSecretKeyFile([]byte(strings.Replace(tt.data, z, p.Secret.Z85(), 1)))
			if tt.ok != (serr == nil) {
				t.Fatalf("secret: error %v, want ok=%v", serr, tt.ok)
			}
			if tt.ok && !sk.Equal(p.Secret) {
				t.Fatal("secret key differs")
			}
			if serr != nil {
				assertNoSecret(t, "secret error", serr.Error(), p.Secret)
			}
		})
	}
}

// TestLoadServerKeysStagedNext: while the operator stages a rotation, the
// server accepts HELLOs for the next key too, before any client has it.
func TestLoadServerKeysStagedNext(t *testing.T) {
	cur, prev, next := newPair(t), newPair(t), newPair(t)
	tests := []struct {
		name    string
		files   map[string]string
		want    []keygen.PublicKey
		wantErr error
	}{
		{name: "staged next", files: map[string]string{
			"secret.key": cur.Secret.Z85(), "next-secret.key": next.Secret.Z85(), "next-public.key": next.Public.String()},
			want: []keygen.PublicKey{cur.Public, next.Public}},
		{name: "overlap and staged next", files: map[string]string{
			"secret.key": cur.Secret.Z85(), "previous-secret.key": prev.Secret.Z85(), "next-secret.key": next.Secret.Z85()},
			want: []keygen.PublicKey{cur.Public, prev.Public, next.Public}},
		{name: "next public without its secret", files: map[string]string{
			"secret.key": cur.Secret.Z85(), "next-public.key": next.Public.String()},
			wantErr: keyfiles.ErrMissing},
		{name: "next pair that does not match", files: map[string]string{
			"secret.key": cur.Secret.Z85(), "next-secret.key": next.Secret.Z85(), "next-public.key": prev.Public.String()},
			wantErr: keyfiles.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			keys, err := keyfiles.LoadServerKeys(dir)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want one wrapping %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pairs := keys.Pairs()
			if len(pairs) != len(tt.want) {
				t.Fatalf("%d accepted keys, want %d", len(pairs), len(tt.want))
			}
			for i, p := range pairs {
				if p.Public != tt.want[i] {
					t.Errorf("accepted key %d is %s, want %s", i, p.Public, tt.want[i])
				}
			}
		})
	}
}

// assertNoRun fails, and returns false, when text holds any 4-character run
// of z. It never prints z.
func assertNoRun(t *testing.T, what, text, z string) bool {
	t.Helper()
	for j := 0; j+4 <= len(z); j++ {
		if strings.Contains(text, z[j:j+4]) {
			t.Errorf("%s repeats 4 characters of the secret key (at offset %d of the key); text withheld", what, j)
			return false
		}
	}
	return true
}

// keyWith returns the first keypair drawn from seeded whose secret key's Z85
// satisfies ok.
func keyWith(t *testing.T, seeded io.Reader, ok func(z string) bool) keygen.KeyPair {
	t.Helper()
	for range 20000 {
		p, err := keygen.GenerateKeyPair(seeded)
		if err != nil {
			t.Fatal(err)
		}
		if ok(p.Secret.Z85()) {
			return p
		}
	}
	t.Fatal("no such key generated")
	return keygen.KeyPair{}
}

// TestReadPublicKeyHidesArgument: a secret key given where a server public
// key is expected, one character too long or too short, is neither a file
// nor a public key, and the error must not repeat any of it, even when the
// key holds a '/' and so could read as a path. The keys come from a fixed
// seed: with fresh ones, a key would now and then share 4 characters with the
// fixed words of the message, and the test would fail at random.
func TestReadPublicKeyHidesArgument(t *testing.T) {
	seeded := rand.NewChaCha8([32]byte{'k', 'e', 'y'})
	anyKey := func(string) bool { return true }
	plain := keyWith(t, seeded, anyKey).Secret.Z85()
	slash := keyWith(t, seeded, func(z string) bool { return strings.Contains(z[1:39], "/") }).Secret.Z85()
	rooted := keyWith(t, seeded, func(z string) bool { return z[0] == '/' }).Secret.Z85()
	for _, z := range []string{plain, slash, rooted} {
		for _, arg := range []string{z + " ", z[:39], " " + z, z + "\n", `"` + z + `"`, z[:20], z + z} {
			_, err := keyfiles.ReadPublicKey(arg)
			if err == nil {
				t.Fatalf("accepted a %d-character argument", len(arg))
			}
			if !assertNoRun(t, "error", err.Error(), z) {
				continue
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("(%d characters", len(arg))) {
				t.Errorf("error %q does not give the argument's length %d", err, len(arg))
			}
		}
	}
	// A path is shown when it clearly is one: its directory exists.
	dir := t.TempDir()
	missing := filepath.Join(dir, "server.key")
	if _, err := keyfiles.ReadPublicKey(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want an error naming %s", err, missing)
	}
	deep := filepath.Join(dir, "no-such-dir", "server.key")
	if _, err := keyfiles.ReadPublicKey(deep); !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no-such-dir") {
		t.Errorf("file in a missing directory: %v, want ErrNotExist without the argument", err)
	}
}
