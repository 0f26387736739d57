package allowlist

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// Setup registers the allowlist controller (ServerReconciler) and the
// ClusterCurveGrant status controller (GrantReconciler) with mgr, their
// metrics on reg, events through rec (nil: none) and time from now (nil:
// time.Now).
func Setup(mgr ctrl.Manager, reg prometheus.Registerer, rec recorder.EventRecorder, now func() time.Time) error {
	m, err := NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("allowlist: %w", err)
	}
	sr := &ServerReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Metrics: m, Now: now}
	if err := sr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up allowlist controller: %w", err)
	}
	gr := &GrantReconciler{Client: mgr.GetClient(), Metrics: m, Recorder: rec, Now: now}
	if err := gr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up ClusterCurveGrant controller: %w", err)
	}
	return nil
}
