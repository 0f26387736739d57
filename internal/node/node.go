// Package node runs a one-node Kubernetes cluster on this machine, so that
// pods with the injected sidecar run under a real kubelet: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, then
// containerd with runc and the CNI bridge plugin, the kubelet, kube-proxy and
// CoreDNS, all as host processes, with images imported from tar archives
// built here (no registry, no docker).
//
// Everything the node writes is under one directory (Options.Dir), except
// the few host paths containerd, CNI and the kubelet fix (see teardown.go),
// which is why there can be one node per machine. Teardown removes all of it
// and runs at the start of every Start, so a run that died is cleaned up by
// the next one.
//
// The node needs root and cgroups; Check says why it cannot run where it
// cannot. hack/node-deps.sh installs and builds what it runs.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultDir is where a node keeps its state unless told otherwise.
const DefaultDir = "/var/lib/zmqauth-node"

// DefaultSyncFrequency is the kubelet's sync period on this node: how soon a
// changed Secret or ConfigMap reaches the files mounted in pods. Shortened
// for tests from the kubelet's default of one minute.
const DefaultSyncFrequency = 5 * time.Second

// Options configures Start.
type Options struct {
	// Dir holds all of the node's state; DefaultDir if empty. Teardown
	// removes it.
	Dir string
	// Binaries holds etcd, kube-apiserver, kubectl, kube-controller-manager,
	// kube-scheduler, kube-proxy, kubelet and coredns (bin/k8s after
	// hack/node-deps.sh).
	Binaries string
	// Images are docker-archive tar files imported into containerd before
	// the kubelet starts; SandboxImage, the pause image, must be among
	// them.
	Images []string
	// SandboxImage is the pause image's reference.
	SandboxImage string
	// SyncFrequency is the kubelet's syncFrequency; DefaultSyncFrequency
	// if zero.
	SyncFrequency time.Duration
	// Log receives one line per step; nil for none.
	Log io.Writer
}

// Node is a running one-node cluster.
type Node struct {
	opts       Options
	layout     layout
	pki        *pki
	components map[string]*component
	lock       *os.File
	// Kubeconfig is the path of a cluster-admin kubeconfig.
	Kubeconfig string
	// Kubectl is the kubectl binary built for this cluster.
	Kubectl string
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Clientset is a client of Config.
	Clientset kubernetes.Interface
}

// Binaries the node runs, in Options.Binaries.
var binaries = []string{"etcd", "kube-apiserver", "kubectl", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "coredns"}

// Check reports why a node cannot run on this machine, or nil: it needs
// root, cgroups, and the programs hack/node-deps.sh installs.
func Check(binDir string) error {
	if os.Geteuid() != 0 {
		return errors.New("a node needs root (the kubelet, containerd and runc manage cgroups, mounts and network namespaces)")
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")); err != nil {
		if _, err2 := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err2 != nil {
			return fmt.Errorf("a node needs cgroups: neither a v1 memory hierarchy nor cgroup v2 is mounted at %s", cgroupRoot)
		}
	}
	for _, bin := range binaries {
		if _, err := os.Stat(filepath.Join(binDir, bin)); err != nil {
			return fmt.Errorf("%s is missing from %s: run hack/node-deps.sh", bin, binDir)
		}
	}
	for _, prog := range []string{"containerd", "runc", "ctr", "iptables", "iptables-save", "iptables-restore", "ip"} {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%s is not installed: run hack/node-deps.sh", prog)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return errors.New("the CNI plugins are not installed (/usr/lib/cni): run hack/node-deps.sh")
	}
	return nil
}

func (n *Node) logf(format string, args ...any) {
	if n.opts.Log != nil {
		fmt.Fprintf(n.opts.Log, "node: "+format+"\n", args...)
	}
}

