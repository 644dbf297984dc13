package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// withOrigin gives the app a bare origin that its main branch tracks.
func withOrigin(t *testing.T, a *testapp.App) string {
	origin := filepath.Join(t.TempDir(), "origin.git")
	out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", origin).CombinedOutput()
	require.NoError(t, err, string(out))
	a.Git("remote", "add", "origin", origin)
	a.Git("push", "-q", "-u", "origin", "main", "--tags")
	return origin
}

// pushBeforeTheDeploysPush makes someone else push a commit to origin's main just
// before the deploy's own push (once, from a pre-push hook): change is shell run in
// a clone of origin, message the commit's.
func pushBeforeTheDeploysPush(t *testing.T, a *testapp.App, origin, change, message string) {
	other := filepath.Join(t.TempDir(), "other")
	out, err := exec.Command("git", "clone", "-q", origin, other).CombinedOutput()
	require.NoError(t, err, string(out))
	marker := filepath.Join(t.TempDir(), "pushed")
	hook := "#!/bin/sh\n[ -e " + marker + " ] && exit 0\ntouch " + marker + "\n" +
		"cd " + other + " && " + change + " && " +
		"git -c user.name=o -c user.email=o@example.com commit -q -m '" + message + "' && git push -q origin main\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, ".git", "hooks", "pre-push"), []byte(hook), 0o755))
}

func lsRemote(t *testing.T, origin string) string {
	out, err := exec.Command("git", "ls-remote", origin).Output()
	require.NoError(t, err)
	return string(out)
}

func TestVersionBumpOnTheDefaultBranch(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)

	r := a.Deploy("--version-bump", "patch")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.1", r.Outputs["version"])
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.1", v)
	msg := a.Git("log", "-1", "--format=%s", "origin/main")
	assert.Equal(t, "chore(release): v1.0.1 [skip ci]", msg)
	assert.Contains(t, lsRemote(t, origin), "refs/tags/v1.0.1\n")
	show, err := exec.Command("git", "-C", origin, "show", "main:VERSION").Output()
	require.NoError(t, err)
	assert.Equal(t, "1.0.1\n", string(show))
	assert.Equal(t, "tag", a.Git("cat-file", "-t", "v1.0.1"), "an annotated tag")
	assert.Equal(t, a.Git("rev-parse", "origin/main"), a.Git("rev-parse", "v1.0.1^{commit}"))
	lines := a.HistoryLines()
	assert.Contains(t, lines[len(lines)-1], "| deploy | 1.0.1 | success | sha="+a.Git("rev-parse", "v1.0.1^{commit}"))
}

// TestVersionPushRetriesWhenOriginMoves pushes another commit to origin while the
// deploy runs (from a pre-push hook, just before the deploy's own push): the push is
// rejected, and the deploy fetches, rebases, bumps again and pushes.
func TestVersionPushRetriesWhenOriginMoves(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)
	pushBeforeTheDeploysPush(t, a, origin, "echo more > NEWS && git add NEWS", "docs: news")

	r := a.Deploy("--version-bump", "minor")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "push rejected (attempt 1 of 3): fetching main and rebasing")
	assert.Equal(t, "1.1.0", r.Outputs["version"])
	log := a.Git("log", "--format=%s", "origin/main")
	assert.Equal(t, []string{"chore(release): v1.1.0 [skip ci]", "docs: news", "release 1.0.0"}, strings.Split(log, "\n"))
	assert.Contains(t, lsRemote(t, origin), "refs/tags/v1.1.0\n")
	_, v := a.Get("/version")
	assert.Equal(t, "1.1.0", v)
}

func TestVersionIsReadOnlyOffTheDefaultBranch(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)
	a.Git("checkout", "-q", "-b", "feature")
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "NOTES"), []byte("wip\n"), 0o644))
	a.Git("add", "NOTES")
	a.Git("commit", "-q", "-m", "wip")
	before := lsRemote(t, origin)

	r := a.Deploy("--version-bump", "patch")
	require.Equal(t, 0, r.Code, r.Log)
	short := a.Git("rev-parse", "--short=7", "HEAD")
	assert.Equal(t, "1.0.0-"+short, r.Outputs["version"])
	assert.Contains(t, r.Summary, "| version | skipped |  | read-only (not the default branch main (deploying feature): versions are bumped only there): version 1.0.0-"+short+" |")
	assert.Equal(t, before, lsRemote(t, origin), "origin unchanged")
	assert.Equal(t, "v1.0.0", a.Git("tag"), "no local tag either")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0-"+short, v)
}

// TestDeployAGitRef deploys an older tag from a worktree, leaving the job's
// checkout where it is.
func TestDeployAGitRef(t *testing.T) {
	t.Parallel()
	a := testapp.NewTracked(t, "1.0.0")
	a.Release("1.1.0", false)
	a.Release("2.0.0", false)
	r := a.Deploy("--git-ref", "v1.1.0")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.1.0", r.Outputs["version"])
	_, v := a.Get("/version")
	assert.Equal(t, "1.1.0", v)
	assert.Equal(t, "release 2.0.0", a.Git("log", "-1", "--format=%s"), "the checkout did not move")
	out, err := exec.Command("git", "-C", a.Dir, "worktree", "list").Output()
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(out), "\n"), "the worktree was removed: %s", out)
	assert.Empty(t, a.Git("status", "--porcelain"))
}

