package metrics_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/zap/metrics"
)

// series returns "name{label=value,...} value" for every series gathered.
func series(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out = append(out, mf.GetName()+"{"+strings.Join(labels, ",")+"} "+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	slices.Sort(out)
	return out
}

func TestLabelsAreBounded(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *metrics.Metrics)
		want   []string
	}{
		{
			name:   "known result and reason",
			record: func(m *metrics.Metrics) { m.Handshake("r", metrics.ResultAuditPass, metrics.ReasonNotInAllowlist) },
			want:   []string{"zmqauth_sidecar_handshakes_total{reason=not_in_allowlist,result=audit_pass,route=r} 1"},
		},
		{
			name: "free-form result and reason are folded",
			record: func(m *metrics.Metrics) {
				m.Handshake("r", "accepted-ish", "dial tcp 10.0.0.1:5555: connection refused")
			},
			want: []string{"zmqauth_sidecar_handshakes_total{reason=other,result=failed,route=r} 1"},
		},
		{
			name:   "unknown direction is folded",
			record: func(m *metrics.Metrics) { m.Relayed("r", "sideways", 1, 10) },
			want: []string{
				"zmqauth_sidecar_relayed_bytes_total{direction=other,route=r} 10",
				"zmqauth_sidecar_relayed_messages_total{direction=other,route=r} 1",
			},
		},
		{
			name:   "negative and zero counts are ignored",
			record: func(m *metrics.Metrics) { m.Relayed("r", "in", -1, 0); m.Revoked("r", 0); m.Revoked("r", -3) },
			want:   nil,
		},
		{
			name: "sessions go up and down",
			record: func(m *metrics.Metrics) {
				m.SessionOpened("a")
				m.SessionOpened("a")
				m.SessionOpened("b")
				m.SessionClosed("a")
			},
			want: []string{"zmqauth_sidecar_sessions_active{route=a} 1", "zmqauth_sidecar_sessions_active{route=b} 1"},
		},
		{
			name:   "allowlist loaded",
			record: func(m *metrics.Metrics) { m.AllowlistLoaded("r", 7, time.Unix(1700000000, 500000000)) },
			want: []string{
				"zmqauth_sidecar_allowlist_keys{route=r} 7",
				"zmqauth_sidecar_allowlist_last_reload_timestamp_seconds{route=r} 1700000000.5",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			tt.record(metrics.New(reg))
			if got := series(t, reg); !slices.Equal(got, tt.want) {
				t.Errorf("series:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Handshake("r", metrics.ResultAccepted, metrics.ReasonAllowlisted)
	m.SessionOpened("r")
	m.SessionClosed("r")
	m.Relayed("r", metrics.DirectionIn, 1, 1)
	m.AllowlistLoaded("r", 1, time.Now())
	m.ReloadError("keys")
	m.Revoked("r", 1)
	metrics.New(nil).Handshake("r", metrics.ResultAccepted, metrics.ReasonAllowlisted)
}

func TestNoGlobalRegistry(t *testing.T) {
	// Two sidecars' worth of metrics in one process, on separate
	// registries, must not collide.
	metrics.New(prometheus.NewRegistry())
	metrics.New(prometheus.NewRegistry())
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), metrics.Namespace) {
			t.Fatalf("%s is on the global registry", mf.GetName())
		}
	}
}
