package allowlist

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the allowlist controller's collectors.
type Metrics struct {
	// AllowlistSize is zmqauth_allowlist_size{namespace,name}: the number of
	// keys on each CurveServer's allowlist.
	AllowlistSize *prometheus.GaugeVec
	// ReconcileErrors is zmqauth_reconcile_errors_total{controller}, shared
	// by every zmqauth controller.
	ReconcileErrors *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg. A collector
// another controller registered already (the shared error counter) is
// reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	size := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zmqauth_allowlist_size",
		Help: "Number of client keys on a CurveServer's allowlist.",
	}, []string{"namespace", "name"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zmqauth_reconcile_errors_total",
		Help: "Reconciles that ended in an error, by controller.",
	}, []string{"controller"})
	var err error
	m := &Metrics{}
	if m.AllowlistSize, err = register(reg, size); err != nil {
		return nil, err
	}
	if m.ReconcileErrors, err = register(reg, errs); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the equal collector already
// registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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
