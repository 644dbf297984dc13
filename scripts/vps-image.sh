#!/usr/bin/env bash
# Builds the image of a "VPS" for the tests that deploy from a runner elsewhere
# over SSH (internal/remote, internal/testenv/vps.go): Debian's Docker Engine and
# OpenSSH server, from Debian's packages (no registry is reachable), made by
# mmdebstrap and imported with `docker import`. A VPS is a container of this image
# running dockerd and sshd; the user deploy (group docker) logs in with a key the
# test gives it. The test's process has no route to the networks of the engine
# inside, as a hosted runner has none to a server's. Idempotent: an image that
# exists is kept; the tag's revision changes whenever the recipe does. Needs root.
#
# Usage: vps-image.sh   (prints nothing; logs to stderr)
set -euo pipefail
log() { printf 'vps-image: %s\n' "$*" >&2; }

# Keep this tag in step with internal/testenv (VPSImageTag).
tag=deploykit-test/vps:20.10-r2

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
cat >"$work/vps-init" <<'INIT'
#!/bin/sh
# A killed engine leaves its pid files; sshd needs its run directory and keys.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
mkdir -p /run/sshd
ssh-keygen -A >/dev/null 2>&1
/usr/sbin/sshd -E /var/log/sshd.log
exec /usr/sbin/dockerd "$@"
INIT
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
log "building $tag from Debian $suite packages (about two minutes)"
mmdebstrap --quiet --mode=root --variant=essential \
	--include=docker.io,iptables,iproute2,ca-certificates,procps,openssh-server,bash,util-linux,git \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook='chroot "$1" useradd -m -s /bin/bash -G docker deploy' \
	--customize-hook='chroot "$1" usermod -p "*" deploy' \
	--customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
	--customize-hook="upload $work/vps-init /usr/local/bin/vps-init" \
	--customize-hook='chmod 0755 "$1/usr/local/bin/vps-init"' \
	"$suite" "$work/rootfs.tar"
docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENTRYPOINT ["/usr/local/bin/vps-init"]' \
	"$work/rootfs.tar" "$tag" >/dev/null
log "built $tag"
