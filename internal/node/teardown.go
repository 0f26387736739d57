package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host paths a node uses that its Options.Dir cannot move: containerd 1.6
// puts its shims' sockets and fifos under /run/containerd, CNI its network
// namespaces under /run/netns and its result cache under /var/lib/cni, and
// the kubelet its device plugin socket under /var/lib/kubelet and its
// container log links under /var/log/containers. They make it one node per
// machine.
const (
	shimSocketDir    = "/run/containerd/s"
	shimFifoDir      = "/run/containerd/fifo"
	netnsDir         = "/run/netns"
	cniCacheDir      = "/var/lib/cni/results"
	devicePluginDir  = "/var/lib/kubelet/device-plugins"
	containerLogLink = "/var/log/containers"
	cgroupRoot       = "/sys/fs/cgroup"
)

// cgroupNames are the cgroups a node creates at the top of every v1
// hierarchy (and of the unified one): the kubelet's pod tree, and
// containerd's namespace for what it runs outside pods.
var cgroupNames = []string{"kubepods", "k8s.io"}

// Teardown removes everything a node left on the machine, whether it stopped
// cleanly or died: its processes and the pods' processes, mounts, network
// namespaces, cgroups, iptables chains, the bridge, containerd's shim
// sockets and fifos, container log links, and the node's directory; it puts
// net.ipv4.ip_forward back to what it was before the node started. It is
// idempotent and runs at every Start too. Every step is tried; the errors are
// joined.
func Teardown(ctx context.Context, dir string) error {
	l := layout{dir: dir}
	var errs []error
	// Processes first, so nothing holds a mount or re-creates a rule.
	errs = append(errs, killProcessesUsing(ctx, dir))
	errs = append(errs, killCgroups(ctx))
	errs = append(errs, unmountUnder(dir, netnsDir))
	errs = append(errs, removeNetns())
	errs = append(errs, removeCgroups())
	errs = append(errs, removeChains(ctx))
	if err := exec.CommandContext(ctx, "ip", "link", "show", BridgeName).Run(); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", BridgeName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %v: %s", BridgeName, err, out))
		}
	}
	errs = append(errs, restoreIPForward(l))
	errs = append(errs, removeShimFiles())
	errs = append(errs, removeLogLinks(dir))
	errs = append(errs, removeFixedPathFiles())
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node teardown: %w", err)
	}
	return nil
}

