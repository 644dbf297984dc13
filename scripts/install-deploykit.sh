#!/usr/bin/env bash
# Installs the deploykit binary for the kit checkout this script lives in (ARCHITECTURE.md, Layers)
# and puts it on PATH. Every action runs it as its first step. In order:
#   1. the runner's tool cache already holds this exact kit build → use it;
#   2. the release asset for the kit's VERSION, verified against checksums.txt;
#   3. go build from this checkout, when Go is present;
#   4. otherwise fail, saying what was tried.
# The cache key is the kit's VERSION plus a hash of its Go sources, so a checkout
# that changed without a version bump never runs a stale binary.
#
# Environment (all optional):
#   RUNNER_TOOL_CACHE         tool cache root (default: ~/.cache)
#   DEPLOYKIT_RELEASE_URL     base URL of release downloads
#                             (default: $GITHUB_SERVER_URL/$GITHUB_ACTION_REPOSITORY/releases/download)
#   DEPLOYKIT_NO_DOWNLOAD=1   skip step 2
# Outputs (GITHUB_OUTPUT): path, version. Outside a runner the path is printed.
set -euo pipefail

kit=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'install-deploykit: %s\n' "$*" >&2; }
fail() { printf '::error::install-deploykit: %s\n' "$*"; exit 1; }

[[ -r "$kit/VERSION" ]] || fail "no VERSION file in $kit: this is not a deploy-kit checkout"
version=$(tr -d ' \t\r\n' <"$kit/VERSION")
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || fail "VERSION $version is not a semantic version"

case "$(uname -s)" in
Linux) os=linux ;;
Darwin) os=darwin ;;
*) fail "unsupported OS $(uname -s): deploykit runs on Linux and macOS runners" ;;
esac
case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) fail "unsupported CPU $(uname -m): deploykit is built for amd64 and arm64" ;;
esac

# Hash of everything that goes into the binary.
src_hash=$(
	cd "$kit"
	{
		find cmd internal -type f -name '*.go' ! -name '*_test.go' ! -path '*/testdata/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		sha256sum go.mod go.sum VERSION
	} | sha256sum | cut -c1-16
)
cache="${RUNNER_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}/deploykit/$version-$src_hash/$os-$arch"
bin="$cache/deploykit"

finish() {
	if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
		printf 'path=%s\nversion=%s\n' "$bin" "$version" >>"$GITHUB_OUTPUT"
	fi
	if [[ -n "${GITHUB_PATH:-}" ]]; then
		printf '%s\n' "$cache" >>"$GITHUB_PATH"
	fi
	[[ -n "${GITHUB_OUTPUT:-}" ]] || printf '%s\n' "$bin"
	exit 0
}

# 1. Tool cache: the marker is written last, so its presence means a complete
# install. It records the binary's SHA-256 as installed (verified download or own
# build); a hit counts only when the binary still has it and neither the entry nor
# the binary can be written by another user (a shared self-hosted runner's cache).
# Anything else is reinstalled over.
# sha256_of FILE: its SHA-256, through openssl when the runner has it (it uses the
# CPU's SHA instructions: about 30 ms for the binary here, against 130 ms for
# sha256sum).
sha256_of() {
	if command -v openssl >/dev/null; then
		openssl dgst -sha256 -r "$1" | cut -d' ' -f1
	else
		sha256sum "$1" | cut -d' ' -f1
	fi
}
cache_hit() {
	[[ -f "$cache/.complete" && -x "$bin" && ! -L "$bin" && ! -L "$cache" ]] || return 1
	local p
	for p in "$cache" "$bin" "$cache/.complete"; do
		if [[ ! -O "$p" || -n "$(find "$p" -maxdepth 0 \( -perm -020 -o -perm -002 \))" ]]; then
			say "tool cache entry $p is another user's or writable by others: not using it"
			return 1
		fi
	done
	local want got
	want=$(sed -n 's/^sha256=//p' "$cache/.complete")
	got=$(sha256_of "$bin")
	if [[ -z "$want" || "$want" != "$got" ]]; then
		say "tool cache binary $bin does not have the SHA-256 recorded when it was installed (${want:-none}, now $got): not using it"
		return 1
	fi
}
if cache_hit; then
	say "deploykit $version from the tool cache ($(head -n 1 "$cache/.complete"))"
	finish
fi

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/deploykit-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

# install_binary FILE SOURCE: move a verified binary into the cache atomically.
install_binary() {
	mkdir -p "$cache"
	chmod go-w "$cache"
	chmod 0755 "$1"
	local sum
	sum=$(sha256_of "$1")
	rm -f "$cache/.complete"
	mv -f "$1" "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
	printf '%s\nsha256=%s\n' "$2" "$sum" >"$cache/.complete.tmp.$$"
	chmod 0644 "$cache/.complete.tmp.$$"
	mv -f "$cache/.complete.tmp.$$" "$cache/.complete"
	say "deploykit $version installed from $2"
}

# 2. Release asset.
asset="deploykit_${version}_${os}_${arch}.tar.gz"
base="${DEPLOYKIT_RELEASE_URL:-}"
if [[ -z "$base" && -n "${GITHUB_SERVER_URL:-}" && -n "${GITHUB_ACTION_REPOSITORY:-}" ]]; then
	base="${GITHUB_SERVER_URL%/}/$GITHUB_ACTION_REPOSITORY/releases/download"
fi
if [[ -n "$base" && "${DEPLOYKIT_NO_DOWNLOAD:-}" != 1 ]] && command -v curl >/dev/null; then
	url="${base%/}/v$version"
	fetch() { curl -fsSL --retry 2 --connect-timeout 10 --max-time 120 -o "$2" "$1" 2>"$work/curl.err"; }
	if fetch "$url/checksums.txt" "$work/checksums.txt" && fetch "$url/$asset" "$work/$asset"; then
		want=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1 }' "$work/checksums.txt")
		got=$(sha256sum "$work/$asset" | cut -d' ' -f1)
		[[ -n "$want" ]] || fail "checksums.txt of v$version has no entry for $asset: refusing to install it"
		[[ "$want" == "$got" ]] || fail "checksum mismatch for $asset from $url: checksums.txt says $want, the download is $got; refusing to install it"
		tar -xzf "$work/$asset" -C "$work" deploykit || fail "$asset does not contain deploykit"
		install_binary "$work/deploykit" "release v$version ($want)"
		finish
	fi
	say "no release asset at $url/$asset ($(head -c 200 "$work/curl.err" | tr '\n' ' ')); building from source"
fi

# 3. Build from this checkout.
if command -v go >/dev/null; then
	module=$(awk '$1 == "module" { print $2; exit }' "$kit/go.mod")
	say "building deploykit $version from $kit with $(go env GOVERSION)"
	(
		cd "$kit"
		CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w -X $module/internal/buildinfo.Version=$version" \
			-o "$work/deploykit" ./cmd/deploykit
	) || fail "go build of deploykit $version failed (see above)"
	install_binary "$work/deploykit" "source $src_hash"
	finish
fi

fail "cannot install deploykit $version: not in the tool cache ($cache), no release asset${base:+ at $base/v$version/$asset}, and Go is not installed to build it from source. Add actions/setup-go before this step or publish the release."
