package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withOrigin gives the app a bare origin that its main branch tracks.
func withOrigin(t *testing.T, a *app) string {
	origin := filepath.Join(t.TempDir(), "origin.git")
	out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", origin).CombinedOutput()
	require.NoError(t, err, string(out))
	a.git("remote", "add", "origin", origin)
	a.git("push", "-q", "-u", "origin", "main", "--tags")
	return origin
}

func lsRemote(t *testing.T, origin string) string {
	out, err := exec.Command("git", "ls-remote", origin).Output()
	require.NoError(t, err)
	return string(out)
}

func TestVersionBumpOnTheDefaultBranch(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	origin := withOrigin(t, a)

	r := a.deploy("--version-bump", "patch")
	require.Equal(t, 0, r.code, r.log)
	assert.Equal(t, "1.0.1", r.outputs["version"])
	_, v := a.get("/version")
	assert.Equal(t, "1.0.1", v)
	msg := a.git("log", "-1", "--format=%s", "origin/main")
	assert.Equal(t, "chore(release): v1.0.1 [skip ci]", msg)
	assert.Contains(t, lsRemote(t, origin), "refs/tags/v1.0.1\n")
	show, err := exec.Command("git", "-C", origin, "show", "main:VERSION").Output()
	require.NoError(t, err)
	assert.Equal(t, "1.0.1\n", string(show))
	assert.Equal(t, "tag", a.git("cat-file", "-t", "v1.0.1"), "an annotated tag")
	assert.Equal(t, a.git("rev-parse", "origin/main"), a.git("rev-parse", "v1.0.1^{commit}"))
	lines := a.historyLines()
	assert.Contains(t, lines[len(lines)-1], "| deploy | 1.0.1 | success | sha="+a.git("rev-parse", "v1.0.1^{commit}"))
}

// TestVersionPushRetriesWhenOriginMoves pushes another commit to origin while the
// deploy runs (from a pre-push hook, just before the deploy's own push): the push is
// rejected, and the deploy fetches, rebases, bumps again and pushes.
func TestVersionPushRetriesWhenOriginMoves(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	origin := withOrigin(t, a)
	other := filepath.Join(t.TempDir(), "other")
	out, err := exec.Command("git", "clone", "-q", origin, other).CombinedOutput()
	require.NoError(t, err, string(out))
	marker := filepath.Join(t.TempDir(), "pushed")
	hook := "#!/bin/sh\n[ -e " + marker + " ] && exit 0\ntouch " + marker + "\n" +
		"cd " + other + " && echo more > NEWS && git add NEWS && " +
		"git -c user.name=o -c user.email=o@example.com commit -q -m 'docs: news' && git push -q origin main\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, ".git", "hooks", "pre-push"), []byte(hook), 0o755))

	r := a.deploy("--version-bump", "minor")
	require.Equal(t, 0, r.code, r.log)
	assert.Contains(t, r.log, "push rejected (attempt 1 of 3): fetching main and rebasing")
	assert.Equal(t, "1.1.0", r.outputs["version"])
	log := a.git("log", "--format=%s", "origin/main")
	assert.Equal(t, []string{"chore(release): v1.1.0 [skip ci]", "docs: news", "release 1.0.0"}, strings.Split(log, "\n"))
	assert.Contains(t, lsRemote(t, origin), "refs/tags/v1.1.0\n")
	_, v := a.get("/version")
	assert.Equal(t, "1.1.0", v)
}

func TestVersionIsReadOnlyOffTheDefaultBranch(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	origin := withOrigin(t, a)
	a.git("checkout", "-q", "-b", "feature")
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "NOTES"), []byte("wip\n"), 0o644))
	a.git("add", "NOTES")
	a.git("commit", "-q", "-m", "wip")
	before := lsRemote(t, origin)

	r := a.deploy("--version-bump", "patch")
	require.Equal(t, 0, r.code, r.log)
	short := a.git("rev-parse", "--short=7", "HEAD")
	assert.Equal(t, "1.0.0-"+short, r.outputs["version"])
	assert.Contains(t, r.summary, "| version | skipped |  | read-only (not the default branch main (deploying feature): versions are bumped only there): version 1.0.0-"+short+" |")
	assert.Equal(t, before, lsRemote(t, origin), "origin unchanged")
	assert.Equal(t, "v1.0.0", a.git("tag"), "no local tag either")
	_, v := a.get("/version")
	assert.Equal(t, "1.0.0-"+short, v)
}

// TestDeployAGitRef deploys an older tag from a worktree, leaving the job's
// checkout where it is.
func TestDeployAGitRef(t *testing.T) {
	t.Parallel()
	a := newApp(t, "1.0.0")
	a.trackBinary = true
	a.release("1.1.0", false)
	a.release("2.0.0", false)
	r := a.deploy("--git-ref", "v1.1.0")
	require.Equal(t, 0, r.code, r.log)
	assert.Equal(t, "1.1.0", r.outputs["version"])
	_, v := a.get("/version")
	assert.Equal(t, "1.1.0", v)
	assert.Equal(t, "release 2.0.0", a.git("log", "-1", "--format=%s"), "the checkout did not move")
	out, err := exec.Command("git", "-C", a.dir, "worktree", "list").Output()
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(out), "\n"), "the worktree was removed: %s", out)
	assert.Empty(t, a.git("status", "--porcelain"))
}
