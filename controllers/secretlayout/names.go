package secretlayout

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/keygen"
)

// Data keys of a keypair Secret.
const (
	// SecretType is the type of every keypair Secret.
	SecretType corev1.SecretType = v1alpha1.SecretTypeCurve

	// KeyPublic holds the current public key (40 Z85 characters).
	KeyPublic = v1alpha1.SecretKeyPublic
	// KeySecret holds the current secret key (40 Z85 characters).
	KeySecret = v1alpha1.SecretKeySecret
	// KeyCertificate holds the current public zcert certificate.
	KeyCertificate = v1alpha1.SecretKeyCertificate
	// KeySecretCertificate holds the current secret zcert certificate.
	KeySecretCertificate = v1alpha1.SecretKeySecretCertificate
	// KeyPreviousPublic holds the previous public key during an overlap.
	KeyPreviousPublic = v1alpha1.SecretKeyPreviousPublic
	// KeyPreviousSecret holds a CurveServer's previous secret key during an
	// overlap.
	KeyPreviousSecret = v1alpha1.SecretKeyPreviousSecret
	// KeyNextPublic and KeyNextSecret hold, while a rotation is staged, the
	// keypair the next rotation step switches to. Servers accept a client's
	// next key and a server's sidecar accepts HELLOs for its next key before
	// anyone uses it, so the switch never presents a key a peer has not
	// loaded yet.
	KeyNextPublic = "next-public.key"
	// KeyNextSecret: see KeyNextPublic.
	KeyNextSecret = "next-secret.key"

	// ServerKeyPrefix starts the data key of each server public certificate
	// in a CurveClient's Secret (see ServerKeyFileName).
	ServerKeyPrefix = "server."
	// KeyFileSuffix ends every zcert public certificate file name.
	KeyFileSuffix = ".key"
)

// KeyFiles are the data keys holding the current keypair, in the order they
// are checked and reported.
var KeyFiles = []string{KeyPublic, KeySecret, KeyCertificate, KeySecretCertificate}

// Labels and annotations zmqauth puts on the objects it writes.
const (
	// LabelManagedBy marks every Secret and ConfigMap zmqauth writes, so
	// the manager's cache holds only those (with value ManagedBy).
	LabelManagedBy = "zmqauth.io/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "zmqauth"

	// LabelAllowlist marks a server's allowlist ConfigMap; its value is the
	// CurveServer's name.
	LabelAllowlist = "zmqauth.io/allowlist"

	// AnnotationKeyRevision (keypair Secret) is the revision of the current
	// keypair, a decimal integer: 1 for the first, one more per rotation.
	AnnotationKeyRevision = "zmqauth.io/key-revision"
	// AnnotationRotatedAt (keypair Secret) is when the current keypair was
	// made, RFC 3339.
	AnnotationRotatedAt = "zmqauth.io/rotated-at"
	// AnnotationOverlapUntil (keypair Secret) is, during an overlap, when the
	// previous key stops being accepted, RFC 3339. Absent otherwise.
	AnnotationOverlapUntil = "zmqauth.io/overlap-until"
	// AnnotationNextSince (keypair Secret) is, while a rotation is staged,
	// when the next keypair was written; the switch to it waits for the
	// propagation delay after this time.
	AnnotationNextSince = "zmqauth.io/next-since"
	// AnnotationRotationRequest (keypair Secret) is the value of the CR's
	// zmqauth.io/rotate annotation that has been answered; written in the
	// same write as the rotation so a request is answered exactly once.
	AnnotationRotationRequest = "zmqauth.io/rotation-request"
	// AnnotationRotationReason (keypair Secret) is why the current keypair
	// was made: v1alpha1.ReasonKeyGenerated, ReasonRotationScheduled,
	// ReasonRotationRequested or ReasonSecretInvalid.
	AnnotationRotationReason = "zmqauth.io/rotation-reason"
)

// Metadata names in the zcert files zmqauth writes.
const (
	// MetadataName, in a keypair Secret's curve.key and curve.key_secret,
	// is "<namespace>/<name>" of the owning CR.
	MetadataName = "name"
	// MetadataIdentity, in an allowlist or server key file, is
	// "<namespace>/<name>" of the key's owner (or a raw key's name).
	MetadataIdentity = "identity"
	// MetadataGrant, in an allowlist file, says what admitted the key.
	MetadataGrant = "grant"
)

// Allowlist ConfigMap layout.
const (
	// AllowlistSuffix ends the name of a server's allowlist ConfigMap.
	AllowlistSuffix = "-allowlist"
	// AllowlistIndex is the data key of the allowlist's JSON index.
	AllowlistIndex = "index.json"
	// AllowlistMode is the data key holding the server's mode, "enforce"
	// or "audit", which sidecars reload with the allowlist, so that a
	// changed spec.mode reaches running pods.
	AllowlistMode = "mode"
	// PreviousSuffix ends the file name of a client's previous key in an
	// allowlist, before KeyFileSuffix.
	PreviousSuffix = ".previous"
	// NextSuffix ends the file name of a client's staged next key in an
	// allowlist, before KeyFileSuffix.
	NextSuffix = ".next"
	// RawKeyPrefix starts the file name of a raw key in an allowlist. The
	// underscore cannot start a namespace name, so a raw key's file never
	// collides with a CurveClient's "<namespace>.<name>.key".
	RawKeyPrefix = "_raw."
)

// Identity returns "<namespace>/<name>", the identity of a CR's key in zcert
// metadata, allowlists and the sidecar's User-Id.
func Identity(namespace, name string) string { return namespace + "/" + name }

// ServerKeyFileName returns the data key, in a CurveClient's Secret, of the
// public certificate of the CurveServer namespace/name:
// "server.<namespace>.<name>.key". Namespace and name are DNS-1123 labels, so
// the name cannot be ambiguous.
func ServerKeyFileName(namespace, name string) string {
	return ServerKeyPrefix + namespace + "." + name + KeyFileSuffix
}

// ParseServerKeyFileName is the inverse of ServerKeyFileName. It reports false
// for a data key that is not a server key file.
func ParseServerKeyFileName(key string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, ServerKeyPrefix)
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

// AllowlistConfigMapName returns the name of a CurveServer's allowlist
// ConfigMap: "<server>-allowlist".
func AllowlistConfigMapName(server string) string { return server + AllowlistSuffix }

// ClientKeyFile returns the allowlist file name of a CurveClient's current
// key: "<namespace>.<name>.key".
func ClientKeyFile(namespace, name string) string {
	return namespace + "." + name + KeyFileSuffix
}

// PreviousClientKeyFile returns the allowlist file name of a CurveClient's
// previous key during its overlap: "<namespace>.<name>.previous.key".
func PreviousClientKeyFile(namespace, name string) string {
	return namespace + "." + name + PreviousSuffix + KeyFileSuffix
}

// NextClientKeyFile returns the allowlist file name of a CurveClient's
// staged next key, admitted before the client switches to it:
// "<namespace>.<name>.next.key".
func NextClientKeyFile(namespace, name string) string {
	return namespace + "." + name + NextSuffix + KeyFileSuffix
}

// RawKeyFile returns the allowlist file name of a raw public key:
// "_raw.<first 16 hex digits of SHA-256 of the 32 key bytes>.key".
func RawKeyFile(key keygen.PublicKey) string {
	sum := sha256.Sum256(key[:])
	return RawKeyPrefix + hex.EncodeToString(sum[:8]) + KeyFileSuffix
}
