package distribution

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the distribution controllers' collectors.
type Metrics struct {
	// ReconcileErrors is zmqauth_reconcile_errors_total{controller}, shared
	// by every zmqauth controller.
	ReconcileErrors *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg, reusing the
// shared error counter when another controller registered it first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zmqauth_reconcile_errors_total",
		Help: "Reconciles that ended in an error, by controller.",
	}, []string{"controller"})
	if err := reg.Register(errs); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		errs = existing
	}
	return &Metrics{ReconcileErrors: errs}, nil
}
