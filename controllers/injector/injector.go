package injector

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	ctrl "sigs.k8s.io/controller-runtime"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/zmqauth/zmqauth/controllers/injector/servingcert"
)

// Path is where the webhook server serves the injector.
const Path = "/mutate-v1-pod"

// The webhook configuration (config/webhook/manifests.yaml) is generated from
// these markers by `make manifests`. Why each setting, see doc.go: only
// CREATE of pods that carry a zmqauth annotation (matchConditions) in
// namespaces labelled zmqauth.io/inject=enabled, never kube-system, the
// manager's namespace or the manager's own pods, so that an outage of the
// manager can block only pods that must not start without their sidecar;
// for those, failurePolicy Fail.
//
// +kubebuilder:webhookconfiguration:mutating=true,name=zmqauth-injector
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=inject.zmqauth.io,admissionReviewVersions=v1,serviceName=zmqauth-webhook-service,serviceNamespace=zmqauth-system,timeoutSeconds=10,reinvocationPolicy=IfNeeded,matchPolicy=Equivalent,patch=`{"namespaceSelector":{"matchExpressions":[{"key":"zmqauth.io/inject","operator":"In","values":["enabled"]},{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","zmqauth-system"]}]},"objectSelector":{"matchExpressions":[{"key":"control-plane","operator":"NotIn","values":["zmqauth-manager"]}]},"matchConditions":[{"name":"has-zmqauth-annotation","expression":"has(object.metadata.annotations) && ('zmqauth.io/server' in object.metadata.annotations || 'zmqauth.io/client' in object.metadata.annotations)"}]}`

// What the injector reads, and what the serving certificate rotator writes.
//
// +kubebuilder:rbac:groups=zmqauth.io,resources=curveservers;curveclients,verbs=get
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=zmqauth-injector,verbs=get;update
// +kubebuilder:rbac:groups="",namespace=zmqauth-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=zmqauth-system,resources=secrets,resourceNames=zmqauth-webhook-server-cert,verbs=get;update

// Injector is the pod injector: the webhook server it needs and the
// admission handler, and with CertRotation the serving certificate's
// rotator.
type Injector struct {
	opts    Options
	server  webhook.Server
	rotator atomic.Pointer[servingcert.Rotator]
}

// New checks opts and returns the injector. Pass its WebhookServer as
// ctrl.Options.WebhookServer, then call SetupWithManager.
func New(opts Options) (*Injector, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	i := &Injector{opts: opts}
	if opts.Enabled() {
		i.server = webhook.NewServer(i.serverOptions())
	}
	return i, nil
}

// WebhookServer returns the webhook server for ctrl.Options.WebhookServer,
// or nil when the injector is disabled.
func (i *Injector) WebhookServer() webhook.Server { return i.server }

func (i *Injector) serverOptions() webhook.Options {
	o := webhook.Options{Host: i.opts.WebhookHost, Port: i.opts.WebhookPort, CertDir: i.opts.CertDir}
	o.TLSOpts = append(o.TLSOpts, func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		// HTTP/1.1 only: HTTP/2 rapid reset (CVE-2023-44487) and stream
		// floods cost a webhook more than multiplexing saves.
		c.NextProtos = []string{"http/1.1"}
	})
	if i.opts.CertRotation {
		o.TLSOpts = append(o.TLSOpts, func(c *tls.Config) { c.GetCertificate = i.getCertificate })
	}
	return o
}

func (i *Injector) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	r := i.rotator.Load()
	if r == nil {
		return nil, errors.New("webhook serving certificate not set up yet")
	}
	return r.GetCertificate(hello)
}

// SetupWithManager registers the admission handler at Path, the serving
// certificate rotator (with CertRotation) and a readiness check
// "injector-webhook" that passes once the webhook serves with a
// certificate. It does nothing when the injector is disabled. The manager
// must have been built with WebhookServer.
func (i *Injector) SetupWithManager(mgr ctrl.Manager) error {
	if !i.opts.Enabled() {
		return nil
	}
	if mgr.GetWebhookServer() != i.server {
		return errors.New("injector: build the manager with ctrl.Options{WebhookServer: injector.WebhookServer()}")
	}
	log := mgr.GetLogger().WithName("injector")

	var certReady func(*http.Request) error
	if i.opts.CertRotation {
		rot, err := servingcert.New(mgr.GetAPIReader(), mgr.GetClient(), log.WithName("servingcert"), servingcert.Options{
			Namespace:             i.opts.Namespace,
			SecretName:            i.opts.CertSecretName,
			DNSNames:              i.opts.dnsNames(),
			WebhookConfigurations: []string{i.opts.WebhookConfigurationName},
		})
		if err != nil {
			return fmt.Errorf("injector: %w", err)
		}
		if err := mgr.Add(rot); err != nil {
			return fmt.Errorf("injector: adding the certificate rotator: %w", err)
		}
		i.rotator.Store(rot)
		certReady = rot.Checker()
	}

	m := newMetrics()
	if err := m.register(crmetrics.Registry); err != nil {
		return err
	}
	h := NewHandler(i.opts, mgr.GetAPIReader(), mgr.GetScheme(), log)
	h.metrics = m
	i.server.Register(Path, &webhook.Admission{Handler: h})

	started := i.server.StartedChecker()
	if err := mgr.AddReadyzCheck("injector-webhook", func(req *http.Request) error {
		if certReady != nil {
			if err := certReady(req); err != nil {
				return err
			}
		}
		return started(req)
	}); err != nil {
		return fmt.Errorf("injector: readiness check: %w", err)
	}
	log.Info("pod injector enabled", "path", Path, "sidecarImage", i.opts.SidecarImage, "certRotation", i.opts.CertRotation)
	return nil
}
