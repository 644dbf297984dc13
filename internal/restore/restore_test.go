package restore_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/cli"
	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

type result struct {
	Code    int
	Log     string
	Outputs map[string]string
	Summary string
}

// deploykit runs `deploykit <sub> args…` as a runner would, in this process
// (cli.Main, as the binary's main calls it); a run a test signals or kills is
// a process of its own (deploykitCmd).
func deploykit(t *testing.T, sub string, args ...string) result {
	t.Helper()
	return deploykitEnv(t, nil, sub, args...)
}

// deploykitEnv is deploykit with more variables in the job's environment.
func deploykitEnv(t *testing.T, extra []string, sub string, args ...string) result {
	t.Helper()
	files := t.TempDir()
	environ, _, _ := testenv.Runner{Files: files}.Env(t, extra...)
	var log testenv.SyncBuffer
	code := cli.Main(append([]string{sub}, args...), environ, &log, &log)
	return collected(code, log.String(), files)
}

// deploykitProcess is deploykitEnv as a process of its own: for a run that
// is signalled, or whose PATH is the test's own (a command resolves on the
// process's PATH).
func deploykitProcess(t *testing.T, extra []string, sub string, args ...string) result {
	t.Helper()
	cmd, files := deploykitCmd(t, extra, sub, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	_ = cmd.Run()
	return collected(cmd.ProcessState.ExitCode(), log.String(), files)
}

// collected is a finished run's result: its exit code, its log without the
// masks, its outputs and summary from the files in files.
func collected(code int, log, files string) result {
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") { // a runner swallows these: the one place a secret may be
			kept = append(kept, line)
		}
	}
	r := result{Code: code, Log: strings.Join(kept, "\n")}
	data, _ := os.ReadFile(filepath.Join(files, "out"))
	r.Outputs = testapp.ParseOutputs(string(data))
	data, _ = os.ReadFile(filepath.Join(files, "sum"))
	r.Summary = string(data)
	return r
}

// deploykitCmd is deploykit sub as a runner starts it, not started: its
// outputs and summary go to files of the temp dir files.
func deploykitCmd(t *testing.T, extra []string, sub string, args ...string) (cmd *exec.Cmd, files string) {
	t.Helper()
	files = t.TempDir()
	cmd = exec.Command(testenv.Deploykit(t), append([]string{sub}, args...)...)
	cmd.Env, _, _ = testenv.Runner{Files: files}.Env(t, extra...)
	return cmd, files
}

func fileSum(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// rewrite writes a backup made of dump (gzipped) with a matching .sha256.
func rewrite(t *testing.T, path string, dump []byte) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(dump)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	sum := sha256.Sum256(b.Bytes())
	require.NoError(t, os.WriteFile(path+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(path)+"\n"), 0o600))
}

// failingBackup is dump with stmt, which fails, put just before its completion
// trailer: a backup that passes every check but fails half-way through its replay.
func failingBackup(t *testing.T, dump []byte, trailer, stmt, name string) string {
	t.Helper()
	i := bytes.LastIndex(dump, []byte(trailer))
	require.Positive(t, i)
	path := filepath.Join(t.TempDir(), name)
	rewrite(t, path, append(append(append([]byte{}, dump[:i]...), stmt...), dump[i:]...))
	return path
}

func gunzip(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = b.ReadFrom(zr)
	require.NoError(t, err)
	return b.Bytes()
}

