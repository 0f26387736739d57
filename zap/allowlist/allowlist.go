// Package allowlist holds a server's allowlist: the set of client CURVE
// public keys that may connect, each with the identity the application sees
// as the connection's User-Id.
//
// An allowlist is loaded from the directory layout pyzmq's
// configure_curve(location=DIR) and CZMQ's zcertstore read: every NAME.key
// file in the directory is one zcert public certificate, one allowed key.
// zmqauth's allowlist ConfigMap is mounted in that layout
// (docs/architecture.md, "5. File contract between operator and sidecar"),
// so a pyzmq server and the sidecar accept exactly the same keys.
//
// Identities: a file whose metadata has "identity" (as every file the
// operator writes does: a CurveClient's "namespace/name", including the
// NAMESPACE.NAME.previous.key entry of a client in its rotation overlap, or a
// raw key's name) has that identity. Otherwise a file named NAMESPACE.NAME.key
// (a Kubernetes namespace, a dot, a Kubernetes object name) is the
// CurveClient NAMESPACE/NAME. Any other file
// (for instance one named by a digest, for a raw key) has the identity in its
// metadata "name" if set, else the key itself in Z85.
//
// Ignored: names starting with "." (dotfiles, and the kubelet's "..data" and
// "..TIMESTAMP" entries), names that do not end in ".key" (pyzmq ignores
// them too), and index.json, the ConfigMap's machine-readable
// index, which is informational: the certificate files alone decide who is
// allowed, so what the sidecar enforces is what pyzmq would enforce.
//
// Refused, failing the whole load so that the caller keeps its last good
// snapshot: an unreadable directory, a .key file that is not a valid public
// certificate (among them one holding a bare 40-character Z85 key, which may
// be a secret key.key file copied in by mistake), and any secret key file,
// by name (a NAME.key_secret file, or a name filecontract.IsSecretFileName gives,
// such as secret.key) or by content (a .key file holding a secret-key):
// secret keys must never sit in an allowlist. Errors name the file and never
// repeat its content. An empty directory is a valid allowlist that allows
// nobody.
package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
)

// maxModeFile bounds what is read of a mode file.
const maxModeFile = 64

// kubeletData is the symlink through which the kubelet swaps the content of
// a mounted ConfigMap or Secret atomically.
const kubeletData = "..data"

// Sentinel errors, for errors.Is.
var (
	// ErrSecretCertificate marks a secret certificate or a secret key file
	// found in an allowlist.
	ErrSecretCertificate = errors.New("secret certificate in an allowlist")
	// ErrCertificate marks a .key file that is not a valid public certificate.
	ErrCertificate = errors.New("invalid certificate")
)

// Entry is one allowed client key.
type Entry struct {
	// Key is the client's long-term CURVE public key.
	Key keygen.PublicKey
	// Identity is who the key belongs to: "namespace/name" for a
	// CurveClient, else the certificate's metadata name, else the key in Z85.
	Identity string
	// Source is where the entry came from: the certificate file's path (or
	// the data key, for FromData).
	Source string
}

// Previous reports whether the entry is a client's previous key, kept for
// its rotation overlap (filecontract.IsPreviousClientKeyFile of its file
// name).
func (e Entry) Previous() bool {
	return filecontract.IsPreviousClientKeyFile(filepath.Base(e.Source))
}

// Allowlist is an immutable snapshot of allowed client keys. It is safe for
// concurrent use. A nil *Allowlist allows nobody.
type Allowlist struct {
	byKey    map[keygen.PublicKey]Entry
	entries  []Entry // sorted by Identity, then Source
	declared bool    // the source held index.json
	mode     string  // the content of filecontract.ModeFile, trimmed; "" without one
}

// Mode returns the content of the source's mode file (filecontract.ModeFile), without
// surrounding space, or "" when it had none.
func (a *Allowlist) Mode() string {
	if a == nil {
		return ""
	}
	return a.mode
}

