package keygen_test

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; `go test` runs them every
// time and `go test -fuzz` starts from them.

func FuzzZ85Decode(f *testing.F) {
	f.Add("HelloWorld")
	f.Add(srvPublic)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := keygen.Z85Decode(s)
		if err != nil {
			if out != nil {
				t.Fatal("data returned with an error")
			}
			var zerr *keygen.Z85Error
			if !errors.As(err, &zerr) || !errors.Is(err, keygen.ErrInvalidZ85) {
				t.Fatalf("error %v is not a *Z85Error", err)
			}
			switch zerr.Kind {
			case keygen.Z85BadLength:
				if len(s)%5 == 0 || zerr.Length != len(s) {
					t.Fatalf("length error %v for length %d", err, len(s))
				}
			case keygen.Z85BadChar:
				if zerr.Position < 0 || zerr.Position >= len(s) || s[zerr.Position] != zerr.Char {
					t.Fatalf("bad-character error %v does not point at the character", err)
				}
			case keygen.Z85Overflow:
				if zerr.Position%5 != 0 || zerr.Position+5 > len(s) {
					t.Fatalf("overflow error %v does not point at a group", err)
				}
			default:
				t.Fatalf("unknown error kind in %v", err)
			}
			return
		}
		if len(s)%5 != 0 || len(out) != len(s)/5*4 {
			t.Fatalf("decoded %d characters to %d bytes", len(s), len(out))
		}
		// Valid Z85 is canonical: encoding gives back the same text.
		back, err := keygen.Z85Encode(out)
		if err != nil || back != s {
			t.Fatalf("re-encoding %q gave %q, %v", s, back, err)
		}
	})
}

// certSentinels are the errors ParseCertificate may return.
var certSentinels = []error{
	keygen.ErrSyntax, keygen.ErrMissingCurve, keygen.ErrMissingPublicKey, keygen.ErrDuplicate,
	keygen.ErrKeyMismatch, keygen.ErrKeyLength, keygen.ErrInvalidZ85,
}

// secretValues returns the values written after "secret-key" in data, as far
// as a rough scan can tell, to check that errors never repeat them.
func secretValues(data []byte) []string {
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		i := bytes.Index(line, []byte("secret-key"))
		if i < 0 {
			continue
		}
		rest := line[i+len("secret-key"):]
		if j := bytes.IndexByte(rest, '='); j >= 0 {
			rest = rest[j+1:]
		}
		v := strings.Trim(string(rest), " \t\r\"'")
		if len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}

func FuzzParseCertificate(f *testing.F) {
	f.Add([]byte(pyzmqSecret))
	f.Add([]byte(czmqPublic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := keygen.ParseCertificate(data)
		if err != nil {
			if c != nil {
				t.Fatal("certificate returned with an error")
			}
			known := false
			for _, s := range certSentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n") {
				t.Fatalf("multi-line error %q", msg)
			}
			for _, v := range secretValues(data) {
				// Skip values that also appear elsewhere in the input (as a
				// public key or a name, which errors may show).
				if bytes.Count(data, []byte(v)) == 1 && strings.Contains(msg, v) {
					t.Fatalf("error repeats a secret-key value")
				}
			}
			return
		}
		if c.Metadata == nil {
			t.Fatal("nil metadata")
		}
		if c.HasSecret() {
			derived, err := keygen.PublicFromSecret(c.SecretKey)
			if err != nil || derived != c.PublicKey {
				t.Fatal("accepted a secret key that does not match the public key")
			}
			if _, err := keygen.ParsePublicCertificate(data); !errors.Is(err, keygen.ErrSecretInPublic) {
				t.Fatalf("ParsePublicCertificate accepted a secret certificate: %v", err)
			}
		} else if _, err := keygen.ParsePublicCertificate(data); err != nil {
			t.Fatalf("ParsePublicCertificate refused what ParseCertificate accepted: %v", err)
		}

		// What we accept, we can write back (unless the metadata holds what
		// a zcert value cannot carry) and read again unchanged.
		out, err := c.MarshalPublic()
		if errors.Is(err, keygen.ErrMetadata) {
			return
		}
		if err != nil {
			t.Fatalf("MarshalPublic: %v", err)
		}
		if c.HasSecret() {
			if out, err = c.MarshalSecret(); err != nil {
				t.Fatalf("MarshalSecret: %v", err)
			}
		}
		again, err := keygen.ParseCertificate(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled certificate: %v", err)
		}
		if again.PublicKey != c.PublicKey || !again.SecretKey.Equal(c.SecretKey) || !maps.Equal(again.Metadata, c.Metadata) {
			t.Fatal("marshal and parse changed the certificate")
		}
	})
}
