package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

const dbPassword = "e2e-db-password-0123456789"

// deployVars are the workflow variables of one deploy run: its own project, port
// and history file.
func deployVars(t *testing.T, name, head string) (vars []string, port int, history string) {
	port = testenv.FreePort(t)
	history = filepath.Join(t.TempDir(), "history.log")
	project := fmt.Sprintf("dk-e2e-%s-%d", name, os.Getpid()%10000)
	t.Cleanup(func() {
		_ = exec.Command("docker", "compose", "-p", project, "down", "--remove-orphans", "--timeout", "1").Run()
		testenv.RemoveImages("deploykit-hello:sha-" + head[:7])
	})
	return []string{"--var", "PROJECT=" + project, "--var", fmt.Sprintf("HELLO_PORT=%d", port), "--var", "HISTORY_FILE=" + history,
		"-s", "DB_PASSWORD=" + dbPassword}, port, history
}

func TestDeployActionOnWorkflowDispatch(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	repo, head := kitRepo(t, "feat: hello", "deploy.yaml")
	vars, port, history := deployVars(t, "dispatch", head)
	log, err := runAct(t, repo, "deploy.yaml", "workflow_dispatch", map[string]any{
		"inputs": map[string]any{"version_bump": "none", "service": "web", "no_cache": "true", "git_ref": ""},
	}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	version := "0.1.0-" + head[:7]
	if data, err := os.ReadFile(filepath.Join(repo, "VERSION")); err == nil {
		version = strings.TrimSpace(string(data)) + "-" + head[:7]
	}
	assert.Equal(t, "success", seen["status"], log)
	assert.Equal(t, "false", seen["skipped"])
	assert.Equal(t, version, seen["version"])
	assert.Equal(t, fmt.Sprintf("http://127.0.0.1:%d/health", port), seen["url"])
	assert.Contains(t, log, "### deploykit deploy: success")
	assert.Contains(t, log, "docker compose -p dk-e2e-dispatch-")
	assert.Contains(t, log, "build --no-cache web")
	assert.NotContains(t, log, dbPassword)

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, version, strings.TrimSpace(string(body)))
	data, err := os.ReadFile(history)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| e2e | deploy | "+version+" | success | sha="+head)
}

func TestDeployActionSkipsAWorkflowRunOfASkipCICommit(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	repo, head := kitRepo(t, "chore(release): v0.1.1 [skip ci]", "deploy.yaml")
	vars, _, history := deployVars(t, "skip", head)
	log, err := runAct(t, repo, "deploy.yaml", "workflow_run", map[string]any{
		"action": "completed",
		"workflow_run": map[string]any{
			"conclusion": "success", "event": "push", "head_branch": "main", "head_sha": head,
			"head_commit": map[string]any{"id": head, "message": "chore(release): v0.1.1 [skip ci]"},
		},
		"repository": map[string]any{"default_branch": "main"},
	}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "skipped", seen["status"], log)
	assert.Equal(t, "true", seen["skipped"])
	assert.Contains(t, log, `skip: workflow_run: head commit says "[skip ci]"`)
	assert.NoFileExists(t, history)
}

