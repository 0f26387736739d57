package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/zmqauth/zmqauth/keygen"
	"github.com/zmqauth/zmqauth/zap/allowlist"
	"github.com/zmqauth/zmqauth/zap/keyfiles"
	"github.com/zmqauth/zmqauth/zap/kubesource"
	"github.com/zmqauth/zmqauth/zap/watch"
)

// DefaultSourceTimeout is how long Open waits for a Secret or ConfigMap
// named as a source to exist when Config.SourceTimeout is zero.
const DefaultSourceTimeout = time.Minute

// origin is where a route reads one input: a directory or file on disk
// (watched with zap/watch), an object in the Kubernetes API (watched with
// zap/kubesource), or, for a server key only, the key itself.
type origin struct {
	path    string             // on disk
	obj     *kubesource.Object // in the API
	dataKey string             // with obj: the one file read from it
	literal *keygen.PublicKey  // a server key given as Z85
}

// String names the origin in logs and errors.
func (o origin) String() string {
	switch {
	case o.obj != nil && o.dataKey != "":
		r := o.obj.Ref()
		r.Key = o.dataKey
		return r.String()
	case o.obj != nil:
		return o.obj.Ref().String()
	case o.literal != nil:
		return "the key given"
	}
	return o.path
}

// serverKeys loads a server keypair: keyfiles.LoadServerKeys for a
// directory, its Secret twin for an object.
func (o origin) serverKeys() (keyfiles.ServerKeys, error) {
	if o.obj == nil {
		return keyfiles.LoadServerKeys(o.path)
	}
	data, err := o.obj.Data()
	if err != nil {
		return keyfiles.ServerKeys{}, err
	}
	keys, err := keyfiles.ServerKeysFromData(data)
	if err != nil {
		return keyfiles.ServerKeys{}, fmt.Errorf("%s: %w", o, err)
	}
	return keys, nil
}

// clientKeys loads a client keypair.
func (o origin) clientKeys() (keyfiles.KeyPair, error) {
	if o.obj == nil {
		return keyfiles.LoadClientKeys(o.path)
	}
	data, err := o.obj.Data()
	if err != nil {
		return keyfiles.KeyPair{}, err
	}
	kp, err := keyfiles.ClientKeysFromData(data)
	if err != nil {
		return keyfiles.KeyPair{}, fmt.Errorf("%s: %w", o, err)
	}
	return kp, nil
}

// allowlist loads an allowlist.
func (o origin) allowlist() (*allowlist.Allowlist, error) {
	if o.obj == nil {
		return allowlist.LoadDir(o.path)
	}
	data, err := o.obj.Data()
	if err != nil {
		return nil, err
	}
	list, err := allowlist.FromData(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return list, nil
}

// publicKey loads a server's public key.
func (o origin) publicKey() (keygen.PublicKey, error) {
	switch {
	case o.literal != nil:
		return *o.literal, nil
	case o.obj == nil:
		return keyfiles.ReadPublicKey(o.path)
	}
	data, err := o.obj.Data()
	if err != nil {
		return keygen.PublicKey{}, err
	}
	file, ok := data[o.dataKey]
	if !ok {
		return keygen.PublicKey{}, fmt.Errorf("%s: %w: %s has no data key %q", o, keyfiles.ErrMissing, o.obj.Ref(), o.dataKey)
	}
	k, err := keyfiles.PublicKeyFromData(o.dataKey, file)
	if err != nil {
		return keygen.PublicKey{}, fmt.Errorf("%s: %w", o.obj.Ref(), err)
	}
	return k, nil
}

// watch calls reload at start and after every change until ctx ends, as
// zap/watch.Dir does (interval is its re-check period; trouble with a file
// watch goes to log); a literal never changes.
func (o origin) watch(ctx context.Context, interval time.Duration, reload func() error, onError func(error), log *slog.Logger) {
	switch {
	case o.obj != nil:
		o.obj.Run(ctx, reload, onError)
	case o.literal != nil:
	default:
		dir := o.path
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			dir = filepath.Dir(dir)
		}
		watch.Dir(ctx, dir, interval, reload, onError, log)
	}
}

// sources resolves the Kubernetes API references in a configuration to
// watched objects, one per object however many routes name it.
type sources struct {
	kube      kubernetes.Interface
	namespace string
	ctx       context.Context // the watches' lifetime
	objects   map[kubesource.Ref]*kubesource.Object
	dataKeys  map[kubesource.Ref][]string // the single files read from each
}

// resolve returns the origin of a route's input written as s: a reference
// to an object in the API, or a path (or, when keyLiteral, perhaps a Z85
// key).
func (src *sources) resolve(s string, keyLiteral bool) (origin, error) {
	if !kubesource.IsRef(s) {
		if keyLiteral {
			if st, err := os.Stat(s); err != nil || !st.Mode().IsRegular() {
				k, err := keyfiles.ReadPublicKey(s)
				if err != nil {
					return origin{}, err
				}
				return origin{literal: &k}, nil
			}
		}
		return origin{path: s}, nil
	}
	ref, err := kubesource.ParseRef(s)
	if err != nil {
		return origin{}, err
	}
	if src.kube == nil {
		return origin{}, fmt.Errorf("%s: reading from the Kubernetes API needs a cluster connection: run in a pod, or give --kubeconfig", ref)
	}
	if ref, err = ref.WithNamespace(src.namespace); err != nil {
		return origin{}, err
	}
	key := ref.Object()
	obj, ok := src.objects[key]
	if !ok {
		obj = kubesource.Watch(src.ctx, src.kube, key)
		src.objects[key] = obj
	}
	if ref.Key != "" {
		src.dataKeys[key] = append(src.dataKeys[key], ref.Key)
	}
	return origin{obj: obj, dataKey: ref.Key}, nil
}

// wait waits until every object exists with the files read from it (a
// client's Secret gets its server keys shortly after its keypair), for at
// most timeout in all.
func (src *sources) wait(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	for ref, obj := range src.objects {
		if _, err := obj.WaitForData(ctx, timeout, src.dataKeys[ref]...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
