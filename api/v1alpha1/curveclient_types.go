package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CurveClientSpec is the desired state of a CurveClient.
type CurveClientSpec struct {
	// SecretName is the Secret (in the CurveClient's namespace) that holds
	// the client's keypair: created and kept up to date by zmqauth, of type
	// zmqauth.io/curve, with public.key and secret.key (Z85), curve.key and
	// curve.key_secret (zcert files pyzmq and CZMQ load), and one file per
	// server in spec.servers holding that server's public key.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')`,message="secretName must be a valid Secret name (DNS-1123 subdomain): lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	SecretName string `json:"secretName"`

	// Rotation is the key rotation schedule. Defaults to a period of 720h
	// with an overlap of 24h.
	// +kubebuilder:default={}
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`

	// Servers are the CurveServers this client connects to. zmqauth copies
	// each server's public key into the client's Secret, and the injected
	// sidecar relays localhost:localPort to endpoint with CURVE. A server
	// may be listed more than once, once per port it is dialed on.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(a, !has(a.localPort) || self.exists_one(b, has(b.localPort) && b.localPort == a.localPort))",message="localPort must be unique across servers: each route needs its own port on localhost"
	// +optional
	Servers []ServerReference `json:"servers,omitempty"`
}

// ServerReference names a CurveServer a client connects to and, when the
// sidecar does the connecting, where and from which local port.
// +kubebuilder:validation:XValidation:rule="has(self.endpoint) == has(self.localPort)",message="endpoint and localPort go together: set both to route the connection through the sidecar, or neither when the application does CURVE itself with the mounted keys"
type ServerReference struct {
	// Name is the CurveServer's name.
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,message="name must be the name of a CurveServer (a DNS-1123 label): lowercase letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name"`

	// Namespace is the CurveServer's namespace; defaults to the
	// CurveClient's own. A server in another namespace admits this client
	// only if its spec.clients or a ClusterCurveGrant selects it.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,message="namespace must be a namespace name (a DNS-1123 label): lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Endpoint is the address the sidecar dials: host:port, optionally
	// prefixed tcp://, e.g. "telemetry-bus.monitoring.svc:5555" or
	// "tcp://[fd00::7]:5555". The host is a DNS name or an IP address
	// (IPv6 in brackets).
	// +kubebuilder:validation:MaxLength=300
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^(tcp://)?([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\]):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$')`,message="endpoint must be host:port or tcp://host:port with a port from 1 to 65535, e.g. telemetry-bus.monitoring.svc:5555 or tcp://[fd00::7]:5555"
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// LocalPort is the port on localhost where the sidecar accepts the
	// application's connections (ZMTP NULL, no CURVE) for this server; the
	// application connects to tcp://127.0.0.1:localPort.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	LocalPort int32 `json:"localPort,omitempty"`
}

// ServerAuthorization is, for one server a client names, whether the server
// admits the client and which server key the client was given.
type ServerAuthorization struct {
	// Name is the CurveServer's name.
	Name string `json:"name"`

	// Namespace is the CurveServer's namespace.
	Namespace string `json:"namespace"`

	// Authorized is true when the client's current public key is on the
	// server's allowlist.
	Authorized bool `json:"authorized"`

	// ServerPublicKey is the server public key (Z85) written to the client's
	// Secret.
	// +optional
	ServerPublicKey string `json:"serverPublicKey,omitempty"`

	// Reason says in one CamelCase word why the client is not authorized:
	// ServerNotFound, ServerKeyPending, NotSelected or AllowlistPending.
	// Empty when authorized.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message explains Reason for a human and says what to do about it.
	// +optional
	Message string `json:"message,omitempty"`
}

// CurveClientStatus is the observed state of a CurveClient, written by
// zmqauth.
type CurveClientStatus struct {
	// PublicKey is the client's current public key (Z85), the key servers
	// admit.
	// +optional
	PublicKey string `json:"publicKey,omitempty"`

	// PreviousPublicKey is the key this client used before its last
	// rotation (Z85). Servers keep admitting it until the overlap ends, so
	// connections made with it before the rotation reached the client's pod
	// keep working.
	// +optional
	PreviousPublicKey string `json:"previousPublicKey,omitempty"`

	// NextPublicKey is the key this client will switch to at its next
	// rotation step (Z85). Servers admit it before the client uses it, so a
	// rotation never presents a key a server does not know yet.
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`

	// KeyRevision counts the keypairs this client has had: 1 for the first,
	// one more at every rotation.
	// +optional
	KeyRevision int64 `json:"keyRevision,omitempty"`

	// LastRotationTime is when the current keypair was made.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`

	// NextRotationTime is when the current keypair is due to be replaced.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`

	// LastRotationRequest is the value of the zmqauth.io/rotate annotation
	// that the last on-demand rotation answered. A rotation is requested by
	// setting the annotation to a value different from this one.
	// +optional
	LastRotationRequest string `json:"lastRotationRequest,omitempty"`

	// Servers reports, per server in spec.servers, whether it admits this
	// client.
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +optional
	Servers []ServerAuthorization `json:"servers,omitempty"`

	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready sums up the others; KeyReady, Authorized and
	// Rotating give detail.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// CurveClient is a workload that connects to CurveServers. zmqauth keeps its
// keypair in a Secret, rotates it on schedule, puts the public keys of the
// servers it names into that Secret and gets its key onto their allowlists.
// Pods act as a CurveClient through the zmqauth.io/client annotation.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=ccli,categories=zmqauth
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Public Key",type=string,JSONPath=`.status.publicKey`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.keyRevision`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,format=date-time,JSONPath=`.status.nextRotationTime`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secretName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule=`self.metadata.name.size() <= 63 && self.metadata.name.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,message="a CurveClient name must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (it is used in label values and allowlist file names)"
type CurveClient struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the client.
	// +required
	Spec CurveClientSpec `json:"spec"`

	// Status is the observed state of the client.
	// +optional
	Status CurveClientStatus `json:"status,omitempty"`
}

// CurveClientList is a list of CurveClients.
//
// +kubebuilder:object:root=true
type CurveClientList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the CurveClients.
	Items []CurveClient `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CurveClient{}, &CurveClientList{})
}
