package keygen_test

import (
	"errors"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/keygen"
)

// Published test keys (libzmq's zmq_curve(7) example), so fixtures hold no
// real secret.
const (
	srvPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	srvSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	cliPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	cliSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
)

// pyzmqSecret is a secret certificate exactly as pyzmq 24's
// create_certificates writes it (metadata values unquoted).
const pyzmqSecret = `#   ****  Generated on 2026-11-23 09:14:23.241146 by pyzmq  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    name = srv
    x = y z
curve
    public-key = "` + srvPublic + `"
    secret-key = "` + srvSecret + `"
`

// czmqPublic is a public certificate as CZMQ's zcert_save_public writes it
// (metadata values quoted).
const czmqPublic = `#   ****  Generated on 2026-11-23T09:14:23 by CZMQ  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
    email = "ph@imatix.com"
    name = "Pieter Hintjens"
curve
    public-key = "` + cliPublic + `"
`

func TestParseCertificateGood(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		public     string
		wantSecret string
		metadata   map[string]string
	}{
		{"pyzmq secret", pyzmqSecret, srvPublic, srvSecret, map[string]string{"name": "srv", "x": "y z"}},
		{"CZMQ public", czmqPublic, cliPublic, "", map[string]string{"email": "ph@imatix.com", "name": "Pieter Hintjens"}},
		{"minimal", "curve\n    public-key = \"" + cliPublic + "\"\n", cliPublic, "", map[string]string{}},
		{"CRLF line ends", "metadata\r\n    a = \"b\"\r\ncurve\r\n    public-key = \"" + cliPublic + "\"\r\n", cliPublic, "", map[string]string{"a": "b"}},
		{"no final newline", "curve\n    public-key = \"" + cliPublic + "\"", cliPublic, "", map[string]string{}},
		{"single quotes", "curve\n    public-key = '" + cliPublic + "'\n    secret-key = '" + cliSecret + "'\n", cliPublic, cliSecret, map[string]string{}},
		{"unquoted key", "curve\n    public-key = " + cliPublic + "\n", cliPublic, "", map[string]string{}},
		{"tight equals", "curve\n    public-key=\"" + cliPublic + "\"\n", cliPublic, "", map[string]string{}},
		{"trailing comments", "metadata   # m\n    a = b c   # note\n    q = \"#x\" # y\ncurve # c\n    public-key = \"" + cliPublic + "\"   # the key\n", cliPublic, "", map[string]string{"a": "b c", "q": "#x"}},
		{"indented comments and blank lines", "# top\n\n    # indented\nmetadata\n\n  # odd indent comment\ncurve\n\n    public-key = \"" + cliPublic + "\"\n\n", cliPublic, "", map[string]string{}},
		{"curve before metadata", "curve\n    public-key = \"" + cliPublic + "\"\nmetadata\n    k = v\n", cliPublic, "", map[string]string{"k": "v"}},
		{"other sections ignored", "context\n    iothreads = 1\n    deeper\n        x = 1\ncurve\n    public-key = \"" + cliPublic + "\"\n    comment = \"ignored\"\n", cliPublic, "", map[string]string{}},
		{"empty metadata value", "metadata\n    flag\n    empty = \"\"\ncurve\n    public-key = \"" + cliPublic + "\"\n", cliPublic, "", map[string]string{"flag": "", "empty": ""}},
		{"quotes inside values", "metadata\n    a = 'say \"hi\"'\n    b = \"it's\"\ncurve\n    public-key = \"" + cliPublic + "\"\n", cliPublic, "", map[string]string{"a": `say "hi"`, "b": "it's"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := keygen.ParseCertificate([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseCertificate: %v", err)
			}
			if c.PublicKey.String() != tt.public {
				t.Errorf("public key = %s, want %s", c.PublicKey, tt.public)
			}
			if c.SecretKey.Z85() != tt.wantSecret {
				t.Errorf("secret key differs (has secret: %v, want one: %v)", c.HasSecret(), tt.wantSecret != "")
			}
			if !maps.Equal(c.Metadata, tt.metadata) {
				t.Errorf("metadata = %v, want %v", c.Metadata, tt.metadata)
			}
			// The strict readers agree with the general one.
			if tt.wantSecret == "" {
				if _, err := keygen.ParsePublicCertificate([]byte(tt.in)); err != nil {
					t.Errorf("ParsePublicCertificate: %v", err)
				}
				if _, err := keygen.ParseSecretCertificate([]byte(tt.in)); !errors.Is(err, keygen.ErrMissingSecretKey) {
					t.Errorf("ParseSecretCertificate: %v, want ErrMissingSecretKey", err)
				}
			} else {
				if _, err := keygen.ParseSecretCertificate([]byte(tt.in)); err != nil {
					t.Errorf("ParseSecretCertificate: %v", err)
				}
				if _, err := keygen.ParsePublicCertificate([]byte(tt.in)); !errors.Is(err, keygen.ErrSecretInPublic) {
					t.Errorf("ParsePublicCertificate: %v, want ErrSecretInPublic", err)
				}
			}
		})
	}
}

