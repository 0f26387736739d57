package allowlist

import (
	"k8s.io/apimachinery/pkg/types"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/keygen"
)

// RenderAllowlist returns the data of the allowlist ConfigMap the server
// controller writes for srv when it admits clients (by their status keys)
// under grant: the calls Reconcile makes (addClientFiles as gather does,
// render, withMode), without an API server.
func RenderAllowlist(srv *v1alpha1.CurveServer, clients []*v1alpha1.CurveClient, grant string) (map[string]string, error) {
	files := map[string]fileSpec{}
	for _, cc := range clients {
		key, err := keygen.ParsePublicKey(cc.Status.PublicKey)
		if err != nil {
			return nil, err
		}
		addClientFiles(files, cc, key, grant)
	}
	var r renderer
	c, err := r.render(types.NamespacedName{Namespace: srv.Namespace, Name: srv.Name}, files)
	if err != nil {
		return nil, err
	}
	c.withMode(string(serverMode(srv)))
	return c.data, nil
}
