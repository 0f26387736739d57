package secretlayout

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// ErrMissing marks a data key that should be in a Secret and is not.
var ErrMissing = errors.New("missing")

// ErrMismatch marks data keys of one Secret that disagree with each other,
// such as a public.key that is not derived from secret.key.
var ErrMismatch = errors.New("does not match")

// FieldError says which data key of a Secret is wrong. Its message never
// contains a secret key.
type FieldError struct {
	// Key is the Secret data key, e.g. "curve.key".
	Key string
	// Err is what is wrong; it wraps ErrMissing, ErrMismatch or a keygen
	// sentinel error.
	Err error
}

// Error names the data key and the problem.
func (e *FieldError) Error() string { return fmt.Sprintf("secret data %q: %v", e.Key, e.Err) }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(key string, err error) error { return &FieldError{Key: key, Err: err} }

// KeyPairData returns the data keys of a keypair Secret that hold kp:
// public.key and secret.key (40 Z85 characters, no newline), curve.key and
// curve.key_secret (zcert files whose metadata is name = identity, normally
// filecontract.Identity(namespace, name)).
func KeyPairData(kp keygen.KeyPair, identity string) (map[string][]byte, error) {
	if kp.Secret.IsZero() {
		return nil, fmt.Errorf("secretlayout: keypair data: %w", keygen.ErrEmptyKey)
	}
	derived, err := keygen.PublicFromSecret(kp.Secret)
	if err != nil {
		return nil, fmt.Errorf("secretlayout: keypair data: %w", err)
	}
	if derived != kp.Public {
		return nil, fmt.Errorf("secretlayout: keypair data: %w", keygen.ErrKeyMismatch)
	}
	cert := keygen.NewCertificate(kp, map[string]string{filecontract.MetadataName: identity})
	pub, err := cert.MarshalPublic()
	if err != nil {
		return nil, fmt.Errorf("secretlayout: keypair data: %w", err)
	}
	sec, err := cert.MarshalSecret()
	if err != nil {
		return nil, fmt.Errorf("secretlayout: keypair data: %w", err)
	}
	return map[string][]byte{
		filecontract.PublicKeyFile:         []byte(kp.Public.String()),
		filecontract.SecretKeyFile:         []byte(kp.Secret.Z85()),
		filecontract.CertificateFile:       pub,
		filecontract.SecretCertificateFile: sec,
	}, nil
}

// PreviousData returns the data keys that hold a previous key during an
// overlap: previous-public.key, and previous-secret.key when secret is not
// the zero value (CurveServer).
func PreviousData(public keygen.PublicKey, secret keygen.SecretKey) map[string][]byte {
	data := map[string][]byte{filecontract.PreviousPublicKeyFile: []byte(public.String())}
	if !secret.IsZero() {
		data[filecontract.PreviousSecretKeyFile] = []byte(secret.Z85())
	}
	return data
}

// PublicCertificate returns a zcert public certificate (a NAME.key file) for
// key with the given metadata, as written for a client's server keys and in
// allowlists.
func PublicCertificate(key keygen.PublicKey, metadata map[string]string) ([]byte, error) {
	b, err := keygen.NewCertificate(keygen.KeyPair{Public: key}, metadata).MarshalPublic()
	if err != nil {
		return nil, fmt.Errorf("secretlayout: public certificate: %w", err)
	}
	return b, nil
}

// ParseSecretKeyData parses the secret.key data of a Secret and returns the
// keypair it makes (the public key derived from it). It is what a damaged
// Secret can be repaired from.
func ParseSecretKeyData(secret *corev1.Secret) (keygen.KeyPair, error) {
	raw, ok := secret.Data[filecontract.SecretKeyFile]
	if !ok {
		return keygen.KeyPair{}, fieldErr(filecontract.SecretKeyFile, ErrMissing)
	}
	sk, err := keygen.ParseSecretKey(string(raw))
	if err != nil {
		return keygen.KeyPair{}, fieldErr(filecontract.SecretKeyFile, err)
	}
	pk, err := keygen.PublicFromSecret(sk)
	if err != nil {
		return keygen.KeyPair{}, fieldErr(filecontract.SecretKeyFile, err)
	}
	return keygen.KeyPair{Public: pk, Secret: sk}, nil
}

// ParseKeyPair returns the current keypair of a keypair Secret after checking
// that every file holding it agrees: secret.key decodes, public.key decodes
// and is derived from it, curve.key is a public certificate of that public
// key and curve.key_secret a secret certificate of that keypair. The error
// (a *FieldError) names the first data key that is missing or wrong.
func ParseKeyPair(secret *corev1.Secret) (keygen.KeyPair, error) {
	kp, err := ParseSecretKeyData(secret)
	if err != nil {
		return keygen.KeyPair{}, err
	}
	if err := CheckKeyPair(secret, kp); err != nil {
		return keygen.KeyPair{}, err
	}
	return kp, nil
}

