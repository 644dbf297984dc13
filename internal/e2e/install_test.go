package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// release is a forge's release download area on 127.0.0.1, laid out like
// <base>/v<version>/<asset>, counting the requests it gets.
type release struct {
	srv      *httptest.Server
	files    map[string][]byte
	requests atomic.Int64
}

func newRelease(t *testing.T) *release {
	r := &release{files: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		data, ok := r.files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func assetName(version string) string {
	return fmt.Sprintf("deploykit_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
}

// publish puts an archive holding binary and a checksums.txt (of sumOf) in place.
func (r *release) publish(t *testing.T, version string, binary, sumOf []byte) {
	r.publishAt(t, "", version, binary, sumOf)
}

// publishAt is publish under a path prefix, like a forge's /<owner>/<repo>/releases/download.
func (r *release) publishAt(t *testing.T, prefix, version string, binary, sumOf []byte) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "deploykit", Mode: 0o755, Size: int64(len(binary))}))
	_, err := tw.Write(binary)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	archive := buf.Bytes()
	if sumOf == nil {
		sumOf = archive
	}
	sum := sha256.Sum256(sumOf)
	asset := assetName(version)
	r.files[prefix+"/v"+version+"/"+asset] = archive
	r.files[prefix+"/v"+version+"/checksums.txt"] = fmt.Appendf(nil, "%s  %s\n%s  deploykit_%s_other_arch.tar.gz\n",
		hex.EncodeToString(sum[:]), asset, strings.Repeat("0", 64), version)
}

// kit is a copy of the kit's tree and the runner files one install uses.
type kit struct {
	dir, toolCache, output, path string
}

func newKit(t testing.TB) kit {
	dir, _ := kitRepo(t, "kit")
	tmp := t.TempDir()
	return kit{dir: dir, toolCache: filepath.Join(tmp, "toolcache"),
		output: filepath.Join(tmp, "output"), path: filepath.Join(tmp, "path")}
}

func (k kit) version(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(k.dir, "VERSION"))
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}

// install runs the installer as an action's first step does.
func (k kit) install(t testing.TB, pathEnv string, extra ...string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(k.dir, "scripts", "install-deploykit.sh"))
	cmd.Env = append([]string{
		"PATH=" + pathEnv, "HOME=" + os.Getenv("HOME"), "GOCACHE=" + os.Getenv("GOCACHE"),
		"GOPATH=" + os.Getenv("GOPATH"), "GOFLAGS=" + os.Getenv("GOFLAGS"), "GOPROXY=" + os.Getenv("GOPROXY"),
		"RUNNER_TOOL_CACHE=" + k.toolCache, "RUNNER_TEMP=" + os.TempDir(),
		"GITHUB_OUTPUT=" + k.output, "GITHUB_PATH=" + k.path,
	}, extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// installedBinaries lists every deploykit binary under the tool cache.
func (k kit) installedBinaries(t testing.TB) []string {
	var found []string
	_ = filepath.WalkDir(k.toolCache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "deploykit") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func readFile(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(data)
}

// pathWithoutGo is a PATH holding only the tools the installer uses, and no go.
func pathWithoutGo(t *testing.T) string {
	dir := t.TempDir()
	for _, tool := range []string{"bash", "cat", "tr", "uname", "find", "sort", "xargs", "sha256sum", "cut",
		"mktemp", "rm", "mkdir", "mv", "chmod", "awk", "tar", "gzip", "curl", "head", "dirname", "sed"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err, tool)
		require.NoError(t, os.Symlink(p, filepath.Join(dir, tool)))
	}
	return dir
}

// withRelease is a kit whose release of its own version holds the test binary.
func withRelease(t *testing.T) (k kit, rel *release, binary []byte) {
	k, rel = newKit(t), newRelease(t)
	binary, err := os.ReadFile(testenv.Deploykit(t))
	require.NoError(t, err)
	rel.publish(t, k.version(t), binary, nil)
	return k, rel, binary
}

func TestInstallFromReleaseThenCache(t *testing.T) {
	t.Parallel()
	k, rel, binary := withRelease(t)

	// No Go on PATH: the release is the only way in.
	out, err := k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "installed from release v"+k.version(t))
	bins := k.installedBinaries(t)
	require.Len(t, bins, 1)
	assert.Equal(t, binary, []byte(readFile(t, bins[0])), "the released binary, unchanged")
	assert.Equal(t, "path="+bins[0]+"\nversion="+k.version(t)+"\n", readFile(t, k.output))
	assert.Equal(t, filepath.Dir(bins[0])+"\n", readFile(t, k.path))
	got, err := exec.Command(bins[0], "version").Output()
	require.NoError(t, err)
	assert.Contains(t, string(got), "deploykit ")

	requests := rel.requests.Load()
	out, err = k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "from the tool cache (release v"+k.version(t))
	assert.Equal(t, requests, rel.requests.Load(), "a cache hit makes no request")
}

