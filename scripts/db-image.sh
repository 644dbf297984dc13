#!/usr/bin/env bash
# Builds the database server images the tests start (an ephemeral Postgres for
# migration-smoke, the servers the backup tests dump and restore) from Debian's
# packages, since no registry is reachable: a Debian root filesystem made by
# mmdebstrap with the server's packages and an entrypoint that follows the
# official image's conventions (scripts/db-image/<name>-entrypoint.sh), imported
# with `docker import`. The Postgres image has its PGDATA directory, owned by
# postgres, so a named volume mounted there starts with that owner. Idempotent:
# an image that exists is kept; the tag's revision changes whenever the image's
# recipe does. Needs root (mmdebstrap
# --mode=root, apt-get).
#
# Usage: db-image.sh postgres|mariadb ...   (prints nothing; logs to stderr)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'db-image: %s\n' "$*" >&2; }

# Keep these tags in step with internal/testenv (PostgresImageTag, MariaDBImageTag).
declare -A tags=([postgres]=deploykit-test/postgres:15-r4 [mariadb]=deploykit-test/mariadb:10.11-r3)

build() {
	local name=$1 tag=${tags[$1]} packages user data port env=()
	case $name in
	postgres)
		packages=postgresql,ca-certificates user=postgres port=5432
		env=(--change 'ENV PGDATA=/var/lib/postgresql/data')
		;;
	mariadb) packages=mariadb-server,mariadb-client,mariadb-client-core user=mysql port=3306 ;;
	esac
	if docker image inspect "$tag" >/dev/null 2>&1; then
		return 0
	fi
	if ! command -v mmdebstrap >/dev/null; then
		[[ $(id -u) -eq 0 ]] || { log "mmdebstrap is missing: run 'sudo apt-get install -y mmdebstrap' and rerun"; exit 1; }
		log "installing mmdebstrap from Debian's packages"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
	fi
	[[ $(id -u) -eq 0 ]] || { log "building the root filesystem needs root"; exit 1; }
	local work suite
	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
	log "building $tag from Debian $suite packages (about a minute)"
	mmdebstrap --quiet --mode=root --variant=essential --include="$packages" --skip=cleanup/run \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--customize-hook="upload $here/db-image/$name-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" \
		--customize-hook='chroot "$1" chmod 0755 /usr/local/bin/docker-entrypoint.sh' \
		--customize-hook='chroot "$1" sh -c "for b in /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/postgres; do [ -e \"\$b\" ] && ln -sf \"\$b\" /usr/local/bin/; done; true"' \
		--customize-hook="chroot \"\$1\" sh -c 'rm -rf /var/lib/mysql/* /var/lib/postgresql/*/main; mkdir -p /run/postgresql /run/mysqld; chown $user: /run/postgresql /run/mysqld; chown $user: /var/lib/mysql /var/lib/postgresql 2>/dev/null; [ ! -d /var/lib/postgresql ] || install -d -m 0700 -o $user -g $user /var/lib/postgresql/data; true'" \
		"$suite" "$work/rootfs.tar"
	docker import \
		--change "USER $user" \
		"${env[@]}" \
		--change "EXPOSE $port" \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		"$work/rootfs.tar" "$tag" >/dev/null
	log "built $tag"
}

[[ $# -gt 0 ]] || { log "usage: db-image.sh postgres|mariadb ..."; exit 2; }
for name in "$@"; do
	[[ -n ${tags[$name]:-} ]] || { log "unknown image $name (want postgres or mariadb)"; exit 2; }
	build "$name"
done
