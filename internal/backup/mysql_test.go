package backup_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/deploy-kit/internal/testenv"
	"github.com/org/deploy-kit/internal/testenv/testapp"
)

const mariadbRootPassword = "root-pw-for-backup-tests"

// mariadbContainer starts a MariaDB server with database shop, published on a
// loopback port, and returns that port.
func mariadbContainer(t *testing.T, name string) string {
	t.Helper()
	dockerRun(t, name, testenv.MariaDBImage(t), "-p", "127.0.0.1::3306",
		"-e", "MARIADB_ROOT_PASSWORD="+mariadbRootPassword, "-e", "MARIADB_DATABASE=shop")
	testapp.WaitFor(t, name+" to take connections", func() bool {
		return exec.Command("docker", "exec", "-e", "MYSQL_PWD="+mariadbRootPassword, name, "mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-e", "SELECT 1").Run() == nil
	})
	out, err := exec.Command("docker", "port", name, "3306/tcp").Output()
	require.NoError(t, err)
	_, port, _ := strings.Cut(strings.TrimSpace(strings.Split(string(out), "\n")[0]), ":")
	return port
}

// mariadbSQL runs SQL with the mariadb client in the container, as root.
func mariadbSQL(t *testing.T, name string) func(db, sql string) string {
	return func(db, sql string) string {
		t.Helper()
		out, err := exec.Command("docker", "exec", "-e", "MYSQL_PWD="+mariadbRootPassword, name, "mariadb", "-u", "root", "-N", "-B", db, "-e", sql).CombinedOutput()
		require.NoError(t, err, "%s\n%s", sql, out)
		return strings.TrimSpace(string(out))
	}
}

func seedMariaDB(q func(db, sql string) string) {
	q("shop", `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, joined DATETIME NOT NULL);
		INSERT INTO customers SELECT seq, CONCAT('customer ', seq), '2026-01-01' + INTERVAL seq HOUR FROM seq_1_to_3000;
		CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer INT, total DECIMAL(10,2), note TEXT, data BLOB, FOREIGN KEY (customer) REFERENCES customers(id));
		INSERT INTO orders (customer, total, note, data) SELECT 1 + seq % 3000, seq * 1.25, IF(seq % 7 = 0, NULL, CONCAT('it''s\tline\n', seq)), UNHEX(MD5(seq)) FROM seq_1_to_20000;`)
}

