package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
	"github.com/zmqauth/zmqauth/zmtp"
	"github.com/zmqauth/zmqauth/zmtp/curve"
)

// curvePair converts a loaded keypair to the curve package's type.
func curvePair(p keygen.KeyPair) curve.KeyPair {
	var cp curve.KeyPair
	cp.Public = curve.PublicKey(p.Public)
	secret := p.Secret.Bytes()
	copy(cp.Secret[:], secret)
	clear(secret)
	return cp
}

// newClient builds a CURVE client from a keypair directory and the file
// holding the server's public key.
func newClient(keyDir, serverKeyFile string) (*curve.Client, error) {
	kp, err := keyfiles.LoadClientKeys(keyDir)
	if err != nil {
		return nil, fmt.Errorf("client keys: %w", err)
	}
	serverKey, err := keyfiles.ReadPublicKey(serverKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return curve.NewClient(curve.ClientConfig{Key: curvePair(kp), ServerKey: curve.PublicKey(serverKey)})
}

// newServer builds a CURVE server from a keypair directory, authorizing
// clients with allowAll over the allowlist directory (empty: no keys).
func newServer(keyDir, allowlistDir string) (*curve.Server, error) {
	keys, err := keyfiles.LoadServerKeys(keyDir)
	if err != nil {
		return nil, fmt.Errorf("server keys: %w", err)
	}
	auth, err := allowAll(allowlistDir)
	if err != nil {
		return nil, err
	}
	return curve.NewServer(curve.ServerConfig{
		Keys:          []curve.KeyPair{curvePair(keys.Current)},
		Authenticator: auth,
		Domain:        "bench",
	})
}

// allowAll returns an Authenticator that lets every CURVE client in, but
// looks its key up in a map of the allowlist directory's certificates
// first, as a real allowlist does, so that the lookup's cost is counted; a
// known key gets its certificate's name as User-Id. It is the counterpart
// of the libzmq benchmark server's ZAP handler, which answers 200 to all.
func allowAll(dir string) (zmtp.Authenticator, error) {
	known := make(map[[curve.KeySize]byte]string)
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), keygen.PublicSuffix) {
				continue
			}
			cert, err := keygen.ReadPublicCertificate(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("allowlist: %w", err)
			}
			known[cert.PublicKey] = strings.TrimSuffix(e.Name(), keygen.PublicSuffix)
		}
	}
	return zmtp.AuthenticatorFunc(func(_ context.Context, req *zmtp.AuthRequest) zmtp.AuthResult {
		var k [curve.KeySize]byte
		copy(k[:], req.ClientKey)
		name, ok := known[k]
		if !ok {
			name = "anonymous"
		}
		return zmtp.AuthResult{StatusCode: zmtp.StatusOK, UserID: name}
	}), nil
}