func cert(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

const (
	pubLine = `    public-key = "` + srvPublic + `"`
	secLine = `    secret-key = "` + srvSecret + `"`
)

// badCertificates: each must give its sentinel, its message, and never the
// secret key.
var badCertificates = []struct {
	name string
	in   string
	want error
	msg  string
}{
	{"empty file", "", keygen.ErrMissingCurve, "missing curve section"},
	{"comments only", "# nothing\n", keygen.ErrMissingCurve, "missing curve section"},
	{"no curve section", cert("metadata", "    a = b"), keygen.ErrMissingCurve, "missing curve section"},
	{"keys without section", cert(pubLine, secLine), keygen.ErrSyntax, "line 1: malformed line at column 5: expected a section before an indented line"},
	{"curve section empty", cert("metadata", "curve"), keygen.ErrMissingPublicKey, "missing public-key"},
	{"only secret-key", cert("curve", secLine), keygen.ErrMissingPublicKey, "missing public-key"},
	{"public-key misspelt", cert("curve", `    public_key = "`+srvPublic+`"`), keygen.ErrMissingPublicKey, "missing public-key"},
	{"duplicated public-key", cert("curve", pubLine, pubLine), keygen.ErrDuplicate, "line 3: duplicated public-key (first on line 2)"},
	{"duplicated secret-key", cert("curve", pubLine, secLine, secLine), keygen.ErrDuplicate, "line 4: duplicated secret-key (first on line 3)"},
	{"duplicated curve section", cert("curve", pubLine, "curve", secLine), keygen.ErrDuplicate, "line 3: duplicated curve section (first on line 1)"},
	{"duplicated metadata section", cert("metadata", "metadata", "curve", pubLine), keygen.ErrDuplicate, "line 2: duplicated metadata section"},
	{"duplicated metadata name", cert("metadata", "    a = 1", "    a = 2", "curve", pubLine), keygen.ErrDuplicate, "line 3: duplicated metadata name (first on line 2)"},
	{"key in metadata", cert("metadata", "    public-key = x", "curve", pubLine), keygen.ErrSyntax, "line 2: malformed line: public-key is not a key line"},
	{"key-like metadata name", cert("metadata", "    secret-key-hint = x", "curve", pubLine), keygen.ErrSyntax, "line 2:"},
	{"key at top level", cert("public-key = \""+srvPublic+"\"", "curve", pubLine), keygen.ErrSyntax, "line 1: malformed line: public-key outside the curve section"},
	{"key nested too deep", cert("curve", "    sub", "        public-key = \""+srvPublic+"\""), keygen.ErrSyntax, "line 3:"},
	{"nested metadata", cert("metadata", "    a", "        b = c", "curve", pubLine), keygen.ErrSyntax, "line 3: malformed line: nested item in the metadata section"},
	{"section with value", cert("curve = 1", pubLine), keygen.ErrSyntax, "line 1: malformed line: section curve has a value"},
	{"tab indent", cert("curve", "\tpublic-key = \""+srvPublic+"\""), keygen.ErrSyntax, "line 2: malformed line at column 1: expected indentation with spaces, not a tab"},
	{"two-space indent", cert("curve", "  public-key = \""+srvPublic+"\""), keygen.ErrSyntax, "line 2: malformed line at column 3: expected indentation in multiples of 4 spaces, got 2"},
	{"indent jump", cert("curve", "        public-key = \""+srvPublic+"\""), keygen.ErrSyntax, "line 2: malformed line at column 9: expected indentation of at most 4 spaces"},
	{"unterminated quote", cert("curve", `    public-key = "`+srvPublic), keygen.ErrSyntax, `line 2: malformed line at column 18: expected a closing " for the quoted value`},
	{"unterminated secret quote", cert("curve", pubLine, `    secret-key = "`+srvSecret), keygen.ErrSyntax, "line 3: malformed line at column 18: expected a closing \" for the quoted value"},
	{"junk after quoted value", cert("curve", pubLine+` x`), keygen.ErrSyntax, "line 2: malformed line at column 61: expected a comment or the end of the line after the value"},
	{"junk after secret", cert("curve", pubLine, secLine+`"`), keygen.ErrSyntax, "line 3: malformed line at column 60: expected a comment or the end of the line after the value"},
	{"no name", cert("curve", `    = "`+srvPublic+`"`), keygen.ErrSyntax, "line 2: malformed line at column 5: expected a name"},
	{"bad name char", cert("curve", `    public*key = 1`), keygen.ErrSyntax, "line 2: malformed line at column 11: expected '=', a comment or the end of the line after the name"},
	{"slash name", cert("/curve", pubLine), keygen.ErrSyntax, "line 1: malformed line at column 1: expected a name that does not start or end with '/'"},
	{"binary junk", "\x00\x01\x02\xff", keygen.ErrSyntax, "line 1: malformed line at column 1: expected a name"},
	{"truncated public key", cert("curve", `    public-key = "`+srvPublic[:39]+`"`), keygen.ErrKeyLength, "line 2: public-key: wrong length (want 40 Z85 characters, got 39)"},
	{"padded public key", cert("curve", `    public-key = " `+srvPublic+`"`), keygen.ErrKeyLength, "got 41"},
	{"empty public key", cert("curve", `    public-key = ""`), keygen.ErrKeyLength, "got 0"},
	{"public key bad char", cert("curve", `    public-key = "`+srvPublic[:17]+`~`+srvPublic[18:]+`"`), keygen.ErrInvalidZ85, "line 2: public-key: z85: invalid character '~' at position 17"},
	{"truncated secret key", cert("curve", pubLine, `    secret-key = "`+srvSecret[:39]+`"`), keygen.ErrKeyLength, "line 3: secret-key: wrong length (want 40 Z85 characters, got 39)"},
	{"padded secret key", cert("curve", pubLine, `    secret-key = "`+srvSecret+`=="`), keygen.ErrKeyLength, "got 42"},
	{"secret key bad char", cert("curve", pubLine, `    secret-key = "`+srvSecret[:21]+`~`+srvSecret[22:]+`"`), keygen.ErrInvalidZ85, "line 3: secret-key: z85: invalid character at position 21"},
	{"secret key overflow", cert("curve", pubLine, `    secret-key = "#####`+srvSecret[5:]+`"`), keygen.ErrInvalidZ85, "line 3: secret-key: z85: group at position 0 overflows 32 bits"},
	{"mismatched keys", cert("curve", `    public-key = "`+cliPublic+`"`, secLine), keygen.ErrKeyMismatch, "line 3: secret-key does not belong to public-key on line 2: the public-key must be the one this secret-key derives"},
}

func TestParseCertificateBad(t *testing.T) {
	for _, tt := range badCertificates {
		t.Run(tt.name, func(t *testing.T) {
			c, err := keygen.ParseCertificate([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Error("certificate returned with the error")
			}
			if !strings.HasPrefix(err.Error(), "keygen: certificate: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q spans lines", err)
			}
			assertNoSecret(t, err.Error(), srvSecret)
			assertNoSecret(t, err.Error(), cliSecret)
			// The public and secret readers fail too, with no secret either.
			for _, parse := range []func([]byte) (*keygen.Certificate, error){keygen.ParsePublicCertificate, keygen.ParseSecretCertificate} {
				if c, err := parse([]byte(tt.in)); err == nil {
					t.Errorf("strict parser accepted it: %v", c.PublicKey)
				} else {
					assertNoSecret(t, err.Error(), srvSecret)
				}
			}
		})
	}
}

// A key glued to its name by a typo must not come back in the error.
func TestParseCertificateGluedKey(t *testing.T) {
	const glued = "AbCdEfGh12345678"
	tests := []string{
		cert("curve", pubLine, "    secret-key"+glued),
		cert("curve", pubLine, "    secret-key"+glued+` = "x`),
		cert("curve", pubLine, "    secret-key"+glued+` = "x" junk`),
		cert("secret-key"+glued, "curve", pubLine),
		cert("metadata", "    secret-key"+glued, "curve", pubLine),
	}
	for i, in := range tests {
		_, err := keygen.ParseCertificate([]byte(in))
		if !errors.Is(err, keygen.ErrSyntax) {
			t.Errorf("case %d: err = %v, want ErrSyntax", i, err)
			continue
		}
		if strings.Contains(err.Error(), glued[:8]) {
			t.Errorf("case %d: error %q repeats the glued key", i, err)
		}
	}
	c := keygen.NewCertificate(testPair(t), map[string]string{"secret-key" + glued: "x"})
	if _, err := c.MarshalSecret(); !errors.Is(err, keygen.ErrMetadata) || strings.Contains(err.Error(), glued[:8]) {
		t.Errorf("MarshalSecret: %v", err)
	}
}

func TestParsePublicCertificateRefusesSecret(t *testing.T) {
	tests := []struct{ name, in string }{
		{"pyzmq secret file", pyzmqSecret},
		{"secret key first", cert("curve", secLine, pubLine)},
		// Even a broken secret-key marks the file as one that must not be shared.
		{"malformed secret key", cert("curve", pubLine, `    secret-key = "short"`)},
		{"empty secret key", cert("curve", pubLine, `    secret-key = ""`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keygen.ParsePublicCertificate([]byte(tt.in))
			if !errors.Is(err, keygen.ErrSecretInPublic) {
				t.Fatalf("err = %v, want ErrSecretInPublic", err)
			}
			if !strings.Contains(err.Error(), "must not be distributed") {
				t.Errorf("message %q does not say why", err)
			}
			assertNoSecret(t, err.Error(), srvSecret)
		})
	}
}

func TestCertificateMarshalRoundTrip(t *testing.T) {
	secret, _ := keygen.ParseSecretKey(srvSecret)
	public, _ := keygen.ParsePublicKey(srvPublic)
	pair := keygen.KeyPair{Public: public, Secret: secret}
	tests := []struct {
		name     string
		metadata map[string]string
	}{
		{"no metadata", nil},
		{"plain", map[string]string{"name": "srv", "namespace": "default"}},
		{"spaces and hash", map[string]string{"comment": "a # b", "spaced": "  x  "}},
		{"double quotes", map[string]string{"q": `say "hi"`}},
		{"apostrophe", map[string]string{"q": "it's"}},
		{"unicode", map[string]string{"owner": "Zoë — ops"}},
		{"name chars", map[string]string{"a.b-c_d@e$f&g+h/i": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := keygen.NewCertificate(pair, tt.metadata)
			pub, err := c.MarshalPublic()
			if err != nil {
				t.Fatal(err)
			}
			sec, err := c.MarshalSecret()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(pub), srvSecret) || strings.Contains(string(pub), "secret-key") {
				t.Fatal("public certificate holds the secret key")
			}
			if !strings.Contains(string(sec), `    secret-key = "`+srvSecret+`"`+"\n") {
				t.Error("secret certificate lacks its secret-key line")
			}
			pc, err := keygen.ParsePublicCertificate(pub)
			if err != nil {
				t.Fatalf("parse own public certificate: %v", err)
			}
			sc, err := keygen.ParseSecretCertificate(sec)
			if err != nil {
				t.Fatalf("parse own secret certificate: %v", err)
			}
			want := tt.metadata
			if want == nil {
				want = map[string]string{}
			}
			for _, got := range []*keygen.Certificate{pc, sc} {
				if got.PublicKey != public || !maps.Equal(got.Metadata, want) {
					t.Errorf("round trip: key %s metadata %v, want %s %v", got.PublicKey, got.Metadata, public, want)
				}
			}
			if !sc.SecretKey.Equal(secret) || pc.HasSecret() {
				t.Error("round trip changed the secret key")
			}
			// Marshalling is deterministic (no timestamp), so a controller
			// can compare before rewriting a Secret.
			again, _ := keygen.NewCertificate(pair, tt.metadata).MarshalSecret()
			if string(again) != string(sec) {
				t.Error("MarshalSecret is not deterministic")
			}
		})
	}
}

