// Package kubesource watches one named Secret or ConfigMap through the
// Kubernetes API and hands its data to the sidecar, as zap/watch does for a
// mounted directory: for a sidecar that reads its keys and allowlist from the
// API (in a pod, with the service account, or from anywhere with a
// kubeconfig) instead of from volumes.
//
// Each Object runs a client-go informer restricted to one object by a
// metadata.name field selector, so the sidecar needs get, list and watch on
// that object only (RBAC resourceNames apply to such a list and watch). The
// last version seen stays available while the API server is unreachable.
package kubesource

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ErrNotFound is returned for an object that does not exist (yet, or any
// more).
var ErrNotFound = errors.New("not found")

// Object is the watched state of one Secret or ConfigMap.
type Object struct {
	ref Ref

	mu      sync.Mutex
	data    map[string][]byte // nil while the object does not exist
	version string            // its resourceVersion
	synced  bool              // the first list has completed
	lastErr error             // the last list or watch failure, until an event arrives
	changed chan struct{}     // closed and replaced at every change
}

// Watch starts watching the object ref names (its Key is ignored) and
// returns at once; the watch runs until ctx ends.
func Watch(ctx context.Context, client kubernetes.Interface, ref Ref) *Object {
	o := &Object{ref: ref.Object(), changed: make(chan struct{})}
	var lw *cache.ListWatch
	var example runtime.Object
	switch ref.Kind {
	case ConfigMap:
		api := client.CoreV1().ConfigMaps(ref.Namespace)
		example, lw = &corev1.ConfigMap{}, oneObject(ref.Name, api.List, api.Watch)
	default:
		api := client.CoreV1().Secrets(ref.Namespace)
		example, lw = &corev1.Secret{}, oneObject(ref.Name, api.List, api.Watch)
	}
	informer := cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{})
	_ = informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		o.mu.Lock()
		o.lastErr = err
		o.mu.Unlock()
	})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.set(obj) },
		UpdateFunc: func(_, obj any) { o.set(obj) },
		DeleteFunc: func(any) { o.set(nil) },
	})
	go informer.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
			o.mu.Lock()
			o.synced = true
			o.notifyLocked()
			o.mu.Unlock()
		}
	}()
	return o
}

// oneObject is a ListWatch of the one object called name, from a typed
// client's List and Watch.
func oneObject[L runtime.Object](name string, list func(context.Context, metav1.ListOptions) (L, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return list(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return watchFn(ctx, opts)
		},
	}
}

// set records a new version of the object (nil: deleted).
func (o *Object) set(obj any) {
	var data map[string][]byte
	var version string
	switch v := obj.(type) {
	case *corev1.Secret:
		data, version = maps.Clone(v.Data), v.ResourceVersion
		if data == nil {
			data = map[string][]byte{}
		}
	case *corev1.ConfigMap:
		data, version = make(map[string][]byte, len(v.Data)+len(v.BinaryData)), v.ResourceVersion
		for k, s := range v.Data {
			data[k] = []byte(s)
		}
		for k, b := range v.BinaryData {
			data[k] = b
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if data != nil && version == o.version {
		o.lastErr = nil // a relist or resync: the API answers, nothing changed
		return
	}
	o.data, o.version, o.lastErr = data, version, nil
	o.notifyLocked()
}

func (o *Object) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// Ref returns the object's reference.
func (o *Object) Ref() Ref { return o.ref }

// Data returns the object's data as last seen (file name to content; the
// caller must not modify it), or an error wrapping ErrNotFound when it does
// not exist, or while the first list has not completed.
func (o *Object) Data() (map[string][]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.data != nil {
		return o.data, nil
	}
	return nil, o.absentLocked()
}

// absentLocked explains why there is no data.
func (o *Object) absentLocked() error {
	switch {
	case o.lastErr != nil:
		return fmt.Errorf("%s: %w (last API error: %w)", o.ref, ErrNotFound, o.lastErr)
	case !o.synced:
		return fmt.Errorf("%s: %w: not listed yet", o.ref, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", o.ref, ErrNotFound)
}

// WaitForData waits until the object exists and holds every data key in
// keys, for at most timeout, and returns its data; else an error naming the
// object (and a missing key) and, when the API refused or failed to list
// it, why.
func (o *Object) WaitForData(ctx context.Context, timeout time.Duration, keys ...string) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		o.mu.Lock()
		data, changed := o.data, o.changed
		o.mu.Unlock()
		missing := ""
		for _, k := range keys {
			if _, ok := data[k]; !ok {
				missing = k
				break
			}
		}
		if data != nil && missing == "" {
			return data, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if data != nil {
				return nil, fmt.Errorf("waited %s: %s has no data key %q", timeout, o.ref, missing)
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			return nil, fmt.Errorf("waited %s: %w", timeout, o.absentLocked())
		}
	}
}

// Run calls reload once at start and again after every change of the
// object (a deletion included: reload then sees Data fail), until ctx ends.
// Calls never overlap; changes during a call coalesce into one more call.
// Errors from reload go to onError (which may be nil).
func (o *Object) Run(ctx context.Context, reload func() error, onError func(error)) {
	for {
		o.mu.Lock()
		changed := o.changed
		o.mu.Unlock()
		if err := reload(); err != nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
