package v1alpha1

// Condition types in status.conditions. Every kind has Ready; the others
// give the detail behind it.
const (
	// ConditionReady is True when the object is fully in force: for a
	// CurveServer its keypair and allowlist are in place; for a CurveClient
	// its keypair is in place and every server it names admits it; for a
	// ClusterCurveGrant every matched server's allowlist includes its
	// clients. Its reason is that of the first failing detail condition.
	ConditionReady = "Ready"

	// ConditionKeyReady is True when the keypair Secret exists, is managed
	// by this object and holds a valid keypair.
	ConditionKeyReady = "KeyReady"

	// ConditionAllowlistReady (CurveServer) is True when the allowlist
	// ConfigMap holds exactly the keys the server currently admits.
	ConditionAllowlistReady = "AllowlistReady"

	// ConditionPublished (CurveServer with spec.publish) is True when the
	// public key ConfigMap is up to date in every selected namespace.
	ConditionPublished = "Published"

	// ConditionAuthorized (CurveClient) is True when every server in
	// spec.servers admits the client's current key; status.servers says
	// which do not and why.
	ConditionAuthorized = "Authorized"

	// ConditionRotating is True while a rotation overlap lasts, that is
	// while the previous key is still accepted.
	ConditionRotating = "Rotating"
)

// Condition reasons: the CamelCase Reason of a condition, and of a
// CurveClient's status.servers entries.
const (
	// ReasonReconciled: everything the condition covers is in the desired
	// state.
	ReasonReconciled = "Reconciled"

	// ReasonKeyGenerated: a new keypair was generated and stored in the
	// Secret (first creation or rotation).
	ReasonKeyGenerated = "KeyGenerated"

	// ReasonSecretConflict: a Secret with the name in spec.secretName exists
	// but is not managed by this object; zmqauth leaves it alone. Delete it
	// or choose another secretName.
	ReasonSecretConflict = "SecretConflict"

	// ReasonSecretInvalid: the keypair Secret exists but does not hold a
	// valid keypair (missing or malformed keys, or a secret key that does
	// not derive the public key). zmqauth replaces it with a new keypair.
	ReasonSecretInvalid = "SecretInvalid"

	// ReasonRotationScheduled: the keypair was replaced because its rotation
	// period ended.
	ReasonRotationScheduled = "RotationScheduled"

	// ReasonRotationRequested: the keypair was replaced because the
	// zmqauth.io/rotate annotation changed.
	ReasonRotationRequested = "RotationRequested"

	// ReasonOverlapEnded: the previous key is no longer accepted (Rotating
	// is False).
	ReasonOverlapEnded = "OverlapEnded"

	// ReasonInvalidSelector: a label selector in the spec cannot be parsed;
	// the message says which.
	ReasonInvalidSelector = "InvalidSelector"

	// ReasonAllowlistTooLarge: the allowlist does not fit in one ConfigMap
	// (1 MiB); the last allowlist that fitted stays in force.
	ReasonAllowlistTooLarge = "AllowlistTooLarge"

	// ReasonPublishFailed: the public key could not be written to some
	// selected namespaces; the message names them.
	ReasonPublishFailed = "PublishFailed"

	// ReasonServerNotFound: a server named in spec.servers does not exist.
	ReasonServerNotFound = "ServerNotFound"

	// ReasonServerKeyPending: the server exists but has no keypair yet.
	ReasonServerKeyPending = "ServerKeyPending"

	// ReasonNotSelected: the server is in another namespace and neither its
	// spec.clients nor any ClusterCurveGrant selects this client.
	ReasonNotSelected = "NotSelected"

	// ReasonAllowlistPending: the server admits the client but its allowlist
	// does not hold the client's current key yet.
	ReasonAllowlistPending = "AllowlistPending"
)
