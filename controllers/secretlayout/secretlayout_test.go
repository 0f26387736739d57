package secretlayout

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/keygen"
)

func mustPair(t *testing.T) keygen.KeyPair {
	t.Helper()
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func secretWith(t *testing.T, data map[string][]byte, ann map[string]string) *corev1.Secret {
	t.Helper()
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ann}, Type: SecretType, Data: data}
}

// noSecretIn fails when err's text holds any of the given secret keys.
func noSecretIn(t *testing.T, err error, keys ...keygen.KeyPair) {
	t.Helper()
	if err == nil {
		return
	}
	for _, kp := range keys {
		if z := kp.Secret.Z85(); z != "" && strings.Contains(err.Error(), z) {
			t.Fatalf("error %q contains a secret key", err)
		}
	}
}

func TestKeyPairDataRoundTrip(t *testing.T) {
	kp := mustPair(t)
	data, err := KeyPairData(kp, Identity("ns", "srv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data[KeyPublic]); got != kp.Public.String() || len(got) != 40 {
		t.Fatalf("public.key = %q", got)
	}
	if got := string(data[KeySecret]); got != kp.Secret.Z85() || len(got) != 40 {
		t.Fatal("secret.key is not the 40-character Z85 secret key")
	}
	pub, err := keygen.ParsePublicCertificate(data[KeyCertificate])
	if err != nil || pub.PublicKey != kp.Public || pub.Metadata[MetadataName] != "ns/srv" {
		t.Fatalf("curve.key: %v %+v", err, pub)
	}
	sec, err := keygen.ParseSecretCertificate(data[KeySecretCertificate])
	if err != nil || !sec.SecretKey.Equal(kp.Secret) || sec.Metadata[MetadataName] != "ns/srv" {
		t.Fatalf("curve.key_secret: %v", err)
	}
	got, err := ParseKeyPair(secretWith(t, data, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Public != kp.Public || !got.Secret.Equal(kp.Secret) {
		t.Fatal("ParseKeyPair returned another keypair")
	}
}

func TestKeyPairDataRejectsBadPair(t *testing.T) {
	a, b := mustPair(t), mustPair(t)
	for name, kp := range map[string]keygen.KeyPair{
		"no secret": {Public: a.Public},
		"mismatch":  {Public: a.Public, Secret: b.Secret},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := KeyPairData(kp, "x/y")
			if err == nil {
				t.Fatal("want error")
			}
			noSecretIn(t, err, a, b)
		})
	}
}

func TestParseKeyPairDamage(t *testing.T) {
	kp, other := mustPair(t), mustPair(t)
	good, err := KeyPairData(kp, "ns/a")
	if err != nil {
		t.Fatal(err)
	}
	otherData, err := KeyPairData(other, "ns/a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(d map[string][]byte)
		wantKey string
		wantErr error
	}{
		{"secret.key missing", func(d map[string][]byte) { delete(d, KeySecret) }, KeySecret, ErrMissing},
		{"secret.key garbage", func(d map[string][]byte) { d[KeySecret] = []byte("~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~") }, KeySecret, keygen.ErrInvalidZ85},
		{"secret.key with newline", func(d map[string][]byte) { d[KeySecret] = append(d[KeySecret], '\n') }, KeySecret, nil},
		{"public.key missing", func(d map[string][]byte) { delete(d, KeyPublic) }, KeyPublic, ErrMissing},
		{"public.key altered", func(d map[string][]byte) { d[KeyPublic] = otherData[KeyPublic] }, KeyPublic, ErrMismatch},
		{"curve.key missing", func(d map[string][]byte) { delete(d, KeyCertificate) }, KeyCertificate, ErrMissing},
		{"curve.key other key", func(d map[string][]byte) { d[KeyCertificate] = otherData[KeyCertificate] }, KeyCertificate, ErrMismatch},
		{"curve.key holds the secret", func(d map[string][]byte) { d[KeyCertificate] = d[KeySecretCertificate] }, KeyCertificate, keygen.ErrSecretInPublic},
		{"curve.key_secret other pair", func(d map[string][]byte) { d[KeySecretCertificate] = otherData[KeySecretCertificate] }, KeySecretCertificate, ErrMismatch},
		{"curve.key_secret public only", func(d map[string][]byte) { d[KeySecretCertificate] = d[KeyCertificate] }, KeySecretCertificate, keygen.ErrMissingSecretKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := map[string][]byte{}
			for k, v := range good {
				d[k] = append([]byte(nil), v...)
			}
			tt.edit(d)
			_, err := ParseKeyPair(secretWith(t, d, nil))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.wantKey {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.wantKey)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			noSecretIn(t, err, kp, other)
		})
	}
}

