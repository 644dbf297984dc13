package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/org/deploy-kit/internal/action"
)

// The restore action's use of the engines (internal/restore): a live database
// the kit puts a verified backup back into. A restore never leaves a database
// half-restored: SQLite loads into a file beside the live one and renames it
// over; a PostgreSQL database (URL) loads into a new database that takes the
// live one's name only once complete; a PostgreSQL cluster (container), which
// cannot be swapped, is cleared and replayed — the caller puts the safety backup
// back the same way if that fails.

// Target is a live database to restore into.
type Target struct {
	engine Engine
}

// NewTarget checks o (the backup action's engine inputs: engine, container or
// database-url or sqlite-path, db-user, db-password) and builds the target; a
// problem is a usage error and nothing has been touched.
func NewTarget(a *action.Context, o Options) (*Target, error) {
	dir := o.Dir
	if o.SQLitePath != "" {
		dir = filepath.Dir(o.SQLitePath)
	}
	j := &job{name: o.Engine, dir: dir, prefix: "restore", pid: os.Getpid(), id: time.Now().UTC().Format(idLayout)}
	e, err := newEngine(a, j, o)
	if err != nil {
		return nil, action.Usagef("%v", err)
	}
	return &Target{engine: e}, nil
}

// Source says what is restored into, for the log and summary.
func (t *Target) Source() string { return t.engine.Source() }

// Close releases what the target holds.
func (t *Target) Close() error { return t.engine.Close() }

// Ext is the extension of the target's backups before .gz.
func (t *Target) Ext() string { return t.engine.Ext() }

// Verify checks a backup before anything is touched: its .sha256 (required), the
// whole gzip stream, and that it is a complete dump of this target's kind. It
// returns the file's SHA-256 and the checks made.
func (t *Target) Verify(file string) (string, []string, error) {
	v, sum, err := verifyFile(file, 1, formats)
	if err != nil {
		return "", nil, err
	}
	if want := t.engine.Format().Name(); v.Format != want {
		return "", nil, fmt.Errorf("%s is a %s dump, not the %s dump %s needs: it was made from another kind of database", file, v.Format, want, t.engine.Source())
	}
	if err := compareSum(file, sum); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%s.sha256 is missing: a backup is restored only with the checksum written beside it (the backup action writes one)", file)
		}
		return "", nil, err
	}
	return sum, append(v.Checks, "matches "+filepath.Base(file)+".sha256"), nil
}

// Latest is the newest backup named <prefix>-<timestamp>.<ext>.gz in dir.
func Latest(dir, prefix, ext string) (string, error) {
	list, err := listBackups(dir, prefix, ext)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", fmt.Errorf("no backup named %s-<timestamp>.%s.gz in %s", prefix, ext, dir)
	}
	return filepath.Join(dir, list[0].Name), nil
}

// Counts are the target's row counts by table, for the summary.
func (t *Target) Counts(ctx context.Context) (map[string]int64, error) {
	switch e := t.engine.(type) {
	case *sqlite:
		return checkSQLite(ctx, e.path)
	case *postgres:
		if e.cluster() {
			return e.liveConn().counts(ctx, nil)
		}
		return e.urlConn().counts(ctx, []string{strings.TrimPrefix(e.url.Path, "/")})
	case *mysql:
		return e.live().counts(ctx, e.db)
	}
	return nil, errors.ErrUnsupported
}

// Restore puts file (verified) into the live database.
func (t *Target) Restore(ctx context.Context, file string) error {
	switch e := t.engine.(type) {
	case *sqlite:
		return e.restoreLive(ctx, file)
	case *postgres:
		if e.cluster() {
			return e.restoreLiveCluster(ctx, file)
		}
		return e.restoreLiveDatabase(ctx, file)
	case *mysql:
		return e.restoreLive(ctx, file)
	}
	return errors.ErrUnsupported
}

// Swaps reports whether a failed restore leaves the live data as it was by
// itself; otherwise the caller restores the safety backup.
func (t *Target) Swaps() bool {
	switch e := t.engine.(type) {
	case *postgres:
		return !e.cluster()
	case *mysql:
		return false // neither a server nor a database can be renamed into place
	}
	return true
}

