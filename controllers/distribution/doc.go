// Package distribution gets CurveServer public keys to the clients that use
// them.
//
// ClientReconciler writes, into each CurveClient's keypair Secret, the file
// server.<namespace>.<name>.key (a zcert public certificate of the server's
// current public key, status.publicKey) for every server in spec.servers. It
// applies those entries with server-side apply under the field owner
// "zmqauth-distribution", so it never touches the key files the keys
// controller owns in the same Secret; entries for servers no longer named
// disappear because they are no longer applied. It writes nothing until the
// keys controller has created the Secret (a Secret it does not control is
// never written), and is woken by the Secret's creation.
//
// It also owns two parts of the CurveClient status: status.servers (per
// server: authorized, serverPublicKey, reason and message) and the
// Authorized condition, written with server-side apply on the status
// subresource, so the keys controller's publicKey, keyRevision, rotation
// times and conditions are never overwritten. A client is authorized at a
// server when its current key is in the server's allowlist index
// (index.json of "<server>-allowlist"); when it is not, the allowlist
// package's Policy says whether it is NotSelected or AllowlistPending.
//
// PublishReconciler copies the public key of every CurveServer with
// spec.publish into a ConfigMap "<server-namespace>.<server-name>.curve-public"
// in each namespace the selector selects (see PublishedConfigMapName), and
// removes it from namespaces no longer selected and when the server goes,
// using the finalizer PublishFinalizer, set only while publish is set,
// because owner references cannot cross namespaces.
//
// Watches: a CurveServer change (new key, created, deleted, spec) maps to
// the CurveClients that name it through a field index on CurveClient
// spec.servers; an allowlist ConfigMap change maps to the CurveClients whose
// entries changed (a diff of the old and new index); a ClusterCurveGrant
// change maps to the clients naming the servers it matches; a Secret change
// maps to its controlling CurveClient. Namespace label changes map to the
// servers whose publish selector matches the old or new labels.
package distribution
