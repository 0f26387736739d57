// Package servingcert gives the injector webhook a TLS serving certificate
// without cert-manager: a self-signed CA and a serving certificate kept in one
// Secret, the CA put into the caBundle of the webhook configurations, and the
// certificate served from memory (tls.Config.GetCertificate).
//
// Why not github.com/open-policy-agent/cert-controller: v0.16.0 targets
// k8s.io 0.35 / controller-runtime 0.23 and requires k8s.io/kube-aggregator
// 0.35, a second k8s minor in our build; aligning it to 0.37 pulls
// k8s.io/apiserver, the etcd client, gRPC and OpenTelemetry into go.mod (about
// fifty requirements), which the project keeps out of the main module on
// purpose (the control plane is built from its own module under hack/). It
// also serves the certificate from files the kubelet projects from its Secret,
// so a fresh install waits for the kubelet's Secret sync (a minute or more)
// before the webhook answers, and it replaces the CA and the caBundle in one
// step, without an overlap. This package serves from memory, so a replica
// answers as soon as the Secret is read, and rotates the CA with an overlap.
//
// The Secret (type kubernetes.io/tls, the key names cert-manager uses):
//
//	ca.crt   the CA bundle: the current CA first, then earlier CAs that are
//	         still valid (the caBundle written to the webhook configurations)
//	ca.key   the current CA's private key
//	tls.crt  the serving certificate, signed by a CA in ca.crt
//	tls.key  its private key
//
// Every replica runs the same loop (no leader election: every replica serves
// the webhook and needs the certificate). Writes use the Secret's
// resourceVersion, so concurrent replicas never overwrite each other: the
// loser of a conflict reads the winner's certificate and uses it.
//
// Rotation: a certificate is renewed when less than a third of its lifetime
// is left (CA: 5 years, so at 20 months left; serving certificate: 90 days,
// so at 30 days left). A new CA is first added to ca.crt next to the old one
// and to every caBundle; the serving certificate is re-issued from the new CA
// only once every caBundle trusts it, so no API server ever sees a
// certificate it does not trust. Expired CAs leave the bundle.
package servingcert
