// Package filecontract is the file contract between the zmqauth operator and
// its sidecar: the name, file mode and meaning of every file the controllers
// write into a keypair Secret, an allowlist ConfigMap or a published
// ConfigMap, which the kubelet then mounts as a directory and the sidecar
// (zap/keyfiles, zap/allowlist) or pyzmq/CZMQ read. docs/architecture.md,
// section "5. File contract between operator and sidecar", describes it in
// prose; this package is its only spelling in Go, so the writer and the
// reader cannot drift apart.
//
// It sits at the module root, beside keygen and outside controllers/, zap/
// and internal/, because both sides import it (docs/architecture.md section
// 1: zap/ never imports controllers/ or api/) and because whoever else reads
// the mounted files may import it too. It imports only keygen, whose zcert
// suffixes (".key", ".key_secret") it builds names from. Object-level names
// (Secret type, labels, annotations, ConfigMap names) are not files and stay
// with controllers/secretlayout.
//
// Keypair Secret (CurveServer or CurveClient), files mode KeypairFileMode:
//
//	public.key            PublicKeyFile: current public key
//	secret.key            SecretKeyFile: current secret key
//	curve.key             CertificateFile: current public zcert certificate
//	curve.key_secret      SecretCertificateFile: current secret zcert certificate
//	previous-public.key   PreviousPublicKeyFile: during an overlap
//	previous-secret.key   PreviousSecretKeyFile: during a CurveServer's overlap
//	next-public.key       NextPublicKeyFile: while a rotation is staged
//	next-secret.key       NextSecretKeyFile: while a rotation is staged
//	server.NS.NAME.key    ServerKeyFileName: CurveClient only, a named server's key
//
// Allowlist ConfigMap of a CurveServer, files mode AllowlistFileMode, a
// directory pyzmq's configure_curve(location=DIR) reads as well:
//
//	NS.NAME.key           ClientKeyFileName: a CurveClient's current key
//	NS.NAME.previous.key  PreviousClientKeyFileName: its previous key, in its overlap
//	NS.NAME.next.key      NextClientKeyFileName: its staged next key
//	_raw.HEX16.key        RawKeyFileName: a raw public key
//	index.json            IndexFile: machine-readable index, not read for admission
//	mode                  ModeFile: "enforce" or "audit"
//
// Key files (the Z85 ones) hold 40 Z85 characters and nothing else; the
// sidecar also accepts one trailing newline. Certificate files are zcert
// (ZPL) files as keygen writes them, with the metadata names below.
package filecontract

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/zmqauth/zmqauth/keygen"
)

// File modes the injector asks the kubelet for (a volume's defaultMode).
const (
	// KeypairFileMode is the mode of a mounted keypair Secret's files: the
	// files are owned by root, and the pod's fsGroup gives the sidecar read
	// access through the group, while other users get none (the files hold
	// secret keys).
	KeypairFileMode = 0o440
	// AllowlistFileMode is the mode of a mounted allowlist ConfigMap's files,
	// which hold public keys only.
	AllowlistFileMode = 0o444
)

// Files of a keypair Secret.
const (
	// PublicKeyFile holds the current public key, 40 Z85 characters. The
	// sidecar checks it against the key derived from SecretKeyFile, and
	// derives it when absent.
	PublicKeyFile = "public.key"
	// SecretKeyFile holds the current secret key, 40 Z85 characters. The
	// sidecar requires it.
	SecretKeyFile = "secret.key"
	// CertificateFile holds the current keypair's public zcert certificate,
	// metadata MetadataName = "<namespace>/<name>", as pyzmq's
	// zmq.auth.load_certificate() and CZMQ's zcert_load() read it. The
	// sidecar does not read it.
	CertificateFile = "curve.key"
	// SecretCertificateFile holds the current keypair's secret zcert
	// certificate (public and secret key). The sidecar does not read it.
	SecretCertificateFile = "curve.key_secret"
	// PreviousPublicKeyFile holds, during a rotation overlap, the previous
	// public key. A CurveClient's Secret keeps only this one; the client's
	// sidecar ignores it.
	PreviousPublicKeyFile = "previous-public.key"
	// PreviousSecretKeyFile holds, during a CurveServer's rotation overlap,
	// the previous secret key: the server's sidecar still accepts HELLOs
	// made for the previous public key.
	PreviousSecretKeyFile = "previous-secret.key"
	// NextPublicKeyFile holds, while a rotation is staged, the public key the
	// next rotation step switches to. Servers admit a client's next key, and
	// a server's sidecar accepts HELLOs for its next key, before anyone uses
	// it, so the switch never presents a key a peer has not loaded.
	NextPublicKeyFile = "next-public.key"
	// NextSecretKeyFile holds the staged next secret key; see
	// NextPublicKeyFile. A client's sidecar ignores it.
	NextSecretKeyFile = "next-secret.key"

	// ServerKeyFilePrefix starts the name of each server key file in a
	// CurveClient's Secret (see ServerKeyFileName).
	ServerKeyFilePrefix = "server."
	// KeyFileSuffix ends every zcert public certificate file name.
	KeyFileSuffix = keygen.PublicSuffix
)

// KeyPairFiles are the files holding the current keypair, in the order they
// are checked and reported.
var KeyPairFiles = []string{PublicKeyFile, SecretKeyFile, CertificateFile, SecretCertificateFile}

