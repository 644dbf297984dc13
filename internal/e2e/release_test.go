package e2e

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestReleaseTagLogic runs scripts/release-tag.sh, as the release workflow does,
// against a repository with a bare origin.
func TestReleaseTagLogic(t *testing.T) {
	t.Parallel()
	repo, _ := kitRepo(t, "kit")
	origin := filepath.Join(t.TempDir(), "origin.git")
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=r", "GIT_AUTHOR_EMAIL=r@example.com", "GIT_COMMITTER_NAME=r", "GIT_COMMITTER_EMAIL=r@example.com")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		out, err := git(args...)
		require.NoError(t, err, "git %v: %s", args, out)
		return out
	}
	out, err := exec.Command("git", "init", "-q", "--bare", origin).CombinedOutput()
	require.NoError(t, err, string(out))
	must("remote", "add", "origin", origin)
	script := filepath.Join(repo, "scripts", "release-tag.sh")
	release := func(version string) {
		require.NoError(t, os.WriteFile(filepath.Join(repo, "VERSION"), []byte(version+"\n"), 0o644))
		must("commit", "-q", "-am", "release "+version)
		must("tag", "v"+version)
		must("push", "-q", "origin", "HEAD", "refs/tags/v"+version)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	remoteV1 := func() string {
		out, _ := exec.Command("git", "--git-dir", origin, "rev-parse", "--verify", "-q", "refs/tags/v1^{commit}").Output()
		return strings.TrimSpace(string(out))
	}

	release("1.0.0")
	out2, err := run("check", "v1.0.0")
	require.NoError(t, err, out2)
	out2, err = run("check", "v1.0.1")
	assert.Error(t, err)
	assert.Contains(t, out2, "::error::release-tag: tag v1.0.1 does not match VERSION (v1.0.0): bump VERSION in the tagged commit")
	out2, err = run("check", "1.0.0")
	assert.Error(t, err)
	assert.Contains(t, out2, "tag '1.0.0' is not a release tag like v1.2.3 or v1.2.3-rc.1")

	out2, err = run("move", "v1.0.0")
	require.NoError(t, err, out2)
	assert.Equal(t, must("rev-parse", "v1.0.0^{commit}"), remoteV1(), "a stable release moves v1")

	release("1.1.0-rc.1")
	out2, err = run("move", "v1.1.0-rc.1")
	require.NoError(t, err, out2)
	assert.Contains(t, out2, "v1.1.0-rc.1 is a pre-release: v1 stays where it is")
	assert.Equal(t, must("rev-parse", "v1.0.0^{commit}"), remoteV1(), "a pre-release never moves v1")

	release("1.1.0")
	_, err = run("move", "v1.1.0")
	require.NoError(t, err)
	assert.Equal(t, must("rev-parse", "v1.1.0^{commit}"), remoteV1())

	// A patch of an older minor, released later, does not move v1 back.
	must("checkout", "-q", "-b", "release-1.0", "v1.0.0")
	release("1.0.1")
	out2, err = run("move", "v1.0.1")
	require.NoError(t, err, out2)
	assert.Contains(t, out2, "v1.1.0 is newer than v1.0.1: v1 stays on v1.1.0")
	assert.Equal(t, must("rev-parse", "v1.1.0^{commit}"), remoteV1())
}

// TestGoReleaserSnapshot builds the release archives offline and checks them the
// way the installer will: checksums.txt verifies every archive, and the binary
// reports the stamped version.
func TestGoReleaserSnapshot(t *testing.T) {
	t.Parallel()
	goreleaser := testenv.RequireTool(t, "goreleaser")
	repo, head := kitRepo(t, "kit")
	// GoReleaser reads the commit only in a clone, which has a remote.
	remote := exec.Command("git", "remote", "add", "origin", "https://git.example.com/org/deploy-kit.git")
	remote.Dir = repo
	require.NoError(t, remote.Run())
	cmd := exec.Command(goreleaser, "release", "--snapshot", "--clean")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "KIT_VERSION=0.1.0", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	dist := filepath.Join(repo, "dist")
	version := "0.1.0-snapshot+" + head[:7]
	sums, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	require.NoError(t, err)
	var assets []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		require.True(t, ok, line)
		data, err := os.ReadFile(filepath.Join(dist, name))
		require.NoError(t, err)
		got := sha256.Sum256(data)
		assert.Equal(t, want, hex.EncodeToString(got[:]), name)
		assets = append(assets, name)
	}
	for _, osArch := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"} {
		assert.Contains(t, assets, "deploykit_"+version+"_"+osArch+".tar.gz")
	}

	bin := filepath.Join(t.TempDir(), "deploykit")
	extract(t, filepath.Join(dist, "deploykit_"+version+"_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz"), "deploykit", bin)
	got, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "deploykit "+version+" (commit "+head), string(got))
}

// extract copies one member of a .tar.gz to dst.
func extract(t *testing.T, archive, member, dst string) {
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "%s has no %s", archive, member)
		if h.Name != member {
			continue
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
		require.NoError(t, err)
		_, err = io.Copy(out, tr)
		require.NoError(t, err)
		require.NoError(t, out.Close())
		return
	}
}
