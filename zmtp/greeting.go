package zmtp

import (
	"fmt"
	"io"
)

// Greeting layout (RFC 23 and 37): a 10-byte signature (%xFF, 8 padding
// bytes, %x7F), the major and minor version, the mechanism name NUL-padded to
// 20 bytes, the as-server flag and 31 bytes of filler: 64 bytes in all.
const (
	greetingSize    = 64
	signatureSize   = 10
	mechanismOffset = 12
	mechanismSize   = 20
	asServerOffset  = 32

	// VersionMajor is the ZMTP major version this package speaks.
	VersionMajor = 3
	// VersionMinor is the minor version this package announces (ZMTP 3.1).
	VersionMinor = 1
)

// Greeting is the content of a ZMTP 3.x greeting.
type Greeting struct {
	// Major and Minor are the announced protocol version.
	Major, Minor byte
	// Mechanism is the security mechanism name, e.g. "NULL".
	Mechanism string
	// AsServer is the as-server flag.
	AsServer bool
}

// AppendGreeting appends our 64-byte greeting (version 3.1) announcing
// mechanism and the as-server flag. It fails on a mechanism name that is not
// 1 to 20 characters of A-Z, 0-9, '-' and '_'.
func AppendGreeting(dst []byte, mechanism string, asServer bool) ([]byte, error) {
	if err := checkMechanismName(mechanism); err != nil {
		return dst, err
	}
	var g [greetingSize]byte
	g[0] = 0xFF
	g[9] = 0x7F
	g[10] = VersionMajor
	g[11] = VersionMinor
	copy(g[mechanismOffset:], mechanism)
	if asServer {
		g[asServerOffset] = 1
	}
	return append(dst, g[:]...), nil
}

// checkMechanismName enforces RFC 23's grammar for mechanism names.
func checkMechanismName(name string) error {
	if len(name) == 0 || len(name) > mechanismSize {
		return fmt.Errorf("%w: mechanism name must be 1 to %d characters, got %d", ErrBadGreeting, mechanismSize, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: mechanism name %q has an invalid character at position %d", ErrBadGreeting, name, i)
		}
	}
	return nil
}

// checkSignature validates the first 10 bytes of a greeting. The padding is
// not interpreted (RFC 37 forbids it); the last byte must be %x7F.
func checkSignature(b []byte) error {
	if b[0] != 0xFF || b[9] != 0x7F {
		return fmt.Errorf("%w: signature % x is not a ZMTP 3 signature", ErrBadGreeting, b[:signatureSize])
	}
	return nil
}

// checkMajor validates the major version byte.
func checkMajor(major byte) error {
	if major != VersionMajor {
		return fmt.Errorf("%w: peer speaks ZMTP major version %d, only %d is supported", ErrUnsupportedVersion, major, VersionMajor)
	}
	return nil
}

// ParseGreeting decodes a complete 64-byte greeting. It fails on a short
// input, a bad signature, a major version other than 3 and a malformed
// mechanism field. Any minor version is accepted (RFC 37: higher minors are
// valid); the filler is not interpreted.
func ParseGreeting(b []byte) (Greeting, error) {
	if len(b) < greetingSize {
		return Greeting{}, fmt.Errorf("%w: %d bytes, need %d", ErrBadGreeting, len(b), greetingSize)
	}
	if err := checkSignature(b); err != nil {
		return Greeting{}, err
	}
	if err := checkMajor(b[10]); err != nil {
		return Greeting{}, err
	}
	g := Greeting{Major: b[10], Minor: b[11]}
	field := b[mechanismOffset : mechanismOffset+mechanismSize]
	n := 0
	for n < len(field) && field[n] != 0 {
		n++
	}
	for _, c := range field[n:] {
		if c != 0 {
			return Greeting{}, fmt.Errorf("%w: mechanism field %q is not NUL-padded", ErrBadGreeting, field)
		}
	}
	g.Mechanism = string(field[:n])
	if err := checkMechanismName(g.Mechanism); err != nil {
		return Greeting{}, err
	}
	switch b[asServerOffset] {
	case 0:
	case 1:
		g.AsServer = true
	default:
		return Greeting{}, fmt.Errorf("%w: as-server field is %d, must be 0 or 1", ErrBadGreeting, b[asServerOffset])
	}
	return g, nil
}

// readGreeting reads a peer's greeting in three steps (signature, major
// version, rest) so that garbage and other major versions are refused as
// soon as their bytes arrive, whichever way the peer splits its writes.
func readGreeting(r io.Reader) (Greeting, error) {
	var b [greetingSize]byte
	if _, err := io.ReadFull(r, b[:signatureSize]); err != nil {
		return Greeting{}, fmt.Errorf("zmtp: reading greeting signature: %w", err)
	}
	if err := checkSignature(b[:]); err != nil {
		return Greeting{}, err
	}
	if _, err := io.ReadFull(r, b[signatureSize:signatureSize+1]); err != nil {
		return Greeting{}, fmt.Errorf("zmtp: reading greeting version: %w", err)
	}
	if err := checkMajor(b[signatureSize]); err != nil {
		return Greeting{}, err
	}
	if _, err := io.ReadFull(r, b[signatureSize+1:]); err != nil {
		return Greeting{}, fmt.Errorf("zmtp: reading greeting: %w", err)
	}
	return ParseGreeting(b[:])
}

// checkRoles applies a mechanism's rule on the as-server flags. NULL requires
// the flag to be zero (RFC 37). PLAIN and CURVE have one server and one
// client, but libzmq 4.3 always sends zero (its greeting code never writes
// the flag), so the only combination the greeting can refuse is two sides
// that both claim the server role; two clients fail in the handshake, when
// each receives the other's HELLO.
func checkRoles(mechanism string, ours bool, peer Greeting) error {
	if mechanism == "NULL" {
		if peer.AsServer {
			return fmt.Errorf("%w: peer set as-server with the NULL mechanism, which requires it to be zero", ErrRoleMismatch)
		}
		return nil
	}
	if ours && peer.AsServer {
		return fmt.Errorf("%w: both sides claim the %s server role", ErrRoleMismatch, mechanism)
	}
	return nil
}
