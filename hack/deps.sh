#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and nothing twice:
# libzmq and pyzmq (the reference ZeroMQ peer, Debian's libzmq3-dev and
# python3-zmq for /usr/bin/python3), then the envtest control plane built from
# Go modules (hack/controlplane.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

need_apt=()
/usr/bin/python3 -c 'import zmq, zmq.auth' 2>/dev/null || need_apt+=(python3-zmq)
pkg-config --exists libzmq 2>/dev/null || need_apt+=(libzmq3-dev pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "hack/deps.sh: installing ${need_apt[*]} from Debian" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

"$root/hack/controlplane.sh" >/dev/null
