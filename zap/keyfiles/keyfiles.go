// Package keyfiles loads the CURVE keys the sidecar uses from a mounted
// keypair directory, laid out as zmqauth's keypair Secret
// (docs/architecture.md, "5. File contract between operator and sidecar";
// the names are filecontract's):
//
//	public.key            40-character Z85 public key
//	secret.key            40-character Z85 secret key
//	previous-secret.key   server only, during a rotation overlap
//	previous-public.key   (optional) its public key
//	curve.key, curve.key_secret   the same pair as zcert files (not read here)
//
// A key file holds the 40 characters and nothing else, optionally followed
// by one newline ("\n" or "\r\n"). Every public key given is checked against
// the one derived from its secret key. Errors name the file and the problem
// and never contain a secret key, nor the content of a public key file that
// failed to match (it might be a secret key put in the wrong place).
package keyfiles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// maxKeyFileSize bounds the key files read: a key file is 40 characters, a
// zcert public certificate well under 1 KiB.
const maxKeyFileSize = keygen.MaxCertificateSize

// Sentinel errors, for errors.Is.
var (
	// ErrMissing marks a required key file that does not exist.
	ErrMissing = errors.New("missing")
	// ErrMalformed marks a key file that is not a 40-character Z85 key.
	ErrMalformed = errors.New("malformed key file")
	// ErrMismatch marks a public key that is not the one derived from its
	// secret key.
	ErrMismatch = errors.New("public key does not belong to the secret key")
	// ErrSecretFile marks a secret key file offered where a public key is
	// expected.
	ErrSecretFile = errors.New("secret key file where a public key is expected")
)

// KeyPair is a CURVE keypair; it is keygen's type, whose secret key never
// prints.
type KeyPair = keygen.KeyPair

// ServerKeys are the keys a CURVE server accepts HELLOs for.
type ServerKeys struct {
	// Current is the keypair in force.
	Current KeyPair
	// Previous is the keypair being rotated out, during an overlap; nil
	// otherwise. Clients that still hold its public key keep connecting.
	Previous *KeyPair
	// Next is the staged keypair a rotation will switch to; nil otherwise.
	// HELLOs made for it are accepted already.
	Next *KeyPair
}

// Pairs returns the current keypair followed by the previous and the next
// one, when present.
func (s ServerKeys) Pairs() []KeyPair {
	pairs := []KeyPair{s.Current}
	if s.Previous != nil {
		pairs = append(pairs, *s.Previous)
	}
	if s.Next != nil {
		pairs = append(pairs, *s.Next)
	}
	return pairs
}

// LoadServerKeys loads a server's keypair directory: secret.key (required),
// public.key (checked against secret.key; derived when absent), and during an
// overlap previous-secret.key with optional previous-public.key. A malformed
// previous key is an error, as is previous-public.key without
// previous-secret.key. A previous keypair equal to the current one is
// dropped.
func LoadServerKeys(dir string) (ServerKeys, error) {
	return serverKeys(dirSource(dir))
}

// ServerKeysFromData is LoadServerKeys for the data of a keypair Secret read
// from the Kubernetes API (file name to content). Errors name the data key.
func ServerKeysFromData(data map[string][]byte) (ServerKeys, error) {
	return serverKeys(mapSource(data))
}

// LoadClientKeys loads a client's keypair directory: secret.key (required)
// and public.key (checked against it; derived when absent). Server public
// keys in the same directory are read with ReadPublicKey.
func LoadClientKeys(dir string) (KeyPair, error) {
	return loadPair(dirSource(dir), filecontract.SecretKeyFile, filecontract.PublicKeyFile)
}

// ClientKeysFromData is LoadClientKeys for the data of a keypair Secret read
// from the Kubernetes API. Errors name the data key.
func ClientKeysFromData(data map[string][]byte) (KeyPair, error) {
	return loadPair(mapSource(data), filecontract.SecretKeyFile, filecontract.PublicKeyFile)
}

// source reads the files of a keypair directory or Secret.
type source interface {
	// read returns a file's content; an absent file gives an error
	// wrapping ErrMissing.
	read(name string) ([]byte, error)
	// where names a file in errors.
	where(name string) string
}

// dirSource reads files from a directory.
type dirSource string

func (d dirSource) read(name string) ([]byte, error) { return readBounded(d.where(name)) }
func (d dirSource) where(name string) string         { return filepath.Join(string(d), name) }

// mapSource reads files from Secret data.
type mapSource map[string][]byte

func (m mapSource) read(name string) ([]byte, error) {
	data, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("keyfiles: %s: %w", name, ErrMissing)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("keyfiles: %s: %w: larger than %d bytes", name, ErrMalformed, maxKeyFileSize)
	}
	return data, nil
}
func (m mapSource) where(name string) string { return name }