func TestCertificateMarshalBad(t *testing.T) {
	secret, _ := keygen.ParseSecretKey(srvSecret)
	public, _ := keygen.ParsePublicKey(srvPublic)
	other, _ := keygen.ParsePublicKey(cliPublic)
	tests := []struct {
		name      string
		cert      *keygen.Certificate
		publicErr error // from MarshalPublic
		secretErr error // from MarshalSecret
	}{
		{"public only", &keygen.Certificate{PublicKey: public}, nil, keygen.ErrMissingSecretKey},
		{"mismatch", &keygen.Certificate{PublicKey: other, SecretKey: secret}, nil, keygen.ErrKeyMismatch},
		{"empty name", keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, map[string]string{"": "x"}), keygen.ErrMetadata, keygen.ErrMetadata},
		{"space in name", keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, map[string]string{"a b": "x"}), keygen.ErrMetadata, keygen.ErrMetadata},
		{"reserved name", keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, map[string]string{"public-key": "x"}), keygen.ErrMetadata, keygen.ErrMetadata},
		{"newline in value", keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, map[string]string{"a": "x\ncurve"}), keygen.ErrMetadata, keygen.ErrMetadata},
		{"both quotes", keygen.NewCertificate(keygen.KeyPair{Public: public, Secret: secret}, map[string]string{"a": `"'`}), keygen.ErrMetadata, keygen.ErrMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cert.MarshalPublic()
			if !errors.Is(err, tt.publicErr) {
				t.Errorf("MarshalPublic: %v, want %v", err, tt.publicErr)
			}
			out, err := tt.cert.MarshalSecret()
			if !errors.Is(err, tt.secretErr) || out != nil {
				t.Errorf("MarshalSecret: %v, want %v", err, tt.secretErr)
			}
			if err != nil {
				assertNoSecret(t, err.Error(), srvSecret)
			}
		})
	}
}