// sqliteRows is every row of table notes, as text, in id order.
func sqliteRows(t *testing.T, path string) string {
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query("SELECT id, quote(body), quote(data), quote(n) FROM notes ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int
		var body, data, n string
		require.NoError(t, rows.Scan(&id, &body, &data, &n))
		fmt.Fprintf(&b, "%d|%s|%s|%s\n", id, body, data, n)
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// TestSQLiteRoundTrip: a backup restored over a changed database gives back
// every row as it was (NULLs, unicode, blobs, a large row); a safety backup of
// what was replaced is kept; the history has a restore line.
func TestSQLiteRoundTrip(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path, dir, hist := filepath.Join(root, "app.db"), filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, data BLOB, n INTEGER);
		INSERT INTO notes VALUES (1, 'plain', NULL, 1), (2, 'ünïcødé ✓ 日本', x'00ff10', NULL), (3, NULL, zeroblob(1048576), 3), (4, 'it''s "quoted"', x'', -4)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	want := sqliteRows(t, path)

	r := deploykit(t, "backup", "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--min-size", "0")
	require.Equal(t, 0, r.Code, r.Log)
	backupFile := r.Outputs["path"]

	db, err = sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM notes WHERE id = 2; UPDATE notes SET body = 'changed' WHERE id = 1; INSERT INTO notes VALUES (9, 'new', NULL, 9)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	changed := sqliteRows(t, path)
	require.NotEqual(t, want, changed)

	r = deploykit(t, "restore", "--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", "latest",
		"--dir", dir, "--prefix", "backup", "--history-file", hist)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, want, sqliteRows(t, path), "every row as it was backed up")
	assert.Equal(t, backupFile, r.Outputs["file"])
	assert.Equal(t, "success", r.Outputs["status"])
	safety := r.Outputs["safety-backup"]
	require.FileExists(t, safety)
	assert.Regexp(t, `/pre-restore-\d{4}-\d\d-\d\dT\d{6}Z\.sqlite\.gz$`, safety)
	assert.FileExists(t, safety+".sha256")
	assert.Contains(t, r.Summary, "### deploykit restore: success — "+filepath.Base(backupFile))
	assert.Contains(t, r.Summary, "| notes | 4 | 4 |")
	data, err := os.ReadFile(hist)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| production | restore | "+filepath.Base(backupFile)+" | success | sha256=")

	// The safety backup undoes the restore: the changed rows come back. (Backup
	// names have a one-second resolution: the next safety backup needs a new second.)
	time.Sleep(1100 * time.Millisecond)
	r = deploykit(t, "restore", "--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", safety,
		"--dir", dir, "--history-file", hist)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, changed, sqliteRows(t, path))
}

// TestRefusedBackupsTouchNothing: without RESTORE, or with a backup that is
// truncated, checksummed wrong, without a checksum or of another engine, the
// restore exits 2 and the database file is byte for byte as it was, with no
// safety backup made.
func TestRefusedBackupsTouchNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path, dir := filepath.Join(root, "app.db"), filepath.Join(root, "backups")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, data BLOB, n INTEGER); INSERT INTO notes VALUES (1, 'a', NULL, 1)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	r := deploykit(t, "backup", "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--min-size", "0")
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]
	dump := gunzip(t, good)

	bad := t.TempDir()
	truncated := filepath.Join(bad, "truncated.sqlite.gz")
	rewrite(t, truncated, dump[:len(dump)/2])
	wrongSum := filepath.Join(bad, "wrongsum.sqlite.gz")
	rewrite(t, wrongSum, dump)
	require.NoError(t, os.WriteFile(wrongSum+".sha256", []byte(strings.Repeat("0", 64)+"  wrongsum.sqlite.gz\n"), 0o600))
	noSum := filepath.Join(bad, "nosum.sqlite.gz")
	rewrite(t, noSum, dump)
	require.NoError(t, os.Remove(noSum+".sha256"))
	postgres := filepath.Join(bad, "postgres.sql.gz")
	rewrite(t, postgres, []byte("--\n-- PostgreSQL database cluster dump\n--\nSELECT 1;\n--\n-- PostgreSQL database cluster dump complete\n--\n"))

	before := fileSum(t, path)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no confirm", []string{"--file", good}, "input confirm is required (set --confirm or INPUT_CONFIRM): type RESTORE, in capitals, to confirm the restore"},
		{"wrong confirm", []string{"--confirm", "restore", "--file", good}, `input confirm: "restore" is not RESTORE: type RESTORE, in capitals, to confirm the restore`},
		{"no file", []string{"--confirm", "RESTORE", "--file", filepath.Join(bad, "nope.sqlite.gz")}, "input file: " + filepath.Join(bad, "nope.sqlite.gz") + " does not exist"},
		{"truncated", []string{"--confirm", "RESTORE", "--file", truncated}, "the backup cannot be restored: " + truncated + ": "},
		{"wrong checksum", []string{"--confirm", "RESTORE", "--file", wrongSum}, "does not match " + wrongSum + ".sha256"},
		{"no checksum", []string{"--confirm", "RESTORE", "--file", noSum}, noSum + ".sha256 is missing: a backup is restored only with the checksum written beside it"},
		{"another engine", []string{"--confirm", "RESTORE", "--file", postgres}, postgres + " is a pg_dumpall dump, not the sqlite dump SQLite database " + path + " (VACUUM INTO) needs"},
		{"sqlite-path for another engine", []string{"--confirm", "RESTORE", "--file", good, "--engine", "mysql"}, "input sqlite-path applies to engine sqlite only, not mysql"},
		{"services without a project", []string{"--confirm", "RESTORE", "--file", good, "--stop-services", "web"}, "input stop-services: set project-name too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--history-file", filepath.Join(root, "history.log")}, tc.args...)
			r := deploykit(t, "restore", args...)
			assert.Equal(t, 2, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::")
			assert.Contains(t, r.Log, tc.want)
			assert.Equal(t, "bad-input", r.Outputs["status"])
			assert.Equal(t, before, fileSum(t, path), "the database is untouched")
			left, _ := filepath.Glob(filepath.Join(dir, "pre-restore-*"))
			assert.Empty(t, left, "no safety backup: nothing was about to change")
			assert.NoFileExists(t, filepath.Join(root, "history.log"))
		})
	}
}

