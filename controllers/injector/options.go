package injector

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
)

// Names of the objects config/ installs, the defaults of Options.
const (
	// DefaultNamespace is the namespace config/default installs into.
	DefaultNamespace = "zmqauth-system"
	// DefaultServiceName is the webhook's Service.
	DefaultServiceName = "zmqauth-webhook-service"
	// DefaultCertSecretName is the Secret holding the serving certificate,
	// written by the manager (or by cert-manager with config/certmanager).
	DefaultCertSecretName = "zmqauth-webhook-server-cert"
	// DefaultWebhookConfigurationName is the MutatingWebhookConfiguration
	// generated from the marker in injector.go.
	DefaultWebhookConfigurationName = "zmqauth-injector"
	// DefaultWebhookPort is the port the webhook server listens on.
	DefaultWebhookPort = 9443
	// DefaultCertDir is where the serving certificate is read from when
	// the manager does not manage it (controller-runtime's default).
	DefaultCertDir = "/tmp/k8s-webhook-server/serving-certs"
	// NamespaceEnv names the environment variable (set from the downward
	// API in config/manager) holding the manager's namespace.
	NamespaceEnv = "POD_NAMESPACE"
)

// Options configure the injector. AddFlags binds them to the manager's
// command line.
type Options struct {
	// SidecarImage is the image of the injected sidecar, normally the
	// manager's own image. Empty disables the injector (no webhook server),
	// for running the manager outside a cluster.
	SidecarImage string
	// SidecarImagePullPolicy is the sidecar's imagePullPolicy.
	SidecarImagePullPolicy corev1.PullPolicy

	// WebhookHost is the address the webhook server listens on (default
	// all addresses); tests set 127.0.0.1.
	WebhookHost string
	// WebhookPort is the port the webhook server listens on.
	WebhookPort int
	// CertRotation makes the manager create and renew its own serving
	// certificate and the webhook configuration's caBundle (package
	// servingcert). Turn it off when cert-manager provides them
	// (config/certmanager); the certificate is then read from CertDir.
	CertRotation bool
	// CertDir holds tls.crt and tls.key when CertRotation is off.
	CertDir string

	// Namespace is the manager's namespace, where the certificate Secret
	// and the webhook Service live.
	Namespace string
	// ServiceName is the webhook Service; the certificate is issued for
	// NAME.NAMESPACE.svc.
	ServiceName string
	// CertSecretName is the Secret holding the serving certificate.
	CertSecretName string
	// WebhookConfigurationName is the MutatingWebhookConfiguration whose
	// caBundle the rotator keeps.
	WebhookConfigurationName string
	// ExtraDNSNames are more names the serving certificate covers, e.g.
	// localhost for a webhook configuration that uses a URL.
	ExtraDNSNames []string
}

// DefaultOptions returns the options config/default deploys with, except
// SidecarImage. The namespace comes from $POD_NAMESPACE when set.
func DefaultOptions() Options {
	ns := os.Getenv(NamespaceEnv)
	if ns == "" {
		ns = DefaultNamespace
	}
	return Options{
		SidecarImagePullPolicy: corev1.PullIfNotPresent,
		WebhookPort:            DefaultWebhookPort,
		CertRotation:           true,
		CertDir:                DefaultCertDir,
		Namespace:              ns,
		ServiceName:            DefaultServiceName,
		CertSecretName:         DefaultCertSecretName,

		WebhookConfigurationName: DefaultWebhookConfigurationName,
	}
}

// AddFlags binds o to flags. Call it on DefaultOptions().
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SidecarImage, "sidecar-image", o.SidecarImage, "image of the injected CURVE sidecar (normally the manager's own); empty disables the pod injector webhook")
	fs.StringVar((*string)(&o.SidecarImagePullPolicy), "sidecar-image-pull-policy", string(o.SidecarImagePullPolicy), "imagePullPolicy of the injected sidecar: Always, IfNotPresent or Never")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "port of the pod injector webhook server")
	fs.BoolVar(&o.CertRotation, "webhook-cert-rotation", o.CertRotation, "create and renew the webhook's serving certificate and caBundle; set false when cert-manager provides them in --cert-dir")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding the webhook's tls.crt and tls.key, used when --webhook-cert-rotation=false")
	fs.StringVar(&o.Namespace, "webhook-namespace", o.Namespace, "namespace of the webhook Service and certificate Secret (default $"+NamespaceEnv+")")
	fs.StringVar(&o.ServiceName, "webhook-service", o.ServiceName, "name of the webhook Service the certificate is issued for")
	fs.StringVar(&o.CertSecretName, "webhook-cert-secret", o.CertSecretName, "name of the Secret holding the webhook's serving certificate")
	fs.StringVar(&o.WebhookConfigurationName, "webhook-configuration", o.WebhookConfigurationName, "name of the MutatingWebhookConfiguration whose caBundle is kept (with --webhook-cert-rotation)")
}

// Enabled reports whether the injector runs.
func (o Options) Enabled() bool { return o.SidecarImage != "" }

func (o Options) validate() error {
	if !o.Enabled() {
		return nil
	}
	switch o.SidecarImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("--sidecar-image-pull-policy %q: want Always, IfNotPresent or Never", o.SidecarImagePullPolicy)
	}
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		return fmt.Errorf("--webhook-port %d: want 1 to 65535", o.WebhookPort)
	}
	if o.CertRotation && (o.Namespace == "" || o.ServiceName == "" || o.CertSecretName == "" || o.WebhookConfigurationName == "") {
		return fmt.Errorf("--webhook-cert-rotation needs --webhook-namespace, --webhook-service, --webhook-cert-secret and --webhook-configuration")
	}
	if !o.CertRotation && o.CertDir == "" {
		return fmt.Errorf("--cert-dir is required when --webhook-cert-rotation=false")
	}
	return nil
}

// dnsNames are the names the serving certificate is issued for.
func (o Options) dnsNames() []string {
	svc := o.ServiceName + "." + o.Namespace + ".svc"
	return append([]string{svc, svc + ".cluster.local"}, o.ExtraDNSNames...)
}
