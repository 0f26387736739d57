package keys

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collectors of the keys reconcilers.
type Metrics struct {
	// ReconcileErrors is zmqauth_reconcile_errors_total{controller}, shared
	// by every zmqauth controller.
	ReconcileErrors *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	errs, err := ReconcileErrors(reg)
	if err != nil {
		return nil, err
	}
	return &Metrics{ReconcileErrors: errs}, nil
}

// ReconcileErrors returns zmqauth_reconcile_errors_total{controller}
// registered with reg; every controller package counts its errors there, so
// the second registration returns the collector of the first.
func ReconcileErrors(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zmqauth_reconcile_errors_total",
		Help: "Reconciles that ended in an error, by controller.",
	}, []string{"controller"})
	return Register(reg, v)
}

// Register registers c with reg and returns it, or the equal collector
// already registered.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}
