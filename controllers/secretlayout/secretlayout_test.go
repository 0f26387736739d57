package secretlayout

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/filecontract"
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
	data, err := KeyPairData(kp, filecontract.Identity("ns", "srv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data[filecontract.PublicKeyFile]); got != kp.Public.String() || len(got) != 40 {
		t.Fatalf("public.key = %q", got)
	}
	if got := string(data[filecontract.SecretKeyFile]); got != kp.Secret.Z85() || len(got) != 40 {
		t.Fatal("secret.key is not the 40-character Z85 secret key")
	}
	pub, err := keygen.ParsePublicCertificate(data[filecontract.CertificateFile])
	if err != nil || pub.PublicKey != kp.Public || pub.Metadata[filecontract.MetadataName] != "ns/srv" {
		t.Fatalf("curve.key: %v %+v", err, pub)
	}
	sec, err := keygen.ParseSecretCertificate(data[filecontract.SecretCertificateFile])
	if err != nil || !sec.SecretKey.Equal(kp.Secret) || sec.Metadata[filecontract.MetadataName] != "ns/srv" {
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
		{"secret.key missing", func(d map[string][]byte) { delete(d, filecontract.SecretKeyFile) }, filecontract.SecretKeyFile, ErrMissing},
		{"secret.key garbage", func(d map[string][]byte) {
			d[filecontract.SecretKeyFile] = []byte("~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")
		}, filecontract.SecretKeyFile, keygen.ErrInvalidZ85},
		{"secret.key with newline", func(d map[string][]byte) { d[filecontract.SecretKeyFile] = append(d[filecontract.SecretKeyFile], '\n') }, filecontract.SecretKeyFile, nil},
		{"public.key missing", func(d map[string][]byte) { delete(d, filecontract.PublicKeyFile) }, filecontract.PublicKeyFile, ErrMissing},
		{"public.key altered", func(d map[string][]byte) { d[filecontract.PublicKeyFile] = otherData[filecontract.PublicKeyFile] }, filecontract.PublicKeyFile, ErrMismatch},
		{"curve.key missing", func(d map[string][]byte) { delete(d, filecontract.CertificateFile) }, filecontract.CertificateFile, ErrMissing},
		{"curve.key other key", func(d map[string][]byte) { d[filecontract.CertificateFile] = otherData[filecontract.CertificateFile] }, filecontract.CertificateFile, ErrMismatch},
		{"curve.key holds the secret", func(d map[string][]byte) { d[filecontract.CertificateFile] = d[filecontract.SecretCertificateFile] }, filecontract.CertificateFile, keygen.ErrSecretInPublic},
		{"curve.key_secret other pair", func(d map[string][]byte) {
			d[filecontract.SecretCertificateFile] = otherData[filecontract.SecretCertificateFile]
		}, filecontract.SecretCertificateFile, ErrMismatch},
		{"curve.key_secret public only", func(d map[string][]byte) { d[filecontract.SecretCertificateFile] = d[filecontract.CertificateFile] }, filecontract.SecretCertificateFile, keygen.ErrMissingSecretKey},
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
		{"client: public only", map[string][]byte{filecontract.PreviousPublicKeyFile: pub}, true, false, ""},
		{"server: both", map[string][]byte{filecontract.PreviousPublicKeyFile: pub, filecontract.PreviousSecretKeyFile: sec}, true, true, ""},
		{"secret without public", map[string][]byte{filecontract.PreviousSecretKeyFile: sec}, false, false, filecontract.PreviousPublicKeyFile},
		{"mismatch", map[string][]byte{filecontract.PreviousPublicKeyFile: []byte(other.Public.String()), filecontract.PreviousSecretKeyFile: sec}, false, false, filecontract.PreviousPublicKeyFile},
		{"bad public", map[string][]byte{filecontract.PreviousPublicKeyFile: []byte("short")}, false, false, filecontract.PreviousPublicKeyFile},
		{"bad secret", map[string][]byte{filecontract.PreviousPublicKeyFile: pub, filecontract.PreviousSecretKeyFile: []byte("~~~~~")}, false, false, filecontract.PreviousSecretKeyFile},
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
			_, hasPrevSecret := data[filecontract.PreviousSecretKeyFile]
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
			delete(d, filecontract.PreviousPublicKeyFile)
			delete(d, filecontract.PreviousSecretKeyFile)
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

func TestAllowlistConfigMapName(t *testing.T) {
	if got := AllowlistConfigMapName("bus"); got != "bus-allowlist" {
		t.Fatalf("AllowlistConfigMapName = %q", got)
	}
}

func TestPublicCertificate(t *testing.T) {
	kp := mustPair(t)
	b, err := PublicCertificate(kp.Public, map[string]string{filecontract.MetadataIdentity: "ns/c", filecontract.MetadataGrant: "client-ref"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := keygen.ParsePublicCertificate(b)
	if err != nil || c.PublicKey != kp.Public || c.Metadata[filecontract.MetadataIdentity] != "ns/c" {
		t.Fatalf("%v %+v", err, c)
	}
	if p := PreviousData(kp.Public, keygen.SecretKey{}); len(p) != 1 || string(p[filecontract.PreviousPublicKeyFile]) != kp.Public.String() {
		t.Fatalf("client PreviousData = %v", p)
	}
}
