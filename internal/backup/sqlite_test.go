package backup_test

import (
	"compress/gzip"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/testenv/testapp"
)

// sqliteDB creates a database in WAL mode with items and a counter that every
// write transaction keeps equal to the number of items: a backup that is not one
// consistent snapshot breaks that.
func sqliteDB(t testing.TB, path string, rows int) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
		CREATE TABLE counter (total INTEGER NOT NULL); INSERT INTO counter VALUES (0)`)
	require.NoError(t, err)
	_, err = db.Exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
		INSERT INTO items (body) SELECT hex(randomblob(60)) FROM c`, rows)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE counter SET total = (SELECT count(*) FROM items)`)
	require.NoError(t, err)
	return db
}

func insertOne(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO items (body) VALUES (hex(randomblob(60)))`); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.Exec(`UPDATE counter SET total = total + 1`); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// TestSQLiteUnderConcurrentWriter backs up a database that is written to
// throughout, restores it with the summary's command, and finds one consistent
// snapshot that passes integrity_check.
func TestSQLiteUnderConcurrentWriter(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path := filepath.Join(root, "app.db")
	db := sqliteDB(t, path, 50000)

	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 1_000_000; i++ { // bounded; stopped long before
			select {
			case <-stop:
				return
			default:
			}
			if err := insertOne(db); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			writes.Add(1)
		}
	}()
	testapp.WaitFor(t, "the writer's first writes", func() bool { return writes.Load() >= 50 })
	dir := filepath.Join(root, "backups")
	before := writes.Load()
	r := backup(t, nil, "--engine", "sqlite", "--sqlite-path", path, "--dir", dir, "--restore-check", "--min-size", "0")
	during := writes.Load() - before
	close(stop)
	wg.Wait()
	file := checkPublished(t, r, dir, "backup", "sqlite")
	assert.Positive(t, during, "the writer kept writing during the backup")
	assert.Contains(t, r.Summary, "| Restore check | restored to a scratch file, integrity_check ok: row counts of 2 tables")
	assert.Contains(t, r.Summary, "| Source | SQLite database "+path+" (VACUUM INTO) |")

	// Restore over the database with the printed command, writers stopped.
	var live int64
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM items`).Scan(&live))
	require.NoError(t, db.Close())
	for _, f := range []string{path + "-wal", path + "-shm"} {
		_ = os.Remove(f)
	}
	line := restoreCommand(t, r.Summary)
	assert.Equal(t, "gunzip -c "+file+" > "+path, line)
	shell(t, line)

	restored, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer restored.Close()
	var check string
	require.NoError(t, restored.QueryRow(`PRAGMA integrity_check`).Scan(&check))
	assert.Equal(t, "ok", check)
	var items, total int64
	require.NoError(t, restored.QueryRow(`SELECT count(*) FROM items`).Scan(&items))
	require.NoError(t, restored.QueryRow(`SELECT total FROM counter`).Scan(&total))
	assert.Equal(t, total, items, "one consistent snapshot: the counter matches the rows")
	assert.GreaterOrEqual(t, items, int64(50000)+50)
	assert.Less(t, items, live, "the snapshot is older than the last write")

	// The file is a plain gzip of a SQLite database.
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	head := make([]byte, 16)
	_, err = zr.Read(head)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(head), "SQLite format 3"))
}
