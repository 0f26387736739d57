package keygen

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// z85Alphabet is the Z85 character set of ZeroMQ RFC 32, in digit order.
// Z85 is implemented here by hand: no standard or x/ library provides it.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// Z85ErrorKind says what is wrong with Z85 input.
type Z85ErrorKind int

const (
	// Z85BadLength means the input length is not a multiple of 4 (encoding) or 5 (decoding).
	Z85BadLength Z85ErrorKind = iota + 1
	// Z85BadChar means a character is not in the Z85 alphabet.
	Z85BadChar
	// Z85Overflow means a 5-character group encodes a value above 2^32-1.
	Z85Overflow
)

// Z85Error describes invalid Z85 input. It unwraps to ErrInvalidZ85.
type Z85Error struct {
	// Kind says what is wrong.
	Kind Z85ErrorKind
	// Length is the input length (Z85BadLength).
	Length int
	// Position is the 0-based index of the bad character (Z85BadChar) or of
	// the first character of the overflowing group (Z85Overflow).
	Position int
	// Char is the bad character (Z85BadChar). It is zero when the input was
	// secret and the character is withheld.
	Char byte

	encode   bool // the length error is from encoding (multiple of 4)
	redacted bool // never show Char: the input was a secret key
}

// Error reports the problem and where. It shows the bad character only when
// the input was not secret.
func (e *Z85Error) Error() string {
	switch e.Kind {
	case Z85BadLength:
		if e.encode {
			return fmt.Sprintf("z85: input length %d is not a multiple of 4", e.Length)
		}
		return fmt.Sprintf("z85: input length %d is not a multiple of 5", e.Length)
	case Z85BadChar:
		if e.redacted {
			return fmt.Sprintf("z85: invalid character at position %d", e.Position)
		}
		return fmt.Sprintf("z85: invalid character %s at position %d", quoteByte(e.Char), e.Position)
	case Z85Overflow:
		return fmt.Sprintf("z85: group at position %d overflows 32 bits", e.Position)
	}
	return "z85: invalid input"
}

// Unwrap returns ErrInvalidZ85.
func (e *Z85Error) Unwrap() error { return ErrInvalidZ85 }

// redact returns a copy of e that withholds the offending character.
func (e *Z85Error) redact() *Z85Error {
	c := *e
	c.Char = 0
	c.redacted = true
	return &c
}

// quoteByte shows one input byte: '~' for ASCII, '\xc3' for anything else, so
// a stray byte of a multi-byte character is not shown as a different letter.
func quoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return fmt.Sprintf("%q", rune(b))
	}
	return fmt.Sprintf("'\\x%02x'", b)
}

// Z85Encode encodes src as Z85 (ZeroMQ RFC 32). The length of src must be a
// multiple of 4; Z85 has no padding.
func Z85Encode(src []byte) (string, error) {
	if len(src)%4 != 0 {
		return "", fmt.Errorf("keygen: %w", &Z85Error{Kind: Z85BadLength, Length: len(src), encode: true})
	}
	return string(appendZ85(make([]byte, 0, len(src)/4*5), src)), nil
}

// appendZ85 appends the Z85 text of src, whose length is a multiple of 4.
func appendZ85(dst, src []byte) []byte {
	for i := 0; i+4 <= len(src); i += 4 {
		v := binary.BigEndian.Uint32(src[i:])
		var group [5]byte
		for j := 4; j >= 0; j-- {
			group[j] = z85Alphabet[v%85]
			v /= 85
		}
		dst = append(dst, group[:]...)
	}
	return dst
}

// Z85Decode decodes Z85 text (ZeroMQ RFC 32). It rejects a length that is not
// a multiple of 5, any character outside the Z85 alphabet and any 5-character
// group whose value does not fit in 32 bits; the error is a *Z85Error naming
// the position.
func Z85Decode(s string) ([]byte, error) {
	out, zerr := decodeZ85(make([]byte, 0, len(s)/5*4), s)
	if zerr != nil {
		return nil, fmt.Errorf("keygen: %w", zerr)
	}
	return out, nil
}

// decodeZ85 appends the bytes that s encodes to dst.
func decodeZ85(dst []byte, s string) ([]byte, *Z85Error) {
	if len(s)%5 != 0 {
		return nil, &Z85Error{Kind: Z85BadLength, Length: len(s)}
	}
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := i; j < i+5; j++ {
			d := strings.IndexByte(z85Alphabet, s[j])
			if d < 0 {
				return nil, &Z85Error{Kind: Z85BadChar, Position: j, Char: s[j]}
			}
			v = v*85 + uint64(d)
		}
		if v > math.MaxUint32 {
			return nil, &Z85Error{Kind: Z85Overflow, Position: i}
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return dst, nil
}
