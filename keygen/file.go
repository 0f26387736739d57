package keygen

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// PublicSuffix ends the name of a public certificate file.
	PublicSuffix = ".key"
	// SecretSuffix ends the name of a secret certificate file.
	SecretSuffix = ".key_secret"
	// PublicFileMode is the mode of a written public certificate file.
	PublicFileMode fs.FileMode = 0o644
	// SecretFileMode is the mode of a written secret certificate file.
	SecretFileMode fs.FileMode = 0o600
	// MaxCertificateSize bounds the certificate files this package reads.
	// Real ones are under 1 KiB.
	MaxCertificateSize = 64 << 10
)

// ReadCertificate reads a public or secret certificate file; see ParseCertificate.
func ReadCertificate(path string) (*Certificate, error) {
	return readCertificate(path, anyCert)
}

// ReadPublicCertificate reads a public certificate file (NAME.key) and
// refuses, with ErrSecretInPublic, a file that holds a secret-key.
func ReadPublicCertificate(path string) (*Certificate, error) {
	return readCertificate(path, publicCert)
}

// ReadSecretCertificate reads a secret certificate file (NAME.key_secret)
// and requires its secret-key.
func ReadSecretCertificate(path string) (*Certificate, error) {
	return readCertificate(path, secretCert)
}

func readCertificate(path string, kind certKind) (*Certificate, error) {
	data, err := readBounded(path, MaxCertificateSize)
	if err != nil {
		return nil, fmt.Errorf("keygen: read certificate: %w", err)
	}
	c, err := parseCertificate(data, kind)
	if err != nil {
		return nil, fmt.Errorf("keygen: certificate %s: %w", path, err)
	}
	return c, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

// CertificatePaths returns the public (DIR/NAME.key) and secret
// (DIR/NAME.key_secret) file paths of a certificate. NAME must be a plain
// file name: not empty, no path separator, not "." or "..".
func CertificatePaths(dir, name string) (public, secret string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.ContainsRune(name, filepath.Separator) {
		return "", "", fmt.Errorf("keygen: %w %q: want a plain file name", ErrName, name)
	}
	base := filepath.Join(dir, name)
	return base + PublicSuffix, base + SecretSuffix, nil
}

// WriteOptions tunes WriteCertificateFiles.
type WriteOptions struct {
	// Overwrite replaces existing files; without it an existing file of
	// either name is an error wrapping fs.ErrExist and nothing is written.
	Overwrite bool
}

// WriteCertificateFiles writes c as DIR/NAME.key (mode 0644) and
// DIR/NAME.key_secret (mode 0600), the files pyzmq's create_certificates
// makes, and returns their paths. Each file is written to a temporary file in
// DIR, synced and renamed into place, so a reader never sees a partial file.
// All checks (name, directory, certificate, existing files) run before
// anything is written, and both files are staged before either is put in
// place. Without Overwrite a failure leaves nothing behind; with it, only a
// failed rename of the second file (after the first was replaced) can leave
// the pair half-replaced.
func WriteCertificateFiles(dir, name string, c *Certificate, opts WriteOptions) (publicPath, secretPath string, err error) {
	publicPath, secretPath, err = CertificatePaths(dir, name)
	if err != nil {
		return "", "", err
	}
	fail := func(err error) (string, string, error) {
		return "", "", fmt.Errorf("keygen: write certificate: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return fail(err)
	} else if !st.IsDir() {
		return fail(fmt.Errorf("%s: not a directory", dir))
	}
	publicData, err := c.marshal(publicBanner, false)
	if err != nil {
		return fail(err)
	}
	secretData, err := c.marshal(secretBanner, true)
	if err != nil {
		return fail(err)
	}
	if !opts.Overwrite {
		for _, p := range []string{publicPath, secretPath} {
			if _, err := os.Lstat(p); err == nil {
				return fail(&fs.PathError{Op: "create", Path: p, Err: fs.ErrExist})
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fail(err)
			}
		}
	}

	// Stage both files before installing either.
	secretTmp, err := writeTemp(dir, name, secretData, SecretFileMode)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(secretTmp) // no-op once renamed or linked-and-removed
	publicTmp, err := writeTemp(dir, name, publicData, PublicFileMode)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(publicTmp)

	if err := install(secretTmp, secretPath, opts.Overwrite); err != nil {
		return fail(err)
	}
	if err := install(publicTmp, publicPath, opts.Overwrite); err != nil {
		if !opts.Overwrite {
			// We created the secret file a moment ago; take it back.
			_ = os.Remove(secretPath)
		}
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return publicPath, secretPath, nil
}

// writeTemp writes data to a new temporary file in dir with the given mode,
// syncs it and returns its path.
func writeTemp(dir, name string, data []byte, mode fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	path := f.Name()
	err = f.Chmod(mode) // explicit, whatever the umask
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

// install moves tmp to path. Without overwrite it uses a hard link, which
// fails if path exists, so a file created since the check is never replaced;
// on file systems without hard links it falls back to check-then-rename.
func install(tmp, path string, overwrite bool) error {
	if overwrite {
		return os.Rename(tmp, path)
	}
	err := os.Link(tmp, path)
	if err == nil {
		return os.Remove(tmp)
	}
	if errors.Is(err, fs.ErrExist) {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	if _, serr := os.Lstat(path); serr == nil {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	return os.Rename(tmp, path)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
