package keys

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// Kind adapts one of the kinds that hold a keypair (CurveServer,
// CurveClient) to the key and rotation controllers, which are written once
// for both.
type Kind struct {
	// Name is the API kind, e.g. "CurveServer"; also the kind label of
	// metrics.
	Name string
	// KeepPreviousSecret says whether the previous secret key is kept during
	// an overlap: a server must still answer handshakes made for its old
	// key, a client only needs its old public key to stay on allowlists.
	KeepPreviousSecret bool
	// NewObject returns an empty object of the kind.
	NewObject func() client.Object
	// Fields returns access to the fields of obj (of this kind) that the
	// controllers read and write.
	Fields func(obj client.Object) Fields
}

// Fields points into one object's spec and status. Pointers to status
// fields are written by the keys reconciler only.
type Fields struct {
	// SecretName is spec.secretName.
	SecretName string
	// Rotation is spec.rotation (nil: no scheduled rotation).
	Rotation *v1alpha1.RotationSpec
	// ReadyFrom are the condition types the Ready condition sums up.
	ReadyFrom []string

	PublicKey         *string
	PreviousPublicKey *string
	// NextPublicKey is nil for kinds whose status does not publish a
	// staged next key.
	NextPublicKey       *string
	KeyRevision         *int64
	LastRotationTime    **metav1.Time
	NextRotationTime    **metav1.Time
	LastRotationRequest *string
	ObservedGeneration  *int64
	Conditions          *[]metav1.Condition
}

// ServerKind is the Kind of CurveServer.
func ServerKind() Kind {
	return Kind{
		Name:               "CurveServer",
		KeepPreviousSecret: true,
		NewObject:          func() client.Object { return &v1alpha1.CurveServer{} },
		Fields: func(obj client.Object) Fields {
			o := obj.(*v1alpha1.CurveServer)
			ready := []string{v1alpha1.ConditionKeyReady, v1alpha1.ConditionAllowlistReady}
			if o.Spec.Publish != nil {
				ready = append(ready, v1alpha1.ConditionPublished)
			}
			s := &o.Status
			return Fields{
				SecretName:          o.Spec.SecretName,
				Rotation:            o.Spec.Rotation,
				ReadyFrom:           ready,
				PublicKey:           &s.PublicKey,
				PreviousPublicKey:   &s.PreviousPublicKey,
				NextPublicKey:       &s.NextPublicKey,
				KeyRevision:         &s.KeyRevision,
				LastRotationTime:    &s.LastRotationTime,
				NextRotationTime:    &s.NextRotationTime,
				LastRotationRequest: &s.LastRotationRequest,
				ObservedGeneration:  &s.ObservedGeneration,
				Conditions:          &s.Conditions,
			}
		},
	}
}

// ClientKind is the Kind of CurveClient.
func ClientKind() Kind {
	return Kind{
		Name:      "CurveClient",
		NewObject: func() client.Object { return &v1alpha1.CurveClient{} },
		Fields: func(obj client.Object) Fields {
			o := obj.(*v1alpha1.CurveClient)
			s := &o.Status
			return Fields{
				SecretName:          o.Spec.SecretName,
				Rotation:            o.Spec.Rotation,
				ReadyFrom:           []string{v1alpha1.ConditionKeyReady, v1alpha1.ConditionAuthorized},
				PublicKey:           &s.PublicKey,
				PreviousPublicKey:   &s.PreviousPublicKey,
				NextPublicKey:       &s.NextPublicKey,
				KeyRevision:         &s.KeyRevision,
				LastRotationTime:    &s.LastRotationTime,
				NextRotationTime:    &s.NextRotationTime,
				LastRotationRequest: &s.LastRotationRequest,
				ObservedGeneration:  &s.ObservedGeneration,
				Conditions:          &s.Conditions,
			}
		},
	}
}

// Schedule returns the rotation period and overlap of a rotation spec, with
// the API's defaults for omitted fields. scheduled is false when there is no
// rotation block: such keys rotate only on request, with the default
// overlap.
func Schedule(r *v1alpha1.RotationSpec) (period, overlap time.Duration, scheduled bool) {
	period, _ = time.ParseDuration(v1alpha1.DefaultRotationPeriod)
	overlap, _ = time.ParseDuration(v1alpha1.DefaultRotationOverlap)
	if r == nil {
		return period, overlap, false
	}
	if r.Period != nil {
		period = r.Period.Duration
	}
	if r.Overlap != nil {
		overlap = r.Overlap.Duration
	}
	if overlap < 0 {
		overlap = 0
	}
	return period, overlap, period > 0
}
