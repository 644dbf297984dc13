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
	other := filepath.Join(t.TempDir(), "other")
	out, err := exec.Command("git", "clone", "-q", origin, other).CombinedOutput()
	require.NoError(t, err, string(out))
	marker := filepath.Join(t.TempDir(), "pushed")
	hook := "#!/bin/sh\n[ -e " + marker + " ] && exit 0\ntouch " + marker + "\n" +
		"cd " + other + " && echo more > NEWS && git add NEWS && " +
		"git -c user.name=o -c user.email=o@example.com commit -q -m 'docs: news' && git push -q origin main\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir, ".git", "hooks", "pre-push"), []byte(hook), 0o755))

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