// TestVersionIsReadOnlyOnACommitThatIsNotTheDefaultTip: a fork's pull request
// checked out detached, with GITHUB_REF claiming main (as a workflow_run of a
// fork's "main" branch does), is deployed read-only: nothing is committed, tagged
// or pushed, whatever the branch name says.
func TestVersionIsReadOnlyOnACommitThatIsNotTheDefaultTip(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)
	a.Git("checkout", "-q", "--detach")
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "NOTES"), []byte("from a fork\n"), 0o644))
	a.Git("add", "NOTES")
	a.Git("commit", "-q", "-m", "fork: looks harmless")
	a.Env = append(a.Env, "GITHUB_REF=refs/heads/main", "GITHUB_EVENT_NAME=workflow_dispatch")
	before := lsRemote(t, origin)
	short, tip := a.Git("rev-parse", "--short=7", "HEAD"), a.Git("rev-parse", "--short=7", "origin/main")

	r := a.Deploy("--version-bump", "patch")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, "1.0.0-"+short, r.Outputs["version"])
	assert.Contains(t, r.Summary, "| version | skipped |  | read-only ("+short+" is not the tip of origin/main ("+tip+"): versions are bumped only there): version 1.0.0-"+short+" |")
	assert.Equal(t, before, lsRemote(t, origin), "origin unchanged")
	assert.Equal(t, "v1.0.0", a.Git("tag"), "no local tag either")
	assert.Equal(t, "fork: looks harmless", a.Git("log", "-1", "--format=%s"))
}

// TestVersionBumpRefusesADirtyCheckout: a release is never cut from a checkout
// with changed tracked files (a rejected push would reset them away).
func TestVersionBumpRefusesADirtyCheckout(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "APP"), []byte("edited\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, "STAGED"), []byte("staged\n"), 0o644))
	a.Git("add", "STAGED")
	before := lsRemote(t, origin)

	r := a.Deploy("--version-bump", "patch")
	require.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of (version not determined) failed at preflight: version-bump: the checkout "+a.Dir+" has uncommitted changes to tracked files (M APP A STAGED): a release is cut only from a clean checkout of origin/main; commit or discard them first")
	assert.Equal(t, before, lsRemote(t, origin))
	assert.Equal(t, "v1.0.0", a.Git("tag"))
	assert.Equal(t, "M APP\nA  STAGED", a.Git("status", "--porcelain", "--untracked-files=no"), "the edits are still there")
	assert.Empty(t, a.Containers(), "no container created")
	lines := a.HistoryLines()
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "| deploy | (version not determined) | failed | failed at preflight: version-bump: the checkout")
}

// TestVersionRetryChecksTheNewTree: when the push is rejected and the branch moved
// to a commit whose compose file preflight refuses, nothing is released.
func TestVersionRetryChecksTheNewTree(t *testing.T) {
	t.Parallel()
	a := testapp.New(t, "1.0.0")
	origin := withOrigin(t, a)
	pushBeforeTheDeploysPush(t, a, origin, `printf 'services:\n  web:\n    image: [broken\n' > compose.yaml && git add compose.yaml`, "break compose")

	r := a.Deploy("--version-bump", "patch")
	require.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "push rejected (attempt 1 of 3): fetching main and rebasing")
	assert.Regexp(t, `::error::origin/main moved to [0-9a-f]{7}, which preflight refuses: compose file `, r.Log)
	assert.NotContains(t, lsRemote(t, origin), "v1.0.1", "nothing released")
	assert.Equal(t, "break compose", strings.TrimSpace(a.Git("log", "-1", "--format=%s", "origin/main")))
	assert.Empty(t, a.Containers(), "no container created")
}

// TestVersionBumpCommitAuthor: the bump commit is authored by whoever triggered
// the run, with the forge's noreply address, or by commit-author — never by the
// runner host's own git identity.
func TestVersionBumpCommitAuthor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"github actor", []string{"GITHUB_ACTOR=octocat", "GITHUB_ACTOR_ID=583231", "GITHUB_SERVER_URL=https://github.com"}, nil,
			"octocat <583231+octocat@users.noreply.github.com>"},
		{"gitea actor", []string{"GITHUB_ACTOR=alice", "GITEA_ACTIONS=true", "GITHUB_SERVER_URL=https://git.example.com/"}, nil,
			"alice <alice@noreply.git.example.com>"},
		{"commit-author input", []string{"GITHUB_ACTOR=alice"}, []string{"--commit-author", "Release Bot <release-bot@example.com>"},
			"Release Bot <release-bot@example.com>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := testapp.New(t, "1.0.0")
			withOrigin(t, a)
			a.Git("config", "user.name", "Runner Host")
			a.Git("config", "user.email", "root@runner-host")
			a.Env = append(a.Env, tc.env...)
			r := a.Deploy(append([]string{"--version-bump", "patch"}, tc.args...)...)
			require.Equal(t, 0, r.Code, r.Log)
			assert.Equal(t, tc.want+"|"+tc.want, a.Git("log", "-1", "--format=%an <%ae>|%cn <%ce>", "origin/main"))
		})
	}
}
