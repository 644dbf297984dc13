package restore

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
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/steps"
)

// The restore's step order, skip rules and refusals, without Docker: a SQLite
// database restored in-process.

func sqliteWithBackup(t *testing.T) (db, file string, a *action.Context) {
	t.Helper()
	root := t.TempDir()
	db = filepath.Join(root, "app.db")
	conn, err := sql.Open("sqlite", db)
	require.NoError(t, err)
	_, err = conn.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('a'), ('b')`)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	var log bytes.Buffer
	a = action.NewContext(nil, &log)
	r, err := backup.Make(context.Background(), a, backup.Options{Engine: "sqlite", SQLitePath: db, Dir: filepath.Join(root, "backups"), Prefix: "app", Level: 1, MinSize: 1, Keep: backup.Keep{All: true}})
	require.NoError(t, err)
	return db, r.Path, a
}

func restoreRun(a *action.Context, o Options) *run {
	r := &run{a: a, in: o, verify: o.VerifyOptions}
	r.Runner = steps.Runner[*run]{Logf: a.Logf}
	return r
}

func sqliteOptions(t *testing.T, db, file string) Options {
	var o Options
	action.Defaults(&Spec, &o)
	o.Confirm, o.Engine, o.SQLitePath, o.File, o.Dir = "RESTORE", "sqlite", db, file, filepath.Dir(file)
	o.HistoryFile = filepath.Join(t.TempDir(), "history.log")
	return o
}

func TestStepsOfASQLiteRestore(t *testing.T) {
	db, file, a := sqliteWithBackup(t)
	r := restoreRun(a, sqliteOptions(t, db, file))
	defer r.Cleanup()
	_, err := r.Run(context.Background(), Pipeline, r, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"confirm: done", "verify: done", "restore: done", "checks: skipped"}, steps.Outcomes(r.Results))
	assert.Equal(t, "no health-url or smoke-checks", r.Results[3].Detail)
	assert.True(t, r.changing)
	assert.FileExists(t, r.safety, "a safety backup first")
}

// Refusals stop in confirm or verify: nothing is restored, no safety backup.
func TestStepsRefuseBeforeAnythingChanges(t *testing.T) {
	db, file, a := sqliteWithBackup(t)
	for _, tc := range []struct {
		name string
		set  func(*Options)
		step string
		want string
	}{
		{"no confirm", func(o *Options) { o.Confirm = "" }, "confirm: failed", "input confirm is required"},
		{"wrong confirm", func(o *Options) { o.Confirm = "restore" }, "confirm: failed", `input confirm: "restore" is not RESTORE`},
		{"relative history", func(o *Options) { o.HistoryFile = "history.log" }, "confirm: failed", `input history-file: "history.log" must be an absolute path`},
		{"checks without a base", func(o *Options) { o.VerifyOptions = deploy.VerifyOptions{SmokeChecks: []string{"/=200"}} }, "confirm: failed", "input smoke-checks: set smoke-base-url too"},
		{"stop-services without a project", func(o *Options) { o.StopServices = []string{"web"} }, "confirm: failed", "input stop-services: set project-name too"},
		{"a cut backup", func(o *Options) { o.File = cut(t, file) }, "verify: failed", "the backup cannot be restored: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sqliteOptions(t, db, file)
			tc.set(&o)
			r := restoreRun(a, o)
			defer r.Cleanup()
			_, err := r.Run(context.Background(), Pipeline, r, nil)
			require.Error(t, err)
			assert.Equal(t, action.ExitUsage, action.ExitCode(err))
			assert.ErrorContains(t, err, tc.want)
			got := steps.Outcomes(r.Results)
			assert.Contains(t, got, tc.step)
			assert.Equal(t, "restore: skipped", got[2])
			assert.False(t, r.changing)
			assert.Empty(t, r.safety)
		})
	}
}

// cut is a copy of the backup missing its last bytes, beside the original's
// .sha256 (which no longer matches).
func cut(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	sum, err := os.ReadFile(file + ".sha256")
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), filepath.Base(file))
	require.NoError(t, os.WriteFile(dst, data[:len(data)-16], 0o600))
	require.NoError(t, os.WriteFile(dst+".sha256", sum, 0o600))
	return dst
}
