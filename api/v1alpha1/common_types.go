package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MinRotationPeriod is the shortest rotation period the API accepts. Keys are
// rotated no more often than this on schedule; to rotate sooner, for example
// in a test or after a suspected leak, set the zmqauth.io/rotate annotation
// (AnnotationRotate) instead.
const MinRotationPeriod = "5m"

// Default rotation schedule, applied by the API server when a field is
// omitted.
const (
	// DefaultRotationPeriod is the rotation period when none is given.
	DefaultRotationPeriod = "720h"
	// DefaultRotationOverlap is the rotation overlap when none is given.
	DefaultRotationOverlap = "24h"
)

// RotationSpec says how often a keypair is replaced and how long the
// previous key stays valid after a rotation.
//
// Durations are written as a number and a unit, combined as needed: "720h",
// "90m", "1h30m" (units: h, m, s, ms, us, ns).
//
// +kubebuilder:validation:XValidation:rule=`!has(self.period) || !has(self.overlap) || !self.period.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.overlap.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.overlap) < duration(self.period)`,message="overlap must be shorter than period: during the overlap both the old and the new key are accepted, and the next rotation must not start before it ends (overlap defaults to 24h, so set it explicitly when period is 24h or less)",fieldPath=".overlap",reason=FieldValueInvalid
type RotationSpec struct {
	// Period is how long a keypair is used before it is replaced, e.g. 720h
	// (30 days). At least 5m; use the zmqauth.io/rotate annotation to rotate
	// on demand.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$')`,message="period must be a duration such as 720h, 90m or 1h30m (units: h, m, s, ms, us, ns)"
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('5m')`,message="period must be at least 5m; to rotate sooner, set the zmqauth.io/rotate annotation"
	// +optional
	Period *metav1.Duration `json:"period,omitempty"`

	// Overlap is how long after a rotation the previous key is still
	// accepted, so that peers holding the old key (a server's clients, or a
	// client's servers) pick up the new one without a refused connection,
	// e.g. 24h. Must be shorter than period. 0s switches keys at once.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$')`,message="overlap must be a duration such as 24h, 90m or 0s (units: h, m, s, ms, us, ns)"
	// +optional
	Overlap *metav1.Duration `json:"overlap,omitempty"`
}

// Z85PublicKey is a CURVE public key written as 40 characters of Z85
// (ZeroMQ RFC 32), the text form curve_keygen, zmq_curve_keypair() and
// pyzmq's zmq.curve_keypair() print, e.g.
// "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7". Never put a secret key here.
//
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[0-9a-zA-Z.:+=^!/*?&<>()\[\]{}@%$#-]{40}$')`,message="key must be a 40-character Z85 CURVE public key (ZeroMQ RFC 32), e.g. the public key printed by curve_keygen, with no quotes, spaces or newline"
type Z85PublicKey string

// NamedPublicKey is the public key of a client that is not a CurveClient,
// such as a process outside the cluster, with a name for it.
type NamedPublicKey struct {
	// Name identifies the key in the allowlist, in logs and in the identity
	// (User-Id) the sidecar hands to the application. A DNS-1123 subdomain,
	// e.g. "alice-laptop" or "ingest.site-b".
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')`,message="name must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	Name string `json:"name"`

	// Key is the client's CURVE public key: 40 characters of Z85.
	// +required
	Key Z85PublicKey `json:"key"`
}
