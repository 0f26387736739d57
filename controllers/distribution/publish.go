package distribution

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Publishing layout: the ConfigMap a CurveServer's public key is published
// in, in each selected namespace. Its files are filecontract's
// Published*File.
const (
	// PublishFinalizer, on a CurveServer with spec.publish, makes its
	// deletion wait until its published ConfigMaps in other namespaces are
	// removed (owner references cannot cross namespaces). It is removed
	// when publish is unset.
	PublishFinalizer = "zmqauth.io/publish-cleanup"

	// LabelPublishedFrom marks a published ConfigMap with its server:
	// "<namespace>.<name>" when that fits a label value (63 characters),
	// else "sha256-" and 40 hex digits of the SHA-256 of "<namespace>/<name>"
	// (see PublishedFromLabel). Namespace and server names hold no dot, so
	// the first form is unambiguous, and the second holds no dot.
	LabelPublishedFrom = "zmqauth.io/published-from"

	// AnnotationPublishedFrom is "<namespace>/<name>" of the server of a
	// published ConfigMap, always in full.
	AnnotationPublishedFrom = "zmqauth.io/published-from"

	// PublishedSuffix ends the name of a published ConfigMap (see
	// PublishedConfigMapName).
	PublishedSuffix = ".curve-public"
)

// PublishedConfigMapName returns the name of the ConfigMap holding the public
// key of the CurveServer namespace/name in each selected namespace:
// "<namespace>.<name>.curve-public". Namespace and server names are DNS-1123
// labels (no dots), so the name says unambiguously which server it is.
func PublishedConfigMapName(namespace, name string) string {
	return namespace + "." + name + PublishedSuffix
}

// PublishedFromLabel returns the LabelPublishedFrom value of the server
// namespace/name.
func PublishedFromLabel(namespace, name string) string {
	v := namespace + "." + name
	if len(v) <= validation.LabelValueMaxLength {
		return v
	}
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return "sha256-" + hex.EncodeToString(sum[:20])
}

// publishedFrom returns the server of a published ConfigMap from its
// annotation.
func publishedFrom(annotations map[string]string) (types.NamespacedName, bool) {
	ns, name, ok := strings.Cut(annotations[AnnotationPublishedFrom], "/")
	if !ok || ns == "" || name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}
