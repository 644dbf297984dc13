package backup_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gzipFile(t *testing.T, path string, content []byte) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(content)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
}

// sqliteBackup makes a real backup of a small SQLite database and returns it.
func sqliteBackup(t *testing.T, dir string) string {
	src := filepath.Join(t.TempDir(), "app.db")
	db := sqliteDB(t, src, 2000)
	require.NoError(t, db.Close())
	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0")
	return checkPublished(t, r, dir, "backup", "sqlite")
}

// TestVerifyOnly: `deploykit backup --verify-only <file>` accepts a good backup
// and rejects a cut-off, empty, foreign or altered one with exit 1.
func TestVerifyOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := sqliteBackup(t, dir)
	data, err := os.ReadFile(good)
	require.NoError(t, err)

	r := backup(t, nil, "--verify-only", good, "--min-size", "0")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, good, r.Outputs["path"])
	assert.Equal(t, fmt.Sprint(len(data)), r.Outputs["size"])
	recorded, err := os.ReadFile(good + ".sha256")
	require.NoError(t, err)
	assert.Equal(t, strings.Fields(string(recorded))[0], r.Outputs["sha256"])
	assert.Contains(t, r.Summary, "### deploykit backup --verify-only: ok")
	assert.Contains(t, r.Summary, "| sqlite header and completion trailer present | ok |")
	assert.Contains(t, r.Summary, "| matches "+filepath.Base(good)+".sha256 | ok |")

	other := t.TempDir()
	truncated := filepath.Join(other, "truncated.sql.gz")
	require.NoError(t, os.WriteFile(truncated, data[:len(data)/2], 0o600))
	empty := filepath.Join(other, "empty.sql.gz")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	cutDump := filepath.Join(other, "cut.sql.gz")
	gzipFile(t, cutDump, []byte("--\n-- PostgreSQL database cluster dump\n--\n\nSET default_transaction_read_only = off;\nCOPY public.t (id) FROM stdin;\n1\n2\n"))
	cutSQLite := filepath.Join(other, "cut.sqlite.gz")
	raw := gunzipBytes(t, data)
	gzipFile(t, cutSQLite, raw[:len(raw)-4096])
	foreign := filepath.Join(other, "notes.gz")
	gzipFile(t, foreign, []byte("just some notes\n"))
	altered := filepath.Join(other, filepath.Base(good))
	require.NoError(t, os.WriteFile(altered, data, 0o600))
	require.NoError(t, os.WriteFile(altered+".sha256", []byte(fmt.Sprintf("%064d  %s\n", 0, filepath.Base(good))), 0o600))

	for _, tc := range []struct{ file, want string }{
		{truncated, truncated + ": the gzip stream is damaged after "},
		{empty, empty + " is empty (0 bytes)"},
		{cutDump, cutDump + `: no completion trailer "-- PostgreSQL database cluster dump complete" at the end: the dump was cut off`},
		{cutSQLite, fmt.Sprintf("%s: SQLite database is %d bytes but its header says", cutSQLite, len(raw)-4096)},
		{foreign, foreign + ": not a dump deploykit makes (pg_dumpall, pg_dump, mysqldump, mariadb-dump or a SQLite file)"},
		{altered, altered + " does not match " + altered + ".sha256: the file changed after it was written"},
	} {
		r := backup(t, nil, "--verify-only", tc.file, "--min-size", "0")
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, "::error::verify "+tc.file+": ", tc.file)
		assert.Contains(t, r.Log, tc.want, tc.file)
		assert.Contains(t, r.Summary, "### deploykit backup --verify-only: failed")
		assert.Equal(t, map[string]string{"status": "failed"}, r.Outputs, "status only")
	}
}

func gunzipBytes(t *testing.T, data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = out.ReadFrom(zr)
	require.NoError(t, err)
	return out.Bytes()
}

