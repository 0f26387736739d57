//go:build tools

// Package kube pins the Kubernetes control-plane binaries the tests run
// (kube-apiserver and kubectl) so hack/controlplane.sh can build them from Go
// modules; no prebuilt binary is downloaded.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
