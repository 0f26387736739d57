// Package injector is zmqauth's mutating admission webhook for Pods: a pod
// annotated zmqauth.io/server: NAME (a CurveServer in its namespace) and/or
// zmqauth.io/client: NAME (a CurveClient) gets the CURVE sidecar.
//
// # What is injected
//
//   - The sidecar as a native sidecar: the first init container, named
//     zmqauth-sidecar, with restartPolicy Always, so it is up (its startup
//     probe passes once keys and allowlists are loaded) before the other init
//     containers and the application start, and outlives them. Its args are
//     "sidecar --config-env ZMQAUTH_SIDECAR_CONFIG"; that variable holds the
//     routes as YAML (zap/sidecar.Config): per CurveServer port an inbound
//     route (listen :PORT, application 127.0.0.1:APPPORT, spec.mode), per
//     CurveClient server with endpoint and localPort an outbound route
//     (listen 127.0.0.1:LOCALPORT, dial the endpoint, server key
//     server.NS.NAME.key from the client's Secret); admin on :9901.
//   - Volumes, read-only: the server's keypair Secret at
//     /var/run/zmqauth/server/keys, its allowlist ConfigMap at
//     /var/run/zmqauth/server/allowlist, the client's keypair Secret at
//     /var/run/zmqauth/client/keys. Whole objects, no subPath, so rotated
//     keys and allowlist changes reach the sidecar without a restart.
//   - The server's ports on the sidecar container, probes on :9901 (startup
//     and readiness /readyz, liveness /healthz), requests 10m CPU and 32Mi,
//     a 128Mi memory limit, and a restricted security context (uid/gid
//     65532, non-root, read-only root, no privilege escalation, no
//     capabilities, RuntimeDefault seccomp): the injected pod passes the
//     "restricted" Pod Security Standard if the application does.
//   - The annotation zmqauth.io/injected: a digest of the container and
//     volumes. Injecting an injected pod removes the earlier sidecar and
//     volumes and adds them again, so the result is the same pod and the
//     response carries no patch.
//
// A pod naming a CurveServer or CurveClient that does not exist is refused
// (curveserver "x" not found in namespace "y"), as is one whose ports clash,
// and one whose CurveServer or CurveClient reports that what the sidecar
// would mount is someone else's: KeyReady False with reason SecretConflict,
// or AllowlistReady False with reason ConfigMapConflict (the message names
// the object, the condition and its message). An object whose conditions
// are not reported yet, or Unknown, is no reason to refuse: a pod created
// with its CurveServer is injected and its sidecar waits for the keys.
// A pod without the annotations is never changed.
//
// # Key file permissions
//
// The sidecar runs as uid and gid 65532. The kubelet writes Secret volume
// files owned by root, so with the usual 0400 the sidecar could not read its
// keys, and 0444 would make secret keys world-readable. Instead key files are
// 0440 and the pod has an fsGroup: the kubelet makes the files group-owned by
// the fsGroup, and every container of the pod has the fsGroup as a
// supplementary group. A pod with its own fsGroup keeps it (the sidecar reads
// through that group); a pod without one gets fsGroup 65532 and, unless it
// sets one, fsGroupChangePolicy OnRootMismatch (the kubelet then only
// re-owns the application's volumes whose root is not already right). The
// application's containers gain supplementary group 65532, and its volumes
// that support ownership management become group 65532: documented in the
// README. The allowlist (public keys) is 0444.
//
// # Failure policy and selectors
//
// Annotations cannot be selected by a label selector, but matchConditions
// (CEL, GA since Kubernetes 1.30) can: the API server sends the webhook only
// pod CREATEs that carry zmqauth.io/server or zmqauth.io/client, in
// namespaces labelled zmqauth.io/inject=enabled, never in kube-system or
// zmqauth-system, never the manager's own pods (label control-plane:
// zmqauth-manager). For those pods failurePolicy is Fail: with Ignore, an
// operator outage would let an annotated pod start without its sidecar.
// Everything else never reaches the webhook, so an outage cannot block it.
// An annotated pod in a namespace that is not opted in starts without a
// sidecar; its application listens only on localhost, so nothing is exposed
// without CURVE.
//
// # Serving certificate
//
// By default the manager makes and renews its own serving certificate and
// the caBundle (package servingcert). With cert-manager, use the
// config/certmanager component and --webhook-cert-rotation=false.
package injector
