package distribution

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// Setup registers the client distribution controller (ClientReconciler)
// and the publishing controller (PublishReconciler) with mgr, their metrics
// on reg, events through rec (nil: none) and time from now (nil: time.Now).
func Setup(mgr ctrl.Manager, reg prometheus.Registerer, rec recorder.EventRecorder, now func() time.Time) error {
	m, err := NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("distribution: %w", err)
	}
	cr := &ClientReconciler{Client: mgr.GetClient(), Metrics: m, Now: now}
	if err := cr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up distribution controller: %w", err)
	}
	pr := &PublishReconciler{Client: mgr.GetClient(), Recorder: rec, Metrics: m, Now: now}
	if err := pr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up publish controller: %w", err)
	}
	return nil
}
