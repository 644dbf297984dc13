package backup

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// LiveDB is a live database to restore into.
type LiveDB struct {
	engine Engine
}

// NewLiveDB checks o (the backup action's engine inputs: engine, container or
// database-url or sqlite-path, db-user, db-password) and builds it; a
// problem is a usage error and nothing has been touched.
func NewLiveDB(a *action.Context, o Options) (*LiveDB, error) {
	dir := o.Dir
	if o.SQLitePath != "" {
		dir = filepath.Dir(o.SQLitePath)
	}
	j := &job{name: o.Engine, dir: dir, prefix: "restore", pid: os.Getpid(), id: time.Now().UTC().Format(idLayout)}
	e, err := newEngine(a, j, o)
	if err != nil {
		return nil, action.Usagef("%v", err)
	}
	return &LiveDB{engine: e}, nil
}

// Source says what is restored into, for the log and summary.
func (t *LiveDB) Source() string { return t.engine.Source() }

// Close releases what it holds.
func (t *LiveDB) Close() error { return t.engine.Close() }

// Ext is the extension of the database's backups before .gz.
func (t *LiveDB) Ext() string { return t.engine.Ext() }

// Verify checks a backup before anything is touched: its .sha256 (required), the
// whole gzip stream, and that it is a complete dump of this database's kind. It
// returns the file's SHA-256 and the checks made.
func (t *LiveDB) Verify(file string) (string, []string, error) {
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

// Counts are the live database's row counts by table, for the summary.
func (t *LiveDB) Counts(ctx context.Context) (map[string]int64, error) { return t.engine.Counts(ctx) }

// Restore puts file (verified) into the live database. For an engine that Swaps,
// it also says what the live database holds at the end, checked: the restored
// backup, or the data from before.
func (t *LiveDB) Restore(ctx context.Context, file string) (string, error) {
	return t.engine.RestoreLive(ctx, file)
}

// Swaps reports whether a failed restore leaves the live data as it was by
// itself; otherwise the caller restores the safety backup.
func (t *LiveDB) Swaps() bool { return t.engine.Swaps() }

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

// settleTimeout bounds what a restore by URL does after it was stopped or failed:
// finding out from pg_database what the live name holds and tidying up. It runs
// on a context of its own, never the cancelled one (ARCHITECTURE.md,
// "Cancellation").
const settleTimeout = 30 * time.Second

// pgSwap is one restore of a database by URL: the live database, the new one
// the backup is loaded into, and the name the live one gets when the new one
// takes its name.
type pgSwap struct {
	p                 *postgres
	conn              pgConn
	live, fresh, old  string
	app               string // application_name of the swap's session
	loaded, committed bool
}

// restoreLiveDatabase loads a pg_dump file into a new database on the same
// server and, once it is complete, swaps the names of the two in one
// transaction, so that there is never a moment without a database under the
// live name; the old one is dropped. Whatever happens, what it says about the
// live database is what pg_database says at the end.
func (p *postgres) restoreLiveDatabase(ctx context.Context, file string) (string, error) {
	live := strings.TrimPrefix(p.url.Path, "/")
	id := time.Now().UTC().Format("20060102150405") + "_" + nameTag(live)
	sw := &pgSwap{p: p, conn: p.urlConn(), live: live,
		fresh: pgRestorePrefix + id, old: pgPreRestorePrefix + id, app: "deploykit-restore-" + id}
	err := sw.run(ctx, file)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return sw.settle(sctx, err)
}

func (sw *pgSwap) q(ctx context.Context, db, sql string, env ...string) error {
	return sw.p.src.run(ctx, program{Argv: sw.conn.psql(db, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql), Env: append(append([]string{}, sw.conn.env...), env...)})
}

func (sw *pgSwap) run(ctx context.Context, file string) error {
	if err := sw.q(ctx, sw.live, "CREATE DATABASE "+pgIdent(sw.fresh)); err != nil {
		return fmt.Errorf("creating database %s: %w", sw.fresh, err)
	}
	dump, closeDump, err := gunzipFile(file)
	if err != nil {
		return err
	}
	defer closeDump()
	if err := sw.p.src.run(ctx, program{Argv: sw.conn.psql(sw.fresh, "-q", "-v", "ON_ERROR_STOP=1"), Env: sw.conn.env, Stdin: dump}); err != nil {
		return fmt.Errorf("loading %s into database %s: %w", filepath.Base(file), sw.fresh, err)
	}
	sw.loaded = true
	// The swap: one transaction, so the live name always names a database.
	// Nobody may be connected to the live database while it is renamed: the
	// services are stopped, and after a refusal (whatever language the server
	// says it in) any session still there is ended and the swap tried again.
	swap := "BEGIN; ALTER DATABASE " + pgIdent(sw.live) + " RENAME TO " + pgIdent(sw.old) +
		"; ALTER DATABASE " + pgIdent(sw.fresh) + " RENAME TO " + pgIdent(sw.live) + "; COMMIT;"
	terminate := "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + pgLiteral(sw.live) + " AND pid <> pg_backend_pid()"
	for attempt := 1; ; attempt++ {
		err = sw.q(ctx, "template1", swap, "PGAPPNAME="+sw.app)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
		if err := sw.q(ctx, "template1", terminate); err != nil {
			return fmt.Errorf("ending the sessions on the live database %s: %w", sw.live, err)
		}
	}
	if err != nil {
		return fmt.Errorf("giving the restored database the name %s: %w", sw.live, err)
	}
	sw.committed = true
	return nil
}

// settle finds out from pg_database what the names hold once the run is over,
// tidies up (drops the new database when it did not take the live name, the old
// one when it did) and says what the live name holds.
func (sw *pgSwap) settle(ctx context.Context, failed error) (string, error) {
	// A swap whose psql was stopped may still be running on the server: wait
	// for its session to end before reading pg_database.
	for ctx.Err() == nil {
		out, err := output(ctx, sw.p.src, program{Argv: sw.conn.psql("template1", "-At", "-c",
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = "+pgLiteral(sw.app)), Env: sw.conn.env})
		if err != nil || out == "0" {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	exists, err := sw.exist(ctx)
	if err != nil {
		if failed == nil {
			failed = errors.New("the restore ran, but its outcome could not be checked")
		}
		return "", fmt.Errorf("%w; reading pg_database afterwards failed too (%v): look with psql \\l for databases %s, %s and %s, and see docs/actions/restore.md", failed, err, sw.live, sw.fresh, sw.old)
	}
	drop := func(db string) error {
		return sw.q(ctx, "template1", "DROP DATABASE IF EXISTS "+pgIdent(db)+" WITH (FORCE)")
	}
	switch {
	case exists[sw.fresh] && exists[sw.live]: // the new database never took the name
		state := fmt.Sprintf("database %s is as it was: the restored copy did not take its name (checked in pg_database)", sw.live)
		if derr := drop(sw.fresh); derr != nil {
			state += fmt.Sprintf("; dropping the restored copy %s failed (%v): drop it by hand", sw.fresh, derr)
		}
		if failed == nil {
			failed = errors.New("the restored copy did not take the live name")
		}
		return state, failed
	case exists[sw.live] && !exists[sw.fresh] && (sw.loaded || exists[sw.old]): // the swap committed
		state := fmt.Sprintf("database %s holds the restored backup (checked in pg_database)", sw.live)
		if exists[sw.old] {
			if derr := drop(sw.old); derr != nil {
				state += fmt.Sprintf("; the data from before is still in database %s, and dropping it failed (%v): drop it once you no longer need it", sw.old, derr)
			}
		}
		if !sw.committed && failed != nil {
			// The swap reached the server, whatever its psql said: the restore is done.
			return state, nil
		}
		return state, failed
	case exists[sw.live]: // stopped before anything was created
		return fmt.Sprintf("database %s is as it was: nothing was restored into it (checked in pg_database)", sw.live), cmp.Or(failed, errors.New("nothing was restored"))
	}
	// No database under the live name: cannot happen through a one-transaction
	// swap, but say exactly what is where if it ever does.
	state := fmt.Sprintf("NO database is named %s (checked in pg_database)", sw.live)
	switch {
	case exists[sw.old]:
		state += fmt.Sprintf(": the data from before is in %s; give it the name back with ALTER DATABASE %s RENAME TO %s", sw.old, pgIdent(sw.old), pgIdent(sw.live))
	case exists[sw.fresh]:
		state += fmt.Sprintf(": the restored copy is in %s", sw.fresh)
	}
	return state, cmp.Or(failed, errors.New(state))
}

// exist reads which of the swap's three names pg_database has.
func (sw *pgSwap) exist(ctx context.Context) (map[string]bool, error) {
	out, err := output(ctx, sw.p.src, program{Argv: sw.conn.psql("template1", "-At", "-c",
		"SELECT datname FROM pg_database WHERE datname IN ("+pgLiteral(sw.live)+", "+pgLiteral(sw.fresh)+", "+pgLiteral(sw.old)+")"), Env: sw.conn.env})
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			got[line] = true
		}
	}
	return got, nil
}

// The names a restore by URL gives the databases it creates,
// <prefix><time>_<nameTag(live)>, and a restore check its scratch database,
// <pgCheckPrefix><random>_<nameTag(source)>; a database named so outlives its
// run only when the run was killed. The tag says whose it is, on a server that
// holds several apps' databases (a name can be 63 bytes only: the tag is short).
const (
	pgRestorePrefix    = "deploykit_restore_"
	pgPreRestorePrefix = "deploykit_pre_restore_"
	pgCheckPrefix      = "deploykit_check_"
)

// nameTag is a short tag of a database name, for the names of the databases a
// restore or restore check makes beside it.
func nameTag(db string) string {
	sum := sha256.Sum256([]byte(db))
	return hex.EncodeToString(sum[:4])
}

// Leftovers lists the databases an earlier restore by URL (or restore check) of
// the live database left on its server when it was killed, each with what
// it is and what to do; nil for other engines.
func (t *LiveDB) Leftovers(ctx context.Context) ([]string, error) { return t.engine.Leftovers(ctx) }

func (p *postgres) Leftovers(ctx context.Context) ([]string, error) {
	if p.cluster() {
		return nil, nil // a cluster is replayed in place: it leaves no databases beside it
	}
	conn := p.urlConn()
	live := strings.TrimPrefix(p.url.Path, "/")
	out, err := output(ctx, p.src, program{Argv: conn.psql("template1", "-At", "-c",
		`SELECT datname FROM pg_database WHERE datname LIKE 'deploykit\_%' OR datname = `+pgLiteral(live)+` ORDER BY 1`), Env: conn.env})
	if err != nil {
		return nil, fmt.Errorf("looking for databases left by an earlier restore: %w", err)
	}
	var found []string
	liveThere := false
	for _, db := range strings.Fields(out) {
		switch {
		case db == live:
			liveThere = true
		case strings.HasSuffix(db, "_"+nameTag(live)): // another database's are its own restore's to report
			found = append(found, db)
		}
	}
	var says []string
	for _, db := range found {
		switch {
		case strings.HasPrefix(db, pgPreRestorePrefix) && !liveThere:
			says = append(says, fmt.Sprintf("database %s holds the data from before a restore that was killed, and no database is named %s: give it the name back (ALTER DATABASE %s RENAME TO %s) or restore a backup", db, live, pgIdent(db), pgIdent(live)))
		case strings.HasPrefix(db, pgPreRestorePrefix):
			says = append(says, fmt.Sprintf("database %s holds the data from before a restore that was killed after %s took the restored data: drop it once you no longer need it (DROP DATABASE %s)", db, live, pgIdent(db)))
		case strings.HasPrefix(db, pgRestorePrefix):
			says = append(says, fmt.Sprintf("database %s is a copy a restore of %s was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE %s)", db, live, pgIdent(db)))
		case strings.HasPrefix(db, pgCheckPrefix):
			says = append(says, fmt.Sprintf("database %s is a scratch copy a backup's restore check of %s was loading when it was killed (or one running now): when none runs, drop it (DROP DATABASE %s)", db, live, pgIdent(db)))
		}
	}
	return says, nil
}

func pgIdent(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
// live database's server: the version, or an error when there is none or it is dirty.
func (t *LiveDB) MigrationVersion(ctx context.Context, database string) (string, error) {
	out, err := t.engine.MigrationRow(ctx, database)
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

// migrationsQuery reads golang-migrate's state: "<version> <dirty>".
const migrationsQuery = "SELECT version, dirty FROM schema_migrations"

func (p *postgres) MigrationRow(ctx context.Context, database string) (string, error) {
	conn := p.liveConn()
	return output(ctx, p.src, program{Argv: conn.psql(database, "-At", "-F", " ", "-c", migrationsQuery), Env: conn.env})
}

func (m *mysql) MigrationRow(ctx context.Context, database string) (string, error) {
	return m.live().query(ctx, database, migrationsQuery)
}

func (s *sqlite) MigrationRow(context.Context, string) (string, error) {
	return "", errors.ErrUnsupported
}

// Schemas reads golang-migrate's state in every database of the server that
// has a schema_migrations table: database → "<version>" or "<version> (dirty)".
// A deploy compares it before and after a failed release (did the database
// move?). Other engines (SQLite) give nil.
func (t *LiveDB) Schemas(ctx context.Context) (map[string]string, error) {
	dbs, read, err := t.engine.MigrationTables(ctx)
	if err != nil || read == nil {
		return nil, err
	}
	states := map[string]string{}
	for _, db := range dbs {
		out, err := read(db)
		if err != nil {
			continue // no schema_migrations there
		}
		if f := strings.Fields(out); len(f) == 2 {
			states[db] = f[0]
			if f[1] == "t" || f[1] == "1" {
				states[db] += " (dirty)"
			}
		}
	}
	return states, nil
}

func (p *postgres) MigrationTables(ctx context.Context) ([]string, func(db string) (string, error), error) {
	conn := p.liveConn()
	var dbs []string
	if !p.cluster() {
		conn = p.urlConn()
		dbs = []string{strings.TrimPrefix(p.url.Path, "/")}
	} else {
		out, err := output(ctx, p.src, program{Argv: conn.psql("template1", "-At", "-c", pgDatabasesQuery), Env: conn.env})
		if err != nil {
			return nil, nil, fmt.Errorf("listing the databases: %w", err)
		}
		dbs = strings.Fields(out)
	}
	return dbs, func(db string) (string, error) {
		return output(ctx, p.src, program{Argv: conn.psql(db, "-At", "-F", " ", "-c", migrationsQuery), Env: conn.env})
	}, nil
}

func (m *mysql) MigrationTables(ctx context.Context) ([]string, func(db string) (string, error), error) {
	conn := m.live()
	dbs := []string{m.db}
	if m.all() {
		out, err := conn.query(ctx, "", "SELECT table_schema FROM information_schema.tables WHERE table_name = 'schema_migrations' ORDER BY 1")
		if err != nil {
			return nil, nil, fmt.Errorf("listing the databases: %w", err)
		}
		dbs = strings.Fields(out)
	}
	return dbs, func(db string) (string, error) { return conn.query(ctx, db, migrationsQuery) }, nil
}

func (s *sqlite) MigrationTables(context.Context) ([]string, func(db string) (string, error), error) {
	return nil, nil, nil
}