// Start removes what an earlier node left, then brings up a new one and
// returns when the node is Ready, the default ServiceAccount exists and DNS
// answers. The caller must Stop it; on error Start has already torn down
// what it made.
func Start(ctx context.Context, opts Options) (n *Node, err error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir
	}
	if opts.SyncFrequency == 0 {
		opts.SyncFrequency = DefaultSyncFrequency
	}
	if err := Check(opts.Binaries); err != nil {
		return nil, err
	}
	n = &Node{opts: opts, layout: layout{dir: opts.Dir}, components: map[string]*component{}, Kubectl: filepath.Join(opts.Binaries, "kubectl")}
	if n.lock, err = lockMachine(ctx, n.logf); err != nil {
		return nil, err
	}
	began := time.Now()
	defer func() {
		if err != nil {
			if stopErr := n.Stop(context.WithoutCancel(ctx)); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"removing what an earlier node left", func(ctx context.Context) error { return Teardown(ctx, opts.Dir) }},
		{"host network", n.setupNetwork},
		{"certificates", n.setupPKI},
		{"etcd and kube-apiserver", n.startAPIServer},
		{"controller-manager and scheduler", n.startControllers},
		{"containerd and images", n.startContainerd},
		{"kubelet, kube-proxy and DNS", n.startNodeAgents},
		{"node Ready", n.waitReady},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return n, fmt.Errorf("node: %s: %w", s.name, err)
		}
		n.logf("%s (%s)", s.name, time.Since(t).Round(time.Millisecond))
	}
	n.logf("up in %s; export KUBECONFIG=%s", time.Since(began).Round(time.Millisecond), n.Kubeconfig)
	return n, nil
}

