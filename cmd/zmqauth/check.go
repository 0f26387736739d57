package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/controllers/injector"
)

// checkOptions are the flags of `zmqauth check`.
type checkOptions struct {
	kubeconfig  string
	kubecontext string
	namespace   string
	deployment  string
	expiryMin   time.Duration
	timeout     time.Duration
}

// installHint is how zmqauth is installed, the hint for anything missing.
const installHint = "install zmqauth: kubectl apply --server-side -k config/default (see README.md)"

func newCheckCommand() *cobra.Command {
	o := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that zmqauth is installed and healthy in the cluster",
		Long: `Check that zmqauth is installed and healthy: its CRDs are installed and
established, the manager Deployment is available, the pod injector's webhook
configuration has a caBundle, its Service has ready endpoints, and its serving
certificate is valid, trusted by that caBundle and not close to expiry.

Prints one line per check, √ or ×, with what to do about each failure, and
exits non-zero if any check fails.`,
		Example: `  zmqauth check
  zmqauth check --kubeconfig ~/.kube/staging --namespace zmqauth-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			return runChecks(cmd.Context(), cmd.OutOrStdout(), c, o, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.kubecontext, "context", "", "kubeconfig context (default the current context)")
	f.StringVar(&o.namespace, "namespace", injector.DefaultNamespace, "namespace zmqauth is installed in")
	f.StringVar(&o.deployment, "deployment", "zmqauth-manager", "name of the manager Deployment")
	f.DurationVar(&o.expiryMin, "cert-expiry-min", 14*24*time.Hour, "fail when the webhook's serving certificate expires sooner than this (zmqauth and cert-manager renew 30 days ahead)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each API request")
	return cmd
}

func (o checkOptions) client() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.kubecontext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.Timeout = o.timeout
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// check is one line of `zmqauth check`. run returns a detail for a pass, or
// an error and a hint saying what to do.
type check struct {
	name string
	run  func(ctx context.Context) (detail string, hint string, err error)
}

// runChecks runs every check, prints a line per check and returns an error
// when any failed.
func runChecks(ctx context.Context, out io.Writer, c client.Client, o checkOptions, now time.Time) error {
	k := &checker{c: c, o: o, now: now}
	checks := k.checks()
	failed := 0
	for _, ch := range checks {
		detail, hint, err := ch.run(ctx)
		if err != nil {
			failed++
			fmt.Fprintf(out, "× %s\n    %v\n", ch.name, err)
			if hint != "" {
				fmt.Fprintf(out, "    hint: %s\n", hint)
			}
			continue
		}
		if detail != "" {
			fmt.Fprintf(out, "√ %s (%s)\n", ch.name, detail)
		} else {
			fmt.Fprintf(out, "√ %s\n", ch.name)
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d of %d checks failed", failed, len(checks))
	}
	fmt.Fprintf(out, "all %d checks passed\n", len(checks))
	return nil
}

type checker struct {
	c   client.Client
	o   checkOptions
	now time.Time
}

func (k *checker) checks() []check {
	var checks []check
	for _, plural := range []string{"curveservers", "curveclients", "clustercurvegrants"} {
		name := plural + ".zmqauth.io"
		checks = append(checks, check{
			name: "CRD " + name + " is installed and established",
			run:  func(ctx context.Context) (string, string, error) { return k.crd(ctx, name) },
		})
	}
	return append(checks,
		check{name: fmt.Sprintf("manager Deployment %s/%s is available", k.o.namespace, k.o.deployment), run: k.deployment},
		check{name: fmt.Sprintf("webhook configuration %s has a caBundle", injector.DefaultWebhookConfigurationName), run: k.caBundle},
		check{name: fmt.Sprintf("webhook Service %s/%s has ready endpoints", k.o.namespace, injector.DefaultServiceName), run: k.endpoints},
		check{name: "webhook serving certificate is valid, trusted and not near expiry", run: k.servingCert},
	)
}

func (k *checker) crd(ctx context.Context, name string) (string, string, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := k.c.Get(ctx, types.NamespacedName{Name: name}, &crd); err != nil {
		return "", installHint, notFoundOr(err, "CRD %s is not installed", name)
	}
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established {
			if cond.Status == apiextensionsv1.ConditionTrue {
				return "", "", nil
			}
			return "", "kubectl describe crd " + name + " (a CRD that stays unestablished usually has a name conflict)",
				fmt.Errorf("CRD %s is not established: %s", name, cond.Message)
		}
	}
	return "", "wait a few seconds and run zmqauth check again", fmt.Errorf("CRD %s is not established yet", name)
}

func (k *checker) deployment(ctx context.Context) (string, string, error) {
	var d appsv1.Deployment
	key := types.NamespacedName{Namespace: k.o.namespace, Name: k.o.deployment}
	if err := k.c.Get(ctx, key, &d); err != nil {
		return "", installHint, notFoundOr(err, "Deployment %s not found", key)
	}
	ready := fmt.Sprintf("%d/%d replicas ready", d.Status.ReadyReplicas, d.Status.Replicas)
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
			return ready, "", nil
		}
	}
	return "", fmt.Sprintf("kubectl -n %s describe deployment %s; kubectl -n %s logs deployment/%s", k.o.namespace, k.o.deployment, k.o.namespace, k.o.deployment),
		fmt.Errorf("Deployment %s is not available (%s)", key, ready)
}

// webhookCAs returns the CA certificates every webhook of the injector's
// configuration trusts.
func (k *checker) webhookCAs(ctx context.Context) (*x509.CertPool, string, error) {
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := k.c.Get(ctx, types.NamespacedName{Name: injector.DefaultWebhookConfigurationName}, &cfg); err != nil {
		return nil, installHint, notFoundOr(err, "MutatingWebhookConfiguration %s not found", injector.DefaultWebhookConfigurationName)
	}
	if len(cfg.Webhooks) == 0 {
		return nil, installHint, fmt.Errorf("MutatingWebhookConfiguration %s has no webhooks", cfg.Name)
	}
	hint := fmt.Sprintf("the manager sets the caBundle when it starts (with config/certmanager, cert-manager's cainjector does): kubectl -n %s logs deployment/%s", k.o.namespace, k.o.deployment)
	var pool *x509.CertPool
	for _, wh := range cfg.Webhooks {
		certs, err := parsePEMCerts(wh.ClientConfig.CABundle)
		if err != nil || len(certs) == 0 {
			return nil, hint, fmt.Errorf("webhook %s has no usable caBundle", wh.Name)
		}
		if pool == nil {
			pool = x509.NewCertPool()
			for _, c := range certs {
				pool.AddCert(c)
			}
		}
	}
	return pool, "", nil
}

func (k *checker) caBundle(ctx context.Context) (string, string, error) {
	_, hint, err := k.webhookCAs(ctx)
	return "", hint, err
}

func (k *checker) endpoints(ctx context.Context) (string, string, error) {
	key := types.NamespacedName{Namespace: k.o.namespace, Name: injector.DefaultServiceName}
	if err := k.c.Get(ctx, key, &corev1.Service{}); err != nil {
		return "", installHint, notFoundOr(err, "Service %s not found", key)
	}
	var slices discoveryv1.EndpointSliceList
	if err := k.c.List(ctx, &slices, client.InNamespace(k.o.namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: injector.DefaultServiceName}); err != nil {
		return "", "", fmt.Errorf("listing the Service's EndpointSlices: %w", err)
	}
	ready := 0
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		return "", fmt.Sprintf("no manager replica is ready, so annotated pods in opted-in namespaces cannot be created: kubectl -n %s get pods -l control-plane=zmqauth-manager", k.o.namespace),
			fmt.Errorf("Service %s has no ready endpoints", key)
	}
	return fmt.Sprintf("%d ready", ready), "", nil
}

func (k *checker) servingCert(ctx context.Context) (string, string, error) {
	var s corev1.Secret
	key := types.NamespacedName{Namespace: k.o.namespace, Name: injector.DefaultCertSecretName}
	logs := fmt.Sprintf("kubectl -n %s logs deployment/%s", k.o.namespace, k.o.deployment)
	if err := k.c.Get(ctx, key, &s); err != nil {
		return "", "the manager creates it when it starts (with config/certmanager, cert-manager does): " + logs,
			notFoundOr(err, "Secret %s not found", key)
	}
	certs, err := parsePEMCerts(s.Data[corev1.TLSCertKey])
	if err != nil || len(certs) == 0 {
		return "", "delete the Secret; the manager (or cert-manager) issues a new one: kubectl -n " + k.o.namespace + " delete secret " + key.Name,
			fmt.Errorf("Secret %s holds no certificate in %s", key, corev1.TLSCertKey)
	}
	leaf := certs[0]
	host := injector.DefaultServiceName + "." + k.o.namespace + ".svc"
	left := leaf.NotAfter.Sub(k.now)
	switch {
	case k.now.Before(leaf.NotBefore):
		return "", "check the clocks of the nodes and the API server",
			fmt.Errorf("certificate not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case left <= 0:
		return "", "renewal is failing: " + logs, fmt.Errorf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case left < k.o.expiryMin:
		return "", "zmqauth and cert-manager renew 30 days ahead, so renewal is failing: " + logs,
			fmt.Errorf("certificate expires in %s, at %s", days(left), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return "", "the certificate must name the webhook Service; delete the Secret to have it re-issued", fmt.Errorf("certificate is not valid for %s: %w", host, err)
	}
	pool, _, err := k.webhookCAs(ctx)
	if err != nil {
		return "", "see the caBundle check above", fmt.Errorf("cannot verify the certificate without a caBundle: %w", err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host, CurrentTime: k.now}); err != nil {
		return "", "the API server will refuse to call the webhook; the caBundle is updated within a minute of a renewal: " + logs,
			fmt.Errorf("the caBundle does not trust the serving certificate: %w", err)
	}
	return fmt.Sprintf("expires in %s", days(left)), "", nil
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func parsePEMCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		out = append(out, c)
	}
}

// notFoundOr words a NotFound error with format, and passes other errors
// (permissions, connectivity) through.
func notFoundOr(err error, format string, args ...any) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf(format, args...)
	}
	return err
}
