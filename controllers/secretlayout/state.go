package secretlayout

import (
	"fmt"
	"maps"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// State is everything zmqauth keeps in a keypair Secret: the current keypair,
// the previous key during an overlap, and the rotation bookkeeping held in
// annotations. Writing a State is one atomic write of the Secret, which is
// what lets a rotation resume after a restart at any point.
type State struct {
	// Current is the keypair in use.
	Current keygen.KeyPair
	// Previous is, during an overlap, the key replaced by the last rotation;
	// nil otherwise. Its Secret is the zero value for a CurveClient, which
	// keeps only the previous public key.
	Previous *keygen.KeyPair
	// Revision is the revision of Current: 1 for the first keypair.
	Revision int64
	// RotatedAt is when Current was made.
	RotatedAt time.Time
	// OverlapUntil is, when Previous is set, when it stops being accepted.
	OverlapUntil time.Time
	// Next is, while a rotation is staged, the keypair the rotation will
	// switch to; peers learn it before it is used. Nil otherwise.
	Next *keygen.KeyPair
	// NextSince is when Next was staged.
	NextSince time.Time
	// RotationRequest is the last value of the CR's zmqauth.io/rotate
	// annotation that has been answered.
	RotationRequest string
	// RotationReason is why Current was made (a v1alpha1 Reason*).
	RotationReason string
}

// InOverlap reports whether a previous key is still held.
func (s State) InOverlap() bool { return s.Previous != nil }

// Data returns the data keys the state occupies in the Secret: the current
// keypair files and, during an overlap, the previous key.
func (s State) Data(identity string) (map[string][]byte, error) {
	data, err := KeyPairData(s.Current, identity)
	if err != nil {
		return nil, err
	}
	if s.Previous != nil {
		maps.Copy(data, PreviousData(s.Previous.Public, s.Previous.Secret))
	}
	if s.Next != nil {
		maps.Copy(data, NextData(*s.Next))
	}
	return data, nil
}

// Annotations returns the annotations the state occupies in the Secret.
func (s State) Annotations() map[string]string {
	a := map[string]string{
		AnnotationKeyRevision: strconv.FormatInt(s.Revision, 10),
		AnnotationRotatedAt:   s.RotatedAt.UTC().Format(time.RFC3339),
	}
	if s.Previous != nil {
		a[AnnotationOverlapUntil] = s.OverlapUntil.UTC().Format(time.RFC3339)
	}
	if s.Next != nil {
		a[AnnotationNextSince] = s.NextSince.UTC().Format(time.RFC3339)
	}
	if s.RotationRequest != "" {
		a[AnnotationRotationRequest] = s.RotationRequest
	}
	if s.RotationReason != "" {
		a[AnnotationRotationReason] = s.RotationReason
	}
	return a
}

// ReadState parses a keypair Secret strictly: the current keypair must be
// valid (ParseKeyPair), the previous key (ParsePrevious) valid when present
// and accompanied by an overlap-until annotation, and the revision and
// rotated-at annotations well formed. Time stamps have one-second
// resolution, as they are stored.
func ReadState(secret *corev1.Secret) (State, error) {
	var s State
	var err error
	if s.Current, err = ParseKeyPair(secret); err != nil {
		return State{}, err
	}
	pub, pair, err := ParsePrevious(secret)
	if err != nil {
		return State{}, err
	}
	if s.Revision, err = Revision(secret); err != nil {
		return State{}, err
	}
	if s.RotatedAt, err = annotationTime(secret, AnnotationRotatedAt); err != nil {
		return State{}, err
	}
	_, hasOverlap := secret.Annotations[AnnotationOverlapUntil]
	switch {
	case pub != nil && hasOverlap:
		if pair != nil {
			s.Previous = pair
		} else {
			s.Previous = &keygen.KeyPair{Public: *pub}
		}
		if s.OverlapUntil, err = annotationTime(secret, AnnotationOverlapUntil); err != nil {
			return State{}, err
		}
	case pub != nil:
		return State{}, fmt.Errorf("secretlayout: %s without annotation %s", filecontract.PreviousPublicKeyFile, AnnotationOverlapUntil)
	case hasOverlap:
		return State{}, fieldErr(filecontract.PreviousPublicKeyFile, fmt.Errorf("%w (annotation %s is set)", ErrMissing, AnnotationOverlapUntil))
	}
	if s.Next, err = ParseNext(secret); err != nil {
		return State{}, err
	}
	_, hasNextSince := secret.Annotations[AnnotationNextSince]
	switch {
	case s.Next != nil && hasNextSince:
		if s.NextSince, err = annotationTime(secret, AnnotationNextSince); err != nil {
			return State{}, err
		}
	case s.Next != nil:
		return State{}, fmt.Errorf("secretlayout: %s without annotation %s", filecontract.NextPublicKeyFile, AnnotationNextSince)
	case hasNextSince:
		return State{}, fieldErr(filecontract.NextPublicKeyFile, fmt.Errorf("%w (annotation %s is set)", ErrMissing, AnnotationNextSince))
	}
	s.RotationRequest = secret.Annotations[AnnotationRotationRequest]
	s.RotationReason = secret.Annotations[AnnotationRotationReason]
	return s, nil
}

// Revision returns the key revision annotation of a Secret; it must be a
// positive decimal integer.
func Revision(secret *corev1.Secret) (int64, error) {
	v, ok := secret.Annotations[AnnotationKeyRevision]
	if !ok {
		return 0, fmt.Errorf("secretlayout: annotation %s: %w", AnnotationKeyRevision, ErrMissing)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("secretlayout: annotation %s = %q: not a positive integer", AnnotationKeyRevision, v)
	}
	return n, nil
}

// annotationTime parses an RFC 3339 annotation.
func annotationTime(secret *corev1.Secret, name string) (time.Time, error) {
	v, ok := secret.Annotations[name]
	if !ok {
		return time.Time{}, fmt.Errorf("secretlayout: annotation %s: %w", name, ErrMissing)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("secretlayout: annotation %s = %q: not an RFC 3339 time", name, v)
	}
	return t, nil
}