func serverKeys(src source) (ServerKeys, error) {
	cur, err := loadPair(src, filecontract.SecretKeyFile, filecontract.PublicKeyFile)
	if err != nil {
		return ServerKeys{}, err
	}
	keys := ServerKeys{Current: cur}
	if keys.Previous, err = optionalPair(src, cur, filecontract.PreviousSecretKeyFile, filecontract.PreviousPublicKeyFile); err != nil {
		return ServerKeys{}, err
	}
	if keys.Next, err = optionalPair(src, cur, filecontract.NextSecretKeyFile, filecontract.NextPublicKeyFile); err != nil {
		return ServerKeys{}, err
	}
	return keys, nil
}

// optionalPair loads an extra keypair (previous or next) when its secret
// file is present; nil when absent or equal to the current one. A public
// file without its secret file is an error.
func optionalPair(src source, cur KeyPair, secretName, publicName string) (*KeyPair, error) {
	if _, err := src.read(secretName); errors.Is(err, ErrMissing) {
		if _, perr := src.read(publicName); !errors.Is(perr, ErrMissing) {
			return nil, fmt.Errorf("keyfiles: %s: present without %s: %w", src.where(publicName), secretName, ErrMissing)
		}
		return nil, nil
	}
	pair, err := loadPair(src, secretName, publicName)
	if err != nil {
		return nil, err
	}
	if pair.Public == cur.Public {
		return nil, nil
	}
	return &pair, nil
}

// loadPair reads a secret key file and, when present, its public key file.
func loadPair(src source, secretName, publicName string) (KeyPair, error) {
	data, err := src.read(secretName)
	if err != nil {
		return KeyPair{}, err
	}
	secret, err := ParseSecretKeyFile(data)
	if err != nil {
		// Its errors never show the input.
		return KeyPair{}, fmt.Errorf("keyfiles: %s: %w", src.where(secretName), err)
	}
	derived, err := keygen.PublicFromSecret(secret)
	if err != nil {
		return KeyPair{}, fmt.Errorf("keyfiles: %s: %w", src.where(secretName), err)
	}
	pair := KeyPair{Public: derived, Secret: secret}

	data, err = src.read(publicName)
	if errors.Is(err, ErrMissing) {
		return pair, nil
	}
	if err != nil {
		return KeyPair{}, err
	}
	public, err := ParseKeyFile(data)
	if err != nil {
		return KeyPair{}, fmt.Errorf("keyfiles: %s: %w", src.where(publicName), err)
	}
	if public != derived {
		// Show only the derived key: the file's content may be a secret key
		// written to the wrong file.
		return KeyPair{}, fmt.Errorf("keyfiles: %s: %w in %s (its public key is %s)", src.where(publicName), ErrMismatch, secretName, derived)
	}
	return pair, nil
}

// ReadPublicKey reads a public key given on a command line or in
// configuration: a path to a file holding one (a 40-character Z85 key file
// such as public.key, or a zcert public certificate NAME.key), or else the
// 40-character Z85 key itself. An existing file wins over reading arg as a
// key. Secret key files (see filecontract.IsSecretFileName, and a certificate holding a
// secret-key) are refused. Errors repeat arg only when it clearly is a path
// (see shownArg): otherwise they give its length only, since arg may be a
// secret key pasted by mistake.
func ReadPublicKey(arg string) (keygen.PublicKey, error) {
	st, statErr := os.Stat(arg)
	if statErr == nil && st.Mode().IsRegular() {
		// An existing regular file: arg is a path, and may be shown.
		return readPublicKeyFile(arg)
	}
	if len(arg) == keygen.KeyTextSize {
		// arg may be a key, perhaps a secret one by mistake: never show it.
		k, err := parsePublicText(arg)
		if err != nil {
			return keygen.PublicKey{}, fmt.Errorf("keyfiles: public key argument (%d characters) is neither a regular file nor a Z85 key: %w", len(arg), err)
		}
		return k, nil
	}
	if statErr == nil {
		return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: not a regular file", shownArg(arg))
	}
	// os.Stat's *PathError holds arg: wrap only its cause (errors.Is still
	// finds fs.ErrNotExist and the like).
	cause := statErr
	var pathErr *fs.PathError
	if errors.As(statErr, &pathErr) {
		cause = pathErr.Err
	}
	return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: neither a readable file (%w) nor a %d-character Z85 key", shownArg(arg), cause, keygen.KeyTextSize)
}

// shownArg is how ReadPublicKey's errors name an argument that is neither a
// regular file nor a key. A '/' alone does not make arg a path, since '/' is
// a Z85 character: a secret key may hold one, or start with one. So arg is
// shown only when its parent directory exists and is named (not "/", "."
// or ".."), as for a key file missing from a mounted directory; a key whose
// leading characters happen to name an existing directory is far too
// unlikely to matter. Otherwise only its length is given.
func shownArg(arg string) string {
	const hidden = "public key argument (%d characters, not shown)"
	if !strings.Contains(arg, "/") {
		return fmt.Sprintf(hidden, len(arg))
	}
	dir := filepath.Dir(arg)
	if base := filepath.Base(dir); base == "/" || base == "." || base == ".." {
		return fmt.Sprintf(hidden, len(arg))
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Sprintf(hidden, len(arg))
	}
	return arg
}