// restoreLive loads the backup into a file beside the live database, checks it,
// and renames it over the live one (removing the old one's journal files).
func (s *sqlite) restoreLive(ctx context.Context, file string) error {
	dir := filepath.Dir(s.path)
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.restore-%d", filepath.Base(s.path), os.Getpid()))
	defer os.Remove(tmp)
	mode := os.FileMode(0o600)
	if st, err := os.Stat(s.path); err == nil {
		mode = st.Mode().Perm()
	}
	zr, closeZ, err := gunzipFile(file)
	if err != nil {
		return err
	}
	defer closeZ()
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, zr)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return diskFull(fmt.Errorf("writing %s: %w", tmp, err), tmp)
	}
	if _, err := checkSQLite(ctx, tmp); err != nil {
		return fmt.Errorf("the restored copy: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	// The old database's journal files must go before anything opens the new
	// one, which SQLite would otherwise read them into (the services are stopped;
	// the safety backup has what they held). Removed after the rename, so that a
	// rename that fails leaves the old database whole.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(s.path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the restored database is in place, but removing the old %s failed (remove it before the app opens the database): %w", s.path+suffix, err)
		}
	}
	return syncDir(dir)
}

// liveConn is psql on the live server, in its container, as the backup's user.
func (p *postgres) liveConn() pgConn {
	return pgConn{r: p.src, env: p.env(), opts: func(db string) []string { return []string{"-U", p.user, "-d", db} }}
}

// urlConn is psql from the runner on the URL's server.
func (p *postgres) urlConn() pgConn {
	return pgConn{r: p.src, env: p.env(), opts: func(db string) []string {
		u := *p.url
		u.Path = "/" + db
		return []string{"--dbname=" + u.String()}
	}}
}

// restoreLiveCluster clears the cluster (every database and role but the
// connecting superuser's) and replays a pg_dumpall file, over the trusted socket.
// Any error the replay prints fails the restore.
func (p *postgres) restoreLiveCluster(ctx context.Context, file string) error {
	conn := p.liveConn()
	out, err := output(ctx, p.src, program{Argv: conn.psql("template1", "-At", "-c",
		"SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1') ORDER BY 1"), Env: conn.env})
	if err != nil {
		return fmt.Errorf("listing the databases: %w", err)
	}
	for _, db := range strings.Fields(out) {
		if err := p.src.run(ctx, program{Argv: conn.psql("template1", "-q", "-v", "ON_ERROR_STOP=1", "-c", `DROP DATABASE "`+strings.ReplaceAll(db, `"`, `""`)+`" WITH (FORCE)`), Env: conn.env}); err != nil {
			return fmt.Errorf("dropping database %s: %w", db, err)
		}
	}
	if err := p.src.run(ctx, program{Argv: conn.psql("template1", "-q", "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE postgres`), Env: conn.env}); err != nil {
		return fmt.Errorf("creating the postgres database: %w", err)
	}
	out, err = output(ctx, p.src, program{Argv: conn.psql("template1", "-At", "-c",
		"SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user ORDER BY 1"), Env: conn.env})
	if err != nil {
		return fmt.Errorf("listing the roles: %w", err)
	}
	for _, role := range strings.Fields(out) {
		if err := p.src.run(ctx, program{Argv: conn.psql("template1", "-q", "-v", "ON_ERROR_STOP=1", "-c", `DROP ROLE "`+strings.ReplaceAll(role, `"`, `""`)+`"`), Env: conn.env}); err != nil {
			return fmt.Errorf("dropping role %s: %w", role, err)
		}
	}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return err
	}
	defer closeDump()
	errs := &psqlErrors{allowed: fmt.Sprintf(`ERROR:  role "%s" already exists`, p.user)}
	if err := p.src.run(ctx, program{Argv: conn.psql("postgres", "-q"), Env: conn.env, Stdin: dump, Stderr: errs}); err != nil {
		return fmt.Errorf("replaying %s: %w", filepath.Base(file), err)
	}
	return errs.err()
}

// restoreLiveDatabase loads a pg_dump file into a new database on the same
// server and, once it is complete, gives it the live database's name (the old
// one is dropped). A failure drops the new database; the live one is untouched.
func (p *postgres) restoreLiveDatabase(ctx context.Context, file string) error {
	conn := p.urlConn()
	live := strings.TrimPrefix(p.url.Path, "/")
	id := time.Now().UTC().Format("20060102150405")
	fresh, old := "deploykit_restore_"+id, "deploykit_pre_restore_"+id
	q := func(db, sql string) error {
		return p.src.run(ctx, program{Argv: conn.psql(db, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql), Env: conn.env})
	}
	ident := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	if err := q(live, "CREATE DATABASE "+ident(fresh)); err != nil {
		return fmt.Errorf("creating database %s: %w", fresh, err)
	}
	drop := func(db string) {
		_ = p.src.run(context.WithoutCancel(ctx), program{Argv: conn.psql("template1", "-q", "-c", "DROP DATABASE IF EXISTS "+ident(db)+" WITH (FORCE)"), Env: conn.env})
	}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		drop(fresh)
		return err
	}
	defer closeDump()
	if err := p.src.run(ctx, program{Argv: conn.psql(fresh, "-q", "-v", "ON_ERROR_STOP=1"), Env: conn.env, Stdin: dump}); err != nil {
		drop(fresh)
		return fmt.Errorf("loading %s into database %s: %w", filepath.Base(file), fresh, err)
	}
	// The swap: nobody may be connected to the live database while it is renamed.
	if err := q("template1", "ALTER DATABASE "+ident(live)+" RENAME TO "+ident(old)); err != nil {
		if err2 := q("template1", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+strings.ReplaceAll(live, "'", "''")+"' AND pid <> pg_backend_pid()"); err2 == nil {
			err = q("template1", "ALTER DATABASE "+ident(live)+" RENAME TO "+ident(old))
		}
		if err != nil {
			drop(fresh)
			return fmt.Errorf("setting the live database %s aside: %w", live, err)
		}
	}
	if err := q("template1", "ALTER DATABASE "+ident(fresh)+" RENAME TO "+ident(live)); err != nil {
		_ = q("template1", "ALTER DATABASE "+ident(old)+" RENAME TO "+ident(live))
		drop(fresh)
		return fmt.Errorf("giving the restored database the name %s: %w", live, err)
	}
	drop(old)
	return nil
}

