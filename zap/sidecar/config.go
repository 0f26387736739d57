package sidecar

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/zmqauth/zmqauth/zap/kubesource"
	"github.com/zmqauth/zmqauth/zap/policy"
)

// DefaultReloadInterval is how often key and allowlist directories are
// checked for changes when Config.ReloadInterval is zero.
const DefaultReloadInterval = 500 * time.Millisecond

// DefaultMaxMessageSize is a route's limit on one received message, in
// bytes, when its MaxMessageSize is zero: 16 MiB. The injected sidecar
// container's memory limit is 128 Mi for every route and session together,
// and a message crossing a CURVE hop is in memory several times at once
// (the sealed frame as it arrives, with room to grow, and its decrypted
// payload), about three times its size. Under 16 MiB one message stays far
// from that ceiling, so one client, the application, or a stranger let in
// by audit mode cannot get the whole sidecar OOM-killed; zmtp's own
// default (256 MiB) would let a single message do it.
const DefaultMaxMessageSize = 16 << 20

// MaxMessageSizeLimit is the largest MaxMessageSize a route accepts: 1 GiB.
// zmtp sizes its limit on a sealed frame from it with integer arithmetic,
// which a value near the int64 maximum overflows, silently removing the
// frame limit; and no message anywhere near that size fits a sidecar's
// memory anyway.
const MaxMessageSizeLimit = 1 << 30

// Config is the sidecar's configuration: its routes and admin endpoint. The
// command line builds one from flags (one route); a config file (YAML)
// lists any number of routes of both kinds:
//
//	admin: 0.0.0.0:9901
//	inbound:
//	  - name: bus
//	    listen: 0.0.0.0:5555
//	    app: 127.0.0.1:15555
//	    keys: /var/run/zmqauth/server/keys
//	    allowlist: /var/run/zmqauth/server/allowlist
//	    mode: enforce
//	    maxMessageSize: 16777216
//	outbound:
//	  - name: collector
//	    listen: 127.0.0.1:6000
//	    server: collector.monitoring.svc:5555
//	    serverKey: /var/run/zmqauth/client/keys/server.monitoring.collector.key
//	    keys: /var/run/zmqauth/client/keys
type Config struct {
	// Admin is the address of the /metrics, /healthz and /readyz endpoint;
	// empty serves none.
	Admin string `json:"admin,omitempty"`
	// ReloadInterval is how often key and allowlist directories are
	// checked for changes (default DefaultReloadInterval).
	ReloadInterval Duration `json:"reloadInterval,omitempty"`
	// SourceTimeout is how long Open waits for a Secret or ConfigMap named
	// as a source to exist (default DefaultSourceTimeout).
	SourceTimeout Duration `json:"sourceTimeout,omitempty"`
	// HandshakeTimeout bounds each connection's handshakes (default the
	// zmtp default, 10 s).
	HandshakeTimeout Duration `json:"handshakeTimeout,omitempty"`
	// Heartbeat, when set, sends ZMTP 3.1 PINGs at this interval on every
	// connection the sidecar makes or accepts, and drops a connection that
	// stays silent as long after one.
	Heartbeat Duration `json:"heartbeat,omitempty"`
	// Inbound lists the server-side routes.
	Inbound []InboundRoute `json:"inbound,omitempty"`
	// Outbound lists the client-side routes.
	Outbound []OutboundRoute `json:"outbound,omitempty"`
}

// InboundRoute is a server-side route: CURVE on Listen, NULL to App.
type InboundRoute struct {
	// Name names the route in metrics, logs and readiness (default
	// "inbound", or "inbound-N" when there are several).
	Name string `json:"name,omitempty"`
	// Listen is the public address, host:port (a tcp:// prefix is
	// accepted).
	Listen string `json:"listen"`
	// App is the application's address on localhost.
	App string `json:"app"`
	// Keys is the server keypair directory (public.key, secret.key and,
	// during a rotation overlap, previous-secret.key), or the keypair
	// Secret in the Kubernetes API: secret:[NAMESPACE/]NAME.
	Keys string `json:"keys"`
	// Allowlist is the allowlist directory (one zcert public certificate
	// per allowed client key), or the allowlist in the Kubernetes API:
	// configmap:[NAMESPACE/]NAME (or a secret:).
	Allowlist string `json:"allowlist"`
	// Mode is "enforce" (default) or "audit": audit lets clients outside
	// the allowlist in, logging and counting them.
	Mode string `json:"mode,omitempty"`
	// MaxMessageSize limits one message, and so each of its frames,
	// received from the network or from the application, in bytes
	// (default DefaultMaxMessageSize, at most MaxMessageSizeLimit). A
	// larger message closes the connection it arrives on, and with it that
	// session only.
	MaxMessageSize int64 `json:"maxMessageSize,omitempty"`
}

