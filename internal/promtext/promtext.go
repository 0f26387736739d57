// Package promtext reads the Prometheus text exposition format (a
// sidecar's or the manager's /metrics, the API server's) into flat samples
// named as the text names them, for the demo, the end-to-end tests and the
// benchmarks. Parsing is prometheus/common's expfmt; this package only
// flattens its metric families.
package promtext

import (
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series: a counter's, gauge's or untyped metric's value,
// or a histogram's or summary's _sum or _count (their buckets and
// quantiles are left out).
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Has reports whether the sample carries every label in labels.
func (s Sample) Has(labels map[string]string) bool {
	for k, v := range labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// Parse reads the text format from r.
func Parse(r io.Reader) ([]Sample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var out []Sample
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(name string, v float64) { out = append(out, Sample{Name: name, Labels: labels, Value: v}) }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				add(name+"_sum", m.GetHistogram().GetSampleSum())
				add(name+"_count", float64(m.GetHistogram().GetSampleCount()))
			case dto.MetricType_SUMMARY:
				add(name+"_sum", m.GetSummary().GetSampleSum())
				add(name+"_count", float64(m.GetSummary().GetSampleCount()))
			}
		}
	}
	return out, nil
}

// Sum returns the sum of the values of the samples named name that carry
// every label in labels; 0 when there is none.
func Sum(samples []Sample, name string, labels map[string]string) float64 {
	var sum float64
	for _, s := range samples {
		if s.Name == name && s.Has(labels) {
			sum += s.Value
		}
	}
	return sum
}
