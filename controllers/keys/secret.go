package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
)

// FieldOwner is the server-side apply field manager of the key files and the
// rotation annotations of every keypair Secret. The keys and rotation
// reconcilers share it on purpose: each write applies the whole key state,
// and a data key the state no longer has (a previous key after its overlap)
// is removed because this manager stops applying it.
const FieldOwner = "zmqauth-keys"

// managedData are the data keys the key state may occupy; any of them not in
// a state written is removed.
var managedData = append(slices.Clone(filecontract.KeyPairFiles), filecontract.PreviousPublicKeyFile, filecontract.PreviousSecretKeyFile,
	filecontract.NextPublicKeyFile, filecontract.NextSecretKeyFile)

// managedAnnotations are the annotations the key state may occupy.
var managedAnnotations = []string{
	secretlayout.AnnotationKeyRevision,
	secretlayout.AnnotationRotatedAt,
	secretlayout.AnnotationOverlapUntil,
	secretlayout.AnnotationNextSince,
	secretlayout.AnnotationRotationRequest,
	secretlayout.AnnotationRotationReason,
}

// labels are the labels of every keypair Secret.
func labels() map[string]string {
	return map[string]string{secretlayout.LabelManagedBy: secretlayout.ManagedBy}
}

// ownerRef is the controller owner reference from a keypair Secret to obj.
func (k Kind) ownerRef(obj client.Object) metav1.OwnerReference {
	return *metav1.NewControllerRef(obj, v1alpha1.GroupVersion.WithKind(k.Name))
}

// identity is the name written into the zcert files of obj's keypair.
func identity(obj client.Object) string {
	return filecontract.Identity(obj.GetNamespace(), obj.GetName())
}

// NewSecret returns the keypair Secret of obj holding st, for Create.
func (k Kind) NewSecret(obj client.Object, st secretlayout.State) (*corev1.Secret, error) {
	data, err := st.Data(identity(obj))
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            k.Fields(obj).SecretName,
			Namespace:       obj.GetNamespace(),
			Labels:          labels(),
			Annotations:     st.Annotations(),
			OwnerReferences: []metav1.OwnerReference{k.ownerRef(obj)},
		},
		Type: secretlayout.SecretType,
		Data: data,
	}, nil
}

// ApplyState writes st into obj's keypair Secret as one server-side apply
// by FieldOwner, on the condition that the Secret is still at
// resourceVersion (the version st was derived from): a write based on a
// stale read fails with a Conflict and is retried from a fresh read, so two
// reconcilers can never interleave a rotation and a repair. Data keys and
// annotations of the key state that st does not hold are removed; the
// entries other controllers own (a client's server.*.key files) are left
// alone.
func (k Kind) ApplyState(ctx context.Context, c client.Client, obj client.Object, resourceVersion string, st secretlayout.State) error {
	data, err := st.Data(identity(obj))
	if err != nil {
		return err
	}
	ref := k.ownerRef(obj)
	ac := corev1ac.Secret(k.Fields(obj).SecretName, obj.GetNamespace()).
		WithResourceVersion(resourceVersion).
		WithType(secretlayout.SecretType).
		WithLabels(labels()).
		WithAnnotations(st.Annotations()).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(ref.APIVersion).WithKind(ref.Kind).WithName(ref.Name).WithUID(ref.UID).
			WithController(true).WithBlockOwnerDeletion(true)).
		WithData(data)
	if err := c.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Secret %s/%s: %w", obj.GetNamespace(), k.Fields(obj).SecretName, err)
	}
	return removeLeftovers(ctx, c, ac, data, st.Annotations())
}

// removeLeftovers deletes key-state entries that the apply meant to remove
// but that survived because another field manager also owned them (someone
// edited them by hand).
func removeLeftovers(ctx context.Context, c client.Client, got *corev1ac.SecretApplyConfiguration, data map[string][]byte, ann map[string]string) error {
	var dataKeys, annKeys []string
	for _, key := range managedData {
		if _, want := data[key]; !want {
			dataKeys = append(dataKeys, key)
		}
	}
	for _, key := range managedAnnotations {
		if _, want := ann[key]; !want {
			annKeys = append(annKeys, key)
		}
	}
	if err := RemoveSecretEntries(ctx, c, got, dataKeys, annKeys, FieldOwner); err != nil {
		return fmt.Errorf("remove stale key state: %w", err)
	}
	return nil
}

// RemoveSecretEntries deletes the data keys and annotations named from the
// Secret a server-side apply returned (got), skipping those it does not
// hold. An apply removes only what no other field manager owns; this is
// for the rest. It is a JSON merge patch, by owner, on the version the
// apply produced, so it cannot undo a newer write (that fails with a
// Conflict). Nothing is written when there is nothing to remove.
func RemoveSecretEntries(ctx context.Context, c client.Client, got *corev1ac.SecretApplyConfiguration, dataKeys, annotations []string, owner string) error {
	dataNull := map[string]any{}
	for _, key := range dataKeys {
		if _, has := got.Data[key]; has {
			dataNull[key] = nil
		}
	}
	annNull := map[string]any{}
	for _, key := range annotations {
		if _, has := got.Annotations[key]; has {
			annNull[key] = nil
		}
	}
	if len(dataNull) == 0 && len(annNull) == 0 {
		return nil
	}
	meta := map[string]any{"resourceVersion": *got.ResourceVersion}
	if len(annNull) > 0 {
		meta["annotations"] = annNull
	}
	patch := map[string]any{"metadata": meta}
	if len(dataNull) > 0 {
		patch["data"] = dataNull
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: *got.Name, Namespace: *got.Namespace}}
	if err := c.Patch(ctx, s, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(owner)); err != nil {
		return fmt.Errorf("patch Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// diff lists what differs between a Secret and the key state it should
// hold: data keys and annotations that are missing, extra or changed, and
// the managed-by label. Values are never included, only names.
func diff(secret *corev1.Secret, data map[string][]byte, ann map[string]string) (dataKeys, annotations []string, label bool) {
	for _, key := range managedData {
		want, wok := data[key]
		have, hok := secret.Data[key]
		if wok != hok || !bytes.Equal(want, have) {
			dataKeys = append(dataKeys, key)
		}
	}
	for _, key := range managedAnnotations {
		want, wok := ann[key]
		have, hok := secret.Annotations[key]
		if wok != hok || want != have {
			annotations = append(annotations, key)
		}
	}
	label = secret.Labels[secretlayout.LabelManagedBy] != secretlayout.ManagedBy
	return dataKeys, annotations, label
}

// sortedKeys returns the keys of m in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
