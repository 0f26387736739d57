package kubesource

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Kind is the kind of object a Ref names.
type Kind string

const (
	// Secret is a core/v1 Secret (a keypair Secret).
	Secret Kind = "secret"
	// ConfigMap is a core/v1 ConfigMap (an allowlist, or published server
	// keys).
	ConfigMap Kind = "configmap"
)

// Ref names one object in the API and, optionally, one data key in it:
//
//	secret:NAME                    the Secret NAME in the default namespace
//	secret:NAMESPACE/NAME          the Secret NAME in NAMESPACE
//	configmap:NAMESPACE/NAME       a ConfigMap
//	secret:NAMESPACE/NAME#KEY      one file of it (for a server's public key)
type Ref struct {
	Kind      Kind
	Namespace string // "" until defaulted
	Name      string
	Key       string // "" for the whole object
}

// IsRef reports whether s is written as a Ref (starts with "secret:" or
// "configmap:") rather than as a path or a key.
func IsRef(s string) bool {
	return strings.HasPrefix(s, string(Secret)+":") || strings.HasPrefix(s, string(ConfigMap)+":")
}

// ParseRef parses a Ref written as IsRef expects. The namespace may be left
// out; WithNamespace fills it in.
func ParseRef(s string) (Ref, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || (Kind(kind) != Secret && Kind(kind) != ConfigMap) {
		return Ref{}, fmt.Errorf("%q: want secret:[NAMESPACE/]NAME or configmap:[NAMESPACE/]NAME", s)
	}
	r := Ref{Kind: Kind(kind)}
	rest, r.Key, _ = strings.Cut(rest, "#")
	if ns, name, ok := strings.Cut(rest, "/"); ok {
		r.Namespace, r.Name = ns, name
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return Ref{}, fmt.Errorf("%q: namespace %q: %s", s, ns, strings.Join(errs, "; "))
		}
	} else {
		r.Name = rest
	}
	if r.Name == "" {
		return Ref{}, fmt.Errorf("%q: the %s's name is missing", s, kind)
	}
	if errs := validation.IsDNS1123Subdomain(r.Name); len(errs) > 0 {
		return Ref{}, fmt.Errorf("%q: name %q: %s", s, r.Name, strings.Join(errs, "; "))
	}
	if strings.Contains(s, "#") {
		if r.Key == "" {
			return Ref{}, fmt.Errorf("%q: the data key after # is empty", s)
		}
		if errs := validation.IsConfigMapKey(r.Key); len(errs) > 0 {
			return Ref{}, fmt.Errorf("%q: data key %q: %s", s, r.Key, strings.Join(errs, "; "))
		}
	}
	return r, nil
}

// ErrNoNamespace is returned by WithNamespace for a Ref without a namespace
// when no default is known.
var ErrNoNamespace = errors.New("no namespace given and none known: write it as KIND:NAMESPACE/NAME, or set POD_NAMESPACE")

// WithNamespace returns r with namespace ns when r has none.
func (r Ref) WithNamespace(ns string) (Ref, error) {
	if r.Namespace != "" {
		return r, nil
	}
	if ns == "" {
		return Ref{}, fmt.Errorf("%s: %w", r, ErrNoNamespace)
	}
	r.Namespace = ns
	return r, nil
}

// Object returns r without its data key: the object it is in.
func (r Ref) Object() Ref {
	r.Key = ""
	return r
}

// String writes r as ParseRef reads it.
func (r Ref) String() string {
	s := string(r.Kind) + ":"
	if r.Namespace != "" {
		s += r.Namespace + "/"
	}
	s += r.Name
	if r.Key != "" {
		s += "#" + r.Key
	}
	return s
}