// OutboundRoute is a client-side route: NULL on Listen (localhost), CURVE
// to Server.
type OutboundRoute struct {
	// Name names the route in metrics, logs and readiness (default
	// "outbound", or "outbound-N" when there are several).
	Name string `json:"name,omitempty"`
	// Listen is the local address the application connects to.
	Listen string `json:"listen"`
	// Server is the remote server's address.
	Server string `json:"server"`
	// ServerKey is the server's public key: a file holding it (watched
	// for changes), one file of a Secret or ConfigMap in the Kubernetes API
	// (secret:[NAMESPACE/]NAME#KEY, watched), or the 40-character Z85 key
	// itself.
	ServerKey string `json:"serverKey"`
	// Keys is this workload's client keypair directory (public.key,
	// secret.key), or its keypair Secret (secret:[NAMESPACE/]NAME); the
	// keys in it at the time of each dial are used.
	Keys string `json:"keys"`
	// MaxMessageSize limits one message, and so each of its frames,
	// received from the application or from the server, in bytes (default
	// DefaultMaxMessageSize, at most MaxMessageSizeLimit). A larger message
	// closes the connection it arrives on, and with it that session only.
	MaxMessageSize int64 `json:"maxMessageSize,omitempty"`
}

// Duration is a time.Duration written as in Go ("500ms", "2s") in a config
// file.
type Duration time.Duration

