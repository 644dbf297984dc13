#!/usr/bin/env bash
# Builds the image of a swarm node for the tests that start a real multi-node
# swarm (internal/testenv/cluster.go), from Debian's packages, since no registry
# is reachable: a Debian root filesystem made by mmdebstrap with docker.io (the
# Docker Engine Debian ships), iptables, iproute2 and ca-certificates, imported
# with `docker import`. A node is a container of this image running dockerd; the
# tests start three and make them a swarm. The entrypoint removes the pid files a
# killed dockerd leaves, so a node whose engine was killed starts again. Idempotent: an image that exists is
# kept; the tag's revision changes whenever the image's recipe does. Needs root
# (mmdebstrap --mode=root, apt-get).
#
# Usage: node-image.sh   (prints nothing; logs to stderr)
set -euo pipefail
log() { printf 'node-image: %s\n' "$*" >&2; }

# Keep this tag in step with internal/testenv (NodeImageTag).
tag=deploykit-test/swarm-node:20.10-r2

if docker image inspect "$tag" >/dev/null 2>&1; then
	exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "building the root filesystem needs root"; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
	log "installing mmdebstrap from Debian's packages"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
log "building $tag from Debian $suite packages (about two minutes)"
mmdebstrap --quiet --mode=root --variant=essential \
	--include=docker.io,iptables,iproute2,ca-certificates,procps \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	"$suite" "$work/rootfs.tar"
docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENTRYPOINT ["/bin/sh", "-c", "rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid; exec /usr/sbin/dockerd \"$@\"", "dockerd"]' \
	"$work/rootfs.tar" "$tag" >/dev/null
log "built $tag"
