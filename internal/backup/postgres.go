package backup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/org/deploy-kit/internal/command"
)

// postgres dumps a whole cluster with pg_dumpall inside its container, or one
// database with pg_dump from the runner when given a URL.
type postgres struct {
	src runner
	server
	// URL mode: the URL without its password, which goes through PGPASSWORD.
	url *url.URL
}

func (p *postgres) cluster() bool { return p.url == nil }

func (p *postgres) Source() string {
	if p.cluster() && p.swarm != "" {
		return fmt.Sprintf("PostgreSQL cluster of %s (pg_dumpall as %s)", p.swarm, p.user)
	}
	if p.cluster() {
		return fmt.Sprintf("PostgreSQL cluster in container %s (pg_dumpall as %s)", p.container, p.user)
	}
	return fmt.Sprintf("PostgreSQL database %s on %s (pg_dump)", strings.TrimPrefix(p.url.Path, "/"), p.url.Host)
}

func (p *postgres) Ext() string { return "sql" }

func (p *postgres) Format() Format {
	if p.cluster() {
		return pgClusterFormat
	}
	return pgDatabaseFormat
}

func (p *postgres) env() []string { return p.passwordEnv("PGPASSWORD") }

func (p *postgres) dumpArgv() []string {
	if p.cluster() {
		return []string{"pg_dumpall", "--no-password", "-U", p.user}
	}
	return []string{"pg_dump", "--no-password", "--dbname=" + p.url.String()}
}

func (p *postgres) Plan() []string { return []string{p.src.shell(p.dumpArgv())} }

func (p *postgres) Dump(ctx context.Context, w io.Writer) error {
	return p.src.run(ctx, program{Argv: p.dumpArgv(), Env: p.env(), Stdout: w})
}

func (p *postgres) RestoreCommand(file string) string {
	if p.cluster() {
		var env []string
		if p.password != "" {
			env = []string{"PGPASSWORD"}
		}
		return "gunzip -c " + command.Quote(file) + " | " + p.src.shell([]string{"psql", "-X", "-U", p.user, "-d", "postgres"}, env...)
	}
	return "gunzip -c " + command.Quote(file) + ` | psql -X -v ON_ERROR_STOP=1 --dbname "$DATABASE_URL"`
}

// pgConn is where psql connects: a runner and the connection options.
type pgConn struct {
	r    runner
	opts func(db string) []string
	env  []string
}

func (c pgConn) psql(db string, extra ...string) []string {
	return append(append([]string{"psql", "-X", "--no-password"}, c.opts(db)...), extra...)
}

const pgDatabasesQuery = `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1`

// pgCountsQuery counts the rows of every table of a database in one statement.
const pgCountsQuery = `SELECT format('%I.%I', table_schema, table_name) || '|' ||
 (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text
FROM information_schema.tables
WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1`

