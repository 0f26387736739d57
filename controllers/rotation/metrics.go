package rotation

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

// Metrics are the rotation collectors, cert-manager style: per-key gauges
// labeled kind, namespace and name, and a rotation counter per kind.
type Metrics struct {
	// NextRotation is zmqauth_key_next_rotation_timestamp_seconds: when the
	// current key is due to be replaced (absent without a schedule).
	NextRotation *prometheus.GaugeVec
	// LastRotation is zmqauth_key_last_rotation_timestamp_seconds: when the
	// current key was made.
	LastRotation *prometheus.GaugeVec
	// Revision is zmqauth_key_revision: the current key's revision.
	Revision *prometheus.GaugeVec
	// Rotations is zmqauth_rotations_total{kind}: rotations done by this
	// process, on schedule or on request.
	Rotations *prometheus.CounterVec
	// ReconcileErrors is the shared zmqauth_reconcile_errors_total.
	ReconcileErrors *prometheus.CounterVec
}

var keyLabels = []string{"kind", "namespace", "name"}

// NewMetrics creates the collectors and registers them with reg. Calling it
// again with the same registry returns the same collectors, so the
// CurveServer and CurveClient reconcilers share them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	var m Metrics
	var err error
	if m.NextRotation, err = keys.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zmqauth_key_next_rotation_timestamp_seconds",
		Help: "When the current key is due to be rotated on schedule, as a Unix time.",
	}, keyLabels)); err != nil {
		return nil, err
	}
	if m.LastRotation, err = keys.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zmqauth_key_last_rotation_timestamp_seconds",
		Help: "When the current key was generated, as a Unix time.",
	}, keyLabels)); err != nil {
		return nil, err
	}
	if m.Revision, err = keys.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zmqauth_key_revision",
		Help: "Revision of the current key: 1 for the first, one more per rotation.",
	}, keyLabels)); err != nil {
		return nil, err
	}
	if m.Rotations, err = keys.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zmqauth_rotations_total",
		Help: "Key rotations performed, by kind.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	if m.ReconcileErrors, err = keys.ReconcileErrors(reg); err != nil {
		return nil, err
	}
	return &m, nil
}

// observe sets the gauges of one key from its state.
func (m *Metrics) observe(kind, namespace, name string, st secretlayout.State, period time.Duration, scheduled bool) {
	m.LastRotation.WithLabelValues(kind, namespace, name).Set(float64(st.RotatedAt.Unix()))
	m.Revision.WithLabelValues(kind, namespace, name).Set(float64(st.Revision))
	if scheduled {
		m.NextRotation.WithLabelValues(kind, namespace, name).Set(float64(st.RotatedAt.Add(period).Unix()))
	} else {
		m.NextRotation.DeleteLabelValues(kind, namespace, name)
	}
}

// forget drops the gauges of a key whose object is gone.
func (m *Metrics) forget(kind, namespace, name string) {
	m.LastRotation.DeleteLabelValues(kind, namespace, name)
	m.Revision.DeleteLabelValues(kind, namespace, name)
	m.NextRotation.DeleteLabelValues(kind, namespace, name)
}
