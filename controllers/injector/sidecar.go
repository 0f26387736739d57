package injector

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	zmqauthv1 "github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/zap/sidecar"
)

// What the injector adds to a pod.
const (
	// ContainerName is the injected native sidecar (an init container with
	// restartPolicy Always).
	ContainerName = "zmqauth-sidecar"
	// ConfigEnv is the sidecar's environment variable holding its routes
	// (YAML, zap/sidecar.Config); the sidecar reads it with --config-env.
	ConfigEnv = "ZMQAUTH_SIDECAR_CONFIG"
	// AnnotationInjected, on an injected pod, is a digest of the injected
	// container and volumes.
	AnnotationInjected = "zmqauth.io/injected"

	// AdminPort serves the sidecar's /metrics, /healthz and /readyz.
	AdminPort = 9901
	// AdminPortName names AdminPort in the container's ports.
	AdminPortName = "zmqauth-admin"

	// SidecarUID and SidecarGID are the sidecar's user and group: the
	// distroless "nonroot" user of the image.
	SidecarUID = 65532
	SidecarGID = 65532

	// Volume names and mount paths.
	ServerKeysVolume      = "zmqauth-server-keys"
	ServerAllowlistVolume = "zmqauth-server-allowlist"
	ClientKeysVolume      = "zmqauth-client-keys"
	ServerKeysDir         = "/var/run/zmqauth/server/keys"
	ServerAllowlistDir    = "/var/run/zmqauth/server/allowlist"
	ClientKeysDir         = "/var/run/zmqauth/client/keys"

	// SecretFileMode is the mode of key files: readable by their owner and
	// group only. The kubelet makes the files group-owned by the pod's
	// fsGroup, which the injector sets when the pod has none (see doc.go).
	SecretFileMode int32 = filecontract.KeypairFileMode
	// AllowlistFileMode is the mode of allowlist files: public keys.
	AllowlistFileMode int32 = filecontract.AllowlistFileMode
)

// injection is what the injector adds to one pod, derived only from the
// CurveServer and CurveClient it names and the options.
type injection struct {
	container corev1.Container
	volumes   []corev1.Volume
}

// routes builds the sidecar configuration for a pod acting as server and/or
// client (either may be nil). namespace is the pod's.
func routes(namespace string, server *zmqauthv1.CurveServer, client *zmqauthv1.CurveClient) sidecar.Config {
	cfg := sidecar.Config{Admin: ":" + strconv.Itoa(AdminPort)}
	if server != nil {
		mode := string(server.Spec.Mode)
		if mode == "" {
			mode = string(zmqauthv1.ModeEnforce)
		}
		for _, p := range server.Spec.Ports {
			cfg.Inbound = append(cfg.Inbound, sidecar.InboundRoute{
				Name: p.Name,
				// All addresses, IPv4 and IPv6: the pod's address may be
				// either in a single-stack IPv6 cluster.
				Listen:    ":" + strconv.Itoa(int(p.Port)),
				App:       "127.0.0.1:" + strconv.Itoa(int(p.AppPort)),
				Keys:      ServerKeysDir,
				Allowlist: ServerAllowlistDir,
				Mode:      mode,
			})
		}
	}
	if client != nil {
		seen := map[string]int{}
		for _, s := range client.Spec.Servers {
			seen[serverNamespace(namespace, s)+"."+s.Name]++
		}
		for _, s := range client.Spec.Servers {
			if s.Endpoint == "" || s.LocalPort == 0 {
				continue // the application dials this server itself
			}
			ns := serverNamespace(namespace, s)
			// Route names never collide with inbound ones: port names
			// cannot contain '.'.
			name := ns + "." + s.Name
			if seen[name] > 1 {
				name += "-" + strconv.Itoa(int(s.LocalPort))
			}
			cfg.Outbound = append(cfg.Outbound, sidecar.OutboundRoute{
				Name:      name,
				Listen:    "127.0.0.1:" + strconv.Itoa(int(s.LocalPort)),
				Server:    s.Endpoint,
				ServerKey: ClientKeysDir + "/" + filecontract.ServerKeyFileName(ns, s.Name),
				Keys:      ClientKeysDir,
			})
		}
	}
	return cfg
}

func serverNamespace(podNamespace string, s zmqauthv1.ServerReference) string {
	if s.Namespace != "" {
		return s.Namespace
	}
	return podNamespace
}

