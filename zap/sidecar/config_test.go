package sidecar

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "several routes of both kinds",
			yaml: `
admin: 127.0.0.1:9901
reloadInterval: 250ms
inbound:
  - name: bus
    listen: tcp://0.0.0.0:5555
    app: 127.0.0.1:15555
    keys: /k/server
    allowlist: /k/allow
  - listen: 0.0.0.0:5556
    app: 127.0.0.1:15556
    keys: /k/server
    allowlist: /k/allow2
    mode: audit
outbound:
  - name: collector
    listen: 127.0.0.1:6000
    server: collector:5555
    serverKey: /k/client/collector.key
    keys: /k/client
`,
			check: func(t *testing.T, c Config) {
				if len(c.Inbound) != 2 || len(c.Outbound) != 1 {
					t.Fatalf("got %d inbound, %d outbound routes", len(c.Inbound), len(c.Outbound))
				}
				if c.Inbound[0].Mode != "enforce" || c.Inbound[1].Mode != "audit" {
					t.Errorf("modes %q %q, want enforce audit", c.Inbound[0].Mode, c.Inbound[1].Mode)
				}
				if c.Inbound[1].Name != "inbound-2" {
					t.Errorf("default name %q, want inbound-2", c.Inbound[1].Name)
				}
				if time.Duration(c.ReloadInterval) != 250*time.Millisecond {
					t.Errorf("reloadInterval %v", time.Duration(c.ReloadInterval))
				}
			},
		},
		{
			name: "port 0 to listen on and the highest port to dial",
			yaml: "admin: 127.0.0.1:0\ninbound:\n  - {listen: 'tcp://*:0', app: '127.0.0.1:65535', keys: k, allowlist: a}\noutbound:\n  - {listen: '127.0.0.1:0', server: 'tcp://[fd00::7]:1', serverKey: s, keys: k}\n",
			check: func(t *testing.T, c Config) {
				if c.Inbound[0].App != "127.0.0.1:65535" || c.Outbound[0].Server != "tcp://[fd00::7]:1" {
					t.Errorf("addresses changed: %+v %+v", c.Inbound[0], c.Outbound[0])
				}
			},
		},
		{
			name: "one outbound route named by default",
			yaml: `{"outbound":[{"listen":"127.0.0.1:1","server":"h:2","serverKey":"k","keys":"d"}]}`,
			check: func(t *testing.T, c Config) {
				if c.Outbound[0].Name != "outbound" {
					t.Errorf("name %q, want outbound", c.Outbound[0].Name)
				}
			},
		},
		{
			name: "message size limit given, and defaulted",
			yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k, allowlist: a, maxMessageSize: 1048576}\noutbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k}\n",
			check: func(t *testing.T, c Config) {
				if c.Inbound[0].MaxMessageSize != 1<<20 || c.Outbound[0].MaxMessageSize != DefaultMaxMessageSize {
					t.Errorf("maxMessageSize %d and %d, want %d and the default %d", c.Inbound[0].MaxMessageSize, c.Outbound[0].MaxMessageSize, 1<<20, DefaultMaxMessageSize)
				}
			},
		},
		{name: "message size limit near the int64 maximum", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k, allowlist: a, maxMessageSize: 9223372036854775000}\n", wantErr: "route inbound: maxMessageSize 9223372036854775000: at most 1073741824 bytes (1 GiB)"},
		{name: "message size limit just over 1 GiB", yaml: "outbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k, maxMessageSize: 1073741825}\n", wantErr: "route outbound: maxMessageSize 1073741825: at most 1073741824 bytes"},
		{
			name: "message size limit of exactly 1 GiB",
			yaml: "outbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k, maxMessageSize: 1073741824}\n",
			check: func(t *testing.T, c Config) {
				if c.Outbound[0].MaxMessageSize != MaxMessageSizeLimit {
					t.Errorf("maxMessageSize %d, want %d", c.Outbound[0].MaxMessageSize, MaxMessageSizeLimit)
				}
			},
		},
		{name: "negative message size limit", yaml: "outbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k, maxMessageSize: -1}\n", wantErr: "maxMessageSize -1: want a positive number of bytes"},
		{name: "no routes", yaml: "admin: :9901\n", wantErr: "no routes"},
		{name: "unknown field", yaml: "inbound:\n  - listn: 1.2.3.4:5\n", wantErr: "listn"},
		{name: "bad mode", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k, allowlist: a, mode: lax}\n", wantErr: "mode"},
		{name: "missing allowlist", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k}\n", wantErr: "allowlist"},
		{name: "missing keys", yaml: "outbound:\n  - {listen: ':1', server: 'h:2', serverKey: x}\n", wantErr: "keys"},
		{name: "missing server key", yaml: "outbound:\n  - {listen: ':1', server: 'h:2', keys: k}\n", wantErr: "server key"},
		{name: "address without port", yaml: "inbound:\n  - {listen: '0.0.0.0', app: ':2', keys: k, allowlist: a}\n", wantErr: "listen"},
		{name: "app port out of range", yaml: "inbound:\n  - {listen: ':1', app: '127.0.0.1:99999', keys: k, allowlist: a}\n", wantErr: `route inbound: app: address "127.0.0.1:99999": port "99999": want a number from 1 to 65535`},
		{name: "app port not a number", yaml: "inbound:\n  - {listen: ':1', app: 'localhost:abc', keys: k, allowlist: a}\n", wantErr: `route inbound: app: address "localhost:abc": port "abc"`},
		{name: "app port zero", yaml: "inbound:\n  - {listen: ':1', app: '127.0.0.1:0', keys: k, allowlist: a}\n", wantErr: `route inbound: app: address "127.0.0.1:0": port "0": want a number from 1 to 65535`},
		{name: "server port out of range", yaml: "outbound:\n  - {listen: ':3', server: 'h:65536', serverKey: s, keys: k}\n", wantErr: `route outbound: server: address "h:65536": port "65536"`},
		{name: "server port zero", yaml: "outbound:\n  - {listen: ':3', server: 'tcp://h:0', serverKey: s, keys: k}\n", wantErr: `route outbound: server: address "tcp://h:0"`},
		{name: "listen port out of range", yaml: "outbound:\n  - {listen: '127.0.0.1:70000', server: 'h:2', serverKey: s, keys: k}\n", wantErr: `route outbound: listen: address "127.0.0.1:70000": port "70000": want a number from 0 to 65535`},
		{name: "admin port not a number", yaml: "admin: ':metrics'\noutbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k}\n", wantErr: `admin: address ":metrics": port "metrics"`},
		{name: "other transport", yaml: "inbound:\n  - {listen: 'ipc:///tmp/x', app: ':2', keys: k, allowlist: a}\n", wantErr: "tcp://"},
		{name: "same listen address twice", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k, allowlist: a}\n  - {listen: ':1', app: ':3', keys: k, allowlist: a}\n", wantErr: "also route"},
		{name: "same name twice", yaml: "inbound:\n  - {name: x, listen: ':1', app: ':2', keys: k, allowlist: a}\noutbound:\n  - {name: x, listen: ':3', server: 'h:2', serverKey: s, keys: k}\n", wantErr: "used twice"},
		{name: "bad duration", yaml: "reloadInterval: soon\noutbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k}\n", wantErr: "duration"},
		{name: "not yaml", yaml: "inbound: [", wantErr: "parsing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:5555", "127.0.0.1:5555", true},
		{"tcp://127.0.0.1:5555", "127.0.0.1:5555", true},
		{"tcp://*:5555", ":5555", true},
		{":5555", ":5555", true},
		{"[::1]:5555", "[::1]:5555", true},
		{"", "", false},
		{"localhost", "", false},
		{"udp://1.2.3.4:5", "", false},
		{"1.2.3.4:", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeAddr(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeAddr(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestNormalizeAddrPorts checks the port: a number within range, 0 (any
// free port) only for an address to listen on, never a name or a sign.
func TestNormalizeAddrPorts(t *testing.T) {
	tests := []struct {
		in           string
		listen, dial bool // accepted by NormalizeAddr, NormalizeDialAddr
	}{
		{"127.0.0.1:1", true, true},
		{"127.0.0.1:65535", true, true},
		{"tcp://collector.monitoring.svc:5555", true, true},
		{"127.0.0.1:0", true, false},
		{"tcp://*:0", true, false},
		{":0", true, false},
		{"127.0.0.1:65536", false, false},
		{"127.0.0.1:99999", false, false},
		{"127.0.0.1:100000", false, false},
		{"host:abc", false, false},
		{"host:http", false, false},
		{"host:-1", false, false},
		{"host:+80", false, false},
		{"host:5e3", false, false},
		{"[::1]:99999", false, false},
	}
	for _, tt := range tests {
		if _, err := NormalizeAddr(tt.in); (err == nil) != tt.listen {
			t.Errorf("NormalizeAddr(%q): err = %v, want accepted=%v", tt.in, err, tt.listen)
		}
		_, err := NormalizeDialAddr(tt.in)
		if (err == nil) != tt.dial {
			t.Errorf("NormalizeDialAddr(%q): err = %v, want accepted=%v", tt.in, err, tt.dial)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("NormalizeDialAddr(%q): error %q is not one line", tt.in, err)
		}
	}
}
