package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// The node's network. Pods may reach only what the node setup made: the
// bridge, its host address (the API server, DNS) and each other.
const (
	// BridgeName is the Linux bridge the pods' veths are attached to.
	BridgeName = "zmqauth0"
	// PodCIDR is the pods' subnet on the bridge.
	PodCIDR = "10.244.0.0/24"
	// HostIP is the node's own address on the bridge: the API server
	// listens and advertises itself there (the kubernetes Service points
	// at it), and DNS answers there. Never the machine's external
	// interface.
	HostIP = "10.244.0.1"
	// ServiceCIDR is where ClusterIPs come from; kube-proxy routes them.
	ServiceCIDR = "10.96.0.0/24"
	// NodeName is the one node's name.
	NodeName = "zmqauth-node"
	// ClusterDomain is the DNS domain of Services.
	ClusterDomain = "cluster.local"
	// APIServerPort is the API server's port on HostIP.
	APIServerPort = 6443
	// etcd's client and peer ports, on loopback.
	etcdClientPort = 23790
	etcdPeerPort   = 23800
	// cniNetwork names the CNI network.
	cniNetwork = "zmqauth"
)

// layout is where everything of one node lives, under Options.Dir.
type layout struct{ dir string }

func (l layout) path(parts ...string) string {
	return filepath.Join(append([]string{l.dir}, parts...)...)
}
func (l layout) pki() string               { return l.path("pki") }
func (l layout) logs() string              { return l.path("logs") }
func (l layout) etcdData() string          { return l.path("etcd") }
func (l layout) containerdRoot() string    { return l.path("containerd", "root") }
func (l layout) containerdState() string   { return l.path("containerd", "state") }
func (l layout) containerdSocket() string  { return l.path("containerd", "containerd.sock") }
func (l layout) containerdConfig() string  { return l.path("containerd", "config.toml") }
func (l layout) cniConfDir() string        { return l.path("cni", "net.d") }
func (l layout) cniIPAM() string           { return l.path("cni", "ipam") }
func (l layout) kubeletRoot() string       { return l.path("kubelet") }
func (l layout) kubeletConfig() string     { return l.path("kubelet-config.yaml") }
func (l layout) podLogs() string           { return l.path("pod-logs") }
func (l layout) resolvConf() string        { return l.path("resolv.conf") }
func (l layout) kubeProxyConfig() string   { return l.path("kube-proxy-config.yaml") }
func (l layout) corefile() string          { return l.path("Corefile") }
func (l layout) adminKubeconfig() string   { return l.path("admin.kubeconfig") }
func (l layout) kubeletKubeconfig() string { return l.path("kubelet.kubeconfig") }
func (l layout) ipForwardSaved() string    { return l.path("ip_forward.saved") }

func apiServerURL() string { return fmt.Sprintf("https://%s:%d", HostIP, APIServerPort) }

// writeKubeconfig writes a kubeconfig for the user whose certificate and key
// are in the PKI, embedding them so the file can be copied.
func writeKubeconfig(path string, p *pki, certFile, keyFile string) error {
	ca, err := os.ReadFile(p.path(caFile))
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cert, err := os.ReadFile(p.path(certFile))
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	key, err := os.ReadFile(p.path(keyFile))
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["zmqauth-node"] = &clientcmdapi.Cluster{Server: apiServerURL(), CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["zmqauth-node"] = &clientcmdapi.Context{Cluster: "zmqauth-node", AuthInfo: "user"}
	cfg.CurrentContext = "zmqauth-node"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

// containerdConfig is containerd's configuration: everything under the
// node's directory (root, state, socket, CNI), runc with cgroupfs, and the
// locally built pause image as the sandbox.
//
// restrict_oom_score_adj: root on these machines lacks CAP_SYS_RESOURCE, so
// runc cannot lower a container's oom_score_adj below its own and every pod
// sandbox would fail ("can't get final child's PID from pipe"); the option
// clamps the value instead.
func containerdConfig(l layout, sandboxImage string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, l.containerdRoot(), l.containerdState(), l.containerdSocket(), l.path("containerd", "opt"), sandboxImage, l.path("containerd", "runc"), l.cniConfDir())
}

// cniConfig is the pods' network: a bridge with the host as gateway,
// addresses from PodCIDR, IPAM state under the node's directory. No
// masquerading: pods have nowhere outside the node to go.
func cniConfig(l layout) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       cniNetwork,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      BridgeName,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": PodCIDR, "gateway": HostIP}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": l.cniIPAM(),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	return b, nil
}