func TestParsePrevious(t *testing.T) {
	prev, other := mustPair(t), mustPair(t)
	pub := []byte(prev.Public.String())
	sec := []byte(prev.Secret.Z85())
	tests := []struct {
		name             string
		data             map[string][]byte
		wantPub, wantSec bool
		wantErrKey       string
	}{
		{"none", nil, false, false, ""},
		{"client: public only", map[string][]byte{KeyPreviousPublic: pub}, true, false, ""},
		{"server: both", map[string][]byte{KeyPreviousPublic: pub, KeyPreviousSecret: sec}, true, true, ""},
		{"secret without public", map[string][]byte{KeyPreviousSecret: sec}, false, false, KeyPreviousPublic},
		{"mismatch", map[string][]byte{KeyPreviousPublic: []byte(other.Public.String()), KeyPreviousSecret: sec}, false, false, KeyPreviousPublic},
		{"bad public", map[string][]byte{KeyPreviousPublic: []byte("short")}, false, false, KeyPreviousPublic},
		{"bad secret", map[string][]byte{KeyPreviousPublic: pub, KeyPreviousSecret: []byte("~~~~~")}, false, false, KeyPreviousSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotPub, gotPair, err := ParsePrevious(secretWith(t, tt.data, nil))
			if tt.wantErrKey != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Key != tt.wantErrKey {
					t.Fatalf("err = %v, want FieldError for %s", err, tt.wantErrKey)
				}
				noSecretIn(t, err, prev, other)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (gotPub != nil) != tt.wantPub || (gotPair != nil) != tt.wantSec {
				t.Fatalf("pub %v pair %v", gotPub != nil, gotPair != nil)
			}
			if gotPub != nil && *gotPub != prev.Public {
				t.Fatal("wrong previous public key")
			}
			if gotPair != nil && !gotPair.Secret.Equal(prev.Secret) {
				t.Fatal("wrong previous secret key")
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	cur, prev := mustPair(t), mustPair(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		state State
	}{
		{"first key", State{Current: cur, Revision: 1, RotatedAt: at, RotationReason: "KeyGenerated"}},
		{"server overlap", State{Current: cur, Previous: &prev, Revision: 4, RotatedAt: at, OverlapUntil: at.Add(time.Hour), RotationRequest: "17", RotationReason: "RotationRequested"}},
		{"client overlap", State{Current: cur, Previous: &keygen.KeyPair{Public: prev.Public}, Revision: 2, RotatedAt: at, OverlapUntil: at.Add(time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.state.Data("ns/x")
			if err != nil {
				t.Fatal(err)
			}
			_, hasPrevSecret := data[KeyPreviousSecret]
			if want := tt.state.Previous != nil && !tt.state.Previous.Secret.IsZero(); hasPrevSecret != want {
				t.Fatalf("previous-secret.key present = %v, want %v", hasPrevSecret, want)
			}
			got, err := ReadState(secretWith(t, data, tt.state.Annotations()))
			if err != nil {
				t.Fatal(err)
			}
			if got.Current.Public != tt.state.Current.Public || got.Revision != tt.state.Revision ||
				!got.RotatedAt.Equal(tt.state.RotatedAt) || !got.OverlapUntil.Equal(tt.state.OverlapUntil) ||
				got.RotationRequest != tt.state.RotationRequest || got.RotationReason != tt.state.RotationReason ||
				got.InOverlap() != tt.state.InOverlap() {
				t.Fatalf("read back %+v, want %+v", got, tt.state)
			}
			if got.Previous != nil && (got.Previous.Public != tt.state.Previous.Public || !got.Previous.Secret.Equal(tt.state.Previous.Secret)) {
				t.Fatal("previous key changed")
			}
		})
	}
}

func TestReadStateRejects(t *testing.T) {
	cur, prev := mustPair(t), mustPair(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := State{Current: cur, Previous: &prev, Revision: 2, RotatedAt: at, OverlapUntil: at.Add(time.Hour)}
	tests := []struct {
		name string
		edit func(d map[string][]byte, a map[string]string)
	}{
		{"no revision", func(_ map[string][]byte, a map[string]string) { delete(a, AnnotationKeyRevision) }},
		{"zero revision", func(_ map[string][]byte, a map[string]string) { a[AnnotationKeyRevision] = "0" }},
		{"bad rotated-at", func(_ map[string][]byte, a map[string]string) { a[AnnotationRotatedAt] = "yesterday" }},
		{"previous without overlap-until", func(_ map[string][]byte, a map[string]string) { delete(a, AnnotationOverlapUntil) }},
		{"overlap-until without previous", func(d map[string][]byte, _ map[string]string) {
			delete(d, KeyPreviousPublic)
			delete(d, KeyPreviousSecret)
		}},
		{"bad overlap-until", func(_ map[string][]byte, a map[string]string) { a[AnnotationOverlapUntil] = "soon" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := base.Data("ns/x")
			if err != nil {
				t.Fatal(err)
			}
			ann := base.Annotations()
			tt.edit(data, ann)
			_, err = ReadState(secretWith(t, data, ann))
			if err == nil {
				t.Fatal("want error")
			}
			noSecretIn(t, err, cur, prev)
		})
	}
}

func TestFileNames(t *testing.T) {
	if got := ServerKeyFileName("monitoring", "bus"); got != "server.monitoring.bus.key" {
		t.Fatalf("ServerKeyFileName = %q", got)
	}
	for _, tt := range []struct {
		key      string
		ns, name string
		ok       bool
	}{
		{"server.monitoring.bus.key", "monitoring", "bus", true},
		{"server.a-b.c-d.key", "a-b", "c-d", true},
		{"server.monitoring.key", "", "", false},
		{"server.a.b.c.key", "", "", false},
		{"public.key", "", "", false},
		{"server.a.b.key_secret", "", "", false},
	} {
		ns, name, ok := ParseServerKeyFileName(tt.key)
		if ns != tt.ns || name != tt.name || ok != tt.ok {
			t.Errorf("ParseServerKeyFileName(%q) = %q, %q, %v", tt.key, ns, name, ok)
		}
	}
	if got := ClientKeyFile("team-a", "ingest"); got != "team-a.ingest.key" {
		t.Fatalf("ClientKeyFile = %q", got)
	}
	if got := PreviousClientKeyFile("team-a", "ingest"); got != "team-a.ingest.previous.key" {
		t.Fatalf("PreviousClientKeyFile = %q", got)
	}
	if got := AllowlistConfigMapName("bus"); got != "bus-allowlist" {
		t.Fatalf("AllowlistConfigMapName = %q", got)
	}
	kp := mustPair(t)
	raw := RawKeyFile(kp.Public)
	if !regexp.MustCompile(`^_raw\.[0-9a-f]{16}\.key$`).MatchString(raw) {
		t.Fatalf("RawKeyFile = %q", raw)
	}
	// A CurveClient whose namespace is "raw" and whose name is the same hex
	// digest must not share the raw key's file.
	digest := strings.TrimSuffix(strings.TrimPrefix(raw, RawKeyPrefix), KeyFileSuffix)
	for _, n := range []string{ClientKeyFile("raw", digest), PreviousClientKeyFile("raw", digest), NextClientKeyFile("raw", digest)} {
		if n == raw {
			t.Fatalf("a CurveClient's file %q collides with a raw key's", n)
		}
	}
	if got := NextClientKeyFile("team", "c"); got != "team.c.next.key" {
		t.Fatalf("NextClientKeyFile = %q", got)
	}
	if RawKeyFile(kp.Public) != raw || RawKeyFile(mustPair(t).Public) == raw {
		t.Fatal("RawKeyFile is not a stable per-key name")
	}
	// Every file name the allowlist uses is a file name pyzmq's
	// configure_curve(location=DIR) picks up: it ends in ".key".
	for _, n := range []string{raw, ClientKeyFile("a", "b"), PreviousClientKeyFile("a", "b"), NextClientKeyFile("a", "b")} {
		if _, _, err := keygen.CertificatePaths("/d", strings.TrimSuffix(n, KeyFileSuffix)); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
}

func TestPublicCertificate(t *testing.T) {
	kp := mustPair(t)
	b, err := PublicCertificate(kp.Public, map[string]string{MetadataIdentity: "ns/c", MetadataGrant: "client-ref"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := keygen.ParsePublicCertificate(b)
	if err != nil || c.PublicKey != kp.Public || c.Metadata[MetadataIdentity] != "ns/c" {
		t.Fatalf("%v %+v", err, c)
	}
	if p := PreviousData(kp.Public, keygen.SecretKey{}); len(p) != 1 || string(p[KeyPreviousPublic]) != kp.Public.String() {
		t.Fatalf("client PreviousData = %v", p)
	}
}