// TestBadInputs: every invalid input is refused with exit 2 and the exact
// message, before anything is created.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	db := filepath.Join(root, "app.db")
	require.NoError(t, os.WriteFile(db, nil, 0o600))
	dir := filepath.Join(root, "backups")
	// host-path through a symlink to dir is dir itself (the link is made after
	// dir would exist; dir must not exist for "nothing is created", so the link
	// points at where it would be).
	linkToDir := filepath.Join(root, "link-to-backups")
	require.NoError(t, os.Symlink(dir, linkToDir))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--engine", "oracle"}, `input engine: invalid value "oracle": want one of postgres, mysql, mariadb, sqlite`},
		{[]string{"--compression-level", "10", "--container", "db"}, `input compression-level: invalid value "10": want a whole number from 1 to 9`},
		{[]string{"--keep-daily", "-1", "--container", "db"}, `input keep-daily: invalid value "-1": want a whole number ≥ 0`},
		{[]string{"--restore-check=yes please", "--container", "db"}, `input restore-check: invalid value "yes please": want true or false`},
		{[]string{"--restore-check", "maybe", "--container", "db"}, `deploykit backup: unexpected argument "maybe": inputs are flags, --name value (see 'deploykit backup --help')`},
		{[]string{"--engine", "sqlite"}, "input sqlite-path is empty: engine sqlite backs up a database file"},
		{[]string{"--engine", "sqlite", "--sqlite-path", filepath.Join(root, "nope.db")}, "input sqlite-path: " + filepath.Join(root, "nope.db") + " is not a file"},
		{[]string{"--engine", "sqlite", "--sqlite-path", db, "--container", "db"}, "inputs container and database-url do not apply to engine sqlite: give sqlite-path only"},
		{[]string{"--sqlite-path", db}, "input sqlite-path applies to engine sqlite only, not postgres"},
		{[]string{}, "engine postgres needs exactly one of the inputs container (dump inside the database's container), swarm-service (the database's swarm service, on any node) and database-url (dump from the runner)"},
		{[]string{"--swarm-service", "shop_db", "--container", "db"}, "input swarm-service names the database server by its swarm service: give it without container or database-url"},
		{[]string{"--swarm-service", "shop_db", "--database-url", "postgres://u:hunter2@h/db"}, "input swarm-service names the database server by its swarm service: give it without container or database-url"},
		{[]string{"--engine", "sqlite", "--sqlite-path", db, "--swarm-service", "shop_db"}, "input swarm-service does not apply to engine sqlite: give sqlite-path only"},
		{[]string{"--container", "db", "--database-url", "postgres://u:pw@h/db"}, "engine postgres needs exactly one of the inputs container"},
		{[]string{"--database-url", "mysql://u:hunter2@h/db"}, "input database-url: want postgres://user:password@host:port/database"},
		{[]string{"--database-url", "postgres://u:hunter2@h/"}, "input database-url: want postgres://user:password@host:port/database"},
		{[]string{"--engine", "mariadb", "--database-url", "mysql://u:hunter2@h"}, "input database-url: the URL names no database: want mysql://user:password@host:port/database"},
		{[]string{"--engine", "mariadb", "--database-url", "mysql://u:hunter2@h/--result-file=x.sql"}, `input database-url: database name "--result-file=x.sql": want letters, digits, '_' and '$', not starting with '-'`},
		{[]string{"--database-url", "postgres://u@h/db?sslpassword=hunter2"}, "input database-url: the URL carries sslpassword, which would reach pg_dump's command line"},
		{[]string{"--database-url", "postgres://u:hunter2@h/db", "--db-user", "app"}, "inputs db-user and db-password apply to container; a database URL carries its own user and password"},
		{[]string{"--container", "db", "--prefix", "../etc/x"}, `input prefix: "../etc/x" is not a file name prefix: want letters, digits, '.', '_' and '-', starting with a letter or digit`},
		{[]string{"--container", "db", "--host-path", dir}, "input host-path: " + dir + " is dir itself; give another directory (another disk) or leave it empty"},
		{[]string{"--engine", "sqlite", "--sqlite-path", db, "--host-path", linkToDir}, "input host-path: " + linkToDir + " is dir itself; give another directory (another disk) or leave it empty"},
		{[]string{"--engine", "sqlite", "--sqlite-path", db, "--dir", dir + "\nevil=1"}, `input dir: "` + dir + `\nevil=1" contains a control character (a line break?): want a directory path`},
		{[]string{"--engine", "sqlite", "--sqlite-path", db, "--host-path", root + "/x\ny"}, `input host-path: "` + root + `/x\ny" contains a control character (a line break?): want a directory path`},
	} {
		args := append([]string{"--dir", dir}, tc.args...)
		r := backup(t, nil, args...)
		assert.Equal(t, 2, r.Code, "%v\n%s", tc.args, r.Log)
		assert.Contains(t, r.Log, "::error::"+tc.want, tc.args)
		assert.Equal(t, map[string]string{"status": "bad-input"}, r.Outputs, tc.args)
		assert.NotContains(t, r.Log, "hunter2", "a password never appears")
		assert.NoDirExists(t, dir, "nothing is created")
	}
}