// CheckKeyPair checks that public.key, curve.key and curve.key_secret of a
// Secret hold kp; the error (a *FieldError) names the first that does not.
func CheckKeyPair(secret *corev1.Secret, kp keygen.KeyPair) error {
	for _, key := range []string{filecontract.PublicKeyFile, filecontract.CertificateFile, filecontract.SecretCertificateFile} {
		if err := checkFile(secret, key, kp); err != nil {
			return fieldErr(key, err)
		}
	}
	return nil
}

// checkFile checks that one data key holds kp in its format.
func checkFile(secret *corev1.Secret, key string, kp keygen.KeyPair) error {
	raw, ok := secret.Data[key]
	if !ok {
		return ErrMissing
	}
	switch key {
	case filecontract.PublicKeyFile:
		pk, err := keygen.ParsePublicKey(string(raw))
		if err != nil {
			return err
		}
		if pk != kp.Public {
			return ErrMismatch
		}
	case filecontract.CertificateFile:
		c, err := keygen.ParsePublicCertificate(raw)
		if err != nil {
			return err
		}
		if c.PublicKey != kp.Public {
			return ErrMismatch
		}
	case filecontract.SecretCertificateFile:
		c, err := keygen.ParseSecretCertificate(raw)
		if err != nil {
			return err
		}
		if c.PublicKey != kp.Public || !c.SecretKey.Equal(kp.Secret) {
			return ErrMismatch
		}
	}
	return nil
}

// ParsePrevious returns the previous key of a Secret during an overlap: its
// public key (nil when there is no previous-public.key) and, for a
// CurveServer, the previous keypair (nil when there is no
// previous-secret.key). When both are present the secret key must derive the
// public key. A previous-secret.key without previous-public.key is an error.
func ParsePrevious(secret *corev1.Secret) (*keygen.PublicKey, *keygen.KeyPair, error) {
	rawPub, hasPub := secret.Data[filecontract.PreviousPublicKeyFile]
	rawSec, hasSec := secret.Data[filecontract.PreviousSecretKeyFile]
	if !hasPub {
		if hasSec {
			return nil, nil, fieldErr(filecontract.PreviousPublicKeyFile, ErrMissing)
		}
		return nil, nil, nil
	}
	pk, err := keygen.ParsePublicKey(string(rawPub))
	if err != nil {
		return nil, nil, fieldErr(filecontract.PreviousPublicKeyFile, err)
	}
	if !hasSec {
		return &pk, nil, nil
	}
	sk, err := keygen.ParseSecretKey(string(rawSec))
	if err != nil {
		return nil, nil, fieldErr(filecontract.PreviousSecretKeyFile, err)
	}
	derived, err := keygen.PublicFromSecret(sk)
	if err != nil {
		return nil, nil, fieldErr(filecontract.PreviousSecretKeyFile, err)
	}
	if derived != pk {
		return nil, nil, fieldErr(filecontract.PreviousPublicKeyFile, ErrMismatch)
	}
	return &pk, &keygen.KeyPair{Public: pk, Secret: sk}, nil
}

// NextData returns the data keys that hold a staged next keypair.
func NextData(kp keygen.KeyPair) map[string][]byte {
	return map[string][]byte{
		filecontract.NextPublicKeyFile: []byte(kp.Public.String()),
		filecontract.NextSecretKeyFile: []byte(kp.Secret.Z85()),
	}
}

// ParseNext returns the staged next keypair of a Secret, nil when there is
// none. Both files must be present and agree.
func ParseNext(secret *corev1.Secret) (*keygen.KeyPair, error) {
	rawPub, hasPub := secret.Data[filecontract.NextPublicKeyFile]
	rawSec, hasSec := secret.Data[filecontract.NextSecretKeyFile]
	switch {
	case !hasPub && !hasSec:
		return nil, nil
	case !hasPub:
		return nil, fieldErr(filecontract.NextPublicKeyFile, ErrMissing)
	case !hasSec:
		return nil, fieldErr(filecontract.NextSecretKeyFile, ErrMissing)
	}
	pk, err := keygen.ParsePublicKey(string(rawPub))
	if err != nil {
		return nil, fieldErr(filecontract.NextPublicKeyFile, err)
	}
	sk, err := keygen.ParseSecretKey(string(rawSec))
	if err != nil {
		return nil, fieldErr(filecontract.NextSecretKeyFile, err)
	}
	derived, err := keygen.PublicFromSecret(sk)
	if err != nil {
		return nil, fieldErr(filecontract.NextSecretKeyFile, err)
	}
	if derived != pk {
		return nil, fieldErr(filecontract.NextPublicKeyFile, ErrMismatch)
	}
	return &keygen.KeyPair{Public: pk, Secret: sk}, nil
}
