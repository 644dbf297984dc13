# deploy-kit: the two commands a newcomer needs are `make example` and `make test`.
.PHONY: example example-down test bench generate build snapshot

# Run the sample app on the local Docker engine, as a job would.
example:
	./scripts/provision.sh compose >/dev/null
	./scripts/example.sh

example-down:
	docker compose -f examples/hello/compose.yaml down

# The full test suite (provisions Docker Compose v2, act, actionlint and Postgres first).
test:
	./scripts/test.sh

# Benchmarks; results are recorded in BENCHMARKS.md.
bench:
	./scripts/bench.sh

# Regenerate actions/*/action.yml, action.yml and the docs/ tables from the Go input definitions.
generate:
	go test ./internal/actionyml -run TestGeneratedFilesAreUpToDate -update

build:
	CGO_ENABLED=0 go build -trimpath -o bin/deploykit ./cmd/deploykit

# The release archives and checksums.txt in dist/, as a release builds them, without publishing.
snapshot:
	bin=$$(./scripts/provision.sh goreleaser | tail -n 1) && KIT_VERSION=$$(cat VERSION) "$$bin/goreleaser" release --snapshot --clean