func (n *Node) setupNetwork(ctx context.Context) error {
	for _, d := range []string{n.layout.logs(), n.layout.cniConfDir(), n.layout.cniIPAM(), n.layout.podLogs(), n.layout.kubeletRoot(), n.layout.path("containerd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Routed pod -> Service -> pod traffic needs forwarding; Teardown puts
	// the old value back.
	old, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.layout.ipForwardSaved(), old, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(ipForwardPath, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	// The bridge exists before the first pod so the API server can listen
	// on its address; the CNI bridge plugin adopts it.
	for _, args := range [][]string{
		{"link", "add", BridgeName, "type", "bridge"},
		{"addr", "add", HostIP + "/24", "dev", BridgeName},
		{"link", "set", BridgeName, "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
	}
	return os.WriteFile(n.layout.resolvConf(), []byte("nameserver "+HostIP+"\n"), 0o644)
}

func (n *Node) setupPKI(context.Context) error {
	p, err := newPKI(n.layout.pki())
	if err != nil {
		return err
	}
	n.pki = p
	_, svcNet, err := net.ParseCIDR(ServiceCIDR)
	if err != nil {
		return err
	}
	firstService := append(net.IP(nil), svcNet.IP.To4()...)
	firstService[3]++
	hosts := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain, "localhost"}
	ips := []net.IP{net.ParseIP(HostIP), firstService, net.ParseIP("127.0.0.1")}
	if err := p.issue(apiServerCertFile, apiServerKeyFile, "kube-apiserver", nil, hosts, ips); err != nil {
		return err
	}
	if err := p.issue(adminCertFile, adminKeyFile, "zmqauth-node-admin", []string{"system:masters"}, nil, nil); err != nil {
		return err
	}
	// The kubelet as the Node authorizer expects it, serving on HostIP.
	if err := p.issue(kubeletCertFile, kubeletKeyFile, "system:node:"+NodeName, []string{"system:nodes"}, []string{NodeName}, []net.IP{net.ParseIP(HostIP)}); err != nil {
		return err
	}
	if err := p.serviceAccountKeys(); err != nil {
		return err
	}
	n.Kubeconfig = n.layout.adminKubeconfig()
	if err := writeKubeconfig(n.Kubeconfig, p, adminCertFile, adminKeyFile); err != nil {
		return err
	}
	return writeKubeconfig(n.layout.kubeletKubeconfig(), p, kubeletCertFile, kubeletKeyFile)
}

func (n *Node) bin(name string) string { return filepath.Join(n.opts.Binaries, name) }

func (n *Node) apiServerArgs() []string {
	p := n.pki
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--bind-address=" + HostIP,
		"--advertise-address=" + HostIP,
		"--secure-port=" + strconv.Itoa(APIServerPort),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--client-ca-file=" + p.path(caFile),
		"--tls-cert-file=" + p.path(apiServerCertFile),
		"--tls-private-key-file=" + p.path(apiServerKeyFile),
		"--kubelet-client-certificate=" + p.path(adminCertFile),
		"--kubelet-client-key=" + p.path(adminKeyFile),
		"--service-account-key-file=" + p.path(saPubFile),
		"--service-account-signing-key-file=" + p.path(saKeyFile),
		"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
		"--authorization-mode=Node,RBAC",
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=false",
		"--profiling=false",
		// Stopped, it drains requests and gives open watches 2 s instead
		// of its 60 s request timeout.
		"--shutdown-send-retry-after=true",
		"--shutdown-delay-duration=0s",
	}
}

func (n *Node) startAPIServer(ctx context.Context) error {
	if _, err := n.startComponent("etcd", n.bin("etcd"),
		"--data-dir="+n.layout.etcdData(),
		"--listen-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdClientPort),
		"--advertise-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdClientPort),
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--initial-cluster=default=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--unsafe-no-fsync",
	); err != nil {
		return err
	}
	if _, err := n.startComponent("kube-apiserver", n.bin("kube-apiserver"), n.apiServerArgs()...); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", n.Kubeconfig)
	if err != nil {
		return err
	}
	n.Config = cfg
	if n.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	return n.waitAPIServer(ctx)
}

// StopAPIServer stops the kube-apiserver (etcd and everything else keep
// running), as an outage of the control plane: for fault tests, with
// StartAPIServer to end the outage.
func (n *Node) StopAPIServer(context.Context) error {
	c := n.components["kube-apiserver"]
	if c == nil {
		return errors.New("node: the kube-apiserver was never started")
	}
	c.stop(10 * time.Second)
	return nil
}

// StartAPIServer starts the kube-apiserver StopAPIServer stopped, with the
// same arguments, and waits until it is ready again.
func (n *Node) StartAPIServer(ctx context.Context) error {
	c := n.components["kube-apiserver"]
	if c == nil {
		return errors.New("node: the kube-apiserver was never started")
	}
	if c.running() == nil {
		return errors.New("node: the kube-apiserver is running")
	}
	if err := c.start(); err != nil {
		return err
	}
	return n.waitAPIServer(ctx)
}

// waitAPIServer waits until the API server's /readyz says ok.
func (n *Node) waitAPIServer(ctx context.Context) error {
	return n.poll(ctx, 2*time.Minute, "kube-apiserver ready", []string{"etcd", "kube-apiserver"}, func(ctx context.Context) (bool, error) {
		body, err := n.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

func (n *Node) startControllers(context.Context) error {
	if _, err := n.startComponent("kube-controller-manager", n.bin("kube-controller-manager"),
		"--kubeconfig="+n.Kubeconfig,
		"--authentication-kubeconfig="+n.Kubeconfig,
		"--authorization-kubeconfig="+n.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--root-ca-file="+n.pki.path(caFile),
		"--service-account-private-key-file="+n.pki.path(saKeyFile),
		"--use-service-account-credentials=true",
		"--cluster-name=zmqauth-node",
		"--profiling=false",
	); err != nil {
		return err
	}
	_, err := n.startComponent("kube-scheduler", n.bin("kube-scheduler"),
		"--kubeconfig="+n.Kubeconfig,
		"--authentication-kubeconfig="+n.Kubeconfig,
		"--authorization-kubeconfig="+n.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--profiling=false",
	)
	return err
}

func (n *Node) startContainerd(ctx context.Context) error {
	if err := os.WriteFile(n.layout.containerdConfig(), []byte(containerdConfig(n.layout, n.opts.SandboxImage)), 0o644); err != nil {
		return err
	}
	cni, err := cniConfig(n.layout)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.layout.cniConfDir(), "10-zmqauth.conflist"), cni, 0o644); err != nil {
		return err
	}
	if _, err := n.startComponent("containerd", "containerd", "--config", n.layout.containerdConfig()); err != nil {
		return err
	}
	if err := n.poll(ctx, time.Minute, "containerd", []string{"containerd"}, func(ctx context.Context) (bool, error) {
		return exec.CommandContext(ctx, "ctr", "--address", n.layout.containerdSocket(), "version").Run() == nil, nil
	}); err != nil {
		return err
	}
	for _, img := range n.opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage loads a docker-archive tar file into the containerd
// namespace the kubelet uses; pods then run it with imagePullPolicy
// IfNotPresent or Never.
func (n *Node) ImportImage(ctx context.Context, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.layout.containerdSocket(), "-n", "k8s.io", "images", "import", "--no-unpack=false", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("import %s: %w: %s", archive, err, out)
	}
	return nil
}

func (n *Node) startNodeAgents(context.Context) error {
	kubelet, err := kubeletConfig(n.layout, n.pki, n.opts.SyncFrequency)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.layout.kubeletConfig(), kubelet, 0o644); err != nil {
		return err
	}
	if _, err := n.startComponent("kubelet", n.bin("kubelet"),
		"--config="+n.layout.kubeletConfig(),
		"--kubeconfig="+n.layout.kubeletKubeconfig(),
		"--root-dir="+n.layout.kubeletRoot(),
		"--cert-dir="+n.layout.path("kubelet-pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+HostIP,
		"--v=1",
	); err != nil {
		return err
	}
	proxy, err := kubeProxyConfig(n.layout)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.layout.kubeProxyConfig(), proxy, 0o644); err != nil {
		return err
	}
	if _, err := n.startComponent("kube-proxy", n.bin("kube-proxy"), "--config="+n.layout.kubeProxyConfig()); err != nil {
		return err
	}
	if err := os.WriteFile(n.layout.corefile(), []byte(corefile(n.layout)), 0o644); err != nil {
		return err
	}
	_, err = n.startComponent("coredns", n.bin("coredns"), "-conf", n.layout.corefile())
	return err
}

// waitReady waits for the node to be Ready, the default namespace's
// ServiceAccount (made by the controller-manager; pods need it) and DNS.
func (n *Node) waitReady(ctx context.Context) error {
	if err := n.poll(ctx, 2*time.Minute, "node Ready", []string{"kubelet", "containerd"}, func(ctx context.Context) (bool, error) {
		node, err := n.Clientset.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	if err := n.poll(ctx, 2*time.Minute, "default ServiceAccount", []string{"kube-controller-manager"}, func(ctx context.Context) (bool, error) {
		_, err := n.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return err
	}
	resolver := n.Resolver()
	return n.poll(ctx, time.Minute, "DNS", []string{"coredns"}, func(ctx context.Context) (bool, error) {
		addrs, err := resolver.LookupHost(ctx, "kubernetes.default.svc."+ClusterDomain)
		return err == nil && len(addrs) > 0, nil
	})
}

// Resolver asks the node's DNS, as pods do.
func (n *Node) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(HostIP, "53"))
	}}
}

// poll calls cond every 250 ms until it returns true, an error, timeout, or
// one of the watched components exits (then the error has its log's end).
func (n *Node) poll(ctx context.Context, timeout time.Duration, what string, watch []string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		for _, name := range watch {
			if c := n.components[name]; c != nil {
				if err := c.running(); err != nil {
					return fmt.Errorf("waiting for %s: %w", what, err)
				}
			}
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

// Stop stops the node's components, the API server before etcd, and then
// tears everything down (Teardown), the logs with it: SaveLogs first to
// keep them.
func (n *Node) Stop(ctx context.Context) error {
	for _, name := range []string{"coredns", "kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if c := n.components[name]; c != nil {
			c.stop(10 * time.Second)
		}
	}
	// containerd last, after the pods' processes are gone (Teardown kills
	// them through their cgroups).
	err := Teardown(ctx, n.opts.Dir)
	if n.lock != nil {
		n.lock.Close()
		n.lock = nil
	}
	return err
}

// ContainerdSocket is the address of the node's containerd, for `ctr
// --address` (namespace k8s.io holds the kubelet's containers).
func (n *Node) ContainerdSocket() string { return n.layout.containerdSocket() }

// SavePodLogs copies the container logs the kubelet keeps for the pods of
// namespace (every container, every restart) into dir, one directory per
// pod as the kubelet lays them out (NAMESPACE_POD_UID/CONTAINER/N.log): for
// a failed test to keep before its namespace and its logs go.
func (n *Node) SavePodLogs(dir, namespace string) error {
	pods, err := filepath.Glob(filepath.Join(n.layout.podLogs(), namespace+"_*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, pod := range pods {
		errs = append(errs, filepath.WalkDir(pod, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(n.layout.podLogs(), path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			target := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}))
	}
	return errors.Join(errs...)
}

// SaveLogs copies the components' logs into dir (for a failed test to keep).
func (n *Node) SaveLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(n.layout.logs())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(n.layout.logs(), e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
