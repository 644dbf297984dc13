package deploy_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// TestDeployBacksUpBeforeTheChange: with backup: true the database is backed up
// (and verified) before anything changes; a backup that fails stops the deploy
// with the previous version still serving.
func TestDeployBacksUpBeforeTheChange(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dbPath := sqliteFixture(t, root)
	dir := filepath.Join(root, "backups")

	a := testapp.New(t, "1.0.0")
	r := a.Deploy("--backup", "--backup-engine", "sqlite", "--backup-sqlite-path", dbPath, "--backup-dir", dir)
	require.Equal(t, 0, r.Code, r.Log)
	matches, err := filepath.Glob(filepath.Join(dir, "pre-deploy-"+a.Name+"-*.sqlite.gz"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one backup before the first deploy")
	assert.FileExists(t, matches[0]+".sha256")
	assert.Regexp(t, `(?m)^\| backup \| done \| \S+ \| `+matches[0]+` \(\d+ bytes, sha256 [0-9a-f]{64}\), verified \|`, r.Summary)

	// A database the backup cannot read: the deploy stops at backup.
	notSQLite := filepath.Join(root, "broken.db")
	require.NoError(t, os.WriteFile(notSQLite, []byte("this is not a database, it is text long enough to have a header......................................................."), 0o600))
	a.Release("2.0.0", false)
	r = a.Deploy("--backup", "--backup-engine", "sqlite", "--backup-sqlite-path", notSQLite, "--backup-dir", dir)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::deploy of 2.0.0 failed at backup: backup failed at dump: VACUUM INTO a copy of "+notSQLite+": ")
	assert.Contains(t, r.Summary, "| apply | skipped |  | an earlier step failed |")
	_, v := a.Get("/version")
	assert.Equal(t, "1.0.0", v, "nothing changed")
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	assert.Empty(t, left, "no temp files left")
}

// TestPreDeployBackupRetention: the pre-deploy backups' retention comes from the
// backup-keep-* inputs: with every count 0, only the new backup stays.
func TestPreDeployBackupRetention(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dbPath := sqliteFixture(t, root)
	dir := filepath.Join(root, "backups")
	require.NoError(t, os.MkdirAll(dir, 0o755))

	a := testapp.New(t, "1.0.0")
	yesterday := filepath.Join(dir, "pre-deploy-"+a.Name+"-"+time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02T150405Z")+".sqlite.gz")
	require.NoError(t, os.WriteFile(yesterday, []byte("an older backup"), 0o600))
	args := []string{"--backup", "--backup-engine", "sqlite", "--backup-sqlite-path", dbPath, "--backup-dir", dir}
	r := a.Deploy(args...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.FileExists(t, yesterday, "the default keeps 7 days")

	a.Release("2.0.0", false)
	r = a.Deploy(append(args, "--backup-keep-daily", "0", "--backup-keep-weekly", "0", "--backup-keep-monthly", "0")...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.NoFileExists(t, yesterday)
	matches, err := filepath.Glob(filepath.Join(dir, "pre-deploy-"+a.Name+"-*.sqlite.gz"))
	require.NoError(t, err)
	assert.Len(t, matches, 1, "only the new backup")

	r = a.Deploy(append(args, "--backup-keep-daily", "-1")...)
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, `input backup-keep-daily: invalid value "-1"`)
}

// sqliteFixture makes root/app.db, a SQLite database with a table of two rows.
func sqliteFixture(t *testing.T, root string) string {
	t.Helper()
	path := filepath.Join(root, "app.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('one'), ('two')")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return path
}

// TestPreDeployBackupNamesWhatAKilledRestoreLeft (defects audit, item 2): a
// deploy whose pre-deploy backup reads a PostgreSQL database by URL says which
// databases a killed restore (or restore check) of that database left beside it,
// and what to do with them; another database's are left to its own runs.
func TestPreDeployBackupNamesWhatAKilledRestoreLeft(t *testing.T) {
	t.Parallel()
	server := testenv.Postgres(t)
	q := func(sql string) {
		out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname="+server, "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	q("CREATE DATABASE shop")
	out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname="+strings.Replace(server, "/postgres?", "/shop?", 1), "-c",
		"CREATE TABLE notes AS SELECT i AS id, md5(i::text) AS body FROM generate_series(1, 500) i").CombinedOutput()
	require.NoError(t, err, "%s", out)
	tag := func(db string) string { sum := sha256.Sum256([]byte(db)); return hex.EncodeToString(sum[:4]) }
	pre, fresh, check := "deploykit_pre_restore_20261201000000_"+tag("shop"), "deploykit_restore_20261201000000_"+tag("shop"), "deploykit_check_0123456789ab_"+tag("shop")
	other := "deploykit_pre_restore_20261201000000_" + tag("blog")
	for _, db := range []string{pre, fresh, check, other} {
		q("CREATE DATABASE " + db)
	}
	a := testapp.New(t, "1.0.0")
	r := a.Deploy("--backup", "--backup-database-url", strings.Replace(server, "/postgres?", "/shop?", 1), "--backup-dir", t.TempDir())
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "::warning::database "+pre+" holds the data from before a restore that was killed after shop took the restored data: drop it once you no longer need it (DROP DATABASE \""+pre+"\")")
	assert.Contains(t, r.Log, "::warning::database "+fresh+" is a copy a restore of shop was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE \""+fresh+"\")")
	assert.Contains(t, r.Log, "::warning::database "+check+" is a scratch copy a backup's restore check of shop was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE \""+check+"\")")
	assert.NotContains(t, r.Log, other, "blog's are for blog's restores to report")
}