// TestDeployActionSkipsAForkPullRequestRun: CI ran for a fork's pull request from
// a branch the fork calls main, and the deploy workflow (workflow_run, branches:
// [main], version bump on) checked its commit out detached. The guard skips it:
// nothing is bumped, tagged or pushed, no container is touched, no history.
func TestDeployActionSkipsAForkPullRequestRun(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	repo, base := kitRepo(t, "feat: hello", "deploy.yaml")
	git := gitIn(t, repo, "mallory")
	origin := filepath.Join(t.TempDir(), "origin.git")
	git("init", "-q", "--bare", "-b", "main", origin)
	git("remote", "add", "origin", origin)
	git("push", "-q", "origin", "main")
	git("checkout", "-q", "--detach")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "FORK"), []byte("mallory was here\n"), 0o644))
	git("add", "FORK")
	git("commit", "-q", "-m", "fix: typo")
	head := git("rev-parse", "HEAD")
	remoteBefore := git("ls-remote", origin)

	vars, _, history := deployVars(t, "fork", head)
	vars = append(vars, "--var", "VERSION_BUMP=patch")
	project := vars[1][len("PROJECT="):]
	log, err := runAct(t, repo, "deploy.yaml", "workflow_run", map[string]any{
		"action": "completed",
		"workflow_run": map[string]any{
			"conclusion": "success", "event": "pull_request", "head_branch": "main", "head_sha": head,
			"head_commit":     map[string]any{"id": head, "message": "fix: typo"},
			"head_repository": map[string]any{"id": 2, "full_name": "mallory/deploy-kit"},
			"repository":      map[string]any{"id": 1, "full_name": "team/deploy-kit"},
			"pull_requests":   []any{},
		},
		"repository": map[string]any{"id": 1, "full_name": "team/deploy-kit", "default_branch": "main"},
	}, vars...)
	require.NoError(t, err, log)
	seen := later(log)
	assert.Equal(t, "skipped", seen["status"], log)
	assert.Equal(t, "true", seen["skipped"])
	assert.Contains(t, log, "skip: workflow_run: triggered by a pull_request event, not by a push to the repository: only push, workflow_dispatch and schedule runs are deployed")
	assert.Equal(t, remoteBefore, git("ls-remote", origin), "nothing pushed")
	assert.Empty(t, git("tag"), "nothing tagged")
	assert.Equal(t, head, git("rev-parse", "HEAD"))
	assert.Equal(t, base, git("rev-parse", "HEAD~1"))
	assert.NoFileExists(t, history)
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).Output()
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(out)), "no container touched")
}

// TestDeployActionCancelledThroughAct: a deploy job cancelled in nektos/act
// (SIGINT to act, as a person or a runner stops a job): act kills the step's
// process group with SIGKILL, as Gitea's act_runner does; deploykit leaves no
// process behind, and the job run again is green. Held at the stack's lock,
// which the test holds, the deploy is mid-run whatever the machine's speed.
func TestDeployActionCancelledThroughAct(t *testing.T) {
	t.Parallel()
	testenv.RequireCompose(t)
	repo, head := kitRepo(t, "feat: hello", "deploy.yaml")
	vars, port, history := deployVars(t, "cancel", head)
	project := vars[1][len("PROJECT="):]
	held, err := lock.Acquire(context.Background(), lock.PathFor(lock.Dir(history), project), lock.Holder{Host: "h", PID: 4242, Since: time.Now()}, time.Second, nil)
	require.NoError(t, err)
	defer held.Release()

	inputs := map[string]any{"inputs": map[string]any{"version_bump": "none", "service": "web", "no_cache": "false", "git_ref": ""}}
	act, out := startAct(t, repo, "deploy.yaml", "workflow_dispatch", inputs, vars...)
	testapp.WaitWithin(t, 5*time.Minute, "the deploy to wait for the lock", func() bool {
		return strings.Contains(out.String(), "waiting up to ")
	})
	pids := deploykitPIDs(t, project)
	require.NotEmpty(t, pids, "deploykit runs")
	require.NoError(t, act.Process.Signal(syscall.SIGINT))
	_ = act.Wait()
	testapp.WaitWithin(t, 30*time.Second, "act's kill to end deploykit", func() bool { return len(deploykitPIDs(t, project)) == 0 })
	require.NoError(t, held.Release())

	log, err := runAct(t, repo, "deploy.yaml", "workflow_dispatch", inputs, vars...)
	require.NoError(t, err, log)
	assert.Equal(t, "success", later(log)["status"], log)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// deploykitPIDs are the processes running deploykit for project.
func deploykitPIDs(t *testing.T, project string) []string {
	out, _ := exec.Command("pgrep", "-f", "deploykit.*").Output()
	var pids []string
	for _, pid := range strings.Fields(string(out)) {
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err == nil && strings.Contains(string(env), "INPUT_PROJECT_NAME="+project) {
			pids = append(pids, pid)
		}
	}
	return pids
}
