package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/allowlist"
)

// Handler is the pod injector's admission handler: it adds the CURVE sidecar
// to pods annotated zmqauth.io/server and/or zmqauth.io/client.
type Handler struct {
	opts    Options
	reader  client.Reader
	decoder admission.Decoder
	log     logr.Logger
	metrics *metrics
}

// NewHandler returns the admission handler. reader looks up CurveServers and
// CurveClients; pass the manager's API reader, so a pod created right after
// its CurveServer is not refused because of a cache that lags.
func NewHandler(opts Options, reader client.Reader, scheme *runtime.Scheme, log logr.Logger) *Handler {
	return &Handler{opts: opts, reader: reader, decoder: admission.NewDecoder(scheme), log: log}
}

// Handle injects the sidecar into an annotated pod, refuses a pod naming an
// unknown CurveServer or CurveClient, and allows everything else unchanged.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, result := h.handle(ctx, req)
	h.metrics.observe(result)
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return admission.Allowed("zmqauth injects pods only at creation"), resultSkipped
	}
	var pod corev1.Pod
	if err := h.decoder.Decode(req, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err)), resultError
	}
	serverName, isServer := pod.Annotations[zmqauthv1.AnnotationServer]
	clientName, isClient := pod.Annotations[zmqauthv1.AnnotationClient]
	if !isServer && !isClient {
		return admission.Allowed("no zmqauth.io/server or zmqauth.io/client annotation"), resultSkipped
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	log := h.log.WithValues("namespace", ns, "pod", podName(&pod))

	if err := conflicts(&pod); err != nil {
		return admission.Denied(err.Error()), resultRefused
	}

	var server *zmqauthv1.CurveServer
	if isServer {
		server = &zmqauthv1.CurveServer{}
		if resp, refused := h.lookup(ctx, zmqauthv1.AnnotationServer, "curveserver", ns, serverName, server); refused {
			return resp, resultRefused
		}
	}
	var client *zmqauthv1.CurveClient
	if isClient {
		client = &zmqauthv1.CurveClient{}
		if resp, refused := h.lookup(ctx, zmqauthv1.AnnotationClient, "curveclient", ns, clientName, client); refused {
			return resp, resultRefused
		}
	}

	if err := checkPorts(server, client); err != nil {
		return admission.Denied(err.Error()), resultRefused
	}
	cfg := routes(ns, server, client)
	var warnings []string
	if server != nil && len(cfg.Inbound) == 0 {
		warnings = append(warnings, fmt.Sprintf("curveserver %q has no spec.ports: the sidecar terminates nothing for it (the application does CURVE itself with the keys and allowlist)", server.Name))
	}
	if client != nil && len(cfg.Outbound) == 0 {
		warnings = append(warnings, fmt.Sprintf("curveclient %q has no server with endpoint and localPort: the sidecar relays nothing for it (the application does CURVE itself with the keys)", client.Name))
	}
	if len(cfg.Inbound)+len(cfg.Outbound) == 0 {
		// Nothing for a sidecar to do; leave the pod alone and say why.
		return admission.Allowed("no sidecar routes").WithWarnings(warnings...), resultSkipped
	}
	// Checked only here, where the sidecar would mount the objects: a pod
	// that gets no sidecar mounts nothing.
	if err := conflicted(server, client); err != nil {
		return admission.Denied(err.Error()), resultRefused
	}
	if err := cfg.Validate(); err != nil {
		return admission.Denied(fmt.Sprintf("zmqauth cannot configure the sidecar: %v", err)), resultRefused
	}

	inj, err := build(h.opts, server, client, cfg)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), resultError
	}
	injected, err := inject(&pod, inj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), resultError
	}
	if equality.Semantic.DeepEqual(&pod, injected) {
		return admission.Allowed("already injected").WithWarnings(warnings...), resultUnchanged
	}
	raw, err := json.Marshal(injected)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the pod: %w", err)), resultError
	}
	log.Info("injecting the zmqauth sidecar", "server", serverName, "client", clientName,
		"inbound", len(cfg.Inbound), "outbound", len(cfg.Outbound), "digest", injected.Annotations[AnnotationInjected])
	return admission.PatchResponseFromRaw(req.Object.Raw, raw).WithWarnings(warnings...), resultInjected
}

// conflicted refuses a pod whose CurveServer or CurveClient reports that
// an object the sidecar would mount is not its own: KeyReady False with
// reason SecretConflict (spec.secretName names a Secret zmqauth does not
// manage for it) or AllowlistReady False with reason ConfigMapConflict (the
// <server>-allowlist ConfigMap is someone else's). Mounting it would make
// the pod serve with someone else's keypair or allowlist. Any other state,
// in particular conditions not reported yet (a new object) or Unknown, is
// no reason to refuse: the sidecar waits, not ready, until its keys and
// allowlist are there.
func conflicted(server *zmqauthv1.CurveServer, client *zmqauthv1.CurveClient) error {
	type check struct {
		kind, name string
		conds      []metav1.Condition
		condType   string
		reason     string
	}
	var checks []check
	if server != nil {
		checks = append(checks,
			check{"curveserver", server.Name, server.Status.Conditions, zmqauthv1.ConditionKeyReady, zmqauthv1.ReasonSecretConflict},
			check{"curveserver", server.Name, server.Status.Conditions, zmqauthv1.ConditionAllowlistReady, allowlist.ReasonConfigMapConflict})
	}
	if client != nil {
		checks = append(checks,
			check{"curveclient", client.Name, client.Status.Conditions, zmqauthv1.ConditionKeyReady, zmqauthv1.ReasonSecretConflict})
	}
	for _, c := range checks {
		cond := meta.FindStatusCondition(c.conds, c.condType)
		if cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == c.reason {
			return fmt.Errorf("%s %q cannot be injected: its %s condition is False (%s): %s",
				c.kind, c.name, c.condType, cond.Reason, cond.Message)
		}
	}
	return nil
}

// lookup reads the named object; refused is true (with the response to send)
// when it cannot.
func (h *Handler) lookup(ctx context.Context, annotation, kind, ns, name string, obj client.Object) (admission.Response, bool) {
	if strings.TrimSpace(name) == "" {
		return admission.Denied(fmt.Sprintf("annotation %s is empty: set it to the name of a %s in namespace %q", annotation, kind, ns)), true
	}
	err := h.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
	switch {
	case err == nil:
		return admission.Response{}, false
	case apierrors.IsNotFound(err):
		return admission.Denied(fmt.Sprintf("%s %q not found in namespace %q (annotation %s)", kind, name, ns, annotation)), true
	default:
		// Refuse rather than start the pod without its sidecar; the
		// client (a ReplicaSet, a Job) retries.
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading %s %q in namespace %q: %w", kind, name, ns, err)), true
	}
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
