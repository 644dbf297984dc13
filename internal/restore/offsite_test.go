package restore_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
)

// TestRestoreFromOffsite: with the local backups gone, the newest offsite copy
// (or one named by its s3:// key) is downloaded, verified and restored; a copy
// whose checksum does not match is refused before anything changes.
func TestRestoreFromOffsite(t *testing.T) {
	t.Parallel()
	srv := testenv.S3(t)
	s3c := srv.Client
	offsite := []string{"--offsite-url", "s3://backups/app", "--offsite-endpoint", srv.Endpoint, "--offsite-path-style",
		"--offsite-access-key", testenv.S3AccessKey, "--offsite-secret-key", testenv.S3SecretKey}

	root := t.TempDir()
	path := filepath.Join(root, "app.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, data BLOB, n INTEGER); INSERT INTO notes VALUES (1, 'one', x'01', 1), (2, 'two', NULL, NULL)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	want := sqliteRows(t, path)
	r := deploykit(t, "backup", append([]string{"--engine", "sqlite", "--sqlite-path", path, "--dir", filepath.Join(root, "local"), "--min-size", "0"}, offsite...)...)
	require.Equal(t, 0, r.Code, r.Log)
	key := strings.TrimPrefix(r.Outputs["offsite"], "s3://backups/")
	require.NoError(t, os.RemoveAll(filepath.Join(root, "local")), "the host lost its backups")

	change := func() {
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		_, err = db.Exec("DELETE FROM notes WHERE id = 2")
		require.NoError(t, err)
		require.NoError(t, db.Close())
	}
	restore := func(file, dir string) result {
		return deploykit(t, "restore", append([]string{"--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", file,
			"--dir", dir, "--history-file", filepath.Join(root, "history.log")}, offsite...)...)
	}

	// Objects merely named like backups, newer than it, are not what latest
	// restores (defects audit, item 4).
	for _, k := range []string{"app/backup-2099-01-01T000000Z.sqlite.gz", "app/backup-2098-01-01T000000Z.sqlite.gz", "app/backup-2098-01-01T000000Z.sqlite.gz.sha256"} {
		_, err = s3c.PutObject(context.Background(), "backups", k, bytes.NewReader([]byte("evil")), 4, minio.PutObjectOptions{})
		require.NoError(t, err)
	}

	// A dry run verifies the copy and leaves nothing on disk (item 11).
	change()
	changed := sqliteRows(t, path)
	dry := deploykit(t, "restore", append([]string{"--dry-run", "--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", "latest",
		"--dir", filepath.Join(root, "dry"), "--history-file", filepath.Join(root, "history.log")}, offsite...)...)
	require.Equal(t, 0, dry.Code, dry.Log)
	assert.Contains(t, dry.Log, "matches "+filepath.Base(key)+".sha256")
	assert.NoDirExists(t, filepath.Join(root, "dry"), "nothing downloaded into dir")
	assert.Equal(t, changed, sqliteRows(t, path))

	r = restore("latest", filepath.Join(root, "fetched"))
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, want, sqliteRows(t, path))
	assert.Equal(t, filepath.Join(root, "fetched", filepath.Base(key)), r.Outputs["file"], "downloaded into dir, then restored")

	change()
	r = restore("s3://backups/"+key, filepath.Join(root, "fetched2"))
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, want, sqliteRows(t, path))

	// A copy whose .sha256 does not match is refused: nothing changes.
	change()
	changed = sqliteRows(t, path)
	_, err = s3c.PutObject(context.Background(), "backups", key+".sha256", bytes.NewReader([]byte(strings.Repeat("0", 64)+"  x\n")), 67, minio.PutObjectOptions{})
	require.NoError(t, err)
	r = restore("latest", filepath.Join(root, "fetched3"))
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, ".sha256: the file changed after it was written")
	assert.Equal(t, changed, sqliteRows(t, path))
	assert.NotContains(t, r.Log, testenv.S3SecretKey)
}