// Declared reports whether the allowlist's source held the operator's
// index.json. An operator's allowlist ConfigMap always does, so an empty
// declared allowlist is a server nobody has been granted yet, while an empty
// directory without it may be a mount not filled yet.
func (a *Allowlist) Declared() bool { return a != nil && a.declared }

// New returns an allowlist of the given entries. When a key appears more than
// once, the entry with a CurveClient identity wins, then the one whose Source
// sorts first.
func New(entries ...Entry) *Allowlist {
	a := &Allowlist{byKey: make(map[keygen.PublicKey]Entry, len(entries))}
	for _, e := range entries {
		if old, ok := a.byKey[e.Key]; ok && !better(e, old) {
			continue
		}
		a.byKey[e.Key] = e
	}
	a.entries = make([]Entry, 0, len(a.byKey))
	for _, e := range a.byKey {
		a.entries = append(a.entries, e)
	}
	slices.SortFunc(a.entries, func(x, y Entry) int {
		if c := strings.Compare(x.Identity, y.Identity); c != 0 {
			return c
		}
		return strings.Compare(x.Source, y.Source)
	})
	return a
}

// better reports whether e should replace old for the same key.
func better(e, old Entry) bool {
	ec, oc := isClientIdentity(e.Identity), isClientIdentity(old.Identity)
	if ec != oc {
		return ec
	}
	return e.Source < old.Source
}

// isClientIdentity reports whether id has the form namespace/name.
func isClientIdentity(id string) bool {
	ns, name, ok := strings.Cut(id, "/")
	return ok && dnsLabel.MatchString(ns) && isSubdomain(name)
}

// Lookup returns the entry for a 32-byte client key.
func (a *Allowlist) Lookup(key []byte) (Entry, bool) {
	if a == nil || len(key) != keygen.KeySize {
		return Entry{}, false
	}
	e, ok := a.byKey[keygen.PublicKey(key)]
	return e, ok
}

// Len returns the number of allowed keys.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

// Entries returns a copy of the entries, sorted by identity then source.
func (a *Allowlist) Entries() []Entry {
	if a == nil {
		return nil
	}
	return slices.Clone(a.entries)
}

// LoadDir loads the allowlist in dir; see the package documentation for the
// layout and what is refused. When dir is a kubelet mount (it has a "..data"
// entry), the files are read through the resolved "..data" directory, so one
// load sees one version of the ConfigMap even while the kubelet swaps it.
func LoadDir(dir string) (*Allowlist, error) {
	readDir := dir
	if target, err := filepath.EvalSymlinks(filepath.Join(dir, kubeletData)); err == nil {
		if st, err := os.Stat(target); err == nil && st.IsDir() {
			readDir = target
		}
	}
	des, err := os.ReadDir(readDir)
	if err != nil {
		return nil, fmt.Errorf("allowlist: %w", err)
	}
	var entries []Entry
	for _, de := range des {
		name := de.Name()
		if !wanted(name) {
			continue
		}
		path := filepath.Join(readDir, name)
		shown := filepath.Join(dir, name)
		if filecontract.IsSecretFileName(name) {
			return nil, secretFileError(shown)
		}
		if !strings.HasSuffix(name, keygen.PublicSuffix) {
			continue
		}
		// Follow symlinks: the kubelet's files are links into "..data".
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("allowlist: %s: %w: not a regular file", shown, ErrCertificate)
		}
		data, err := readBounded(path)
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		e, err := parseEntry(name, shown, data)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	a := New(entries...)
	a.declared = slices.ContainsFunc(des, func(de os.DirEntry) bool { return de.Name() == filecontract.IndexFile })
	if slices.ContainsFunc(des, func(de os.DirEntry) bool { return de.Name() == filecontract.ModeFile }) {
		data, err := readBounded(filepath.Join(readDir, filecontract.ModeFile))
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		if a.mode, err = modeText(data); err != nil {
			return nil, fmt.Errorf("allowlist: %s: %w", filepath.Join(dir, filecontract.ModeFile), err)
		}
	}
	return a, nil
}