// live is the client on the live server (in its container, or over TCP).
func (m *mysql) live() myConn {
	return myConn{r: m.src, tool: m.clientTool(), opts: m.conn(), env: m.env()}
}

// restoreLive clears what the backup covers — every user database of the
// server (--all-databases), or the one database — and replays the dump; the
// client stops at the first error, which fails the restore. Grants the dump
// brings take effect at once (FLUSH PRIVILEGES).
func (m *mysql) restoreLive(ctx context.Context, file string) error {
	conn := m.live()
	dbs := []string{m.db}
	if m.all() {
		out, err := conn.query(ctx, "", "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1")
		if err != nil {
			return fmt.Errorf("listing the databases: %w", err)
		}
		dbs = strings.Fields(out)
	}
	for _, db := range dbs {
		if _, err := conn.query(ctx, "", "DROP DATABASE IF EXISTS "+sqlIdent(db)); err != nil {
			return fmt.Errorf("dropping database %s: %w", db, err)
		}
	}
	argv := append([]string{conn.tool}, conn.opts...)
	if !m.all() {
		if _, err := conn.query(ctx, "", "CREATE DATABASE "+sqlIdent(m.db)); err != nil {
			return fmt.Errorf("creating database %s: %w", m.db, err)
		}
		argv = append(argv, m.db)
	}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return err
	}
	defer closeDump()
	if err := m.src.run(ctx, program{Argv: argv, Env: conn.env, Stdin: dump}); err != nil {
		return fmt.Errorf("replaying %s: %w", filepath.Base(file), err)
	}
	if m.all() {
		if _, err := conn.query(ctx, "", "FLUSH PRIVILEGES"); err != nil {
			return fmt.Errorf("FLUSH PRIVILEGES: %w", err)
		}
	}
	return nil
}

// MigrationVersion reads golang-migrate's schema_migrations in database on the
// target's server: the version, or an error when there is none or it is dirty.
func (t *Target) MigrationVersion(ctx context.Context, database string) (string, error) {
	const query = "SELECT version, dirty FROM schema_migrations"
	var out string
	var err error
	switch e := t.engine.(type) {
	case *postgres:
		conn := e.liveConn()
		out, err = output(ctx, e.src, program{Argv: conn.psql(database, "-At", "-F", " ", "-c", query), Env: conn.env})
	case *mysql:
		out, err = e.live().query(ctx, database, query)
	default:
		return "", errors.ErrUnsupported
	}
	if err != nil {
		return "", err
	}
	fields := strings.Fields(out)
	switch {
	case len(fields) < 2:
		return "", errors.New("schema_migrations is empty")
	case fields[1] == "t" || fields[1] == "1":
		return "", fmt.Errorf("the database is dirty at migration %s: a migration failed half-way", fields[0])
	}
	return fields[0], nil
}
