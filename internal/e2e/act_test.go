// Package e2e runs the kit's actions through nektos/act, a real Actions runner, the
// way a user's workflow runs them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	dir = t.TempDir()
	copyTree(t, testenv.RepoRoot(t), "", dir)
	wfDir := filepath.Join(dir, ".github", "workflows")
	require.NoError(t, os.MkdirAll(wfDir, 0o755))
	for _, wf := range workflows {
		data, err := os.ReadFile(filepath.Join("testdata", wf))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(wfDir, wf), data, 0o644))
	}
	git := gitIn(t, dir, "e2e")
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", message)
	return dir, git("rev-parse", "HEAD")
}

// copyTree copies the files of the kit's working tree under sub (git's view:
// tracked and untracked but not ignored; "" for all) to dst, keeping their
// paths below sub and their permissions.
func copyTree(t testing.TB, root, sub, dst string) {
	t.Helper()
	args := []string{"ls-files", "-z", "-co", "--exclude-standard"}
	if sub != "" {
		args = append(args, "--", sub)
	}
	list := exec.Command("git", args...)
	list.Dir = root
	out, err := list.Output()
	require.NoError(t, err)
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		rel, err := filepath.Rel(filepath.Join(root, sub), src)
		require.NoError(t, err)
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm()))
	}
}

// gitIn runs git in dir as author and committer <name>@example.com and returns
// its trimmed output; a failure fails the test.
func gitIn(t testing.TB, dir, name string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME="+name, "GIT_AUTHOR_EMAIL="+name+"@example.com",
			"GIT_COMMITTER_NAME="+name, "GIT_COMMITTER_EMAIL="+name+"@example.com")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
}

// runAct runs one workflow of repo for event with payload and returns act's log.
func runAct(t *testing.T, repo, workflow, event string, payload any, extra ...string) (string, error) {
	t.Helper()
	return runActWith(t, actCache(t), repo, workflow, event, payload, extra...)
}

// runActWith is runAct with the act cache (XDG_CACHE_HOME) given.
func runActWith(t *testing.T, cache, repo, workflow, event string, payload any, extra ...string) (string, error) {
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
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache, "GOCACHE="+goCache(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// startAct starts act as runActWith runs it and returns it and its output so
// far, for a test that stops it midway.
func startAct(t *testing.T, repo, workflow, event string, payload any, extra ...string) (*exec.Cmd, *lockedOutput) {
	t.Helper()
	act := testenv.RequireTool(t, "act")
	testenv.RequireDocker(t)
	data, err := json.Marshal(payload)
	require.NoError(t, err)
	eventFile := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(eventFile, data, 0o644))
	args := append([]string{event, "-e", eventFile, "-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted", "--action-offline-mode", "-s", "GITHUB_TOKEN=" + token}, extra...)
	cmd := exec.Command(act, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+actCache(t), "GOCACHE="+goCache(t))
	out := &lockedOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

// lockedOutput is a process's output a test reads while it runs.
type lockedOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// uploadArtifactStandIn stands in for actions/upload-artifact, which act cannot
// fetch offline and whose artifact service is GitHub's: it copies the files to
// $DEPLOYKIT_ARTIFACTS/<version>/<name>/ with the retention days it was given,
// so a test sees exactly what the backup action asked to upload.
const uploadArtifactStandIn = `name: upload-artifact stand-in
inputs:
  name: {required: true}
  path: {required: true}
  retention-days: {default: ""}
  if-no-files-found: {default: warn}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        NAME: ${{ inputs.name }}
        FILES: ${{ inputs.path }}
        DAYS: ${{ inputs.retention-days }}
        MISSING: ${{ inputs.if-no-files-found }}
      run: |
        set -euo pipefail
        out="$DEPLOYKIT_ARTIFACTS/$(cat "$GITHUB_ACTION_PATH/VERSION")/$NAME"
        mkdir -p "$out"
        printf '%s\n' "$DAYS" >"$out/retention-days"
        while IFS= read -r f; do
          [ -n "$f" ] || continue
          if [ ! -e "$f" ]; then [ "$MISSING" != error ] || { echo "no such file: $f" >&2; exit 1; }; continue; fi
          cp "$f" "$out/"
        done <<<"$FILES"
`

// actCache is a private act cache (XDG_CACHE_HOME) holding the stand-ins of the
// remote actions the kit's actions use, as git repositories at their tags the
// way act keeps what it clones.
func actCache(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	for _, version := range []string{"v3", "v4"} {
		cachedAction(t, cache, "actions/upload-artifact", "actions/upload-artifact", version, func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "action.yml"), []byte(uploadArtifactStandIn), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644))
		})
	}
	return cache
}

