package keys

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
)

// ReasonPending is the reason of Ready while a condition it sums up has not
// been reported yet (e.g. AllowlistReady before the allowlist controller
// has run).
const ReasonPending = "Pending"

// setStatus mirrors the outcome into obj's status. Without a valid key state
// (a Secret conflict) the key fields keep their last values and only the
// conditions change.
func (r *Reconciler) setStatus(obj client.Object, out outcome) {
	f := r.Kind.Fields(obj)
	gen := obj.GetGeneration()
	*f.ObservedGeneration = gen
	if st := out.state; st != nil {
		*f.PublicKey = st.Current.Public.String()
		*f.PreviousPublicKey = ""
		if st.Previous != nil {
			*f.PreviousPublicKey = st.Previous.Public.String()
		}
		if f.NextPublicKey != nil {
			*f.NextPublicKey = ""
			if st.Next != nil {
				*f.NextPublicKey = st.Next.Public.String()
			}
		}
		*f.KeyRevision = st.Revision
		*f.LastRotationTime = &metav1.Time{Time: st.RotatedAt}
		*f.NextRotationTime = nil
		if period, _, scheduled := Schedule(f.Rotation); scheduled {
			*f.NextRotationTime = &metav1.Time{Time: st.RotatedAt.Add(period)}
		}
		*f.LastRotationRequest = st.RotationRequest
		rotating := metav1.Condition{Type: v1alpha1.ConditionRotating, Status: metav1.ConditionFalse, ObservedGeneration: gen}
		switch {
		case st.Previous != nil:
			rotating.Status = metav1.ConditionTrue
			rotating.Reason = st.RotationReason
			if rotating.Reason != v1alpha1.ReasonRotationRequested && rotating.Reason != v1alpha1.ReasonRotationScheduled {
				rotating.Reason = v1alpha1.ReasonRotationScheduled
			}
			rotating.Message = fmt.Sprintf("rotated to revision %d; the previous key %s is accepted until %s",
				st.Revision, st.Previous.Public, st.OverlapUntil.Format(time.RFC3339))
		case st.Revision > 1:
			rotating.Reason = v1alpha1.ReasonOverlapEnded
			rotating.Message = fmt.Sprintf("only the current key (revision %d) is accepted", st.Revision)
		default:
			rotating.Reason = v1alpha1.ReasonReconciled
			rotating.Message = "no rotation in progress"
		}
		meta.SetStatusCondition(f.Conditions, rotating)
	}
	keyReady := out.keyReady
	keyReady.ObservedGeneration = gen
	meta.SetStatusCondition(f.Conditions, keyReady)
	meta.SetStatusCondition(f.Conditions, Ready(*f.Conditions, f.ReadyFrom, gen))
}

// Ready sums up the detail conditions listed in from into the Ready
// condition: False with the reason and message of the first False one, else
// Unknown if one is Unknown or not reported yet (reason Pending), else True.
func Ready(conds []metav1.Condition, from []string, generation int64) metav1.Condition {
	out := metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: v1alpha1.ReasonReconciled, Message: "all conditions are met",
	}
	for _, t := range from {
		c := findCondition(conds, t)
		switch {
		case c == nil:
			if out.Status == metav1.ConditionTrue {
				out.Status, out.Reason, out.Message = metav1.ConditionUnknown, ReasonPending, "waiting for "+t
			}
		case c.Status == metav1.ConditionFalse:
			out.Status, out.Reason, out.Message = metav1.ConditionFalse, c.Reason, c.Message
			return out
		case c.Status != metav1.ConditionTrue:
			if out.Status == metav1.ConditionTrue {
				out.Status, out.Reason, out.Message = metav1.ConditionUnknown, c.Reason, c.Message
			}
		}
	}
	return out
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	return meta.FindStatusCondition(conds, t)
}
