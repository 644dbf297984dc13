#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, idempotently:
#   - the Docker Compose v2 and buildx CLI plugins (built from the Go module proxy)
#   - nektos/act (runs our action.yml files as a workflow would)
#   - actionlint (lints the example and CI workflows)
#   - staticcheck (the Go linter the test command runs after go vet)
#   - GoReleaser (builds the release archives; tested with --snapshot)
#   - Caddy (the reverse proxy of the rolling-deploy example and tests)
#   - versitygw (an S3-compatible server on a directory, for the offsite-copy tests)
#   - a PostgreSQL server (from Debian's packages, only when none is present)
#   - the MariaDB client tools (mariadb, mariadb-dump), for backups of a database URL
#   - PostgreSQL and MariaDB server images built from Debian's packages
#     (scripts/db-image.sh), for tests that start database containers
#   - the image of a swarm node, Debian's Docker Engine (scripts/node-image.sh),
#     for the tests that start a real three-node swarm
#   - the image of a "VPS", Debian's Docker Engine and OpenSSH server
#     (scripts/vps-image.sh), for the tests that deploy over SSH
# Tools built from Go modules go to $DEPLOYKIT_TOOLS (default ~/.cache/deploy-kit/tools)
# and are rebuilt only when the pinned version changes. Prints the bin directory to add
# to PATH as its last line.
#
# Usage: provision.sh [compose|buildx|act|actionlint|staticcheck|goreleaser|caddy|versitygw|postgres|mariadb-client|db-images|swarm-node|vps ...]   (no argument: all)
set -euo pipefail

COMPOSE_VERSION=v2.40.3
ACT_VERSION=v0.2.89
ACTIONLINT_VERSION=v1.7.12
GORELEASER_VERSION=v2.15.1
CADDY_VERSION=v2.11.9
STATICCHECK_VERSION=v0.8.2
BUILDX_VERSION=v0.38.2
VERSITYGW_VERSION=v1.8.0

tools="${DEPLOYKIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/deploy-kit/tools}"
bin="$tools/bin"
mkdir -p "$bin" "$tools/stamps"

want() { # want NAME: true when NAME was asked for (or nothing was)
	[[ ${#components[@]} -eq 0 ]] && return 0
	local c
	for c in "${components[@]}"; do [[ "$c" == "$1" ]] && return 0; done
	return 1
}
components=("$@")
for c in "${components[@]}"; do
	case "$c" in compose | buildx | act | actionlint | staticcheck | goreleaser | caddy | versitygw | postgres | mariadb-client | db-images | swarm-node | vps) ;; *) echo "provision: unknown component $c (want compose, buildx, act, actionlint, staticcheck, goreleaser, caddy, versitygw, postgres, mariadb-client, db-images, swarm-node or vps)" >&2; exit 2 ;; esac
done

log() { printf 'provision: %s\n' "$*" >&2; }

need() {
	command -v "$1" >/dev/null 2>&1 || { log "$1 is required but not installed"; exit 1; }
}
need go
need docker

# installed NAME VERSION: true when the stamp says this exact version is in place.
installed() { [[ -x "$bin/$1" && "$(cat "$tools/stamps/$1" 2>/dev/null)" == "$2" ]]; }
stamp() { printf '%s\n' "$2" >"$tools/stamps/$1"; }

go_install() { # NAME MODULE@VERSION
	local name=$1 pkg=$2
	installed "$name" "$pkg" && return 0
	log "building $pkg"
	GOBIN="$bin" CGO_ENABLED=0 go install "$pkg"
	stamp "$name" "$pkg"
}

want act && go_install act "github.com/nektos/act@$ACT_VERSION"
want actionlint && go_install actionlint "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
want staticcheck && go_install staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
want goreleaser && go_install goreleaser "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
want caddy && go_install caddy "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
want versitygw && go_install versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"

# Docker CLI plugins (Compose v2, buildx): their go.mod files carry exclude/replace
# directives, so `go install pkg@version` refuses them; build each inside a scratch
# module instead, then install it where the docker CLI looks for plugins.
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
cli_plugin() { # cli_plugin NAME MODULE VERSION PACKAGE LDFLAGS
	local name=$1 module=$2 version=$3 pkg=$4 ldflags=$5
	if ! installed "docker-$name" "$version" || [[ ! -x "$plugin_dir/docker-$name" ]]; then
		log "building docker $name $version (a few minutes on a cold cache)"
		local src="$tools/src/$name-$version"
		mkdir -p "$src"
		(
			cd "$src"
			[[ -f go.mod ]] || go mod init "deploykit.local/$name-build" >/dev/null 2>&1
			go get "$pkg@$version" >/dev/null 2>&1 || go get "$pkg@$version"
			CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/docker-$name" "$pkg"
		)
		stamp "docker-$name" "$version"
	fi
	mkdir -p "$plugin_dir"
	if ! cmp -s "$bin/docker-$name" "$plugin_dir/docker-$name"; then
		install -m 0755 "$bin/docker-$name" "$plugin_dir/docker-$name"
	fi
	docker "$name" version >/dev/null || { log "the docker $name plugin does not run"; exit 1; }
}
if want compose; then
	cli_plugin compose github.com/docker/compose/v2 "$COMPOSE_VERSION" github.com/docker/compose/v2/cmd \
		"-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION"
fi
# buildx makes `docker build` use BuildKit (build secrets, and none of the legacy
# builder's races between a build and an image removal).
if want buildx; then
	cli_plugin buildx github.com/docker/buildx "$BUILDX_VERSION" github.com/docker/buildx/cmd/buildx \
		"-X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
fi

# PostgreSQL server binaries (tests start their own throwaway clusters with initdb/pg_ctl).
pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/initdb" && -x "$d/postgres" ]] && { printf '%s\n' "$d"; return 0; }
	done
	return 1
}
if want postgres; then
if ! pg_bin >/dev/null; then
	log "installing PostgreSQL server from Debian's packages"
	if [[ $(id -u) -ne 0 ]]; then
		log "installing packages needs root: run 'sudo apt-get install -y postgresql' and rerun"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
pgdir=$(pg_bin)
for tool in initdb pg_ctl postgres psql pg_dump pg_dumpall; do
	if [[ -x "$pgdir/$tool" ]]; then ln -sfn "$pgdir/$tool" "$bin/$tool"; fi
done
fi

if want mariadb-client && ! command -v mariadb-dump >/dev/null; then
	log "installing the MariaDB client tools from Debian's packages"
	if [[ $(id -u) -ne 0 ]]; then
		log "installing packages needs root: run 'sudo apt-get install -y mariadb-client' and rerun"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-client >/dev/null
fi

if want db-images; then
	"$(dirname "${BASH_SOURCE[0]}")/db-image.sh" postgres mariadb
fi

# The image of a swarm node (Debian's Docker Engine in a container) for the
# tests that start a real three-node swarm (internal/multinode).
if want swarm-node; then
	"$(dirname "${BASH_SOURCE[0]}")/node-image.sh"
fi

# The image of a "VPS" (Debian's Docker Engine and OpenSSH server) for the tests
# that deploy from a runner elsewhere over SSH (internal/remote).
if want vps; then
	"$(dirname "${BASH_SOURCE[0]}")/vps-image.sh"
fi

log "tools ready in $bin"
printf '%s\n' "$bin"
