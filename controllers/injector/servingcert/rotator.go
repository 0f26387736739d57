package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Default lifetimes and check interval.
const (
	DefaultCALifetime    = 5 * 365 * 24 * time.Hour
	DefaultCertLifetime  = 90 * 24 * time.Hour
	DefaultCheckInterval = 30 * time.Second
)

// Options configure a Rotator.
type Options struct {
	// Namespace and SecretName name the certificate Secret.
	Namespace, SecretName string
	// DNSNames are the serving certificate's names; the first is its
	// common name. For a Service: NAME.NAMESPACE.svc (what the API server
	// dials) and NAME.NAMESPACE.svc.cluster.local.
	DNSNames []string
	// WebhookConfigurations are the MutatingWebhookConfigurations whose
	// webhooks' clientConfig.caBundle is kept equal to the CA bundle. One
	// that does not exist yet is skipped and retried.
	WebhookConfigurations []string
	// CALifetime and CertLifetime default to DefaultCALifetime and
	// DefaultCertLifetime.
	CALifetime, CertLifetime time.Duration
	// CheckInterval is how often the Secret and caBundles are checked
	// (default DefaultCheckInterval).
	CheckInterval time.Duration
	// Now is the clock (default time.Now); tests move it forward.
	Now func() time.Time
}

// Rotator keeps the certificate Secret and the caBundles up to date and
// serves the current certificate. It is a controller-runtime Runnable that
// runs on every replica (NeedLeaderElection is false).
type Rotator struct {
	opts   Options
	reader client.Reader
	writer client.Writer
	log    logr.Logger

	cert      atomic.Pointer[tls.Certificate]
	ready     chan struct{}
	readyOnce sync.Once
}

// New returns a Rotator. It reads through reader (use the manager's API
// reader: the Secret need not be in the manager's cache) and writes through
// writer.
func New(reader client.Reader, writer client.Writer, log logr.Logger, opts Options) (*Rotator, error) {
	if opts.Namespace == "" || opts.SecretName == "" {
		return nil, errors.New("servingcert: the Secret's namespace and name are required")
	}
	if len(opts.DNSNames) == 0 {
		return nil, errors.New("servingcert: at least one DNS name is required")
	}
	if opts.CALifetime == 0 {
		opts.CALifetime = DefaultCALifetime
	}
	if opts.CertLifetime == 0 {
		opts.CertLifetime = DefaultCertLifetime
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Rotator{opts: opts, reader: reader, writer: writer, log: log, ready: make(chan struct{})}, nil
}

// GetCertificate serves the current certificate; set it as a
// tls.Config's GetCertificate. Before the first certificate is loaded the
// handshake fails.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := r.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("webhook serving certificate not loaded yet")
}

// Ready is closed once a certificate is served.
func (r *Rotator) Ready() <-chan struct{} { return r.ready }

// Checker is a readiness check: ready once a certificate is served.
func (r *Rotator) Checker() healthz.Checker {
	return func(*http.Request) error {
		select {
		case <-r.ready:
			return nil
		default:
			return errors.New("webhook serving certificate not loaded yet")
		}
	}
}

// NeedLeaderElection is false: every replica serves the webhook.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start checks at once (retrying with backoff until it succeeds) and then
// every CheckInterval until ctx ends. Errors are logged and retried; they
// never stop the manager.
func (r *Rotator) Start(ctx context.Context) error {
	for d := 500 * time.Millisecond; ; d = min(2*d, 30*time.Second) {
		err := r.Sync(ctx)
		if err == nil {
			break
		}
		r.log.Error(err, "webhook serving certificate not ready; retrying", "in", d)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
	t := time.NewTicker(r.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Sync(ctx); err != nil {
				r.log.Error(err, "checking the webhook serving certificate")
			}
		}
	}
}

