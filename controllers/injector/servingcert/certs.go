package servingcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Data keys of the certificate Secret (cert-manager's names).
const (
	// KeyCABundle holds the CA bundle, PEM: current CA first.
	KeyCABundle = "ca.crt"
	// KeyCAKey holds the current CA's private key, PEM.
	KeyCAKey = "ca.key"
	// KeyCert holds the serving certificate, PEM.
	KeyCert = "tls.crt"
	// KeyKey holds the serving certificate's private key, PEM.
	KeyKey = "tls.key"
)

// backdate is how far before "now" a new certificate becomes valid, so an
// API server whose clock is a little behind still accepts it.
const backdate = time.Hour

// state is the certificate Secret parsed. Anything missing or malformed is
// left nil; plan replaces it.
type state struct {
	cas    []*x509.Certificate // the bundle, current first
	caKey  *ecdsa.PrivateKey   // the key of cas[0], nil if it does not match
	leaf   *x509.Certificate
	leafOK bool // leaf parsed and its key matches
}

// parseState reads a certificate Secret's data. It never fails: what cannot
// be used is reported as absent, and plan issues a replacement.
func parseState(data map[string][]byte) state {
	var st state
	st.cas = parseCerts(data[KeyCABundle])
	if len(st.cas) > 0 {
		if k, err := parseKey(data[KeyCAKey]); err == nil && publicKeyMatches(st.cas[0], k) {
			st.caKey = k
		}
	}
	if certs := parseCerts(data[KeyCert]); len(certs) > 0 {
		st.leaf = certs[0]
		if k, err := parseKey(data[KeyKey]); err == nil && publicKeyMatches(st.leaf, k) {
			st.leafOK = true
		}
	}
	return st
}

// plan decides the Secret's next data. caTrusted reports whether every
// webhook configuration already trusts st.cas[0]; only then is a valid
// serving certificate from an older CA re-issued from the current one. It
// returns nil when data needs no change.
func plan(data map[string][]byte, dnsNames []string, now time.Time, caLifetime, certLifetime time.Duration, caTrusted func(*x509.Certificate) bool) (map[string][]byte, error) {
	st := parseState(data)
	out := map[string][]byte{}
	for k, v := range data {
		out[k] = v
	}

	// The CA: keep the current one while it is usable and not due.
	newCA := false
	if len(st.cas) == 0 || st.caKey == nil || !st.cas[0].IsCA || !valid(st.cas[0], now) || due(st.cas[0], now) {
		ca, key, err := newCACert(now, caLifetime)
		if err != nil {
			return nil, err
		}
		st.cas = append([]*x509.Certificate{ca}, st.cas...)
		st.caKey = key
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, err
		}
		out[KeyCAKey] = keyPEM
		newCA = true
	}
	// Earlier CAs stay in the bundle while still valid: serving
	// certificates they signed may still be in use.
	bundle := []*x509.Certificate{st.cas[0]}
	for _, c := range st.cas[1:] {
		if valid(c, now) && c.IsCA && !slices.ContainsFunc(bundle, c.Equal) {
			bundle = append(bundle, c)
		}
	}
	out[KeyCABundle] = encodeCerts(bundle)

	// The serving certificate: re-issue when unusable, due, not covering
	// the names, or signed by an older CA once the current one is trusted.
	issue := !st.leafOK || !valid(st.leaf, now) || due(st.leaf, now) || !covers(st.leaf, dnsNames) || signer(st.leaf, bundle) < 0
	if !issue && signer(st.leaf, bundle) > 0 && !newCA && caTrusted(bundle[0]) {
		issue = true
	}
	if issue {
		certPEM, keyPEM, err := newServingCert(bundle[0], st.caKey, dnsNames, now, certLifetime)
		if err != nil {
			return nil, err
		}
		out[KeyCert], out[KeyKey] = certPEM, keyPEM
	}

	if equalData(out, data) {
		return nil, nil
	}
	return out, nil
}

// valid reports whether now is within c's validity period.
func valid(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && now.Before(c.NotAfter)
}

// due reports whether less than a third of c's lifetime is left.
func due(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Sub(now) < life/3
}

// covers reports whether c is valid for every name.
func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

// signer returns the index in bundle of the CA that signed c, or -1.
func signer(c *x509.Certificate, bundle []*x509.Certificate) int {
	for i, ca := range bundle {
		if c.CheckSignatureFrom(ca) == nil {
			return i
		}
	}
	return -1
}

func newCACert(now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "zmqauth-webhook-ca " + now.UTC().Format("2006-01-02T15:04:05Z"), Organization: []string{"zmqauth"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	return ca, key, nil
}

func newServingCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, dnsNames []string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("no DNS names for the serving certificate")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0], Organization: []string{"zmqauth"}},
		DNSNames:     slices.Clone(dnsNames),
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// parseCerts returns the certificates in a PEM bundle, skipping anything
// that does not parse.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA", k)
	}
	return ek, nil
}

func publicKeyMatches(c *x509.Certificate, k *ecdsa.PrivateKey) bool {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(&k.PublicKey)
}

// bundleTrusts reports whether the PEM bundle holds ca.
func bundleTrusts(bundle []byte, ca *x509.Certificate) bool {
	return slices.ContainsFunc(parseCerts(bundle), ca.Equal)
}

// keyPair loads the serving certificate from the Secret's data.
func keyPair(data map[string][]byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(data[KeyCert], data[KeyKey])
	if err != nil {
		return nil, fmt.Errorf("loading serving certificate: %w", err)
	}
	return &c, nil
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
