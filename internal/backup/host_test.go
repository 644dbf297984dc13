package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/action"
)

// dirHost is a Docker host whose filesystem is a directory of the test's
// (root): the Host seam's logic without SSH (internal/remote's tests and the
// VPS's end-to-end tests prove the real one).
type dirHost struct {
	root    string
	corrupt bool // uploads arrive with a byte changed
}

func (h dirHost) at(p string) string { return filepath.Join(h.root, p) }

func (h dirHost) Upload(_ context.Context, src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if h.corrupt && len(data) > 0 && filepath.Ext(dst) != ".sha256" {
		data[len(data)/2] ^= 1
	}
	if err := os.MkdirAll(filepath.Dir(h.at(dst)), 0o700); err != nil {
		return err
	}
	return os.WriteFile(h.at(dst), data, 0o600)
}

func (h dirHost) Download(_ context.Context, src, dst string) error {
	data, err := os.ReadFile(h.at(src))
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o600)
}

func (h dirHost) List(context.Context, string) ([]string, error) { return nil, nil }

func (h dirHost) RemoveFile(_ context.Context, file string) error {
	err := os.Remove(h.at(file))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func (h dirHost) SHA256(_ context.Context, file string) (string, error) {
	data, err := os.ReadFile(h.at(file))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", sha256.Sum256(data)), nil
}

func (h dirHost) String() string { return "deploy@vps:22" }

// listingHost is dirHost with List.
type listingHost struct{ dirHost }

func (h listingHost) List(_ context.Context, dir string) ([]string, error) {
	return localShelf(h.at(dir)).list(context.Background())
}

// TestBackupKeptOnTheHost: the published backup goes to dir on the host, its
// .sha256 first; a copy whose SHA-256 there differs is removed and fails;
// retention prunes on the host; the newest there is found and downloaded
// back with its checksum; a backup without its .sha256 there is refused.
func TestBackupKeptOnTheHost(t *testing.T) {
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "app-2026-12-07T101500Z.sql.gz")
	data := bytes.Repeat([]byte("dump\n"), 1000)
	require.NoError(t, os.WriteFile(local, data, 0o600))
	sum := fmt.Sprintf("%x", sha256.Sum256(data))
	require.NoError(t, writeSumFile(local, sum))
	h := listingHost{dirHost{root: t.TempDir()}}

	kept, err := keepOnHost(ctx, h, local, "/srv/backups", sum)
	require.NoError(t, err)
	assert.Equal(t, "/srv/backups/app-2026-12-07T101500Z.sql.gz", kept)
	assert.FileExists(t, h.at(kept+".sha256"))

	bad := listingHost{dirHost{root: t.TempDir(), corrupt: true}}
	_, err = keepOnHost(ctx, bad, local, "/srv/backups", sum)
	require.Error(t, err)
	assert.Regexp(t, `^/srv/backups/app-2026-12-07T101500Z\.sql\.gz on deploy@vps:22 has the SHA-256 [0-9a-f]{64}, not the backup's `+sum+`: removed it$`, err.Error())
	assert.NoFileExists(t, bad.at(kept))
	assert.NoFileExists(t, bad.at(kept+".sha256"))

	// Older backups on the host: retention there keeps the newest of each day.
	for _, old := range []string{"app-2026-12-07T080000Z.sql.gz", "app-2026-12-06T080000Z.sql.gz", "app-2026-12-05T080000Z.sql.gz", "other-2026-01-01T000000Z.sql.gz"} {
		require.NoError(t, os.WriteFile(h.at("/srv/backups/"+old), []byte("x"), 0o600))
		require.NoError(t, os.WriteFile(h.at("/srv/backups/"+old+".sha256"), []byte("x"), 0o600))
	}
	deleted, keptNames, err := prune(ctx, hostShelf{h, "/srv/backups"}, "app", "sql", "app-2026-12-07T101500Z.sql.gz", Keep{Daily: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"app-2026-12-07T080000Z.sql.gz", "app-2026-12-05T080000Z.sql.gz"}, deleted)
	assert.Equal(t, []string{"app-2026-12-07T101500Z.sql.gz", "app-2026-12-06T080000Z.sql.gz"}, keptNames)
	assert.NoFileExists(t, h.at("/srv/backups/app-2026-12-05T080000Z.sql.gz.sha256"), "its checksum went with it")
	assert.FileExists(t, h.at("/srv/backups/other-2026-01-01T000000Z.sql.gz"), "another prefix is never touched")

	newest, err := LatestOnHost(ctx, h, "/srv/backups", "app", "sql")
	require.NoError(t, err)
	assert.Equal(t, kept, newest)
	_, err = LatestOnHost(ctx, h, "/srv/backups", "shop", "sql")
	assert.EqualError(t, err, "no backup named shop-<timestamp>.sql.gz in /srv/backups on deploy@vps:22")

	dir := filepath.Join(t.TempDir(), "fetched")
	got, err := FetchFromHost(ctx, h, newest, dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "app-2026-12-07T101500Z.sql.gz"), got)
	require.NoError(t, compareSum(got, sum), "downloaded whole, with its checksum")

	require.NoError(t, os.Remove(h.at("/srv/backups/app-2026-12-06T080000Z.sql.gz.sha256")))
	_, err = FetchFromHost(ctx, h, "/srv/backups/app-2026-12-06T080000Z.sql.gz", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/srv/backups/app-2026-12-06T080000Z.sql.gz.sha256 on deploy@vps:22: ")
	assert.Contains(t, err.Error(), "(a backup is restored only with the checksum written beside it)")
}

// TestBadInputWithADockerHost: dir must be an absolute path there, host-path
// and SQLite do not apply; each refused with nothing made.
func TestBadInputWithADockerHost(t *testing.T) {
	a := action.NewContext(nil, &bytes.Buffer{})
	tmp := t.TempDir()
	t.Setenv("RUNNER_TEMP", tmp)
	h := dirHost{root: t.TempDir()}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Engine: "postgres", DatabaseURL: "postgres://u@db/app", Dir: "backups", Prefix: "app", Host: h},
			`input dir: "backups" is a directory on the Docker host deploy@vps:22 (docker-host): want an absolute path`},
		{Options{Engine: "postgres", DatabaseURL: "postgres://u@db/app", Dir: "/srv/backups", HostPath: "/mnt/copy", Prefix: "app", Host: h},
			"input host-path: with docker-host the backup is kept on the Docker host, in dir; for a second copy elsewhere use offsite-url"},
		{Options{Engine: "sqlite", SQLitePath: newSQLiteDB(t), Dir: "/srv/backups", Prefix: "app", Host: h},
			"input engine: a SQLite file is on the Docker host, where a runner elsewhere cannot read it; back it up from a runner on the host, without docker-host"},
	} {
		_, err := newJob(a, c.o)
		require.Error(t, err)
		assert.Equal(t, 2, action.ExitCode(err))
		assert.Equal(t, c.want, err.Error())
	}
	left, _ := os.ReadDir(tmp)
	assert.Empty(t, left, "nothing made on the runner")
	left, _ = os.ReadDir(h.root)
	assert.Empty(t, left, "nothing on the host")
}