// pgContainer starts a PostgreSQL server container.
func pgContainer(t *testing.T, name string) func(db, sql string) string {
	t.Helper()
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", "org.deploykit.test=restore",
		"-e", "POSTGRES_PASSWORD=pw-"+name, testenv.PostgresImage(t)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	testapp.WaitFor(t, name+" to take connections", func() bool {
		return exec.Command("docker", "exec", "-e", "PGPASSWORD=pw-"+name, name, "psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "SELECT 1").Run() == nil
	})
	return func(db, sql string) string {
		t.Helper()
		out, err := exec.Command("docker", "exec", name, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", db, "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
}

// startedAt is when a container last started.
func startedAt(t *testing.T, name string) string {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.StartedAt}} {{.State.Running}}", name).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.TrimSpace(string(out))
}

// TestPostgresClusterRoundTrip: a pg_dumpall backup restored into the live
// container brings every row back (row by row), the role and nothing the backup
// did not have; the app's service is stopped and started around it. A refused
// backup stops nothing; a restore that fails half-way puts the database back from
// the safety backup, row for row.
func TestPostgresClusterRoundTrip(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-restore-pg-%d", os.Getpid())
	q := pgContainer(t, name)
	q("postgres", "CREATE DATABASE app")
	q("postgres", "CREATE ROLE reader LOGIN PASSWORD 'r3ader'")
	q("app", `CREATE TABLE notes (id int PRIMARY KEY, body text, data bytea, n int);
		INSERT INTO notes VALUES (1, 'plain', NULL, 1), (2, E'ünïcødé ✓ 日本 it''s\ttab', '\x00ff10', NULL), (3, NULL, decode(repeat('ab', 524288), 'hex'), 3);
		GRANT SELECT ON notes TO reader`)
	rows := func() string {
		return q("app", "SELECT id, coalesce(body, '<null>'), coalesce(md5(data), '<null>'), coalesce(n::text, '<null>') FROM notes ORDER BY id")
	}
	want := rows()

	// The app's service: a container of the compose project, stopped around the restore.
	project := "dk-restore-" + fmt.Sprint(os.Getpid())
	web := project + "-web-1"
	out, err := exec.Command("docker", "run", "-d", "--name", web, "--label", "com.docker.compose.project="+project,
		"--label", "com.docker.compose.service=web", "--entrypoint", "sleep", testenv.PostgresImage(t), "600").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", web).Run() })

	// And a worker that crash-loops (a release that fails on the data): it is
	// restarting, not running, and must be stopped all the same, or its restart
	// policy starts it in the middle of the restore.
	worker := project + "-worker-1"
	out, err = exec.Command("docker", "run", "-d", "--name", worker, "--restart", "always", "--label", "com.docker.compose.project="+project,
		"--label", "com.docker.compose.service=worker", "--entrypoint", "false", testenv.PostgresImage(t)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", worker).Run() })
	testapp.WaitFor(t, worker+" to crash-loop", func() bool {
		out, _ := exec.Command("docker", "inspect", "-f", "{{.State.Status}}", worker).Output()
		return strings.TrimSpace(string(out)) == "restarting"
	})

	root := t.TempDir()
	dir, hist := filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	r := deploykit(t, "backup", "--container", name, "--dir", dir, "--prefix", "app")
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]

	q("app", "DELETE FROM notes WHERE id = 2; UPDATE notes SET body = 'changed' WHERE id = 1; CREATE TABLE extra (x int)")
	q("postgres", "CREATE DATABASE stray")
	changed := rows()
	restore := func(file string) result {
		return deploykit(t, "restore", "--confirm", "RESTORE", "--container", name, "--file", file, "--dir", dir,
			"--project-name", project, "--stop-services", "web\nworker", "--history-file", hist)
	}

	// A truncated backup is refused: nothing stops, nothing changes.
	truncated := filepath.Join(t.TempDir(), "app-truncated.sql.gz")
	dump := gunzip(t, good)
	rewrite(t, truncated, dump[:len(dump)*2/3])
	webBefore := startedAt(t, web)
	r = restore(truncated)
	assert.Equal(t, 2, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::the backup cannot be restored: "+truncated)
	assert.Equal(t, webBefore, startedAt(t, web), "the service was not stopped")
	assert.Equal(t, changed, rows())

	// The restore.
	r = restore(good)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, want, rows(), "every row as it was backed up")
	assert.Equal(t, "", q("postgres", "SELECT datname FROM pg_database WHERE datname IN ('stray')"), "what the backup did not have is gone")
	assert.Equal(t, "0", q("app", "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'"))
	assert.Equal(t, "t", q("app", "SELECT has_table_privilege('reader', 'notes', 'SELECT')"), "the role and its grant came back")
	after := startedAt(t, web)
	assert.NotEqual(t, webBefore, after, "the service was stopped and started")
	assert.True(t, strings.HasSuffix(after, " true"), "the service runs again: %s", after)
	assert.Contains(t, r.Summary, "1. safety backup "+dir+"/pre-restore-")
	assert.Contains(t, r.Summary, "2. stopped "+web+", "+worker, "the crash-looping worker too")
	assert.Contains(t, r.Summary, "| app/public.notes | 2 | 3 |")
	safety := r.Outputs["safety-backup"]
	require.FileExists(t, safety)

	// A backup that passes every check but fails half-way through its replay:
	// the database is put back from the safety backup, row for row.
	q("app", "UPDATE notes SET n = 42 WHERE id = 3")
	before := rows()
	failing := failingBackup(t, dump, "-- PostgreSQL database cluster dump complete", "SELECT no_such_function_anywhere();\n\n--\n", "app-failing.sql.gz")
	r = restore(failing)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "the database was put back from the safety backup "+dir+"/pre-restore-")
	assert.Equal(t, before, rows(), "the data from before the failed restore, row for row")
	assert.True(t, strings.HasSuffix(startedAt(t, web), " true"), "the service runs again")
	data, err := os.ReadFile(hist)
	require.NoError(t, err)
	assert.Contains(t, string(data), "| restore | "+filepath.Base(failing)+" | failed | ")
}

