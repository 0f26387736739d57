//go:build tools

// Package etcd pins the etcd server the tests run, so hack/controlplane.sh
// can build it from its Go module; no prebuilt binary is downloaded.
package etcd

import _ "go.etcd.io/etcd/server/v3"
