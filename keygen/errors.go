package keygen

import "errors"

// Sentinel errors, for errors.Is. The errors returned by this package wrap
// one of them and add where (line, position) and what was found.
var (
	// ErrInvalidZ85 marks text that is not valid Z85: a bad length, a
	// character outside the alphabet, or a group that overflows 32 bits.
	// Such errors are *Z85Error values.
	ErrInvalidZ85 = errors.New("invalid Z85")
	// ErrKeyLength marks a key that is not 32 bytes (40 Z85 characters).
	ErrKeyLength = errors.New("wrong length")
	// ErrEmptyKey marks the use of a zero-value SecretKey.
	ErrEmptyKey = errors.New("empty secret key")
	// ErrSyntax marks a certificate line that is not valid ZPL.
	ErrSyntax = errors.New("malformed line")
	// ErrMissingCurve marks a certificate without a curve section.
	ErrMissingCurve = errors.New("missing curve section")
	// ErrMissingPublicKey marks a certificate whose curve section has no public-key.
	ErrMissingPublicKey = errors.New("missing public-key")
	// ErrMissingSecretKey marks a certificate without the secret-key that was required.
	ErrMissingSecretKey = errors.New("missing secret-key")
	// ErrDuplicate marks a section, key or metadata name given twice.
	ErrDuplicate = errors.New("duplicated")
	// ErrSecretInPublic marks a file that holds a secret-key where a public
	// certificate was expected. Such a file must not be distributed.
	ErrSecretInPublic = errors.New("secret certificate where a public one is expected")
	// ErrKeyMismatch marks a certificate whose secret-key does not derive its public-key.
	ErrKeyMismatch = errors.New("secret-key does not belong to public-key")
	// ErrMetadata marks a metadata name or value that a zcert file cannot carry.
	ErrMetadata = errors.New("invalid metadata")
	// ErrTooLarge marks a certificate file larger than MaxCertificateSize.
	ErrTooLarge = errors.New("file too large")
	// ErrName marks a certificate name that cannot be used as a file name.
	ErrName = errors.New("invalid certificate name")
)
