// Package allowlist keeps each CurveServer's allowlist ConfigMap and the
// status of ClusterCurveGrants.
//
// A CurveServer admits a client key when
//
//   - a CurveClient in the server's namespace names it in spec.servers
//     (grant "client-ref");
//   - the server's spec.clients selectors select a CurveClient, with
//     NetworkPolicy-peer semantics (grant "server-selector");
//   - the server's spec.clients.publicKeys lists the key
//     (grant "server-publickeys");
//   - a ClusterCurveGrant whose servers selectors match the server selects
//     the CurveClient or lists the key (grant "clustercurvegrant/<name>").
//
// A CurveClient in another namespace that names the server is admitted only
// through the server's selectors or a grant. When several rules admit one
// key, the first in the order above is recorded (grants by name). Policy is
// that decision as code; the distribution controller uses it too, to tell a
// client it is not selected.
//
// The allowlist ConfigMap "<server>-allowlist" (label zmqauth.io/allowlist:
// <server>, owned by the CurveServer) holds one zcert public certificate per
// admitted key, the directory layout pyzmq's configure_curve(location=DIR)
// loads, plus index.json (see IndexEntry). Besides a client's current key
// (status.publicKey, file "<ns>.<name>.key"), its previous key during its
// rotation overlap (status.previousPublicKey, "<ns>.<name>.previous.key",
// with "until" = status.lastRotationTime + spec.rotation.overlap) and its
// next key before it switches (status.nextPublicKey, "<ns>.<name>.next.key")
// are admitted. A client without a public key yet is skipped. It is written
// whole (created, or updated on the version read) under the field manager
// "zmqauth-allowlist", only when its rendered content changes, so a file
// someone else adds is removed at the next reconcile; certificates are
// rendered deterministically and reused from the previous reconcile when
// their inputs are unchanged.
//
// Watches are incremental. A CurveClient event maps to the servers it names
// (from spec, old and new) plus the servers whose selectors, or whose
// matching ClusterCurveGrants' selectors, could select it (servers and grants
// are few and listed from the cache; clients are many and never listed per
// event). The servers that a server's allowlist needs are found with a field
// index on CurveClient spec.servers ("<namespace>/<name>" of each referenced
// server) and label-selector lists in the selected namespaces. A
// ClusterCurveGrant event maps to the servers it matches (old and new spec);
// a Namespace label change maps to the servers in it, the servers whose
// namespace selectors match its old or new labels, and the servers of the
// grants whose client namespace selectors do.
package allowlist
