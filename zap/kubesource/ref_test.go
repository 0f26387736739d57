package kubesource

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr string
	}{
		{in: "secret:keys", want: Ref{Kind: Secret, Name: "keys"}},
		{in: "secret:demo/keys", want: Ref{Kind: Secret, Namespace: "demo", Name: "keys"}},
		{in: "configmap:demo/collector-allowlist", want: Ref{Kind: ConfigMap, Namespace: "demo", Name: "collector-allowlist"}},
		{in: "secret:demo/keys#server.monitoring.collector.key", want: Ref{Kind: Secret, Namespace: "demo", Name: "keys", Key: "server.monitoring.collector.key"}},
		{in: "pod:demo/x", wantErr: "want secret:[NAMESPACE/]NAME"},
		{in: "secret:", wantErr: "name is missing"},
		{in: "secret:demo/", wantErr: "name is missing"},
		{in: "secret:Demo/keys", wantErr: `namespace "Demo"`},
		{in: "secret:demo/Keys", wantErr: `name "Keys"`},
		{in: "secret:demo/keys#", wantErr: "data key after # is empty"},
		{in: "secret:demo/keys#a/b", wantErr: `data key "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if !IsRef(tt.in) || got.String() != tt.in {
				t.Errorf("IsRef %v, String %q; want true, %q", IsRef(tt.in), got.String(), tt.in)
			}
		})
	}
	for _, notRef := range []string{"/var/run/zmqauth/keys", "rq-At5Z1ooRSy_OJ7t:-[S0)%KDYRAmT9fj>^3bEn", "secrets/keys"} {
		if IsRef(notRef) {
			t.Errorf("IsRef(%q) = true; want false", notRef)
		}
	}
}

func TestWithNamespace(t *testing.T) {
	r := Ref{Kind: Secret, Name: "keys"}
	if got, err := r.WithNamespace("demo"); err != nil || got.Namespace != "demo" {
		t.Errorf("WithNamespace(demo) = %+v, %v", got, err)
	}
	if _, err := r.WithNamespace(""); !errors.Is(err, ErrNoNamespace) {
		t.Errorf("WithNamespace(\"\") error = %v; want ErrNoNamespace", err)
	}
	r.Namespace = "other"
	if got, _ := r.WithNamespace("demo"); got.Namespace != "other" {
		t.Errorf("a given namespace was replaced: %+v", got)
	}
}
