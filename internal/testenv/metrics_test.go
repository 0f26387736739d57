package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricValue: a series is found by its exact labels, counter or gauge,
// and a missing one says so.
func TestMetricValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total"}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	reg.MustRegister(c, g)
	c.WithLabelValues("1", "2").Add(3)
	c.WithLabelValues("1", "").Add(5)
	g.Set(7)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
		found  bool
	}{
		{"c_total", map[string]string{"a": "1", "b": "2"}, 3, true},
		{"c_total", map[string]string{"a": "1", "b": ""}, 5, true},
		{"c_total", map[string]string{"a": "1"}, 0, false},
		{"c_total", map[string]string{"a": "1", "c": "2"}, 0, false},
		{"g", nil, 7, true},
		{"missing", nil, 0, false},
	} {
		v, ok, err := MetricValue(reg, tc.name, tc.labels)
		if err != nil || v != tc.want || ok != tc.found {
			t.Errorf("MetricValue(%s, %v) = %v, %v, %v; want %v, %v", tc.name, tc.labels, v, ok, err, tc.want, tc.found)
		}
	}
}