// kubeletConfig is the KubeletConfiguration. Settings these machines need:
// cgroup v1 (failCgroupV1: false) with the cgroupfs driver, swap tolerated;
// its own root, certificate and pod log directories. syncFrequency sets how
// soon Secret and ConfigMap volume changes reach the pods' files.
func kubeletConfig(l layout, p *pki, syncFrequency time.Duration) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"authentication": map[string]any{
			"anonymous": map[string]bool{"enabled": false},
			"webhook":   map[string]bool{"enabled": false},
			"x509":      map[string]string{"clientCAFile": p.path(caFile)},
		},
		"authorization":            map[string]string{"mode": "AlwaysAllow"},
		"address":                  HostIP,
		"healthzBindAddress":       "127.0.0.1",
		"readOnlyPort":             0,
		"cgroupDriver":             "cgroupfs",
		"failCgroupV1":             false,
		"failSwapOn":               false,
		"containerRuntimeEndpoint": "unix://" + l.containerdSocket(),
		"clusterDNS":               []string{HostIP},
		"clusterDomain":            ClusterDomain,
		"resolvConf":               l.resolvConf(),
		"syncFrequency":            syncFrequency.String(),
		"podLogsDir":               l.podLogs(),
		"serializeImagePulls":      false,
		"tlsCertFile":              p.path(kubeletCertFile),
		"tlsPrivateKeyFile":        p.path(kubeletKeyFile),
		// Disk and memory are shared with the machine's other work: evict
		// only when they are nearly gone.
		"evictionHard": map[string]string{
			"memory.available":  "100Mi",
			"nodefs.available":  "1%",
			"imagefs.available": "1%",
		},
		"imageGCHighThresholdPercent": 100,
		"protectKernelDefaults":       false,
		"makeIPTablesUtilChains":      true,
		"staticPodPath":               "",
		"shutdownGracePeriod":         "0s",
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	return b, nil
}

// kubeProxyConfig: iptables mode, leaving the conntrack sysctls alone (root
// here may not write them).
func kubeProxyConfig(l layout) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"clientConnection":   map[string]string{"kubeconfig": l.adminKubeconfig()},
		"mode":               "iptables",
		"clusterCIDR":        PodCIDR,
		"hostnameOverride":   NodeName,
		"bindAddress":        HostIP,
		"healthzBindAddress": "127.0.0.1:10256",
		"metricsBindAddress": "127.0.0.1:10249",
		// NodePorts on the node's own address, never on the machine's
		// external interface.
		"nodePortAddresses": []string{"primary"},
		"conntrack": map[string]any{
			"maxPerCore":            0,
			"tcpEstablishedTimeout": "0s",
			"tcpCloseWaitTimeout":   "0s",
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	return b, nil
}

// corefile makes CoreDNS answer cluster.local (and reverse lookups) from the
// API server on HostIP, and refuse every other name: it forwards nothing.
func corefile(l layout) string {
	return strings.Join([]string{
		fmt.Sprintf("%s:53 in-addr.arpa:53 ip6.arpa:53 {", ClusterDomain),
		"    bind " + HostIP,
		"    errors",
		"    cache 5",
		fmt.Sprintf("    kubernetes %s in-addr.arpa ip6.arpa {", ClusterDomain),
		fmt.Sprintf("        kubeconfig %s zmqauth-node", l.adminKubeconfig()),
		"        pods insecure",
		"    }",
		"}",
		"",
	}, "\n")
}