// readPublicKeyFile reads a public key from a key file or a zcert public
// certificate.
func readPublicKeyFile(path string) (keygen.PublicKey, error) {
	if filecontract.IsSecretFileName(filepath.Base(path)) {
		return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: %w", path, ErrSecretFile)
	}
	data, err := readBounded(path)
	if err != nil {
		return keygen.PublicKey{}, err
	}
	return publicKeyFrom(path, data)
}

// PublicKeyFromData is ReadPublicKey's file case for a file read from the
// Kubernetes API: name is its data key in a Secret or ConfigMap (refused
// when it names a secret key file), data its content (a Z85 key file or a
// zcert public certificate). Errors name the data key, never the content.
func PublicKeyFromData(name string, data []byte) (keygen.PublicKey, error) {
	if filecontract.IsSecretFileName(name) {
		return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: %w", name, ErrSecretFile)
	}
	if len(data) > maxKeyFileSize {
		return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: %w: larger than %d bytes", name, ErrMalformed, maxKeyFileSize)
	}
	return publicKeyFrom(name, data)
}

// publicKeyFrom parses a public key file or certificate named shown.
func publicKeyFrom(shown string, data []byte) (keygen.PublicKey, error) {
	if text, ok := keyText(data); ok {
		k, err := parsePublicText(text)
		if err != nil {
			return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: %w", shown, err)
		}
		return k, nil
	}
	cert, err := keygen.ParsePublicCertificate(data)
	if err != nil {
		if errors.Is(err, keygen.ErrSecretInPublic) {
			return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: %w: %w", shown, ErrSecretFile, err)
		}
		return keygen.PublicKey{}, fmt.Errorf("keyfiles: %s: neither a Z85 key file nor a zcert public certificate: %w", shown, err)
	}
	return cert.PublicKey, nil
}

// ParseKeyFile parses the content of a public key file: 40 Z85 characters,
// optionally followed by one "\n" or "\r\n". Errors do not contain the data.
func ParseKeyFile(data []byte) (keygen.PublicKey, error) {
	text, ok := keyText(data)
	if !ok {
		return keygen.PublicKey{}, fmt.Errorf("%w: want %d Z85 characters and at most one trailing newline, got %d bytes", ErrMalformed, keygen.KeyTextSize, len(data))
	}
	return parsePublicText(text)
}

// ParseSecretKeyFile parses the content of a secret key file, with the rules
// of ParseKeyFile. Errors never contain the data.
func ParseSecretKeyFile(data []byte) (keygen.SecretKey, error) {
	text, ok := keyText(data)
	if !ok {
		return keygen.SecretKey{}, fmt.Errorf("%w: want %d Z85 characters and at most one trailing newline, got %d bytes", ErrMalformed, keygen.KeyTextSize, len(data))
	}
	k, err := keygen.ParseSecretKey(text)
	if err != nil {
		return keygen.SecretKey{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return k, nil
}

// keyText strips one trailing newline from a key file and reports whether
// what is left has the length of a Z85 key and no line break.
func keyText(data []byte) (string, bool) {
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s, len(s) == keygen.KeyTextSize && !strings.ContainsAny(s, "\r\n")
}

// parsePublicText parses 40 Z85 characters as a public key. Its errors give
// the problem and position but never the text: the caller cannot be sure the
// text is not a secret key.
func parsePublicText(s string) (keygen.PublicKey, error) {
	// Parsing as a secret key gives errors that withhold the input.
	sk, err := keygen.ParseSecretKey(s)
	if err != nil {
		var zerr *keygen.Z85Error
		if errors.As(err, &zerr) {
			return keygen.PublicKey{}, fmt.Errorf("%w: invalid Z85 at position %d", ErrMalformed, zerr.Position)
		}
		return keygen.PublicKey{}, fmt.Errorf("%w: want %d Z85 characters, got %d", ErrMalformed, keygen.KeyTextSize, len(s))
	}
	k, err := keygen.PublicKeyFromBytes(sk.Bytes())
	if err != nil {
		return keygen.PublicKey{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return k, nil
}

// readBounded reads a file of at most maxKeyFileSize bytes. A file that does
// not exist gives an error wrapping ErrMissing and fs.ErrNotExist.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyfiles: %s: %w: %w", path, ErrMissing, err)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfiles: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyfiles: read %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("keyfiles: %s: %w: larger than %d bytes", path, ErrMalformed, maxKeyFileSize)
	}
	return data, nil
}
