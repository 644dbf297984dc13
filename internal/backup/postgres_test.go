package backup_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// dockerRun starts a database container named name from image and removes it
// (with its volumes) when the test ends.
func dockerRun(t testing.TB, name, image string, args ...string) {
	t.Helper()
	argv := append([]string{"run", "-d", "--name", name, "--label", "org.deploykit.test=backup"}, args...)
	out, err := exec.Command("docker", append(argv, image)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
}

// pgContainer starts a Postgres server container and waits until it takes TCP
// connections (its first-start server only listens on the socket).
func pgContainer(t testing.TB, name string) {
	t.Helper()
	dockerRun(t, name, testenv.PostgresImage(t), "-e", "POSTGRES_PASSWORD=pgsecret-"+name)
	testapp.WaitFor(t, name+" to take connections", func() bool {
		return exec.Command("docker", "exec", "-e", "PGPASSWORD=pgsecret-"+name, name, "psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "SELECT 1").Run() == nil
	})
}

// containerSQL runs SQL with psql in a Postgres container.
func containerSQL(t testing.TB, name string) func(db, sql string) string {
	return func(db, sql string) string {
		t.Helper()
		out, err := exec.Command("docker", "exec", name, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", db, "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
}

// urlSQL runs SQL with psql against a server URL (…/postgres).
func urlSQL(t *testing.T, serverURL string) func(db, sql string) string {
	return func(db, sql string) string {
		t.Helper()
		u := strings.Replace(serverURL, "/postgres?", "/"+db+"?", 1)
		out, err := exec.Command("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "--dbname="+u, "-c", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
}

// seedPostgres creates database shop with two tables and a table in postgres.
func seedPostgres(q func(db, sql string) string, withShop bool) {
	if withShop {
		q("postgres", "CREATE DATABASE shop")
	}
	db := "postgres"
	if withShop {
		db = "shop"
	}
	q(db, `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, joined timestamptz NOT NULL);
		INSERT INTO customers SELECT g, 'customer ' || g, '2026-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 3000) g;
		CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, total numeric(10,2), note text);
		INSERT INTO orders (customer, total, note) SELECT 1 + g % 3000, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE E'it''s\tline\n' || g END FROM generate_series(1, 20000) g`)
	q("postgres", `CREATE TABLE settings (key text PRIMARY KEY, value jsonb); INSERT INTO settings VALUES ('a', '{"x": 1}'), ('b', '[1,2,3]')`)
}

// pgFingerprint is every table's row count and a checksum of its contents.
func pgFingerprint(q func(db, sql string) string, dbs ...string) string {
	var b strings.Builder
	for _, db := range dbs {
		tables := q(db, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
		for _, table := range strings.Fields(tables) {
			fmt.Fprintf(&b, "%s/%s %s\n", db, table, q(db, "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM "+table+" t"))
		}
	}
	return b.String()
}

// TestPostgresContainerRoundTrip: pg_dumpall inside the container, restore-check
// into a scratch container; then the container is replaced by an empty one and
// the summary's restore command brings every row back.
func TestPostgresContainerRoundTrip(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-backup-pg-%d", os.Getpid())
	pgContainer(t, name)
	q := containerSQL(t, name)
	seedPostgres(q, true)
	want := pgFingerprint(q, "postgres", "shop")
	require.Contains(t, want, "shop/public.orders 20000 ")

	dir := t.TempDir()
	host := filepath.Join(t.TempDir(), "offsite")
	r := backup(t, []string{"GITHUB_RUN_ID=" + runID(t)}, "--container", name, "--dir", dir, "--prefix", "shop", "--restore-check", "--host-path", host, "--compression-level", "9")
	file := checkPublished(t, r, dir, "shop", "sql")
	assert.Contains(t, r.Summary, "| Source | PostgreSQL cluster in container "+name+" (pg_dumpall as postgres) |")
	assert.Contains(t, r.Summary, "| Restore check | restored into a scratch container of "+testenv.PostgresImageTag+": row counts of 3 tables (23002 rows) equal the source |")
	assert.Contains(t, r.Summary, "| Host copy | "+filepath.Join(host, filepath.Base(file))+" |")
	assert.Contains(t, r.Summary, "(gzip level 9)")
	assert.Equal(t, []string{filepath.Base(file), filepath.Base(file) + ".sha256"}, files(t, host))
	assert.Empty(t, scratchContainers(t), "the scratch container is gone")

	// Disaster: the data is gone. A fresh server under the same name, then
	// exactly the printed command.
	line := restoreCommand(t, r.Summary)
	assert.Equal(t, "gunzip -c "+file+" | docker exec -i "+name+" psql -X -U postgres -d postgres", line)
	require.NoError(t, exec.Command("docker", "rm", "-f", "-v", name).Run())
	pgContainer(t, name)
	shell(t, line)
	assert.Equal(t, want, pgFingerprint(q, "postgres", "shop"))
}

// runID is a job run id of this test's own: restore-check containers carry it,
// so that a test counts only its own (tests run in parallel on one engine).
func runID(t *testing.T) string {
	return fmt.Sprintf("backup-%s-%d", strings.ToLower(t.Name()), os.Getpid())
}

// scratchContainers lists the restore-check containers of this test's runs.
func scratchContainers(t *testing.T) string {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=org.deploykit.role=backup-restore-check",
		"--filter", "label=org.deploykit.run-id="+runID(t)).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// TestPostgresURLRoundTrip: pg_dump of a database URL on a Postgres server on
// the host, restore-check into a scratch database on that server, then the
// printed command into an empty database.
func TestPostgresURLRoundTrip(t *testing.T) {
	t.Parallel()
	serverURL := testenv.Postgres(t)
	q := urlSQL(t, serverURL)
	seedPostgres(q, true)
	want := pgFingerprint(q, "shop")
	shopURL := strings.Replace(serverURL, "/postgres?", "/shop?", 1)

	dir := t.TempDir()
	r := backup(t, nil, "--database-url", shopURL, "--dir", dir, "--restore-check")
	file := checkPublished(t, r, dir, "backup", "sql")
	assert.Regexp(t, `\| Restore check \| restored into scratch database deploykit_check_[0-9a-f]{12}_[0-9a-f]{8} on the same server \(dropped after\): row counts of 2 tables \(23000 rows\) equal the source \|`, r.Summary)
	assert.Equal(t, "shop", q("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'"), "the scratch database is dropped")

	line := restoreCommand(t, r.Summary)
	assert.Equal(t, "gunzip -c "+file+` | psql -X -v ON_ERROR_STOP=1 --dbname "$DATABASE_URL"`, line)
	q("postgres", "CREATE DATABASE shop_restored")
	shell(t, line, "DATABASE_URL="+strings.Replace(serverURL, "/postgres?", "/shop_restored?", 1))
	got := pgFingerprint(q, "shop_restored")
	assert.Equal(t, want, strings.ReplaceAll(got, "shop_restored/", "shop/"))
}

// bigPostgres is a container with a dump of about 100 MB: long enough to kill
// things in the middle of it.
func bigPostgres(t *testing.T, name string) {
	pgContainer(t, name)
	containerSQL(t, name)("postgres", "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS payload FROM generate_series(1, 400000) g")
}

// waitDumping waits until a backup's temp file in dir has data.
func waitDumping(t *testing.T, dir string) string {
	var partial string
	testapp.WaitFor(t, "the dump to stream into its temp file", func() bool {
		matches, _ := filepath.Glob(filepath.Join(dir, ".backup-*.sql.gz.partial-*"))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Size() > 0 {
				partial = m
				return true
			}
		}
		return false
	})
	return partial
}

// TestPostgresFailures: each way a dump can fail ends with exit 1, a message
// that says what failed, and no file left behind.
func TestPostgresFailures(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-backup-pgfail-%d", os.Getpid())
	bigPostgres(t, name)

	t.Run("wrong user", func(t *testing.T) {
		dir := t.TempDir()
		r := backup(t, nil, "--container", name, "--dir", dir, "--db-user", "nobody")
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, `::error::backup failed at dump: pg_dumpall exited with status 1 in container `+name+`: pg_dumpall: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  role "nobody" does not exist`)
		noBackupFiles(t, dir)
	})

	t.Run("disk full", func(t *testing.T) {
		testenv.RequireRoot(t, "mount a small tmpfs")
		dir := t.TempDir()
		require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"))
		defer syscall.Unmount(dir, syscall.MNT_DETACH)
		r := backup(t, nil, "--container", name, "--dir", dir)
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, "::error::backup failed at dump: the file system of "+dir+" is full: ")
		assert.Contains(t, r.Log, "no space left on device")
		noBackupFiles(t, dir)
	})

	t.Run("deploykit killed, next run cleans up", func(t *testing.T) {
		dir := t.TempDir()
		cmd, _, _ := command(t, nil, "--container", name, "--dir", dir)
		require.NoError(t, cmd.Start())
		partial := waitDumping(t, dir)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		assert.Equal(t, []string{filepath.Base(partial)}, files(t, dir), "only the temp file; nothing has the final name")
		assert.True(t, strings.HasSuffix(partial, fmt.Sprintf(".partial-%d", cmd.Process.Pid)))

		r := backup(t, nil, "--container", name, "--dir", dir)
		file := checkPublished(t, r, dir, "backup", "sql")
		assert.Contains(t, r.Log, "removed what backups that did not finish left: "+filepath.Base(partial))
		assert.Equal(t, []string{filepath.Base(file), filepath.Base(file) + ".sha256"}, files(t, dir))
	})

	t.Run("server killed mid-dump", func(t *testing.T) {
		dir := t.TempDir()
		cmd, _, _ := command(t, nil, "--container", name, "--dir", dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		waitDumping(t, dir)
		require.NoError(t, exec.Command("docker", "kill", name).Run())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("deploykit did not notice the server died:\n%s", out.String())
		}
		assert.Equal(t, 1, cmd.ProcessState.ExitCode(), out.String())
		assert.Contains(t, out.String(), "::error::backup failed at dump: pg_dumpall was killed (status 137, signal 9) in container "+name+": did the container stop or run out of memory?")
		noBackupFiles(t, dir)
	})

	t.Run("container not running", func(t *testing.T) {
		dir := t.TempDir()
		r := backup(t, nil, "--container", name, "--dir", dir)
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, `::error::backup failed at dump: container "`+name+`" is exited: container is not running`)
		noBackupFiles(t, dir)
		r = backup(t, nil, "--container", name+"-nope", "--dir", dir)
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, `::error::backup failed at dump: container "`+name+`-nope" does not exist`)
		// Found before the backup directory is made.
		fresh := filepath.Join(t.TempDir(), "backups")
		r = backup(t, nil, "--container", name+"-nope", "--dir", fresh)
		assert.Equal(t, 1, r.Code, r.Log)
		assert.Contains(t, r.Log, `::error::backup failed at dump: container "`+name+`-nope" does not exist`)
		assert.NoDirExists(t, fresh)
	})
}
