package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers"
	"github.com/zmqauth/zmqauth/controllers/injector"
)

// LeaderElectionID is the Lease the manager replicas compete for.
const leaderElectionID = "zmqauth-manager.zmqauth.io"

// Client-side limits of the manager's requests to the API server, by
// default; controller-runtime's client applies them per resource type.
// client-go's own (5 requests/s, bursts of 10, when unset) held the manager
// to a few new CurveClients per second, each of which costs it about six
// requests (create its Secret, status, an Event, the server key, the
// authorization status, Ready). The API server's priority and fairness
// protects it from overload; this limit only keeps a runaway loop from
// flooding it.
const (
	defaultKubeAPIQPS   = 500
	defaultKubeAPIBurst = 1000
)

// managerOptions are the flags of `zmqauth manager`.
type managerOptions struct {
	metricsAddr  string
	probeAddr    string
	pprofAddr    string
	leaderElect  bool
	leaderNS     string
	kubeconfig   string
	kubeAPIQPS   float32
	kubeAPIBurst int
	injector     injector.Options
	propagation  time.Duration
	zap          zap.Options
}

func newManagerCommand() *cobra.Command {
	o := managerOptions{zap: zap.Options{Development: false}, injector: injector.DefaultOptions()}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the operator: keypair Secrets, rotation, key distribution and allowlists",
		Long: `Run the zmqauth operator's controller manager.

It keeps a keypair Secret for every CurveServer and CurveClient, rotates keys
on schedule or on request, gives clients their servers' public keys and keeps
each server's allowlist. It serves Prometheus metrics, /healthz and /readyz,
and stops cleanly on SIGTERM. Run more than one replica with --leader-elect.

The cluster is reached through --kubeconfig, else $KUBECONFIG or
~/.kube/config, else the in-cluster service account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address the Prometheus /metrics endpoint listens on (\"0\" disables it)")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz endpoints listen on")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader among replicas so only one reconciles (the Deployment sets it)")
	f.StringVar(&o.leaderNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's own; required with --leader-elect outside a cluster)")
	f.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address net/http/pprof listens on, e.g. 127.0.0.1:6060 (\"0\" disables it)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then in-cluster")
	f.Float32Var(&o.kubeAPIQPS, "kube-api-qps", defaultKubeAPIQPS, "most requests per second to the API server, averaged (client-side limit; a negative value disables it)")
	f.IntVar(&o.kubeAPIBurst, "kube-api-burst", defaultKubeAPIBurst, "most requests to the API server at once above --kube-api-qps")
	f.DurationVar(&o.propagation, "rotation-propagation-delay", 2*time.Minute,
		"how long a rotation stages the next key before switching to it, so that every pod's mounted Secret and allowlist have it first (the kubelet's sync period plus its cache TTL); 0 switches at once")
	o.injector.AddFlags(f)
	zfs := flag.NewFlagSet("zap", flag.ContinueOnError)
	o.zap.BindFlags(zfs)
	f.AddGoFlagSet(zfs)
	return cmd
}

// newScheme returns a scheme with the built-in kinds and zmqauth's.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// kubeClientConfig loads the cluster connection: the given kubeconfig file,
// else $KUBECONFIG or ~/.kube/config, else the in-cluster service account.
func kubeClientConfig(kubeconfig string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

// restConfig returns the REST config of kubeClientConfig.
func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := kubeClientConfig(kubeconfig).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load cluster connection: %w", err)
	}
	return cfg, nil
}

func (o *managerOptions) run(ctx context.Context) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	log := ctrl.Log.WithName("manager")
	if o.kubeAPIQPS > 0 && o.kubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-burst %d: want at least 1 with --kube-api-qps %g", o.kubeAPIBurst, o.kubeAPIQPS)
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = o.kubeAPIQPS, o.kubeAPIBurst
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	inj, err := injector.New(o.injector)
	if err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	// Shutdown must end, the leader Lease released, before the kubelet's
	// kill: config/manager/manager.yaml gives the pod 10 s. Reconciles are
	// a few API requests each, so 8 s lets those under way finish.
	shutdown := 8 * time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		PprofBindAddress:              o.pprofAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       o.leaderNS,
		LeaderElectionReleaseOnCancel: true, // the process exits right after Start returns
		WebhookServer:                 inj.WebhookServer(),
		GracefulShutdownTimeout:       &shutdown,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := controllers.Setup(mgr, controllers.Options{RotationPropagationDelay: o.propagation}); err != nil {
		return fmt.Errorf("set up controllers: %w", err)
	}
	if err := inj.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up injector: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	log.Info("starting manager", "leaderElection", o.leaderElect, "metrics", o.metricsAddr, "probes", o.probeAddr,
		"kubeAPIQPS", o.kubeAPIQPS, "kubeAPIBurst", o.kubeAPIBurst)
	// ctx is cancelled on SIGTERM or SIGINT (main); Start then stops the
	// controllers, waits for running reconciles and releases the lease.
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	log.Info("manager stopped")
	return nil
}
