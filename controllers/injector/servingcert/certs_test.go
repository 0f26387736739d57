package servingcert

import (
	"crypto/x509"
	"testing"
	"time"
)

var names = []string{"svc.ns.svc", "svc.ns.svc.cluster.local"}

const (
	caLife   = 5 * 365 * 24 * time.Hour
	certLife = 90 * 24 * time.Hour
)

func trustAll(*x509.Certificate) bool  { return true }
func trustNone(*x509.Certificate) bool { return false }

// mustPlan plans and fails the test on error; it returns the new data or, if
// plan says no change, the old.
func mustPlan(t *testing.T, data map[string][]byte, dns []string, now time.Time, trusted func(*x509.Certificate) bool) (map[string][]byte, bool) {
	t.Helper()
	out, err := plan(data, dns, now, caLife, certLife, trusted)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if out == nil {
		return data, false
	}
	return out, true
}

func leafOf(t *testing.T, data map[string][]byte) *x509.Certificate {
	t.Helper()
	c := parseCerts(data[KeyCert])
	if len(c) != 1 {
		t.Fatalf("tls.crt holds %d certificates, want 1", len(c))
	}
	if _, err := keyPair(data); err != nil {
		t.Fatalf("tls.crt/tls.key: %v", err)
	}
	return c[0]
}

// verifies checks the serving certificate chains to the bundle for every name.
func verifies(t *testing.T, data map[string][]byte, now time.Time) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[KeyCABundle]) {
		t.Fatal("ca.crt holds no certificate")
	}
	for _, n := range names {
		if _, err := leafOf(t, data).Verify(x509.VerifyOptions{Roots: pool, DNSName: n, CurrentTime: now}); err != nil {
			t.Fatalf("serving certificate does not verify for %s: %v", n, err)
		}
	}
}

func TestPlanBootstrapsAndThenLeavesAlone(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	data, changed := mustPlan(t, nil, names, now, trustNone)
	if !changed {
		t.Fatal("empty Secret: plan made nothing")
	}
	for _, k := range []string{KeyCABundle, KeyCAKey, KeyCert, KeyKey} {
		if len(data[k]) == 0 {
			t.Fatalf("%s is empty", k)
		}
	}
	verifies(t, data, now)

	for _, later := range []time.Duration{0, time.Hour, 59 * 24 * time.Hour} {
		if _, changed := mustPlan(t, data, names, now.Add(later), trustAll); changed {
			t.Errorf("%v later: plan changed a Secret with nothing due", later)
		}
	}
}

func TestPlanRenews(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	start, _ := mustPlan(t, nil, names, now, trustNone)
	ca0 := parseCerts(start[KeyCABundle])[0]

	tests := []struct {
		name     string
		data     map[string][]byte
		dns      []string
		at       time.Time
		newLeaf  bool
		newCA    bool
		bundleSz int
	}{
		{name: "serving certificate due (less than a third left)", data: start, dns: names, at: now.Add(61 * 24 * time.Hour), newLeaf: true, bundleSz: 1},
		{name: "serving certificate expired", data: start, dns: names, at: now.Add(100 * 24 * time.Hour), newLeaf: true, bundleSz: 1},
		{name: "a new DNS name", data: start, dns: append([]string{"other.ns.svc"}, names...), at: now, newLeaf: true, bundleSz: 1},
		{name: "serving key does not match", data: with(start, KeyKey, start[KeyCAKey]), dns: names, at: now, newLeaf: true, bundleSz: 1},
		{name: "garbage CA key", data: with(start, KeyCAKey, []byte("junk")), dns: names, at: now, newCA: true, bundleSz: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := mustPlan(t, tc.data, tc.dns, tc.at, trustNone)
			if !changed {
				t.Fatal("plan changed nothing")
			}
			if leafChanged := string(got[KeyCert]) != string(tc.data[KeyCert]); leafChanged != tc.newLeaf {
				t.Errorf("serving certificate re-issued = %v, want %v", leafChanged, tc.newLeaf)
			}
			bundle := parseCerts(got[KeyCABundle])
			if caChanged := !bundle[0].Equal(ca0); caChanged != tc.newCA {
				t.Errorf("new CA = %v, want %v", caChanged, tc.newCA)
			}
			if len(bundle) != tc.bundleSz {
				t.Errorf("bundle holds %d CAs, want %d", len(bundle), tc.bundleSz)
			}
			if tc.newLeaf {
				leaf := leafOf(t, got)
				if !covers(leaf, tc.dns) {
					t.Errorf("new certificate names %v, want %v", leaf.DNSNames, tc.dns)
				}
			}
		})
	}
}

// TestPlanRotatesTheCAWithOverlap walks a CA rotation: the new CA joins the
// bundle, the serving certificate moves to it only once the webhook
// configurations trust it, and the old CA leaves the bundle when it expires.
func TestPlanRotatesTheCAWithOverlap(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	data, _ := mustPlan(t, nil, names, t0, trustNone)
	oldCA := parseCerts(data[KeyCABundle])[0]

	// Keep the serving certificate fresh up to the CA's due date.
	tDue := t0.Add(caLife - caLife/3 + 24*time.Hour)
	data = withLeafFrom(t, data, tDue.Add(-time.Hour))

	data, changed := mustPlan(t, data, names, tDue, trustNone)
	if !changed {
		t.Fatal("CA due: plan changed nothing")
	}
	bundle := parseCerts(data[KeyCABundle])
	if len(bundle) != 2 || !bundle[1].Equal(oldCA) || bundle[0].Equal(oldCA) {
		t.Fatalf("bundle after CA renewal: %d CAs, want the new CA then the old", len(bundle))
	}
	if signer(leafOf(t, data), bundle) != 1 {
		t.Fatal("serving certificate moved to the new CA before the webhook configurations trust it")
	}
	verifies(t, data, tDue)

	// Not trusted yet: nothing more happens.
	if _, changed := mustPlan(t, data, names, tDue, trustNone); changed {
		t.Fatal("plan changed the Secret while the new CA is not trusted yet")
	}
	// Trusted: the serving certificate is re-issued from the new CA.
	data, changed = mustPlan(t, data, names, tDue, trustAll)
	if !changed || signer(leafOf(t, data), parseCerts(data[KeyCABundle])) != 0 {
		t.Fatal("serving certificate not re-issued from the new CA once trusted")
	}
	verifies(t, data, tDue)

	// The old CA expires: it leaves the bundle.
	tExp := oldCA.NotAfter.Add(time.Minute)
	data = withLeafFrom(t, data, tExp.Add(-time.Hour))
	data, _ = mustPlan(t, data, names, tExp, trustAll)
	if b := parseCerts(data[KeyCABundle]); len(b) != 1 || b[0].Equal(oldCA) {
		t.Fatalf("bundle after the old CA expired holds %d CAs, want only the new one", len(b))
	}
	verifies(t, data, tExp)
}

// withLeafFrom re-issues the serving certificate at time at from the current CA.
func withLeafFrom(t *testing.T, data map[string][]byte, at time.Time) map[string][]byte {
	t.Helper()
	st := parseState(data)
	certPEM, keyPEM, err := newServingCert(st.cas[0], st.caKey, names, at, certLife)
	if err != nil {
		t.Fatal(err)
	}
	return with(with(data, KeyCert, certPEM), KeyKey, keyPEM)
}

func with(data map[string][]byte, key string, value []byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range data {
		out[k] = v
	}
	out[key] = value
	return out
}
