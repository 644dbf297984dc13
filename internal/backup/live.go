package backup

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Live is the restore side of an engine: the live database the restore action
// puts a verified backup back into, and what a deploy and a rehearsal read from
// it. Every engine implements it (Engine embeds it); LiveDB is its face to
// other packages, and the conformance suite runs it on every engine.
type Live interface {
	// Counts are the live database's row counts by table.
	Counts(ctx context.Context) (map[string]int64, error)
	// RestoreLive puts file (verified) into the live database. An engine that
	// Swaps also says what the live database holds at the end, checked.
	RestoreLive(ctx context.Context, file string) (string, error)
	// Swaps reports whether a failed restore leaves the live data as it was by
	// itself; otherwise the caller restores the safety backup.
	Swaps() bool
	// Leftovers are what restores killed mid-way left beside the live
	// database, each with what to do about it.
	Leftovers(ctx context.Context) ([]string, error)
	// MigrationRow is golang-migrate's schema_migrations row in database,
	// "<version> <dirty>" (errors.ErrUnsupported where there is none).
	MigrationRow(ctx context.Context, database string) (string, error)
	// MigrationTables are the databases that may hold a schema_migrations
	// table and how to read its row; no read function when the engine keeps
	// none.
	MigrationTables(ctx context.Context) (dbs []string, read func(db string) (string, error), err error)
	// RestoreNote is what to know before the summary's restore command.
	RestoreNote() string
}

// lockWatcher is a Live engine whose server reports the locks a session
// holds (PostgreSQL), for a rehearsal's lock watch.
type lockWatcher interface {
	watchLocks(ctx context.Context, limit time.Duration) (*LockWatch, error)
	activity(ctx context.Context) (string, error)
}

func (s *sqlite) Counts(ctx context.Context) (map[string]int64, error) {
	return checkSQLite(ctx, s.path)
}

func (p *postgres) Counts(ctx context.Context) (map[string]int64, error) {
	if p.cluster() {
		return p.liveConn().counts(ctx, nil)
	}
	return p.urlConn().counts(ctx, []string{strings.TrimPrefix(p.url.Path, "/")})
}

func (m *mysql) Counts(ctx context.Context) (map[string]int64, error) {
	return m.live().counts(ctx, m.db)
}

func (s *sqlite) RestoreLive(ctx context.Context, file string) (string, error) {
	if err := s.restoreLive(ctx, file); err != nil {
		return fmt.Sprintf("%s is as it was: the restored copy was not renamed over it", s.path), err
	}
	return s.path + " holds the restored backup", nil
}

func (p *postgres) RestoreLive(ctx context.Context, file string) (string, error) {
	if p.cluster() {
		return "", p.restoreLiveCluster(ctx, file)
	}
	return p.restoreLiveDatabase(ctx, file)
}

func (m *mysql) RestoreLive(ctx context.Context, file string) (string, error) {
	return "", m.restoreLive(ctx, file)
}

func (s *sqlite) Swaps() bool   { return true } // a file renamed over the live one
func (p *postgres) Swaps() bool { return !p.cluster() }
func (m *mysql) Swaps() bool    { return false } // neither a server nor a database can be renamed into place

func (s *sqlite) Leftovers(context.Context) ([]string, error) { return nil, nil } // its scratch file goes with its process
func (m *mysql) Leftovers(context.Context) ([]string, error)  { return nil, nil } // it replays in place

func (p *postgres) RestoreNote() string {
	if p.cluster() {
		return "Into a fresh server (an empty data volume): the dump recreates roles and databases; the error that role postgres already exists is expected."
	}
	return "Into an empty database; DATABASE_URL is its postgres:// URL."
}

func (m *mysql) RestoreNote() string {
	if m.all() {
		return "Into the server's container (a fresh data volume restores everything, users included). MYSQL_PWD is the user's password, when it has one."
	}
	return "Into the (empty) database of the URL; MYSQL_PWD is the user's password."
}

func (s *sqlite) RestoreNote() string {
	return "Stop every writer of the database first, and remove its -wal and -shm files."
}