// UnmarshalJSON parses a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// LoadConfig reads a YAML (or JSON) config file. Unknown fields are errors,
// so a misspelt option is reported rather than ignored.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a YAML (or JSON) configuration and validates it.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the configuration and fills in default route names. It
// does not touch the file system or the network.
func (c *Config) Validate() error {
	if len(c.Inbound)+len(c.Outbound) == 0 {
		return errors.New("no routes configured")
	}
	names := map[string]bool{}
	name := func(kind string, i, n int, given *string) error {
		if *given == "" {
			*given = kind
			if n > 1 {
				*given = fmt.Sprintf("%s-%d", kind, i+1)
			}
		}
		if names[*given] {
			return fmt.Errorf("route name %q is used twice", *given)
		}
		names[*given] = true
		return nil
	}
	listens := map[string]string{}
	listen := func(route, addr string) error {
		a, err := NormalizeAddr(addr)
		if err != nil {
			return fmt.Errorf("route %s: listen: %w", route, err)
		}
		if other, dup := listens[a]; dup && !strings.HasSuffix(a, ":0") {
			return fmt.Errorf("route %s: listen address %s is also route %s's", route, a, other)
		}
		listens[a] = route
		return nil
	}
	if c.Admin != "" {
		if _, err := NormalizeAddr(c.Admin); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	for i := range c.Inbound {
		r := &c.Inbound[i]
		if err := name("inbound", i, len(c.Inbound), &r.Name); err != nil {
			return err
		}
		if err := listen(r.Name, r.Listen); err != nil {
			return err
		}
		if _, err := NormalizeDialAddr(r.App); err != nil {
			return fmt.Errorf("route %s: app: %w", r.Name, err)
		}
		if r.Keys == "" {
			return fmt.Errorf("route %s: keys: a server keypair directory is required", r.Name)
		}
		if err := checkRef(r.Keys, kubesource.Secret, false); err != nil {
			return fmt.Errorf("route %s: keys: %w", r.Name, err)
		}
		if r.Allowlist == "" {
			return fmt.Errorf("route %s: allowlist: an allowlist directory is required", r.Name)
		}
		if err := checkRef(r.Allowlist, "", false); err != nil {
			return fmt.Errorf("route %s: allowlist: %w", r.Name, err)
		}
		if r.Mode == "" {
			r.Mode = string(policy.Enforce)
		}
		if _, err := policy.ParseMode(r.Mode); err != nil {
			return fmt.Errorf("route %s: mode: %w", r.Name, err)
		}
		if err := checkMaxMessageSize(r.Name, &r.MaxMessageSize); err != nil {
			return err
		}
	}
	for i := range c.Outbound {
		r := &c.Outbound[i]
		if err := name("outbound", i, len(c.Outbound), &r.Name); err != nil {
			return err
		}
		if err := listen(r.Name, r.Listen); err != nil {
			return err
		}
		if _, err := NormalizeDialAddr(r.Server); err != nil {
			return fmt.Errorf("route %s: server: %w", r.Name, err)
		}
		if r.ServerKey == "" {
			return fmt.Errorf("route %s: server key: the server's public key (Z85 or a file) is required", r.Name)
		}
		if err := checkRef(r.ServerKey, "", true); err != nil {
			return fmt.Errorf("route %s: server key: %w", r.Name, err)
		}
		if r.Keys == "" {
			return fmt.Errorf("route %s: keys: a client keypair directory is required", r.Name)
		}
		if err := checkRef(r.Keys, kubesource.Secret, false); err != nil {
			return fmt.Errorf("route %s: keys: %w", r.Name, err)
		}
		if err := checkMaxMessageSize(r.Name, &r.MaxMessageSize); err != nil {
			return err
		}
	}
	return nil
}

// checkMaxMessageSize refuses a negative message size limit or one over
// MaxMessageSizeLimit, and fills in the default for an unset (zero) one.
func checkMaxMessageSize(route string, n *int64) error {
	if *n < 0 {
		return fmt.Errorf("route %s: maxMessageSize %d: want a positive number of bytes (default %d)", route, *n, DefaultMaxMessageSize)
	}
	if *n > MaxMessageSizeLimit {
		return fmt.Errorf("route %s: maxMessageSize %d: at most %d bytes (1 GiB)", route, *n, MaxMessageSizeLimit)
	}
	if *n == 0 {
		*n = DefaultMaxMessageSize
	}
	return nil
}

// UsesKubernetes reports whether a route reads keys, a server key or an
// allowlist from the Kubernetes API, so that Options.Kube is needed.
func (c *Config) UsesKubernetes() bool {
	for _, r := range c.Inbound {
		if kubesource.IsRef(r.Keys) || kubesource.IsRef(r.Allowlist) {
			return true
		}
	}
	for _, r := range c.Outbound {
		if kubesource.IsRef(r.Keys) || kubesource.IsRef(r.ServerKey) {
			return true
		}
	}
	return false
}

// checkRef checks a source written as a reference to the Kubernetes API
// (anything else is a path, checked when it is read): its syntax, its kind
// when only one makes sense, and whether it names one file (dataKey) or
// a whole object.
func checkRef(s string, kind kubesource.Kind, dataKey bool) error {
	if !kubesource.IsRef(s) {
		return nil
	}
	ref, err := kubesource.ParseRef(s)
	if err != nil {
		return err
	}
	if kind != "" && ref.Kind != kind {
		return fmt.Errorf("%q: keys come from a Secret, never a ConfigMap: write secret:[NAMESPACE/]NAME", s)
	}
	if dataKey && ref.Key == "" {
		return fmt.Errorf("%q: name the file that holds the key: %s#KEY (a CurveClient's Secret has one server.NAMESPACE.NAME.key per server)", s, s)
	}
	if !dataKey && ref.Key != "" {
		return fmt.Errorf("%q: a whole %s is read here; remove #%s", s, ref.Kind, ref.Key)
	}
	return nil
}

// NormalizeAddr checks an address to listen on, host:port with or without
// a tcp:// prefix, and returns it without the prefix. The port is a number
// from 0 to 65535; 0 lets the system pick a free one.
func NormalizeAddr(addr string) (string, error) {
	return normalizeAddr(addr, 0)
}

// NormalizeDialAddr checks an address to connect to (an application's or
// a server's) as NormalizeAddr does, except that its port must be one a
// connection can reach: 1 to 65535. A port no dial can succeed with would
// otherwise only show as every connection's retries failing.
func NormalizeDialAddr(addr string) (string, error) {
	return normalizeAddr(addr, 1)
}

// normalizeAddr is NormalizeAddr with minPort the lowest port accepted.
func normalizeAddr(addr string, minPort int) (string, error) {
	if addr == "" {
		return "", errors.New("an address (host:port) is required")
	}
	a := addr
	if i := strings.Index(a, "://"); i >= 0 {
		if a[:i] != "tcp" {
			return "", fmt.Errorf("address %q: only tcp:// is supported", addr)
		}
		a = a[i+3:]
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("address %q: missing port", addr)
	}
	if n, ok := portNumber(port); !ok || n < minPort {
		return "", fmt.Errorf("address %q: port %q: want a number from %d to 65535", addr, port, minPort)
	}
	if host == "*" { // libzmq's wildcard
		a = net.JoinHostPort("", port)
	}
	return a, nil
}

// portNumber parses a port written as decimal digits only (no sign, no
// service name) and reports whether it is at most 65535.
func portNumber(s string) (int, bool) {
	if len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}