// TestPostgresDatabaseByURL: a pg_dump backup of one database restored by URL:
// loaded into a new database that takes the live one's name only when complete.
// A backup that fails half-way leaves the live database untouched and no
// half-loaded database behind.
func TestPostgresDatabaseByURL(t *testing.T) {
	t.Parallel()
	server := testenv.Postgres(t)
	url := strings.Replace(server, "/postgres?", "/shop?", 1)
	q := func(db, sql string) string {
		t.Helper()
		out, err := exec.Command("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "--dbname="+strings.Replace(server, "/postgres?", "/"+db+"?", 1), "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
	q("postgres", "CREATE DATABASE shop")
	q("shop", `CREATE TABLE notes (id int PRIMARY KEY, body text, data bytea, n int);
		INSERT INTO notes VALUES (1, 'plain', NULL, 1), (2, E'ünïcødé ✓ it''s', '\x00ff', NULL), (3, repeat('x', 1048576), decode('00', 'hex'), 3)`)
	rows := func() string {
		return q("shop", "SELECT id, md5(coalesce(body, '<null>')), coalesce(md5(data), '<null>'), coalesce(n::text, '<null>') FROM notes ORDER BY id")
	}
	want := rows()
	root := t.TempDir()
	dir, hist := filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	r := deploykit(t, "backup", "--database-url", url, "--dir", dir, "--prefix", "shop")
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]

	q("shop", "DELETE FROM notes WHERE id = 2; CREATE TABLE extra (x int)")
	// A session someone left open on the live database does not stop the swap:
	// it is ended.
	sleeper := exec.Command("psql", "-X", "--dbname="+url, "-c", "SELECT pg_sleep(300)")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	testapp.WaitFor(t, "the open session", func() bool {
		return q("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND query LIKE '%pg_sleep%'") == "1"
	})
	r = deploykit(t, "restore", "--confirm", "RESTORE", "--database-url", url, "--file", good, "--dir", dir, "--history-file", hist)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Error(t, sleeper.Wait(), "the open session was ended")
	assert.Equal(t, want, rows(), "every row as it was backed up")
	assert.Equal(t, "0", q("shop", "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'"))
	assert.Equal(t, "", q("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'deploykit_%'"), "no database left beside it")

	// A backup that fails half-way: the live database stays as it is.
	q("shop", "UPDATE notes SET n = 7 WHERE id = 1")
	before := rows()
	failing := failingBackup(t, gunzip(t, good), "-- PostgreSQL database dump complete", "SELECT no_such_function_anywhere();\n\n--\n", "shop-failing.sql.gz")
	time.Sleep(1100 * time.Millisecond) // a new second for the next safety backup's name
	r = deploykit(t, "restore", "--confirm", "RESTORE", "--database-url", url, "--file", failing, "--dir", dir, "--history-file", hist)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "; database shop is as it was: the restored copy did not take its name (checked in pg_database)")
	assert.Contains(t, r.Summary, "| live database | database shop is as it was: the restored copy did not take its name (checked in pg_database) |")
	assert.Equal(t, before, rows())
	assert.Equal(t, "", q("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'deploykit_%'"), "the half-loaded database was dropped")
}