// killProcessesUsing kills every process whose command line names dir: the
// node's components all take paths under it, and containerd's shims take
// its socket.
func killProcessesUsing(ctx context.Context, dir string) error {
	for attempt := 0; attempt < 50; attempt++ {
		pids := processesUsing(dir)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("processes using %s survive SIGKILL: %v", dir, processesUsing(dir))
}

func processesUsing(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(stat) {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.Contains(cmdline, []byte(dir+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// cgroupDirs lists, deepest first, the node's cgroup directories in every
// hierarchy.
func cgroupDirs() []string {
	hierarchies, _ := os.ReadDir(cgroupRoot)
	var dirs []string
	for _, h := range hierarchies {
		for _, name := range cgroupNames {
			top := filepath.Join(cgroupRoot, h.Name(), name)
			_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return dirs
}

// killCgroups kills the pods' processes: containers outlive a killed shim,
// and only their cgroups still know them.
func killCgroups(ctx context.Context) error {
	for attempt := 0; attempt < 50; attempt++ {
		alive := 0
		for _, d := range cgroupDirs() {
			data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					alive++
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if alive == 0 {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return errors.New("pod processes survive SIGKILL")
}

func removeCgroups() error {
	var errs []error
	for _, d := range cgroupDirs() {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount below the given directories, deepest
// first: overlay root filesystems, Secret and ConfigMap tmpfs, shm, the
// kubelet's bind mounts, network namespace files.
func unmountUnder(dirs ...string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				points = append(points, mp)
				break
			}
		}
	}
	slices.SortFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeNetns removes the CNI network namespaces (named cni-*): with their
// processes gone and their files unmounted, the kernel frees them and their
// veths.
func removeNetns() error {
	entries, _ := os.ReadDir(netnsDir)
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			if err := os.Remove(filepath.Join(netnsDir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeChains deletes the CNI-* and KUBE-* chains, and the rules that jump
// to them, from every table of iptables and ip6tables: the kubelet's
// KUBE-FIREWALL, kube-proxy's service chains, the portmap plugin's chains.
// Each table is rewritten at once with iptables-restore.
func removeChains(ctx context.Context) error {
	var errs []error
	for _, family := range []string{"iptables", "ip6tables"} {
		save, err := exec.CommandContext(ctx, family+"-save").Output()
		if err != nil {
			if _, missing := exec.LookPath(family + "-save"); missing != nil {
				continue
			}
			errs = append(errs, fmt.Errorf("%s-save: %w", family, err))
			continue
		}
		kept, changed := withoutNodeChains(save)
		if !changed {
			continue
		}
		cmd := exec.CommandContext(ctx, family+"-restore")
		cmd.Stdin = bytes.NewReader(kept)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s-restore: %w: %s", family, err, out))
		}
	}
	return errors.Join(errs...)
}

// withoutNodeChains drops from iptables-save output the KUBE-* and CNI-*
// chains and every rule in them or jumping to them.
func withoutNodeChains(save []byte) ([]byte, bool) {
	ours := func(chain string) bool { return strings.HasPrefix(chain, "KUBE-") || strings.HasPrefix(chain, "CNI-") }
	var out bytes.Buffer
	changed := false
	for _, line := range strings.SplitAfter(string(save), "\n") {
		fields := strings.Fields(line)
		drop := false
		switch {
		case len(fields) > 0 && strings.HasPrefix(fields[0], ":"):
			drop = ours(strings.TrimPrefix(fields[0], ":"))
		case len(fields) > 1 && fields[0] == "-A":
			drop = ours(fields[1])
			for i := 2; i+1 < len(fields) && !drop; i++ {
				if (fields[i] == "-j" || fields[i] == "-g") && ours(fields[i+1]) {
					drop = true
				}
			}
		}
		if drop {
			changed = true
			continue
		}
		out.WriteString(line)
	}
	return out.Bytes(), changed
}

// restoreIPForward puts back the value Start saved, if it saved one.
func restoreIPForward(l layout) error {
	saved, err := os.ReadFile(l.ipForwardSaved())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ip_forward: %w", err)
	}
	if err := os.WriteFile(ipForwardPath, bytes.TrimSpace(saved), 0o644); err != nil {
		return fmt.Errorf("ip_forward: %w", err)
	}
	return nil
}

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// removeShimFiles removes containerd's shim sockets and fifos, once no
// containerd runs: they are at fixed paths, shared with any other
// containerd on the machine.
func removeShimFiles() error {
	if len(processesNamed("containerd")) > 0 {
		return nil
	}
	return errors.Join(os.RemoveAll(shimSocketDir), os.RemoveAll(shimFifoDir))
}

func processesNamed(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeFixedPathFiles removes the node's files at fixed host paths (CNI's
// cache of this network's results, the kubelet's device plugin socket),
// then those directories where they are left empty: the node made them.
func removeFixedPathFiles() error {
	var errs []error
	if entries, err := os.ReadDir(cniCacheDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), cniNetwork+"-") || strings.HasPrefix(e.Name(), "cni-loopback-") {
				errs = append(errs, os.Remove(filepath.Join(cniCacheDir, e.Name())))
			}
		}
	}
	if len(processesNamed("kubelet")) == 0 {
		errs = append(errs, ignoreMissing(os.Remove(filepath.Join(devicePluginDir, "kubelet.sock"))))
	}
	for _, d := range []string{cniCacheDir, filepath.Dir(cniCacheDir), devicePluginDir, filepath.Dir(devicePluginDir), containerLogLink, filepath.Dir(shimSocketDir)} {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			errs = append(errs, os.Remove(d))
		}
	}
	return errors.Join(errs...)
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// removeLogLinks removes the kubelet's links in /var/log/containers that
// point into the node's directory.
func removeLogLinks(dir string) error {
	entries, _ := os.ReadDir(containerLogLink)
	var errs []error
	for _, e := range entries {
		p := filepath.Join(containerLogLink, e.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
