// Package localcluster runs the embedded local control plane that the demo
// and the end-to-end suite use: a real kube-apiserver and etcd started through
// controller-runtime's envtest from the binaries hack/controlplane.sh builds,
// with zmqauth's CRDs installed and an admin kubeconfig written to disk so
// kubectl and the zmqauth binary can reach it like any cluster.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configures Start.
type Options struct {
	// AssetsDir holds kube-apiserver, etcd and kubectl (bin/k8s).
	AssetsDir string
	// CRDDir holds the CRD manifests to install (config/crd/bases).
	CRDDir string
	// WebhookDir, when set, holds MutatingWebhookConfiguration manifests to
	// install pointing at a webhook server on this host (config/webhook).
	WebhookDir string
	// StateDir receives the kubeconfig. It is created if missing.
	StateDir string
}

// Cluster is a running local control plane.
type Cluster struct {
	env *envtest.Environment
	// certDir holds the API server's serving certificate and client CA, so
	// that a restarted API server presents the same ones.
	certDir string
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig for kubectl and zmqauth.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built for this control plane.
	Kubectl string
	// WebhookHost, WebhookPort and WebhookCertDir tell a webhook server where
	// the API server expects it and which serving certificate it trusts; set
	// only when Options.WebhookDir was given.
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
}

// Start starts etcd and kube-apiserver, installs the CRDs (and webhooks) and
// writes the kubeconfig. The caller must Stop the cluster.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(opts.AssetsDir, name)); err != nil {
			return nil, fmt.Errorf("localcluster: %s not found in %s (run hack/controlplane.sh): %w", name, opts.AssetsDir, err)
		}
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	// envtest puts the API server's certificates in a directory of its own
	// that it removes when the API server stops; one of ours survives
	// StopAPIServer, so StartAPIServer serves the same certificates and
	// every kubeconfig written for the cluster keeps working.
	certDir, err := os.MkdirTemp(opts.StateDir, "kube-apiserver-")
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	apiServer := &envtest.APIServer{CertDir: certDir}
	// Stopped, the API server drains in-flight requests and then gives
	// open watches 2 s, instead of waiting for them for its request
	// timeout (60 s): with controllers watching, a stop takes seconds.
	apiServer.Configure().Set("shutdown-send-retry-after", "true")
	env := &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{APIServer: apiServer},
		BinaryAssetsDirectory:    opts.AssetsDir,
		CRDDirectoryPaths:        []string{opts.CRDDir},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if opts.WebhookDir != "" {
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{opts.WebhookDir}}
	}
	type started struct {
		cfg *rest.Config
		err error
	}
	done := make(chan started, 1)
	go func() {
		cfg, err := env.Start()
		done <- started{cfg, err}
	}()
	var cfg *rest.Config
	select {
	case s := <-done:
		if s.err != nil {
			_ = os.RemoveAll(certDir)
			return nil, fmt.Errorf("localcluster: start control plane: %w", s.err)
		}
		cfg = s.cfg
	case <-ctx.Done():
		// envtest.Start has no context; wait for it, then tear down.
		if s := <-done; s.err == nil {
			_ = env.Stop()
		}
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("localcluster: start control plane: %w", ctx.Err())
	}

	c := &Cluster{env: env, certDir: certDir, Config: cfg, Kubectl: filepath.Join(opts.AssetsDir, "kubectl")}
	if opts.WebhookDir != "" {
		c.WebhookHost = env.WebhookInstallOptions.LocalServingHost
		c.WebhookPort = env.WebhookInstallOptions.LocalServingPort
		c.WebhookCertDir = env.WebhookInstallOptions.LocalServingCertDir
	}
	if err := c.writeKubeconfig(opts.StateDir); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Cluster) writeKubeconfig(dir string) error {
	admin, err := c.env.AddUser(envtest.User{Name: "zmqauth-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("localcluster: add admin user: %w", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("localcluster: render kubeconfig: %w", err)
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, data, 0o600); err != nil {
		return fmt.Errorf("localcluster: write kubeconfig: %w", err)
	}
	return nil
}

// StopAPIServer stops kube-apiserver alone, as an outage would: etcd keeps
// running with its data, and StartAPIServer brings the API server back.
func (c *Cluster) StopAPIServer() error {
	if err := c.env.ControlPlane.APIServer.Stop(); err != nil {
		return fmt.Errorf("localcluster: stop kube-apiserver: %w", err)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// address with the same certificates and client CA, so clients holding the
// kubeconfig reconnect to it unchanged. It returns once the API server is
// healthy.
func (c *Cluster) StartAPIServer() error {
	if err := c.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("localcluster: start kube-apiserver: %w", err)
	}
	return nil
}

// Stop stops the API server and etcd and removes their data.
func (c *Cluster) Stop() error {
	err := c.env.Stop()
	if rmErr := os.RemoveAll(c.certDir); err == nil && rmErr != nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("localcluster: stop: %w", err)
	}
	return nil
}
