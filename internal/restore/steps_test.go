package restore

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/lock"
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
	assert.Equal(t, []string{"confirm: done", "verify: done", "lock: done", "restore: done", "checks: skipped"}, steps.Outcomes(r.Results))
	assert.Equal(t, "no health-url or smoke-checks", r.Results[4].Detail)
	assert.Equal(t, file+" into SQLite database "+db+" (VACUUM INTO)", r.Results[0].Detail, "confirm says what it confirmed (item 14)")
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
		{"a prefix with a newline", func(o *Options) { o.File, o.Prefix = "latest", "app\n::warning::x" }, "confirm: failed", `input prefix: app\n::warning::x holds control characters`},
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
			assert.Equal(t, "restore: skipped", got[3])
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

// Item 3 of the defects audit: a restore takes the stack's deploy lock, so it
// never runs beside a deploy, rollback or another restore of the same stack.
// Held by someone else, the restore waits lock-timeout, then fails naming the
// holder, and nothing is restored.
func TestRestoreTakesTheStacksDeployLock(t *testing.T) {
	db, file, a := sqliteWithBackup(t)
	o := sqliteOptions(t, db, file)
	o.ProjectName, o.LockTimeout = "shop", 200*time.Millisecond
	path := lock.PathFor(lock.Dir(o.HistoryFile), "shop")
	held, err := lock.Acquire(context.Background(), path, lock.Holder{Host: "h", PID: 4242, Version: "2.0.0", Since: time.Now()}, time.Second, nil)
	require.NoError(t, err)

	r := restoreRun(a, o)
	_, err = r.Run(context.Background(), Pipeline, r, nil)
	r.Cleanup()
	require.Error(t, err)
	assert.ErrorContains(t, err, "another deploy, rollback, restore or backup holds the lock "+path+" (pid 4242 on h since ")
	assert.ErrorContains(t, err, "deploying 2.0.0); waited 200ms")
	assert.Equal(t, []string{"confirm: done", "verify: done", "lock: failed", "restore: skipped", "checks: skipped"}, steps.Outcomes(r.Results))
	assert.Empty(t, r.safety, "nothing was restored, no safety backup")

	// Released, the restore takes it, and gives it back when done.
	require.NoError(t, held.Release())
	r = restoreRun(a, o)
	_, err = r.Run(context.Background(), Pipeline, r, nil)
	r.Cleanup()
	require.NoError(t, err)
	assert.Equal(t, "took "+path, r.Results[2].Detail)
	assert.NoFileExists(t, path, "released")
}

// Item 8: a backup whose name holds a control character (a newline that would
// start a workflow command or a Markdown heading) is refused before anything
// happens, and the refusal shows the name escaped.
func TestBackupNameWithControlCharactersIsRefused(t *testing.T) {
	db, file, a := sqliteWithBackup(t)
	evil := filepath.Join(t.TempDir(), "x\n::warning::INJECTED\n## heading.sqlite.gz")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(evil, data, 0o600))
	sum, err := os.ReadFile(file + ".sha256")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(evil+".sha256", sum, 0o600))
	for _, name := range []string{evil, filepath.Dir(evil)} { // the file, or the artifact directory holding it
		o := sqliteOptions(t, db, file)
		o.File = name
		r := restoreRun(a, o)
		_, err = r.Run(context.Background(), Pipeline, r, nil)
		r.Cleanup()
		require.Error(t, err)
		assert.Equal(t, action.ExitUsage, action.ExitCode(err))
		assert.EqualError(t, err, "input file: "+filepath.Dir(evil)+`/x\n::warning::INJECTED\n## heading.sqlite.gz: a backup whose name holds control characters is refused (rename it)`)
		assert.NotContains(t, err.Error(), "\n")
		assert.Empty(t, r.safety)
	}
}

// Item 10: what becomes an output is checked before anything changes. A backup
// whose path holds the output file's delimiter as a line is refused before the
// restore (exit 2), with the database as it was, not after it was replaced.
func TestOutputsAreCheckedBeforeTheRestore(t *testing.T) {
	db, file, a := sqliteWithBackup(t)
	before, err := os.ReadFile(db)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "x\n_GitHubActionsFileCommandDelimeter_\ny")
	require.NoError(t, os.Mkdir(dir, 0o700))
	for _, f := range []string{file, file + ".sha256"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o600))
	}
	o := sqliteOptions(t, db, file)
	o.File = filepath.Join(dir, filepath.Base(file))
	r := restoreRun(a, o)
	_, err = r.Run(context.Background(), Pipeline, r, nil)
	r.Cleanup()
	require.Error(t, err)
	assert.Equal(t, action.ExitUsage, action.ExitCode(err))
	assert.False(t, r.changing)
	after, err := os.ReadFile(db)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the database is as it was")

	// The check itself, for a value no name check would catch.
	err = a.CheckOutputs(action.Out{Name: "file", Value: "/backups/app.sqlite.gz\r"})
	assert.EqualError(t, err, "output file: refusing a value that contains a carriage return")
}
