package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/zmqauth/zmqauth/zap/sidecar"
)

// sidecarLogOptions are the flags every sidecar form shares: logging, and
// the cluster connection for sources in the Kubernetes API.
type sidecarLogOptions struct {
	level         string
	format        string
	kubeconfig    string
	sourceTimeout time.Duration
}

// logger builds the sidecar's logger on w.
func (o *sidecarLogOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.level)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.format)
}

func newSidecarCommand() *cobra.Command {
	var (
		logOpts    sidecarLogOptions
		configFile string
		configEnv  string
	)
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run the CURVE sidecar: plain ZeroMQ on localhost, CURVE and an allowlist on the network",
		Long: `Run the sidecar next to an application that speaks plain ZeroMQ (NULL).

An inbound route accepts CURVE connections from the network, lets in the
clients whose public key is in the allowlist directory, and relays each to
the application on localhost, which reads the client's identity per message
as the "User-Id" property. An outbound route accepts the application's
connections on localhost and relays each to a CURVE server, with this
workload's keypair.

Give one route with "sidecar inbound" or "sidecar outbound", or any number
with --config FILE (YAML: admin, inbound: [...], outbound: [...], with the
flags' names; serverKey for --server-key). Key directories and allowlists
are watched: changes apply without a restart, and a bad change keeps the
last good state. Runs until SIGTERM or SIGINT.

Instead of a mounted directory, keys and allowlists can be read from the
Kubernetes API and watched there: --keys secret:NAMESPACE/NAME (the keypair
Secret zmqauth wrote), --allowlist configmap:NAMESPACE/NAME, --server-key
secret:NAMESPACE/NAME#server.NS.NAME.key. The namespace defaults to the
pod's (or the kubeconfig context's). The sidecar then needs get, list and
watch on those objects only.`,
		Example: `  zmqauth sidecar inbound --listen 0.0.0.0:5555 --app 127.0.0.1:15555 \
      --keys /var/run/zmqauth/server/keys --allowlist /var/run/zmqauth/server/allowlist --admin :9901
  zmqauth sidecar outbound --listen 127.0.0.1:6000 --server collector:5555 \
      --server-key /var/run/zmqauth/client/keys/server.monitoring.collector.key --keys /var/run/zmqauth/client/keys
  zmqauth sidecar inbound --listen 0.0.0.0:5555 --app 127.0.0.1:15555 \
      --keys secret:monitoring/collector-keys --allowlist configmap:monitoring/collector-allowlist
  zmqauth sidecar --config /etc/zmqauth/sidecar.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg sidecar.Config
			var err error
			switch {
			case configFile != "" && configEnv != "":
				return errors.New("sidecar: give --config or --config-env, not both")
			case configFile != "":
				cfg, err = sidecar.LoadConfig(configFile)
			case configEnv != "":
				data, ok := os.LookupEnv(configEnv)
				if !ok || data == "" {
					return fmt.Errorf("sidecar: --config-env %s: the variable is not set", configEnv)
				}
				cfg, err = sidecar.ParseConfig([]byte(data))
			default:
				return errors.New("sidecar: give --config FILE or --config-env NAME, or use \"sidecar inbound\" or \"sidecar outbound\"")
			}
			if err != nil {
				return fmt.Errorf("sidecar: %w", err)
			}
			return runSidecar(cmd, cfg, &logOpts)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML file listing the routes (inbound and outbound) and the admin address")
	cmd.Flags().StringVar(&configEnv, "config-env", "", "environment variable holding the same YAML (the injected sidecar's routes)")
	pf := cmd.PersistentFlags()
	pf.StringVar(&logOpts.level, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&logOpts.format, "log-format", "text", "log format: text or json")
	pf.StringVar(&logOpts.kubeconfig, "kubeconfig", "", "for sources written secret:... or configmap:...: kubeconfig file (default $KUBECONFIG, ~/.kube/config, then in-cluster)")
	pf.DurationVar(&logOpts.sourceTimeout, "source-timeout", 0, "how long to wait at start for a Secret or ConfigMap source to exist (default 1m, or the config file's sourceTimeout)")
	cmd.AddCommand(newSidecarInboundCommand(&logOpts), newSidecarOutboundCommand(&logOpts))
	return cmd
}

func newSidecarInboundCommand(logOpts *sidecarLogOptions) *cobra.Command {
	var (
		r     sidecar.InboundRoute
		admin string
	)
	cmd := &cobra.Command{
		Use:   "inbound --listen ADDR --app ADDR --keys DIR --allowlist DIR",
		Short: "Accept CURVE clients in the allowlist and relay them to the application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkMaxMessageSize(r.MaxMessageSize); err != nil {
				return err
			}
			cfg := sidecar.Config{Admin: admin, Inbound: []sidecar.InboundRoute{r}}
			return runSidecar(cmd, cfg, logOpts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Listen, "listen", "", "public address to accept CURVE connections on, host:port")
	f.StringVar(&r.App, "app", "", "the application's address on localhost, host:port")
	f.StringVar(&r.Keys, "keys", "", "server keypair directory (public.key, secret.key, previous-secret.key), or secret:[NAMESPACE/]NAME")
	f.StringVar(&r.Allowlist, "allowlist", "", "allowlist directory (one zcert public certificate per allowed client), or configmap:[NAMESPACE/]NAME")
	f.StringVar(&r.Mode, "mode", "enforce", "enforce, or audit: let unknown clients in but log and count them")
	f.StringVar(&r.Name, "name", "", "route name in metrics and logs (default inbound)")
	f.Int64Var(&r.MaxMessageSize, "max-message-size", sidecar.DefaultMaxMessageSize, maxMessageSizeUsage)
	f.StringVar(&admin, "admin", "", "address of /metrics, /healthz and /readyz, host:port (none if empty)")
	for _, name := range []string{"listen", "app", "keys", "allowlist"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newSidecarOutboundCommand(logOpts *sidecarLogOptions) *cobra.Command {
	var (
		r     sidecar.OutboundRoute
		admin string
	)
	cmd := &cobra.Command{
		Use:   "outbound --listen ADDR --server ADDR --server-key Z85|FILE --keys DIR",
		Short: "Accept the application's connections and relay them to a CURVE server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkMaxMessageSize(r.MaxMessageSize); err != nil {
				return err
			}
			cfg := sidecar.Config{Admin: admin, Outbound: []sidecar.OutboundRoute{r}}
			return runSidecar(cmd, cfg, logOpts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Listen, "listen", "", "local address the application connects to, host:port")
	f.StringVar(&r.Server, "server", "", "the CURVE server's address, host:port")
	f.StringVar(&r.ServerKey, "server-key", "", "the server's public key: a file holding it (watched), secret:[NAMESPACE/]NAME#KEY (watched), or the 40-character Z85 key")
	f.StringVar(&r.Keys, "keys", "", "client keypair directory (public.key, secret.key), or secret:[NAMESPACE/]NAME")
	f.StringVar(&r.Name, "name", "", "route name in metrics and logs (default outbound)")
	f.Int64Var(&r.MaxMessageSize, "max-message-size", sidecar.DefaultMaxMessageSize, maxMessageSizeUsage)
	f.StringVar(&admin, "admin", "", "address of /metrics, /healthz and /readyz, host:port (none if empty)")
	for _, name := range []string{"listen", "server", "server-key", "keys"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// maxMessageSizeUsage documents --max-message-size on both route commands.
const maxMessageSizeUsage = "largest message, in bytes, accepted from the network or the application; a larger one closes its connection (16 MiB keeps a message's copies well inside the injected sidecar's 128 Mi memory limit)"

// checkMaxMessageSize refuses a --max-message-size that is not positive
// (zero would otherwise mean the default in the route's configuration) or
// is over the sidecar's limit.
func checkMaxMessageSize(n int64) error {
	if n <= 0 {
		return fmt.Errorf("sidecar: --max-message-size %d: want a positive number of bytes", n)
	}
	if n > sidecar.MaxMessageSizeLimit {
		return fmt.Errorf("sidecar: --max-message-size %d: at most %d bytes (1 GiB)", n, sidecar.MaxMessageSizeLimit)
	}
	return nil
}

// runSidecar opens the sidecar (failing at once on a bad configuration,
// missing keys or an address that cannot be bound) and runs it until the
// command's context ends (SIGTERM or SIGINT).
func runSidecar(cmd *cobra.Command, cfg sidecar.Config, logOpts *sidecarLogOptions) error {
	log, err := logOpts.logger(cmd.ErrOrStderr())
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	opts := sidecar.Options{Logger: log}
	if logOpts.sourceTimeout > 0 {
		cfg.SourceTimeout = sidecar.Duration(logOpts.sourceTimeout)
	}
	if cfg.UsesKubernetes() {
		if opts.Kube, opts.Namespace, err = sidecarKubeClient(logOpts.kubeconfig); err != nil {
			return fmt.Errorf("sidecar: %s", oneLine(err))
		}
	}
	ctx := cmd.Context()
	s, err := sidecar.Open(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("sidecar: %s", oneLine(err))
	}
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("sidecar: %s", oneLine(err))
	}
	return nil
}

// sidecarKubeClient connects to the cluster the way the manager does and
// returns the namespace of references that give none: the kubeconfig
// context's, or in a pod its own.
func sidecarKubeClient(kubeconfig string) (kubernetes.Interface, string, error) {
	cc := kubeClientConfig(kubeconfig)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load cluster connection for the Secret and ConfigMap sources: %w", err)
	}
	cfg.UserAgent = "zmqauth-sidecar"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("cluster client: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("default namespace: %w", err)
	}
	return cs, ns, nil
}

// oneLine flattens an error's text to one line, as run prints it.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
