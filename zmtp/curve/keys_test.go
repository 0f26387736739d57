package curve

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/zmqauth/zmqauth/zmtp"
)

func TestSecretKeyNeverPrints(t *testing.T) {
	kp := mustKeyPair(t)
	kp.Secret[0], kp.Secret[1] = 0xab, 0xcd // a recognisable start
	cfg := ServerConfig{Keys: []KeyPair{kp}, Authenticator: allow("u")}
	secretHex := fmt.Sprintf("%x", kp.Secret[:])
	values := map[string]any{"SecretKey": kp.Secret, "*SecretKey": &kp.Secret, "KeyPair": kp, "*KeyPair": &kp, "ServerConfig": cfg}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%o", "%b"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToLower(out), secretHex[:8]) || strings.Contains(out, fmt.Sprint(kp.Secret[:4])[1:8]) || strings.Contains(out, "171 205") {
				t.Errorf("%s printed with %s shows the secret key: %s", name, verb, out)
			}
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("k", "secret", kp.Secret, "pair", kp)
	if strings.Contains(strings.ToLower(buf.String()), secretHex[:8]) || strings.Contains(buf.String(), "171,205") {
		t.Errorf("slog shows the secret key: %s", buf.String())
	}
	if !strings.Contains(fmt.Sprint(kp), kp.Public.String()) {
		t.Errorf("KeyPair prints as %v, want its public key %s shown", kp, kp.Public)
	}
}

func TestNewServerValidates(t *testing.T) {
	good := mustKeyPair(t)
	mismatched := mustKeyPair(t)
	mismatched.Public = good.Public
	derived := good
	derived.Public = PublicKey{}
	tests := []struct {
		name string
		cfg  ServerConfig
		want error
	}{
		{"no authenticator", ServerConfig{Keys: []KeyPair{good}}, zmtp.ErrNoAuthenticator},
		{"no keys", ServerConfig{Authenticator: allow("u")}, ErrInvalidKey},
		{"zero secret", ServerConfig{Keys: []KeyPair{{Public: good.Public}}, Authenticator: allow("u")}, ErrInvalidKey},
		{"public key of another pair", ServerConfig{Keys: []KeyPair{good, mismatched}, Authenticator: allow("u")}, ErrInvalidKey},
		{"valid", ServerConfig{Keys: []KeyPair{good}, Authenticator: allow("u")}, nil},
		{"public key derived", ServerConfig{Keys: []KeyPair{derived}, Authenticator: allow("u")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewServer error %v, want %v", err, tt.want)
			}
			assertNoSecrets(t, err, good, mismatched)
			if err == nil && s.PublicKeys()[0] != good.Public {
				t.Errorf("server public key %s, want %s", s.PublicKeys()[0], good.Public)
			}
		})
	}
}

func TestNewClientValidates(t *testing.T) {
	good, server := mustKeyPair(t), mustKeyPair(t)
	tests := []struct {
		name string
		cfg  ClientConfig
		want error
	}{
		{"valid", ClientConfig{Key: good, ServerKey: server.Public}, nil},
		{"zero server key", ClientConfig{Key: good}, ErrInvalidKey},
		{"low-order server key", ClientConfig{Key: good, ServerKey: PublicKey{1}}, ErrInvalidKey},
		{"zero client secret", ClientConfig{Key: KeyPair{Public: good.Public}, ServerKey: server.Public}, ErrInvalidKey},
		{"client public key of another pair", ClientConfig{Key: KeyPair{Public: server.Public, Secret: good.Secret}, ServerKey: server.Public}, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewClient error %v, want %v", err, tt.want)
			}
			assertNoSecrets(t, err, good, server)
			if err == nil {
				if c.PublicKey() != good.Public || c.ServerKey() != server.Public || c.Name() != "CURVE" || c.AsServer() {
					t.Errorf("client %v: wrong keys or identity", c)
				}
				if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, fmt.Sprintf("%x", good.Secret[:])) {
					t.Errorf("client prints its secret key: %s", s)
				}
			}
		})
	}
}

func TestZeroServerRefuses(t *testing.T) {
	var s Server // not made by NewServer: no authenticator, no keys
	c := mustClient(t, mustKeyPair(t), mustKeyPair(t).Public)
	o := runHandshake(t, c, &s, handshakeOpts{})
	if !errors.Is(o.serverErr, zmtp.ErrNoAuthenticator) || o.clientErr == nil {
		t.Fatalf("zero Server: server error %v, client error %v; want ErrNoAuthenticator and a failed client", o.serverErr, o.clientErr)
	}
}
