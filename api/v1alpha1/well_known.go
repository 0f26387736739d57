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

// SecretTypeCurve is the type of every keypair Secret zmqauth writes for a
// CurveServer or CurveClient. The files it holds (public.key, secret.key,
// ...) are named in package filecontract (docs/architecture.md, section 5).
const SecretTypeCurve = "zmqauth.io/curve"
