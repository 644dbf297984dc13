#!/usr/bin/env bash
# Builds the PostgreSQL image the tests start as an ephemeral database, from
# Debian's packages (no registry is needed): a Debian root filesystem with
# postgresql made by mmdebstrap, imported with `docker import`. Idempotent: an
# image that exists is kept. Needs root (mmdebstrap --mode=root, apt-get).
#
# Usage: postgres-image.sh [tag]   (default deploykit-test/postgres:15)
set -euo pipefail
tag=${1:-deploykit-test/postgres:15}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'postgres-image: %s\n' "$*" >&2; }

if docker image inspect "$tag" >/dev/null 2>&1; then
	exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
	[[ $(id -u) -eq 0 ]] || { log "mmdebstrap is missing: run 'sudo apt-get install -y mmdebstrap' and rerun"; exit 1; }
	log "installing mmdebstrap from Debian's packages"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi
[[ $(id -u) -eq 0 ]] || { log "building the root filesystem needs root"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
log "building $tag from Debian $suite packages (about a minute)"
mmdebstrap --quiet --mode=root --variant=essential --include=postgresql,ca-certificates \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook="upload $here/postgres-image/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" \
	--customize-hook='chroot "$1" chmod 0755 /usr/local/bin/docker-entrypoint.sh' \
	--customize-hook='chroot "$1" sh -c "ln -s /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/postgres /usr/local/bin/"' \
	"$suite" "$work/rootfs.tar"
docker import \
	--change 'USER postgres' \
	--change 'ENV PGDATA=/var/lib/postgresql/data' \
	--change 'EXPOSE 5432' \
	--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
	"$work/rootfs.tar" "$tag" >/dev/null
log "built $tag"