// checkPorts refuses a configuration whose ports clash in the pod's one
// network namespace: every port the sidecar listens on once, and no
// application port the sidecar also listens on.
func checkPorts(server *zmqauthv1.CurveServer, client *zmqauthv1.CurveClient) error {
	listen := map[int32]string{AdminPort: "the sidecar's admin port"}
	add := func(port int32, what string) error {
		if other, dup := listen[port]; dup {
			return fmt.Errorf("port %d is both %s and %s: each port can be listened on once per pod", port, other, what)
		}
		listen[port] = what
		return nil
	}
	if server != nil {
		for _, p := range server.Spec.Ports {
			if err := add(p.Port, fmt.Sprintf("curveserver %q port %q", server.Name, p.Name)); err != nil {
				return err
			}
		}
	}
	if client != nil {
		for _, s := range client.Spec.Servers {
			if s.LocalPort != 0 && s.Endpoint != "" {
				if err := add(s.LocalPort, fmt.Sprintf("curveclient %q localPort for server %q", client.Name, s.Name)); err != nil {
					return err
				}
			}
		}
	}
	if server != nil {
		for _, p := range server.Spec.Ports {
			if other, dup := listen[p.AppPort]; dup {
				return fmt.Errorf("curveserver %q port %q: appPort %d is also %s: the application and the sidecar share the pod's network", server.Name, p.Name, p.AppPort, other)
			}
		}
	}
	return nil
}

// build returns the sidecar container and volumes for the configuration.
func build(opts Options, server *zmqauthv1.CurveServer, client *zmqauthv1.CurveClient, cfg sidecar.Config) (injection, error) {
	config, err := yaml.Marshal(cfg)
	if err != nil {
		return injection{}, fmt.Errorf("encoding the sidecar configuration: %w", err)
	}
	c := corev1.Container{
		Name:            ContainerName,
		Image:           opts.SidecarImage,
		ImagePullPolicy: opts.SidecarImagePullPolicy,
		Args:            []string{"sidecar", "--config-env", ConfigEnv},
		Env:             []corev1.EnvVar{{Name: ConfigEnv, Value: string(config)}},
		RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
		// Ready once keys and allowlists are loaded: until then the
		// application is not started (startup probe of a native sidecar)
		// and the pod is not Ready.
		StartupProbe:   probe("/readyz", 1, 120),
		ReadinessProbe: probe("/readyz", 5, 3),
		LivenessProbe:  probe("/healthz", 10, 3),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](SidecarUID),
			RunAsGroup:               ptr.To[int64](SidecarGID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		// The API server's defaults, written out so that a pod injected
		// twice compares equal.
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	var vols []corev1.Volume
	if server != nil {
		for _, p := range server.Spec.Ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.Port, Protocol: corev1.ProtocolTCP})
		}
		vols = append(vols,
			secretVolume(ServerKeysVolume, server.Spec.SecretName),
			configMapVolume(ServerAllowlistVolume, secretlayout.AllowlistConfigMapName(server.Name)))
		c.VolumeMounts = append(c.VolumeMounts,
			corev1.VolumeMount{Name: ServerKeysVolume, MountPath: ServerKeysDir, ReadOnly: true},
			corev1.VolumeMount{Name: ServerAllowlistVolume, MountPath: ServerAllowlistDir, ReadOnly: true})
	}
	if client != nil {
		vols = append(vols, secretVolume(ClientKeysVolume, client.Spec.SecretName))
		c.VolumeMounts = append(c.VolumeMounts,
			corev1.VolumeMount{Name: ClientKeysVolume, MountPath: ClientKeysDir, ReadOnly: true})
	}
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: AdminPortName, ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP})
	return injection{container: c, volumes: vols}, nil
}

func probe(path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   path,
			Port:   intstr.FromInt32(AdminPort),
			Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds:    period,
		FailureThreshold: failures,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
	}
}

// secretVolume mounts a whole keypair Secret (no items, no subPath) so that
// rotated keys and new server key files appear without a restart.
func secretVolume(name, secret string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		DefaultMode: ptr.To(SecretFileMode),
	}}}
}

func configMapVolume(name, configMap string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
		DefaultMode:          ptr.To(AllowlistFileMode),
	}}}
}

// isInjectedVolume reports whether a pod volume is one the injector owns.
func isInjectedVolume(name string) bool {
	return slices.Contains([]string{ServerKeysVolume, ServerAllowlistVolume, ClientKeysVolume}, name)
}
