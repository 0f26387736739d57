// Package v1alpha1 is the v1alpha1 version of the zmqauth.io API: the custom
// resources through which Kubernetes generates, distributes and rotates
// ZeroMQ CURVE keys and decides which clients may connect to which servers.
//
//   - CurveServer: a service that accepts CURVE connections, its keypair
//     Secret, its rotation schedule, the clients it admits and the ports its
//     sidecar terminates.
//   - CurveClient: a workload that connects to CurveServers, its keypair
//     Secret, its rotation schedule and the servers it dials.
//   - ClusterCurveGrant: cluster-wide policy letting a set of clients reach a
//     set of servers across namespaces.
//
// +kubebuilder:object:generate=true
// +groupName=zmqauth.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "zmqauth.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
