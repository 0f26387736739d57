package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServerMode says what a server's sidecar does with a client whose key is
// not on the allowlist.
// +kubebuilder:validation:Enum=enforce;audit
type ServerMode string

const (
	// ModeEnforce refuses connections from keys not on the allowlist. This is
	// the default.
	ModeEnforce ServerMode = "enforce"
	// ModeAudit accepts and relays connections from keys not on the
	// allowlist, but logs and counts them, so zmqauth can be rolled out on a
	// live service before enforcing. Connections are still CURVE encrypted
	// and clients must still know the server's public key.
	ModeAudit ServerMode = "audit"
)

// CurveServerSpec is the desired state of a CurveServer.
type CurveServerSpec struct {
	// SecretName is the Secret (in the CurveServer's namespace) that holds
	// the server's keypair: created and kept up to date by zmqauth, of type
	// zmqauth.io/curve, with public.key and secret.key (Z85) and curve.key
	// and curve.key_secret (zcert files pyzmq and CZMQ load). While a
	// rotation overlap lasts it also holds previous-secret.key and
	// previous-public.key.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')`,message="secretName must be a valid Secret name (DNS-1123 subdomain): lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	SecretName string `json:"secretName"`

	// Rotation is the key rotation schedule. Defaults to a period of 720h
	// with an overlap of 24h.
	// +kubebuilder:default={}
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`

	// Clients admits clients beyond the CurveClients in this namespace that
	// name this server in spec.servers, which are always admitted.
	// CurveClients in other namespaces that name this server are admitted
	// only when selected here or by a ClusterCurveGrant.
	// +optional
	Clients *ServerClients `json:"clients,omitempty"`

	// Publish copies this server's public key into a ConfigMap in every
	// selected namespace, for applications that read the key themselves
	// rather than through a CurveClient.
	// +optional
	Publish *PublishSpec `json:"publish,omitempty"`

	// Ports are the ports the injected sidecar terminates: it accepts CURVE
	// connections on port and relays each authenticated connection, without
	// encryption, to the application on localhost:appPort. Leave empty when
	// the application does CURVE itself with the mounted keys and allowlist.
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.name == p.name))",message="port names must be unique"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !self.exists(q, q.port == p.appPort && q.port != p.port))",message="an appPort must not be the port of another entry: the sidecar and the application share the pod's network namespace, so each port can be listened on once"
	// +optional
	Ports []ServerPort `json:"ports,omitempty"`

	// Mode is what the sidecar does with clients whose key is not on the
	// allowlist: "enforce" (the default) refuses them, "audit" lets them in
	// but logs and counts them.
	// +kubebuilder:default=enforce
	// +optional
	Mode ServerMode `json:"mode,omitempty"`
}

// ServerClients selects the clients a CurveServer admits besides the
// CurveClients that name it. The selectors combine as in a NetworkPolicy
// peer: with both set, CurveClients matching selector in namespaces matching
// namespaceSelector; with only selector, matching CurveClients in the
// server's namespace; with only namespaceSelector, every CurveClient in the
// matching namespaces. An empty selector ({}) matches everything; an omitted
// one matches as described.
type ServerClients struct {
	// Selector selects CurveClients by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// NamespaceSelector selects the namespaces whose CurveClients are
	// admitted, by namespace labels.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// PublicKeys admits clients that are not CurveClients, such as processes
	// outside the cluster, by their Z85 public keys. Names must be unique.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	PublicKeys []NamedPublicKey `json:"publicKeys,omitempty"`
}

// PublishSpec says where a server's public key is published.
type PublishSpec struct {
	// NamespaceSelector selects the namespaces, by their labels, that receive
	// a ConfigMap named <server namespace>.<server name>.curve-public holding
	// this server's public key (public.key in Z85 and server.key as a zcert
	// public certificate). {} selects every namespace.
	// +required
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ServerPort is one port the sidecar terminates for the application.
// +kubebuilder:validation:XValidation:rule="self.appPort != self.port",message="appPort must differ from port: the sidecar listens on port and the application on appPort in the same pod network namespace",fieldPath=".appPort"
type ServerPort struct {
	// Name names the port in metrics, logs and the sidecar's container
	// ports: an IANA service name of at most 15 lowercase letters, digits
	// and '-', with at least one letter, e.g. "pub" or "zmq-rep".
	// +required
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches(r'[a-z]') && !self.contains('--')`,message="port name must be an IANA service name: at most 15 lowercase letters, digits and '-', with at least one letter and no '--', e.g. \"pub\" or \"zmq-rep\""
	Name string `json:"name"`

	// Port is the public port the sidecar accepts CURVE connections on; the
	// port clients dial.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// AppPort is the port the application listens on, on localhost, without
	// CURVE (ZMTP NULL mechanism). It must differ from every port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	AppPort int32 `json:"appPort"`
}

// CurveServerStatus is the observed state of a CurveServer, written by
// zmqauth.
type CurveServerStatus struct {
	// PublicKey is the server's current public key (Z85), the key clients
	// must use.
	// +optional
	PublicKey string `json:"publicKey,omitempty"`

	// PreviousPublicKey is the key replaced by the last rotation, still
	// accepted until the overlap ends; empty otherwise.
	// +optional
	PreviousPublicKey string `json:"previousPublicKey,omitempty"`

	// NextPublicKey is the key this server will switch to at its next
	// rotation step (Z85), staged while its sidecars learn to accept it;
	// clients are given it only at the switch.
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`

	// KeyRevision counts the keypairs this server has had: 1 for the first,
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

	// AuthorizedClients is the number of client keys on the allowlist.
	// +optional
	AuthorizedClients int32 `json:"authorizedClients,omitempty"`

	// AllowlistConfigMap is the ConfigMap (in the server's namespace) holding
	// the allowlist: one zcert public certificate per authorized key, the
	// directory layout pyzmq's configure_curve(location=...) loads.
	// +optional
	AllowlistConfigMap string `json:"allowlistConfigMap,omitempty"`

	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready sums up the others; KeyReady, AllowlistReady,
	// Published and Rotating give detail.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// CurveServer is a service that accepts ZeroMQ CURVE connections. zmqauth
// keeps its keypair in a Secret, rotates it on schedule, gives its public key
// to the clients that use it and keeps the allowlist of client keys it
// accepts. Pods act as a CurveServer through the zmqauth.io/server
// annotation.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=csrv,categories=zmqauth
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Public Key",type=string,JSONPath=`.status.publicKey`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.keyRevision`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,format=date-time,JSONPath=`.status.nextRotationTime`
// +kubebuilder:printcolumn:name="Clients",type=integer,JSONPath=`.status.authorizedClients`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`,priority=1
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secretName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule=`self.metadata.name.size() <= 63 && self.metadata.name.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,message="a CurveServer name must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (it is used in label values and derived object names)"
type CurveServer struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the server.
	// +required
	Spec CurveServerSpec `json:"spec"`

	// Status is the observed state of the server.
	// +optional
	Status CurveServerStatus `json:"status,omitempty"`
}

// CurveServerList is a list of CurveServers.
//
// +kubebuilder:object:root=true
type CurveServerList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the CurveServers.
	Items []CurveServer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CurveServer{}, &CurveServerList{})
}
