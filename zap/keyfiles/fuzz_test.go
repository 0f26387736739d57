package keyfiles_test

import (
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/zap/keyfiles"
)

// FuzzParseKeyFile checks the key-file parser on arbitrary input: it never
// panics, what it accepts is exactly one key (re-encoding gives the input
// back, less one newline), the public and secret parsers agree, and a
// secret-key error does not repeat the input.
func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"))
	f.Add([]byte("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"))
	f.Add([]byte("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\r\n"))
	f.Add([]byte("#@$&^#@$&^#@$&^#@$&^#@$&^#@$&^#@$&^#@$&^"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, perr := keyfiles.ParseKeyFile(data)
		sec, serr := keyfiles.ParseSecretKeyFile(data)
		if (perr == nil) != (serr == nil) {
			t.Fatalf("public parse error %v, secret parse error %v: they disagree", perr, serr)
		}
		if perr == nil {
			text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
			if pub.String() != text {
				t.Fatalf("accepted %q as %s", data, pub)
			}
			if sec.Z85() != text {
				t.Fatal("secret key does not re-encode to its input")
			}
			return
		}
		// Our error texts never contain these Z85 characters, so an error
		// that contains an input holding them has echoed it.
		if len(data) >= 8 && strings.ContainsAny(string(data), "@$&^#") && strings.Contains(serr.Error(), string(data)) {
			t.Fatalf("secret key error repeats its input: %v", serr)
		}
		if len(data) >= 8 && strings.ContainsAny(string(data), "@$&^#") && strings.Contains(perr.Error(), string(data)) {
			t.Fatalf("public key error repeats its input (it may be a secret key): %v", perr)
		}
	})
}
