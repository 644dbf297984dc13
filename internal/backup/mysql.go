package backup

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/org/deploy-kit/internal/command"
)

// mysql dumps every database of a MySQL or MariaDB server inside its container,
// or one database from the runner when given a URL. The flavor picks the tools:
// mysqldump and mysql, or mariadb-dump and mariadb.
type mysql struct {
	flavor string // "mysql" or "mariadb"
	src    runner
	server // user and password also in URL mode
	// URL mode.
	host, port, db string
}

func (m *mysql) all() bool { return m.db == "" }

func (m *mysql) dumpTool() string {
	if m.flavor == "mariadb" {
		return "mariadb-dump"
	}
	return "mysqldump"
}

func (m *mysql) clientTool() string { return m.flavor } // mysql or mariadb

func (m *mysql) Source() string {
	if m.all() && m.swarm != "" {
		return fmt.Sprintf("%s server of %s (%s --all-databases as %s)", m.flavor, m.swarm, m.dumpTool(), m.user)
	}
	if m.all() {
		return fmt.Sprintf("%s server in container %s (%s --all-databases as %s)", m.flavor, m.container, m.dumpTool(), m.user)
	}
	return fmt.Sprintf("%s database %s on %s:%s (%s)", m.flavor, m.db, m.host, m.port, m.dumpTool())
}

func (m *mysql) Ext() string    { return "sql" }
func (m *mysql) Format() Format { return mysqlFormat }

func (m *mysql) env() []string { return m.passwordEnv("MYSQL_PWD") }

// conn is how the tools reach the server: as user in the container, or over TCP.
func (m *mysql) conn() []string {
	if m.all() {
		return []string{"-u", m.user}
	}
	return []string{"--protocol=TCP", "-h", m.host, "-P", m.port, "-u", m.user}
}

func (m *mysql) dumpArgv() []string {
	argv := append([]string{m.dumpTool()}, m.conn()...)
	argv = append(argv, "--single-transaction", "--routines", "--triggers", "--hex-blob")
	if m.all() {
		return append(argv, "--all-databases", "--events")
	}
	return append(argv, m.db)
}

func (m *mysql) Plan() []string { return []string{m.src.shell(m.dumpArgv())} }

func (m *mysql) Dump(ctx context.Context, w io.Writer) error {
	return m.src.run(ctx, program{Argv: m.dumpArgv(), Env: m.env(), Stdout: w})
}

func (m *mysql) RestoreCommand(file string) string {
	var env []string
	if m.password != "" {
		env = []string{"MYSQL_PWD"}
	}
	argv := append([]string{m.clientTool()}, m.conn()...)
	if !m.all() {
		argv = append(argv, m.db)
	}
	return "gunzip -c " + command.Quote(file) + " | " + m.src.shell(argv, env...)
}

// myConn is where the client connects: a runner, connection options, environment.
type myConn struct {
	r    runner
	tool string
	opts []string
	env  []string
}

func (c myConn) query(ctx context.Context, db, sql string) (string, error) {
	argv := append(append([]string{c.tool}, c.opts...), "-N", "-B", "-e", sql)
	if db != "" {
		argv = append(argv, db)
	}
	return output(ctx, c.r, program{Argv: argv, Env: c.env})
}

func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

func sqlIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// counts reads the row count of every user table (of db, or of every database).
func (c myConn) counts(ctx context.Context, db string) (rowCounts, error) {
	where := "table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
	if db != "" {
		where = "table_schema = " + sqlString(db)
	}
	out, err := c.query(ctx, "", "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND "+where+" ORDER BY 1, 2")
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var selects []string
	for _, line := range strings.Split(out, "\n") {
		schema, table, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		name := table
		if db == "" {
			name = schema + "/" + table
		}
		selects = append(selects, fmt.Sprintf("SELECT %s, COUNT(*) FROM %s.%s", sqlString(name), sqlIdent(schema), sqlIdent(table)))
	}
	counts := rowCounts{}
	if len(selects) == 0 {
		return counts, nil
	}
	out, err = c.query(ctx, "", strings.Join(selects, " UNION ALL "))
	if err != nil {
		return nil, fmt.Errorf("counting rows: %w", err)
	}
	return counts, parseCounts("", out, counts)
}

