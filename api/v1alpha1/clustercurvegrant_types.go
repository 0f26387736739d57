package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterCurveGrantSpec is the desired state of a ClusterCurveGrant: every
// client in clients is admitted by every server in servers.
type ClusterCurveGrantSpec struct {
	// Clients are the clients granted access.
	// +required
	Clients GrantClients `json:"clients"`

	// Servers are the servers that admit those clients.
	// +required
	Servers GrantServers `json:"servers"`
}

// GrantClients selects the clients of a ClusterCurveGrant: CurveClients by
// namespace and label, and raw public keys. CurveClients are selected when
// namespaceSelector or selector is set; an omitted one of the two then
// matches everything. At least one of namespaceSelector, selector and
// publicKeys must be set.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector) || has(self.selector) || (has(self.publicKeys) && size(self.publicKeys) > 0)",message="clients must set namespaceSelector, selector or publicKeys; to grant every CurveClient in the cluster, say so with selector: {}"
type GrantClients struct {
	// NamespaceSelector selects, by namespace labels, the namespaces whose
	// CurveClients are granted access. Omitted: all namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Selector selects CurveClients by their labels. Omitted: every
	// CurveClient in the selected namespaces.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// PublicKeys grants access to clients that are not CurveClients, such as
	// processes outside the cluster, by their Z85 public keys. Names must be
	// unique.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	PublicKeys []NamedPublicKey `json:"publicKeys,omitempty"`
}

// GrantServers selects the CurveServers of a ClusterCurveGrant by namespace
// and label. An omitted selector matches everything, but at least one must
// be set.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector) || has(self.selector)",message="servers must set namespaceSelector, selector or both; to grant access to every CurveServer in the cluster, say so with selector: {}"
type GrantServers struct {
	// NamespaceSelector selects, by namespace labels, the namespaces whose
	// CurveServers admit the clients. Omitted: all namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Selector selects CurveServers by their labels. Omitted: every
	// CurveServer in the selected namespaces.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ClusterCurveGrantStatus is the observed state of a ClusterCurveGrant,
// written by zmqauth.
type ClusterCurveGrantStatus struct {
	// MatchedServers is the number of CurveServers the grant applies to.
	// +optional
	MatchedServers int32 `json:"matchedServers,omitempty"`

	// MatchedClients is the number of client keys (CurveClients and raw
	// public keys) the grant admits.
	// +optional
	MatchedClients int32 `json:"matchedClients,omitempty"`

	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is true when the grant is in force at every matched
	// server's allowlist.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// ClusterCurveGrant is cluster-wide access policy: it lets a set of clients
// connect to a set of servers, across namespaces, for platform teams that
// manage access centrally. Grants add to what each CurveServer admits on its
// own; nothing takes access away.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ccg,categories=zmqauth
// +kubebuilder:printcolumn:name="Servers",type=integer,JSONPath=`.status.matchedServers`
// +kubebuilder:printcolumn:name="Clients",type=integer,JSONPath=`.status.matchedClients`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterCurveGrant struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the grant.
	// +required
	Spec ClusterCurveGrantSpec `json:"spec"`

	// Status is the observed state of the grant.
	// +optional
	Status ClusterCurveGrantStatus `json:"status,omitempty"`
}

// ClusterCurveGrantList is a list of ClusterCurveGrants.
//
// +kubebuilder:object:root=true
type ClusterCurveGrantList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the ClusterCurveGrants.
	Items []ClusterCurveGrant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterCurveGrant{}, &ClusterCurveGrantList{})
}
