package v1alpha1

// Annotations and labels users and zmqauth put on objects.
const (
	// AnnotationRotate, on a CurveServer or CurveClient, requests an
	// immediate key rotation whenever its value changes (any value, e.g. a
	// timestamp: kubectl annotate csrv NAME zmqauth.io/rotate="$(date
	// +%s)" --overwrite). The value answered is recorded in
	// status.lastRotationRequest, so the annotation can stay in place and
	// GitOps tools do not trigger repeated rotations.
	AnnotationRotate = "zmqauth.io/rotate"

	// AnnotationServer, on a pod, names the CurveServer (in the pod's
	// namespace) the pod serves as; the injector adds a sidecar terminating
	// that server's ports.
	AnnotationServer = "zmqauth.io/server"

	// AnnotationClient, on a pod, names the CurveClient (in the pod's
	// namespace) the pod acts as; the injector adds a sidecar relaying that
	// client's server routes.
	AnnotationClient = "zmqauth.io/client"

	// LabelInject, on a namespace, turns the injector on for that namespace
	// when set to InjectEnabled. Pods elsewhere are never touched.
	LabelInject = "zmqauth.io/inject"

	// InjectEnabled is the LabelInject value that turns injection on.
	InjectEnabled = "enabled"
)

// The keypair Secret zmqauth writes for a CurveServer or CurveClient.
const (
	// SecretTypeCurve is the type of every keypair Secret.
	SecretTypeCurve = "zmqauth.io/curve"

	// SecretKeyPublic holds the current public key, 40 Z85 characters and
	// nothing else.
	SecretKeyPublic = "public.key"

	// SecretKeySecret holds the current secret key, 40 Z85 characters and
	// nothing else.
	SecretKeySecret = "secret.key"

	// SecretKeyCertificate holds the current keypair's public zcert
	// certificate, as pyzmq's zmq.auth.load_certificate() and CZMQ's
	// zcert_load() read it.
	SecretKeyCertificate = "curve.key"

	// SecretKeySecretCertificate holds the current keypair's secret zcert
	// certificate (public and secret key).
	SecretKeySecretCertificate = "curve.key_secret"

	// SecretKeyPreviousPublic (CurveServer, during a rotation overlap) holds
	// the previous public key.
	SecretKeyPreviousPublic = "previous-public.key"

	// SecretKeyPreviousSecret (CurveServer, during a rotation overlap) holds
	// the previous secret key, so the sidecar still accepts handshakes made
	// for it.
	SecretKeyPreviousSecret = "previous-secret.key"
)
