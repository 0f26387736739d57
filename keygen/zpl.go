package keygen

import (
	"bytes"
	"fmt"
	"strings"
)

// This file reads the subset of ZPL (ZeroMQ RFC 4) that zcert files use, the
// way CZMQ's zconfig does. It is written by hand: no library implements ZPL.
// Error messages give the line and column (1-based, in bytes) and what was
// expected there, and never repeat any text of the input, not even a name:
// a line may hold a secret key, for instance when a file holds a bare Z85
// key where a certificate is expected, and a key's first characters read as
// a name.

// zplLine is one name line of a ZPL document.
type zplLine struct {
	num      int    // 1-based line number
	level    int    // indentation in steps of 4 spaces
	name     string // property or section name
	value    string // value, unquoted
	hasValue bool   // the line had "= value"
}

// zplSpace reports the bytes CZMQ treats as white space around tokens.
func zplSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// zplSpaceRune is zplSpace for the bytes package's rune-based trimming.
func zplSpaceRune(r rune) bool { return r < 0x80 && zplSpace(byte(r)) }

// zplNameChar reports the bytes ZPL allows in a name.
func zplNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("$-_@.&+/", c) >= 0
}

// validZPLName reports whether name can be written as a ZPL name.
func validZPLName(name string) bool {
	if name == "" || name[0] == '/' || name[len(name)-1] == '/' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !zplNameChar(name[i]) {
			return false
		}
	}
	return true
}

// shownName is how the certificate reader's error messages show a name it
// recognised. A name that merely starts with "secret-key" may be a key glued
// to its name by a typo (secret-keyXXXX...), so only the prefix is shown.
// parseZPL itself never shows a name.
func shownName(name string) string {
	for _, p := range []string{"secret-key", "public-key"} {
		if strings.HasPrefix(name, p) && name != p {
			return p + "..."
		}
	}
	return name
}

// zplError is a syntax error at line num, column col (1-based), saying what
// was expected there. It never holds text of the input. The message starts
// "line N: malformed line", as the certificate reader's own errors do.
func zplError(num, col int, expected string) error {
	return fmt.Errorf("line %d: %w at column %d: expected %s", num, ErrSyntax, col, expected)
}

// parseZPL splits data into name lines, skipping blank and comment lines. It
// accepts LF and CRLF line ends, indentation in multiples of 4 spaces, quoted
// ('...' or "...") and unquoted values, and trailing "# comments".
func parseZPL(data []byte) ([]zplLine, error) {
	var lines []zplLine
	prevLevel := -1
	for num := 1; len(data) > 0; num++ {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		line := bytes.TrimRightFunc(raw, zplSpaceRune)
		// col returns the 1-based column of rest within line.
		col := func(rest []byte) int { return len(line) - len(rest) + 1 }
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		rest := line[indent:]
		if len(rest) == 0 || rest[0] == '#' {
			continue // blank line or whole-line comment
		}
		if rest[0] == '\t' {
			return nil, zplError(num, col(rest), "indentation with spaces, not a tab")
		}
		if indent%4 != 0 {
			return nil, zplError(num, col(rest), fmt.Sprintf("indentation in multiples of 4 spaces, got %d", indent))
		}
		l := zplLine{num: num, level: indent / 4}
		if l.level > prevLevel+1 {
			if prevLevel < 0 {
				return nil, zplError(num, col(rest), "a section before an indented line")
			}
			return nil, zplError(num, col(rest), fmt.Sprintf("indentation of at most %d spaces", (prevLevel+1)*4))
		}
		n := 0
		for n < len(rest) && zplNameChar(rest[n]) {
			n++
		}
		if n == 0 {
			return nil, zplError(num, col(rest), "a name")
		}
		l.name = string(rest[:n])
		if !validZPLName(l.name) {
			return nil, zplError(num, col(rest), "a name that does not start or end with '/'")
		}
		rest = bytes.TrimLeftFunc(rest[n:], zplSpaceRune)
		after := "'=', a comment or the end of the line after the name"
		if len(rest) > 0 && rest[0] == '=' {
			l.hasValue = true
			rest = bytes.TrimLeftFunc(rest[1:], zplSpaceRune)
			if len(rest) > 0 && (rest[0] == '"' || rest[0] == '\'') {
				end := bytes.IndexByte(rest[1:], rest[0])
				if end < 0 {
					// The quote character is ' or ", never other input.
					return nil, zplError(num, col(rest), fmt.Sprintf("a closing %c for the quoted value", rest[0]))
				}
				l.value = string(rest[1 : 1+end])
				rest = rest[2+end:]
			} else {
				v := rest
				if i := bytes.IndexByte(v, '#'); i >= 0 {
					v = v[:i]
				}
				l.value = string(bytes.TrimRightFunc(v, zplSpaceRune))
				rest = rest[len(v):]
			}
			after = "a comment or the end of the line after the value"
		}
		rest = bytes.TrimLeftFunc(rest, zplSpaceRune)
		if len(rest) > 0 && rest[0] != '#' {
			return nil, zplError(num, col(rest), after)
		}
		lines = append(lines, l)
		prevLevel = l.level
	}
	return lines, nil
}
