package keygen_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

func testPair(t *testing.T) keygen.KeyPair {
	t.Helper()
	secret, err := keygen.ParseSecretKey(srvSecret)
	if err != nil {
		t.Fatal(err)
	}
	public, err := keygen.PublicFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return keygen.KeyPair{Public: public, Secret: secret}
}

// listDir returns the names in dir, to check that nothing stray was written.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	md := map[string]string{"name": "srv", "namespace": "prod"}
	c := keygen.NewCertificate(testPair(t), md)
	pubPath, secPath, err := keygen.WriteCertificateFiles(dir, "srv", c, keygen.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pubPath != filepath.Join(dir, "srv.key") || secPath != filepath.Join(dir, "srv.key_secret") {
		t.Errorf("paths %s, %s", pubPath, secPath)
	}
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{pubPath, 0o644}, {secPath, 0o600}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(f.path), st.Mode().Perm(), f.mode)
		}
	}
	if got := listDir(t, dir); len(got) != 2 {
		t.Errorf("directory holds %v, want only the two certificates", got)
	}

	pub, err := keygen.ReadPublicCertificate(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := keygen.ReadSecretCertificate(secPath)
	if err != nil {
		t.Fatal(err)
	}
	if pub.PublicKey != c.PublicKey || sec.PublicKey != c.PublicKey || !sec.SecretKey.Equal(c.SecretKey) {
		t.Error("files do not hold the written keys")
	}
	if !maps.Equal(pub.Metadata, md) || !maps.Equal(sec.Metadata, md) {
		t.Errorf("metadata %v / %v, want %v", pub.Metadata, sec.Metadata, md)
	}
	// The secret file is refused where a public one is expected.
	if _, err := keygen.ReadPublicCertificate(secPath); !errors.Is(err, keygen.ErrSecretInPublic) {
		t.Errorf("ReadPublicCertificate(secret file): %v, want ErrSecretInPublic", err)
	} else if !strings.Contains(err.Error(), secPath) {
		t.Errorf("error %q does not name the file", err)
	}
	if _, err := keygen.ReadSecretCertificate(pubPath); !errors.Is(err, keygen.ErrMissingSecretKey) {
		t.Errorf("ReadSecretCertificate(public file): %v, want ErrMissingSecretKey", err)
	}
	if any, err := keygen.ReadCertificate(secPath); err != nil || !any.HasSecret() {
		t.Errorf("ReadCertificate(secret file): %v", err)
	}
}

func TestWriteCertificateFilesRefuses(t *testing.T) {
	pair := testPair(t)
	good := keygen.NewCertificate(pair, nil)
	other, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		existing []string // files present before the write
		certName string
		cert     *keygen.Certificate
		opts     keygen.WriteOptions
		want     error
		noDir    bool
	}{
		{"public file exists", []string{"srv.key"}, "srv", good, keygen.WriteOptions{}, fs.ErrExist, false},
		{"secret file exists", []string{"srv.key_secret"}, "srv", good, keygen.WriteOptions{}, fs.ErrExist, false},
		{"both exist", []string{"srv.key", "srv.key_secret"}, "srv", good, keygen.WriteOptions{}, fs.ErrExist, false},
		{"empty name", nil, "", good, keygen.WriteOptions{}, keygen.ErrName, false},
		{"name with slash", nil, "a/b", good, keygen.WriteOptions{}, keygen.ErrName, false},
		{"dot-dot", nil, "..", good, keygen.WriteOptions{}, keygen.ErrName, false},
		{"no secret key", nil, "srv", &keygen.Certificate{PublicKey: pair.Public}, keygen.WriteOptions{}, keygen.ErrMissingSecretKey, false},
		{"mismatched keys", nil, "srv", &keygen.Certificate{PublicKey: other.Public, SecretKey: pair.Secret}, keygen.WriteOptions{}, keygen.ErrKeyMismatch, false},
		{"bad metadata", nil, "srv", keygen.NewCertificate(pair, map[string]string{"bad name": "x"}), keygen.WriteOptions{Overwrite: true}, keygen.ErrMetadata, false},
		{"missing directory", nil, "srv", good, keygen.WriteOptions{}, fs.ErrNotExist, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.existing {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := dir
			if tt.noDir {
				target = filepath.Join(dir, "absent")
			}
			_, _, err := keygen.WriteCertificateFiles(target, tt.certName, tt.cert, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			assertNoSecret(t, err.Error(), srvSecret)
			// Nothing written: the directory holds exactly what it held.
			if got := listDir(t, dir); len(got) != len(tt.existing) {
				t.Errorf("directory now holds %v, want %v", got, tt.existing)
			}
			for _, name := range tt.existing {
				if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "keep me" {
					t.Errorf("%s was changed", name)
				}
			}
		})
	}
}

func TestWriteCertificateFilesOverwrite(t *testing.T) {
	dir := t.TempDir()
	first := keygen.NewCertificate(testPair(t), nil)
	if _, _, err := keygen.WriteCertificateFiles(dir, "srv", first, keygen.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	pair, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	second := keygen.NewCertificate(pair, nil)
	if _, _, err := keygen.WriteCertificateFiles(dir, "srv", second, keygen.WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without Overwrite: %v, want fs.ErrExist", err)
	}
	pubPath, secPath, err := keygen.WriteCertificateFiles(dir, "srv", second, keygen.WriteOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := keygen.ReadSecretCertificate(secPath)
	if err != nil || got.PublicKey != pair.Public {
		t.Fatalf("overwritten secret file: %v", err)
	}
	if st, _ := os.Stat(secPath); st.Mode().Perm() != 0o600 {
		t.Errorf("overwritten secret file mode %v", st.Mode().Perm())
	}
	if pub, err := keygen.ReadPublicCertificate(pubPath); err != nil || pub.PublicKey != pair.Public {
		t.Fatalf("overwritten public file: %v", err)
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v", names)
	}
}

func TestReadCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.key")
	if err := os.WriteFile(big, []byte("curve\n"+strings.Repeat("# pad\n", keygen.MaxCertificateSize/6+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte(cert("curve", pubLine, pubLine)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want error
		msg  string
	}{
		{filepath.Join(dir, "absent.key"), fs.ErrNotExist, "absent.key"},
		{big, keygen.ErrTooLarge, "big.key"},
		{bad, keygen.ErrDuplicate, bad + ": line 3: duplicated public-key"},
		{dir, nil, dir},
	}
	for _, tt := range tests {
		_, err := keygen.ReadCertificate(tt.path)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("ReadCertificate(%s): %v, want %v", tt.path, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("message %q does not say %q", err, tt.msg)
		}
	}
}