func (m *mysql) RestoreCheck(ctx context.Context, file string) (string, error) {
	source := myConn{r: m.src, tool: m.clientTool(), opts: m.conn(), env: m.env()}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return "", err
	}
	defer closeDump()

	if m.all() {
		image, err := m.client.ContainerImage(ctx, m.container)
		if err != nil {
			return "", err
		}
		password := randomHex(16)
		scratch := myConn{tool: m.clientTool(), opts: []string{"--protocol=TCP", "-h", "127.0.0.1", "-u", "root"}, env: []string{"MYSQL_PWD=" + password}}
		ready := program{Argv: append(append([]string{scratch.tool}, scratch.opts...), "-e", "SELECT 1"), Env: scratch.env}
		r, remove, err := scratchServer(ctx, m.client, image,
			[]string{"MARIADB_ROOT_PASSWORD=" + password, "MYSQL_ROOT_PASSWORD=" + password}, "3306/tcp", m.labels, ready)
		if err != nil {
			return "", err
		}
		defer remove()
		scratch.r = r
		if err := r.run(ctx, program{Argv: append([]string{scratch.tool}, scratch.opts...), Env: scratch.env, Stdin: dump}); err != nil {
			return "", fmt.Errorf("restoring into a scratch container: %w", err)
		}
		return m.compare(ctx, source, scratch, "", "", "restored into a scratch container of "+image)
	}

	name := "deploykit_restore_" + randomHex(6)
	if _, err := source.query(ctx, "", "CREATE DATABASE "+sqlIdent(name)); err != nil {
		return "", fmt.Errorf("creating a scratch database: %w", err)
	}
	defer func() { _, _ = source.query(context.WithoutCancel(ctx), "", "DROP DATABASE IF EXISTS "+sqlIdent(name)) }()
	argv := append(append([]string{source.tool}, source.opts...), name)
	if err := m.src.run(ctx, program{Argv: argv, Env: source.env, Stdin: dump}); err != nil {
		return "", fmt.Errorf("restoring into scratch database %s: %w", name, err)
	}
	return m.compare(ctx, source, source, m.db, name, "restored into scratch database "+name+" on the same server (dropped after)")
}

func (m *mysql) compare(ctx context.Context, source, restored myConn, sourceDB, restoredDB, what string) (string, error) {
	want, err := source.counts(ctx, sourceDB)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	got, err := restored.counts(ctx, restoredDB)
	if err != nil {
		return "", fmt.Errorf("restored: %w", err)
	}
	compared, err := compareCounts(want, got)
	if err != nil {
		return "", err
	}
	return what + ": " + compared, nil
}

// mysqlName is a database name the kit passes to the dump tools: MySQL's unquoted
// identifier characters (and '-', common in names, but never first).
var mysqlName = regexp.MustCompile(`^[A-Za-z0-9_$][A-Za-z0-9_$-]*$`)

// parseMySQLURL splits mysql://user:password@host:port/db.
func parseMySQLURL(raw string) (user, password, host, port, db string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mysql" && u.Scheme != "mariadb") || u.Host == "" {
		return "", "", "", "", "", fmt.Errorf("want mysql://user:password@host:port/database")
	}
	db = strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return "", "", "", "", "", fmt.Errorf("the URL names no database: want mysql://user:password@host:port/database")
	}
	// The name goes on the dump tool's command line after its options: it must
	// not read as one.
	if !mysqlName.MatchString(db) {
		return "", "", "", "", "", fmt.Errorf("database name %q: want letters, digits, '_' and '$', not starting with '-'", db)
	}
	if u.RawQuery != "" {
		return "", "", "", "", "", fmt.Errorf("the URL has a query (%s…), which is not used: put the user and password in the URL's user info, mysql://user:password@host:port/database", strings.SplitN(u.RawQuery, "=", 2)[0])
	}
	password, _ = u.User.Password()
	port = u.Port()
	if port == "" {
		port = "3306"
	}
	return u.User.Username(), password, u.Hostname(), port, db, nil
}
