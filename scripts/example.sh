#!/usr/bin/env bash
# Deploys the sample app (examples/hello) on the local Docker engine the way the
# deploy action does in a job: install deploykit with the actions' own installer,
# build the app, then `deploykit deploy` with its secret from ENV_DB_PASSWORD,
# health and smoke checks, history and automatic rollback.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
port="${HELLO_PORT:-8080}"
state="${XDG_STATE_HOME:-$HOME/.local/state}/deploy-kit"

deploykit=$(./scripts/install-deploykit.sh)
CGO_ENABLED=0 go build -trimpath -o examples/hello/hello ./examples/hello

export ENV_DB_PASSWORD="${ENV_DB_PASSWORD:-example-secret-$RANDOM}" HELLO_PORT="$port"
"$deploykit" deploy \
	--compose-file examples/hello/compose.yaml \
	--environment local \
	--history-file "$state/history.log" \
	--health-url "http://127.0.0.1:$port/health" \
	--health-initial-delay 500ms \
	--smoke-base-url "http://127.0.0.1:$port" \
	--smoke-checks "$(printf '/health=200\n/version=200\n/nope=404')"

echo
echo "The sample app is up on http://127.0.0.1:$port:"
printf '  /version → %s\n' "$(curl -fsS "http://127.0.0.1:$port/version")"
printf '  /secret  → %s\n' "$(curl -fsS "http://127.0.0.1:$port/secret")"
echo "History: $state/history.log. Stop it with: make example-down"
