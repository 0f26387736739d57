package allowlist

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// ServerRefIndex is the field index, on CurveClients, of the servers they
// name: one value "<namespace>/<name>" (RefKey) per server in spec.servers.
// The allowlist controller registers it; other controllers register the same
// extractor (ServerRefs) under their own index name.
const ServerRefIndex = "zmqauth.io/allowlist.server-refs"

// RefKey returns the index value of the CurveServer namespace/name.
func RefKey(namespace, name string) string { return namespace + "/" + name }

// ServerRefs returns the RefKey of every server a CurveClient names, once
// each, in spec order. A reference without a namespace names a server in
// the client's namespace.
func ServerRefs(cc *v1alpha1.CurveClient) []string {
	out := make([]string, 0, len(cc.Spec.Servers))
	seen := make(map[string]bool, len(cc.Spec.Servers))
	for _, ref := range cc.Spec.Servers {
		k := RefKey(RefNamespace(cc, ref), ref.Name)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// RefNamespace returns the namespace of the server a reference names.
func RefNamespace(cc *v1alpha1.CurveClient, ref v1alpha1.ServerReference) string {
	if ref.Namespace != "" {
		return ref.Namespace
	}
	return cc.Namespace
}

// NamesServer reports whether a CurveClient names the server namespace/name.
func NamesServer(cc *v1alpha1.CurveClient, namespace, name string) bool {
	for _, ref := range cc.Spec.Servers {
		if ref.Name == name && RefNamespace(cc, ref) == namespace {
			return true
		}
	}
	return false
}

// ExtractServerRefs is the field index extractor for ServerRefIndex.
func ExtractServerRefs(obj client.Object) []string {
	cc, ok := obj.(*v1alpha1.CurveClient)
	if !ok {
		return nil
	}
	return ServerRefs(cc)
}

// IndexServerRefs registers ExtractServerRefs under the index name field.
func IndexServerRefs(ctx context.Context, indexer client.FieldIndexer, field string) error {
	if err := indexer.IndexField(ctx, &v1alpha1.CurveClient{}, field, ExtractServerRefs); err != nil {
		return fmt.Errorf("index CurveClient %s: %w", field, err)
	}
	return nil
}
