#!/usr/bin/env bash
# Release tag logic, run by the release workflow:
#   release-tag.sh check vX.Y.Z   the tag is a semantic version and equals VERSION
#   release-tag.sh move  vX.Y.Z   point the major tag (v1) at the release and push it:
#                                 only for a stable release (a pre-release such as
#                                 v1.2.0-rc.1 never moves it) that is the newest of
#                                 its major (a patch of an older minor does not
#                                 move it back)
# Environment: REMOTE (default origin).
set -euo pipefail
cmd=${1:-}
tag=${2:-}
remote=${REMOTE:-origin}
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'

fail() { printf '::error::release-tag: %s\n' "$*"; exit 1; }
[[ "$tag" =~ $semver ]] || fail "tag '$tag' is not a release tag like v1.2.3 or v1.2.3-rc.1"
major="v${BASH_REMATCH[1]}"
prerelease="${BASH_REMATCH[4]}"

case "$cmd" in
check)
	root=$(git rev-parse --show-toplevel)
	want="v$(tr -d ' \t\r\n' <"$root/VERSION")"
	[[ "$tag" == "$want" ]] || fail "tag $tag does not match VERSION ($want): bump VERSION in the tagged commit"
	echo "release-tag: $tag matches VERSION"
	;;
move)
	if [[ -n "$prerelease" ]]; then
		echo "release-tag: $tag is a pre-release: $major stays where it is"
		exit 0
	fi
	newest=$(git tag --list "$major.*" --sort=-v:refname | grep -Ev -- '-' | head -n 1)
	if [[ "$newest" != "$tag" ]]; then
		echo "release-tag: $newest is newer than $tag: $major stays on $newest"
		exit 0
	fi
	commit=$(git rev-parse --verify "$tag^{commit}")
	git tag -f "$major" "$commit" >/dev/null
	git push -f "$remote" "refs/tags/$major"
	echo "release-tag: $major → $tag ($commit)"
	;;
*)
	fail "usage: release-tag.sh check|move vX.Y.Z"
	;;
esac