// TestMariaDBServerRoundTrip: a mariadb-dump --all-databases backup restored
// into the live container brings every row back, row by row, and removes the
// databases it did not have; one that fails half-way through its replay is
// followed by the safety backup, so the data of before is back.
func TestMariaDBServerRoundTrip(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-restore-maria-%d", os.Getpid())
	const pw = "root-pw-0123456789"
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", "org.deploykit.test=restore",
		"-e", "MARIADB_ROOT_PASSWORD="+pw, testenv.MariaDBImage(t)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	testapp.WaitFor(t, name+" to take connections", func() bool {
		return exec.Command("docker", "exec", "-e", "MYSQL_PWD="+pw, name, "mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-e", "SELECT 1").Run() == nil
	})
	q := func(db, sql string) string {
		t.Helper()
		argv := []string{"exec", "-e", "MYSQL_PWD=" + pw, name, "mariadb", "-u", "root", "-N", "-B", "-e", sql}
		if db != "" {
			argv = append(argv, db)
		}
		out, err := exec.Command("docker", argv...).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
	q("", "CREATE DATABASE shop")
	q("shop", `CREATE TABLE notes (id int PRIMARY KEY, body longtext, data longblob, n int) DEFAULT CHARSET utf8mb4;
		INSERT INTO notes VALUES (1, 'plain', NULL, 1), (2, 'ünïcødé ✓ it''s', 0x00ff10, NULL), (3, REPEAT('x', 1048576), UNHEX('00'), 3)`)
	rows := func() string {
		return q("shop", "SELECT id, MD5(COALESCE(body, '<null>')), COALESCE(MD5(data), '<null>'), COALESCE(n, '<null>') FROM notes ORDER BY id")
	}
	want := rows()
	root := t.TempDir()
	dir, hist := filepath.Join(root, "backups"), filepath.Join(root, "history.log")
	engine := []string{"--engine", "mariadb", "--container", name, "--db-password", pw}
	r := deploykit(t, "backup", append(engine, "--dir", dir, "--prefix", "shop")...)
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]

	q("shop", "DELETE FROM notes WHERE id = 2; CREATE TABLE extra (x int)")
	q("", "CREATE DATABASE stray")
	r = deploykit(t, "restore", append(engine, "--confirm", "RESTORE", "--file", good, "--dir", dir, "--history-file", hist)...)
	require.Equal(t, 0, r.Code, r.Log)
	assert.Equal(t, want, rows(), "every row as it was backed up")
	assert.Equal(t, "", q("", "SHOW DATABASES LIKE 'stray'"), "what the backup did not have is gone")
	assert.Equal(t, "", q("shop", "SHOW TABLES LIKE 'extra'"))
	assert.NotContains(t, r.Log+r.Summary, pw)

	q("shop", "UPDATE notes SET n = 42 WHERE id = 3")
	before := rows()
	failing := failingBackup(t, gunzip(t, good), "-- Dump completed", "SELECT no_such_function_anywhere();\n", "shop-failing.sql.gz")
	time.Sleep(1100 * time.Millisecond) // a new second for the next safety backup's name
	r = deploykit(t, "restore", append(engine, "--confirm", "RESTORE", "--file", failing, "--dir", dir, "--history-file", hist)...)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "the database was put back from the safety backup "+dir+"/pre-restore-")
	assert.Equal(t, before, rows(), "the data from before the failed restore, row for row")
}