// Sync runs one check: renew what is due in the Secret, bring every
// caBundle up to date and serve the Secret's certificate. A write conflict
// with another replica is retried once right away with the winner's data.
func (r *Rotator) Sync(ctx context.Context) error {
	var err error
	for range 3 {
		if err = r.sync(ctx); !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return err
}

func (r *Rotator) sync(ctx context.Context) error {
	key := types.NamespacedName{Namespace: r.opts.Namespace, Name: r.opts.SecretName}
	var secret corev1.Secret
	exists := true
	if err := r.reader.Get(ctx, key, &secret); apierrors.IsNotFound(err) {
		exists = false
	} else if err != nil {
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}

	trusted := func(ca *x509.Certificate) bool {
		ok, err := r.allTrust(ctx, ca)
		if err != nil {
			r.log.Error(err, "reading the webhook configurations' caBundle")
		}
		return ok
	}
	data, err := plan(secret.Data, r.opts.DNSNames, r.opts.Now(), r.opts.CALifetime, r.opts.CertLifetime, trusted)
	if err != nil {
		return err
	}
	if data != nil {
		if err := r.write(ctx, &secret, exists, data); err != nil {
			return err
		}
	}

	for _, name := range r.opts.WebhookConfigurations {
		if err := r.injectCABundle(ctx, name, secret.Data[KeyCABundle]); err != nil {
			return err
		}
	}

	cert, err := keyPair(secret.Data)
	if err != nil {
		return err
	}
	if old := r.cert.Load(); old == nil || !equalCert(old, cert) {
		r.cert.Store(cert)
		if cert.Leaf != nil {
			r.log.Info("serving webhook certificate", "notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "dnsNames", cert.Leaf.DNSNames)
		}
	}
	r.readyOnce.Do(func() { close(r.ready) })
	return nil
}

// write creates or updates the Secret with data; on success secret holds
// what was written.
func (r *Rotator) write(ctx context.Context, secret *corev1.Secret, exists bool, data map[string][]byte) error {
	if !exists {
		*secret = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: r.opts.Namespace,
				Name:      r.opts.SecretName,
				Labels:    map[string]string{"app.kubernetes.io/name": "zmqauth", "app.kubernetes.io/component": "webhook"},
			},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		if err := r.writer.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
		}
		r.log.Info("created the webhook certificate Secret", "secret", r.opts.SecretName)
		return nil
	}
	secret.Data = data
	if err := r.writer.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating Secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
	}
	r.log.Info("renewed the webhook certificate", "secret", r.opts.SecretName)
	return nil
}

// allTrust reports whether every existing webhook configuration's webhooks
// all have ca in their caBundle.
func (r *Rotator) allTrust(ctx context.Context, ca *x509.Certificate) (bool, error) {
	for _, name := range r.opts.WebhookConfigurations {
		var cfg admissionregistrationv1.MutatingWebhookConfiguration
		if err := r.reader.Get(ctx, types.NamespacedName{Name: name}, &cfg); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return false, err
		}
		for _, wh := range cfg.Webhooks {
			if !bundleTrusts(wh.ClientConfig.CABundle, ca) {
				return false, nil
			}
		}
	}
	return true, nil
}

// injectCABundle sets every webhook's caBundle in the named configuration.
func (r *Rotator) injectCABundle(ctx context.Context, name string, bundle []byte) error {
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := r.reader.Get(ctx, types.NamespacedName{Name: name}, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			r.log.V(1).Info("webhook configuration not found; caBundle not set", "name", name)
			return nil
		}
		return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", name, err)
	}
	changed := false
	for i := range cfg.Webhooks {
		if string(cfg.Webhooks[i].ClientConfig.CABundle) != string(bundle) {
			cfg.Webhooks[i].ClientConfig.CABundle = bundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.writer.Update(ctx, &cfg); err != nil {
		return fmt.Errorf("setting caBundle of MutatingWebhookConfiguration %s: %w", name, err)
	}
	r.log.Info("set the webhook configuration's caBundle", "name", name)
	return nil
}

func equalCert(a, b *tls.Certificate) bool {
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if string(a.Certificate[i]) != string(b.Certificate[i]) {
			return false
		}
	}
	return true
}
