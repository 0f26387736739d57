package keygen_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

// zplKeywords are the only input text a ZPL error may repeat: the fixed
// section and key names of a zcert file.
var zplKeywords = []string{"curve", "metadata", "public-key", "secret-key"}

// assertNoInputText fails when msg holds a 4-character substring of in
// that is not part of a fixed keyword.
func assertNoInputText(t *testing.T, msg, in string) {
	t.Helper()
	for i := 0; i+4 <= len(in); i++ {
		w := in[i : i+4]
		if !strings.Contains(msg, w) {
			continue
		}
		keyword := false
		for _, k := range zplKeywords {
			keyword = keyword || strings.Contains(k, w)
		}
		if !keyword {
			t.Errorf("error %q repeats input text %q (input offset %d)", msg, w, i)
			return
		}
	}
}

// TestParseZPLErrorsHideInput: malformed lines are reported by line, column
// and what was expected, never by their text, which may be a secret key.
func TestParseZPLErrorsHideInput(t *testing.T) {
	const word = "Wq7Zx9Kv" // a name that must not come back
	tests := []struct {
		name string
		in   string
		msg  string // the error must contain this
	}{
		{"bare secret key", srvSecret + "\n", "line 1: malformed line at column "},
		{"bare secret key CRLF", srvSecret + "\r\n", "line 1: malformed line at column "},
		{"bare secret key indented", "    " + srvSecret + "\n", "line 1"},
		{"secret after a value", cert("curve", pubLine+" "+srvSecret), "line 2: malformed line at column 61: expected a comment or the end of the line after the value"},
		{"secret after a name", cert("curve", "    "+word+" "+srvSecret), "line 2: malformed line at column 14: expected '=', a comment or the end of the line after the name"},
		{"bad name char", cert("curve", "    "+word+"*"+word), "line 2: malformed line at column 13: expected '=', a comment or the end of the line after the name"},
		{"glued to public-key", cert("curve", "    public-key"+srvSecret), "line 2: malformed line at column "},
		{"unterminated double quote", cert("curve", `    secret-key = "`+srvSecret), `line 2: malformed line at column 18: expected a closing " for the quoted value`},
		{"unterminated single quote", cert("curve", `    `+word+` = '`+srvSecret), "line 2: malformed line at column 16: expected a closing ' for the quoted value"},
		{"tab indent", cert("curve", "\t"+word+" = "+srvSecret), "line 2: malformed line at column 1: expected indentation with spaces, not a tab"},
		{"odd indent", cert("curve", "   "+word+" = "+srvSecret), "line 2: malformed line at column 4: expected indentation in multiples of 4 spaces, got 3"},
		{"indent before section", cert("    " + word + " = " + srvSecret), "line 1: malformed line at column 5: expected a section before an indented line"},
		{"indent jump", cert(word, "        "+word+" = "+srvSecret), "line 2: malformed line at column 9: expected indentation of at most 4 spaces"},
		{"no name", cert("curve", "    = "+srvSecret), "line 2: malformed line at column 5: expected a name"},
		{"leading slash", cert("/" + word + " = " + srvSecret), "line 1: malformed line at column 1: expected a name that does not start or end with '/'"},
		{"trailing slash", cert(word + "/ = " + srvSecret), "line 1: malformed line at column 1: expected a name that does not start or end with '/'"},
		{"binary", "\x00" + srvSecret, "line 1: malformed line at column 1: expected a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keygen.ParseCertificate([]byte(tt.in))
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, keygen.ErrSyntax) {
				t.Errorf("err = %v, want ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", err, tt.msg)
			}
			assertNoInputText(t, err.Error(), strings.ReplaceAll(tt.in, srvPublic, ""))
		})
	}
}

// TestParseCertificateBareKeys: a file holding only a Z85 key (a secret
// key.key file put where a certificate is expected) must fail without
// repeating any of the key, whatever characters the key happens to hold. The
// keys come from a fixed seed: with fresh ones, a key would now and then
// share 4 characters with the fixed words of a message ("line", "name"), and
// the test would fail at random.
func TestParseCertificateBareKeys(t *testing.T) {
	seeded := rand.NewChaCha8([32]byte{'z', 'p', 'l'})
	for i := 0; i < 500; i++ {
		pair, err := keygen.GenerateKeyPair(seeded)
		if err != nil {
			t.Fatal(err)
		}
		secret := pair.Secret.Z85()
		for _, in := range []string{secret + "\n", secret, "    " + secret + "\n", "curve\n    " + secret + "\n"} {
			_, err := keygen.ParseCertificate([]byte(in))
			if err == nil {
				t.Fatalf("a bare key parsed as a certificate")
			}
			assertNoInputText(t, err.Error(), secret)
		}
	}
}