// TestFailedBackupDeletesNothing: a backup below min-size fails with exit 1,
// leaves no file, and retention does not run.
func TestFailedBackupDeletesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, id := range []string{"2025-01-01T000000Z", "2025-02-01T000000Z", "2025-03-01T000000Z"} {
		name := filepath.Join(dir, "backup-"+id+".sqlite.gz")
		require.NoError(t, os.WriteFile(name, []byte("old"), 0o600))
		require.NoError(t, os.WriteFile(name+".sha256", []byte("old"), 0o600))
	}
	before := files(t, dir)
	src := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, sqliteDB(t, src, 10).Close())

	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "1000000", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Regexp(t, `::error::backup failed at verify: `+dir+`/\.backup-\S+\.sqlite\.gz\.partial-\d+ is \d+ bytes, below min-size 1000000: the dump is implausibly small`, r.Log)
	assert.Contains(t, r.Summary, "No backup file was kept and nothing was deleted.")
	assert.Contains(t, r.Summary, "| retention | skipped |  | an earlier step failed |")
	assert.Equal(t, before, files(t, dir))
	assert.Equal(t, map[string]string{"status": "failed"}, r.Outputs, "status only")
}

// TestDryRun prints the plan and the commands, and creates nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, sqliteDB(t, src, 10).Close())
	dir := filepath.Join(t.TempDir(), "backups")
	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--dry-run", "--restore-check", "--host-path", "/mnt/offsite")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "dry run: nothing is dumped, written or deleted")
	assert.Contains(t, r.Log, "would run: VACUUM INTO a scratch copy of "+src)
	assert.Regexp(t, `would write: `+dir+`/backup-\S+\.sqlite\.gz \(gzip level 1\)`, r.Log)
	assert.Contains(t, r.Log, "would copy it to /mnt/offsite")
	assert.Contains(t, r.Log, "would keep 7 daily, 4 weekly, 6 monthly backups of backup-* in "+dir)
	assert.NoDirExists(t, dir)

	r = backup(t, nil, "--engine", "mariadb", "--container", "shop-db-1", "--db-password", "dry-run-secret", "--dir", dir, "--dry-run")
	require.Equal(t, 0, r.Code, r.Log)
	assert.Contains(t, r.Log, "would run: docker exec -i shop-db-1 mariadb-dump -u root --single-transaction --routines --triggers --hex-blob --all-databases --events")
	assert.NotContains(t, r.Log, "dry-run-secret")
	assert.NoDirExists(t, dir)
}

// TestHostCopyFailureKeepsTheBackup: when the copy to host-path fails after the
// backup was published, the run fails (exit 1), says the verified backup was
// kept, and retention does not run.
func TestHostCopyFailureKeepsTheBackup(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, sqliteDB(t, src, 10).Close())
	dir := t.TempDir()
	notADir := filepath.Join(t.TempDir(), "offsite")
	require.NoError(t, os.WriteFile(notADir, []byte("a file"), 0o600))
	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", src, "--dir", dir, "--min-size", "0", "--host-path", notADir)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::backup failed at host-copy: mkdir "+notADir+": not a directory")
	names := files(t, dir)
	require.Len(t, names, 2, "the backup and its checksum stay")
	assert.Contains(t, r.Summary, "The verified backup "+filepath.Join(dir, names[0])+" was kept")
	assert.Contains(t, r.Summary, "| retention | skipped |  | an earlier step failed |")
	assert.Contains(t, r.Summary, "#### Restore this backup")
}
