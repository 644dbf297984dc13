package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// setupGoStandIn stands in for actions/setup-go, which act cannot fetch offline:
// the host's Go is used, and the go-version-file must exist (the example once
// shipped without the go.mod its CI named).
const setupGoStandIn = `name: setup-go stand-in
inputs:
  go-version-file: {default: ""}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        FILE: ${{ inputs.go-version-file }}
      run: |
        set -euo pipefail
        [ -z "$FILE" ] || [ -f "$FILE" ] || { echo "go-version-file $FILE does not exist" >&2; exit 1; }
        echo "setup-go stand-in: $(go env GOVERSION)"
`

// checkoutStandIn stands in for actions/checkout where act does not copy the
// local repository itself (a step with a ref: of its own, as deploy checks out
// the commit CI built): it clones the repository the test made
// ($DEPLOYKIT_E2E_REPO) into the workspace, keeps its origin URL, and checks the
// ref out.
const checkoutStandIn = `name: checkout stand-in
inputs:
  ref: {default: ""}
  fetch-depth: {default: "1"}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        REF: ${{ inputs.ref }}
      run: |
        set -euo pipefail
        mkdir -p "$GITHUB_WORKSPACE" && cd "$GITHUB_WORKSPACE"
        git clone -q "$DEPLOYKIT_E2E_REPO" .
        git remote set-url origin "$(git -C "$DEPLOYKIT_E2E_REPO" remote get-url origin)"
        [ -z "$REF" ] || git -c advice.detachedHead=false checkout -q --detach "$REF"
        echo "checkout stand-in: $(git rev-parse HEAD)"
`

// exampleRepo builds a fresh repository from examples/app as docs/example.md says: copy
// the directory, git init, commit, add the origin. It returns its path and HEAD.
func exampleRepo(t *testing.T) (dir, head string) {
	t.Helper()
	dir = t.TempDir()
	copyTree(t, testenv.RepoRoot(t), "examples/app", dir)
	git := gitIn(t, dir, "e2e")
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "hello 0.1.0")
	git("remote", "add", "origin", "https://github.com/team/hello")
	return dir, git("rev-parse", "HEAD")
}

// exampleCache is an act cache with the kit itself at v1 (what `uses:
// org/deploy-kit/actions/<name>@v1` names) and the stand-ins of the forge's
// actions the example workflows use.
func exampleCache(t *testing.T) string {
	t.Helper()
	cache := actCache(t)
	for _, name := range []string{"build-image", "migration-smoke", "deploy", "rollback", "backup"} {
		cachedAction(t, cache, "org/deploy-kit/actions/"+name, "org/deploy-kit", "v1", func(dir string) { copyTree(t, testenv.RepoRoot(t), "", dir) })
	}
	cachedAction(t, cache, "actions/checkout", "actions/checkout", "v4", func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "action.yml"), []byte(checkoutStandIn), 0o644))
	})
	cachedAction(t, cache, "actions/setup-go", "actions/setup-go", "v5", func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "action.yml"), []byte(setupGoStandIn), 0o644))
	})
	return cache
}

