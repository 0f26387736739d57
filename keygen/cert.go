package keygen

import (
	"fmt"
	"strings"
)

// Certificate is what a zcert certificate file holds: a public key, for a
// secret certificate also the secret key, and metadata.
//
// On disk a certificate is two files in ZPL (ZeroMQ RFC 4), as CZMQ's zcert
// and pyzmq's zmq.auth write them: NAME.key, the public certificate, holds the
// public key and may be shared; NAME.key_secret, the secret certificate, holds
// both keys and must stay private. Both have a "metadata" section of
// name = "value" lines and a "curve" section with public-key (and, in the
// secret file, secret-key) as 40-character Z85 text.
type Certificate struct {
	// PublicKey is the curve section's public-key.
	PublicKey PublicKey
	// SecretKey is the curve section's secret-key; the zero value for a
	// public certificate.
	SecretKey SecretKey
	// Metadata holds the metadata section's name = value pairs. It is never
	// nil in a parsed certificate.
	Metadata map[string]string
}

// NewCertificate returns a certificate for a keypair, with a copy of metadata.
func NewCertificate(pair KeyPair, metadata map[string]string) *Certificate {
	md := make(map[string]string, len(metadata))
	for k, v := range metadata {
		md[k] = v
	}
	return &Certificate{PublicKey: pair.Public, SecretKey: pair.Secret, Metadata: md}
}

// HasSecret reports whether c holds a secret key.
func (c *Certificate) HasSecret() bool { return !c.SecretKey.IsZero() }

// KeyPair returns the certificate's keypair; its Secret is the zero value for
// a public certificate.
func (c *Certificate) KeyPair() KeyPair {
	return KeyPair{Public: c.PublicKey, Secret: c.SecretKey}
}

// certKind says which certificates a parse accepts.
type certKind int

const (
	anyCert    certKind = iota // public or secret
	publicCert                 // public only: a secret-key is an error
	secretCert                 // secret only: a missing secret-key is an error
)

// reservedName reports whether a name outside the curve section would be
// mistaken for a key by pyzmq's load_certificate, which takes any line that
// starts with "public-key" or "secret-key".
func reservedName(name string) bool {
	return strings.HasPrefix(name, "public-key") || strings.HasPrefix(name, "secret-key")
}

// ParseCertificate parses a public or secret zcert certificate. It checks the
// ZPL syntax, requires a curve section with exactly one public-key and at most
// one secret-key, decodes the keys and, when a secret key is present, checks
// that it derives the public key. Errors give line numbers and never contain
// the secret key.
func ParseCertificate(data []byte) (*Certificate, error) {
	c, err := parseCertificate(data, anyCert)
	if err != nil {
		return nil, fmt.Errorf("keygen: certificate: %w", err)
	}
	return c, nil
}

// ParsePublicCertificate parses a public zcert certificate (a NAME.key file).
// It refuses a certificate that holds a secret-key with ErrSecretInPublic:
// such a file is a NAME.key_secret and must not be distributed.
func ParsePublicCertificate(data []byte) (*Certificate, error) {
	c, err := parseCertificate(data, publicCert)
	if err != nil {
		return nil, fmt.Errorf("keygen: public certificate: %w", err)
	}
	return c, nil
}

// ParseSecretCertificate parses a secret zcert certificate (a NAME.key_secret
// file) and requires its secret-key.
func ParseSecretCertificate(data []byte) (*Certificate, error) {
	c, err := parseCertificate(data, secretCert)
	if err != nil {
		return nil, fmt.Errorf("keygen: secret certificate: %w", err)
	}
	return c, nil
}

// field is a key line seen in the curve section.
type field struct {
	line  int
	value string
}

func parseCertificate(data []byte, kind certKind) (*Certificate, error) {
	lines, err := parseZPL(data)
	if err != nil {
		return nil, err
	}
	var (
		section    string             // current top-level section
		sectionAt  = map[string]int{} // line of each known section
		public     *field
		secret     *field
		metadata   = map[string]string{}
		metadataAt = map[string]int{}
	)
	for _, l := range lines {
		if l.level == 0 {
			section = l.name
			if section != "metadata" && section != "curve" {
				if reservedName(l.name) {
					return nil, fmt.Errorf("line %d: %w: %s outside the curve section", l.num, ErrSyntax, shownName(l.name))
				}
				continue // other sections are valid ZPL; zcert ignores them
			}
			if first, ok := sectionAt[section]; ok {
				return nil, fmt.Errorf("line %d: %w %s section (first on line %d)", l.num, ErrDuplicate, section, first)
			}
			if l.hasValue {
				return nil, fmt.Errorf("line %d: %w: section %s has a value", l.num, ErrSyntax, section)
			}
			sectionAt[section] = l.num
			continue
		}
		switch {
		case section == "curve" && l.level == 1 && (l.name == "public-key" || l.name == "secret-key"):
			slot := &public
			if l.name == "secret-key" {
				slot = &secret
			}
			if *slot != nil {
				return nil, fmt.Errorf("line %d: %w %s (first on line %d)", l.num, ErrDuplicate, l.name, (*slot).line)
			}
			*slot = &field{line: l.num, value: l.value}
		case reservedName(l.name):
			return nil, fmt.Errorf("line %d: %w: %s is not a key line of the curve section; pyzmq would read it as a key", l.num, ErrSyntax, shownName(l.name))
		case section == "metadata" && l.level == 1:
			if first, ok := metadataAt[l.name]; ok {
				// The name is not shown: a line may hold a key pasted as a name.
				return nil, fmt.Errorf("line %d: %w metadata name (first on line %d)", l.num, ErrDuplicate, first)
			}
			metadataAt[l.name] = l.num
			metadata[l.name] = l.value
		case section == "metadata" || section == "curve":
			if l.level > 1 {
				return nil, fmt.Errorf("line %d: %w: nested item in the %s section", l.num, ErrSyntax, section)
			}
			// Other curve properties are ignored, as CZMQ does.
		}
	}
	if _, ok := sectionAt["curve"]; !ok {
		return nil, ErrMissingCurve
	}
	if public == nil {
		return nil, ErrMissingPublicKey
	}
	if kind == publicCert && secret != nil {
		return nil, fmt.Errorf("line %d: %w: the file holds a secret-key, so it is a secret certificate (NAME.key_secret) and must not be distributed", secret.line, ErrSecretInPublic)
	}
	if kind == secretCert && secret == nil {
		return nil, ErrMissingSecretKey
	}
	c := &Certificate{Metadata: metadata}
	if c.PublicKey, err = parsePublicKey(public.value); err != nil {
		return nil, fmt.Errorf("line %d: public-key: %w", public.line, err)
	}
	if secret == nil {
		return c, nil
	}
	if c.SecretKey, err = parseSecretKey(secret.value); err != nil {
		return nil, fmt.Errorf("line %d: secret-key: %w", secret.line, err)
	}
	derived, err := PublicFromSecret(c.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("line %d: secret-key: %w", secret.line, err)
	}
	if derived != c.PublicKey {
		// Neither key is shown: the public-key line may hold a secret key
		// pasted into the wrong place.
		return nil, fmt.Errorf("line %d: %w on line %d: the public-key must be the one this secret-key derives", secret.line, ErrKeyMismatch, public.line)
	}
	return c, nil
}