// TestInstallDoesNotTrustATamperedCache: a cached binary that no longer has the
// SHA-256 recorded when it was installed, or that others may write, is never run:
// the release is installed over it.
func TestInstallDoesNotTrustATamperedCache(t *testing.T) {
	t.Parallel()
	k, rel, binary := withRelease(t)
	out, err := k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	bins := k.installedBinaries(t)
	require.Len(t, bins, 1)
	assert.Regexp(t, `^release v\S+ \([0-9a-f]{64}\)\nsha256=[0-9a-f]{64}\n$`, readFile(t, filepath.Join(filepath.Dir(bins[0]), ".complete")))

	// Poisoned in place (same mode, same marker).
	require.NoError(t, os.WriteFile(bins[0], []byte("#!/bin/sh\necho poisoned\n"), 0o755))
	out, err = k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "install-deploykit: tool cache binary "+bins[0]+" does not have the SHA-256 recorded when it was installed")
	assert.Contains(t, out, "installed from release v"+k.version(t))
	assert.Equal(t, binary, []byte(readFile(t, bins[0])), "the released binary again")

	// Writable by others: not used either, even with the right bytes.
	require.NoError(t, os.Chmod(bins[0], 0o777))
	out, err = k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "install-deploykit: tool cache entry "+bins[0]+" is another user's or writable by others: not using it")
	assert.Contains(t, out, "installed from release v"+k.version(t))
	info, err := os.Stat(bins[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
}

// TestInstallFromTheActionsOwnRepository finds the release where a forge keeps it:
// $GITHUB_SERVER_URL/<action repository>/releases/download/v<version>/.
func TestInstallFromTheActionsOwnRepository(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	rel := newRelease(t)
	binary, err := os.ReadFile(testenv.Deploykit(t))
	require.NoError(t, err)
	rel.publishAt(t, "/org/deploy-kit/releases/download", k.version(t), binary, nil)
	out, err := k.install(t, pathWithoutGo(t), "GITHUB_SERVER_URL="+rel.srv.URL+"/", "GITHUB_ACTION_REPOSITORY=org/deploy-kit")
	require.NoError(t, err, out)
	assert.Contains(t, out, "installed from release v"+k.version(t))
}

func TestInstallRefusesATamperedAsset(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	rel := newRelease(t)
	rel.publish(t, k.version(t), []byte("#!/bin/sh\necho tampered\n"), []byte("the genuine archive"))

	// Go is present, yet a checksum mismatch must stop, not fall back.
	out, err := k.install(t, os.Getenv("PATH"), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.Error(t, err)
	assert.Contains(t, out, "::error::install-deploykit: checksum mismatch for "+assetName(k.version(t)))
	assert.Contains(t, out, "refusing to install it")
	assert.NotContains(t, out, "building deploykit")
	assert.Empty(t, k.installedBinaries(t), "nothing left in the tool cache")
	assert.NoFileExists(t, k.output)
}

func TestInstallRefusesAnAssetMissingFromChecksums(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	rel := newRelease(t)
	rel.publish(t, k.version(t), []byte("binary"), nil)
	rel.files["/v"+k.version(t)+"/checksums.txt"] = []byte(strings.Repeat("0", 64) + "  something_else.tar.gz\n")
	out, err := k.install(t, os.Getenv("PATH"), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.Error(t, err)
	assert.Contains(t, out, "checksums.txt of v"+k.version(t)+" has no entry for "+assetName(k.version(t))+": refusing to install it")
	assert.Empty(t, k.installedBinaries(t))
}

func TestInstallBuildsFromSourceWhenThereIsNoRelease(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	rel := newRelease(t) // empty: every download is a 404
	out, err := k.install(t, os.Getenv("PATH"), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "no release asset at "+rel.srv.URL+"/v"+k.version(t)+"/"+assetName(k.version(t)))
	assert.Contains(t, out, "installed from source")
	bins := k.installedBinaries(t)
	require.Len(t, bins, 1)
	got, err := exec.Command(bins[0], "version").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "deploykit "+k.version(t)+" "), "version stamped: %s", got)
}

func TestInstallFailsClearlyWithNoReleaseAndNoGo(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	rel := newRelease(t)
	out, err := k.install(t, pathWithoutGo(t), "DEPLOYKIT_RELEASE_URL="+rel.srv.URL)
	require.Error(t, err)
	assert.Contains(t, out, "::error::install-deploykit: cannot install deploykit "+k.version(t)+": not in the tool cache")
	assert.Contains(t, out, "Go is not installed to build it from source")
	assert.Empty(t, k.installedBinaries(t))
}

func TestInstallRebuildsWhenTheSourceChanges(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	out, err := k.install(t, os.Getenv("PATH"), "DEPLOYKIT_NO_DOWNLOAD=1")
	require.NoError(t, err, out)
	require.NoError(t, os.WriteFile(filepath.Join(k.dir, "internal", "buildinfo", "extra.go"), []byte("package buildinfo\n\nconst extra = 1\n"), 0o644))
	out, err = k.install(t, os.Getenv("PATH"), "DEPLOYKIT_NO_DOWNLOAD=1")
	require.NoError(t, err, out)
	assert.Contains(t, out, "installed from source", "a changed checkout is not a cache hit")
	assert.Len(t, k.installedBinaries(t), 2)
}