// TestExampleRepositoryRunsAsShipped copies examples/app into a fresh repository
// and runs its GitHub workflows through act with the kit's actions, with nothing
// edited: CI (test, migration-smoke, build and push to a loopback registry) →
// deploy pulling that image → a second release → rollback to the first image
// without a build → backup of the example's database with the artifact step.
func TestExampleRepositoryRunsAsShipped(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	testenv.NoSwarmChange(t) // the app finds its database by DNS
	pgImage := testenv.PostgresImage(t)
	registry := testenv.Registry(t, "", "")
	repo, head1 := exampleRepo(t)
	cache := exampleCache(t)

	image := registry + "/team/hello"
	project := fmt.Sprintf("dk-e2e-example-%d", os.Getpid()%10000)
	state := t.TempDir()
	history := filepath.Join(state, "history.log")
	backups := filepath.Join(state, "backups")
	artifacts := filepath.Join(state, "artifacts")
	// The host's proxy stack, deployed once, as docs/example.md says: the app is
	// reached through it (strategy rolling), on the port HELLO_PORT names.
	network, alias := "dk-edge-"+project, "web-"+project
	port, _ := testenv.Proxies(t, project, network, alias, func() {
		_ = exec.Command("docker", "compose", "-p", project, "down", "--volumes", "--remove-orphans", "--timeout", "1").Run()
		testenv.RemoveImages(testenv.LocalImages(t, image)...)
	})
	// The repository's variables and secrets, as docs/example.md lists them.
	settings := []string{
		"-P", "self-hosted=-self-hosted",
		"--var", "IMAGE=" + image, "--var", "POSTGRES_IMAGE=" + pgImage,
		"--var", fmt.Sprintf("HELLO_PORT=%d", port), "--var", "PROJECT_NAME=" + project,
		"--var", "EDGE_NETWORK=" + network, "--var", "APP_ALIAS=" + alias,
		"--var", "DEPLOY_HISTORY_FILE=" + history, "--var", "BACKUP_DIR=" + backups,
		"-s", "DB_PASSWORD=" + dbPassword,
		"--env", "DEPLOYKIT_ARTIFACTS=" + artifacts, "--env", "DEPLOYKIT_E2E_REPO=" + repo,
	}
	repository := map[string]any{"id": 7, "full_name": "team/hello", "default_branch": "main"}
	run := func(workflow, event string, payload map[string]any) string {
		t.Helper()
		payload["repository"] = repository
		log, err := runActWith(t, cache, repo, workflow, event, payload, settings...)
		require.NoError(t, err, log)
		require.NotContains(t, log, dbPassword)
		return log
	}
	ci := func(head, message string) {
		t.Helper()
		log := run("ci.yaml", "push", map[string]any{
			"ref": "refs/heads/main", "after": head,
			"head_commit": map[string]any{"id": head, "message": message},
		})
		assert.Contains(t, log, "setup-go stand-in")
		assert.Contains(t, log, "ok  \texample.com/hello", "go test ./... ran")
		assert.Contains(t, log, "### deploykit migration-smoke")
		assert.Contains(t, log, "pushed "+image+"@sha256:")
		tag := image + ":sha-" + head[:7]
		ref, err := name.ParseReference(tag)
		require.NoError(t, err)
		_, err = remote.Head(ref)
		require.NoError(t, err, "CI pushed %s", tag)
		// The Docker host has only what it pulls: deploy must fetch the image.
		testenv.RemoveImages(tag)
	}
	deploy := func(head, message string) string {
		t.Helper()
		log := run("deploy.yaml", "workflow_run", map[string]any{
			"action": "completed",
			"workflow_run": map[string]any{
				"conclusion": "success", "event": "push", "head_branch": "main", "head_sha": head,
				"head_commit":     map[string]any{"id": head, "message": message},
				"head_repository": repository, "repository": repository,
			},
		})
		assert.Contains(t, log, "checkout stand-in: "+head)
		assert.Contains(t, log, "### deploykit deploy: success", log)
		assert.NotRegexp(t, `docker compose .* build`, log, "pull-only: nothing is built on the host")
		assert.Contains(t, log, "up -d --wait --remove-orphans --wait-timeout 120 --no-build --pull missing")
		assert.Contains(t, log, " web Pulled", "the image came from the registry")
		assert.Regexp(t, `switched web on `+network+` \([^)]*\b`+alias+`\): 1 new container\(s\) in`, log, "strategy rolling: the proxy's alias moved")
		return log
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		return strings.TrimSpace(string(body))
	}

	// Release 0.1.0: CI, then deploy after it; the app writes to its database.
	ci(head1, "hello 0.1.0")
	log := deploy(head1, "hello 0.1.0")
	v1 := "0.1.0-" + head1[:7]
	assert.Contains(t, log, "Deployed "+v1)
	assert.Contains(t, log, "first deploy: there is no production data to rehearse on yet")
	assert.Equal(t, v1, get("/version"))
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/notes", port), "text/plain", strings.NewReader("written by 0.1.0"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	inspect, err := exec.Command("docker", "inspect", project+"-web-1", project+"-db-1").CombinedOutput()
	require.NoError(t, err, string(inspect))
	assert.NotContains(t, string(inspect), dbPassword, "the password is a file-based secret, not in the containers' configuration")

	// Release 0.2.0.
	require.NoError(t, os.WriteFile(filepath.Join(repo, "VERSION"), []byte("0.2.0\n"), 0o644))
	git := gitIn(t, repo, "e2e")
	git("commit", "-q", "-am", "hello 0.2.0")
	head2 := git("rev-parse", "HEAD")
	ci(head2, "hello 0.2.0")
	log = deploy(head2, "hello 0.2.0")
	v2 := "0.2.0-" + head2[:7]
	assert.Contains(t, log, "Deployed "+v2+" (was "+v1+")")
	assert.Regexp(t, `\| rehearse \| done \| \S+ \| on a copy of production's data \(project `+project+`-rehearsal-\S+, removed after; networks of its own, internal, volumes of its own, no published ports; network edge \(external `+network+`\) replaced by the copy's own\): restored the pre-deploy backup in \S+; `+regexp.QuoteMeta(v2)+` started and passed its checks in \S+; migrations: postgres at 1 → postgres at 1; no lock that blocks writes; `+regexp.QuoteMeta(v1)+` started and passed its checks on the migrated copy`, log)
	assert.Equal(t, v2, get("/version"))
	assert.Equal(t, "written by 0.1.0", get("/notes"), "the database outlived the release")

	// Roll back to 0.1.0: its image again, pulled, not built.
	testenv.RemoveImages(image + ":sha-" + head1[:7])
	log = run("rollback.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{"confirm": "ROLLBACK", "target_tag": ""}})
	assert.Contains(t, log, "Rollback to "+v1+" (from "+v2+") - success")
	assert.NotRegexp(t, `docker compose .* build`, log, "pull-only: the rollback builds nothing")
	assert.Contains(t, log, " web Pulled", "the image came from the registry")
	assert.Equal(t, v1, get("/version"))
	assert.Equal(t, "written by 0.1.0", get("/notes"))
	data, err := os.ReadFile(history)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| production | rollback | "+v1+" | success | from "+v2+"; sha="+head1)

	// A run refused for bad input says so in its report step, not
	// "Rollback to  (from ) - bad-input" (defects audit, item 14).
	log, err = runActWith(t, cache, repo, "rollback.yaml", "workflow_dispatch",
		map[string]any{"inputs": map[string]any{"confirm": "yes", "target_tag": ""}, "repository": repository}, settings...)
	require.Error(t, err, "the job fails: %s", log)
	assert.Contains(t, log, "Rollback refused before anything changed: the error above says which input to fix")
	assert.NotContains(t, log, "Rollback to  (from )")
	assert.Equal(t, v1, get("/version"))

	// A rollback from a runner with no history and PROJECT_NAME unset (the
	// example's docs call it optional): the stack is the compose file's (hello), and
	// there is nothing to roll back to — said so, exit 2, nothing changed.
	var fresh []string
	for i := 0; i < len(settings); i++ {
		if settings[i] == "--var" && (strings.HasPrefix(settings[i+1], "PROJECT_NAME=") || strings.HasPrefix(settings[i+1], "DEPLOY_HISTORY_FILE=")) {
			i++
			continue
		}
		fresh = append(fresh, settings[i])
	}
	empty := filepath.Join(t.TempDir(), "history.log")
	fresh = append(fresh, "--var", "DEPLOY_HISTORY_FILE="+empty)
	log, err = runActWith(t, cache, repo, "rollback.yaml", "workflow_dispatch",
		map[string]any{"inputs": map[string]any{"confirm": "ROLLBACK", "target_tag": ""}, "repository": repository}, fresh...)
	require.Error(t, err, "the job fails: %s", log)
	assert.Contains(t, log, "::error::input target-tag is empty and "+empty+" has no successful deploy of hello on production to roll back from: set target-tag")
	assert.NotContains(t, log, "is not valid", "no interpolation error")
	assert.Contains(t, log, "Rollback refused before anything changed: the error above says which input to fix")
	assert.Equal(t, v1, get("/version"))

	// Back up the example's database; the workflow uploads it as an artifact.
	log = run("backup.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{"keep_on_host": false, "host_backup_path": ""}})
	assert.Contains(t, log, "### deploykit backup")
	kept, err := filepath.Glob(filepath.Join(backups, "hello-*.sql.gz"))
	require.NoError(t, err)
	require.Len(t, kept, 1, log)
	uploaded, err := filepath.Glob(filepath.Join(artifacts, "v4", "*", "hello-*"))
	require.NoError(t, err)
	names := make([]string, 0, len(uploaded))
	for _, f := range uploaded {
		names = append(names, filepath.Base(f))
	}
	assert.ElementsMatch(t, []string{filepath.Base(kept[0]), filepath.Base(kept[0]) + ".sha256"}, names)
	check := exec.CommandContext(context.Background(), "sha256sum", "-c", filepath.Base(kept[0])+".sha256")
	check.Dir = backups
	out, err := check.CombinedOutput()
	require.NoError(t, err, string(out))
}
