#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, etcd, kubectl) from Go modules
# pinned under hack/controlplane/, once per machine, and links bin/k8s to it.
#
# The binaries live outside the clone, in a cache keyed by version, so a fresh
# clone on the same machine (as CI uses) reuses them. Nothing prebuilt is
# downloaded: only Go modules from the module proxy.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kube_version=$(awk '/^require k8s.io\/kubernetes /{print $3}' "$root/hack/controlplane/kube/go.mod")
etcd_version=$(awk '/^require go.etcd.io\/etcd\/server\/v3 /{print $3}' "$root/hack/controlplane/etcd/go.mod")
cache=${ZMQAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zmqauth}
dest="$cache/controlplane-${kube_version}-etcd-${etcd_version}"

build() { # build NAME MODULE-DIR PACKAGE
	local name=$1 dir=$2 pkg=$3
	if [ -x "$dest/$name" ]; then
		return 0
	fi
	echo "hack/controlplane.sh: building $name from $pkg (once per machine, a few minutes)" >&2
	mkdir -p "$dest"
	(cd "$dir" && CGO_ENABLED=0 GOEXPERIMENT= go build -trimpath -ldflags='-s -w' -o "$dest/$name.tmp" "$pkg")
	mv "$dest/$name.tmp" "$dest/$name"
}

build etcd "$root/hack/controlplane/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl "$root/hack/controlplane/kube" k8s.io/kubernetes/cmd/kubectl

mkdir -p "$root/bin"
ln -sfn "$dest" "$root/bin/k8s"
echo "$root/bin/k8s"
