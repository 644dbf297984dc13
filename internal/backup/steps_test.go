package backup

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/steps"
)

// The backup's step order and skip rules, without Docker: the SQLite engine
// runs in-process.

func newSQLiteDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('a'), ('b')`)
	require.NoError(t, err)
	return path
}

func TestStepsOfASQLiteBackup(t *testing.T) {
	var log bytes.Buffer
	a := action.NewContext(nil, &log)
	dir, host := t.TempDir(), t.TempDir()
	o := Options{Engine: "sqlite", SQLitePath: newSQLiteDB(t), Dir: dir, Prefix: "app", Level: 1, MinSize: 1, Keep: Keep{Daily: 7}, RestoreCheck: true, HostPath: host}
	j, err := newJob(a, o)
	require.NoError(t, err)
	defer j.engine.Close()
	require.NoError(t, j.run(context.Background()))
	assert.Equal(t, []string{"clean: skipped", "dump: done", "verify: done", "restore-check: done", "publish: done", "docker-host: skipped", "host-copy: done", "offsite: skipped", "retention: done"}, steps.Outcomes(j.Results))
	assert.FileExists(t, filepath.Join(host, filepath.Base(j.final)))

	// Without restore-check and host-path those steps say why they did nothing.
	o.RestoreCheck, o.HostPath, o.Prefix = false, "", "plain"
	j, err = newJob(a, o)
	require.NoError(t, err)
	defer j.engine.Close()
	require.NoError(t, j.run(context.Background()))
	got := map[string]string{}
	for _, r := range j.Results {
		got[r.Step] = r.Detail
	}
	assert.Equal(t, "not requested (restore-check: false)", got["restore-check"])
	assert.Equal(t, "no host-path", got["host-copy"])
	assert.Equal(t, "no docker-host: kept in "+dir+" on this machine", got["docker-host"])
	assert.Equal(t, "no offsite-url", got["offsite"])
}

// A dump that fails verify stops the backup there: nothing is published, the
// temp file is gone, the rest is skipped.
func TestStepsStopAtAFailedVerify(t *testing.T) {
	var log bytes.Buffer
	a := action.NewContext(nil, &log)
	dir := t.TempDir()
	o := Options{Engine: "sqlite", SQLitePath: newSQLiteDB(t), Dir: dir, Prefix: "app", Level: 1, MinSize: 1 << 30, Keep: Keep{Daily: 7}}
	j, err := newJob(a, o)
	require.NoError(t, err)
	defer j.engine.Close()
	err = j.run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "backup failed at verify: ")
	assert.Equal(t, []string{"clean: skipped", "dump: done", "verify: failed", "restore-check: skipped", "publish: skipped", "docker-host: skipped", "host-copy: skipped", "offsite: skipped", "retention: skipped"}, steps.Outcomes(j.Results))
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "no temp file, no backup")
}