// cachedAction puts repo at tag into the act cache for `uses: <uses>@<tag>` (uses
// is repo, or repo/path for an action in a subdirectory), as act keeps what it
// clones: a git repository in <cache>/act/<uses with / as ->@<tag>, its files
// written by fill.
func cachedAction(t *testing.T, cache, uses, repo, tag string, fill func(dir string)) {
	t.Helper()
	dir := filepath.Join(cache, "act", strings.ReplaceAll(uses, "/", "-")+"@"+tag)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	fill(dir)
	git := gitIn(t, dir, "e2e")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "stand-in"}, {"tag", tag},
		{"remote", "add", "origin", "https://github.com/" + repo},
	} {
		git(args...)
	}
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
		seen[k] = strings.TrimSpace(v)
	}
	return seen
}

// TestGuardThroughAct runs the setup action and deploykit guard in a workflow on
// act, for each event shape, and checks what a later step of the job sees.
func TestGuardThroughAct(t *testing.T) {
	push := func(msg string) func(*testing.T, string) map[string]any {
		return func(_ *testing.T, head string) map[string]any {
			return map[string]any{"ref": "refs/heads/main", "after": head, "head_commit": map[string]any{"id": head, "message": msg}}
		}
	}
	gitea := func(title, conclusion string) func(*testing.T, string) map[string]any {
		return func(t *testing.T, head string) map[string]any { return giteaWorkflowRun(t, head, title, conclusion) }
	}
	dispatch := func(*testing.T, string) map[string]any { return map[string]any{"inputs": map[string]any{}} }
	for _, tc := range []struct {
		name    string
		message string // of the repository's only commit
		event   string
		payload func(t *testing.T, head string) map[string]any
		gitea   bool
		skip    string
		reason  string // %s is the short head sha
	}{
		{"push [skip ci]", "docs: typo [skip ci]", "push", push("docs: typo [skip ci]"), false,
			"true", `push: head commit says "[skip ci]"`},
		{"push without marker", "feat: login", "push", push("feat: login"), false,
			"false", "push: head commit has no skip marker"},
		// The trailer is only in the commit body, which Gitea's display_title lacks:
		// guard reads it with git log from the checkout.
		{"gitea workflow_run trailer in body", "Update docs\n\nskip-checks: true", "workflow_run", gitea("Update docs", "success"), true,
			"true", `workflow_run: head commit %s ends with the trailer "skip-checks: true"`},
		{"gitea workflow_run title", "chore(release): v1.2.0 [skip ci]", "workflow_run", gitea("chore(release): v1.2.0 [skip ci]", "success"), true,
			"true", `workflow_run: run title says "[skip ci]"`},
		{"workflow_run that failed", "feat: x", "workflow_run", gitea("feat: x", "failure"), false,
			"true", `workflow_run: the triggering workflow concluded "failure", not success`},
		{"workflow_dispatch", "docs [skip ci]", "workflow_dispatch", dispatch, false,
			"false", "workflow_dispatch: never skipped (started on purpose)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo, head := kitRepo(t, tc.message, "guard.yaml")
			var extra []string
			if tc.gitea {
				extra = []string{"--env", "GITEA_ACTIONS=true"}
			}
			log, err := runAct(t, repo, "guard.yaml", tc.event, tc.payload(t, head), extra...)
			require.NoError(t, err, log)
			seen := later(log)
			assert.Equal(t, tc.skip, seen["skip"], log)
			want := tc.reason
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, head[:7])
			}
			assert.Equal(t, want, seen["reason"])
			assert.Contains(t, seen["setup path"], "/deploykit", "the setup action's path output")
			assert.Equal(t, tc.skip == "false", strings.Contains(log, "later step - deploying"))
			assert.Contains(t, log, "### deploykit guard: ", "the summary is in the log")
			assert.Contains(t, log, "Job succeeded")
		})
	}
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
