package testenv

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricValue returns the value of the counter, gauge or untyped series
// name with exactly labels among what g gathers, and whether there is one.
func MetricValue(g prometheus.Gatherer, name string, labels map[string]string) (float64, bool, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, false, fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true, nil
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true, nil
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true, nil
			}
		}
	}
	return 0, false, nil
}