// counts reads the row count of every table of dbs (all databases when nil).
func (c pgConn) counts(ctx context.Context, dbs []string) (rowCounts, error) {
	if dbs == nil {
		out, err := output(ctx, c.r, program{Argv: c.psql("postgres", "-At", "-c", pgDatabasesQuery), Env: c.env})
		if err != nil {
			return nil, fmt.Errorf("listing databases: %w", err)
		}
		dbs = strings.Fields(out)
	}
	counts := rowCounts{}
	for _, db := range dbs {
		out, err := output(ctx, c.r, program{Argv: c.psql(db, "-At", "-v", "ON_ERROR_STOP=1", "-c", pgCountsQuery), Env: c.env})
		if err != nil {
			return nil, fmt.Errorf("counting rows in database %s: %w", db, err)
		}
		if err := parseCounts(db+"/", out, counts); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func (p *postgres) RestoreCheck(ctx context.Context, file string) (string, error) {
	if p.cluster() {
		return p.restoreCluster(ctx, file)
	}
	return p.restoreDatabase(ctx, file)
}

// restoreCluster restores a pg_dumpall file into a fresh container of the
// source's image. The dump recreates the roles, so the one error allowed is that
// the scratch server's own superuser already exists.
func (p *postgres) restoreCluster(ctx context.Context, file string) (string, error) {
	image, err := p.client.ContainerImage(ctx, p.container)
	if err != nil {
		return "", err
	}
	// Ready means the TCP listener answers with the password (the official
	// image's first-start server listens on its socket only). The restore then
	// uses the trusted local socket: the dump sets the postgres role's password
	// to the source's, which would break the dump's own \connect over TCP.
	password := randomHex(16)
	ready := pgConn{
		opts: func(db string) []string { return []string{"-h", "127.0.0.1", "-U", "postgres", "-d", db} },
		env:  []string{"PGPASSWORD=" + password},
	}
	scratch := pgConn{opts: func(db string) []string { return []string{"-U", "postgres", "-d", db} }}
	r, remove, err := scratchServer(ctx, p.client, image, []string{"POSTGRES_PASSWORD=" + password}, "5432/tcp", p.labels,
		program{Argv: ready.psql("postgres", "-c", "SELECT 1"), Env: ready.env})
	if err != nil {
		return "", err
	}
	defer remove()
	scratch.r = r

	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return "", err
	}
	defer closeDump()
	errs := &psqlErrors{allowed: `ERROR:  role "postgres" already exists`}
	if err := r.run(ctx, program{Argv: scratch.psql("postgres", "-q"), Env: scratch.env, Stdin: dump, Stderr: errs}); err != nil {
		return "", fmt.Errorf("restoring into a scratch container: %w", err)
	}
	if err := errs.err(); err != nil {
		return "", err
	}
	source := pgConn{r: p.src, env: p.env(), opts: func(db string) []string { return []string{"-U", p.user, "-d", db} }}
	want, err := source.counts(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	got, err := scratch.counts(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("restored: %w", err)
	}
	compared, err := compareCounts(want, got)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored into a scratch container of %s: %s", image, compared), nil
}

// restoreDatabase restores a pg_dump file into a fresh database on the same
// server, compares and drops it.
func (p *postgres) restoreDatabase(ctx context.Context, file string) (string, error) {
	dbURL := func(db string) []string {
		u := *p.url
		u.Path = "/" + db
		return []string{"--dbname=" + u.String()}
	}
	conn := pgConn{r: p.src, opts: dbURL, env: p.env()}
	source := strings.TrimPrefix(p.url.Path, "/")
	scratch := pgCheckPrefix + randomHex(6) + "_" + nameTag(source)
	if err := p.src.run(ctx, program{Argv: conn.psql(source, "-c", `CREATE DATABASE "`+scratch+`"`), Env: conn.env}); err != nil {
		return "", fmt.Errorf("creating a scratch database: %w", err)
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		_ = p.src.run(ctx, program{Argv: conn.psql(source, "-c", `DROP DATABASE IF EXISTS "`+scratch+`" WITH (FORCE)`), Env: conn.env})
	}()
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return "", err
	}
	defer closeDump()
	if err := p.src.run(ctx, program{Argv: conn.psql(scratch, "-q", "-v", "ON_ERROR_STOP=1"), Env: conn.env, Stdin: dump}); err != nil {
		return "", fmt.Errorf("restoring into scratch database %s: %w", scratch, err)
	}
	want, err := conn.counts(ctx, []string{source})
	if err != nil {
		return "", err
	}
	got, err := conn.counts(ctx, []string{scratch})
	if err != nil {
		return "", err
	}
	renamed := rowCounts{}
	for k, v := range got {
		renamed[source+strings.TrimPrefix(k, scratch)] = v
	}
	compared, err := compareCounts(want, renamed)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored into scratch database %s on the same server (dropped after): %s", scratch, compared), nil
}

// psqlErrors collects the ERROR lines psql prints while restoring, apart from one
// expected message.
type psqlErrors struct {
	allowed string
	partial []byte
	errors  []string
	count   int
}

func (e *psqlErrors) Write(p []byte) (int, error) {
	e.partial = append(e.partial, p...)
	last := strings.LastIndexByte(string(e.partial), '\n')
	if last < 0 {
		return len(p), nil
	}
	sc := bufio.NewScanner(strings.NewReader(string(e.partial[:last])))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "ERROR:"); i >= 0 && !strings.Contains(line, e.allowed) {
			e.count++
			if len(e.errors) < 3 {
				e.errors = append(e.errors, line[i:])
			}
		}
	}
	e.partial = append(e.partial[:0], e.partial[last+1:]...)
	return len(p), nil
}

func (e *psqlErrors) err() error {
	if e.count == 0 {
		return nil
	}
	return fmt.Errorf("the restore printed %d errors: %s", e.count, strings.Join(e.errors, "; "))
}

// parsePostgresURL checks a libpq connection URI and takes its password out of it
// (the userinfo password, or a password query parameter, which libpq prefers):
// what is left goes on pg_dump's command line, the password through PGPASSWORD.
// A key passphrase (sslpassword) has no environment variable and is refused.
func parsePostgresURL(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, "", fmt.Errorf("want postgres://user:password@host:port/database")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, "", fmt.Errorf("the query of the URL does not parse: want postgres://user:password@host:port/database?sslmode=…")
	}
	if q.Has("sslpassword") {
		return nil, "", fmt.Errorf("the URL carries sslpassword, which would reach pg_dump's command line: use a client key without a passphrase (readable only by the runner's user)")
	}
	pw, _ := u.User.Password()
	if q.Has("password") {
		pw = q.Get("password")
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u, pw, nil
}
