package filecontract

import (
	"regexp"
	"strings"
	"testing"

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
		{PublicKeyFile, "", "", false},
		{"server.a.b.key_secret", "", "", false},
	} {
		ns, name, ok := ParseServerKeyFileName(tt.key)
		if ns != tt.ns || name != tt.name || ok != tt.ok {
			t.Errorf("ParseServerKeyFileName(%q) = %q, %q, %v", tt.key, ns, name, ok)
		}
	}
	if got := ClientKeyFileName("team-a", "ingest"); got != "team-a.ingest.key" {
		t.Fatalf("ClientKeyFileName = %q", got)
	}
	if got := PreviousClientKeyFileName("team-a", "ingest"); got != "team-a.ingest.previous.key" {
		t.Fatalf("PreviousClientKeyFileName = %q", got)
	}
	if !IsPreviousClientKeyFile(PreviousClientKeyFileName("a", "b")) || IsPreviousClientKeyFile(ClientKeyFileName("a", "b")) ||
		IsPreviousClientKeyFile(NextClientKeyFileName("a", "b")) {
		t.Fatal("IsPreviousClientKeyFile does not tell a previous key file from the others")
	}
	kp := mustPair(t)
	raw := RawKeyFileName(kp.Public)
	if !regexp.MustCompile(`^_raw\.[0-9a-f]{16}\.key$`).MatchString(raw) {
		t.Fatalf("RawKeyFileName = %q", raw)
	}
	// A CurveClient whose namespace is "raw" and whose name is the same hex
	// digest must not share the raw key's file.
	digest := strings.TrimSuffix(strings.TrimPrefix(raw, RawKeyPrefix), KeyFileSuffix)
	for _, n := range []string{ClientKeyFileName("raw", digest), PreviousClientKeyFileName("raw", digest), NextClientKeyFileName("raw", digest)} {
		if n == raw {
			t.Fatalf("a CurveClient's file %q collides with a raw key's", n)
		}
	}
	if got := NextClientKeyFileName("team", "c"); got != "team.c.next.key" {
		t.Fatalf("NextClientKeyFileName = %q", got)
	}
	if RawKeyFileName(kp.Public) != raw || RawKeyFileName(mustPair(t).Public) == raw {
		t.Fatal("RawKeyFileName is not a stable per-key name")
	}
	// Every file name the allowlist uses is a file name pyzmq's
	// configure_curve(location=DIR) picks up: it ends in ".key".
	for _, n := range []string{raw, ClientKeyFileName("a", "b"), PreviousClientKeyFileName("a", "b"), NextClientKeyFileName("a", "b")} {
		if _, _, err := keygen.CertificatePaths("/d", strings.TrimSuffix(n, KeyFileSuffix)); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
}

func TestIsSecretFileName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{SecretKeyFile, true},
		{PreviousSecretKeyFile, true},
		{NextSecretKeyFile, true},
		{SecretCertificateFile, true},
		{"a.b.key_secret", true},
		{PublicKeyFile, false},
		{PreviousPublicKeyFile, false},
		{NextPublicKeyFile, false},
		{CertificateFile, false},
		{ServerKeyFileName("a", "b"), false},
		{IndexFile, false},
		{ModeFile, false},
	} {
		if got := IsSecretFileName(tt.name); got != tt.want {
			t.Errorf("IsSecretFileName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
