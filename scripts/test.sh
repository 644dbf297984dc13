#!/usr/bin/env bash
# The full test suite, as CI runs it: provision the tools the tests need (idempotent,
# cached), check formatting, vet and staticcheck, run the fast tests under the race
# detector, then run every Go test against the real Docker Engine, docker compose,
# Postgres, act and actionlint. The whole suite under the race detector (slow):
#   go test -race -count=1 -timeout 90m ./...
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
echo "go test -race -short ./... (the fast tests, under the race detector)"
go test -race -short -count=1 -timeout 20m ./...
go test -count=1 -timeout 50m "$@" ./...
