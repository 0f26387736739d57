// Package statusapply writes the part of a custom resource's status one
// controller owns with server-side apply on the status subresource, so that
// controllers sharing one status (the keys, allowlist and distribution
// controllers) never overwrite each other's fields or conditions: each
// applies only its own fields under its own field owner, and a field it
// stops applying is removed.
package statusapply

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// Apply server-side applies status (the status fields the caller owns, in
// their JSON form) to the zmqauth.io/v1alpha1 object kind named by obj,
// under the field owner owner, forcing ownership of those fields.
func Apply(ctx context.Context, c client.Client, kind string, obj client.Object, owner string, status map[string]any) error {
	md := map[string]any{"name": obj.GetName()}
	if ns := obj.GetNamespace(); ns != "" {
		md["namespace"] = ns
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   md,
		"status":     status,
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s status: %w", kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// Condition returns want as it should be applied given the current
// conditions: its lastTransitionTime is kept when the status did not
// change, else set to now.
func Condition(current []metav1.Condition, want metav1.Condition, now time.Time) metav1.Condition {
	want.LastTransitionTime = metav1.NewTime(now.UTC().Truncate(time.Second))
	if old := meta.FindStatusCondition(current, want.Type); old != nil && old.Status == want.Status {
		want.LastTransitionTime = old.LastTransitionTime
	}
	return want
}

// ConditionUpToDate reports whether current already holds want (type,
// status, reason, message and observedGeneration).
func ConditionUpToDate(current []metav1.Condition, want metav1.Condition) bool {
	old := meta.FindStatusCondition(current, want.Type)
	return old != nil && old.Status == want.Status && old.Reason == want.Reason &&
		old.Message == want.Message && old.ObservedGeneration == want.ObservedGeneration
}

// ConditionMap is the apply form of a condition.
func ConditionMap(c metav1.Condition) map[string]any {
	return map[string]any{
		"type":               c.Type,
		"status":             string(c.Status),
		"reason":             c.Reason,
		"message":            c.Message,
		"observedGeneration": c.ObservedGeneration,
		"lastTransitionTime": c.LastTransitionTime.UTC().Format(time.RFC3339),
	}
}

// Conditions returns the apply form of a list of conditions.
func Conditions(cs ...metav1.Condition) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = ConditionMap(c)
	}
	return out
}
