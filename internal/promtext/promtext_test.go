package promtext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const text = `# TYPE zmqauth_sidecar_handshakes_total counter
zmqauth_sidecar_handshakes_total{reason="not_in_allowlist",result="refused",route="inbound"} 3
zmqauth_sidecar_handshakes_total{reason="allowlisted",result="accepted",route="inbound"} 2
zmqauth_sidecar_handshakes_total{reason="allowlisted",result="accepted",route="other"} 5
# TYPE zmqauth_sidecar_sessions_active gauge
zmqauth_sidecar_sessions_active{route="inbound"} 1
# TYPE x untyped
x{a="q\"uo,te}",b="c"} 2.5 1700000000000
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="keys",le="+Inf"} 4
workqueue_queue_duration_seconds_sum{name="keys"} 0.5
workqueue_queue_duration_seconds_count{name="keys"} 4
`
	samples, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"zmqauth_sidecar_handshakes_total", map[string]string{"result": "refused"}, 3},
		{"zmqauth_sidecar_handshakes_total", map[string]string{"result": "accepted"}, 7},
		{"zmqauth_sidecar_handshakes_total", map[string]string{"result": "accepted", "route": "inbound"}, 2},
		{"zmqauth_sidecar_handshakes_total", nil, 10},
		{"zmqauth_sidecar_sessions_active", map[string]string{"route": "inbound"}, 1},
		{"x", map[string]string{"a": `q"uo,te}`, "b": "c"}, 2.5},
		{"workqueue_queue_duration_seconds_sum", map[string]string{"name": "keys"}, 0.5},
		{"workqueue_queue_duration_seconds_count", map[string]string{"name": "keys"}, 4},
		{"zmqauth_sidecar_sessions_active", map[string]string{"route": "nowhere"}, 0},
		{"absent", nil, 0},
	} {
		if got := Sum(samples, tc.name, tc.labels); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestParseRefusesMalformedText(t *testing.T) {
	for _, text := range []string{"x{a=\"unterminated} 1\n", "x not-a-number\n"} {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("Parse(%q) succeeded", text)
		}
	}
}
