package injector

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// inject returns a copy of pod with inj applied, replacing any earlier
// injection: the sidecar becomes the first init container (so it is up
// before the other init containers and the application), the injector's
// volumes come last, and the annotation records the digest. Applying the
// same injection to its own result returns an equal pod.
func inject(pod *corev1.Pod, inj injection) (*corev1.Pod, error) {
	digest, err := inj.digest()
	if err != nil {
		return nil, err
	}
	out := strip(pod)

	out.Spec.InitContainers = append([]corev1.Container{inj.container}, out.Spec.InitContainers...)
	out.Spec.Volumes = append(out.Spec.Volumes, inj.volumes...)

	// Key files are mode 0440 and owned by root; the kubelet makes them
	// group-owned by the pod's fsGroup, which every container of the pod
	// has as a supplementary group. A pod without an fsGroup gets the
	// sidecar's group; a pod with one keeps it (the sidecar then reads
	// through that group). OnRootMismatch keeps the kubelet from walking
	// the application's large volumes on every mount.
	if len(inj.volumes) > 0 {
		if out.Spec.SecurityContext == nil {
			out.Spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		if out.Spec.SecurityContext.FSGroup == nil {
			out.Spec.SecurityContext.FSGroup = ptr.To[int64](SidecarGID)
			if out.Spec.SecurityContext.FSGroupChangePolicy == nil {
				out.Spec.SecurityContext.FSGroupChangePolicy = ptr.To(corev1.FSGroupChangeOnRootMismatch)
			}
		}
	}

	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[AnnotationInjected] = digest
	return out, nil
}

// strip returns a copy of pod without anything an earlier injection added
// (the fsGroup stays: it cannot be told apart from the user's own).
func strip(pod *corev1.Pod) *corev1.Pod {
	out := pod.DeepCopy()
	out.Spec.InitContainers = slices.DeleteFunc(out.Spec.InitContainers, func(c corev1.Container) bool {
		return c.Name == ContainerName
	})
	if len(out.Spec.InitContainers) == 0 {
		out.Spec.InitContainers = nil
	}
	out.Spec.Volumes = slices.DeleteFunc(out.Spec.Volumes, func(v corev1.Volume) bool {
		return isInjectedVolume(v.Name)
	})
	if len(out.Spec.Volumes) == 0 {
		out.Spec.Volumes = nil
	}
	delete(out.Annotations, AnnotationInjected)
	return out
}

// digest identifies an injection: "sha256:" and the first 16 hex digits of
// the SHA-256 of the container and volumes as JSON (deterministic: struct
// fields in order, maps sorted).
func (inj injection) digest() (string, error) {
	b, err := json.Marshal(struct {
		Container corev1.Container `json:"container"`
		Volumes   []corev1.Volume  `json:"volumes"`
	}{inj.container, inj.volumes})
	if err != nil {
		return "", fmt.Errorf("digest of the injection: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:8]), nil
}

// conflicts reports a pod that already uses a name the injector adds: a
// container named like the sidecar among the application's containers.
func conflicts(pod *corev1.Pod) error {
	for _, c := range pod.Spec.Containers {
		if c.Name == ContainerName {
			return fmt.Errorf("container name %q is reserved for the zmqauth sidecar: rename the pod's container", ContainerName)
		}
	}
	return nil
}
