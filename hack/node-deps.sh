#!/usr/bin/env bash
# Installs what a one-node cluster (internal/node) needs on a fresh Debian
# machine, once: containerd, runc, the CNI plugins, iptables and conntrack
# from Debian, and the kubelet, kube-controller-manager, kube-scheduler,
# kube-proxy and CoreDNS built from their Go modules (hack/controlplane/kube,
# hack/controlplane/coredns) next to the control plane hack/controlplane.sh
# builds. Prints the directory holding the binaries.
#
# It installs; it does not judge the machine. internal/node says why a node
# cannot run where it cannot (not root, no cgroups).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# The control plane first: the node binaries go into its directory, and the
# kube builds reuse its build cache.
dest=$("$root/hack/controlplane.sh")

need_apt=()
for pair in containerd:containerd runc:runc iptables:iptables conntrack:conntrack ip:iproute2; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need_apt+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || need_apt+=(containernetworking-plugins)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "hack/node-deps.sh: installing ${need_apt[*]} from Debian" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

kube_version=$(awk '/^require k8s.io\/kubernetes /{print $3}' "$root/hack/controlplane/kube/go.mod")
kube_minor=${kube_version#v*.}
kube_minor=${kube_minor%%.*}
# Without the version stamped in, the node and `kubectl version` report
# v0.0.0-master.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${kube_minor}"

build() { # build NAME MODULE-DIR PACKAGE
	local name=$1 dir=$2 pkg=$3
	[ -x "$dest/$name" ] && return 0
	echo "hack/node-deps.sh: building $name from $pkg (once per machine, up to a few minutes)" >&2
	(cd "$dir" && CGO_ENABLED=0 GOEXPERIMENT= go build -trimpath -ldflags="$ldflags" -o "$dest/$name.tmp" "$pkg")
	mv "$dest/$name.tmp" "$dest/$name"
}

build kube-scheduler "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kube-scheduler
build kube-proxy "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kube-proxy
build kube-controller-manager "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kube-controller-manager
build kubelet "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kubelet
build coredns "$root/hack/controlplane/coredns" .

echo "$dest"
