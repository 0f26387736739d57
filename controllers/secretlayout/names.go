package secretlayout

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// SecretType is the type of every keypair Secret. The files it holds are
// filecontract's (docs/architecture.md, section 5).
const SecretType corev1.SecretType = v1alpha1.SecretTypeCurve

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

// Allowlist ConfigMap name; the files it holds are filecontract's.
const (
	// AllowlistSuffix ends the name of a server's allowlist ConfigMap.
	AllowlistSuffix = "-allowlist"
)

// AllowlistConfigMapName returns the name of a CurveServer's allowlist
// ConfigMap: "<server>-allowlist".
func AllowlistConfigMapName(server string) string { return server + AllowlistSuffix }
