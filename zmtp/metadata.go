package zmtp

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Property is one metadata property: a name (1 to 255 bytes, compared without
// regard to case) and a value (up to 2^31-1 bytes).
type Property struct {
	Name  string
	Value []byte
}

// Metadata is an ordered list of properties, as carried by READY, INITIATE
// and an authenticator's answer (RFC 23 and 37).
type Metadata []Property

// Standard property names.
const (
	PropSocketType = "Socket-Type"
	PropIdentity   = "Identity"
	PropUserID     = "User-Id"
)

// Get returns the value of the first property whose name equals name without
// regard to case.
func (m Metadata) Get(name string) ([]byte, bool) {
	for _, p := range m {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return nil, false
}

// EncodedLen is the number of bytes AppendMetadata writes for m.
func (m Metadata) EncodedLen() int {
	n := 0
	for _, p := range m {
		n += 1 + len(p.Name) + 4 + len(p.Value)
	}
	return n
}

// AppendMetadata appends the wire encoding of m to dst. It fails on an empty
// or over-long name, or a name with characters outside the RFC's set.
func AppendMetadata(dst []byte, m Metadata) ([]byte, error) {
	for _, p := range m {
		if err := checkPropertyName(p.Name); err != nil {
			return dst, err
		}
		if len(p.Value) > 1<<31-1 {
			return dst, fmt.Errorf("zmtp: metadata property %q: value of %d bytes is too long", p.Name, len(p.Value))
		}
		dst = append(dst, byte(len(p.Name)))
		dst = append(dst, p.Name...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Value)))
		dst = append(dst, p.Value...)
	}
	return dst, nil
}

// ParseMetadata decodes a metadata block. The values alias b. It fails on a
// truncated property, a length that runs past the end, an invalid name and a
// name that appears twice.
func ParseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	for off := 0; off < len(b); {
		nameLen := int(b[off])
		off++
		if nameLen == 0 {
			return nil, fmt.Errorf("zmtp: metadata: empty property name at offset %d", off-1)
		}
		if len(b)-off < nameLen+4 {
			return nil, fmt.Errorf("zmtp: metadata: property at offset %d is truncated", off-1)
		}
		name := string(b[off : off+nameLen])
		if err := checkPropertyName(name); err != nil {
			return nil, err
		}
		off += nameLen
		valueLen := binary.BigEndian.Uint32(b[off:])
		off += 4
		if uint64(valueLen) > uint64(len(b)-off) {
			return nil, fmt.Errorf("zmtp: metadata: property %q claims %d bytes, %d remain", name, valueLen, len(b)-off)
		}
		if _, dup := m.Get(name); dup {
			return nil, fmt.Errorf("zmtp: metadata: property %q appears twice", name)
		}
		m = append(m, Property{Name: name, Value: b[off : off+int(valueLen)]})
		off += int(valueLen)
	}
	return m, nil
}

// checkPropertyName enforces RFC 23's name grammar: 1 to 255 characters of
// letters, digits and "-_.+".
func checkPropertyName(name string) error {
	if len(name) == 0 || len(name) > 255 {
		return fmt.Errorf("zmtp: metadata property name must be 1 to 255 bytes, got %d", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '+'
		if !ok {
			return fmt.Errorf("zmtp: metadata property name %q has invalid character at position %d", name, i)
		}
	}
	return nil
}