// modeText returns the trimmed content of a mode file, refusing one too
// long to be a mode name (it is not echoed: nothing read from an allowlist
// is).
func modeText(data []byte) (string, error) {
	m := strings.TrimSpace(string(data))
	if len(m) > maxModeFile {
		return "", fmt.Errorf("%d bytes, too long for a mode name", len(data))
	}
	return m, nil
}

// FromData builds an allowlist from the data of an allowlist ConfigMap read
// from the Kubernetes API (file name to content), with the rules of LoadDir.
func FromData(data map[string][]byte) (*Allowlist, error) {
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	slices.Sort(names)
	var entries []Entry
	for _, name := range names {
		if !wanted(name) {
			continue
		}
		if filecontract.IsSecretFileName(name) {
			return nil, secretFileError(name)
		}
		if !strings.HasSuffix(name, keygen.PublicSuffix) {
			continue
		}
		e, err := parseEntry(name, name, data[name])
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	a := New(entries...)
	_, a.declared = data[filecontract.IndexFile]
	if m, ok := data[filecontract.ModeFile]; ok {
		var err error
		if a.mode, err = modeText(m); err != nil {
			return nil, fmt.Errorf("allowlist: %s: %w", filecontract.ModeFile, err)
		}
	}
	return a, nil
}

// readBounded reads at most one byte more than a certificate may hold, so
// that parseEntry can refuse an oversized file without reading all of it.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, keygen.MaxCertificateSize+1))
}

// secretFileError refuses a file whose name says it holds a secret key,
// without reading it.
func secretFileError(shown string) error {
	return fmt.Errorf("allowlist: %s: %w: its name is a secret key file's; remove it, and treat its key as exposed", shown, ErrSecretCertificate)
}

// wanted reports whether a directory entry is looked at at all.
func wanted(name string) bool {
	return !strings.HasPrefix(name, ".") && name != filecontract.IndexFile
}

// parseEntry parses one public certificate file.
func parseEntry(name, shown string, data []byte) (Entry, error) {
	if len(data) > keygen.MaxCertificateSize {
		return Entry{}, fmt.Errorf("allowlist: %s: %w: %w", shown, ErrCertificate, keygen.ErrTooLarge)
	}
	if _, err := keyfiles.ParseKeyFile(bytes.TrimSpace(data)); err == nil {
		// A bare key is likely a key file (public.key, or secret.key by
		// mistake) copied in: it may be a secret key, so never show it.
		return Entry{}, fmt.Errorf("allowlist: %s: %w: it holds a bare %d-character Z85 key, not a zcert public certificate; if it is a secret key, remove the file and treat the key as exposed", shown, ErrCertificate, keygen.KeyTextSize)
	}
	cert, err := keygen.ParsePublicCertificate(data)
	if errors.Is(err, keygen.ErrSecretInPublic) {
		return Entry{}, fmt.Errorf("allowlist: %s: %w: %w", shown, ErrSecretCertificate, err)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("allowlist: %s: %w: %w", shown, ErrCertificate, err)
	}
	return Entry{Key: cert.PublicKey, Identity: identity(name, cert), Source: shown}, nil
}

// identity returns the identity of the key in certificate file name.
func identity(name string, cert *keygen.Certificate) string {
	if id := cert.Metadata[filecontract.MetadataIdentity]; id != "" {
		return id
	}
	stem := strings.TrimSuffix(name, keygen.PublicSuffix)
	if ns, obj, ok := strings.Cut(stem, "."); ok && dnsLabel.MatchString(ns) && isSubdomain(obj) {
		return filecontract.Identity(ns, obj)
	}
	if n := cert.Metadata[filecontract.MetadataName]; n != "" {
		return n
	}
	return cert.PublicKey.String()
}

// dnsLabel matches an RFC 1123 label, a Kubernetes namespace name.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// isSubdomain reports whether s is an RFC 1123 subdomain, a Kubernetes
// object name.
func isSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !dnsLabel.MatchString(label) {
			return false
		}
	}
	return true
}
