#!/usr/bin/env bash
# Runs the sample app on the local Docker engine the way a job would: install
# deploykit with the actions' own installer, then bring the stack up with the secret
# passed through deploykit's shredded 0600 env file, and check it answers.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
port="${EXAMPLE_PORT:-8080}"

deploykit=$(./scripts/install-deploykit.sh)
CGO_ENABLED=0 go build -trimpath -o examples/app/app ./examples/app

export ENV_DB_PASSWORD="${ENV_DB_PASSWORD:-example-secret-$RANDOM}"
export DEPLOY_VERSION="$(tr -d '\n' <VERSION)-local" DEPLOY_TAG=local EXAMPLE_PORT="$port"
"$deploykit" with-secrets -- docker compose -f examples/compose.yaml --env-file '{env-file}' \
	up -d --build --wait --wait-timeout 60

echo
echo "The sample app is up on http://127.0.0.1:$port:"
printf '  /version → %s\n' "$(curl -fsS "http://127.0.0.1:$port/version")"
printf '  /health  → %s\n' "$(curl -fsS "http://127.0.0.1:$port/health")"
echo "Stop it with: docker compose -f examples/compose.yaml down"
