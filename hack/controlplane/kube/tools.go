//go:build tools

// Package kube pins the Kubernetes binaries built from Go modules, so no
// prebuilt binary is downloaded: kube-apiserver and kubectl for the tests'
// control plane (hack/controlplane.sh), and the node components a one-node
// cluster runs pods with (hack/node-deps.sh, internal/node).
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
