package policy_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/metrics"
	"github.com/zmqauth/zmqauth/zap/policy"
	"github.com/zmqauth/zmqauth/zmtp"
)

func newKey(t testing.TB) keygen.PublicKey {
	t.Helper()
	p, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.Public
}

func curve(k keygen.PublicKey) *zmtp.AuthRequest {
	return &zmtp.AuthRequest{Mechanism: "CURVE", ClientKey: k[:], Address: "192.0.2.7:40000"}
}

// counter returns the value of zmqauth_sidecar_handshakes_total for labels.
func counter(t *testing.T, reg *prometheus.Registry, route, result, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zmqauth_sidecar_handshakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labels(m) == "reason="+reason+",result="+result+",route="+route {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func TestNotLoadedFailsClosed(t *testing.T) {
	for _, mode := range []policy.Mode{policy.Enforce, policy.Audit} {
		t.Run(string(mode), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			p := policy.New("r", mode, metrics.New(reg), nil)
			if p.Ready() {
				t.Fatal("ready before an allowlist was set")
			}
			res := p.Authenticate(context.Background(), curve(newKey(t)))
			if res.StatusCode != 300 || res.StatusText != "allowlist not loaded" || res.UserID != "" {
				t.Fatalf("got %d %q user %q, want 300 \"allowlist not loaded\"", res.StatusCode, res.StatusText, res.UserID)
			}
			if got := counter(t, reg, "r", "refused", "allowlist_not_loaded"); got != 1 {
				t.Errorf("refused/allowlist_not_loaded counted %v times, want 1", got)
			}
			p.SetAllowlist(nil)
			if p.Ready() {
				t.Fatal("SetAllowlist(nil) made the policy ready")
			}
			if mode == policy.Enforce && p.Allowed(make([]byte, 32)) {
				t.Error("Allowed before an allowlist was set in enforce mode")
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	listed, unlisted := newKey(t), newKey(t)
	list := allowlist.New(allowlist.Entry{Key: listed, Identity: "team-a/frontend", Source: "team-a.frontend.key"})

	tests := []struct {
		name       string
		mode       policy.Mode
		req        *zmtp.AuthRequest
		wantCode   int
		wantText   string
		wantUser   string
		wantResult string
		wantReason string
		wantLog    string // must appear in the log
	}{
		{"enforce listed", policy.Enforce, curve(listed), 200, "OK", "team-a/frontend", "accepted", "allowlisted", ""},
		{"enforce unlisted", policy.Enforce, curve(unlisted), 400, "client key not in allowlist", "", "refused", "not_in_allowlist", unlisted.String()},
		{"audit listed", policy.Audit, curve(listed), 200, "OK", "team-a/frontend", "accepted", "allowlisted", ""},
		{"audit unlisted", policy.Audit, curve(unlisted), 200, "OK", unlisted.String(), "audit_pass", "not_in_allowlist", unlisted.String()},
		{"enforce PLAIN", policy.Enforce, &zmtp.AuthRequest{Mechanism: "PLAIN", Username: "u", Password: "p"}, 400, "mechanism not allowed", "", "refused", "mechanism", "PLAIN"},
		{"audit PLAIN", policy.Audit, &zmtp.AuthRequest{Mechanism: "PLAIN", Username: "u", Password: "p"}, 400, "mechanism not allowed", "", "refused", "mechanism", "PLAIN"},
		{"audit NULL", policy.Audit, &zmtp.AuthRequest{Mechanism: "NULL"}, 400, "mechanism not allowed", "", "refused", "mechanism", "NULL"},
		{"enforce short key", policy.Enforce, &zmtp.AuthRequest{Mechanism: "CURVE", ClientKey: listed[:31]}, 400, "malformed client key", "", "refused", "malformed_key", ""},
		{"audit short key", policy.Audit, &zmtp.AuthRequest{Mechanism: "CURVE", ClientKey: listed[:31]}, 400, "malformed client key", "", "refused", "malformed_key", ""},
		{"audit no key", policy.Audit, &zmtp.AuthRequest{Mechanism: "CURVE"}, 400, "malformed client key", "", "refused", "malformed_key", ""},
		{"unknown mode enforces", policy.Mode("permissive"), curve(unlisted), 400, "client key not in allowlist", "", "refused", "not_in_allowlist", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			p := policy.New("orders", tt.mode, metrics.New(reg), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			p.SetAllowlist(list)
			if !p.Ready() {
				t.Fatal("not ready after SetAllowlist")
			}
			res := p.Authenticate(context.Background(), tt.req)
			if res.StatusCode != tt.wantCode || res.StatusText != tt.wantText || res.UserID != tt.wantUser {
				t.Fatalf("got %d %q user %q, want %d %q user %q", res.StatusCode, res.StatusText, res.UserID, tt.wantCode, tt.wantText, tt.wantUser)
			}
			// Refusals are counted here; an accepted handshake is counted
			// by the relay once its session is up, under Verdict's names.
			wantCount := 1.0
			if res.StatusCode == 200 {
				wantCount = 0
				if result, reason := p.Verdict(tt.req.ClientKey); result != tt.wantResult || reason != tt.wantReason {
					t.Errorf("Verdict = %s/%s, want %s/%s", result, reason, tt.wantResult, tt.wantReason)
				}
			}
			if got := counter(t, reg, "orders", tt.wantResult, tt.wantReason); got != wantCount {
				t.Errorf("%s/%s counted %v times by Authenticate, want %v", tt.wantResult, tt.wantReason, got, wantCount)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log does not contain %q:\n%s", tt.wantLog, logs.String())
			}
			if strings.Contains(logs.String(), "password") || strings.Contains(logs.String(), "=p ") {
				t.Errorf("log mentions the PLAIN password:\n%s", logs.String())
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	listed, unlisted := newKey(t), newKey(t)
	list := allowlist.New(allowlist.Entry{Key: listed, Identity: "a/b"})
	tests := []struct {
		mode policy.Mode
		key  []byte
		want bool
	}{
		{policy.Enforce, listed[:], true},
		{policy.Enforce, unlisted[:], false},
		{policy.Enforce, listed[:8], false},
		{policy.Audit, unlisted[:], true},
		{policy.Audit, listed[:], true},
	}
	for _, tt := range tests {
		p := policy.New("r", tt.mode, nil, nil)
		p.SetAllowlist(list)
		if got := p.Allowed(tt.key); got != tt.want {
			t.Errorf("%s: Allowed(%d-byte key) = %v, want %v", tt.mode, len(tt.key), got, tt.want)
		}
	}
}

// TestSetAllowlistSwap swaps allowlists while handshakes run: every answer
// must match one of the two lists exactly, never a mix, and once the swaps
// stop, the last list is in force. Run with -race.
func TestSetAllowlistSwap(t *testing.T) {
	a, b := newKey(t), newKey(t)
	onlyA := allowlist.New(allowlist.Entry{Key: a, Identity: "ns/a"})
	onlyB := allowlist.New(allowlist.Entry{Key: b, Identity: "ns/b"})
	p := policy.New("r", policy.Enforce, metrics.New(prometheus.NewRegistry()), nil)
	p.SetAllowlist(onlyA)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, id := a, "ns/a"
			if i%2 == 1 {
				key, id = b, "ns/b"
			}
			for ctx.Err() == nil {
				res := p.Authenticate(ctx, curve(key))
				switch {
				case res.StatusCode == 200 && res.UserID == id:
				case res.StatusCode == 400 && res.UserID == "":
				default:
					select {
					case errs <- res.StatusText + " " + res.UserID:
					default:
					}
					return
				}
				_ = p.Allowed(key[:])
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			p.SetAllowlist(onlyB)
		} else {
			p.SetAllowlist(onlyA)
		}
	}
	p.SetAllowlist(onlyB)
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("inconsistent answer during swaps: %s", e)
	}
	if res := p.Authenticate(context.Background(), curve(a)); res.StatusCode != 400 {
		t.Errorf("key a after the final swap to onlyB: %d, want 400", res.StatusCode)
	}
	if res := p.Authenticate(context.Background(), curve(b)); res.StatusCode != 200 || res.UserID != "ns/b" {
		t.Errorf("key b after the final swap to onlyB: %d %q, want 200 ns/b", res.StatusCode, res.UserID)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]policy.Mode{"enforce": policy.Enforce, "audit": policy.Audit} {
		if got, err := policy.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "Enforce", "allow-all"} {
		if _, err := policy.ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) succeeded", in)
		}
	}
}

// TestVerdictAfterListChanged authenticates a client, then swaps in an
// allowlist without its key before the session is counted (a rotation or
// revocation while the relay reaches the application): in enforce mode the
// session still counts as accepted, never as an audit pass; in audit mode
// the list in force decides.
func TestVerdictAfterListChanged(t *testing.T) {
	key := newKey(t)
	for _, tt := range []struct {
		mode                   policy.Mode
		wantResult, wantReason string
	}{
		{policy.Enforce, metrics.ResultAccepted, metrics.ReasonAllowlisted},
		{policy.Audit, metrics.ResultAuditPass, metrics.ReasonNotInAllowlist},
	} {
		t.Run(string(tt.mode), func(t *testing.T) {
			p := policy.New("orders", tt.mode, metrics.New(prometheus.NewRegistry()), nil)
			p.SetAllowlist(allowlist.New(allowlist.Entry{Key: key, Identity: "team-a/frontend", Source: "team-a.frontend.key"}))
			if res := p.Authenticate(context.Background(), curve(key)); res.StatusCode != 200 {
				t.Fatalf("listed key refused: %d %q", res.StatusCode, res.StatusText)
			}
			p.SetAllowlist(allowlist.New())
			if result, reason := p.Verdict(key[:]); result != tt.wantResult || reason != tt.wantReason {
				t.Errorf("Verdict = %s/%s, want %s/%s", result, reason, tt.wantResult, tt.wantReason)
			}
		})
	}
}

// TestRetiredKeys follows one client, "team/a", through allowlist changes
// and checks which of its keys a live session may keep (Allowed) and that
// none but those on the list opens a new one.
func TestRetiredKeys(t *testing.T) {
	k1, k2, k3, leaked := newKey(t), newKey(t), newKey(t), newKey(t)
	cur := func(k keygen.PublicKey) allowlist.Entry {
		return allowlist.Entry{Key: k, Identity: "team/a", Source: "/allow/team.a.key"}
	}
	prev := func(k keygen.PublicKey) allowlist.Entry {
		return allowlist.Entry{Key: k, Identity: "team/a", Source: "/allow/" + filecontract.PreviousClientKeyFileName("team", "a")}
	}
	overlap12 := allowlist.New(cur(k2), prev(k1))
	steady2 := allowlist.New(cur(k2))
	overlap23 := allowlist.New(cur(k3), prev(k2))
	steady3 := allowlist.New(cur(k3))
	replaced := allowlist.New(cur(leaked))
	tests := []struct {
		name    string
		lists   []*allowlist.Allowlist
		allowed []keygen.PublicKey // may stay open at the end
		closed  []keygen.PublicKey // must be closed at the end
	}{
		{"overlap ends: the old key's sessions stay", []*allowlist.Allowlist{overlap12, steady2},
			[]keygen.PublicKey{k1, k2}, nil},
		{"two rotations: both old keys' sessions stay", []*allowlist.Allowlist{overlap12, steady2, overlap23, steady3},
			[]keygen.PublicKey{k1, k2, k3}, nil},
		{"current key replaced: the retired key's sessions close", []*allowlist.Allowlist{overlap12, steady2, replaced},
			nil, []keygen.PublicKey{k1, k2}},
		{"key replaced during the overlap: both close", []*allowlist.Allowlist{overlap12, replaced},
			nil, []keygen.PublicKey{k1, k2}},
		{"client removed: its retired key's sessions close", []*allowlist.Allowlist{overlap12, steady2, allowlist.New()},
			nil, []keygen.PublicKey{k1, k2}},
		{"a current key that leaves is revoked", []*allowlist.Allowlist{steady2, allowlist.New(cur(k3))},
			nil, []keygen.PublicKey{k2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.New("in", policy.Enforce, nil, nil)
			for _, l := range tt.lists {
				p.SetAllowlist(l)
			}
			for _, k := range tt.allowed {
				if !p.Allowed(k[:]) {
					t.Errorf("a session of %s is closed, want it kept", k)
				}
			}
			for _, k := range tt.closed {
				if p.Allowed(k[:]) {
					t.Errorf("a session of %s stays open, want it closed", k)
				}
			}
			last := tt.lists[len(tt.lists)-1]
			for _, k := range []keygen.PublicKey{k1, k2, k3, leaked} {
				_, listed := last.Lookup(k[:])
				if got := p.Authenticate(context.Background(), curve(k)); (got.StatusCode == zmtp.StatusOK) != listed {
					t.Errorf("a new handshake of %s got %d, want OK only for keys on the list", k, got.StatusCode)
				}
			}
		})
	}

	// Pruned to the keys of live sessions: a retired key without one is
	// forgotten.
	p := policy.New("in", policy.Enforce, nil, nil)
	p.SetAllowlist(overlap12)
	p.SetAllowlist(steady2)
	p.PruneRetired(func() [][]byte { return [][]byte{k2[:]} })
	if p.Allowed(k1[:]) {
		t.Error("a retired key no live session uses is still allowed after PruneRetired")
	}
}
