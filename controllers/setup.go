// Package controllers wires zmqauth's reconcilers into a controller-runtime
// manager: Setup registers every controller, CacheOptions restricts what the
// manager's cache holds.
package controllers

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/zmqauth/zmqauth/controllers/allowlist"
	"github.com/zmqauth/zmqauth/controllers/distribution"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/rotation"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
)

// Options configures Setup. The zero value is the production setup.
type Options struct {
	// RotationPropagationDelay is how long a rotation stages the next key
	// before switching to it, so every pod has it first (see package
	// rotation). Zero switches at once.
	RotationPropagationDelay time.Duration
	// Registerer receives every controller's metrics; nil means
	// controller-runtime's metrics.Registry, which the manager serves.
	Registerer prometheus.Registerer
	// Clock is the time rotations are scheduled by; nil means the real
	// clock. Tests inject a fake one to move through rotation periods.
	Clock clock.PassiveClock
}

func (o Options) withDefaults() Options {
	if o.Registerer == nil {
		o.Registerer = metrics.Registry
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// EventRecorderName is the reporting controller of zmqauth's Events.
const EventRecorderName = "zmqauth"

// CacheOptions returns the manager cache options zmqauth needs. Secrets and
// ConfigMaps are cached only when they carry the label
// zmqauth.io/managed-by=zmqauth, which every keypair Secret, allowlist and
// published ConfigMap zmqauth writes has, so the manager never holds the
// cluster's other Secrets and ConfigMaps in memory. Code that must see
// another one (a name conflict, or its own object after someone removed
// the label) reads it from mgr.GetAPIReader(). No cached object keeps its
// metadata.managedFields: zmqauth never reads them, and at 10,000 clients
// they are a sixth of the cache.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{secretlayout.LabelManagedBy: secretlayout.ManagedBy})
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:    {Label: managed},
			&corev1.ConfigMap{}: {Label: managed},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

// Setup registers every zmqauth controller with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	recorder := mgr.GetEventRecorder(EventRecorderName)

	keyMetrics, err := keys.NewMetrics(opts.Registerer)
	if err != nil {
		return err
	}
	rotationMetrics, err := rotation.NewMetrics(opts.Registerer)
	if err != nil {
		return err
	}
	for _, kind := range []keys.Kind{keys.ServerKind(), keys.ClientKind()} {
		kr := &keys.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
			Clock: opts.Clock, Kind: kind, Metrics: keyMetrics,
			// A new client Secret holds its servers' keys from the start.
			SecretExtras: distribution.ServerKeyFiles,
		}
		if err := kr.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up keys controller for %s: %w", kind.Name, err)
		}
		rr := &rotation.Reconciler{
			Client: mgr.GetClient(), Recorder: recorder, Clock: opts.Clock, Kind: kind, Metrics: rotationMetrics,
			PropagationDelay: opts.RotationPropagationDelay,
		}
		if err := rr.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up rotation controller for %s: %w", kind.Name, err)
		}
	}
	// Allowlists and ClusterCurveGrant status; server keys into client
	// Secrets, client authorization status and published server keys.
	if err := allowlist.Setup(mgr, opts.Registerer, recorder, opts.Clock.Now); err != nil {
		return err
	}
	if err := distribution.Setup(mgr, opts.Registerer, recorder, opts.Clock.Now); err != nil {
		return err
	}
	return nil
}
