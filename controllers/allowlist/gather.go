package allowlist

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// gathered is what a server admits: the allowlist files.
type gathered struct {
	files map[string]fileSpec
	// problems are keys that could not be admitted (malformed raw keys).
	problems []string
}

// listClients lists, read-only from the cache, the CurveClients a selection
// could hold, into add.
func listClients(ctx context.Context, r client.Reader, s selection, add func(*v1alpha1.CurveClient)) error {
	if !s.active {
		return nil
	}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if s.clients != nil {
		opts = append(opts, client.MatchingLabelsSelector{Selector: s.clients})
	}
	var namespaces []string
	switch {
	case s.onlyNamespace != "":
		namespaces = []string{s.onlyNamespace}
	case s.namespaces != nil:
		var nsList corev1.NamespaceList
		if err := r.List(ctx, &nsList, client.UnsafeDisableDeepCopy, client.MatchingLabelsSelector{Selector: s.namespaces}); err != nil {
			return fmt.Errorf("list namespaces: %w", err)
		}
		for _, ns := range nsList.Items {
			namespaces = append(namespaces, ns.Name)
		}
		if len(namespaces) == 0 {
			return nil
		}
	default:
		namespaces = []string{""} // every namespace
	}
	for _, ns := range namespaces {
		var list v1alpha1.CurveClientList
		o := opts
		if ns != "" {
			o = append(o[:len(o):len(o)], client.InNamespace(ns))
		}
		if err := r.List(ctx, &list, o...); err != nil {
			return fmt.Errorf("list CurveClients: %w", err)
		}
		for i := range list.Items {
			add(&list.Items[i])
		}
	}
	return nil
}

// gather collects the keys srv admits under pol.
func (r *ServerReconciler) gather(ctx context.Context, srv *v1alpha1.CurveServer, pol *Policy, nsl *NamespaceLabels) (*gathered, error) {
	candidates := map[types.NamespacedName]*v1alpha1.CurveClient{}
	add := func(cc *v1alpha1.CurveClient) {
		candidates[types.NamespacedName{Namespace: cc.Namespace, Name: cc.Name}] = cc
	}
	var referrers v1alpha1.CurveClientList
	if err := r.Client.List(ctx, &referrers, client.UnsafeDisableDeepCopy,
		client.MatchingFields{ServerRefIndex: RefKey(srv.Namespace, srv.Name)}); err != nil {
		return nil, fmt.Errorf("list CurveClients naming %s/%s: %w", srv.Namespace, srv.Name, err)
	}
	for i := range referrers.Items {
		add(&referrers.Items[i])
	}
	if err := listClients(ctx, r.Client, pol.own, add); err != nil {
		return nil, err
	}
	for _, g := range pol.grants {
		if err := listClients(ctx, r.Client, g.clients, add); err != nil {
			return nil, err
		}
	}

	g := &gathered{files: make(map[string]fileSpec, len(candidates)+len(pol.ownKeys))}
	for _, cc := range candidates {
		if cc.DeletionTimestamp != nil || cc.Status.PublicKey == "" {
			continue
		}
		key, err := keygen.ParsePublicKey(cc.Status.PublicKey)
		if err != nil {
			continue // the keys controller reports a bad key; never admit it
		}
		nsLabels, err := nsl.Get(ctx, cc.Namespace)
		if err != nil {
			return nil, err
		}
		grant, ok := pol.Admit(cc, nsLabels)
		if !ok {
			continue
		}
		addClientFiles(g.files, cc, key, grant)
	}
	addRaw := func(keys []v1alpha1.NamedPublicKey, grant string) {
		for _, k := range keys {
			key, err := keygen.ParsePublicKey(string(k.Key))
			if err != nil {
				g.problems = append(g.problems, fmt.Sprintf("%s key %q: %v", grant, k.Name, err))
				continue
			}
			file := filecontract.RawKeyFileName(key)
			if _, dup := g.files[file]; !dup {
				g.files[file] = fileSpec{key: key, identity: k.Name, grant: grant}
			}
		}
	}
	addRaw(pol.ownKeys, GrantServerPublicKeys)
	for _, gr := range pol.grants {
		addRaw(gr.Keys, ClusterGrant(gr.Name))
	}
	return g, nil
}

// addClientFiles adds the allowlist files of cc, admitted under grant with
// current key key: that key's file and its previous and next keys' files.
func addClientFiles(files map[string]fileSpec, cc *v1alpha1.CurveClient, key keygen.PublicKey, grant string) {
	identity := filecontract.Identity(cc.Namespace, cc.Name)
	files[filecontract.ClientKeyFileName(cc.Namespace, cc.Name)] = fileSpec{key: key, identity: identity, grant: grant}
	for _, extra := range clientExtraKeys(cc) {
		if extra.key == key {
			continue
		}
		files[extra.file] = fileSpec{key: extra.key, identity: identity, grant: grant, until: extra.until}
	}
}

// extraKey is a client key besides its current one: previous or next.
type extraKey struct {
	file  string
	key   keygen.PublicKey
	until string
}

// clientExtraKeys returns the previous key (during the client's rotation
// overlap, until lastRotationTime + overlap when both are known) and the
// next key (before the client switches to it) from a CurveClient's status.
// Malformed keys are left out.
func clientExtraKeys(cc *v1alpha1.CurveClient) []extraKey {
	var out []extraKey
	if k, err := keygen.ParsePublicKey(cc.Status.PreviousPublicKey); err == nil {
		e := extraKey{file: filecontract.PreviousClientKeyFileName(cc.Namespace, cc.Name), key: k}
		if t := cc.Status.LastRotationTime; t != nil && cc.Spec.Rotation != nil && cc.Spec.Rotation.Overlap != nil {
			e.until = t.Add(cc.Spec.Rotation.Overlap.Duration).UTC().Format(time.RFC3339)
		}
		out = append(out, e)
	}
	if k, err := keygen.ParsePublicKey(cc.Status.NextPublicKey); err == nil {
		out = append(out, extraKey{file: filecontract.NextClientKeyFileName(cc.Namespace, cc.Name), key: k})
	}
	return out
}

// nsLabelsOf is a convenience for handlers: the labels of one namespace.
func nsLabelsOf(ctx context.Context, r client.Reader, name string) labels.Set {
	l, err := NewNamespaceLabels(r).Get(ctx, name)
	if err != nil {
		return nil
	}
	return l
}
