package demo

import "testing"

func TestParseSample(t *testing.T) {
	for _, tc := range []struct {
		line   string
		name   string
		labels map[string]string
		value  float64
		ok     bool
	}{
		{`zmqauth_sidecar_sessions_active{route="inbound"} 1`, "zmqauth_sidecar_sessions_active", map[string]string{"route": "inbound"}, 1, true},
		{`zmqauth_sidecar_handshakes_total{reason="not_in_allowlist",result="refused",route="inbound"} 3`,
			"zmqauth_sidecar_handshakes_total", map[string]string{"reason": "not_in_allowlist", "result": "refused", "route": "inbound"}, 3, true},
		{`go_goroutines 12`, "go_goroutines", map[string]string{}, 12, true},
		{`x{a="q\"uo,te}",b="c"} 2.5 1700000000000`, "x", map[string]string{"a": `q"uo,te}`, "b": "c"}, 2.5, true},
		{`x{a="unterminated} 1`, "", nil, 0, false},
		{`x{a="b"}`, "", nil, 0, false},
		{`x not-a-number`, "", nil, 0, false},
	} {
		s, v, ok := parseSample(tc.line)
		if ok != tc.ok {
			t.Errorf("parseSample(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if s.name != tc.name || v != tc.value || len(s.labels) != len(tc.labels) || !s.has(tc.labels) {
			t.Errorf("parseSample(%q) = %q %v %v, want %q %v %v", tc.line, s.name, s.labels, v, tc.name, tc.labels, tc.value)
		}
	}
}
