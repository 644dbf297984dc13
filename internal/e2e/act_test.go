// Package e2e runs the kit's actions through nektos/act, a real Actions runner, the
// way a user's workflow runs them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// token is the GITHUB_TOKEN secret act gets; act masks every secret value, so it
// must be long enough not to mask ordinary text.
const token = "deploykit-e2e-token-0123456789abcdef"

// kitRepo copies the kit's working tree into a fresh git repository with the given
// workflows and one commit with message, and returns its path and HEAD.
func kitRepo(t testing.TB, message string, workflows ...string) (dir, head string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	dir = t.TempDir()
	list := exec.Command("git", "ls-files", "-z", "-co", "--exclude-standard")
	list.Dir = root
	out, err := list.Output()
	require.NoError(t, err)
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, info.Mode().Perm()))
	}
	wfDir := filepath.Join(dir, ".github", "workflows")
	require.NoError(t, os.MkdirAll(wfDir, 0o755))
	for _, wf := range workflows {
		data, err := os.ReadFile(filepath.Join("testdata", wf))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(wfDir, wf), data, 0o644))
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
			"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", message)
	return dir, git("rev-parse", "HEAD")
}

// runAct runs one workflow of repo for event with payload and returns act's log.
func runAct(t *testing.T, repo, workflow, event string, payload any, extra ...string) (string, error) {
	t.Helper()
	act := testenv.RequireTool(t, "act")
	testenv.RequireDocker(t) // act talks to the engine even for host jobs
	data, err := json.Marshal(payload)
	require.NoError(t, err)
	eventFile := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(eventFile, data, 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{event, "-e", eventFile, "-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted", "--action-offline-mode", "-s", "GITHUB_TOKEN=" + token}, extra...)
	cmd := exec.CommandContext(ctx, act, args...)
	cmd.Dir = repo
	// A private act cache (and with it a private tool cache) per run, so parallel
	// runs never share a work directory and every run installs deploykit itself.
	// Go's build cache stays shared (it defaults to a directory under XDG_CACHE_HOME).
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "GOCACHE="+goCache(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func goCache(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// later returns what the workflow's report step printed, by key.
func later(log string) map[string]string {
	seen := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, "later step: ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(rest, "=")
		seen[k] = v
	}
	return seen
}

func TestGuardPushSkipCI(t *testing.T) {
	t.Parallel()
	repo, head := kitRepo(t, "docs: typo [skip ci]", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "push", map[string]any{
		"ref":         "refs/heads/main",
		"after":       head,
		"head_commit": map[string]any{"id": head, "message": "docs: typo [skip ci]"},
	})
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "true", seen["skip"], log)
	assert.Equal(t, `push: head commit says "[skip ci]"`, seen["reason"])
	assert.Contains(t, seen["setup path"], "/deploykit", "the setup action's path output")
	assert.NotContains(t, seen, "deploying")
	assert.Contains(t, log, "### deploykit guard: skip", "the summary is in the log")
	assert.Contains(t, log, "Job succeeded")
}

func TestGuardPushWithoutMarker(t *testing.T) {
	t.Parallel()
	repo, head := kitRepo(t, "feat: login", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "push", map[string]any{
		"ref":         "refs/heads/main",
		"head_commit": map[string]any{"id": head, "message": "feat: login"},
	})
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "false", seen["skip"], log)
	assert.Contains(t, log, "later step - deploying")
}

// giteaWorkflowRun is a Gitea-shaped workflow_run payload (no head_commit) for sha.
func giteaWorkflowRun(t *testing.T, sha, title, conclusion string) map[string]any {
	data, err := os.ReadFile(filepath.Join("..", "guard", "testdata", "gitea-workflow_run.json"))
	require.NoError(t, err)
	var p map[string]any
	require.NoError(t, json.Unmarshal(data, &p))
	run := p["workflow_run"].(map[string]any)
	run["head_sha"], run["display_title"], run["conclusion"] = sha, title, conclusion
	return p
}

func TestGuardGiteaWorkflowRunReadsTheCommitBody(t *testing.T) {
	t.Parallel()
	// The marker is only in the body's trailer, which Gitea's display_title lacks.
	repo, head := kitRepo(t, "Update docs\n\nskip-checks: true", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "workflow_run", giteaWorkflowRun(t, head, "Update docs", "success"),
		"--env", "GITEA_ACTIONS=true")
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "true", seen["skip"], log)
	assert.Equal(t, `workflow_run: head commit `+head[:7]+` ends with the trailer "skip-checks: true"`, seen["reason"])
}

func TestGuardGiteaWorkflowRunTitle(t *testing.T) {
	t.Parallel()
	repo, head := kitRepo(t, "chore(release): v1.2.0 [skip ci]", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "workflow_run", giteaWorkflowRun(t, head, "chore(release): v1.2.0 [skip ci]", "success"),
		"--env", "GITEA_ACTIONS=true")
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "true", seen["skip"], log)
	assert.Equal(t, `workflow_run: run title says "[skip ci]"`, seen["reason"])
}

func TestGuardWorkflowRunThatFailed(t *testing.T) {
	t.Parallel()
	repo, head := kitRepo(t, "feat: x", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "workflow_run", giteaWorkflowRun(t, head, "feat: x", "failure"))
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "true", seen["skip"], log)
	assert.Equal(t, `workflow_run: the triggering workflow concluded "failure", not success`, seen["reason"])
}

func TestGuardWorkflowDispatchIsNeverSkipped(t *testing.T) {
	t.Parallel()
	repo, _ := kitRepo(t, "docs [skip ci]", "guard.yaml")
	log, err := runAct(t, repo, "guard.yaml", "workflow_dispatch", map[string]any{"inputs": map[string]any{}})
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "false", seen["skip"], log)
	assert.Equal(t, "workflow_dispatch: never skipped (started on purpose)", seen["reason"])
}