// TestDrillAndServiceInputsAreCheckedFirst: a drill or restore whose inputs
// cannot work is refused with what to fix, before anything is touched.
func TestDrillAndServiceInputsAreCheckedFirst(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	root := t.TempDir()
	path, dir := filepath.Join(root, "app.db"), filepath.Join(root, "backups")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY); INSERT INTO notes VALUES (1)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	r := deploykit(t, "backup", "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--min-size", "0")
	require.Equal(t, 0, r.Code, r.Log)
	good := r.Outputs["path"]
	composeFile := filepath.Join(root, "compose.yaml")
	require.NoError(t, os.WriteFile(composeFile, []byte("services:\n  web:\n    image: scratch-app:1\n  db:\n    image: scratch-db:1\n    container_name: fixed-db\n"), 0o644))
	before := fileSum(t, path)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"drill of a SQLite file", []string{"--drill", "--engine", "sqlite", "--sqlite-path", path, "--file", good},
			"input drill: a drill restores into the stack's database service; engine sqlite has none"},
		{"drill without app-port", []string{"--drill", "--file", good, "--health-url", "http://127.0.0.1:8080/health"},
			"input app-port: set it for the drill's health check (the copy of the stack publishes no port)"},
		{"drill without a compose file", []string{"--drill", "--file", good, "--compose-file", filepath.Join(root, "nope.yaml")},
			"input compose-file: " + filepath.Join(root, "nope.yaml") + " does not exist"},
		{"drill of a fixed container name", []string{"--drill", "--file", good, "--compose-file", composeFile},
			"service db has container_name fixed-db: a copy of the stack cannot run beside it"},
		{"drill of a service that is not there", []string{"--drill", "--file", good, "--compose-file", composeFile, "--db-service", "postgres"},
			"service postgres is not in " + composeFile + " (services: db, web)"},
		{"restore with smoke checks but no base URL", []string{"--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", good,
			"--smoke-checks", "/health=200"}, "input smoke-checks: set smoke-base-url too (the checks' paths are relative to it)"},
		{"restore whose health delays are backwards", []string{"--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", good,
			"--health-initial-delay", "10s", "--health-max-delay", "1s"}, "input health-max-delay (1s) is shorter than health-initial-delay (10s)"},
		{"restore stopping a service that is not there", []string{"--confirm", "RESTORE", "--engine", "sqlite", "--sqlite-path", path, "--file", good,
			"--project-name", "dk-restore-none", "--stop-services", "web"}, "input stop-services: service web has no container in project dk-restore-none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := deploykit(t, "restore", append([]string{"--dir", dir, "--history-file", filepath.Join(root, "history.log")}, tc.args...)...)
			assert.Equal(t, 2, r.Code, r.Log)
			assert.Contains(t, r.Log, "::error::"+tc.want)
			assert.Equal(t, "bad-input", r.Outputs["status"])
			assert.Equal(t, before, fileSum(t, path))
			assert.NoFileExists(t, filepath.Join(root, "history.log"))
			left, _ := filepath.Glob(filepath.Join(dir, "pre-restore-*"))
			assert.Empty(t, left)
		})
	}
}