// mariadbFingerprint is every table's row count and a checksum of its contents.
func mariadbFingerprint(q func(db, sql string) string, db string) string {
	var b strings.Builder
	for _, table := range strings.Fields(q(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1")) {
		fmt.Fprintf(&b, "%s %s\n", table, q(db, "CHECKSUM TABLE "+table+" EXTENDED"))
		fmt.Fprintf(&b, "%s %s\n", table, q(db, "SELECT COUNT(*) FROM "+table))
	}
	return strings.ReplaceAll(b.String(), db+".", "")
}

// TestMariaDBContainerRoundTrip: mariadb-dump --all-databases inside the
// container with the root password through the exec's environment,
// restore-check into a scratch container, then the printed command into a
// fresh server.
func TestMariaDBContainerRoundTrip(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-backup-mariadb-%d", os.Getpid())
	mariadbContainer(t, name)
	q := mariadbSQL(t, name)
	seedMariaDB(q)
	want := mariadbFingerprint(q, "shop")
	require.Contains(t, want, "orders 20000")

	dir := t.TempDir()
	r := backup(t, []string{"GITHUB_RUN_ID=" + runID(t)}, "--engine", "mariadb", "--container", name, "--db-password", mariadbRootPassword, "--dir", dir, "--restore-check")
	file := checkPublished(t, r, dir, "backup", "sql")
	assert.NotContains(t, r.Log+r.Summary, mariadbRootPassword)
	assert.Contains(t, r.Summary, "| Source | mariadb server in container "+name+" (mariadb-dump --all-databases as root) |")
	assert.Contains(t, r.Summary, "| Restore check | restored into a scratch container of "+testenv.MariaDBImageTag+": row counts of 2 tables (23000 rows) equal the source |")
	assert.Empty(t, scratchContainers(t))

	line := restoreCommand(t, r.Summary)
	assert.Equal(t, "gunzip -c "+file+" | docker exec -i -e MYSQL_PWD "+name+" mariadb -u root", line)
	require.NoError(t, exec.Command("docker", "rm", "-f", "-v", name).Run())
	mariadbContainer(t, name)
	q("shop", "SELECT 1") // the fresh server has an empty shop
	shell(t, line, "MYSQL_PWD="+mariadbRootPassword)
	assert.Equal(t, want, mariadbFingerprint(q, "shop"))

	// The wrong password fails inside docker exec, and nothing is kept.
	bad := t.TempDir()
	r = backup(t, nil, "--engine", "mariadb", "--container", name, "--db-password", "wrong-password", "--dir", bad)
	assert.Equal(t, 1, r.Code, r.Log)
	assert.Contains(t, r.Log, "::error::backup failed at dump: mariadb-dump exited with status 2 in container "+name+": mariadb-dump: Got error: 1045: \"Access denied for user 'root'@'localhost' (using password: YES)\"")
	noBackupFiles(t, bad)
}

// TestMariaDBURLRoundTrip: mariadb-dump from the runner against a URL,
// restore-check into a scratch database on the same server, then the printed
// command into an empty database.
func TestMariaDBURLRoundTrip(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "mariadb-dump")
	name := fmt.Sprintf("dk-backup-mariadb-url-%d", os.Getpid())
	port := mariadbContainer(t, name)
	q := mariadbSQL(t, name)
	seedMariaDB(q)
	want := mariadbFingerprint(q, "shop")

	dir := t.TempDir()
	dbURL := fmt.Sprintf("mysql://root:%s@127.0.0.1:%s/shop", mariadbRootPassword, port)
	r := backup(t, nil, "--engine", "mariadb", "--database-url", dbURL, "--dir", dir, "--restore-check")
	file := checkPublished(t, r, dir, "backup", "sql")
	assert.NotContains(t, r.Log+r.Summary, mariadbRootPassword)
	assert.Regexp(t, `\| Restore check \| restored into scratch database deploykit_restore_[0-9a-f]{12} on the same server \(dropped after\): row counts of 2 tables \(23000 rows\) equal the source \|`, r.Summary)
	assert.NotContains(t, q("", "SHOW DATABASES"), "deploykit_restore_")

	line := restoreCommand(t, r.Summary)
	assert.Equal(t, "gunzip -c "+file+" | mariadb --protocol=TCP -h 127.0.0.1 -P "+port+" -u root shop", line)
	q("", "DROP DATABASE shop; CREATE DATABASE shop")
	shell(t, line, "MYSQL_PWD="+mariadbRootPassword)
	assert.Equal(t, want, mariadbFingerprint(q, "shop"))
}

// TestMySQLToolsAgainstMariaDB: engine mysql runs mysqldump and mysql, the names
// MySQL's images have; MariaDB ships them too, which is the server available here.
// The dump says "-- MariaDB dump" and the trailer check holds for both.
func TestMySQLToolsAgainstMariaDB(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("dk-backup-mysql-%d", os.Getpid())
	mariadbContainer(t, name)
	seedMariaDB(mariadbSQL(t, name))
	dir := t.TempDir()
	r := backup(t, []string{"GITHUB_RUN_ID=" + runID(t)}, "--engine", "mysql", "--container", name, "--db-password", mariadbRootPassword, "--dir", dir, "--restore-check")
	file := checkPublished(t, r, dir, "backup", "sql")
	assert.Contains(t, r.Log, "docker exec -i "+name+" mysqldump -u root --single-transaction")
	assert.Contains(t, r.Summary, "| Restore check | restored into a scratch container of "+testenv.MariaDBImageTag+": row counts of 2 tables (23000 rows) equal the source |")
	assert.Equal(t, "gunzip -c "+file+" | docker exec -i -e MYSQL_PWD "+name+" mysql -u root", restoreCommand(t, r.Summary))
	assert.Empty(t, scratchContainers(t))
}
