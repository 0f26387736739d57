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
		{name: "negative message size limit", yaml: "outbound:\n  - {listen: ':3', server: 'h:2', serverKey: s, keys: k, maxMessageSize: -1}\n", wantErr: "maxMessageSize -1: want a positive number of bytes"},
		{name: "no routes", yaml: "admin: :9901\n", wantErr: "no routes"},
		{name: "unknown field", yaml: "inbound:\n  - listn: 1.2.3.4:5\n", wantErr: "listn"},
		{name: "bad mode", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k, allowlist: a, mode: lax}\n", wantErr: "mode"},
		{name: "missing allowlist", yaml: "inbound:\n  - {listen: ':1', app: ':2', keys: k}\n", wantErr: "allowlist"},
		{name: "missing keys", yaml: "outbound:\n  - {listen: ':1', server: 'h:2', serverKey: x}\n", wantErr: "keys"},
		{name: "missing server key", yaml: "outbound:\n  - {listen: ':1', server: 'h:2', keys: k}\n", wantErr: "server key"},
		{name: "address without port", yaml: "inbound:\n  - {listen: '0.0.0.0', app: ':2', keys: k, allowlist: a}\n", wantErr: "listen"},
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
