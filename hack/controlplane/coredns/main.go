// Command coredns is CoreDNS built from its Go module with only the plugins
// the one-node cluster (internal/node) needs: it answers cluster.local from
// the API server and forwards nothing, so pods resolve Service names and
// nothing outside the cluster.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
)

func main() {
	// The order CoreDNS runs plugins in, from its own list, cut to the
	// plugins imported above.
	dnsserver.Directives = []string{"bind", "errors", "cache", "kubernetes"}
	coremain.Run()
}
