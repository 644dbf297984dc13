#!/usr/bin/env bash
# The full test suite, as CI runs it: provision the tools the tests need (idempotent,
# cached), check formatting, vet and staticcheck, then run every Go test against the real Docker
# Engine, docker compose, Postgres, act and actionlint.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bin=$(./scripts/provision.sh | tail -n 1)
export PATH="$bin:$PATH"

unformatted=$(gofmt -l cmd internal examples)
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files need formatting (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
staticcheck ./...
go test -count=1 -timeout 50m "$@" ./...