// fixedPair is a keypair made from a fixed seed: the same on every run, so a
// check that no piece of its secret key appears in a message cannot fail by
// chance on the message's own words.
func fixedPair(t *testing.T) keygen.KeyPair {
	t.Helper()
	kp, err := keygen.GenerateKeyPair(rand.NewChaCha8([32]byte{'z', 'm', 'q', 'a', 'u', 't', 'h'}))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// assertNoPiece fails when text holds any 4-character piece of input.
func assertNoPiece(t *testing.T, text, what, input string) {
	t.Helper()
	for i := 0; i+4 <= len(input); i++ {
		if strings.Contains(text, input[i:i+4]) {
			t.Errorf("message %q repeats %q from the %s", text, input[i:i+4], what)
			return
		}
	}
}

// TestCertificateErrorsHideInput: a secret key pasted where a public key or
// a metadata name belongs must not come back in the error, so certificate
// errors say what is wrong without any text of the input.
func TestCertificateErrorsHideInput(t *testing.T) {
	kp := fixedPair(t)
	sec := kp.Secret.Z85()
	// The characters of the secret key that a ZPL name may hold: a key
	// pasted as a metadata name, as far as that can be one.
	name := strings.Trim(strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("$-_@.&+/", r) {
			return r
		}
		return -1
	}, sec), "/")
	if len(name) < 8 {
		t.Fatalf("the fixed key gives a name of %d characters; choose another seed", len(name))
	}
	secAsPublic, err := keygen.ParsePublicKey(sec)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		assertNoPiece(t, err.Error(), "secret key", sec)
		assertNoPiece(t, err.Error(), "metadata name", name)
	}
	secLineOf := `    secret-key = "` + sec + `"`
	parse := []struct {
		name string
		in   string
		want error
	}{
		{"secret key as public-key", cert("curve", `    public-key = "`+sec+`"`, secLineOf), keygen.ErrKeyMismatch},
		{"another public-key", cert("curve", pubLine, secLineOf), keygen.ErrKeyMismatch},
		{"duplicated metadata name", cert("metadata", "    "+name+" = 1", "    "+name+" = 2", "curve", pubLine), keygen.ErrDuplicate},
	}
	for _, tt := range parse {
		t.Run("parse "+tt.name, func(t *testing.T) {
			_, err := keygen.ParseCertificate([]byte(tt.in))
			check(t, err, tt.want)
			if tt.want == keygen.ErrKeyMismatch && !strings.Contains(err.Error(), "line 3: secret-key does not belong to public-key on line 2") {
				t.Errorf("message %q does not say which lines disagree", err)
			}
		})
	}
	marshal := []struct {
		name string
		cert *keygen.Certificate
		want error
	}{
		{"secret key as public key", &keygen.Certificate{PublicKey: secAsPublic, SecretKey: kp.Secret}, keygen.ErrKeyMismatch},
		{"invalid name", keygen.NewCertificate(kp, map[string]string{sec + "!": "x"}), keygen.ErrMetadata},
		{"reserved name", keygen.NewCertificate(kp, map[string]string{"secret-key" + name: "x"}), keygen.ErrMetadata},
		{"control character", keygen.NewCertificate(kp, map[string]string{name: sec + "\n"}), keygen.ErrMetadata},
		{"both quotes", keygen.NewCertificate(kp, map[string]string{name: `"'` + sec}), keygen.ErrMetadata},
	}
	for _, tt := range marshal {
		t.Run("marshal "+tt.name, func(t *testing.T) {
			_, err := tt.cert.MarshalSecret()
			check(t, err, tt.want)
			if tt.want == keygen.ErrMetadata {
				_, err := tt.cert.MarshalPublic()
				check(t, err, tt.want)
			}
		})
	}
	check(t, keygen.CheckMetadata(sec+"!", sec), keygen.ErrMetadata)
	check(t, keygen.CheckMetadata(name, sec+"\x7f"), keygen.ErrMetadata)
}
