#!/usr/bin/env bash
# Benchmarks recorded in BENCHMARKS.md. Time to a usable deploykit in a job:
# tool-cache hit, source build with a warm Go cache, cold source build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "machine: $(uname -srm), $(nproc) CPUs, $(go env GOVERSION)"
go test ./internal/e2e -run '^$' -bench 'InstallCacheHit|InstallSourceBuildWarm' -benchtime 20x
go test ./internal/e2e -run '^$' -bench 'InstallSourceBuildCold' -benchtime 2x
# Kit overhead: deploykit deploy (health/smoke off) ÷ bare docker compose up -d --wait.
go test ./internal/deploy -run '^$' -bench KitOverhead -benchtime 10x
# migration-smoke: 200 migrations vs psql -f in a loop; time to a ready fresh database.
go test ./internal/migrationsmoke -run '^$' -bench . -benchtime 3x
# Deploys under load through the example's Caddy and a plain DNS-per-request proxy:
# recreate vs rolling; healthy, /health-failing and smoke-failing releases.
go test ./internal/deploy -run '^$' -bench DeployUnderLoad -benchtime 1x
# A stack of 10 services: bare compose up vs recreate vs rolling.
go test ./internal/deploy -run '^$' -bench StackOf10 -benchtime 2x -timeout 20m
# The deploy after one killed mid-drain (SIGKILL to the step group) vs a normal one.
go test ./internal/deploy -run '^$' -bench RepairAfterKill -benchtime 5x
# A deploy over SSH (docker-host) from a fresh runner vs the same deploy run on the server.
go test ./internal/deploy -run '^$' -bench DeployOverSSH -benchtime 3x -timeout 30m
# Three-node swarm: docker stack deploy --detach=false alone vs deploykit deploy.
go test ./internal/multinode -run '^$' -bench ClusterDeploy -benchtime 3x -timeout 30m
# backup: pgbench scale 20 (plain, and with random filler): deploykit backup vs
# pg_dumpall | gzip vs pg_dumpall > /dev/null; deploykit's peak RSS.
go test ./internal/backup -run '^$' -bench Backup -benchtime 3x -timeout 30m
# restore: the same pgbench scale 20 backup restored by deploykit restore vs
# zcat | psql into the cleared cluster; deploykit's peak RSS.
go test ./internal/restore -run '^$' -bench Restore -benchtime 3x -timeout 30m
# rehearsal: rehearse on the example stack with a pgbench scale-20 database, vs the
# runbook restore + the migration + two app starts.
go test ./internal/deploy -run '^$' -bench Rehearsal -benchtime 2x -timeout 30m
# offsite: a 185 MB backup uploaded to versitygw on loopback and read back, vs cp.
go test ./internal/backup -run '^$' -bench Offsite -benchtime 3x -timeout 20m
