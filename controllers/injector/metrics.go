package injector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an admission request, the values of the "result" label.
const (
	resultInjected  = "injected"  // the sidecar was added or replaced
	resultUnchanged = "unchanged" // the pod already had this injection
	resultSkipped   = "skipped"   // nothing to inject: the pod is allowed as it is
	resultRefused   = "refused"   // the pod was refused (unknown name, port clash)
	resultError     = "error"     // the request could not be handled
)

// metrics counts admission requests by result.
type metrics struct {
	requests *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zmqauth_injector_requests_total",
		Help: "Pod admission requests seen by the sidecar injector, by result (injected, unchanged, skipped, refused, error).",
	}, []string{"result"})}
	for _, r := range []string{resultInjected, resultUnchanged, resultSkipped, resultRefused, resultError} {
		m.requests.WithLabelValues(r)
	}
	return m
}

// register adds the collectors to reg; registering the same collectors
// twice (a second Setup on the same registry) is not an error.
func (m *metrics) register(reg prometheus.Registerer) error {
	if err := reg.Register(m.requests); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				m.requests = existing
				return nil
			}
		}
		return fmt.Errorf("registering injector metrics: %w", err)
	}
	return nil
}

func (m *metrics) observe(result string) {
	if m != nil {
		m.requests.WithLabelValues(result).Inc()
	}
}