// IsSecretFileName reports whether base, a file name without its directory,
// is one that holds a secret key: SecretKeyFile, PreviousSecretKeyFile,
// NextSecretKeyFile, or a zcert secret certificate NAME.key_secret (among
// them SecretCertificateFile). Such a file must never be read as, or put
// among, public keys.
func IsSecretFileName(base string) bool {
	return base == SecretKeyFile || base == PreviousSecretKeyFile || base == NextSecretKeyFile ||
		strings.HasSuffix(base, keygen.SecretSuffix)
}

// ServerKeyFileName returns the file, in a CurveClient's Secret, holding the
// public zcert certificate (metadata MetadataIdentity) of the CurveServer
// namespace/name's current key: "server.<namespace>.<name>.key". The
// client's sidecar reads it as an outbound route's serverKey. Namespace and
// name are DNS-1123 labels, so the name cannot be ambiguous.
func ServerKeyFileName(namespace, name string) string {
	return ServerKeyFilePrefix + namespace + "." + name + KeyFileSuffix
}

// ParseServerKeyFileName is the inverse of ServerKeyFileName. It reports
// false for a file name that is not a server key file.
func ParseServerKeyFileName(file string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(file, ServerKeyFilePrefix)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, KeyFileSuffix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ".")
	if !ok || namespace == "" || name == "" || strings.Contains(name, ".") {
		return "", "", false
	}
	return namespace, name, true
}

// Files of an allowlist ConfigMap. Every NAME.key file is one allowed key,
// a zcert public certificate with metadata MetadataIdentity and
// MetadataGrant; its identity is what the application sees as User-Id.
const (
	// IndexFile is the allowlist's machine-readable index (one JSON entry per
	// key: key, identity, grant, file, until). The sidecar does not admit by
	// it, so it enforces what pyzmq would; its presence only marks the
	// directory as the operator's, so an empty one means "nobody granted
	// yet" rather than "mount not filled". The controllers read it for
	// Authorized.
	IndexFile = "index.json"
	// ModeFile holds the server's spec.mode, "enforce" or "audit"; the
	// sidecar reloads it with the keys, so a changed mode reaches running
	// pods.
	ModeFile = "mode"
	// PreviousSuffix ends the name of a client's previous key file, before
	// KeyFileSuffix (see PreviousClientKeyFileName).
	PreviousSuffix = ".previous"
	// NextSuffix ends the name of a client's staged next key file, before
	// KeyFileSuffix (see NextClientKeyFileName).
	NextSuffix = ".next"
	// RawKeyPrefix starts the name of a raw key's file. The underscore cannot
	// start a namespace name, so a raw key's file never collides with a
	// CurveClient's "<namespace>.<name>.key".
	RawKeyPrefix = "_raw."
)

// ClientKeyFileName returns the allowlist file of a CurveClient's current
// key: "<namespace>.<name>.key".
func ClientKeyFileName(namespace, name string) string {
	return namespace + "." + name + KeyFileSuffix
}

// PreviousClientKeyFileName returns the allowlist file of a CurveClient's
// previous key, kept only for its rotation overlap:
// "<namespace>.<name>.previous.key". The sidecar treats an entry from such a
// file as a previous key (its retirement, docs/architecture.md section 6).
func PreviousClientKeyFileName(namespace, name string) string {
	return namespace + "." + name + PreviousSuffix + KeyFileSuffix
}

// IsPreviousClientKeyFile reports whether base, a file name without its
// directory, is a client's previous key file (PreviousClientKeyFileName).
func IsPreviousClientKeyFile(base string) bool {
	return strings.HasSuffix(base, PreviousSuffix+KeyFileSuffix)
}

// NextClientKeyFileName returns the allowlist file of a CurveClient's staged
// next key, admitted before the client switches to it:
// "<namespace>.<name>.next.key".
func NextClientKeyFileName(namespace, name string) string {
	return namespace + "." + name + NextSuffix + KeyFileSuffix
}

// RawKeyFileName returns the allowlist file of a raw public key:
// "_raw.<first 16 hex digits of SHA-256 of the 32 key bytes>.key".
func RawKeyFileName(key keygen.PublicKey) string {
	sum := sha256.Sum256(key[:])
	return RawKeyPrefix + hex.EncodeToString(sum[:8]) + KeyFileSuffix
}

// Files of a published ConfigMap "<namespace>.<name>.curve-public", which
// holds a CurveServer's public key in each namespace it is published to.
const (
	// PublishedPublicKeyFile holds the server's public key, 40 Z85
	// characters.
	PublishedPublicKeyFile = PublicKeyFile
	// PublishedCertificateFile holds the server's public key as a zcert
	// public certificate (metadata MetadataIdentity), as pyzmq's
	// zmq.auth.load_certificate() reads it.
	PublishedCertificateFile = "server.key"
)

// Metadata names in the zcert certificate files zmqauth writes.
const (
	// MetadataName, in a keypair Secret's CertificateFile and
	// SecretCertificateFile, is Identity of the owning CR.
	MetadataName = "name"
	// MetadataIdentity, in an allowlist file, a server key file or a
	// published certificate, is the key owner's Identity (or a raw key's
	// name). The sidecar takes it as the key's identity.
	MetadataIdentity = "identity"
	// MetadataGrant, in an allowlist file, says what admitted the key.
	MetadataGrant = "grant"
)

// Identity returns "<namespace>/<name>", the identity of a CR's key in zcert
// metadata, allowlists and the sidecar's User-Id.
func Identity(namespace, name string) string { return namespace + "/" + name }
